-- manager_dict: a child process does N sets then N gets on a manager dict
-- (one proxy call each).  Prints the calls per second.  Twin: manager_dict.py.
local mp = require "multiprocessing"
local N = tonumber(arg and arg[1]) or 20000

local function work(d, n, r)
  local t0 = os.monotonic()
  for i = 1, n do d[i] = i end
  local sum = 0
  for i = 1, n do sum = sum + d[i] end
  assert(sum == n * (n + 1) // 2)
  r:send(os.monotonic() - t0)
end

local m <close> = mp.Manager()
local d = m:dict()
local r, w = mp.Pipe(false)
local p = mp.Process{target = work, args = {d, N, w}}
p:start()
local elapsed = r:recv()
p:join()
print(string.format("RESULT manager_dict %.0f ops/s", 2 * N / elapsed))
