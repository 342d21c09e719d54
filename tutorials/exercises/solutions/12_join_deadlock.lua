-- Exercise 12, a solution: read what the child sends, then join it.  (A
-- join with a timeout, p:join(5), would not hang either, but the child
-- would still be stuck: reading first is the fix.)
local mp = require "multiprocessing"

local function producer(out)
  out:send_bytes(string.rep("x", 4 * 1024 * 1024))
  out:close()
end

local r, w = mp.Pipe(false)
local p = mp.Process{target = producer, args = {w}}
p:start()
w:close()

local data = r:recv_bytes()
p:join()

print("received:", #data, "bytes")
print("child exit code:", p.exitcode)
