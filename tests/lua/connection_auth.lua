-- Listener/Client across two processes (the client is a second luamp run
-- with io.popen): authkey right and wrong (AuthenticationError on both
-- sides, the listener keeps serving), a client that disconnects during the
-- handshake, a silent client (handshake timeout), TCP and abstract Unix.
local mp = require "multiprocessing"
local exe = assert(os.getenv("LUAMP_EXE"), "LUAMP_EXE not set")

-- Starts `code` in another luamp (bounded by timeout(1)); returns a function
-- that waits for it and returns its output.
local function start_client(code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write('local mp = require "multiprocessing"\n', code)
  f:close()
  local p = assert(io.popen("timeout 30 " .. exe .. " " .. path .. " 2>&1", "r"))
  return function()
    local out = p:read("a")
    p:close()
    os.remove(path)
    return out
  end
end

local function addr_literal(a)
  if type(a) == "table" then return string.format("{%q, %d}", a[1], a[2]) end
  return string.format("%q", a)
end

for _, family in ipairs {"AF_INET", "AF_UNIX"} do
  local opts = {family = family, authkey = "secret password", handshake_timeout = 1}
  if family == "AF_INET" then opts.address = {"127.0.0.1", 0} end
  local l <close> = mp.connection.Listener(opts)
  local A = addr_literal(l.address)

  -- Right key: both directions work; values and bytes cross.
  local wait = start_client(([[
    local c <close> = mp.connection.Client(%s, {authkey = "secret password"})
    print(repr(c:recv()), c:recv_bytes())
    c:send("thanks")
  ]]):format(A))
  do
    local s <close> = l:accept()
    s:send({2.25, "junk"})
    s:send_bytes("hello")
    assert(s:recv() == "thanks")
  end
  local out = wait()
  assert(out == '{2.25, "junk"}\thello\n', out)

  -- Wrong key: AuthenticationError on both sides.
  wait = start_client(([[
    local ok, err = pcall(mp.connection.Client, %s, {authkey = "wrong"})
    print(mp.isinstance(err, mp.AuthenticationError), tostring(err))
  ]]):format(A))
  local ok, err = pcall(l.accept, l)
  assert(not ok and mp.isinstance(err, mp.AuthenticationError), tostring(err))
  assert(tostring(err):find("digest received was wrong"), tostring(err))
  out = wait()
  assert(out == "true\tAuthenticationError: digest sent was rejected\n", out)

  -- A client that disconnects during the handshake costs one accept.
  wait = start_client(([[
    local c = mp.connection.Client(%s)  -- no key: no handshake
    c:close()
  ]]):format(A))
  ok, err = pcall(l.accept, l)
  assert(not ok and mp.isinstance(err, mp.AuthenticationError), tostring(err))
  wait()

  -- A client that sends garbage instead of the digest.
  wait = start_client(([[
    local c = mp.connection.Client(%s)
    c:recv_bytes()
    c:send_bytes(string.rep("garbage", 10))
    print(pcall(c.recv_bytes, c))
  ]]):format(A))
  ok, err = pcall(l.accept, l)
  assert(not ok and mp.isinstance(err, mp.AuthenticationError), tostring(err))
  out = wait()
  assert(out:find("#FAILURE#"), out)

  -- A silent client: the handshake times out (handshake_timeout = 1).
  wait = start_client(([[
    local c = mp.connection.Client(%s)
    os.sleep(3)
  ]]):format(A))
  local t0 = os.monotonic()
  ok, err = pcall(l.accept, l)
  local dt = os.monotonic() - t0
  assert(not ok and mp.isinstance(err, mp.AuthenticationError), tostring(err))
  assert(tostring(err):find("timed out") and dt < 5, tostring(err) .. " after " .. dt)
  wait()

  -- The listener still serves.
  wait = start_client(([[
    local c <close> = mp.connection.Client(%s, {authkey = "secret password"})
    c:send("still here")
  ]]):format(A))
  do
    local s <close> = l:accept()
    assert(s:recv() == "still here")
  end
  wait()
end
print("ok")
