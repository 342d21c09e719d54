-- 43_listener_client: DOC-35 and DOC-36, Python's "Listeners and Clients ›
-- Examples".  One script runs both ends: the server (DOC-35) in a child
-- Process, the client (DOC-36) in the main process.  Both prove they know
-- the authkey with an HMAC-SHA256 challenge before any data moves.
--
-- The server listens on a free port (port 0; Python's example uses 6000)
-- and tells the client the port through a Pipe.  It sends a table, raw
-- bytes, and two C ints packed with string.pack.  Python's example also
-- sends the `float` type object; a Lua table carries the standard function
-- math.floor, which crosses by name.  The client receives the two ints with
-- recv_bytes_into into an mp.Array of typecode "c" (Python uses array('i')).  Then a client with a wrong key gets
-- AuthenticationError, and so does the server's accept; the server goes on
-- serving.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"
local Listener, Client = mp.connection.Listener, mp.connection.Client

local function server(port_out)
  local listener <close> = Listener{address = {"127.0.0.1", 0}, authkey = "secret password"}
  port_out:send(listener.address[2])
  do
    local conn <close> = listener:accept()
    print("connection accepted from", listener.last_accepted[1])
    conn:send({2.25, nil, "junk", math.floor})
    conn:send_bytes("hello")
    conn:send_bytes(string.pack("<i4i4", 42, 1729))
  end
  local ok, err = pcall(listener.accept, listener)   -- the wrong key
  print("server:", tostring(err))
  local conn <close> = listener:accept()               -- still serving
  print("server got:", conn:recv())
end

local r, w = mp.Pipe(false)
local p = mp.Process{target = server, args = {w}}
p:start()
local port = r:recv()
local address = {"127.0.0.1", port}

do
  local conn <close> = Client(address, {authkey = "secret password"})
  local msg = conn:recv()
  print(repr({msg[1], msg[2], msg[3]}), msg[4] == math.floor)
  print(conn:recv_bytes())
  local arr = mp.Array("c", 5 * 4)               -- room for five 4-byte ints
  print(conn:recv_bytes_into(arr))                -- 8
  local ints = {string.unpack("<i4i4i4i4i4", arr.raw)}
  ints[6] = nil                                   -- unpack's next position
  print(repr(ints))
end

local ok, err = pcall(Client, address, {authkey = "wrong key"})
print("client:", tostring(err), mp.isinstance(err, mp.AuthenticationError))
do
  local conn <close> = Client(address, {authkey = "secret password"})
  conn:send("bye")
end
p:join()
