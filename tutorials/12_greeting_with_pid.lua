-- 12_greeting_with_pid: SEED-001-01, from a reference page's
-- "multiprocessing.Process" section.  A child greets by name and prints its
-- own pid (Python's f-string becomes string.format); the parent then checks
-- that the pid the child printed is not its own.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function greet(name)
  print(string.format("Hello %s from process %d", name, os.getpid()))
end

local p = mp.Process{target = greet, args = {"Alice"}}
p:start()
p:join()
-- p.pid is the child's pid, known to the parent from start() on.
print("the child was another process: " .. tostring(p.pid ~= os.getpid()))
