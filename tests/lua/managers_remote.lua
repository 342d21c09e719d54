-- A remote manager on loopback TCP used from separate luamp programs
-- (io.popen): Python's "Using a remote manager".  The server is served by
-- this process's child; two other luamp runs put and get through it.
local mp = require "multiprocessing"
local exe = assert(os.getenv("LUAMP_EXE"), "LUAMP_EXE not set")

local function check(cond, ...)
  if not cond then error(table.concat({...}, " "), 2) end
end

local function run_luamp(code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write('local mp = require "multiprocessing"\n', code)
  f:close()
  local p = assert(io.popen("timeout 30 " .. exe .. " " .. path .. " 2>&1", "r"))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out
end

local QM = mp.managers.BaseManager:extend("QueueManager")
local queue = mp.managers.LocalQueue()
QM.register("get_queue", function() return queue end)

local m = QM{address = {"127.0.0.1", 0}, authkey = "abracadabra"}
m:start()
local port = m.address[2]
check(m.address[1] == "127.0.0.1" and port > 0)

local client_code = [[
local QM = mp.managers.BaseManager:extend("QueueManager")
QM.register("get_queue")
local m = QM{address = {"127.0.0.1", %d}, authkey = %q}
local ok, err = pcall(m.connect, m)
if not ok then print("connect failed", mp.isinstance(err, mp.AuthenticationError)) return end
local q = m:get_queue()
%s
]]
local out = run_luamp(client_code:format(port, "abracadabra", 'q:put("hello"); q:put({1, nil, 3}); print("put done")'))
check(out:find("put done", 1, true), out)
out = run_luamp(client_code:format(port, "wrong", ''))
check(out:find("connect failed\ttrue", 1, true), out)
out = run_luamp(client_code:format(port, "abracadabra", 'print(q:get(true, 5), repr(q:get(true, 5)), q:qsize())'))
check(out:find("hello\t{1, nil, 3}\t0", 1, true), out)
m:shutdown()
check(#mp.active_children() == 0, "server reaped")
print("managers_remote ok")
