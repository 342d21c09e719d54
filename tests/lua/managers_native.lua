-- start methods: fork spawn forkserver
-- Managers and the native shared objects: proxies travel through an
-- mp.Queue; a custom manager serves native objects (mp.Queue, mp.Lock,
-- mp.Event) whose state other processes change, and a proxy call that
-- waits on one is polled in the server without stopping it from serving
-- others (docs/design/managers.md).
local mp = require "multiprocessing"

local function check(cond, ...)
  if not cond then error(table.concat({...}, " "), 2) end
end

-- Proxies through a Queue.
do
  local m <close> = mp.Manager()
  local d = m:dict()
  local l = m:list()
  local q = mp.Queue()
  local p = mp.Process{target = function(q)
    local got = q:get(true, 10)
    got.dict.from_child = true
    got.list:append("from child")
  end, args = {q}}
  p:start()
  q:put({dict = d, list = l})
  p:join(20)
  check(p.exitcode == 0, "child failed")
  check(d.from_child == true and l[1] == "from child", repr(d:copy()), repr(l:copy()))
end

-- Native objects as referents.
do
  local queue, lock, event = mp.Queue(), mp.Lock(), mp.Event()
  local NM = mp.managers.BaseManager:extend("NativeManager")
  NM.register("queue", function() return queue end)
  NM.register("lock", function() return lock end)
  NM.register("event", function() return event end)
  NM.register("echo", function() return {say = function(_, x) return x end} end)
  local m <close> = NM()
  m:start()
  local rq, rl, re, echo = m:queue(), m:lock(), m:event(), m:echo()

  -- A get that waits for another process's put; the server serves others.
  local putter = mp.Process{target = function(queue) os.sleep(0.3); queue:put("late item") end, args = {queue}}
  putter:start()
  local r, w = mp.Pipe(false)
  local getter = mp.Process{target = function(rq, w) w:send(rq:get(true, 10)) end, args = {rq, w}}
  getter:start()
  os.sleep(0.1)
  local t0 = os.monotonic()
  check(echo:say("hi") == "hi", "served while a get waits")
  check(os.monotonic() - t0 < 0.25, "not stuck behind the waiting get")
  check(r:poll(10) and r:recv() == "late item")
  getter:join(10); putter:join(10)
  local ok, err = pcall(rq.get, rq, true, 0.1)
  check(not ok and mp.isinstance(err, mp.Empty), tostring(err))
  ok, err = pcall(rq.get_nowait, rq)
  check(not ok and mp.isinstance(err, mp.Empty), tostring(err))

  -- A native lock held by another process: acquire polls, with a timeout.
  local holding, release = mp.Event(), mp.Event()
  local holder = mp.Process{target = function(lock, holding, release)
    lock:acquire(); holding:set(); release:wait(10); lock:release()
  end, args = {lock, holding, release}}
  holder:start()
  check(holding:wait(10))
  check(rl:acquire(true, 0.1) == false, "times out while held")
  release:set()
  check(rl:acquire(true, 10) == true, "acquired once released")
  rl:release()
  holder:join(10)

  -- A native event set by another process.
  local setter = mp.Process{target = function(event) os.sleep(0.2); event:set() end, args = {event}}
  setter:start()
  check(re:wait(10) == true)
  setter:join(10)
end
check(#mp.active_children() == 0)
print("managers_native ok", mp.get_start_method())
