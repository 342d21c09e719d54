-- lock_uncontended: 1,000,000 acquire+release pairs of an mp.Lock in one
-- process (no contention: the futex fast path).  Prints ns per pair.
-- Twin: lock_uncontended.py.
local mp = require "multiprocessing"
local N = tonumber(os.getenv("BENCH_ITERATIONS")) or 1000000

local lock = mp.Lock()
for _ = 1, 10000 do lock:acquire(); lock:release() end  -- warm-up
local t0 = os.monotonic()
for _ = 1, N do
  lock:acquire()
  lock:release()
end
local per = (os.monotonic() - t0) / N
print(string.format("RESULT lock_uncontended %.1f ns", per * 1e9))
