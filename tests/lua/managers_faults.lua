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
print("managers_faults ok")
