-- 63_pass_resources: DOC-40, from Python's multiprocessing docs,
-- "Programming guidelines › Explicitly pass resources to child processes".
-- Python's two skeletons: ten workers use a Lock that is a global of the
-- main module (works only under fork, by inheritance), then the same
-- workers receive the lock as an argument (works under every method).
--
-- Lock is not part of luamp yet, so the resource here is a plain table.
-- The lesson is the same in luamp, for the same reason: a spawn or
-- forkserver child does not run this script, so it has none of its
-- globals (API.md, "No main-module guard").  Arguments and upvalues travel
-- with the target.  A plain value arrives as a copy; a luamp object (a
-- Lock, a Queue, a Value) arrives as a reference to the same shared object,
-- so passing a Lock as an argument gives every child the one lock.  As in
-- Python, an argument also stays referenced by the Process object in the
-- parent, so the garbage collector cannot free it while the child runs.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

-- 1. The resource as a global of the script, used by a worker that takes
--    no arguments.  A forked child inherits the global; a fresh one
--    (spawn, forkserver) does not have it, and the worker fails (exit 1).
resource = {name = "printer", greeting = "hello"}

local function worker_with_global()
  print("fork: worker uses the " .. resource.name)
end

for _, method in ipairs {"fork", "spawn", "forkserver"} do
  local p = mp.get_context(method).Process{target = worker_with_global}
  p:start()
  p:join(30)
  print("global resource under " .. method .. ": exit code " .. tostring(p.exitcode))
end

-- 2. The resource passed as an argument: ten workers, as in the docs, with
--    the default start method.  They run at the same time, so their lines
--    come in any order.
local function worker(res, i)
  print(string.format("worker %d: %s from the %s", i, res.greeting, res.name))
  res.greeting = "changed in the child"   -- changes the child's copy only
end

local shared = {name = "printer", greeting = "hello"}
local workers = {}
for i = 1, 10 do
  workers[i] = mp.Process{target = worker, args = {shared, i}}
  workers[i]:start()
end
for _, p in ipairs(workers) do p:join(30) end
-- A plain table was copied into each child, whatever the start method.
print("after the workers, the parent's table says: " .. shared.greeting)

-- 3. A local of the script captured by the worker (an upvalue) travels
--    with the function like an argument, under every start method: a
--    plain value as a copy, a luamp object as a reference to the same one.
--    An argument says more plainly what the child uses, as Python advises.
local function worker_with_upvalue()
  print("upvalue: the child sees the " .. shared.name .. " saying " .. shared.greeting)
end
local p = mp.Process{target = worker_with_upvalue}
p:start()
p:join(30)
