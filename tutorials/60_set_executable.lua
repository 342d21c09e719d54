-- 60_set_executable: DOC-15, from Python's multiprocessing docs,
-- "Reference › Miscellaneous".  Python's fragment points child processes at
-- another interpreter binary (pythonw.exe) for programs that embed Python.
-- In luamp, set_executable(path) chooses the luamp binary that spawn (and
-- a fork server when it starts) executes; the default is the running one.
-- Here the program sets it to the binary that runs it (arg[-1], as in
-- `lua`), so a spawned child runs the same luamp, and then shows that a
-- path that cannot be executed makes start() fail.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local luamp = arg[-1]
mp.set_executable(luamp)

-- A spawn context, whatever the default start method is: set_executable
-- matters to spawn, not to fork (a forked child is a copy of this process).
local ctx = mp.get_context("spawn")

local function child()
  print("spawned child: start method " .. mp.get_start_method()
        .. ", running from a fresh luamp: " .. tostring(rawget(_G, "luamp_marker") == nil))
end
luamp_marker = true  -- a global of this script; a spawned child has a fresh set of globals

local p = ctx.Process{target = child}
p:start()
p:join(30)
print("exit code: " .. tostring(p.exitcode))

-- A path that cannot be executed: start() raises an OSError naming the
-- path, as Python does, and the process is not started.
mp.set_executable("/nonexistent/luamp")
local bad = ctx.Process{target = child}
local ok, err = pcall(bad.start, bad)
print("with a bad executable: started " .. tostring(ok) .. ", "
      .. (mp.isinstance(err, mp.OSError) and ("OSError errno " .. err.errno) or tostring(err)))
mp.set_executable(luamp)
