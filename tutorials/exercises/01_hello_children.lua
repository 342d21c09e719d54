-- Exercise 1 (session 1, processes): start three children and wait for them.
--
-- Each child prints "hello from <its name>" (mp.current_process().name is
-- "Process-1", "Process-2", ...).  The parent waits for all three, then
-- prints their exit codes.  Expected output (the hello lines in any order):
--
--   hello from Process-1
--   hello from Process-2
--   hello from Process-3
--   all joined:	{0, 0, 0}
--
-- Check your work:  luamp tutorials/exercises/check.lua 1
local mp = require "multiprocessing"

local function greet()
  print("hello from " .. mp.current_process().name)
end

local procs = {}
for i = 1, 3 do
  procs[i] = mp.Process{target = greet}
  -- TODO: start the process
end

local codes = {}
for i, p in ipairs(procs) do
  -- TODO: wait for the process to finish before reading its exit code
  codes[i] = p.exitcode
end
print("all joined:", repr(codes))
