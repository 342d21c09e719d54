-- 70_manager_server_process: DOC-10, Python's "Sharing state between
-- processes › Server process".  mp.Manager() starts a server process that
-- holds Lua values; m:dict() and m:list() return proxies to them.  A child
-- changes both through its proxies, and the parent sees the changes.
--
-- Two differences from Python, both Lua's:
-- * Python stores None under the key 0.25.  Assigning nil to a key deletes
--   it in Lua (and in a dict proxy), so this tutorial stores false instead.
-- * Printing a proxy shows its contents as repr does: keys sorted, numbers
--   first (Python 3.7+ prints dicts in insertion order; d:keys() keeps that
--   order here too).
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function f(d, l)
  d[1] = "1"
  d["2"] = 2
  d[0.25] = false
  l:reverse()
end

do
  local manager <close> = mp.Manager()
  local d = manager:dict()
  local l = manager:list({0, 1, 2, 3, 4, 5, 6, 7, 8, 9})

  local p = mp.Process{target = f, args = {d, l}}
  p:start()
  p:join()

  print(d)               --> {"1", [0.25] = false, ["2"] = 2}
  print(l)               --> {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}
  print(repr(d:keys()))  --> {1, "2", 0.25}   (insertion order, as Python's dict)
end  -- <close>: the manager's server process is shut down and reaped here
