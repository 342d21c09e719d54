-- Exercise 2 (session 1, processes): the four ways a process ends.
--
-- Make four children whose exit codes are, in order, 0, 3, 1 and -15:
--   1. a target that simply returns                      -> 0
--   2. a target that calls os.exit(3)                    -> 3
--   3. a target that raises an error ("boom")            -> 1 (the traceback
--      goes to stderr, under "Process Process-3:")
--   4. a target that sleeps for a long time (os.sleep(60)) and that the
--      parent stops with terminate() (SIGTERM is signal 15) -> -15
-- Expected output:
--
--   exit codes:	{0, 3, 1, -15}
--
-- Check your work:  luamp tutorials/exercises/check.lua 2
local mp = require "multiprocessing"

local targets = {
  function() end,
  function() end,   -- TODO: exit with status 3
  function() end,   -- TODO: raise an error
  function() end,   -- TODO: sleep for a long time
}

local procs = {}
for i, f in ipairs(targets) do
  procs[i] = mp.Process{target = f}
  procs[i]:start()
end

-- TODO: stop the fourth (sleeping) process before joining it

local codes = {}
for i, p in ipairs(procs) do
  p:join(10)   -- a deadline, so a mistake cannot hang the program
  codes[i] = p.exitcode
end
print("exit codes:", repr(codes))
