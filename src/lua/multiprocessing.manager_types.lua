-- The objects a SyncManager's server holds (API.md "Managers"): the
-- referents behind m:dict(), m:list(), m:Namespace(), m:Value(), m:Array(),
-- m:Queue(), m:JoinableQueue() and the managed synchronization objects.
-- Used only inside the server process (multiprocessing.managers); clients
-- reach them through proxies.
--
-- The server is one Lua thread.  A method that would block (a queue's get,
-- a lock's acquire, Event/Condition/Barrier waits) runs inside the request's
-- coroutine and waits with M.block_until(pred, timeout): when pred is false
-- the coroutine yields its deadline and the server parks the request,
-- resumes it after each other request and when the deadline passes
-- (docs/design/managers.md).  "The caller" of a method is the client
-- connection the request came from (M.current_client()), which is what a
-- lock's owner is.
local class = require "multiprocessing.class"
local core = require "multiprocessing.core"
local errors = require "multiprocessing.errors"

local M = {}

local monotonic = core.monotonic
local current = nil  -- the client (a table) whose request is running

-- The client whose request is running (a lock's owner), or a fixed token
-- for calls made by the server process itself.
local server_self = {name = "server"}
function M.current_client() return current or server_self end
function M._set_current(c) current = c end

-- Waits until pred() is true, at most `timeout` seconds (nil: forever).
-- Returns true when pred became true, false on timeout.  Yields to the
-- server's scheduler; outside a request coroutine it cannot wait.  With
-- `poll`, pred depends on something outside the server (another process,
-- a native object): the server then re-checks it every few milliseconds
-- instead of only after each request.
function M.block_until(pred, timeout, poll)
  if pred() then return true end
  if timeout ~= nil and timeout <= 0 then return false end
  local deadline = timeout and (monotonic() + timeout)
  if current == nil or not coroutine.isyieldable() then
    -- Not inside a manager server's request: nothing would wake us.
    error("cannot wait here: only a manager's server waits on this object (use a timeout of 0, or the"
          .. " _nowait form)", 0)
  end
  local me = current
  while true do
    coroutine.yield(deadline or false, poll)
    current = me
    if pred() then return true end
    if deadline and monotonic() >= deadline then return false end
  end
end

-- mp.managers.wait_until(pred [, timeout]): for referents of custom types
-- that wait on something outside the server; see block_until.
function M.wait_until(pred, timeout)
  if type(pred) ~= "function" then
    error("bad argument #1 to 'wait_until' (function expected, got " .. type(pred) .. ")", 2)
  end
  return M.block_until(pred, timeout, true)
end

-- Python's blocking/timeout pair: block false means "do not wait";
-- a negative or nil timeout with block means "forever".
local function wait_time(block, timeout)
  if block == false then return 0 end
  if timeout == nil or timeout < 0 then return nil end
  return timeout
end

-- Value equality for list searches: plain tables compare by contents.
local function equal(a, b, depth)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" or getmetatable(a) or getmetatable(b) then return false end
  depth = (depth or 0) + 1
  if depth > 32 then return false end
  for k, v in pairs(a) do if not equal(v, b[k], depth) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
M.equal = equal

local function seq_len(t)
  if type(t) ~= "table" then return 0 end
  if math.type(t.n) == "integer" then return t.n end
  return #t
end

-- The referent behind a proxy that this server holds (set by the server:
-- a proxy of one of its own objects stored in another), else v itself.
M.resolve_hook = nil
local function plain(v)
  if M.resolve_hook then
    local r = M.resolve_hook(v)
    if r ~= nil then return r end
  end
  return v
end
M.plain = plain

---------------------------------------------------------------------------
-- dict: insertion-ordered, as Python's.

local Dict = class.new("dict")
M.Dict = Dict
local HOLE = setmetatable({}, {__name = "hole"})

function Dict:new(init)
  local d = setmetatable({_vals = {}, _pos = {}, _keys = {}, n = 0, _count = 0}, self)
  if init ~= nil then d:update(init) end
  return d
end

local function dict_compact(d)
  local keys, n = {}, 0
  for i = 1, d.n do
    local k = d._keys[i]
    if k ~= HOLE then
      n = n + 1
      keys[n] = k
      d._pos[k] = n
    end
  end
  d._keys, d.n = keys, n
end

function Dict:__getitem__(k) return self._vals[k] end
function Dict:__setitem__(k, v)
  if k == nil then error("dict key cannot be nil", 0) end
  if v == nil then return self:__delitem__(k) end
  if self._vals[k] == nil then
    self.n = self.n + 1
    self._keys[self.n] = k
    self._pos[k] = self.n
    self._count = self._count + 1
  end
  self._vals[k] = v
end
function Dict:__delitem__(k)
  local i = self._pos[k]
  if i == nil then return end
  self._keys[i] = HOLE
  self._pos[k] = nil
  self._vals[k] = nil
  self._count = self._count - 1
  if self.n > 32 and self._count < self.n / 2 then dict_compact(self) end
end
function Dict:__len__() return self._count end
function Dict:keys()
  local out, j = {}, 0
  for i = 1, self.n do
    local k = self._keys[i]
    if k ~= HOLE then j = j + 1; out[j] = k end
  end
  return out
end
function Dict:values()
  local out, j = {}, 0
  for i = 1, self.n do
    local k = self._keys[i]
    if k ~= HOLE then j = j + 1; out[j] = self._vals[k] end
  end
  return out
end
function Dict:items()
  local out, j = {}, 0
  for i = 1, self.n do
    local k = self._keys[i]
    if k ~= HOLE then j = j + 1; out[j] = {k, self._vals[k]} end
  end
  return out
end
function Dict:get(k, default)
  local v = self._vals[k]
  if v == nil then return default end
  return v
end
function Dict:pop(...)
  local k, default = ...
  local v = self._vals[k]
  if v == nil then
    if select("#", ...) < 2 then error("pop: key not found: " .. repr(k), 0) end
    return default
  end
  self:__delitem__(k)
  return v
end
function Dict:popitem()
  for i = self.n, 1, -1 do
    local k = self._keys[i]
    if k ~= HOLE then
      local v = self._vals[k]
      self:__delitem__(k)
      return k, v
    end
  end
  error("popitem(): dictionary is empty", 0)
end
function Dict:setdefault(k, v)
  local cur = self._vals[k]
  if cur ~= nil then return cur end
  self:__setitem__(k, v)
  return v
end
function Dict:update(t)
  t = plain(t)
  if type(t) ~= "table" then error("bad argument #1 to 'update' (table expected, got " .. type(t) .. ")", 0) end
  if getmetatable(t) == Dict then t = t:copy() end
  -- Sorted like repr, so the insertion order is deterministic.
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  for _, k in ipairs(ks) do self:__setitem__(k, t[k]) end
end
function Dict:copy()
  local out = {}
  for i = 1, self.n do
    local k = self._keys[i]
    if k ~= HOLE then out[k] = self._vals[k] end
  end
  return out
end
Dict._getvalue = Dict.copy
function Dict:clear()
  self._vals, self._pos, self._keys, self.n, self._count = {}, {}, {}, 0, 0
end
function Dict:__contains__(k) return self._vals[k] ~= nil end
Dict.exposed = {"__getitem__", "__setitem__", "__delitem__", "__len__", "__contains__", "keys", "values",
                "items", "get", "pop", "popitem", "setdefault", "update", "copy", "clear", "_getvalue"}

---------------------------------------------------------------------------
-- list: 1-based, with an explicit length so nil elements are kept.

local List = class.new("list")
M.List = List

function List:new(init)
  local l = setmetatable({items = {}, n = 0}, self)
  if init ~= nil then l:extend(init) end
  return l
end

local function check_index(self, i, fname, allow_end)
  if math.type(i) ~= "integer" then
    if type(i) == "number" and i == math.floor(i) then return math.tointeger(i) end
    error(string.format("bad argument #1 to '%s' (integer index expected, got %s)", fname,
                        math.type(i) or type(i)), 0)
  end
  if i < 1 or i > self.n + (allow_end and 1 or 0) then
    error(string.format("%s: list index %d out of range (length %d)", fname, i, self.n), 0)
  end
  return i
end

function List:__getitem__(i)
  if math.type(i) ~= "integer" then
    if type(i) == "number" and i == math.floor(i) then i = math.tointeger(i) else return nil end
  end
  if i < 1 or i > self.n then return nil end
  return self.items[i]
end
function List:__setitem__(i, v)
  i = check_index(self, i, "__setitem__")
  self.items[i] = v
end
function List:__len__() return self.n end
function List:append(v)
  self.n = self.n + 1
  self.items[self.n] = v
end
function List:extend(t)
  t = plain(t)
  if type(t) ~= "table" then error("bad argument #1 to 'extend' (table expected, got " .. type(t) .. ")", 0) end
  if getmetatable(t) == List then t = t:copy() end
  for i = 1, seq_len(t) do self:append(t[i]) end
end
function List:insert(i, v)
  if math.type(i) ~= "integer" then error("bad argument #1 to 'insert' (integer expected)", 0) end
  if i < 1 then i = 1 end
  if i > self.n + 1 then i = self.n + 1 end
  for j = self.n, i, -1 do self.items[j + 1] = self.items[j] end
  self.items[i] = v
  self.n = self.n + 1
end
function List:pop(i)
  if self.n == 0 then error("pop from empty list", 0) end
  if i == nil then i = self.n end
  i = check_index(self, i, "pop")
  local v = self.items[i]
  for j = i, self.n - 1 do self.items[j] = self.items[j + 1] end
  self.items[self.n] = nil
  self.n = self.n - 1
  return v
end
function List:index(v, start, stop)
  for i = start or 1, math.min(stop or self.n, self.n) do
    if equal(self.items[i], v) then return i end
  end
  error("index: " .. repr(v) .. " is not in list", 0)
end
function List:remove(v)
  for i = 1, self.n do
    if equal(self.items[i], v) then
      self:pop(i)
      return
    end
  end
  error("remove: " .. repr(v) .. " is not in list", 0)
end
function List:count(v)
  local c = 0
  for i = 1, self.n do if equal(self.items[i], v) then c = c + 1 end end
  return c
end
function List:reverse()
  local t, n = self.items, self.n
  for i = 1, n // 2 do t[i], t[n + 1 - i] = t[n + 1 - i], t[i] end
end
function List:sort(cmp)
  if cmp ~= nil and type(cmp) ~= "function" then
    error("bad argument #1 to 'sort' (function expected, got " .. type(cmp) .. ")", 0)
  end
  for i = 1, self.n do
    if self.items[i] == nil then error("sort: list contains nil", 0) end
  end
  table.sort(self.items, cmp)
end
function List:totable(i, j)
  i = i or 1
  j = math.min(j or self.n, self.n)
  local out = {}
  if i < 1 then i = 1 end
  for k = i, j do out[k - i + 1] = self.items[k] end
  return out
end
function List:copy() return self:totable() end
List._getvalue = List.copy
function List:clear() self.items, self.n = {}, 0 end
List.exposed = {"__getitem__", "__setitem__", "__len__", "append", "extend", "insert", "pop", "remove",
                "reverse", "sort", "index", "count", "copy", "clear", "totable", "_getvalue"}

---------------------------------------------------------------------------
-- Namespace: a bag of attributes.

local Namespace = class.new("Namespace")
M.Namespace = Namespace
function Namespace:new(init)
  local ns = setmetatable({attrs = {}}, self)
  if type(init) == "table" then for k, v in pairs(init) do ns.attrs[k] = v end end
  return ns
end
function Namespace:__getattribute__(k) return self.attrs[k] end
function Namespace:__setattr__(k, v) self.attrs[k] = v end
function Namespace:__delattr__(k) self.attrs[k] = nil end
function Namespace:_getvalue()
  local out = {}
  for k, v in pairs(self.attrs) do out[k] = v end
  return out
end
Namespace.exposed = {"__getattribute__", "__setattr__", "__delattr__", "_getvalue"}

---------------------------------------------------------------------------
-- Value and Array (Python's managed Value/Array: holders with a typecode).

local int_codes = {b = true, B = true, h = true, H = true, i = true, I = true, l = true, L = true,
                   q = true, Q = true}
local function check_typecode(tc, fname)
  if type(tc) ~= "string" or not (int_codes[tc] or tc == "f" or tc == "d" or tc == "c" or tc == "?"
                                   or tc == "u") then
    error(string.format("bad argument #1 to '%s' (bad typecode %s)", fname, repr(tc)), 0)
  end
end
local function coerce(tc, v, fname)
  if v == nil then return nil end
  if int_codes[tc] then
    local i = math.tointeger(v)
    if i == nil then error(string.format("%s: typecode '%s' needs an integer, got %s", fname, tc, repr(v)), 0) end
    return i
  elseif tc == "f" or tc == "d" then
    if type(v) ~= "number" then error(string.format("%s: typecode '%s' needs a number, got %s", fname, tc, repr(v)), 0) end
    return v + 0.0
  elseif tc == "?" then
    return not not v
  end
  return v
end

local Value = class.new("Value")
M.Value = Value
function Value:new(tc, v)
  check_typecode(tc, "Value")
  return setmetatable({typecode = tc, v = coerce(tc, v, "Value")}, self)
end
function Value:get() return self.v end
function Value:set(v) self.v = coerce(self.typecode, v, "set") end
Value._getvalue = Value.get
Value.exposed = {"get", "set", "_getvalue"}

local Array = class.new("Array")
M.Array = Array
function Array:new(tc, init)
  check_typecode(tc, "Array")
  local a = setmetatable({typecode = tc, items = {}, n = 0}, self)
  if math.type(init) == "integer" then
    if init < 0 then error("bad argument #2 to 'Array' (negative size)", 0) end
    local zero = (tc == "c" or tc == "u") and "\0" or (tc == "?" and false or ((tc == "f" or tc == "d") and 0.0 or 0))
    for i = 1, init do a.items[i] = zero end
    a.n = init
  elseif type(init) == "table" then
    init = plain(init)
    if getmetatable(init) == List or getmetatable(init) == Array then init = init:copy() end
    for i = 1, seq_len(init) do a.items[i] = coerce(tc, init[i], "Array") end
    a.n = seq_len(init)
  else
    error("bad argument #2 to 'Array' (size or sequence expected, got " .. type(init) .. ")", 0)
  end
  return a
end
function Array:__len__() return self.n end
function Array:__getitem__(i)
  if math.type(i) ~= "integer" or i < 1 or i > self.n then return nil end
  return self.items[i]
end
function Array:__setitem__(i, v)
  if math.type(i) ~= "integer" or i < 1 or i > self.n then
    error(string.format("__setitem__: array index %s out of range (length %d)", tostring(i), self.n), 0)
  end
  self.items[i] = coerce(self.typecode, v, "__setitem__")
end
Array.totable = List.totable
function Array:copy() return self:totable() end
function Array:_getvalue() return self:totable() end
Array.exposed = {"__len__", "__getitem__", "__setitem__", "totable", "_getvalue"}

---------------------------------------------------------------------------
-- Queue and JoinableQueue (Python's queue.Queue behind a manager).

local Queue = class.new("LocalQueue")
M.Queue = Queue
function Queue:new(maxsize)
  if maxsize ~= nil and math.type(maxsize) ~= "integer" then
    error("bad argument #1 to 'Queue' (integer expected, got " .. type(maxsize) .. ")", 0)
  end
  return setmetatable({maxsize = maxsize or 0, items = {}, head = 1, tail = 0, unfinished = 0}, self)
end
function Queue:qsize() return self.tail - self.head + 1 end
function Queue:empty() return self:qsize() == 0 end
function Queue:full() return self.maxsize > 0 and self:qsize() >= self.maxsize end
function Queue:put(v, block, timeout)
  if not M.block_until(function() return not self:full() end, wait_time(block, timeout)) then
    error(errors.Full("queue is full"), 0)
  end
  self.tail = self.tail + 1
  self.items[self.tail] = v
  self.unfinished = self.unfinished + 1
end
function Queue:get(block, timeout)
  if not M.block_until(function() return self.tail >= self.head end, wait_time(block, timeout)) then
    error(errors.Empty("queue is empty"), 0)
  end
  local v = self.items[self.head]
  self.items[self.head] = nil
  self.head = self.head + 1
  if self.head > self.tail then self.head, self.tail = 1, 0 end
  return v
end
function Queue:put_nowait(v) return self:put(v, false) end
function Queue:get_nowait() return self:get(false) end
function Queue:task_done()
  if self.unfinished <= 0 then error("task_done() called too many times", 0) end
  self.unfinished = self.unfinished - 1
end
function Queue:join(timeout)
  return M.block_until(function() return self.unfinished == 0 end, timeout)
end
function Queue:__repr__() return string.format("<Queue(qsize=%d)>", self:qsize()) end
Queue.exposed = {"put", "get", "put_nowait", "get_nowait", "qsize", "empty", "full", "__repr__"}
M.JoinableQueue = Queue
M.joinable_exposed = {"put", "get", "put_nowait", "get_nowait", "qsize", "empty", "full", "task_done",
                      "join", "__repr__"}

---------------------------------------------------------------------------
-- Lock, RLock, Semaphore, BoundedSemaphore.

local Lock = class.new("Lock")
M.Lock = Lock
function Lock:new() return setmetatable({owner = nil, count = 0, recursive = false}, self) end
function Lock:acquire(block, timeout)
  local me = M.current_client()
  if self.recursive and self.owner == me then
    self.count = self.count + 1
    return true
  end
  if not M.block_until(function() return self.count == 0 end, wait_time(block, timeout)) then return false end
  self.owner, self.count = me, 1
  return true
end
function Lock:release()
  if self.count == 0 then
    error(self.recursive and "cannot release un-acquired lock" or "release unlocked lock", 0)
  end
  if self.recursive and self.owner ~= M.current_client() then error("cannot release un-acquired lock", 0) end
  self.count = self.count - 1
  if self.count == 0 then self.owner = nil end
end
function Lock:locked() return self.count > 0 end
local function owner_text(self)
  if self.count == 0 then return "None" end
  return tostring(self.owner.name or self.owner.pid or "?")
end
function Lock:__repr__()
  if self.recursive then
    return string.format("<RLock(owner=%s, count=%d)>", owner_text(self), self.count)
  end
  return string.format("<Lock(owner=%s)>", owner_text(self))
end
-- Condition support: release completely / restore.
function Lock:_release_save()
  local saved = {self.owner, self.count}
  self.owner, self.count = nil, 0
  return saved
end
function Lock:_acquire_restore(saved)
  M.block_until(function() return self.count == 0 end)
  self.owner, self.count = saved[1], saved[2]
end
function Lock:_is_owned() return self.count > 0 and self.owner == M.current_client() end
Lock.exposed = {"acquire", "release", "locked", "__repr__"}

local RLock = Lock:extend("RLock")
M.RLock = RLock
function RLock:new() return setmetatable({owner = nil, count = 0, recursive = true}, self) end

local Semaphore = class.new("Semaphore")
M.Semaphore = Semaphore
function Semaphore:new(value)
  value = value == nil and 1 or value
  if math.type(value) ~= "integer" or value < 0 then
    error("bad argument #1 to 'Semaphore' (non-negative integer expected)", 0)
  end
  return setmetatable({value = value, initial = value, bounded = false}, self)
end
function Semaphore:acquire(block, timeout)
  if not M.block_until(function() return self.value > 0 end, wait_time(block, timeout)) then return false end
  self.value = self.value - 1
  return true
end
function Semaphore:release(n)
  n = n or 1
  if self.bounded and self.value + n > self.initial then error("Semaphore released too many times", 0) end
  self.value = self.value + n
end
function Semaphore:get_value() return self.value end
function Semaphore:__repr__()
  return string.format("<%s(value=%d)>", self.bounded and "BoundedSemaphore" or "Semaphore", self.value)
end
Semaphore.exposed = {"acquire", "release", "get_value", "__repr__"}
local BoundedSemaphore = Semaphore:extend("BoundedSemaphore")
M.BoundedSemaphore = BoundedSemaphore
function BoundedSemaphore:new(value)
  local s = Semaphore.new(self, value)
  s.bounded = true
  return s
end

---------------------------------------------------------------------------
-- Condition, Event, Barrier.

local Condition = class.new("Condition")
M.Condition = Condition
function Condition:new(lock)
  lock = lock ~= nil and plain(lock) or RLock:new()
  if type(lock) ~= "table" or not lock._release_save then
    error("bad argument #1 to 'Condition' (a managed Lock or RLock expected)", 0)
  end
  return setmetatable({lock = lock, waiters = {}}, self)
end
function Condition:acquire(block, timeout) return self.lock:acquire(block, timeout) end
function Condition:release() return self.lock:release() end
function Condition:wait(timeout)
  if not self.lock:_is_owned() then error("cannot wait on un-acquired lock", 0) end
  local w = {notified = false}
  self.waiters[#self.waiters + 1] = w
  -- Leaving without a notification (timeout, or a caller that went away:
  -- the server closes its coroutine) takes the waiter off the list, so no
  -- later notify is spent on it.
  local _ <close> = setmetatable({}, {__close = function()
    if not w.notified then
      for i, x in ipairs(self.waiters) do if x == w then table.remove(self.waiters, i) break end end
    end
  end})
  local saved = self.lock:_release_save()
  local ok = M.block_until(function() return w.notified end, timeout)
  self.lock:_acquire_restore(saved)
  return ok
end
function Condition:notify(n)
  if not self.lock:_is_owned() then error("cannot notify on un-acquired lock", 0) end
  n = n or 1
  while n > 0 and #self.waiters > 0 do
    table.remove(self.waiters, 1).notified = true
    n = n - 1
  end
end
function Condition:notify_all() return self:notify(math.maxinteger) end
function Condition:__repr__() return string.format("<Condition(waiters=%d)>", #self.waiters) end
Condition.exposed = {"acquire", "release", "wait", "notify", "notify_all", "__repr__"}

local Event = class.new("Event")
M.Event = Event
function Event:new() return setmetatable({flag = false}, self) end
function Event:is_set() return self.flag end
function Event:set() self.flag = true end
function Event:clear() self.flag = false end
function Event:wait(timeout)
  return M.block_until(function() return self.flag end, timeout)
end
function Event:__repr__() return string.format("<Event(%s)>", self.flag and "set" or "unset") end
Event.exposed = {"is_set", "set", "clear", "wait", "__repr__"}

-- Barrier: Python's threading.Barrier state machine, cooperative.  States:
-- 0 filling, 1 draining, -1 resetting, -2 broken.
local Barrier = class.new("Barrier")
M.Barrier = Barrier
function Barrier:new(parties, action, timeout)
  if math.type(parties) ~= "integer" or parties < 1 then
    error("bad argument #1 to 'Barrier' (positive integer expected)", 0)
  end
  return setmetatable({parties = parties, action = action, timeout = timeout, count = 0, state = 0}, self)
end
local function broken_error()
  return errors.BrokenBarrierError("barrier is broken")
end
function Barrier:wait(timeout)
  if timeout == nil then timeout = self.timeout end
  M.block_until(function() return self.state ~= 1 and self.state ~= -1 end)
  if self.state < 0 then error(broken_error(), 0) end
  local index = self.count
  self.count = self.count + 1
  -- A waiter whose caller went away (its coroutine is closed by the server)
  -- breaks the barrier, as an interrupted thread does in Python.
  local finished = false
  local _ <close> = setmetatable({}, {__close = function()
    if not finished then
      self.count = self.count - 1
      self.state = -2
    end
  end})
  local ok, err = pcall(function()
    if index + 1 == self.parties then
      if self.action then
        local ok2, e = pcall(self.action)
        if not ok2 then
          self.state = -2
          error(e, 0)
        end
      end
      self.state = 1
    else
      if not M.block_until(function() return self.state ~= 0 end, timeout) then
        self.state = -2
        error(broken_error(), 0)
      end
      if self.state < 0 then error(broken_error(), 0) end
    end
  end)
  finished = true
  self.count = self.count - 1
  if self.count == 0 and (self.state == -1 or self.state == 1) then self.state = 0 end
  if not ok then error(err, 0) end
  return index
end
function Barrier:reset()
  if self.count > 0 then
    if self.state == 0 or self.state == -2 then self.state = -1 end
  else
    self.state = 0
  end
end
function Barrier:abort() self.state = -2 end
function Barrier:__getattribute__(k)
  if k == "parties" then return self.parties end
  if k == "n_waiting" then return self.state == 0 and self.count or 0 end
  if k == "broken" then return self.state == -2 end
  return nil
end
function Barrier:__repr__()
  return string.format("<Barrier(parties=%d, n_waiting=%d, broken=%s)>", self.parties,
                       self.state == 0 and self.count or 0, tostring(self.state == -2))
end
Barrier.exposed = {"wait", "reset", "abort", "__getattribute__", "__repr__"}

---------------------------------------------------------------------------
-- Pool: a pool owned by the server process (m:Pool(n)).  The *_async
-- methods and imap return the pool's own result objects, which the server
-- keeps as referents (method_to_typeid); their waits are polled
-- (managers.lua, "outside").  The blocking methods wait cooperatively.

local ManagedPool = class.new("ManagedPool")
M.ManagedPool = ManagedPool
function ManagedPool:new(...)
  local mp = require "multiprocessing"
  return setmetatable({pool = mp.Pool(...)}, self)
end
for _, name in ipairs {"apply_async", "map_async", "starmap_async", "imap", "imap_unordered", "close",
                       "terminate"} do
  ManagedPool[name] = function(self, ...) return self.pool[name](self.pool, ...) end
end
local function result_of(r)
  M.wait_until(function() return r:ready() end)
  return r:get(0)
end
function ManagedPool:apply(f, args) return result_of(self.pool:apply_async(f, args)) end
function ManagedPool:map(f, seq, chunksize) return result_of(self.pool:map_async(f, seq, chunksize)) end
function ManagedPool:starmap(f, seq, chunksize) return result_of(self.pool:starmap_async(f, seq, chunksize)) end
-- join(): after close(), the submitted work finishes (polled), then the
-- workers are joined.
function ManagedPool:join()
  local pool = self.pool
  if pool._state == "CLOSE" then
    M.wait_until(function()
      pool:_pump(0)
      return not pool:_has_work() and pool._feed_head > pool._feed_tail
    end)
  end
  return pool:join()
end
function ManagedPool:__repr__() return tostring(self.pool) end
ManagedPool.exposed = {"apply", "apply_async", "map", "map_async", "starmap", "starmap_async", "imap",
                       "imap_unordered", "close", "terminate", "join", "__repr__"}
ManagedPool.method_to_typeid = {apply_async = "AsyncResult", map_async = "AsyncResult",
                                starmap_async = "AsyncResult", imap = "Iterator", imap_unordered = "Iterator"}

-- True for the classes defined here (they wait cooperatively themselves).
function M.is_server_type(mt)
  return mt == Dict or mt == List or mt == Namespace or mt == Value or mt == Array or mt == Queue
      or mt == Lock or mt == RLock or mt == Semaphore or mt == BoundedSemaphore or mt == Condition
      or mt == Event or mt == Barrier
end

-- The builtin typeids of SyncManager: typeid -> {make, exposed, proxy}.
-- `proxy` names the client-side proxy class (multiprocessing.managers).
M.builtin = {
  dict = {make = function(t) return Dict:new(t) end, exposed = Dict.exposed, proxy = "DictProxy"},
  list = {make = function(t) return List:new(t) end, exposed = List.exposed, proxy = "ListProxy"},
  Namespace = {make = function(t) return Namespace:new(t) end, exposed = Namespace.exposed,
               proxy = "NamespaceProxy"},
  Value = {make = function(tc, v) return Value:new(tc, v) end, exposed = Value.exposed, proxy = "ValueProxy"},
  Array = {make = function(tc, s) return Array:new(tc, s) end, exposed = Array.exposed, proxy = "ArrayProxy"},
  Queue = {make = function(n) return Queue:new(n) end, exposed = Queue.exposed, proxy = "QueueProxy"},
  JoinableQueue = {make = function(n) return Queue:new(n) end, exposed = M.joinable_exposed,
                   proxy = "QueueProxy"},
  Lock = {make = function() return Lock:new() end, exposed = Lock.exposed, proxy = "AcquirerProxy"},
  RLock = {make = function() return RLock:new() end, exposed = Lock.exposed, proxy = "AcquirerProxy"},
  Semaphore = {make = function(v) return Semaphore:new(v) end, exposed = Semaphore.exposed,
               proxy = "AcquirerProxy"},
  BoundedSemaphore = {make = function(v) return BoundedSemaphore:new(v) end, exposed = Semaphore.exposed,
                      proxy = "AcquirerProxy"},
  Condition = {make = function(l) return Condition:new(l) end, exposed = Condition.exposed,
               proxy = "ConditionProxy"},
  Event = {make = function() return Event:new() end, exposed = Event.exposed, proxy = "EventProxy"},
  Barrier = {make = function(n, a, t) return Barrier:new(n, a, t) end, exposed = Barrier.exposed,
             proxy = "BarrierProxy"},
  Pool = {make = function(...) return ManagedPool:new(...) end, exposed = ManagedPool.exposed,
          method_to_typeid = ManagedPool.method_to_typeid, proxy = "PoolProxy"},
  AsyncResult = {exposed = {"get", "wait", "ready", "successful"}, proxy = "AsyncResultProxy",
                 no_create = true},
  Iterator = {exposed = {"next"}, proxy = "IteratorProxy", no_create = true},
}
M.builtin_order = {"dict", "list", "Namespace", "Value", "Array", "Queue", "JoinableQueue", "Lock", "RLock",
                   "Semaphore", "BoundedSemaphore", "Condition", "Event", "Barrier", "Pool", "AsyncResult",
                   "Iterator"}

return M
