-- 81_benchmarks: INC-mp_benchmarks, the historical "mp_benchmarks.py" of
-- Python 2.6's multiprocessing page (Appendix A of the catalog).  Python's
-- program times how many objects per second pass through queues and pipes,
-- how fast sequences and locks are, and prints, for each benchmark,
--   <n> objects passed through connection in <t> seconds
--   average number/sec: <rate>
-- doubling <n> until one run takes about a second.  This is a small, fast
-- version (a tenth of a second per benchmark) of the rows luamp can run:
-- objects through an mp.Queue and a Pipe, sequence reads of a table, an
-- mp.Array with and without its lock and a manager's list, acquire and
-- release of mp.Lock, mp.RLock and a manager's Lock, and a Condition
-- ping-pong between two processes (plus process starts, not in Python's);
-- the timings are not checkable, so the expected output has {{int}} and
-- {{num}} where they go; what is checked is that every benchmark runs and
-- that what was sent arrived.  Python's rows for threads have no Lua
-- counterpart (Lua has no threads), and Python's "gc.disable()" is not
-- needed.  For real measurements use scripts/bench/run.
-- start methods: fork
local mp = require "multiprocessing"

local DURATION = 0.1  -- seconds; Python's used 1

-- Runs `once(n)` (which returns the seconds it took) with n = 1, 2, 4, ...
-- until a run takes DURATION, then prints the two lines of the original.
local function benchmark(what, once)
  local n = 1
  while true do
    local elapsed = once(n)
    if elapsed >= DURATION then
      print(string.format("%d %s in %.4f seconds", n, what, elapsed))
      print(string.format("average number/sec: %.1f", n / elapsed))
      return
    end
    n = n * 2
  end
end

-- Python: test_pipespeed.  A child sends n 256-byte strings then "STOP";
-- the parent receives them and checks they all arrived.
local function pipe_objects(n)
  local a, b = mp.Pipe()
  local p = mp.Process{target = function(conn, count)
    local s = string.rep("0", 256)
    for _ = 1, count do conn:send(s) end
    conn:send("STOP")
  end, args = {b, n}}
  local t = os.monotonic()
  p:start()
  local got = 0
  while a:recv() ~= "STOP" do got = got + 1 end
  local elapsed = os.monotonic() - t
  p:join()
  a:close(); b:close()
  assert(got == n, "lost objects")
  return elapsed
end

-- Python: test_queuespeed.  The same through an mp.Queue; the child waits
-- for the parent's Condition before it starts (Python's handshake), so the
-- timing does not include the child's start.
local function queue_objects(n)
  local q, c = mp.Queue(), mp.Condition()
  local p = mp.Process{target = function(queue, cond, count)
    local s = string.rep("0", 256)
    cond:acquire()
    cond:notify()
    cond:release()
    for _ = 1, count do queue:put(s) end
    queue:put("STOP")
  end, args = {q, c, n}}
  c:acquire()
  p:start()
  c:wait(30)
  c:release()
  local t = os.monotonic()
  local got = 0
  while q:get(true, 30) ~= "STOP" do got = got + 1 end
  local elapsed = os.monotonic() - t
  p:join()
  assert(got == n, "lost objects")
  return elapsed
end

-- The same with raw bytes: send_bytes/recv_bytes skip the codec.
local function pipe_bytes(n)
  local a, b = mp.Pipe()
  local p = mp.Process{target = function(conn, count)
    local s = string.rep("0", 256)
    for _ = 1, count do conn:send_bytes(s) end
    conn:send_bytes("STOP")
  end, args = {b, n}}
  local t = os.monotonic()
  p:start()
  local got = 0
  while a:recv_bytes() ~= "STOP" do got = got + 1 end
  local elapsed = os.monotonic() - t
  p:join()
  a:close(); b:close()
  assert(got == n, "lost messages")
  return elapsed
end

-- Python: test_seqspeed on a plain list; here a plain Lua table (reading
-- item 5, as the original does).
local function table_reads(n)
  local seq = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
  local sum = 0
  local t = os.monotonic()
  for _ = 1, n do sum = sum + seq[6] end
  local elapsed = os.monotonic() - t
  assert(sum == 5 * n)
  return elapsed
end

-- Python: test_seqspeed on an mp.Array, without and with its lock.
local function array_reads(lock)
  return function(n)
    local arr = mp.Array("i", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {lock = lock})
    local sum = 0
    local t = os.monotonic()
    if lock then
      for _ = 1, n do
        local _ <close> = arr:get_lock():guard()
        sum = sum + arr[6]
      end
    else
      for _ = 1, n do sum = sum + arr[6] end
    end
    local elapsed = os.monotonic() - t
    assert(sum == 5 * n)
    return elapsed
  end
end

-- Python: test_lockspeed on mp.Lock and mp.RLock.
local function lock_speed(make)
  return function(n)
    local l = make()
    local t = os.monotonic()
    for _ = 1, n do
      l:acquire()
      l:release()
    end
    return os.monotonic() - t
  end
end

-- Python: test_conditionspeed.  A child and the parent notify each other
-- in turn on one Condition: one iteration is a round trip of two
-- wake-ups.  Each side notifies and then waits at once, so a wake-up must
-- go to the process that was waiting, never to the notifier's own wait.
local function condition_pingpong(n)
  local c = mp.Condition()
  local p = mp.Process{target = function(cond, count)
    cond:acquire()
    cond:notify()               -- ready
    for _ = 1, count do
      cond:wait(30)
      cond:notify()
    end
    cond:release()
  end, args = {c, n}}
  c:acquire()
  p:start()
  c:wait(30)
  local t = os.monotonic()
  for _ = 1, n do
    c:notify()
    assert(c:wait(30), "a wake-up was lost")
  end
  local elapsed = os.monotonic() - t
  c:release()
  p:join(30)
  assert(p.exitcode == 0)
  return elapsed
end

-- Python: test_seqspeed on a manager's list: every read is a request to
-- the manager's server process and its reply.
local function manager_list_reads(m)
  return function(n)
    local seq = m:list({0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
    local sum = 0
    local t = os.monotonic()
    for _ = 1, n do sum = sum + seq[6] end
    local elapsed = os.monotonic() - t
    assert(sum == 5 * n)
    return elapsed
  end
end

-- Python: test_lockspeed on a manager's Lock (acquire and release are two
-- requests to the server).
local function manager_lock(m)
  return function(n)
    local lock = m:Lock()
    local t = os.monotonic()
    for _ = 1, n do
      lock:acquire()
      lock:release()
    end
    return os.monotonic() - t
  end
end

-- Not in the original: how long starting and joining a process takes.
local function process_starts(n)
  local t = os.monotonic()
  for _ = 1, n do
    local p = mp.Process{target = function() end}
    p:start()
    p:join()
    assert(p.exitcode == 0)
  end
  return os.monotonic() - t
end

print("\t######## testing mp.Queue")
benchmark("objects passed through the queue", queue_objects)
print("\t######## testing objects through a pipe")
benchmark("objects passed through connection", pipe_objects)
print("\t######## testing bytes through a pipe")
benchmark("messages passed through connection", pipe_bytes)
print("\t######## testing sequence access")
benchmark("iterations reading seq[6] of a table", table_reads)
print("\t######## testing sequence access of mp.Array (lock=false)")
benchmark("iterations reading seq[6] of an Array", array_reads(false))
print("\t######## testing sequence access of mp.Array (lock=true)")
benchmark("iterations reading seq[6] of an Array under its lock", array_reads(true))
print("\t######## testing mp.Lock")
benchmark("iterations of acquire() and release()", lock_speed(mp.Lock))
print("\t######## testing mp.RLock")
benchmark("iterations of acquire() and release()", lock_speed(mp.RLock))
print("\t######## testing mp.Condition")
benchmark("round trips of notify() and wait()", condition_pingpong)
do
  local m <close> = mp.Manager()
  print("\t######## testing sequence access through a manager")
  benchmark("iterations reading seq[6] of a list proxy", manager_list_reads(m))
  print("\t######## testing a manager's Lock")
  benchmark("iterations of acquire() and release()", manager_lock(m))
end
print("\t######## testing process start and join (" .. mp.get_start_method() .. ")")
benchmark("processes started and joined", process_starts)
