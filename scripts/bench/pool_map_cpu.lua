-- pool_map_cpu: 64 CPU-bound tasks on Pool(2) against a serial loop in the
-- same run.  Prints the speedup (serial time / pool time).  Twin:
-- pool_map_cpu.py.
local mp = require "multiprocessing"
local TASKS = tonumber(arg and arg[1]) or 64
-- Lua runs this loop about 14 times faster than Python: 4,000,000 steps
-- make a task as long as the twin's 300,000 (~30 ms here), so both pools
-- carry the same overhead relative to the work.
local WORK = tonumber(arg and arg[2]) or 4000000

local function work(seed)
  local x = seed
  for _ = 1, WORK do x = (x * 1103515245 + 12345) % 2147483648 end
  return x
end

local xs = {}
for i = 1, TASKS do xs[i] = i end
local pool <close> = mp.Pool(2)
pool:map(work, {1, 2})
local t0 = os.monotonic()
local serial = {}
for i = 1, TASKS do serial[i] = work(xs[i]) end
local t_serial = os.monotonic() - t0
t0 = os.monotonic()
local par = pool:map(work, xs)
local t_pool = os.monotonic() - t0
for i = 1, TASKS do assert(par[i] == serial[i]) end
print(string.format("INFO serial %.3f s, pool %.3f s", t_serial, t_pool))
print(string.format("RESULT pool_map_cpu %.2f x", t_serial / t_pool))
