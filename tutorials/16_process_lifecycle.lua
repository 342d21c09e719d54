-- 16_process_lifecycle: DOC-13, from Python's multiprocessing docs,
-- "Reference › Process and exceptions".  A process that would sleep for
-- 1000 s is shown before start(), while it runs, and after terminate():
-- tostring(p) names its state, is_alive() follows it, and a process killed
-- by signal N has exit code -N (SIGTERM is 15 on Linux).
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

-- os.sleep is a C function luamp knows by name, so it is a valid target
-- under every start method (as Python sends time.sleep by reference).
local p = mp.Process{target = os.sleep, args = {1000}}
print(tostring(p) .. " " .. tostring(p:is_alive()))
p:start()
print(tostring(p) .. " " .. tostring(p:is_alive()))
p:terminate()
-- Python's doctest sleeps 0.1 s here and hopes the child is gone; join
-- with a timeout waits exactly as long as needed (and at most 10 s).
p:join(10)
print(tostring(p) .. " " .. tostring(p:is_alive()))
print(p.exitcode == -15)
