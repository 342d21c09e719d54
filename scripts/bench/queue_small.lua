-- queue_small: one producer process puts 200,000 small integers on a Queue,
-- the main process gets them.  Prints messages per second (from the first
-- get to the last).  Twin: queue_small.py.
local mp = require "multiprocessing"
local N = tonumber(arg and arg[1]) or 200000

local function producer(q, n)
  for i = 1, n do q:put(i) end
end

local q = mp.Queue()
local p = mp.Process{target = producer, args = {q, N}}
local t0 = os.monotonic()
p:start()
local sum = 0
for _ = 1, N do sum = sum + q:get() end
local dt = os.monotonic() - t0
p:join()
assert(sum == N * (N + 1) // 2)
print(string.format("RESULT queue_small %.0f msg/s", N / dt))
