-- Synchronization types composed in Lua over the native ones
-- (src/mp/synchronize.cpp): Condition:wait_for and Barrier (Python's
-- threading.Barrier algorithm over a shared Condition and a shared state
-- array).  init.lua puts them into mp.
local core = require "multiprocessing.core"
local class = require "multiprocessing.class"
local errors = require "multiprocessing.errors"

local M = {}

-- Condition:wait_for(predicate [, timeout]) -> the predicate's last result.
-- Waits until predicate() is true, re-checking after each notification, for
-- at most timeout seconds in total.
local condition_methods = core.metatable("mp.Condition").__index
function condition_methods.wait_for(cond, predicate, timeout)
  if type(predicate) ~= "function" and not (getmetatable(predicate) or {}).__call then
    error("bad argument #1 to 'wait_for' (function expected, got " .. type(predicate) .. ")", 2)
  end
  local result = predicate()
  if result then return result end
  local deadline = timeout and os.monotonic() + timeout
  while not result do
    local waittime
    if deadline then
      waittime = deadline - os.monotonic()
      if waittime <= 0 then break end
    end
    cond:wait(waittime)
    result = predicate()
  end
  return result
end

-- Barrier(parties [, action [, timeout]]).  The shared state lives in a
-- RawArray: state (0 filling, 1 draining, -1 resetting, -2 broken) and count.
local Barrier = class.new("Barrier")
M.Barrier = Barrier

local FILLING, DRAINING, RESETTING, BROKEN = 0, 1, -1, -2

function Barrier:new(parties, action, timeout)
  if math.type(parties) ~= "integer" or parties < 1 then
    error("bad argument #1 to 'Barrier' (positive integer expected)", 3)
  end
  if action ~= nil and type(action) ~= "function" then
    error("bad argument #2 to 'Barrier' (function expected, got " .. type(action) .. ")", 3)
  end
  if timeout ~= nil and type(timeout) ~= "number" then
    error("bad argument #3 to 'Barrier' (number expected, got " .. type(timeout) .. ")", 3)
  end
  local obj = {
    _parties = parties,
    _action = action,
    _timeout = timeout,
    _cond = core.Condition(core.Lock()),
    _array = core.RawArray("i", 2),
  }
  return setmetatable(obj, self)
end

local function broken_error()
  return errors.BrokenBarrierError("the barrier is broken")
end

local function set_state(b, v) b._array[1] = v end
local function get_state(b) return b._array[1] end
local function set_count(b, v) b._array[2] = v end
local function get_count(b) return b._array[2] end

local function break_barrier(b)
  set_state(b, BROKEN)
  b._cond:notify_all()
end

-- Runs fn(b) holding the condition's lock; re-raises its error after
-- releasing.
local function locked(b, fn, ...)
  local g <close> = b._cond:guard()
  return fn(b, ...)
end

local function enter(b)
  while get_state(b) == DRAINING or get_state(b) == RESETTING do b._cond:wait() end
  if get_state(b) < 0 then error(broken_error(), 0) end
end

local function release_all(b)
  if b._action then
    local ok, err = pcall(b._action)
    if not ok then
      break_barrier(b)
      error(err, 0)
    end
  end
  set_state(b, DRAINING)
  b._cond:notify_all()
end

local function wait_others(b, timeout)
  local ok = b._cond:wait_for(function() return get_state(b) ~= FILLING end, timeout)
  if not ok then
    break_barrier(b)
    error(broken_error(), 0)
  end
  if get_state(b) < 0 then error(broken_error(), 0) end
end

local function exit_barrier(b)
  if get_count(b) == 0 then
    local s = get_state(b)
    if s == RESETTING or s == DRAINING then
      set_state(b, FILLING)
      b._cond:notify_all()
    end
  end
end

-- barrier:wait([timeout]) -> this party's index, 0 .. parties-1.  Raises
-- BrokenBarrierError if the barrier is or becomes broken (a timeout breaks it).
function Barrier:wait(timeout)
  if timeout == nil then timeout = self._timeout end
  return locked(self, function(b)
    enter(b)
    local index = get_count(b)
    set_count(b, index + 1)
    local ok, err = pcall(function()
      if index + 1 == b._parties then
        release_all(b)
      else
        wait_others(b, timeout)
      end
    end)
    set_count(b, get_count(b) - 1)
    exit_barrier(b)
    if not ok then error(err, 0) end
    return index
  end)
end

-- barrier:reset(): back to the empty state; current waiters get
-- BrokenBarrierError.
function Barrier:reset()
  locked(self, function(b)
    if get_count(b) > 0 then
      local s = get_state(b)
      if s == FILLING or s == BROKEN then set_state(b, RESETTING) end
    else
      set_state(b, FILLING)
    end
    b._cond:notify_all()
  end)
end

-- barrier:abort(): puts the barrier into the broken state.
function Barrier:abort()
  locked(self, break_barrier)
end

function Barrier.__index(b, k)
  if k == "parties" then return rawget(b, "_parties") end
  if k == "n_waiting" then
    if get_state(b) == FILLING then return get_count(b) end
    return 0
  end
  if k == "broken" then return get_state(b) == BROKEN end
  return Barrier[k]
end

function Barrier.__tostring(b)
  return string.format("<Barrier(parties=%d, n_waiting=%d, broken=%s)>", b.parties, b.n_waiting,
                       tostring(b.broken))
end

return M
