-- 76_remote_local_queue: DOC-27, Python's "Managers › Using a remote
-- manager" (the last example).  A local Worker process puts "local hello"
-- on an ordinary mp.Queue; a manager serves that same queue to remote
-- clients, which get what the worker put.
--
-- Python's session serves from the main process (serve_forever never
-- returns); here the server runs in a Process so the script can stop it
-- and end.  The worker is a Process subclass whose run uses a field given
-- in the constructor's table (API.md, settled details "Process
-- subclasses").  The queue is a native object changed by another process,
-- so the server polls a remote get every few milliseconds instead of
-- blocking on it (docs/design/managers.md).
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local Worker = mp.Process:extend("Worker")
function Worker:run()
  self.q:put("local hello")
end

local QueueManager = mp.managers.BaseManager:extend("QueueManager")
QueueManager.register("get_queue")   -- what a client knows

local function serve(queue, ready)
  QueueManager.register("get_queue", function() return queue end)
  local m = QueueManager{address = {"127.0.0.1", 0}, authkey = "abracadabra"}
  local s = m:get_server()
  ready:send(s.address)
  s:serve_forever()
end

local function remote_client(address)
  local m = QueueManager{address = address, authkey = "abracadabra"}
  m:connect()
  local queue = m:get_queue()
  print(queue:get())                    --> local hello
end

local queue = mp.Queue()
local w = Worker{q = queue}
w:start()

local ready_r, ready_w = mp.Pipe(false)
local server = mp.Process{target = serve, args = {queue, ready_w}, daemon = true}
server:start()
local address = ready_r:recv()

local client = mp.Process{target = remote_client, args = {address}}
client:start()
client:join()
w:join()

local admin = QueueManager{address = address, authkey = "abracadabra"}
admin:connect()
admin:shutdown_server()
server:join()
print("server exit code", server.exitcode)   --> 0
