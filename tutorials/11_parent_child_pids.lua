-- 11_parent_child_pids: DOC-03, from Python's multiprocessing docs, "The
-- Process class".  The same helper runs in the main process and in a child
-- and prints who it is: the child's parent is the main process.
-- Lua has no module `__name__`, so the "module name" line of the Python
-- example becomes the process name (MainProcess / Process-1).
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function info(title)
  print(title)
  print("process name: " .. mp.current_process().name)
  -- os.getppid() is the kernel's parent.  Under forkserver that is the fork
  -- server, which forks every child (as in Python); mp.parent_process()
  -- names the process that created the Process object, whatever the method.
  print("parent process: " .. os.getppid())
  print("process id: " .. os.getpid())
end

local main_pid = os.getpid()  -- travels to the child as an upvalue

local function f(name)
  info("function f")
  print("hello " .. name)
  print("my parent is the main process: " .. tostring(mp.parent_process().pid == main_pid))
  print("I am another process: " .. tostring(os.getpid() ~= main_pid))
end

info("main line")
local p = mp.Process{target = f, args = {"bob"}}
p:start()
p:join()
