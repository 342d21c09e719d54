-- value_contended: 2 processes each do 100,000 `v.value = v.value + 1`
-- under the Value's lock.  Prints the total operations per second and
-- checks the count.  Twin: value_contended.py.
local mp = require "multiprocessing"
local N = tonumber(os.getenv("BENCH_ITERATIONS")) or 100000

local function work(v, n)
  local lock = v:get_lock()
  for _ = 1, n do
    lock:acquire()
    v.value = v.value + 1
    lock:release()
  end
end

local v = mp.Value("i", 0)
local ps = {}
local t0 = os.monotonic()
for i = 1, 2 do
  ps[i] = mp.Process{target = work, args = {v, N}}
  ps[i]:start()
end
for _, p in ipairs(ps) do p:join() end
local dt = os.monotonic() - t0
assert(v.value == 2 * N, "lost updates: " .. v.value)
print(string.format("RESULT value_contended %.3f Mops/s", 2 * N / dt / 1e6))
