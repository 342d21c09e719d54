-- core.forkserver_request checks its arguments before it holds any C++
-- object: a bad fd list raises in luaL_argerror style and leaks nothing
-- (run under scripts/sanitize to see the leak check).
require "multiprocessing"
local core = require "multiprocessing.core"

local function check_error(pattern, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(tostring(err):find(pattern), "error '" .. tostring(err) .. "' does not match " .. pattern)
end

local many = {}
for i = 1, 100 do many[i] = 0 end
check_error("bad argument #3 to '[%w_.]+' %(too many file descriptors%)", core.forkserver_request, "\0none", 0, many)
check_error("bad argument #3 to '[%w_.]+' %(table expected", core.forkserver_request, "\0none", 0, "x")
check_error("bad argument #2", core.forkserver_request, "\0none", "x", {})
