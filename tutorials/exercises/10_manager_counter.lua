-- Exercise 10 (session 5, managers): a counter that counts right without a
-- lock.
--
-- Tutorial 72_manager_visit_counter showed that
--   visits["count"] = visits["count"] + 1
-- through a dict proxy loses updates (a read and a write are two calls to
-- the server), and fixed it with a managed Lock.  Another fix needs no
-- lock: make the increment one call.  The manager's server handles one
-- call at a time per object, so a method that reads and writes inside the
-- server is atomic for the processes that call it.
--
-- Register a Counter type on the manager class below: new_counter()
-- returns an object with methods increment() (adds 1) and value()
-- (returns the count).  Ten processes each call counter:increment() 50
-- times.  Expected output:
--
--   count:	500
--
-- Check your work:  luamp tutorials/exercises/check.lua 10
local mp = require "multiprocessing"

local Counter = {}
Counter.__index = Counter
-- TODO: define Counter:increment() and Counter:value()

local function new_counter()
  return setmetatable({n = 0}, Counter)
end

local CounterManager = mp.managers.BaseManager:extend("CounterManager")
-- TODO: register new_counter under the name "Counter"

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
