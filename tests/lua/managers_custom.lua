-- start methods: fork spawn forkserver
-- Custom managers: BaseManager:extend(), register with exposed,
-- method_to_typeid, proxytype (a BaseProxy:extend() class) and
-- create_method, start(initializer, initargs), get_server():serve_forever()
-- in a Process with connect() from another; custom proxies passed to a child.
local mp = require "multiprocessing"

local function check(cond, ...)
  if not cond then error(table.concat({...}, " "), 2) end
end

-- A referent type: methods through its class (__index).
local Maths = {}
Maths.__index = Maths
function Maths.new() return setmetatable({total = 0}, Maths) end
function Maths:add(x, y) self.total = self.total + x + y; return x + y end
function Maths:mul(x, y) return x * y end
function Maths:_secret() return "hidden" end
function Maths:fail() error(mp.TimeoutError("custom failure")) end
function Maths:counter() return {n = 0, bump = function(c) c.n = c.n + 1; return c.n end} end

local MyManager = mp.managers.BaseManager:extend("MyManager")
MyManager.register("Maths", Maths.new)
MyManager.register("Restricted", Maths.new, {exposed = {"mul"}})
MyManager.register("WithCounter", Maths.new, {method_to_typeid = {counter = "Counter"}})
MyManager.register("Counter", nil, {create_method = false})

-- A proxy class with its own methods.
local MathsProxy = mp.managers.BaseProxy:extend("MathsProxy")
function MathsProxy:add(x, y) return self:_callmethod("add", {x, y}) end
function MathsProxy:double(x) return self:_callmethod("mul", {x, 2}) end
MyManager.register("Proxied", Maths.new, {proxytype = MathsProxy})

do
  local m <close> = MyManager()
  m:start(function(tag) _G.INIT_TAG = tag end, {"initialized"})
  local maths = m:Maths()
  check(maths:add(2, 3) == 5)
  check(maths:mul(4, 5) == 20)
  check(maths.total == nil, "fields are not exposed")
  check(maths._secret == nil)
  local ok, err = pcall(maths._callmethod, maths, "_secret")
  check(not ok and mp.isinstance(err, mp.RemoteError), "private method refused: " .. tostring(err))
  ok, err = pcall(maths.fail, maths)
  check(not ok and mp.isinstance(err, mp.TimeoutError), "the referent's own error class: " .. tostring(err))
  check(err.traceback and err.traceback:find("manager server", 1, true))

  local r = m:Restricted()
  check(r:mul(3, 3) == 9)
  check(r.add == nil, "not exposed")
  ok, err = pcall(r._callmethod, r, "add", {1, 2})
  check(not ok and mp.isinstance(err, mp.RemoteError), tostring(err))

  local wc = m:WithCounter()
  local c = wc:counter()
  check(mp.managers.BaseProxy ~= nil and c:bump() == 1 and c:bump() == 2, "method_to_typeid gives a proxy")
  check(MyManager.Counter == nil, "create_method = false")

  local p = m:Proxied()
  check(p:add(1, 1) == 2 and p:double(21) == 42)
  check(tostring(p):find("MathsProxy", 1, true), tostring(p))

  -- Custom proxies travel to a child (their class goes with them).
  local rd, wr = mp.Pipe(false)
  local child = mp.Process{target = function(maths, p, c, wr)
    wr:send({maths:add(10, 10), p:double(5), c:bump()})
  end, args = {maths, p, c, wr}}
  child:start()
  local got = rd:recv()
  child:join(10)
  check(got[1] == 20 and got[2] == 10 and got[3] == 3, repr(got))
  check(maths:add(0, 0) == 0)

  -- The manager class itself travels (an upvalue of a spawned target).
  local address, key = m.address, m.authkey
  local via_class = mp.Process{target = function(wr)
    local c = MyManager{address = address, authkey = key}
    c:connect()
    local px = c:Proxied()
    wr:send({px:double(4), tostring(px):find("MathsProxy", 1, true) ~= nil, MyManager.Counter == nil})
  end, args = {wr}}
  via_class:start()
  got = rd:recv()
  via_class:join(10)
  check(got[1] == 8 and got[2] and got[3], repr(got))

  -- The initializer ran in the server.
  MyManager.register("probe", function() return {tag = _G.INIT_TAG, get = function(s) return s.tag end} end)
end

-- A referent that waits on something outside the server (a Pipe filled by
-- another process) with mp.managers.wait_until: the server keeps serving
-- others meanwhile, and the caller's timeout is honoured.
do
  local rd, wr = mp.Pipe(false)
  local W = mp.managers.BaseManager:extend("WaitManager")
  W.register("Inbox", function()
    return {
      next = function(_, timeout)
        if not mp.managers.wait_until(function() return rd:poll() end, timeout) then return nil end
        return rd:recv()
      end,
      ping = function() return "pong" end,
    }
  end)
  local m <close> = W()
  m:start()
  local inbox = m:Inbox()
  local t0 = os.monotonic()
  check(inbox:next(0.1) == nil and os.monotonic() - t0 >= 0.09, "timeout honoured")
  local r2, w2 = mp.Pipe(false)
  local waiter = mp.Process{target = function(inbox, w2) w2:send(inbox:next(10)) end, args = {inbox, w2}}
  waiter:start()
  os.sleep(0.1)
  check(inbox:ping() == "pong", "served while another call waits")
  wr:send("mail")
  check(r2:poll(10) and r2:recv() == "mail")
  waiter:join(10)
end

-- get_server():serve_forever() in one process, connect() from another.
do
  -- A manager class is not sent to a spawned child: each process makes it
  -- (a local function travels as an upvalue).
  local function make_Q()
    local Q = mp.managers.BaseManager:extend("QueueManager")
    local queue_holder = {}
    Q.register("get_queue", function()
      queue_holder.q = queue_holder.q or mp.managers.LocalQueue()
      return queue_holder.q
    end)
    return Q
  end
  local Q = make_Q()
  local ready_r, ready_w = mp.Pipe(false)
  local server = mp.Process{target = function(w)
    local mgr = make_Q(){address = {"127.0.0.1", 0}, authkey = "abracadabra"}
    local s = mgr:get_server()
    w:send(s.address)
    s:serve_forever()
  end, args = {ready_w}, daemon = true}
  server:start()
  check(ready_r:poll(20), "server address")
  local address = ready_r:recv()
  check(address[1] == "127.0.0.1" and address[2] > 0)
  local client = Q{address = address, authkey = "abracadabra"}
  client:connect()
  local q = client:get_queue()
  q:put("hello over tcp")
  local other = mp.Process{target = function(address)
    local c = make_Q(){address = address, authkey = "abracadabra"}
    c:connect()
    local q2 = c:get_queue()
    q2:put(q2:get(true, 5) .. "!")
  end, args = {address}}
  other:start(); other:join(20)
  check(other.exitcode == 0)
  check(q:get(true, 5) == "hello over tcp!")
  local bad = Q{address = address, authkey = "wrong"}
  local ok, err = pcall(bad.connect, bad)
  check(not ok and mp.isinstance(err, mp.AuthenticationError), tostring(err))
  check(q:qsize() == 0, "still serving")
  -- Shutting the remote server down from a client.
  local core = require "multiprocessing.core"
  local c <close> = core.Client(address, {authkey = "abracadabra"})
  core.manager_call(c, core.dumps({"shutdown", s = 1}))
  server:join(10)
  check(server.exitcode == 0, "server exited: " .. tostring(server.exitcode))
end
check(#mp.active_children() == 0)
print("managers_custom ok", mp.get_start_method())
