-- 25_global_counter_pitfall: SEED-001-04 ("multiprocessing.Lock"), a
-- pitfall.  The seed increments a counter in a plain table, under a Lock,
-- in two processes 1000 times each, and claims the parent then prints 2000.
-- It prints 0: each child increments its own copy of the table (a forked
-- child has a copy of the parent's memory; a spawned one receives a copy of
-- the arguments).  The Lock is shared, but the data is not.  The fix is to
-- put the counter itself in shared memory: an mp.Value (as in SEED-001-05).
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function increment(counter, lock, n)
  for _ = 1, n do
    local _ <close> = lock:guard()
    counter.count = counter.count + 1
  end
end

local counter = {count = 0}
local lock = mp.Lock()
local p1 = mp.Process{target = increment, args = {counter, lock, 1000}}
local p2 = mp.Process{target = increment, args = {counter, lock, 1000}}
p1:start(); p2:start()
p1:join(); p2:join()
print("plain table:", counter.count)

-- The fix: a shared Value, updated under its own lock.
local function increment_shared(value, n)
  for _ = 1, n do
    local _ <close> = value:get_lock():guard()
    value.value = value.value + 1
  end
end

local shared = mp.Value("i", 0)
p1 = mp.Process{target = increment_shared, args = {shared, 1000}}
p2 = mp.Process{target = increment_shared, args = {shared, 1000}}
p1:start(); p2:start()
p1:join(); p2:join()
print("shared Value:", shared.value)
