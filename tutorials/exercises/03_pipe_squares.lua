-- Exercise 3 (session 2, talking between processes): a square server on a
-- Pipe.
--
-- The parent sends the numbers 1 to 5 to a worker through a duplex Pipe,
-- then nil to say "no more".  The worker answers each number with its
-- square and returns when it receives nil.  The parent collects the
-- answers and prints them.  Expected output:
--
--   squares:	{1, 4, 9, 16, 25}
--   worker exit code:	0
--
-- Check your work:  luamp tutorials/exercises/check.lua 3
local mp = require "multiprocessing"

local function worker(conn)
  -- TODO: receive numbers with conn:recv() until nil arrives, and send
  -- back the square of each one with conn:send().
end

local parent_end, child_end = mp.Pipe()
local p = mp.Process{target = worker, args = {child_end}}
p:start()

local squares = {}
for x = 1, 5 do
  -- TODO: send x to the worker, receive its answer, store it in squares
end
parent_end:send(nil)   -- no more numbers

p:join(10)
print("squares:", repr(squares))
print("worker exit code:", p.exitcode)
