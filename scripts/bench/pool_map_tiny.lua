-- pool_map_tiny: Pool(2) map of x*x over 200,000 integers, default
-- chunksize.  Prints tasks per second.  Twin: pool_map_tiny.py.
local mp = require "multiprocessing"
local N = tonumber(arg and arg[1]) or 200000

local function sq(x) return x * x end

local xs = {}
for i = 1, N do xs[i] = i - 1 end
local pool <close> = mp.Pool(2)
pool:map(sq, {1, 2, 3, 4})  -- warm-up: workers up, function cached
local best = math.huge
for _ = 1, 5 do
  local t0 = os.monotonic()
  local r = pool:map(sq, xs)
  local dt = os.monotonic() - t0
  assert(#r == N and r[N] == (N - 1) * (N - 1))
  if dt < best then best = dt end
end
print(string.format("RESULT pool_map_tiny %.0f tasks/s", N / best))
