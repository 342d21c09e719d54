-- 80_shared_listener: INC-mp_webserver, the historical "mp_webserver.py"
-- example of Python 2.6's multiprocessing page (Appendix A of the catalog).
-- Python's program builds one HTTP server on ('localhost', 8000) and lets
-- four processes serve from that one inherited listening socket until
-- Ctrl-C.  luamp has no HTTP server, so this shows the same idea with
-- mp.connection.Listener: one listening socket, made once, inherited by
-- four server processes that all call accept() on it; the kernel hands
-- each incoming connection to exactly one of them.
--
-- A server runs forever, so the main process is the driver: it starts the
-- servers, plays the client (a few "GET" requests), then stops every server
-- with a "STOP" request (each server answers one STOP and leaves), and
-- joins them with a deadline.  Which server answers which request is up to
-- the kernel, hence {{int}} in the expected output.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"
local Listener, Client = mp.connection.Listener, mp.connection.Client

local NUMBER_OF_PROCESSES = 4

-- The pages our tiny server knows (Python's served files from a folder).
local pages = {
  ["/"] = "welcome to luamp",
  ["/hello.txt"] = "hello world",
}

-- One server process: accept, read one request, answer, repeat.  `pages`
-- travels as an upvalue, so this works under spawn too (no global needed).
local function serve_forever(listener)
  local me = mp.current_process().name
  while true do
    local conn <close> = listener:accept()
    local request = conn:recv()
    if request == "STOP" then
      conn:send({status = 200, body = "bye", server = me})
      return
    end
    local path = request:match("^GET (%S+)$")
    local body = path and pages[path]
    if body then
      conn:send({status = 200, body = body, server = me})
    else
      conn:send({status = 404, body = "not found: " .. tostring(path), server = me})
    end
  end
end

-- A client request: one connection per request, as HTTP/1.0 does.
local function get(address, request)
  local conn <close> = Client(address)
  conn:send(request)
  return conn:recv()
end

-- The listening socket: loopback, a free port (Python used port 8000).
local listener <close> = Listener{address = {"127.0.0.1", 0}}
local address = listener.address
print(string.format("Serving at %s:%d using %d worker processes", address[1], address[2],
                    NUMBER_OF_PROCESSES))

local servers = {}
for i = 1, NUMBER_OF_PROCESSES do
  servers[i] = mp.Process{target = serve_forever, args = {listener}}
  servers[i]:start()
end

for _, request in ipairs {"GET /", "GET /hello.txt", "GET /missing", "GET /hello.txt"} do
  local reply = get(address, request)
  print(request, reply.status, reply.body, "served by " .. reply.server)
end

-- Stop them: each server answers exactly one STOP and returns, so four
-- STOPs reach four different servers.
local stopped = {}
for _ = 1, NUMBER_OF_PROCESSES do
  local reply = get(address, "STOP")
  stopped[#stopped + 1] = reply.server
end
table.sort(stopped)
print("stopped:", repr(stopped))

local codes = {}
for i, p in ipairs(servers) do
  p:join(10)
  if p:is_alive() then p:terminate(); p:join() end  -- only if something went wrong
  codes[i] = p.exitcode
end
print("exit codes:", repr(codes))
