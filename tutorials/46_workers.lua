-- 46_workers: INC-mp_workers, the example "using queues to feed tasks to a
-- collection of worker processes and collect the results".  Four workers
-- take tasks from one queue until they get "STOP" and put result strings on
-- another.  Python sends (function, args) pairs and prints func.__name__;
-- Lua functions have no names, so a task is {name, fn, args}: the function
-- crosses as bytecode, the name travels beside it.  Python's
-- print('\t', result) prints a tab, then a space.  The order of results
-- varies, and so do the worker names; the first 20 always come before the
-- last 10 (the second batch is submitted after the first was read).  As in
-- Python, the workers are not joined explicitly: the main process joins
-- its children when it ends.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

-- Functions referenced by tasks
local function mul(a, b)
  os.sleep(0.5 * math.random())
  return a * b
end

local function plus(a, b)
  os.sleep(0.5 * math.random())
  return a + b
end

-- Function run by worker processes
local function calculate(task)
  local name, fn, args = task[1], task[2], task[3]
  local result = fn(table.unpack(args))
  return string.format("%s says that %s(%d, %d) = %d", mp.current_process().name, name,
                       args[1], args[2], result)
end

local function worker(input, output)
  math.randomseed(os.getpid())
  while true do
    local task = input:get()
    if task == "STOP" then break end
    output:put(calculate(task))
  end
end

local NUMBER_OF_PROCESSES = 4
local TASKS1 = {}
for i = 0, 19 do TASKS1[#TASKS1 + 1] = {"mul", mul, {i, 7}} end
local TASKS2 = {}
for i = 0, 9 do TASKS2[#TASKS2 + 1] = {"plus", plus, {i, 8}} end

-- Create queues
local task_queue = mp.Queue()
local done_queue = mp.Queue()

-- Submit tasks
for _, task in ipairs(TASKS1) do task_queue:put(task) end

-- Start worker processes
for _ = 1, NUMBER_OF_PROCESSES do
  mp.Process{target = worker, args = {task_queue, done_queue}}:start()
end

-- Get and print results
print("Unordered results:")
for _ = 1, #TASKS1 do print("\t " .. done_queue:get()) end

-- Add more tasks using `put()`
for _, task in ipairs(TASKS2) do task_queue:put(task) end

-- Get and print some more results
for _ = 1, #TASKS2 do print("\t " .. done_queue:get()) end

-- Tell child processes to stop
for _ = 1, NUMBER_OF_PROCESSES do task_queue:put("STOP") end
