-- pool_apply_async: 20,000 apply_async of x*x on Pool(2), then get of all.
-- Prints tasks per second.  Twin: pool_apply_async.py.
local mp = require "multiprocessing"
local N = tonumber(arg and arg[1]) or 20000

local function sq(x) return x * x end

local pool <close> = mp.Pool(2)
pool:apply(sq, {2})
local best = math.huge
for _ = 1, 5 do
  local t0 = os.monotonic()
  local rs = {}
  for i = 1, N do rs[i] = pool:apply_async(sq, {i}) end
  local sum = 0
  for i = 1, N do sum = sum + rs[i]:get() end
  local dt = os.monotonic() - t0
  assert(sum == N * (N + 1) * (2 * N + 1) // 6)
  if dt < best then best = dt end
end
print(string.format("RESULT pool_apply_async %.0f tasks/s", N / best))
