-- Managers (API.md "Managers"; docs/api/managers.md; design in
-- docs/design/managers.md): the server that holds shared objects, the
-- proxies that reach them, BaseManager/SyncManager, registration of custom
-- types, remote managers.  Python's managers.py, composed from Process,
-- Listener/Client and the codec.  multiprocessing.init.lua publishes
-- mp.Manager and mp.managers; the server-side objects of SyncManager live in
-- multiprocessing.manager_types.
--
-- Wire protocol (one request, one reply, on a Listener/Client socket; the
-- framing and deadlines are core.manager_send/recv/call):
--   request  {op, a, b, c, s = seq, adopt = {ids}, inc = {ids}, dec = {ids},
--             who = {pid, name} (first request), drop = old connection id}
--     op "call" id method args | "create" typeid args | "pending" id
--        | "ping" | "shutdown" | "debug_info"
--   reply    {true, v1, ..., n = k, s = seq [, tok = token] [, cid = id]}
--          | {false, err, "error" | "remote", s = seq [, cid = id]}
--   (cid, this connection's id, comes with the first reply.)
-- Reference counts are kept per client connection (a process), so the
-- objects of a client that dies are released when its socket closes.
local class = require "multiprocessing.class"
local core = require "multiprocessing.core"
local errors = require "multiprocessing.errors"
local util = require "multiprocessing.util"
local process = require "multiprocessing.process"
local types = require "multiprocessing.manager_types"

local M = {}

local getpid, monotonic = core.getpid, core.monotonic
local pack, unpack = table.pack, table.unpack

local function remote_error(msg) return errors.RemoteError(msg) end

-- A string key for an address ({host, port} or a Unix path).
local function addr_key(a)
  if type(a) == "table" then return tostring(a[1]) .. ":" .. tostring(a[2]) end
  return tostring(a)
end

local function default_authkey() return process.current_process().authkey end

-- This process's pid, without a syscall per proxy call: a forked child has
-- a new current_process() object, which refreshes it.
local cached_pid, cached_owner
local current_process = process.current_process
local function mypid()
  local cur = current_process()
  if cur ~= cached_owner then
    cached_owner, cached_pid = cur, getpid()
  end
  return cached_pid
end

---------------------------------------------------------------------------
-- Servers running in this process, by address (a proxy rebuilt here for one
-- of them calls its referent directly).

local servers_here = {}

local function local_server(address)
  local s = servers_here[addr_key(address)]
  if s and s.pid == mypid() and s.running then return s end
  return nil
end

---------------------------------------------------------------------------
-- Client side: one connection per (process, server address), shared by all
-- proxies of that process.  An "entry" holds it, the request counter and
-- the reference changes waiting to ride on the next request.

local entries = {}

-- Entries are per address and key (nil: this process's authkey).
local function entry_key(address, authkey)
  return addr_key(address) .. "\0" .. (authkey or "")
end

local function entry_for(address, authkey)
  local key = entry_key(address, authkey)
  local e = entries[key]
  if e == nil or e.pid ~= mypid() or e.broken then
    e = {key = key, address = address, authkey = authkey, pid = mypid(), seq = 0, adopt = {}, inc = {}, dec = {},
         live = setmetatable({}, {__mode = "k"})}  -- proxies holding a reference on this connection
    entries[key] = e
  end
  return e
end

-- Forgets this process's connections to `address` (after a shutdown).
local function drop_entry(address)
  local ak = addr_key(address)
  for key, e in pairs(entries) do
    if addr_key(e.address) == ak and e.pid == mypid() then
      e.broken = true
      if e.conn then pcall(e.conn.close, e.conn) end
      entries[key] = nil
    end
  end
end

local graveyard = {}  -- connections left open after an interrupted call

local function connect(e)
  local conn = e.conn
  if conn then return conn end
  -- The key is looked up now, not when the entry was made: a spawned child
  -- rebuilds its proxies before it knows its inherited authkey.
  local ok, c = pcall(core.Client, e.address, {authkey = e.authkey or default_authkey()})
  if not ok then
    if class.isinstance(c, errors.AuthenticationError) then error(c, 0) end
    error(remote_error("cannot connect to the manager at " .. repr(e.address) .. ": " .. tostring(c)), 0)
  end
  e.conn = c
  return c
end

-- The entry is unusable (the server closed it, or a call was cut short):
-- later calls open a new connection.  An interrupted connection stays open
-- so the server keeps this process's references.
local function break_entry(e, keep_open)
  e.broken = true
  if entries[e.key] == e then entries[e.key] = nil end
  if e.conn then
    if keep_open then graveyard[#graveyard + 1] = e.conn else pcall(e.conn.close, e.conn) end
  end
end

-- After an interrupted call, the connection is in an unknown state (a
-- reply may still come; the server may still run the call, e.g. a parked
-- get that would swallow the next item).  The entry is replaced; the old
-- connection stays open (the server keeps this process's references) until
-- the next request on the new one, which takes again the references of
-- every live proxy and asks the server to drop the old connection by its
-- id.  This is done then, not here: right after Ctrl-C the interrupt may
-- still stop any Lua code.
local function abandon(e)
  break_entry(e, true)
  local ne = entry_for(e.address, e.authkey)
  ne.old = e
end

-- Moves the references held on e.old to e; returns the old connection id
-- to drop, or nil.
local function take_over(e)
  local old = e.old
  if old == nil then return nil end
  for p in pairs(old.live) do
    if rawget(p, "_holder") == old then
      e.inc[#e.inc + 1] = rawget(p, "_token")[2]
      rawset(p, "_holder", e)
      e.live[p] = true
    end
  end
  for _, id in ipairs(old.adopt) do e.adopt[#e.adopt + 1] = id end
  old.adopt = {}
  return old.cid
end

-- The old connection is no longer needed once the server answered.
local function bury(e)
  local old = e.old
  e.old = nil
  for i, c in ipairs(graveyard) do
    if c == old.conn then
      table.remove(graveyard, i)
      pcall(c.close, c)
      break
    end
  end
end

-- Sends `req` on entry e and returns the reply table (reply[1] is true), or
-- raises: the referent's own error, RemoteError for the server's failures.
local function request(e, req)
  local conn = connect(e)
  if e.old then req.drop = take_over(e) end
  local seq = e.seq + 1
  e.seq = seq
  req.s = seq
  if seq == 1 then  -- the first request names the process (a lock's owner in tostring)
    req.who = {getpid(), process.current_process().name}
  end
  -- The waiting reference changes ride on this request.  They are taken
  -- off the entry before encoding: encoding may run a nested request (a
  -- proxy among the arguments reduces itself), which must not send them too.
  local lists = {}
  for _, f in ipairs {"adopt", "inc", "dec"} do
    if #e[f] > 0 then
      lists[f] = e[f]
      req[f] = e[f]
      e[f] = {}
    end
  end
  local encoded, payload = pcall(core.dumps, req)
  if not encoded then
    -- An argument that cannot be sent: nothing was written, the connection
    -- is fine, and the reference changes wait for the next request.
    for f, list in pairs(lists) do
      for _, id in ipairs(e[f]) do list[#list + 1] = id end
      e[f] = list
    end
    error(payload, 0)
  end
  local ok, got, reply = pcall(core.manager_call, conn, payload)
  while ok and got and reply.s ~= seq do  -- a reply to an earlier, interrupted call
    ok, got, reply = pcall(core.manager_recv, conn)
  end
  if not ok then
    local err = got
    if err == "interrupted!" or (type(err) == "string" and err:find("interrupted!", 1, true)) then
      abandon(e)
      error(err, 0)
    end
    break_entry(e, false)
    error(remote_error("lost the manager at " .. repr(e.address) .. ": " .. tostring(err)), 0)
  end
  if not got then
    break_entry(e, false)
    error(remote_error("the manager at " .. repr(e.address) .. " closed the connection (is it shut down?)"), 0)
  end
  if reply.cid then e.cid = reply.cid end
  if e.old then bury(e) end
  if reply[1] == true then return reply end
  if reply[3] == "remote" then error(remote_error(reply[2]), 0) end
  error(reply[2], 0)
end
M._request = request

---------------------------------------------------------------------------
-- Proxies.  Every proxy instance has the one metatable `Proxy` (registered
-- with the codec), which forwards to the proxy's class (`_class`): so a
-- class made in one process can be rebuilt in another from the methods
-- carried with the proxy, under every start method.

local Proxy = {__name = "Proxy"}
M._Proxy = Proxy

local BaseProxy = class.new("BaseProxy")
M.BaseProxy = BaseProxy

local builtin_classes = {}   -- name -> class (BaseProxy, DictProxy, ...)
local class_names = setmetatable({}, {__mode = "k"})  -- class -> unique name
local classes_by_name = setmetatable({}, {__mode = "v"})
local class_counter = 0

local function builtin_class(name, cls)
  builtin_classes[name] = cls
  class_names[cls] = name
  return cls
end
builtin_class("BaseProxy", BaseProxy)

local function is_proxy(v) return getmetatable(v) == Proxy end
M.is_proxy = is_proxy

local skip_fields = {__index = true, __name = true, __parent = true, extend = true}

-- How a proxy's class travels: a builtin by name, a user class as its name,
-- its builtin base and its own fields (methods).
local function class_desc(cls)
  local name = class_names[cls]
  if builtin_classes[name] then return name end
  if name == nil then
    class_counter = class_counter + 1
    name = string.format("%s#%d.%d", rawget(cls, "__name") or "Proxy", getpid(), class_counter)
    class_names[cls] = name
    classes_by_name[name] = cls
  end
  local chain = {}
  local c = cls
  while c and not builtin_classes[class_names[c]] do
    table.insert(chain, 1, c)
    c = rawget(c, "__parent")
  end
  local base = c or BaseProxy
  local fields = {}
  for _, k in ipairs(chain) do
    for key, v in pairs(k) do
      -- Metamethods copied down from the builtin base are the base's.
      if not skip_fields[key] and base[key] ~= v then fields[key] = v end
    end
  end
  return {name = name, base = class_names[base] or "BaseProxy", fields = fields}
end

-- Proxy classes themselves cross too (a target that names one as an
-- upvalue): every class below BaseProxy has this registered metatable.
local ProxyClassMeta = {__name = "ProxyClass"}
function ProxyClassMeta.__index(cls, k)
  local p = rawget(cls, "__parent")
  if p then return p[k] end
end
function ProxyClassMeta.__call(cls, ...) return cls:new(...) end

-- BaseProxy:extend([name]): a proxy class (see docs/api/managers.md).
local function proxy_extend(self, name)
  local cls = {}
  for k, v in pairs(self) do  -- metamethods are read raw: copy them down
    if type(k) == "string" and k:sub(1, 2) == "__" and k ~= "__index" and k ~= "__name" and k ~= "__parent" then
      cls[k] = v
    end
  end
  cls.__index = cls
  cls.__name = name or ((rawget(self, "__name") or "BaseProxy") .. "Subclass")
  cls.__parent = self
  cls.extend = proxy_extend
  return setmetatable(cls, ProxyClassMeta)
end
BaseProxy.extend = proxy_extend
setmetatable(BaseProxy, ProxyClassMeta)

local function class_from_desc(desc)
  if type(desc) == "string" then return builtin_classes[desc] or BaseProxy end
  local cls = classes_by_name[desc.name]
  if cls then return cls end
  cls = (builtin_classes[desc.base] or BaseProxy):extend(desc.name:match("^[^#]*"))
  for k, v in pairs(desc.fields) do rawset(cls, k, v) end
  class_names[cls] = desc.name
  classes_by_name[desc.name] = cls
  return cls
end

function ProxyClassMeta.__reduce(cls) return {class_desc(cls)} end
function ProxyClassMeta.__rebuild(t) return class_from_desc(t[1]) end
core.register_class("multiprocessing.managers.ProxyClass", ProxyClassMeta)

function Proxy.__index(self, k)
  local cls = rawget(self, "_class")
  local v = cls[k]
  if v ~= nil then return v end
  if k == "_exposed_" then return rawget(self, "_token").exposed end
  local get = cls.__getattr
  if get then return get(self, k) end
  return nil
end

function Proxy.__newindex(self, k, v)
  local set = rawget(self, "_class").__setattr
  if set then return set(self, k, v) end
  rawset(self, k, v)
end

function Proxy.__len(self)
  local f = rawget(self, "_class").__len
  if f then return f(self) end
  return self:_callmethod("__len__")
end

function Proxy.__pairs(self)
  local f = rawget(self, "_class").__pairs
  if f then return f(self) end
  error("attempt to iterate over a " .. (rawget(self, "_class").__name or "proxy"), 2)
end

function Proxy.__tostring(self)
  return rawget(self, "_class").__tostring(self)
end
Proxy.__repr = Proxy.__tostring

-- A proxy class with __call makes its proxies callable (an iterator proxy
-- for `for v in it do`).
function Proxy.__call(self, ...)
  local f = rawget(self, "_class").__call
  if f == nil then error("attempt to call a " .. (rawget(self, "_class").__name or "proxy"), 2) end
  return f(self, ...)
end

function Proxy.__close(self)
  local f = rawget(self, "_class").__close
  if f then return f(self) end
end

-- A proxy collected: its reference is returned with the next request of
-- this process (never here: a finalizer may run in the middle of a call).
function Proxy.__gc(self)
  local tok = rawget(self, "_token")
  if tok == nil then return end
  local srv = rawget(self, "_server")
  if srv then
    if srv.pid == mypid() then srv.local_dec[#srv.local_dec + 1] = tok[2] end
    return
  end
  local h = rawget(self, "_holder")
  if h and h.pid == mypid() and not h.broken then h.dec[#h.dec + 1] = tok[2] end
end

-- Makes a proxy of class `cls` for token {typeid, id, address, exposed}.
-- `holder`: the entry on which this process holds its reference (nil: none
-- yet, taken at the first call).
local function new_proxy(cls, tok, authkey, holder, manager)
  local p = setmetatable({_class = cls, _token = tok, _authkey = authkey, _holder = holder, _manager = manager},
                         Proxy)
  if holder then holder.live[p] = true end
  return p
end

-- proxy:_callmethod(name [, args]): calls method `name` of the referent with
-- the arguments in the sequence `args` (args.n counts trailing nils).
function BaseProxy:_callmethod(name, args)
  if type(name) ~= "string" then
    error("bad argument #1 to '_callmethod' (string expected, got " .. type(name) .. ")", 2)
  end
  if args ~= nil and type(args) ~= "table" then
    error("bad argument #2 to '_callmethod' (table expected, got " .. type(args) .. ")", 2)
  end
  local tok = rawget(self, "_token")
  local srv = rawget(self, "_server")
  if srv then return srv:_local_call(tok[2], name, args or {n = 0}) end
  -- Fast path: the entry this proxy holds its reference on is current.
  local e = rawget(self, "_holder")
  if e == nil or e.broken or e.pid ~= mypid() or e.old then
    e = entry_for(tok[3], rawget(self, "_authkey"))
    if rawget(self, "_holder") ~= e then  -- first use in this process (or after a reconnect)
      e.inc[#e.inc + 1] = tok[2]
      rawset(self, "_holder", e)
      e.live[self] = true
    end
  end
  local reply = request(e, {"call", tok[2], name, args or {n = 0}})
  local t = reply.tok
  if t then
    local manager = rawget(self, "_manager")
    local cls = manager and manager:_proxytype(t[1]) or M.AutoProxy
    return new_proxy(cls, {t[1], t[2], tok[3], t[3]}, rawget(self, "_authkey"), e, manager)
  end
  return unpack(reply, 2, reply.n)
end

-- A plain copy of the referent.
function BaseProxy:_getvalue() return self:_callmethod("_getvalue") end

function BaseProxy:_typeid() return rawget(self, "_token")[1] end

local function exposes(self, name)
  local ex = rawget(self, "_token").exposed
  if ex == nil then return true end
  for _, n in ipairs(ex) do if n == name then return true end end
  return false
end

function BaseProxy.__tostring(self)
  if exposes(self, "__repr__") then
    local ok, s = pcall(self._callmethod, self, "__repr__")
    if ok and type(s) == "string" then return s end
  end
  local tok = rawget(self, "_token")
  return string.format("<%s object, typeid %s, id %d>", rawget(self, "_class").__name, repr(tok[1]), tok[2])
end

-- The codec's view: a proxy reduces to {typeid, id, address, authkey (only
-- when it is not the process's own), class, exposed}.  Before it leaves, the
-- server counts one reference "in transit" that the receiver adopts.
function Proxy.__reduce(self)
  local tok = rawget(self, "_token")
  local srv = local_server(tok[3])
  if srv then
    srv:_add_pending(tok[2])
  else
    local e = entry_for(tok[3], rawget(self, "_authkey"))
    if rawget(self, "_holder") ~= e then
      e.inc[#e.inc + 1] = tok[2]
      rawset(self, "_holder", e)
      e.live[self] = true
    end
    request(e, {"pending", tok[2]})
  end
  return {tok[1], tok[2], tok[3], rawget(self, "_authkey"), class_desc(rawget(self, "_class")), tok.exposed}
end

function Proxy.__rebuild(t)
  local cls = class_from_desc(t[5])
  local tok = {t[1], t[2], t[3], exposed = t[6]}
  local p = new_proxy(cls, tok, t[4], nil, nil)
  local srv = local_server(t[3])
  if srv then
    rawset(p, "_server", srv)
    srv:_adopt(srv.local_owner, t[2])
  else
    local e = entry_for(t[3], t[4])
    e.adopt[#e.adopt + 1] = t[2]
    rawset(p, "_holder", e)
    e.live[p] = true
  end
  return p
end
core.register_class("multiprocessing.managers.Proxy", Proxy)

-- A method that forwards to the referent's method of the same name.
local function forward(name)
  return function(self, ...)
    return self:_callmethod(name, pack(...))
  end
end
M.forward = forward

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta == "number" end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return ks
end

-- AutoProxy: every exposed method of the referent (all public methods when
-- the registration gave no list), looked up by name.
local AutoProxy = builtin_class("AutoProxy", BaseProxy:extend("AutoProxy"))
M.AutoProxy = AutoProxy
function AutoProxy.__getattr(self, k)
  if type(k) ~= "string" or k:sub(1, 1) == "_" then return nil end
  if not exposes(self, k) then return nil end
  return forward(k)
end

-- DictProxy: d[k], d[k] = v (nil deletes), #d, pairs(d) and dict methods.
local DictProxy = builtin_class("DictProxy", BaseProxy:extend("DictProxy"))
M.DictProxy = DictProxy
for _, name in ipairs {"keys", "values", "items", "get", "pop", "popitem", "setdefault", "update", "copy",
                       "clear"} do
  DictProxy[name] = forward(name)
end
function DictProxy.__getattr(self, k) return self:_callmethod("__getitem__", {k, n = 1}) end
function DictProxy.__setattr(self, k, v) return self:_callmethod("__setitem__", {k, v, n = 2}) end
function DictProxy.__len(self) return self:_callmethod("__len__") end
function DictProxy.__pairs(self)
  local items = self:_callmethod("items")
  local i = 0
  return function()
    i = i + 1
    local kv = items[i]
    if kv then return kv[1], kv[2] end
  end, self, nil
end
function DictProxy.__tostring(self) return repr(self:_callmethod("copy")) end

-- ListProxy: l[i] (nil past the end), l[i] = v, #l, ipairs(l), list methods.
local ListProxy = builtin_class("ListProxy", BaseProxy:extend("ListProxy"))
M.ListProxy = ListProxy
for _, name in ipairs {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "index", "count",
                       "copy", "clear", "totable"} do
  ListProxy[name] = forward(name)
end
function ListProxy.__getattr(self, k)
  if type(k) ~= "number" then return nil end
  return self:_callmethod("__getitem__", {k, n = 1})
end
function ListProxy.__setattr(self, k, v)
  if type(k) ~= "number" then error("list proxy: cannot set field " .. repr(k), 2) end
  return self:_callmethod("__setitem__", {k, v, n = 2})
end
function ListProxy.__len(self) return self:_callmethod("__len__") end
function ListProxy.__pairs(self)
  local items = self:_callmethod("copy")
  local n = self:_callmethod("__len__")
  local i = 0
  return function()
    i = i + 1
    if i <= n then return i, items[i] end
  end, self, nil
end
function ListProxy.__tostring(self) return repr(self:_callmethod("copy")) end

-- NamespaceProxy: ns.x, ns.x = v; names starting with "_" stay in the proxy.
local NamespaceProxy = builtin_class("NamespaceProxy", BaseProxy:extend("NamespaceProxy"))
M.NamespaceProxy = NamespaceProxy
function NamespaceProxy.__getattr(self, k)
  if type(k) == "string" and k:sub(1, 1) == "_" then return nil end
  return self:_callmethod("__getattribute__", {k, n = 1})
end
function NamespaceProxy.__setattr(self, k, v)
  if type(k) == "string" and k:sub(1, 1) == "_" then return rawset(self, k, v) end
  if v == nil then return self:_callmethod("__delattr__", {k, n = 1}) end
  return self:_callmethod("__setattr__", {k, v, n = 2})
end
function NamespaceProxy.__tostring(self)
  local t = self:_callmethod("_getvalue")
  local parts = {}
  for _, k in ipairs(sorted_keys(t)) do
    if type(k) ~= "string" or k:sub(1, 1) ~= "_" then
      parts[#parts + 1] = (type(k) == "string" and k or "[" .. repr(k) .. "]") .. " = " .. repr(t[k])
    end
  end
  return "Namespace(" .. table.concat(parts, ", ") .. ")"
end
function NamespaceProxy.__pairs(self)
  local t = self:_callmethod("_getvalue")
  return next, t, nil
end

-- ValueProxy: v.value, v:get(), v:set(x).
local ValueProxy = builtin_class("ValueProxy", BaseProxy:extend("ValueProxy"))
M.ValueProxy = ValueProxy
ValueProxy.get = forward("get")
ValueProxy.set = forward("set")
function ValueProxy.__getattr(self, k)
  if k == "value" then return self:_callmethod("get") end
  return nil
end
function ValueProxy.__setattr(self, k, v)
  if k == "value" then return self:_callmethod("set", {v, n = 1}) end
  error("Value proxy: cannot set field " .. repr(k) .. " (use .value)", 2)
end
function ValueProxy.__tostring(self) return "Value(" .. repr(self:_callmethod("get")) .. ")" end

-- ArrayProxy: a[i], a[i] = v, #a, ipairs(a), a:totable([i [, j]]).
local ArrayProxy = builtin_class("ArrayProxy", BaseProxy:extend("ArrayProxy"))
M.ArrayProxy = ArrayProxy
ArrayProxy.totable = forward("totable")
ArrayProxy.__getattr = ListProxy.__getattr
ArrayProxy.__setattr = ListProxy.__setattr
ArrayProxy.__len = ListProxy.__len
function ArrayProxy.__tostring(self) return repr(self:_callmethod("totable")) end

-- QueueProxy: a queue served by the manager (works over TCP).
local QueueProxy = builtin_class("QueueProxy", BaseProxy:extend("QueueProxy"))
M.QueueProxy = QueueProxy
for _, name in ipairs {"put", "get", "put_nowait", "get_nowait", "qsize", "empty", "full", "task_done",
                       "join"} do
  QueueProxy[name] = forward(name)
end

-- Lock, RLock, Semaphore, BoundedSemaphore: acquire/release/guard.
local AcquirerProxy = builtin_class("AcquirerProxy", BaseProxy:extend("AcquirerProxy"))
M.AcquirerProxy = AcquirerProxy
for _, name in ipairs {"acquire", "release", "locked", "get_value"} do AcquirerProxy[name] = forward(name) end
-- proxy:guard(): acquires now; the returned object releases at <close>.
function AcquirerProxy:guard()
  self:acquire()
  return setmetatable({}, {__close = function() self:release() end, __name = "Guard"})
end

local ConditionProxy = builtin_class("ConditionProxy", AcquirerProxy:extend("ConditionProxy"))
M.ConditionProxy = ConditionProxy
for _, name in ipairs {"wait", "notify", "notify_all"} do ConditionProxy[name] = forward(name) end
-- cond:wait_for(pred [, timeout]): the predicate runs here, in the caller.
function ConditionProxy:wait_for(pred, timeout)
  local result = pred()
  if result then return result end
  local endtime = timeout and (monotonic() + timeout)
  while not result do
    local waittime
    if endtime then
      waittime = endtime - monotonic()
      if waittime <= 0 then break end
    end
    self:wait(waittime)
    result = pred()
  end
  return result
end

local EventProxy = builtin_class("EventProxy", BaseProxy:extend("EventProxy"))
M.EventProxy = EventProxy
for _, name in ipairs {"is_set", "set", "clear", "wait"} do EventProxy[name] = forward(name) end

local BarrierProxy = builtin_class("BarrierProxy", BaseProxy:extend("BarrierProxy"))
M.BarrierProxy = BarrierProxy
for _, name in ipairs {"wait", "reset", "abort"} do BarrierProxy[name] = forward(name) end
function BarrierProxy.__getattr(self, k)
  if k == "parties" or k == "n_waiting" or k == "broken" then
    return self:_callmethod("__getattribute__", {k, n = 1})
  end
  return nil
end

-- PoolProxy: m:Pool(n), a pool owned by the server.  The *_async methods
-- return AsyncResult proxies, imap/imap_unordered iterator proxies.
local PoolProxy = builtin_class("PoolProxy", BaseProxy:extend("PoolProxy"))
M.PoolProxy = PoolProxy
for _, name in ipairs {"apply", "apply_async", "map", "map_async", "starmap", "starmap_async", "imap",
                       "imap_unordered", "close", "terminate", "join"} do
  PoolProxy[name] = forward(name)
end
function PoolProxy.__close(self) pcall(self._callmethod, self, "terminate") end

local AsyncResultProxy = builtin_class("AsyncResultProxy", BaseProxy:extend("AsyncResultProxy"))
M.AsyncResultProxy = AsyncResultProxy
for _, name in ipairs {"get", "wait", "ready", "successful"} do AsyncResultProxy[name] = forward(name) end

local IteratorProxy = builtin_class("IteratorProxy", BaseProxy:extend("IteratorProxy"))
M.IteratorProxy = IteratorProxy
IteratorProxy.next = forward("next")
function IteratorProxy.__call(self) return self:_callmethod("next") end

---------------------------------------------------------------------------
-- The server.

local Server = class.new("Server")
M.Server = Server

-- How long the server waits for the rest of a frame, and for a client's
-- socket to take a reply, before it drops that client.
Server.read_timeout = 5
Server.write_timeout = 5
-- How often a request waiting on something outside the server (a native
-- queue or lock, a pool's result) is retried.
Server.poll_step = 0.005

-- registry: typeid -> {builtin = name} | {callable = f, exposed = {..},
-- method_to_typeid = {..}}.
function Server:new(registry, address, authkey)
  local s = setmetatable({}, self)
  s.registry = registry
  if type(address) == "table" and (address[1] == "" or address[1] == nil) then
    address = {"0.0.0.0", address[2] or 0}
  end
  s.listener = core.Listener{address = address, authkey = authkey, backlog = 128, handshake_timeout = 2}
  s.address = s.listener.address
  s.authkey = authkey
  s.pid = getpid()
  s.objects = {}          -- id -> {obj =, typeid =, exposed = set|nil, m2t =, refs =}
  s.ids_by_obj = {}       -- referent -> id (the same object registered twice keeps its id)
  s.next_id = 0
  s.pending = {}          -- id -> references in transit
  s.clients = {}          -- conn -> client {conn, refs = {id -> n}, pid, name, cid}
  s.by_cid = {}           -- connection id -> client
  s.waitlist = {s.listener}
  s.parked = {}
  s.local_owner = {refs = {}, name = "server"}
  s.local_dec = {}
  s.running = false
  return s
end

local function exposed_set(list)
  if list == nil then return nil end
  local set = {}
  for _, n in ipairs(list) do set[n] = true end
  return set
end

-- Public method names of a referent: function-valued fields not starting
-- with "_", through __index tables too.
local function public_methods(obj)
  local names, seen = {}, {}
  local t, depth = obj, 0
  while t ~= nil and depth < 16 do
    if type(t) == "table" then
      for k, v in pairs(t) do
        if type(k) == "string" and k:sub(1, 1) ~= "_" and not seen[k] then
          local callable = type(v) == "function" or (getmetatable(v) and getmetatable(v).__call)
          if callable then seen[k] = true; names[#names + 1] = k end
        end
      end
    end
    local mt = getmetatable(t)
    t = mt and type(mt.__index) == "table" and mt.__index or nil
    if t == obj then break end
    depth = depth + 1
  end
  table.sort(names)
  return names
end

function Server:_register_object(obj, typeid, spec)
  local id = (type(obj) == "table" or type(obj) == "userdata" or type(obj) == "function")
             and self.ids_by_obj[obj] or nil
  if id then return id, self.objects[id].exposed_list end
  self.next_id = self.next_id + 1
  id = self.next_id
  local exposed = spec.exposed
  if exposed == nil and not spec.builtin then exposed = public_methods(obj) end
  self.objects[id] = {obj = obj, typeid = typeid, exposed = exposed_set(exposed), exposed_list = exposed,
                      m2t = spec.method_to_typeid, refs = 0}
  if type(obj) == "table" or type(obj) == "userdata" or type(obj) == "function" then self.ids_by_obj[obj] = id end
  return id, exposed
end

function Server:_incref(owner, id)
  local o = self.objects[id]
  if o == nil then return false end
  owner.refs[id] = (owner.refs[id] or 0) + 1
  o.refs = o.refs + 1
  return true
end

function Server:_decref(owner, id)
  local n = owner.refs[id]
  if not n then return end
  owner.refs[id] = n > 1 and n - 1 or nil
  local o = self.objects[id]
  if o == nil then return end
  o.refs = o.refs - 1
  if o.refs <= 0 and (self.pending[id] or 0) == 0 then
    self.objects[id] = nil
    if self.ids_by_obj[o.obj] == id then self.ids_by_obj[o.obj] = nil end
  end
end

function Server:_add_pending(id)
  if self.objects[id] then self.pending[id] = (self.pending[id] or 0) + 1 end
end

-- Takes one reference in transit for `owner` (or a new one).
function Server:_adopt(owner, id)
  local p = self.pending[id]
  if p and p > 0 then self.pending[id] = p > 1 and p - 1 or nil end
  self:_incref(owner, id)
end

-- A call from this process to one of its own objects (a proxy the server
-- holds, e.g. a list proxy stored in a dict).
function Server:_local_call(id, name, args)
  local o = self.objects[id]
  if o == nil then error(remote_error("unknown object id " .. tostring(id)), 2) end
  if o.exposed and not o.exposed[name] then
    error(remote_error(string.format("method %s of %s object is not exposed", repr(name), repr(o.typeid))), 2)
  end
  if name == "_getvalue" and o.obj._getvalue == nil then return o.obj end
  local f = o.obj[name]
  return f(o.obj, unpack(args, 1, args.n or #args))
end

types.resolve_hook = function(v)
  if getmetatable(v) == Proxy then
    local srv = rawget(v, "_server")
    if srv then
      local o = srv.objects[rawget(v, "_token")[2]]
      if o then return o.obj end
    end
  end
  return nil
end

local function with_traceback(err, tb)
  if type(err) == "table" then
    if rawget(err, "traceback") == nil then pcall(rawset, err, "traceback", "(in the manager server) " .. tb) end
    return err
  end
  return tostring(err) .. "\n(in the manager server) " .. tb
end

-- Referents whose state changes outside the server (native queues, locks
-- and events, a pool's results) would block the whole server in their
-- blocking methods: those calls become a non-blocking try retried every
-- poll_step (docs/design/managers.md).  Keyed by method name; each returns
-- nil when it does not apply to the object.
local function is_error(v, cls) return class.isinstance(v, cls) end
local outside = {}
function outside.get(obj, args)
  if type(obj) == "table" and type(obj.ready) == "function" then  -- an AsyncResult
    local timeout = args[1]
    if not types.wait_until(function() return obj:ready() end, timeout) then
      error(errors.TimeoutError("result not ready"), 0)
    end
    return true, obj:get(0)
  end
  if type(obj) ~= "userdata" then return nil end
  local block, timeout = args[1], args[2]
  if block == false then return nil end
  local v
  local got = types.wait_until(function()
    local ok, r = pcall(obj.get, obj, false)
    if ok then v = r return true end
    if not is_error(r, errors.Empty) then error(r, 0) end
    return false
  end, timeout)
  if not got then error(errors.Empty("queue is empty"), 0) end
  return true, v
end
function outside.put(obj, args)
  if type(obj) ~= "userdata" then return nil end
  local v, block, timeout = args[1], args[2], args[3]
  if block == false then return nil end
  local got = types.wait_until(function()
    local ok, r = pcall(obj.put, obj, v, false)
    if ok then return true end
    if not is_error(r, errors.Full) then error(r, 0) end
    return false
  end, timeout)
  if not got then error(errors.Full("queue is full"), 0) end
  return true
end
function outside.acquire(obj, args)
  if type(obj) ~= "userdata" then return nil end
  local block, timeout = args[1], args[2]
  if block == false then return nil end
  if timeout ~= nil and timeout < 0 then timeout = nil end
  return true, types.wait_until(function() return obj:acquire(false) end, timeout)
end
function outside.wait(obj, args)
  if type(obj) == "table" and type(obj.ready) == "function" then
    return true, types.wait_until(function() return obj:ready() end, args[1])
  end
  if type(obj) == "userdata" and type(obj.is_set) == "function" then  -- an Event
    return true, types.wait_until(function() return obj:is_set() end, args[1])
  end
  return nil
end

function outside.next(obj, args)
  local pool = package.loaded["multiprocessing.pool"]
  if not (pool and class.isinstance(obj, pool.IMapIterator)) then return nil end
  local v
  local got = types.wait_until(function()
    local ok, r = pcall(obj.next, obj, 0)
    if ok then v = r return true end
    if not is_error(r, errors.TimeoutError) then error(r, 0) end
    return false
  end, args[1])
  if not got then error(errors.TimeoutError(""), 0) end
  return true, v
end

local function call_outside(obj, name, args)
  local adapter = outside[name]
  if adapter == nil then return nil end
  if type(obj) == "table" and getmetatable(obj) and types.is_server_type(getmetatable(obj)) then return nil end
  return pack(adapter(obj, args))
end

-- The body of a "call" request, run in a coroutine: returns the reply.
local function call_body(server, client, req)
  local id, name, args = req[2], req[3], req[4] or {n = 0}
  local o = server.objects[id]
  if o == nil then
    return {false, string.format("unknown object id %s (freed, or from another manager)", tostring(id)), "remote"}
  end
  if type(name) ~= "string" then return {false, "bad method name", "remote"} end
  if o.exposed and not o.exposed[name] then
    return {false, string.format("method %s of %s object is not exposed", repr(name), repr(o.typeid)), "remote"}
  end
  local obj = o.obj
  if name == "_getvalue" and (type(obj) ~= "table" or obj._getvalue == nil) then
    return {true, obj, n = 2}
  end
  local f
  if type(obj) == "table" or type(obj) == "userdata" then f = obj[name] end
  if f == nil then
    return {false, string.format("%s object has no method %s", repr(o.typeid), repr(name)), "remote"}
  end
  if type(args) ~= "table" then return {false, "bad arguments", "remote"} end
  local r = call_outside(obj, name, args)
  if r and r[1] then
    table.remove(r, 1)
    r.n = r.n - 1
  else
    r = pack(f(obj, unpack(args, 1, args.n or #args)))
  end
  local m2t = o.m2t and o.m2t[name]
  if m2t then
    local spec = server.registry[m2t]
    if spec == nil then return {false, "unknown typeid " .. repr(m2t), "remote"} end
    local nid, exposed = server:_register_object(r[1], m2t, server:_spec_of(m2t))
    server:_incref(client, nid)
    return {true, n = 1, tok = {m2t, nid, exposed}}
  end
  table.insert(r, 1, true)
  r.n = r.n + 1
  return r
end

function Server:_spec_of(typeid)
  local spec = self.registry[typeid]
  if spec and spec.builtin then
    local b = types.builtin[spec.builtin]
    return {builtin = true, exposed = b.exposed, make = b.make, method_to_typeid = b.method_to_typeid}
  end
  return spec
end

local function create_body(server, client, req)
  local typeid, args = req[2], req[3] or {n = 0}
  local spec = type(typeid) == "string" and server:_spec_of(typeid)
  if not spec then return {false, "unknown typeid " .. repr(typeid), "remote"} end
  local make = spec.make or spec.callable
  if make == nil then return {false, "typeid " .. repr(typeid) .. " has no callable in this server", "remote"} end
  local obj = make(unpack(args, 1, args.n or #args))
  local id, exposed = server:_register_object(obj, typeid, spec)
  server:_incref(client, id)
  return {true, id, exposed, n = 3}
end

-- Sends a reply to a client; a client that does not take it in time, or
-- has gone, is dropped.
function Server:_reply(client, rep, seq)
  if client.dropped then return end
  rep.s = seq
  if not client.cid_sent then  -- the first reply tells the client its connection's id
    rep.cid = client.cid
    client.cid_sent = true
  end
  local ok, payload = pcall(core.dumps, rep)
  if not ok then
    payload = core.dumps({false, "cannot send the result back: " .. tostring(payload), "remote", s = seq})
  end
  local sent, err = pcall(core.manager_send, client.conn, payload, self.write_timeout)
  if not sent then
    util.debug("manager: dropping a client: " .. tostring(err))
    self:_drop_client(client)
  end
end

-- Runs (or resumes) a request's coroutine; parks it when it waits.
-- Request coroutines are reused: one runs bodies in a loop and yields
-- DONE with each reply (any other yield is a wait: a deadline and a poll
-- flag).  A body that raises kills its coroutine, which is not reused.
local DONE = setmetatable({}, {__name = "done"})
local idle_workers = {}
local function worker(body, a, b, c)
  -- The reply goes out in a box that _step empties, and the arguments are
  -- dropped before yielding: an idle worker must keep nothing of its last
  -- request alive (proxies in it are what hold their referents).
  local box = {}
  while true do
    box[1] = body(a, b, c)
    body, a, b, c = nil, nil, nil, nil
    body, a, b, c = coroutine.yield(DONE, box)
  end
end
local function get_worker()
  local n = #idle_workers
  if n > 0 then
    local co = idle_workers[n]
    idle_workers[n] = nil
    return co
  end
  local co = coroutine.create(worker)
  return co
end

function Server:_step(job, ...)
  types._set_current(job.client)
  local ok, rep, poll = coroutine.resume(job.co, ...)
  types._set_current(nil)
  if ok and rep == DONE then
    local reply = poll[1]
    poll[1] = nil
    if #idle_workers < 16 then idle_workers[#idle_workers + 1] = job.co end
    self:_reply(job.client, reply, job.seq)
    return true
  end
  if ok then
    job.deadline = rep or nil
    job.poll = poll
    self.parked[#self.parked + 1] = job
    return false
  end
  self:_reply(job.client, {false, with_traceback(rep, debug.traceback(job.co)), "error"}, job.seq)
  return true
end

-- Resumes parked requests until none of them finishes.
function Server:_retry_parked()
  local progress = true
  while progress and #self.parked > 0 do
    progress = false
    local list = self.parked
    self.parked = {}
    for _, job in ipairs(list) do
      if not job.cancelled and not job.client.dropped then
        if self:_step(job) then progress = true end
      else
        -- Abandoned: unwind it, so the object it waited on is left tidy.
        pcall(coroutine.close, job.co)
        progress = true
      end
    end
  end
end

-- The integer ids of a list from a request (anything else is ignored).
local function ids(list)
  if type(list) ~= "table" then return {} end
  local out = {}
  for _, id in ipairs(list) do if math.type(id) == "integer" then out[#out + 1] = id end end
  return out
end

function Server:_handle(client, req)
  if type(req) ~= "table" or type(req[1]) ~= "string" then
    return self:_reply(client, {false, "bad request", "remote"}, nil)
  end
  -- A new request from a client whose earlier one is parked: that one was
  -- abandoned (the caller was interrupted).
  if #self.parked > 0 then
    for _, job in ipairs(self.parked) do
      if job.client == client then job.cancelled = true end
    end
  end
  local list = req.adopt
  if list then for _, id in ipairs(ids(list)) do self:_adopt(client, id) end end
  list = req.inc
  if list then for _, id in ipairs(ids(list)) do self:_incref(client, id) end end
  list = req.dec
  if list then for _, id in ipairs(ids(list)) do self:_decref(client, id) end end
  -- A client replacing its interrupted connection (abandon): drop the old
  -- one now, after this request's references were taken.
  local old = type(req.drop) == "string" and self.by_cid[req.drop]
  if old and old ~= client then self:_drop_client(old) end
  if type(req.who) == "table" then
    client.pid, client.name = req.who[1], tostring(req.who[2])
  end
  local op, seq = req[1], req.s
  if op == "call" or op == "create" then
    local job = {client = client, seq = seq, co = get_worker()}
    self:_step(job, op == "call" and call_body or create_body, self, client, req)
  elseif op == "pending" then
    self:_add_pending(req[2])
    self:_reply(client, {true, n = 1}, seq)
  elseif op == "ping" then
    self:_reply(client, {true, "pong", n = 2}, seq)
  elseif op == "debug_info" then
    -- Proxies held by the server (values of its dicts and lists) are
    -- released by its collector: run it, so the count is exact.
    collectgarbage(); collectgarbage()
    self:_release_local()
    local count = 0
    for _ in pairs(self.objects) do count = count + 1 end
    local parked = 0
    for _, job in ipairs(self.parked) do
      if not job.cancelled and not job.client.dropped then parked = parked + 1 end
    end
    self:_reply(client, {true, count, parked, n = 3}, seq)
  elseif op == "shutdown" then
    util.debug("manager received shutdown message")
    self:_reply(client, {true, n = 1}, seq)
    self.running = false
  else
    self:_reply(client, {false, "unknown request " .. repr(op), "remote"}, seq)
  end
end

function Server:_drop_client(client)
  if client.dropped then return end
  client.dropped = true
  self.clients[client.conn] = nil
  self.by_cid[client.cid] = nil
  for i, c in ipairs(self.waitlist) do
    if c == client.conn then table.remove(self.waitlist, i) break end
  end
  -- A process that died holding a managed lock would leave it locked for
  -- ever: the server knows the holder, so the lock is freed (DESIGN.md:
  -- survivors must be able to go on).
  for _, o in pairs(self.objects) do
    local obj = o.obj
    local mt = type(obj) == "table" and getmetatable(obj)
    if (mt == types.Lock or mt == types.RLock) and obj.owner == client and obj.count > 0 then
      util.info(string.format("manager: releasing a %s held by %s, which is gone", mt.__name, client.name))
      obj.owner, obj.count = nil, 0
    end
  end
  for id, n in pairs(client.refs) do
    for _ = 1, n do self:_decref(client, id) end
  end
  pcall(client.conn.close, client.conn)
end

function Server:_accept()
  local ok, conn = pcall(self.listener.accept, self.listener)
  if not ok then
    util.debug("manager: refused a connection: " .. tostring(conn))
    return
  end
  self.client_counter = (self.client_counter or 0) + 1
  local client = {conn = conn, refs = {}, name = "client-" .. self.client_counter,
                  cid = self.client_counter .. "-" .. core.random_bytes(8)}
  self.by_cid[client.cid] = client
  self.clients[conn] = client
  self.waitlist[#self.waitlist + 1] = conn
end

function Server:_read(client)
  local ok, got, req = pcall(core.manager_recv, client.conn, self.read_timeout, 0x7fffffff)
  if not ok then
    util.debug("manager: dropping a client: " .. tostring(got))
    return self:_drop_client(client)
  end
  if not got then return self:_drop_client(client) end
  -- A request that makes the server itself fail (a malformed one that got
  -- past the checks) costs its client the connection, never the server.
  local handled, herr = pcall(self._handle, self, client, req)
  if not handled then
    util.debug("manager: dropping a client after a bad request: " .. tostring(herr))
    self:_drop_client(client)
  end
end

-- The wait for the next event: nil (forever) unless a parked request has a
-- deadline.
function Server:_next_timeout()
  local t = nil
  local now = monotonic()
  for _, job in ipairs(self.parked) do
    if job.deadline then
      local left = math.max(job.deadline - now, 0)
      if t == nil or left < t then t = left end
    end
    if job.poll and (t == nil or t > self.poll_step) then t = self.poll_step end
  end
  -- Wake up now and then: to notice a dead owner (a manager's server) and
  -- to collect garbage when idle.
  local idle = self.poll_interval or 1.0
  return t and math.min(t, idle) or idle
end

-- Returns the references of the server's own collected proxies.
function Server:_release_local()
  if #self.local_dec > 0 then
    local list = self.local_dec
    self.local_dec = {}
    for _, id in ipairs(list) do self:_decref(self.local_owner, id) end
  end
end

-- serve_forever(): serves until a client asks for shutdown (or the parent
-- of a manager's server process dies).
function Server:serve_forever()
  self.running = true
  servers_here[addr_key(self.address)] = self
  local waitfor = core.connection_wait
  local sentinel = self.parent_sentinel
  local ok, err = pcall(function()
    while self.running do
      local list = self.waitlist
      if sentinel then
        list = {table.unpack(self.waitlist)}
        list[#list + 1] = sentinel
      end
      local ready = waitfor(list, self:_next_timeout())
      if self.parent and not sentinel and #ready == 0 and not self.parent:is_alive() then
        self.running = false  -- the manager's owner is gone
      end
      for _, obj in ipairs(ready) do
        if obj == self.listener then
          self:_accept()
        elseif obj == sentinel then
          self.running = false
        else
          local client = self.clients[obj]
          if client then self:_read(client) end
        end
        if not self.running then break end
      end
      if #ready == 0 and #self.parked == 0 then
        -- Idle: collect, so the objects only referred to by proxies this
        -- server held (values it dropped) are freed without waiting for
        -- allocation to drive the collector.
        collectgarbage()
      end
      self:_release_local()
      self:_retry_parked()
    end
  end)
  self.running = false
  servers_here[addr_key(self.address)] = nil
  for conn in pairs(self.clients) do pcall(conn.close, conn) end
  self.clients = {}
  self.listener:close()
  if not ok then error(err, 0) end
end

-- The body of a manager's server process (the target of its Process).
function M._server_main(registry, address, authkey, writer, initializer, initargs)
  core.ignore_sigint()
  -- The server is started as a daemon (it dies with its owner) but may
  -- start children of its own: the workers of m:Pool().
  rawset(process.current_process(), "_daemon", false)
  if initializer then initializer(unpack(initargs or {}, 1, (initargs or {}).n or #(initargs or {}))) end
  local server = M.Server:new(registry, address, authkey)
  util.info("manager serving at " .. repr(server.address))
  writer:send(server.address)
  writer:close()
  local parent = process.parent_process()
  server.parent_sentinel = parent and math.type(parent.sentinel) == "integer" and parent.sentinel or nil
  server.parent = parent
  server.poll_interval = 1.0
  server:serve_forever()
end

---------------------------------------------------------------------------
-- BaseManager and SyncManager.

local BaseManager = class.new("BaseManager")
M.BaseManager = BaseManager
BaseManager._registry = {}

-- Manager classes cross processes (a spawned target that names one as an
-- upvalue): they share this registered metatable, whose __reduce sends the
-- class's name, base, own fields and registrations.
local ManagerClassMeta = {__name = "ManagerClass"}
function ManagerClassMeta.__index(cls, k)
  local p = rawget(cls, "__parent")
  if p then return p[k] end
end
function ManagerClassMeta.__call(cls, ...) return cls:new(...) end
local builtin_managers = {}   -- name -> class (BaseManager, SyncManager)
setmetatable(BaseManager, ManagerClassMeta)
builtin_managers.BaseManager = BaseManager

-- register(typeid [, callable [, {exposed=, method_to_typeid=, proxytype=,
-- create_method=}]]) on a manager class.
local function register_into(cls, typeid, callable, opts)
  if type(typeid) ~= "string" then
    error("bad argument #1 to 'register' (string expected, got " .. type(typeid) .. ")", 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #3 to 'register' (table of options expected, got " .. type(opts) .. ")", 3)
  end
  opts = opts or {}
  -- A subclass gets its own copy of the registry the first time it registers.
  if rawget(cls, "_registry") == nil then
    local copy = {}
    for k, v in pairs(cls._registry) do copy[k] = v end
    rawset(cls, "_registry", copy)
  end
  local proxytype = opts.proxytype
  if proxytype ~= nil and not class.issubclass(proxytype, BaseProxy) then
    error("bad argument 'proxytype' to 'register' (a BaseProxy:extend() class expected)", 3)
  end
  local exposed = opts.exposed
  if exposed == nil and proxytype ~= nil then exposed = proxytype._exposed_ end
  local m2t = opts.method_to_typeid
  if m2t == nil and proxytype ~= nil then m2t = proxytype._method_to_typeid_ end
  cls._registry[typeid] = {callable = callable, exposed = exposed, method_to_typeid = m2t,
                           proxytype = proxytype, create_method = opts.create_method}
  if opts.create_method ~= false then
    rawset(cls, typeid, function(self, ...) return self:_create(typeid, ...) end)
  end
end

local function manager_extend(self, name)
  local cls = {}
  for k, v in pairs(self) do
    if type(k) == "string" and k:sub(1, 2) == "__" and k ~= "__index" and k ~= "__name" and k ~= "__parent" then
      cls[k] = v
    end
  end
  cls.__index = cls
  cls.__name = name or ((rawget(self, "__name") or "BaseManager") .. "Subclass")
  cls.__parent = self
  cls.extend = manager_extend
  -- register is called with a dot (M.register(...)), so it is a closure
  -- that knows its class.
  cls.register = function(a, ...)
    if a == cls then return register_into(cls, ...) end
    return register_into(cls, a, ...)
  end
  return setmetatable(cls, ManagerClassMeta)
end

BaseManager.register = function(a, ...)
  if a == BaseManager then return register_into(BaseManager, ...) end
  return register_into(BaseManager, a, ...)
end
BaseManager.extend = manager_extend

local class_internal = {__index = true, __name = true, __parent = true, extend = true, register = true,
                        _registry = true}

function ManagerClassMeta.__reduce(cls)
  local name = rawget(cls, "__name")
  if builtin_managers[name] == cls then return {builtin = name} end
  local own = rawget(cls, "_registry") or {}
  local fields, registry = {}, {}
  local parent = rawget(cls, "__parent")
  for k, v in pairs(cls) do
    -- Metamethods copied down from the base are the base's: not sent.
    if not class_internal[k] and own[k] == nil and parent[k] ~= v then fields[k] = v end
  end
  for typeid, spec in pairs(own) do
    if not spec.builtin then
      registry[typeid] = {callable = spec.callable, exposed = spec.exposed,
                          method_to_typeid = spec.method_to_typeid, create_method = spec.create_method,
                          proxytype = spec.proxytype and class_desc(spec.proxytype)}
    end
  end
  return {name = name, parent = rawget(cls, "__parent"), fields = fields, registry = registry}
end

function ManagerClassMeta.__rebuild(t)
  if t.builtin then return builtin_managers[t.builtin] end
  local cls = manager_extend(t.parent, t.name)
  for k, v in pairs(t.fields) do rawset(cls, k, v) end
  for typeid, spec in pairs(t.registry) do
    register_into(cls, typeid, spec.callable, {
      exposed = spec.exposed, method_to_typeid = spec.method_to_typeid, create_method = spec.create_method,
      proxytype = spec.proxytype and class_from_desc(spec.proxytype)})
  end
  return cls
end
core.register_class("multiprocessing.managers.ManagerClass", ManagerClassMeta)

-- M{address=, authkey=} (or M(address, authkey)): a manager not started.
function BaseManager:new(opts, authkey)
  local address
  if type(opts) == "table" and opts.address == nil and opts.authkey == nil and opts[1] ~= nil then
    address = opts
  elseif type(opts) == "string" then
    address = opts
  elseif type(opts) == "table" then
    address, authkey = opts.address, opts.authkey or authkey
  elseif opts ~= nil then
    error("bad argument #1 to '" .. (rawget(self, "__name") or "BaseManager") .. "' (table of options expected)", 2)
  end
  if authkey ~= nil and type(authkey) ~= "string" then
    error("bad argument 'authkey' (string expected, got " .. type(authkey) .. ")", 2)
  end
  local m = setmetatable({}, self)
  m.address = address
  m.authkey = authkey or default_authkey()
  m._explicit_key = authkey ~= nil
  m._state = "initial"
  return m
end

function BaseManager:_proxytype(typeid)
  local spec = getmetatable(self)._registry[typeid]
  if spec == nil then return AutoProxy end
  if spec.proxytype then return spec.proxytype end
  if spec.builtin then return builtin_classes[types.builtin[spec.builtin].proxy] end
  return AutoProxy
end

-- What the server needs of the registry: builtins by name, the rest with
-- their callables.
function BaseManager:_server_registry()
  local out = {}
  for typeid, spec in pairs(getmetatable(self)._registry) do
    if spec.builtin then
      out[typeid] = {builtin = spec.builtin}
    else
      out[typeid] = {callable = spec.callable, exposed = spec.exposed, method_to_typeid = spec.method_to_typeid}
    end
  end
  return out
end

local function check_usable(self, fname)
  if self._state == "shutdown" then error(fname .. ": the manager has been shut down", 3) end
  if self.address == nil then error(fname .. ": the manager is not started or connected", 3) end
end

function BaseManager:_key()
  return self._explicit_key and self.authkey or nil
end

function BaseManager:_create(typeid, ...)
  check_usable(self, typeid)
  local e = entry_for(self.address, self:_key())
  local reply = request(e, {"create", typeid, pack(...)})
  local tok = {typeid, reply[2], self.address, exposed = reply[3]}
  return new_proxy(self:_proxytype(typeid), tok, self:_key(), e, self)
end

-- start([initializer [, initargs]]): starts the server process.
function BaseManager:start(initializer, initargs)
  if self._state ~= "initial" then error("start: the manager has already been started", 2) end
  if initializer ~= nil and type(initializer) ~= "function" then
    error("bad argument #1 to 'start' (function expected, got " .. type(initializer) .. ")", 2)
  end
  local reader, writer = core.Pipe(false)
  local P = self._process_class or process.Process
  local p = P{target = M._server_main,
              args = {self:_server_registry(), self.address, self.authkey, writer, initializer, initargs},
              daemon = true}
  local parts = {}
  for i, v in ipairs(rawget(p, "_identity")) do parts[i] = tostring(v) end
  p.name = (rawget(getmetatable(self), "__name") or "BaseManager") .. "-" .. table.concat(parts, ":")
  p:start()
  writer:close()
  local ok, addr = false, nil
  if reader:poll(60) then ok, addr = pcall(reader.recv, reader) end
  reader:close()
  if not ok then
    if p:is_alive() then p:terminate() end
    p:join(5)
    error("start: the manager's server process failed to start (exit code " .. tostring(p.exitcode) .. ")", 2)
  end
  self.address = addr
  self._process = p
  self._pid = getpid()
  self._state = "started"
  return self
end

-- connect(): use a server that is already running at self.address.
function BaseManager:connect()
  if self.address == nil then error("connect: no address given", 2) end
  local e = entry_for(self.address, self:_key())
  request(e, {"ping"})
  self._state = "connected"
  return self
end

-- get_server(): a Server for self.address in this process; call
-- serve_forever() on it.
function BaseManager:get_server()
  if self._state ~= "initial" then error("get_server: the manager has already been started", 2) end
  local server = M.Server:new(self:_server_registry(), self.address, self.authkey)
  self.address = server.address
  return server
end

-- shutdown(): stops and reaps the server process this manager started.
function BaseManager:shutdown()
  if self._state == "shutdown" then return end
  local p = self._process
  if p and self._pid == getpid() then
    util.info("sending shutdown message to manager")
    pcall(function()
      local c <close> = core.Client(self.address, {authkey = self.authkey})
      core.manager_call(c, core.dumps({"shutdown", s = 1}))
    end)
    p:join(5.0)  -- it exits as soon as it has answered (more under a heavy load)
    if p:is_alive() then p:terminate(); p:join(1.0) end
    if p:is_alive() then p:kill(); p:join() end
    p:close()  -- its sentinel fd
  end
  drop_entry(self.address)
  self._state = "shutdown"
end

-- shutdown_server(): asks the server at self.address to stop (a luamp
-- addition for connect()ed managers; any client with the key may).
function BaseManager:shutdown_server()
  if self.address == nil then error("shutdown_server: no address", 2) end
  local e = entry_for(self.address, self:_key())
  request(e, {"shutdown"})
  drop_entry(self.address)
end

function BaseManager:join(timeout)
  if self._process and self._state ~= "shutdown" then self._process:join(timeout) end
end

BaseManager.__close = BaseManager.shutdown
function BaseManager.__gc(self)
  -- Collected without shutdown: stop the server (no I/O here).
  local p = rawget(self, "_process")
  if p and rawget(self, "_state") == "started" and rawget(self, "_pid") == getpid() then
    pcall(function() if p:is_alive() then p:terminate() end p:join(1.0) end)
  end
end

function BaseManager.__tostring(self)
  return string.format("<%s address=%s %s>", rawget(getmetatable(self), "__name") or "BaseManager",
                       repr(self.address), self._state)
end

-- m:_debug_info() -> number of live objects in the server, parked requests.
function BaseManager:_debug_info()
  check_usable(self, "_debug_info")
  local reply = request(entry_for(self.address, self:_key()), {"debug_info"})
  return reply[2], reply[3]
end

local SyncManager = BaseManager:extend("SyncManager")
M.SyncManager = SyncManager
builtin_managers.SyncManager = SyncManager
for _, typeid in ipairs(types.builtin_order) do
  SyncManager.register(typeid, nil, {create_method = not types.builtin[typeid].no_create})
  SyncManager._registry[typeid].builtin = typeid
end
-- Python's names for the two plain containers.
SyncManager.dict = function(self, t) return self:_create("dict", t) end
SyncManager.list = function(self, t) return self:_create("list", t) end

-- mp.Manager(): a started SyncManager (its server uses the default start
-- method, or the context's).
function M.Manager(method)
  local m = SyncManager()
  if method then
    local P = process.Process:extend("Process")
    P._start_method = method
    m._process_class = P
  end
  return m:start()
end

-- Namespace (the class of the object m:Namespace() stands for) and
-- LocalQueue (a plain FIFO in one process, Python's queue.Queue: what a
-- custom manager registers to serve a queue to other hosts).
M.Namespace = types.Namespace
M.LocalQueue = types.Queue
M.wait_until = types.wait_until

return M
