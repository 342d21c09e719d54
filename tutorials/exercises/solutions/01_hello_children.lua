-- Exercise 1, a solution: start() each child, then join() each one.  The
-- exit code is nil until the process has been joined (or polled with
-- is_alive()); a child that returns normally exits with 0.
local mp = require "multiprocessing"

local function greet()
  print("hello from " .. mp.current_process().name)
end

local procs = {}
for i = 1, 3 do
  procs[i] = mp.Process{target = greet}
  procs[i]:start()
end

local codes = {}
for i, p in ipairs(procs) do
  p:join()
  codes[i] = p.exitcode
end
print("all joined:", repr(codes))
