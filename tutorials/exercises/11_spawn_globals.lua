-- Exercise 11 (session 6, pitfalls): make this program work under spawn.
--
-- Run it as it is:        luamp tutorials/exercises/11_spawn_globals.lua
-- then under spawn:       LUAMP_START_METHOD=spawn luamp tutorials/exercises/11_spawn_globals.lua
-- Under fork the child is a copy of the parent and has everything; under
-- spawn (and forkserver) the child is a fresh luamp that receives only the
-- target and its args (functions travel with their upvalues).  It never
-- runs this script, so the globals this script defines are not there.
-- Fix the program (without making the child run the script) so that it
-- prints, under fork, spawn and forkserver alike:
--
--   cube of 3:	27
--   child exit code:	0
--
-- Check your work:  luamp tutorials/exercises/check.lua 11
local mp = require "multiprocessing"

-- TODO: this helper is a global: the child under spawn cannot see it.
function cube(x)
  return x * x * x
end

local r, w = mp.Pipe(false)
local p = mp.Process{target = function(n, out) out:send(cube(n)) end, args = {3, w}}
p:start()
w:close()   -- only the child writes; a child that dies gives EOF here
local ok, result = pcall(r.recv, r)
if not ok then result = "no answer" end
p:join(10)
print("cube of 3:", result)
print("child exit code:", p.exitcode)
