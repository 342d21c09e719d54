-- Exercise 12 (session 6, pitfalls): the join that never returns.
--
-- Python's documentation warns (in "Joining processes that use queues"):
-- a process that has sent data cannot finish until the data has been
-- read, so joining it before reading can deadlock.  luamp's Queue keeps
-- its messages in shared memory and does not have this problem (tutorial
-- 45_join_before_get), but a Pipe does: the child below sends 4 MiB, far
-- more than the kernel's socket buffer holds, so its send() waits for a
-- reader, while the parent waits in join() for the child to exit.  Run it:
-- it hangs (press Ctrl-C).
-- Fix the order so that it prints:
--
--   received:	4194304	bytes
--   child exit code:	0
--
-- Check your work:  luamp tutorials/exercises/check.lua 12
local mp = require "multiprocessing"

local function producer(out)
  out:send_bytes(string.rep("x", 4 * 1024 * 1024))
  out:close()
end

local r, w = mp.Pipe(false)
local p = mp.Process{target = producer, args = {w}}
p:start()
w:close()

-- TODO: this order deadlocks.
p:join()
local data = r:recv_bytes()

print("received:", #data, "bytes")
print("child exit code:", p.exitcode)
