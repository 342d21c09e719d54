-- Exercise 9 (session 5, beyond one machine): an upper-casing server with
-- an authkey.
--
-- A server process listens on loopback (127.0.0.1, port 0 = any free
-- port) with authkey "course".  The parent learns the port through a Pipe,
-- then, as a client, connects with the same key, sends three strings and
-- prints what comes back (the server answers each with string.upper of
-- it), and sends nil to say goodbye.  Then a second client tries the key
-- "wrong" and must get mp.AuthenticationError, which the program prints.
-- Expected output:
--
--   HELLO
--   FROM
--   LUAMP
--   wrong key:	true
--   server exit code:	0
--
-- The same code works between two machines: use a real address instead
-- of 127.0.0.1 (and keep the authkey secret).
--
-- Check your work:  luamp tutorials/exercises/check.lua 9
local mp = require "multiprocessing"
local Listener, Client = mp.connection.Listener, mp.connection.Client

local function server(port_out)
  local listener <close> = Listener{address = {"127.0.0.1", 0}, authkey = "course"}
  port_out:send(listener.address[2])
  -- TODO: accept one connection; answer each string it receives with its
  -- upper-case form until nil arrives.
  -- TODO: then try to accept the wrong-key client: accept raises
  -- AuthenticationError (catch it with pcall) and return.
end

local r, w = mp.Pipe(false)
local p = mp.Process{target = server, args = {w}}
p:start()
local port = r:recv()
local address = {"127.0.0.1", port}

-- TODO: connect with Client(address, {authkey = "course"}), send "hello",
-- "from", "luamp" (printing each answer), then send nil and close.

-- TODO: connect with the key "wrong" under pcall and print whether the
-- error is an mp.AuthenticationError.

p:join(10)
if p:is_alive() then p:terminate(); p:join() end
print("server exit code:", p.exitcode)
