-- array_sum: a child sums a shared Array of 1,000,000 doubles through
-- totable() and sends the sum back.  Prints the child's time for
-- totable + sum.  Twin: array_sum.py.
local mp = require "multiprocessing"
local N = tonumber(os.getenv("BENCH_ITERATIONS")) or 1000000

local arr = mp.RawArray("d", N)
for i = 1, N do arr[i] = i * 0.5 end

local function summer(a, conn)
  local best = math.huge
  local total
  for _ = 1, 5 do
    local t0 = os.monotonic()
    local t = a:totable()
    local s = 0.0
    for i = 1, #t do s = s + t[i] end
    local dt = os.monotonic() - t0
    if dt < best then best = dt end
    total = s
  end
  conn:send({total, best})
end

local here, there = mp.Pipe()
local p = mp.Process{target = summer, args = {arr, there}}
p:start()
local total, best = table.unpack(here:recv())
p:join()
assert(total == N * (N + 1) / 4, "bad sum " .. total)
print(string.format("RESULT array_sum %.2f ms", best * 1e3))
