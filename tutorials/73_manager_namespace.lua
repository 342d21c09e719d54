-- 73_manager_namespace: DOC-22, Python's "Managers › Namespace".  A
-- Namespace proxy stores attributes in the server; a name that starts with
-- "_" stays a field of this proxy only and is not shown.  tostring lists
-- the shared attributes sorted by name.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

do
  local manager <close> = mp.get_context("spawn").Manager()  -- the newer docs use a spawn context
  local Global = manager:Namespace()
  Global.x = 10
  Global.y = "hello"
  Global._z = 12.3    -- this is an attribute of the proxy
  print(Global)                    --> Namespace(x = 10, y = "hello")
  print(Global.x, Global._z)       --> 10  12.3

  -- A proxy sent to another process carries the shared attributes, not _z.
  local here, there = mp.Pipe()
  local p = mp.Process{target = function(conn)
    local ns = conn:recv()
    print(ns.x, ns.y, ns._z)
  end, args = {there}}
  p:start()
  here:send(Global)
  p:join()                         --> 10  hello  nil
end
