-- A forked child never returns into its parent's code, even when an error
-- (or a Ctrl-C) strikes between fork and the protected run of its target:
-- here a log handler that fails in the child, before run() starts.  The
-- child must exit with code 1 rather than carry on with the parent's script.
local mp = require "multiprocessing"
local main_pid = os.getpid()

local logger = mp.get_logger()
logger:setLevel(mp.INFO)
logger:addHandler(function(msg)
  if os.getpid() ~= main_pid and msg:find("calling self.run", 1, true) then
    error("log handler failed in the child (expected, ignore)")
  end
end)

local p = mp.Process{target = function() end}
local ok = pcall(p.start, p)
if os.getpid() ~= main_pid then
  -- Only a child that escaped from the fork can get here.
  os.exit(99)
end
assert(ok, "start failed in the parent")
p:join(30)
logger:setLevel(mp.WARNING)
assert(p.exitcode == 1, "child should exit with 1, got " .. tostring(p.exitcode))
