-- 82_synchronize_tour: INC-mp_synchronize, the historical "mp_synchronize.py"
-- of Python 2.6's multiprocessing page (Appendix A of the catalog): a tour
-- of the synchronization types, in seven sub-tests each announced by a tab
-- and "########".  The original prints whatever the timing gives (counts
-- polled every 0.08 s, TIMEOUT lines, dots while joining, Condition and
-- Process reprs); here each sub-test prints what does not depend on timing,
-- and checks the rest (lines of processes that run at the same time are in
-- unordered blocks).  Sleeps are far shorter than the original's.
--
-- Python's "threads" mode (multiprocessing.dummy) is not carried over: Lua
-- has no threads.  Its "manager" mode is the last section: the same
-- test_value with a manager's Value and Lock.  freeze_support() has nothing
-- to do in luamp.  Children seed math.random themselves (a forked child
-- starts with its parent's random state), as the original calls
-- random.seed().
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function seed() math.randomseed(os.getpid(), math.floor(os.monotonic() * 1e6)) end

-- test_value: ten processes count themselves down in a shared Value under a
-- Lock; the parent polls until the count is 0.
local function value_func(running, mutex)
  seed()
  os.sleep(math.random() * 0.2)
  local _ <close> = mutex:guard()
  print(mp.current_process().name .. " has finished")
  running.value = running.value - 1
end

local function test_value(ns)
  local TASKS = 10
  local running = ns.Value("i", TASKS)
  local mutex = ns.Lock()
  local procs = {}
  for i = 1, TASKS do
    procs[i] = mp.Process{target = value_func, args = {running, mutex}}
    procs[i]:start()
  end
  local deadline = os.monotonic() + 30
  while os.monotonic() < deadline do
    local n
    do
      local _ <close> = mutex:guard()
      n = running.value
    end
    if n == 0 then break end
    os.sleep(0.08)
  end
  print("No more running processes")
  for _, p in ipairs(procs) do p:join(30) end
end

-- test_queue: a child puts squares, then "STOP"; the parent gets with a
-- timeout.  The child waits for an Event that the parent sets after its
-- first get has timed out, so exactly one TIMEOUT is seen.
local function queue_func(q, go)
  go:wait(30)
  for i = 0, 9 do
    os.sleep(math.random() * 0.01)
    q:put(i * i)
  end
  q:put("STOP")
end

local function test_queue()
  local q, go = mp.Queue(), mp.Event()
  local p = mp.Process{target = queue_func, args = {q, go}}
  p:start()
  local got = {}
  while true do
    local ok, v = pcall(q.get, q, true, 0.3)
    if not ok then
      assert(mp.isinstance(v, mp.Empty), v)
      print("TIMEOUT")
      go:set()
    elseif v == "STOP" then
      break
    else
      got[#got + 1] = v
    end
  end
  print(repr(got))
  p:join(30)
end

-- test_condition: the Condition's lock is an RLock, so the parent can
-- acquire it twice; wait() releases it completely until the child notifies.
local function condition_func(cond)
  cond:acquire()
  print("child has the condition")
  os.sleep(0.2)
  print("child is notifying")
  cond:notify()
  cond:release()
end

local function test_condition()
  local cond = mp.Condition()
  local p = mp.Process{target = condition_func, args = {cond}}
  cond:acquire()
  cond:acquire()
  print("main has acquired the condition twice")
  p:start()
  print("main is waiting")
  print("notified:", cond:wait(30))
  print("main has woken up")
  cond:release()
  cond:release()
  p:join(30)
end

-- test_semaphore: at most three of ten processes run at once; each counts
-- itself in and out under a Lock and records the largest count seen.
local function semaphore_func(sema, mutex, running, highest)
  seed()
  sema:acquire()
  do
    local _ <close> = mutex:guard()
    running.value = running.value + 1
    if running.value > highest.value then highest.value = running.value end
  end
  os.sleep(math.random() * 0.05)
  do
    local _ <close> = mutex:guard()
    running.value = running.value - 1
  end
  sema:release()
end

local function test_semaphore()
  local sema, mutex = mp.Semaphore(3), mp.RLock()
  local running, highest = mp.Value("i", 0), mp.Value("i", 0)
  local procs = {}
  for i = 1, 10 do
    procs[i] = mp.Process{target = semaphore_func, args = {sema, mutex, running, highest}}
    procs[i]:start()
  end
  for _, p in ipairs(procs) do p:join(30) end
  print("at most 3 ran at once:", highest.value >= 1 and highest.value <= 3)
  print("all finished:", running.value == 0)
end

-- test_join_timeout: join(timeout) returns while the child still runs.
local function join_timeout_func()
  print("child sleeping")
  os.sleep(0.55)
  print("child terminating")
end

local function test_join_timeout()
  local p = mp.Process{target = join_timeout_func}
  p:start()
  print("waiting for process to finish")   -- the child may print first
  local waits = 0
  while true do
    p:join(0.1)
    if not p:is_alive() then break end
    waits = waits + 1
  end
  print("join(0.1) returned early several times:", waits >= 2)
  print("exit code:", p.exitcode)
end

-- test_event: five processes wait on one Event; each tells the parent it is
-- waiting (through a Queue) so the parent sets the Event after all five.
local function event_func(event, ready)
  print(mp.current_process().name .. " is waiting")
  ready:put(true)
  event:wait(30)
  print(mp.current_process().name .. " has woken up")
end

local function test_event()
  local event, ready = mp.Event(), mp.Queue()
  local procs = {}
  for i = 1, 5 do
    procs[i] = mp.Process{target = event_func, args = {event, ready}}
    procs[i]:start()
  end
  for _ = 1, 5 do ready:get(true, 30) end
  print("main is setting event")
  event:set()
  for _, p in ipairs(procs) do p:join(30) end
end

-- test_sharedvalues: Values and Arrays arrive in a child equal to plain
-- copies sent along.
local function sharedvalues_func(values, arrays, plain_values, plain_arrays)
  for i, v in ipairs(values) do assert(v.value == plain_values[i][2]) end
  for i, a in ipairs(arrays) do
    local t = a:totable()
    assert(#t == #plain_arrays[i][2])
    for k = 1, #t do assert(t[k] == plain_arrays[i][2][k]) end
  end
  print("Tests passed")
end

local function test_sharedvalues()
  local value_specs = {{"i", 10}, {"h", -2}, {"d", 1.25}}
  local ints, doubles, shorts = {}, {}, {}
  for i = 0, 99 do ints[#ints + 1] = i; doubles[#doubles + 1] = 0.25 * i end
  for i = 0, 999 do shorts[#shorts + 1] = i end
  local array_specs = {{"i", ints}, {"d", doubles}, {"H", shorts}}
  local values, arrays = {}, {}
  for i, s in ipairs(value_specs) do values[i] = mp.Value(s[1], s[2]) end
  for i, s in ipairs(array_specs) do arrays[i] = mp.Array(s[1], s[2], {lock = false}) end
  local p = mp.Process{target = sharedvalues_func, args = {values, arrays, value_specs, array_specs}}
  p:start()
  p:join(30)
  assert(p.exitcode == 0)
end

local mp_namespace = {Value = mp.Value, Lock = mp.Lock}
for _, test in ipairs {
  {"test_value", function() test_value(mp_namespace) end},
  {"test_queue", test_queue},
  {"test_condition", test_condition},
  {"test_semaphore", test_semaphore},
  {"test_join_timeout", test_join_timeout},
  {"test_event", test_event},
  {"test_sharedvalues", test_sharedvalues},
} do
  print("\n\t######## " .. test[1] .. "\n")
  test[2]()
end
print("active children:", #mp.active_children())

-- Python's "manager" mode: the same test_value, with the shared Value and
-- the Lock living in a manager's server process (proxies).
do
  local m <close> = mp.Manager()
  print("\n\t######## test_value (manager)\n")
  test_value({Value = function(...) return m:Value(...) end, Lock = function() return m:Lock() end})
end
