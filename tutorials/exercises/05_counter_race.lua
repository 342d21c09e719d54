-- Exercise 5 (session 3, sharing state and races): a shared counter that
-- loses updates.
--
-- Four processes each add 1 to a shared mp.Value 2000 times with
--   counter.value = counter.value + 1
-- That is a read and then a write: two processes can read the same old
-- value, and one update is lost.  Run it a few times: the total is rarely
-- 8000 (under spawn, where children start slowly, it may be: the race is
-- still there).  Make it always 8000 by holding the Value's own lock
-- (counter:get_lock()) around each read-and-write, with
--   local _ <close> = lock:guard()
-- Expected output:
--
--   counter:	8000
--
-- Check your work:  luamp tutorials/exercises/check.lua 5
local mp = require "multiprocessing"

local function work(counter, n)
  for _ = 1, n do
    -- TODO: take counter:get_lock() for the read-and-write below
    counter.value = counter.value + 1
  end
end

local counter = mp.Value("i", 0)
local procs = {}
for i = 1, 4 do
  procs[i] = mp.Process{target = work, args = {counter, 2000}}
  procs[i]:start()
end
for _, p in ipairs(procs) do p:join(30) end
print("counter:", counter.value)
