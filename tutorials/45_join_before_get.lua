-- 45_join_before_get: DOC-39, Python's "Programming guidelines › Joining
-- processes that use queues".  In Python this program deadlocks: the child
-- cannot exit until its queue's feeder thread has pushed the 1,000,000
-- characters into a pipe, the pipe is full, and the parent waits in join()
-- before it ever calls get().
--
-- In luamp it finishes.  A Queue is a ring in shared memory, not a pipe fed
-- by a thread: put() copies the encoded message into the ring (a message
-- too big for it goes to a shared segment of its own) and returns, so the
-- child has nothing left to flush when it exits, and nothing is lost.  The
-- join below has a timeout only so that a regression cannot hang the test.
-- The order Python recommends (get first, then join) works just as well,
-- and is still the one to prefer in code that must also run under Python.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function f(q)
  q:put(string.rep("X", 1000000))
end

local q = mp.Queue()
local p = mp.Process{target = f, args = {q}}
p:start()
p:join(30)                    -- this deadlocks in Python
print("joined, exit code", p.exitcode)
local obj = q:get()
print("got", #obj, "characters")

-- The recommended order: get, then join.
local p2 = mp.Process{target = f, args = {q}}
p2:start()
print("got", #q:get(), "characters")
p2:join()
print("joined, exit code", p2.exitcode)
