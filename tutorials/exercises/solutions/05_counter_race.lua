-- Exercise 5, a solution.  The lock must cover the read and the write
-- together: taking it only around the write would still lose updates.
-- A Value made by mp.Value("i", 0) has its own lock (get_lock()); the
-- do-block with a <close> variable releases it at the end of each
-- iteration, also if the body raised an error.
local mp = require "multiprocessing"

local function work(counter, n)
  for _ = 1, n do
    local _ <close> = counter:get_lock():guard()
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
