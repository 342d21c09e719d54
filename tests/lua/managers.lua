-- start methods: fork spawn forkserver
-- SyncManager and its proxies under each start method: every proxy method
-- of dict, list, Namespace, Value, Array, Queue/JoinableQueue, Lock, RLock,
-- Semaphore, BoundedSemaphore, Condition, Event, Barrier; nesting; proxies
-- passed to children in args and through Pipes; errors across the manager;
-- reference counting; shutdown reaps the server.
local mp = require "multiprocessing"

local function check(cond, ...)
  if not cond then error(table.concat({...}, " "), 2) end
end
local function eq(a, b, what) check(repr(a) == repr(b), what or "", "expected", repr(b), "got", repr(a)) end
local function raises(cls, f, ...)
  local ok, err = pcall(f, ...)
  check(not ok, "expected an error")
  if cls then check(mp.isinstance(err, cls), "wrong error:", tostring(err)) end
  return err
end

-- Open sockets of this process: manager connections.  (Under forkserver a
-- Process sentinel is a socket too, kept until the Process object is
-- closed, so only fork and spawn are checked.)
local function fd_count()
  if mp.get_start_method() == "forkserver" then return 0 end
  local n = 0
  local pipe = io.popen("ls -l /proc/" .. os.getpid() .. "/fd")
  for line in pipe:lines() do
    if line:find("socket:", 1, true) then n = n + 1 end
  end
  pipe:close()
  return n
end
do  -- start a child first: the fork server (forkserver method) keeps its sockets
  local warm = mp.Process{target = function() end}
  warm:start(); warm:join(); warm:close()
end
local fds_before = fd_count()

local server_pid
do
  local m <close> = mp.Manager()
  check(m.address ~= nil, "address")
  server_pid = m._process.pid
  check(tostring(m):find("SyncManager", 1, true), tostring(m))

  -- dict
  local d = m:dict({a = 1})
  d.b = 2
  d[1] = "one"
  d[0.25] = false
  eq(d, {"one", [0.25] = false, a = 1, b = 2}, "dict repr")
  eq(#d, 4)
  eq(d.a, 1); eq(d.zzz, nil)
  d.a = nil
  eq(#d, 3, "nil deletes")
  eq(d:keys(), {"b", 1, 0.25}, "keys in insertion order")
  eq(d:values(), {2, "one", false})
  eq(d:items(), {{"b", 2}, {1, "one"}, {0.25, false}})
  eq(d:get("b"), 2); eq(d:get("nope", 7), 7); eq(d:get("nope"), nil)
  eq(d:pop("b"), 2); eq(d:pop("b", "dflt"), "dflt")
  raises(nil, d.pop, d, "b")
  d:update({x = 10, y = 20})
  eq(d:setdefault("x", 99), 10); eq(d:setdefault("z", 3), 3)
  local k, v = d:popitem()
  eq({k, v}, {"z", 3}, "popitem is LIFO")
  local seen = {}
  for kk, vv in pairs(d) do seen[#seen + 1] = {kk, vv} end
  eq(seen, {{1, "one"}, {0.25, false}, {"x", 10}, {"y", 20}}, "pairs")
  local copy = d:copy()
  check(getmetatable(copy) == nil, "copy is a plain table")
  eq(copy, {"one", [0.25] = false, x = 10, y = 20})
  d:clear()
  eq(#d, 0); raises(nil, d.popitem, d)

  -- list
  local l = m:list({3, 1, 2})
  eq(#l, 3); eq(l[1], 3); eq(l[4], nil, "read past the end")
  l[1] = 30
  raises(nil, function() l[5] = 1 end)
  l:append(4); l:extend({5, 6})
  eq(l, {30, 1, 2, 4, 5, 6})
  l:insert(1, 0); l:insert(100, 7)
  eq(l, {0, 30, 1, 2, 4, 5, 6, 7})
  eq(l:pop(), 7); eq(l:pop(1), 0)
  l:remove(30); raises(nil, l.remove, l, 30)
  eq(l:index(4), 3); raises(nil, l.index, l, 99)
  l:append(4); eq(l:count(4), 2)
  l:reverse(); eq(l, {4, 6, 5, 4, 2, 1})
  l:sort(); eq(l, {1, 2, 4, 4, 5, 6})
  l:sort(function(a, b) return a > b end); eq(l, {6, 5, 4, 4, 2, 1})
  eq(l:totable(2, 3), {5, 4}); eq(l:totable(5, 100), {2, 1})
  local n = 0
  for i, x in ipairs(l) do n = n + 1; check(x == l:copy()[i]) end
  eq(n, 6, "ipairs")
  local lp = {}
  for i, x in pairs(l) do lp[i] = x end
  eq(lp, {6, 5, 4, 4, 2, 1})
  local tl = m:list({{1, 2}, "x"})
  eq(tl:index({1, 2}), 1, "tables compare by value"); tl:remove({1, 2}); eq(tl, {"x"})
  l:clear(); eq(#l, 0); raises(nil, l.pop, l)
  local holes = m:list({42, nil, "hello", n = 3})
  eq(#holes, 3); eq(holes[2], nil); eq(holes[3], "hello")

  -- Namespace
  local ns = m:Namespace()
  ns.x = 10; ns.y = "hello"; ns._private = "mine"
  eq(ns.x, 10); eq(ns._private, "mine")
  eq(tostring(ns), 'Namespace(x = 10, y = "hello")')
  ns.x = nil; eq(ns.x, nil)

  -- Value and Array
  local val = m:Value("d", 1.5)
  eq(val.value, 1.5); val.value = 2; eq(val:get(), 2.0); val:set(3.25); eq(val.value, 3.25)
  raises(nil, function() m:Value("i", 1.5) end)
  local arr = m:Array("i", {1, 2, 3})
  eq(#arr, 3); arr[2] = 20; eq(arr[2], 20); eq(arr[4], nil)
  eq(arr:totable(), {1, 20, 3}); eq(tostring(arr), "{1, 20, 3}")
  raises(nil, function() arr[4] = 1 end)
  eq(m:Array("d", 2):totable(), {0.0, 0.0})

  -- Queue
  local q = m:Queue()
  check(q:empty()); q:put(1); q:put_nowait({2, nil, 3}); q:put(nil)
  eq(q:qsize(), 3); eq(q:get(), 1); eq(q:get_nowait(), {2, nil, 3}); eq(q:get(), nil)
  local err = raises(mp.Empty, q.get_nowait, q)
  check(err.traceback and err.traceback:find("manager server", 1, true), "server traceback")
  raises(mp.Empty, q.get, q, true, 0.05)
  raises(mp.Empty, q.get, q, false)
  local bq = m:Queue(1)
  bq:put(1); check(bq:full()); raises(mp.Full, bq.put, bq, 2, true, 0.05); raises(mp.Full, bq.put_nowait, bq, 2)
  local jq = m:JoinableQueue()
  jq:put("t"); eq(jq:get(), "t"); jq:task_done(); eq(jq:join(1), true)
  raises(nil, jq.task_done, jq)

  -- Locks and semaphores
  local lock = m:Lock()
  check(lock:acquire()); check(lock:locked()); check(not lock:acquire(false)); check(not lock:acquire(true, 0.05))
  lock:release(); check(not lock:locked()); raises(nil, lock.release, lock)
  do local g <close> = lock:guard(); check(lock:locked()) end
  check(not lock:locked(), "guard releases")
  eq(tostring(lock), "<Lock(owner=None)>")
  local rl = m:RLock()
  check(rl:acquire()); check(rl:acquire()); rl:release(); check(rl:locked()); rl:release()
  raises(nil, rl.release, rl)
  local sem = m:Semaphore(2)
  check(sem:acquire()); check(sem:acquire()); check(not sem:acquire(false)); eq(sem:get_value(), 0)
  sem:release(); eq(sem:get_value(), 1); eq(tostring(sem), "<Semaphore(value=1)>")
  local bs = m:BoundedSemaphore(1)
  raises(nil, bs.release, bs)

  -- Event, Condition, Barrier (single process parts)
  local ev = m:Event()
  check(not ev:is_set()); check(ev:wait(0.05) == false); ev:set(); check(ev:is_set()); check(ev:wait())
  ev:clear(); check(not ev:is_set())
  local cond = m:Condition()
  raises(nil, cond.wait, cond, 0.01)
  cond:acquire(); check(cond:wait(0.05) == false); cond:notify(); cond:notify_all(); cond:release()
  local bar = m:Barrier(2)
  eq(bar.parties, 2); eq(bar.n_waiting, 0); eq(bar.broken, false)
  raises(mp.BrokenBarrierError, bar.wait, bar, 0.05)
  eq(bar.broken, true); bar:reset(); eq(bar.broken, false)
  bar:abort(); raises(mp.BrokenBarrierError, bar.wait, bar)

  -- Across processes: proxies in args, through a Pipe, nested.
  local shared = m:dict()
  local items = m:list()
  shared.bag = items           -- a list proxy stored in a dict proxy
  local r, w = mp.Pipe()
  local p = mp.Process{target = function(sh, conn, q, lock, ev, bar)
    local got = conn:recv()      -- a proxy through a Pipe
    got:append("via pipe")
    sh.bag:append("via nesting")
    sh.child = true
    q:put("from child")
    check(lock:acquire(true, 5))
    lock:release()
    ev:set()
    bar:reset()
    conn:send(sh)
  end, args = {shared, w, q, lock, ev, bar}}
  ev:clear()
  p:start()
  r:send(items)
  eq(q:get(true, 10), "from child")
  check(ev:wait(10))
  local back = r:recv()
  eq(back.child, true)
  p:join(10)
  eq(p.exitcode, 0)
  eq(items, {"via pipe", "via nesting"}, "changes visible through both")
  eq(shared.bag:copy(), {"via pipe", "via nesting"})
  eq(tostring(shared), '{bag = {"via pipe", "via nesting"}, child = true}')

  -- Blocking calls parked in the server do not stop other clients.
  local q2 = m:Queue()
  local started = m:Event()
  local c1 = mp.Process{target = function(q2, started) started:set(); q2:put(q2:get(true, 10) .. "!") end,
                        args = {q2, started}}
  c1:start()
  check(started:wait(10))
  os.sleep(0.05)
  q2:put("go")                   -- served while c1's get is parked
  c1:join(10)
  eq(q2:get(true, 5), "go!")

  -- Lock contention and a barrier across three processes.
  local counter = m:Value("i", 0)
  local lk = m:Lock()
  local bar3 = m:Barrier(3)
  local idx = m:list()
  local ps = {}
  for i = 1, 3 do
    ps[i] = mp.Process{target = function(lk, counter, bar3, idx)
      for _ = 1, 20 do
        local g <close> = lk:guard()
        counter.value = counter.value + 1
      end
      idx:append(bar3:wait(10))
    end, args = {lk, counter, bar3, idx}}
    ps[i]:start()
  end
  for i = 1, 3 do ps[i]:join(20); eq(ps[i].exitcode, 0) end
  eq(counter.value, 60)
  idx:sort(); eq(idx, {0, 1, 2})

  -- Condition across processes.
  local c2 = m:Condition()
  local state = m:dict()
  local waiter = mp.Process{target = function(c2, state)
    c2:acquire()
    local ok = c2:wait_for(function() return state.go end, 10)
    state.seen = ok
    c2:release()
  end, args = {c2, state}}
  waiter:start()
  os.sleep(0.1)
  c2:acquire(); state.go = true; c2:notify(); c2:release()
  waiter:join(10)
  eq(state.seen, true)

  -- Server failures are RemoteError; referent errors come back as themselves.
  raises(mp.RemoteError, d._callmethod, d, "no_such_method")
  raises(mp.RemoteError, lock._callmethod, lock, "_release_save")
  raises(mp.RemoteError, m._create, m, "NoSuchType")
  local e2 = raises(nil, d._callmethod, d, "pop", {"missing", n = 1})
  check(tostring(e2):find("key not found", 1, true), tostring(e2))

  -- Reference counting: collected proxies free their referents.
  collectgarbage(); collectgarbage()
  -- Settle first: earlier children's connections may still be closing.
  local before = m:_debug_info()
  for _ = 1, 100 do
    os.sleep(0.02)
    local now = m:_debug_info()
    if now == before then break end
    before = now
  end
  for _ = 1, 20 do local tmp = m:list({1}) end
  collectgarbage(); collectgarbage()
  m:_debug_info()                 -- carries the releases
  local after = m:_debug_info()
  eq(after, before, "temporary proxies freed")
  -- Proxies stored in the server (nested) are released when dropped there.
  local holder_dict = m:dict()
  for i = 1, 10 do holder_dict[i] = m:list({i}) end
  collectgarbage(); collectgarbage()
  eq(m:_debug_info(), before + 11, "nested lists alive while stored")
  holder_dict:clear()
  holder_dict = nil
  collectgarbage(); collectgarbage(); m:_debug_info()
  eq(m:_debug_info(), before, "nested lists freed once dropped")
  -- A child that exits releases what it held (its connection closes).
  local holder = mp.Process{target = function(x) x:append(1) end, args = {m:list()}}
  holder:start(); holder:join(10)
  holder = nil
  collectgarbage(); collectgarbage(); m:_debug_info()
  local t0 = os.monotonic()  -- the server sees the child's connection close a little later
  while m:_debug_info() ~= before and os.monotonic() - t0 < 5 do os.sleep(0.02) end
  eq(m:_debug_info(), before, "a finished child's references are released")
end
-- <close> shut the server down and reaped it.
for _, p in ipairs(mp.active_children()) do check(p.pid ~= server_pid, "server still a child") end
local ok = os.execute("kill -0 " .. server_pid .. " 2>/dev/null")
check(not ok, "server process still exists")
collectgarbage(); collectgarbage()
check(fd_count() == fds_before, "sockets back to the baseline: " .. fd_count() .. " vs " .. fds_before)
print("managers ok", mp.get_start_method())
