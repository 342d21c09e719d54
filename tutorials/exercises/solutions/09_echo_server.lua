-- Exercise 9, a solution.  With an authkey, Client and accept both run an
-- HMAC challenge before any data moves, so a client with the wrong key is
-- refused on both sides: Client raises AuthenticationError, and so does
-- the server's accept (which can go on serving).  `<close>` closes each
-- connection at the end of its block.
local mp = require "multiprocessing"
local Listener, Client = mp.connection.Listener, mp.connection.Client

local function server(port_out)
  local listener <close> = Listener{address = {"127.0.0.1", 0}, authkey = "course"}
  port_out:send(listener.address[2])
  do
    local conn <close> = listener:accept()
    while true do
      local s = conn:recv()
      if s == nil then break end
      conn:send(string.upper(s))
    end
  end
  pcall(listener.accept, listener)   -- the wrong-key client: refused
end

local r, w = mp.Pipe(false)
local p = mp.Process{target = server, args = {w}}
p:start()
local port = r:recv()
local address = {"127.0.0.1", port}

do
  local conn <close> = Client(address, {authkey = "course"})
  for _, word in ipairs {"hello", "from", "luamp"} do
    conn:send(word)
    print(conn:recv())
  end
  conn:send(nil)
end

local ok, err = pcall(Client, address, {authkey = "wrong"})
print("wrong key:", not ok and mp.isinstance(err, mp.AuthenticationError))

p:join(10)
if p:is_alive() then p:terminate(); p:join() end
print("server exit code:", p.exitcode)
