-- Exercise 8, a solution.  map keeps the order of its input, so counts[i]
-- belongs to ranges[i]; the pool is terminated when `pool` goes out of
-- scope (the do-block), after map has returned every result.
local mp = require "multiprocessing"

local N, TASKS = 300000, 30

local function count_range(range)
  local lo, hi = range[1], range[2]
  local count = 0
  for n = math.max(lo, 2), hi do
    local prime = true
    for d = 2, math.floor(math.sqrt(n)) do
      if n % d == 0 then prime = false break end
    end
    if prime then count = count + 1 end
  end
  return count
end

local t0 = os.monotonic()
local ranges = {}
local size = N // TASKS
for i = 1, TASKS do
  ranges[i] = {(i - 1) * size + 1, i == TASKS and N or i * size}
end

local counts
do
  local pool <close> = mp.Pool(4)
  counts = pool:map(count_range, ranges)
end

local total = 0
for _, c in ipairs(counts) do total = total + c end
print(string.format("primes up to %d:", N), total)
print("tasks:", #counts)
print("time:", string.format("%.2f", os.monotonic() - t0))
