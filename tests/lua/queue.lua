-- Queues in one process: Python's methods, nil, Empty/Full with and without
-- timeouts, qsize/empty/full, close, JoinableQueue task_done/join,
-- SimpleQueue, fd objects refused, big messages (own segment) and a small
-- ring that wraps.  Leaves nothing in /dev/shm.
local mp = require "multiprocessing"

local function fails(pattern, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(tostring(err):find(pattern), tostring(err))
  return err
end

-- Segments named after this process (other programs may use /dev/shm
-- meanwhile, so only our own names count).
local function shm_entries()
  local p = io.popen("ls /dev/shm 2>/dev/null | grep -c '^luamp-" .. os.getpid() .. "-'")
  local n = tonumber(p:read("a")) or 0
  p:close()
  return n
end
local shm_before = shm_entries()

do
  local q = mp.Queue()
  assert(q:empty() and q:qsize() == 0 and not q:full())
  q:put({42, nil, "hello"})
  q:put(nil)                 -- allowed: get returns nil
  q:put(false)
  assert(q:qsize() == 3 and not q:empty())
  assert(repr(q:get()) == '{42, nil, "hello"}')
  assert(q:get() == nil)
  assert(q:get() == false)
  -- Empty: non-blocking, and after a timeout.
  local err = fails("Empty", q.get, q, false)
  assert(mp.isinstance(err, mp.Empty))
  fails("Empty", q.get_nowait, q)
  local t0 = os.monotonic()
  err = fails("Empty", q.get, q, true, 0.2)
  local dt = os.monotonic() - t0
  assert(dt >= 0.19 and dt < 2, dt)
  fails("'timeout' must be a non%-negative number", q.get, q, true, -1)
  -- get(false, t): the timeout is ignored, as in Python.
  fails("Empty", q.get, q, false, 5)
  -- FIFO order.
  for i = 1, 1000 do q:put(i) end
  for i = 1, 1000 do assert(q:get() == i) end
  q:close()
  q:close()  -- idempotent
  fails("closed Queue", q.put, q, 1)
  fails("closed Queue", q.get, q)
  assert(tostring(q) == "<Queue closed>")
end

-- maxsize: Full.
do
  local q = mp.Queue(2)
  q:put(1); q:put(2)
  assert(q:full() and q:qsize() == 2)
  local err = fails("Full", q.put, q, 3, false)
  assert(mp.isinstance(err, mp.Full))
  fails("Full", q.put_nowait, q, 3)
  local t0 = os.monotonic()
  fails("Full", q.put, q, 3, true, 0.2)
  assert(os.monotonic() - t0 >= 0.19)
  assert(q:get() == 1)
  q:put_nowait(3)
  assert(q:get_nowait() == 2 and q:get_nowait() == 3)
  q:join_thread(); q:cancel_join_thread()  -- no feeder thread: no-ops
end

-- Values of every kind cross; fd objects are refused with a clear error.
do
  local q = mp.Queue()
  local t = {1, 2.5, "s", true, {nested = {x = 1}}, [10] = "hole"}
  q:put(t)
  local u = q:get()
  assert(u[2] == 2.5 and math.type(u[1]) == "integer" and u[5].nested.x == 1 and u[10] == "hole" and u[6] == nil)
  local f = function(x) return x * 2 end
  q:put(f)
  assert(q:get()(21) == 42)
  local a, b = mp.Pipe()
  fails("cannot send a Connection through this channel", q.put, q, {conn = a})
  assert(q:empty())
  a:close(); b:close()
  -- A queue travels through a queue (by reference to the same ring).
  local inner = mp.Queue()
  q:put(inner)
  local same = q:get()
  same:put("via the copy")
  assert(inner:get() == "via the copy")
end

-- JoinableQueue.
do
  local jq = mp.JoinableQueue()
  for i = 1, 3 do jq:put(i) end
  assert(jq:join(0.05) == false)        -- luamp's optional timeout
  for _ = 1, 3 do jq:get(); jq:task_done() end
  assert(jq:join() == true)
  fails("task_done%(%) called too many times", jq.task_done, jq)
  assert(mp.Queue().task_done == nil)
end

-- SimpleQueue.
do
  local sq = mp.SimpleQueue()
  assert(sq:empty())
  sq:put(nil); sq:put("x")
  assert(not sq:empty())
  assert(sq:get() == nil and sq:get() == "x" and sq:empty())
  assert(sq.get_nowait == nil and sq.qsize == nil)
  sq:close()
  fails("closed SimpleQueue", sq.put, sq, 1)
end

-- Big messages: larger than the ring's inline limit (own segment), and a
-- ring that is smaller than the message.
do
  local q = mp.Queue(0, {ring_size = 4096})
  local big = string.rep("0123456789", 100000)  -- 1 MB, ring 4 KiB
  q:put(big)
  q:put("small after big")
  assert(q:get() == big)
  assert(q:get() == "small after big")
  -- Wrap around many times with messages of varied sizes.
  for round = 1, 50 do
    for i = 1, 7 do q:put(string.rep(string.char(64 + i), (round * i * 37) % 500)) end
    for i = 1, 7 do
      local s = q:get()
      assert(#s == (round * i * 37) % 500 and (s == "" or s:byte(1) == 64 + i))
    end
  end
  -- A full small ring: put waits for room (and times out with Full).
  local filled = 0
  while pcall(q.put_nowait, q, string.rep("z", 300)) do filled = filled + 1 end
  assert(filled > 5 and filled < 14, filled)
  fails("Full", q.put, q, string.rep("z", 300), true, 0.05)
  for _ = 1, filled do q:get() end
  fails("ring_size", mp.Queue, 0, {ring_size = 10})
end

collectgarbage(); collectgarbage()
assert(shm_entries() == shm_before, "a queue segment was left in /dev/shm")
print("ok")
