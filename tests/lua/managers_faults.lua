-- A manager's server against misbehaving clients (fork only: the test lowers
-- the server's write deadline, which a forked server inherits): a client
-- killed while its call is parked, garbage and half frames on the socket, a
-- wrong authkey, a client that never reads its replies, a server shut down
-- (and one killed) with clients connected.  The server keeps serving through
-- all of it, and nothing is left behind.
local mp = require "multiprocessing"
local managers = require "multiprocessing.managers"
local core = require "multiprocessing.core"

local function check(cond, ...)
  if not cond then error(table.concat({...}, " "), 2) end
end

managers.Server.write_timeout = 0.5
managers.Server.read_timeout = 0.5

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
  server_pid = m._process.pid
  local d = m:dict()
  local q = m:Queue()

  -- A client killed in the middle of a call (parked in q:get).
  local started = m:Event()
  local victim = mp.Process{target = function(q, started) started:set(); q:get() end, args = {q, started}}
  victim:start()
  check(started:wait(10))
  local t0 = os.monotonic()
  while select(2, m:_debug_info()) < 1 and os.monotonic() - t0 < 5 do os.sleep(0.01) end
  check(select(2, m:_debug_info()) == 1, "the victim's get is parked")
  victim:kill(); victim:join(5)
  t0 = os.monotonic()
  while select(2, m:_debug_info()) > 0 and os.monotonic() - t0 < 5 do os.sleep(0.01) end
  check(select(2, m:_debug_info()) == 0, "parked call dropped with its client")
  q:put("still works"); check(q:get(true, 5) == "still works")
  d.x = 1

  -- A call interrupted (Ctrl-C) while parked: the process moves to a new
  -- connection, keeps its objects, and the abandoned get is cancelled (it
  -- must not swallow the next item).  The interrupt is simulated: the
  -- request is sent, then "interrupted!" raised as the native wait would.
  do
    local real = core.manager_call
    local iq = m:Queue()
    core.manager_call = function(conn, payload)
      core.manager_call = real
      core.manager_send(conn, payload)
      error("interrupted!", 0)
    end
    local ok_i, err_i = pcall(iq.get, iq)
    core.manager_call = real
    check(not ok_i and err_i == "interrupted!", tostring(err_i))
    check(select(2, m:_debug_info()) == 0, "the abandoned get was cancelled")
    iq:put("item")
    check(iq:get(true, 5) == "item", "the next item is not swallowed")
    check(d.x == 1, "objects kept across the reconnect")
  end

  -- A process killed while holding a managed lock: the lock is freed.
  local lock = m:Lock()
  local holding = m:Event()
  local holder = mp.Process{target = function(lock, holding)
    lock:acquire(); holding:set(); os.sleep(30)
  end, args = {lock, holding}}
  holder:start()
  check(holding:wait(10))
  check(not lock:acquire(false), "held by the child")
  holder:kill(); holder:join(5)
  check(lock:acquire(true, 5), "freed when its holder died")
  lock:release()

  -- A process killed while waiting on a Condition does not eat a later
  -- notify; one killed in a Barrier's wait breaks the barrier.
  local cond, started2 = m:Condition(), m:Event()
  local cvictim = mp.Process{target = function(cond, s) cond:acquire(); s:set(); cond:wait() end,
                             args = {cond, started2}}
  cvictim:start(); check(started2:wait(10))
  os.sleep(0.1)
  cvictim:kill(); cvictim:join(5)
  local rr, ww = mp.Pipe(false)
  local ready2 = m:Event()
  local cwaiter = mp.Process{target = function(cond, s, w) cond:acquire(); s:set(); w:send(cond:wait(10)); cond:release() end,
                             args = {cond, ready2, ww}}
  cwaiter:start(); check(ready2:wait(10))
  os.sleep(0.1)
  cond:acquire(); cond:notify(); cond:release()
  check(rr:poll(10) and rr:recv() == true, "the live waiter got the notify")
  cwaiter:join(10)
  local bar = m:Barrier(2)
  local bvictim = mp.Process{target = function(b) b:wait() end, args = {bar}}
  bvictim:start()
  t0 = os.monotonic()
  while bar.n_waiting < 1 and os.monotonic() - t0 < 5 do os.sleep(0.01) end
  bvictim:kill(); bvictim:join(5)
  t0 = os.monotonic()
  while not bar.broken and os.monotonic() - t0 < 5 do os.sleep(0.01) end
  check(bar.broken and bar.n_waiting == 0, "a dead waiter breaks the barrier")

  -- Garbage, after a correct handshake and without one.
  local c = mp.connection.Client(m.address, {authkey = m.authkey})
  c:send_bytes("this is not a codec message")
  check(not pcall(c.recv_bytes, c) or true)
  c:close()
  local c2 = mp.connection.Client(m.address, {authkey = m.authkey})
  c2:send_bytes(string.rep("\255", 64))
  c2:close()
  local c3 = mp.connection.Client(m.address, {authkey = m.authkey})
  core.manager_send(c3, core.dumps(42))  -- a frame that is not a request
  local ok, got, rep = pcall(core.manager_recv, c3, 5)
  check(ok and got and rep[1] == false and rep[3] == "remote", "bad request answered")
  c3:close()
  -- Well-formed frames carrying nonsense requests.
  local weird = {
    {"call", 0/0, "get", {}}, {"call", rawget(d, "_token")[2], 42, {}}, {"call", rawget(d, "_token")[2], "get", 7},
    {"create", {}}, {"create", "dict", "notatable"}, {"pending", 0/0}, {"nonsense"}, {},
    {"ping", inc = {0/0, "x", 1.5}, dec = {1e300}, adopt = "no"},
  }
  for _, w in ipairs(weird) do
    local cw = mp.connection.Client(m.address, {authkey = m.authkey})
    pcall(core.manager_send, cw, core.dumps(w), 2)
    pcall(core.manager_recv, cw, 2)
    cw:close()
  end
  check(d.x == 1, "server still serving after nonsense requests")
  -- A half frame then a hang-up.
  local c4 = mp.connection.Client(m.address, {authkey = m.authkey})
  local fd = c4:fileno()
  c4:send_bytes("x")                     -- a whole small frame is garbage too
  c4:close()
  -- A client that speaks without the handshake.
  local ok5 = pcall(function()
    local c5 <close> = mp.connection.Client(m.address)
    c5:send_bytes("hello?")
  end)
  check(ok5 ~= nil)
  check(d.x == 1, "server still serving after garbage")

  -- Wrong authkey: AuthenticationError, and the server keeps serving.
  local ok6, err6 = pcall(mp.connection.Client, m.address, {authkey = "wrong key"})
  check(not ok6 and mp.isinstance(err6, mp.AuthenticationError), tostring(err6))
  local other = mp.managers.SyncManager{address = m.address, authkey = "wrong key"}
  local ok7, err7 = pcall(other.connect, other)
  check(not ok7 and mp.isinstance(err7, mp.AuthenticationError), tostring(err7))
  check(d.x == 1, "server still serving after a wrong key")

  -- A client that never reads its replies is dropped once its socket is
  -- full and the write deadline passes.
  d.big = string.rep("x", 1 << 20)
  local idd = rawget(d, "_token")[2]
  local lazy = mp.connection.Client(m.address, {authkey = m.authkey})
  local req = core.dumps({"call", idd, "__getitem__", {"big", n = 1}, s = 1})
  local sent = 0
  pcall(function()
    for _ = 1, 50 do core.manager_send(lazy, req, 2); sent = sent + 1 end
  end)
  t0 = os.monotonic()
  check(d.x == 1, "server serves others while one client does not read")
  check(os.monotonic() - t0 < 10)
  lazy:close()

  -- Shutdown with a client connected and waiting.
  local r, w = mp.Pipe(false)
  local waiting = mp.Process{target = function(q, w)
    local ok, err = pcall(q.get, q)
    w:send({ok, mp.isinstance(err, mp.RemoteError), tostring(err)})
  end, args = {q, w}}
  waiting:start()
  t0 = os.monotonic()
  while select(2, m:_debug_info()) < 1 and os.monotonic() - t0 < 5 do os.sleep(0.01) end
  m:shutdown()
  check(r:poll(10), "the waiting client was answered")
  local res = r:recv()
  check(res[1] == false and res[2] == true, "waiting client gets RemoteError: " .. tostring(res[3]))
  waiting:join(5)
  check(waiting.exitcode == 0)
  local ok8, err8 = pcall(function() return d.x end)
  check(not ok8 and mp.isinstance(err8, mp.RemoteError), "call after shutdown: " .. tostring(err8))
  local ok9, err9 = pcall(m.dict, m)
  check(not ok9, "factory after shutdown")
end
check(not os.execute("kill -0 " .. server_pid .. " 2>/dev/null"), "server reaped")

-- A server that dies: calls raise RemoteError.
do
  local m <close> = mp.Manager()
  local l = m:list({1})
  m._process:kill(); m._process:join(5)
  local ok, err = pcall(l.append, l, 2)
  check(not ok and mp.isinstance(err, mp.RemoteError), tostring(err))
end
check(#mp.active_children() == 0, "no children left")
collectgarbage(); collectgarbage()
check(fd_count() == fds_before, "sockets back to the baseline: " .. fd_count() .. " vs " .. fds_before)
print("managers_faults ok")
