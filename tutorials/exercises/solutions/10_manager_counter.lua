-- Exercise 10, a solution.  The Counter lives in the manager's server; the
-- proxy's increment() is one request, and the whole method runs in the
-- server before the next request for the object, so no update is lost and
-- no lock is needed.  The proxy exposes the object's public methods.
local mp = require "multiprocessing"

local Counter = {}
Counter.__index = Counter
function Counter:increment() self.n = self.n + 1 end
function Counter:value() return self.n end

local function new_counter()
  return setmetatable({n = 0}, Counter)
end

local CounterManager = mp.managers.BaseManager:extend("CounterManager")
CounterManager.register("Counter", new_counter)

local function visit(counter, times)
  for _ = 1, times do counter:increment() end
end

local m <close> = CounterManager()
m:start()
local ok, counter = pcall(function() return m:Counter() end)
if not ok then
  print("no Counter type registered yet: " .. tostring(counter))
  os.exit(1)
end
local procs = {}
for i = 1, 10 do
  procs[i] = mp.Process{target = visit, args = {counter, 50}}
  procs[i]:start()
end
for _, p in ipairs(procs) do p:join(60) end
print("count:", counter:value())
