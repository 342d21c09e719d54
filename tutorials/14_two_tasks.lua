-- 14_two_tasks: SEED-003-02, from a tutorial's "Running Multiple Processes".
-- Two children run at the same time and are joined afterwards; which one
-- prints first is up to the scheduler, so the expected output is unordered.
-- Like 13_print_numbers, it needs no main-module guard in luamp.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function task(name)
  print("Running task: " .. name)
end

local p1 = mp.Process{target = task, args = {"Process 1"}}
local p2 = mp.Process{target = task, args = {"Process 2"}}
p1:start()
p2:start()
p1:join()
p2:join()
print("both joined: exit codes " .. p1.exitcode .. " and " .. p2.exitcode)
