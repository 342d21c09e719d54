-- 61_unguarded_main: DOC-43, from Python's multiprocessing docs,
-- "Programming guidelines › Safe importing of main module".  Python's
-- counter-example starts a process at the top level of the script, with no
-- `if __name__ == '__main__':` guard.  Under spawn and forkserver, Python's
-- child re-imports the script to find the target, reaches the same start()
-- during its bootstrap and fails with a RuntimeError.
--
-- In luamp the same program works under every start method (API.md,
-- "No main-module guard"): a spawn or forkserver child receives the target
-- as a value (bytecode with its upvalues) and never runs this script, so
-- the line at the top is printed once.  What a fresh child lacks instead
-- are the script's globals: part 2 shows the one thing to watch.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

print("the script runs in " .. mp.current_process().name)

-- Part 1: the example itself, unguarded, with the default start method.
local function foo()
  print("hello")
end

local p = mp.Process{target = foo}
p:start()
p:join()

-- Part 2: a helper defined as a *global* of the script.  A forked child is
-- a copy of this process and has it; a spawn or forkserver child starts
-- from a fresh luamp and does not, so the target fails there with exit
-- code 1 (its stderr shows "attempt to call a nil value (global 'shout')"
-- and a note naming the start method and the fix).
function shout(s) return s:upper() .. "!" end

local function uses_global()
  print("forked child: " .. shout("hello"))
end

for _, method in ipairs {"fork", "spawn", "forkserver"} do
  local q = mp.get_context(method).Process{target = uses_global}
  q:start()
  q:join(30)
  print("global helper under " .. method .. ": exit code " .. tostring(q.exitcode))
end

-- The fix: make the helper a local.  The target then carries it as an
-- upvalue, and the child needs nothing from the script.
local function whisper(s) return s:lower() .. "..." end

local function uses_local()
  print(mp.get_start_method() .. " child: " .. whisper("HELLO"))
end

for _, method in ipairs {"fork", "spawn", "forkserver"} do
  local q = mp.get_context(method).Process{target = uses_local}
  q:start()
  q:join(30)
  print("local helper under " .. method .. ": exit code " .. tostring(q.exitcode))
end
