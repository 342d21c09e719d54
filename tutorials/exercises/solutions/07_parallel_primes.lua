-- Exercise 7, a solution.  Each child gets its chunk bounds and the write
-- end of one shared Pipe; count_primes travels with the target as an
-- upvalue, so this also works under spawn.  The parent reads exactly one
-- count per child, then joins them.  The chunks are not equally hard (big
-- numbers take longer), which is why a Pool hands out smaller pieces.
local mp = require "multiprocessing"

local N, WORKERS = 300000, 4

local function count_primes(lo, hi)
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
local used = 0
local r, w = mp.Pipe(false)
local procs = {}
local size = N // WORKERS
for i = 1, WORKERS do
  local lo = (i - 1) * size + 1
  local hi = i == WORKERS and N or i * size
  procs[i] = mp.Process{target = function(out) out:send(count_primes(lo, hi)) end, args = {w}}
  procs[i]:start()
  used = used + 1
end
local total = 0
for _ = 1, WORKERS do total = total + r:recv() end
for _, p in ipairs(procs) do p:join() end

print(string.format("primes up to %d:", N), total)
print("processes used:", used)
print("time:", string.format("%.2f", os.monotonic() - t0))
