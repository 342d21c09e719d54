-- Exercise 9 (session 5, managers): a visit counter in a manager's dict.
--
-- SEED-001-10 counts visits in a dict shared through a Manager: ten
-- processes each do
--   visits["count"] = visits["count"] + 1
-- and the program claims the result is 10.  Each line is two messages to
-- the manager (a read, then a write), so two processes can read the same
-- value, and a visit is lost.  Make it always right with a Lock made by
-- the same manager (m:Lock()), passed to every process and held around the
-- read and the write.  Each process does 50 visits.  Expected output:
--
--   visits:	500
--
-- Check your work:  luamp tutorials/exercises/check.lua 9
local mp = require "multiprocessing"

local function visit(visits, lock, n)
  for _ = 1, n do
    -- TODO: hold `lock` around the read and the write
    visits["count"] = visits["count"] + 1
  end
end

local m <close> = mp.Manager()
local visits = m:dict({count = 0})
local lock = nil   -- TODO: a Lock from the manager
local procs = {}
for i = 1, 10 do
  procs[i] = mp.Process{target = visit, args = {visits, lock, 50}}
  procs[i]:start()
end
for _, p in ipairs(procs) do p:join(60) end
print("visits:", visits["count"])
