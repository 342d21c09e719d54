-- Queues between processes, under every start method: 1,000,000 messages
-- from 2 producers to 2 consumers (exactly once, by count and checksum), a
-- producer that exits before the reader starts (nothing lost, no hang at
-- exit), huge messages, queues passed through queues and pipes,
-- JoinableQueue across processes.  No child or /dev/shm entry is left.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

-- Segments named after this process (other programs may use /dev/shm
-- meanwhile, so only our own names count).
local function shm_entries()
  local p = io.popen("ls /dev/shm 2>/dev/null | grep -c '^luamp-" .. os.getpid() .. "-'")
  local n = tonumber(p:read("a")) or 0
  p:close()
  return n
end
local shm_before = shm_entries()

local function join_ok(p, timeout)
  p:join(timeout or 60)
  assert(p.exitcode == 0, p.name .. " exit code " .. tostring(p.exitcode))
end

-- 1,000,000 messages, 2 producers -> 2 consumers.
do
  local N = 500000  -- per producer
  local q = mp.Queue()
  local results = mp.Queue()
  local function producer(q, base, n)
    for i = 1, n do q:put(base + i) end
  end
  local function consumer(q, results)
    local count, sum = 0, 0
    while true do
      local v = q:get()
      if v == nil then break end
      count = count + 1
      sum = sum + v
    end
    results:put({count, sum})
  end
  local t0 = os.monotonic()
  local procs = {}
  for k = 1, 2 do
    procs[#procs + 1] = mp.Process{target = consumer, args = {q, results}}
    procs[#procs + 1] = mp.Process{target = producer, args = {q, k * 10000000, N}}
  end
  for _, p in ipairs(procs) do p:start() end
  join_ok(procs[2]); join_ok(procs[4])
  q:put(nil); q:put(nil)
  local count, sum = 0, 0
  for _ = 1, 2 do
    local r = results:get(true, 60)
    count, sum = count + r[1], sum + r[2]
  end
  join_ok(procs[1]); join_ok(procs[3])
  local expected = 0
  for k = 1, 2 do expected = expected + k * 10000000 * N + N * (N + 1) // 2 end
  assert(count == 2 * N, "count " .. count)
  assert(sum == expected, "checksum " .. sum .. " ~= " .. expected)
  assert(q:empty())
  local dt = os.monotonic() - t0
  assert(dt < 30, "1,000,000 messages took " .. dt .. " s")
  io.stderr:write(string.format("1,000,000 messages 2->2 in %.2f s (%s)\n", dt, mp.get_start_method()))
end

-- A producer that exits before anyone reads: join first (Python's
-- "joining processes that use queues" deadlock cannot happen), then get.
do
  local q = mp.Queue()
  local p = mp.Process{target = function(q)
    for i = 1, 1000 do q:put(i) end
    q:put(string.rep("X", 1000000))        -- inline
    q:put(string.rep("Y", 8 * 1024 * 1024)) -- its own segment
  end, args = {q}}
  p:start()
  p:join(20)
  assert(p.exitcode == 0, "the producer did not exit by itself")
  for i = 1, 1000 do assert(q:get(true, 5) == i) end
  assert(#q:get(true, 5) == 1000000)
  local y = q:get(true, 5)
  assert(#y == 8 * 1024 * 1024 and y:sub(-1) == "Y")
end

-- Huge message: 256 MiB from a child.
do
  local q = mp.Queue()
  local p = mp.Process{target = function(q)
    q:put(string.rep("abcdefgh", 32 * 1024 * 1024))
  end, args = {q}}
  p:start()
  local s = q:get(true, 60)
  assert(#s == 256 * 1024 * 1024 and s:sub(1, 8) == "abcdefgh")
  s = nil
  join_ok(p)
  collectgarbage()
end

-- Queues through a Pipe and through a Queue, to a running child.
do
  local ctl_a, ctl_b = mp.Pipe()
  local carrier = mp.Queue()
  local p = mp.Process{target = function(ctl, carrier)
    local q1 = ctl:recv()          -- a Queue sent over a Pipe
    local q2 = carrier:get()       -- a JoinableQueue sent through a Queue
    q1:put("q1 from child")
    q2:put("q2 from child")
    ctl:send("done")
  end, args = {ctl_b, carrier}}
  p:start()
  local q1, q2 = mp.Queue(), mp.JoinableQueue()
  ctl_a:send(q1)
  carrier:put(q2)
  assert(ctl_a:recv() == "done")
  assert(q1:get(true, 10) == "q1 from child")
  assert(q2:get(true, 10) == "q2 from child")
  join_ok(p)
end

-- JoinableQueue: workers mark tasks done; join returns when all are.
do
  local jq = mp.JoinableQueue()
  local done = mp.Queue()
  local function worker(jq, done)
    while true do
      local item = jq:get()
      if item == nil then jq:task_done() break end
      done:put(item * item)
      jq:task_done()
    end
  end
  local ws = {}
  for i = 1, 3 do
    ws[i] = mp.Process{target = worker, args = {jq, done}}
    ws[i]:start()
  end
  for i = 1, 30 do jq:put(i) end
  for _ = 1, 3 do jq:put(nil) end
  assert(jq:join(30) == true, "join timed out")
  local sum = 0
  for _ = 1, 30 do sum = sum + done:get(true, 5) end
  assert(sum == 9455)
  for _, w in ipairs(ws) do join_ok(w) end
end

assert(#mp.active_children() == 0)
collectgarbage(); collectgarbage()
if shm_entries() ~= shm_before then os.execute("ls -la /dev/shm") end
assert(shm_entries() == shm_before, "a segment was left in /dev/shm")
print("ok")
