-- 75_remote_manager: DOC-24, DOC-25 and DOC-26 (with the fragments DOC-20
-- and DOC-21), Python's "Managers › Using a remote manager".  One program
-- serves a queue on TCP with an authkey; clients on other hosts connect and
-- put or get.  Here all three run on this machine: the server in a Process
-- listening on 127.0.0.1 (port 0 picks a free port; Python's example uses
-- ('', 50000), every interface, port 50000), and each client is a separate
-- process that knows only the address and the key.
--
-- The server's queue is mp.managers.LocalQueue(), a plain FIFO living in the
-- server process (Python's queue.Queue); a blocking get waits in the server
-- without stopping it from serving others.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

-- What every side knows: the manager class and the typeid.  (A manager
-- class travels to a spawned child like any upvalue.)
local QueueManager = mp.managers.BaseManager:extend("QueueManager")
QueueManager.register("get_queue")

-- DOC-24 (and DOC-20): the server makes the queue and registers the
-- function that returns it.
local function serve(ready)
  local queue = mp.managers.LocalQueue()
  QueueManager.register("get_queue", function() return queue end)
  local m = QueueManager{address = {"127.0.0.1", 0}, authkey = "abracadabra"}
  local s = m:get_server()
  ready:send(s.address)
  s:serve_forever()          -- until a client asks it to shut down
end

-- DOC-25 (and DOC-21): a client that puts.
local function put_client(address)
  local m = QueueManager{address = address, authkey = "abracadabra"}
  m:connect()
  local queue = m:get_queue()
  queue:put("hello")
end

-- DOC-26: a client that gets.
local function get_client(address)
  local m = QueueManager{address = address, authkey = "abracadabra"}
  m:connect()
  local queue = m:get_queue()
  print(queue:get())          --> hello
end

local ready_r, ready_w = mp.Pipe(false)
local server = mp.Process{target = serve, args = {ready_w}, daemon = true}
server:start()
local address = ready_r:recv()

local p1 = mp.Process{target = put_client, args = {address}}
p1:start(); p1:join()
local p2 = mp.Process{target = get_client, args = {address}}
p2:start(); p2:join()

-- A client with the wrong key is refused; the server keeps serving.
local intruder = QueueManager{address = address, authkey = "guess"}
local ok, err = pcall(intruder.connect, intruder)
print(ok, mp.isinstance(err, mp.AuthenticationError))   --> false  true

-- Stop the server (Python's example is stopped by killing it).
local admin = QueueManager{address = address, authkey = "abracadabra"}
admin:connect()
admin:shutdown_server()
server:join()
print("server exit code", server.exitcode)   --> 0
