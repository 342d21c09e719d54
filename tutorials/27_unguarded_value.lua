-- 27_unguarded_value: SEED-003-04, from a tutorial's "Sharing Data Between
-- Processes".  A shared int starts at 10; a child adds 1 without taking the
-- lock (fine here: only one process writes); the parent prints 11.  The
-- seed has no main-module guard, which Python needs under spawn; luamp
-- never re-runs the script in a child, so it works under every method.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function increment(v)
  v.value = v.value + 1
end

local shared = mp.Value("i", 10)
local p = mp.Process{target = increment, args = {shared}}
p:start()
p:join()
print(shared.value)
