-- Under spawn and forkserver a Process's target and args are encoded; a
-- value that cannot cross is named by its place in args (API.md: "cannot
-- send a coroutine (at args[2].cb)"), not by the payload's inner layout.
-- start methods: spawn forkserver
local mp = require "multiprocessing"

local function start_error(opts)
  local p = mp.Process(opts)
  local ok, err = pcall(p.start, p)
  assert(not ok, "start should fail")
  return tostring(err)
end

local co = coroutine.create(print)
local err = start_error{target = print, args = {1, {cb = co}}}
assert(err:find("cannot send a coroutine (at args[2].cb)", 1, true), err)
err = start_error{target = function() return co end}
assert(err:find("cannot send a coroutine (at target(upvalue co))", 1, true), err)
err = start_error{target = print, extra = co}
assert(err:find("cannot send a coroutine (at process.extra)", 1, true), err)
