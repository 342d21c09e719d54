-- Exercise 11, a solution: `local function cube` makes the helper an
-- upvalue of the target, and upvalues travel with the function under
-- every start method.  (A helper that many files need belongs in a module
-- the child can `require`: spawn children get the parent's package.path.)
local mp = require "multiprocessing"

local function cube(x)
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
