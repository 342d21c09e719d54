-- 15_run_in_caller: DOC-12b, from Python's multiprocessing docs (newer
-- versions), "Reference › Process.run()".  run() is what the child executes;
-- calling it yourself runs the target in the calling process, with no new
-- process.  Python shows it twice, with args as a list and as a tuple; Lua
-- has only tables, so the two halves are one.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

-- The built-in print is a fine target.
local p = mp.Process{target = print, args = {1}}
p:run()

-- run() happened here: no child was started, so the process is still in
-- its initial state and this process is the one that printed.
local main_pid = os.getpid()
local q = mp.Process{target = function(x)
  print(x .. " from the caller itself: " .. tostring(os.getpid() == main_pid))
end, args = {2}}
q:run()
print("is_alive: " .. tostring(q:is_alive()) .. ", exitcode: " .. tostring(q.exitcode))
print("children started: " .. #mp.active_children())
