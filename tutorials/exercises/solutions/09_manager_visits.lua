-- Exercise 9, a solution.  The managed lock lives in the manager's server
-- like the dict, so every process that receives the proxy shares it; an
-- mp.Lock() would do as well.  Holding it makes each read-and-write one
-- step for the other processes.
local mp = require "multiprocessing"

local function visit(visits, lock, n)
  for _ = 1, n do
    local _ <close> = lock:guard()
    visits["count"] = visits["count"] + 1
  end
end

local m <close> = mp.Manager()
local visits = m:dict({count = 0})
local lock = m:Lock()
local procs = {}
for i = 1, 10 do
  procs[i] = mp.Process{target = visit, args = {visits, lock, 50}}
  procs[i]:start()
end
for _, p in ipairs(procs) do p:join(60) end
print("visits:", visits["count"])
