-- The Pool (API.md "Pools"; docs/api/pool.md, docs/design/pool.md):
-- mp.Pool, AsyncResult, MapResult, IMapIterator, and the worker loop.
--
-- There are no threads.  The owner (the process that made the pool) puts
-- every task on a shared-memory task ring when it is submitted (input read
-- from an iterator function only a little ahead); idle workers take tasks
-- from it and put each chunk's answer on a result ring at once.  The owner
-- reads answers inside pool calls (get/wait/ready, iterating, join) and
-- runs callbacks then.  Each worker's slot (pool.cpp) records, under the
-- ring's lock, which task it took, and which chunk of it runs: the chunk a
-- dead worker was running fails with WorkerLostError, the chunks of its
-- task it never started go to other workers.
local core = require "multiprocessing.core"
local class = require "multiprocessing.class"
local errors = require "multiprocessing.errors"
local process = require "multiprocessing.process"
local util = require "multiprocessing.util"

local M = {}

local count_args = process._count_args
local unpack = table.unpack
local monotonic = core.monotonic
local pool_pack, pool_unpack, pool_table = core.pool_pack, core.pool_unpack, core.pool_table

-- Worker name prefixes, as Python's.
local prefixes = {fork = "ForkPoolWorker", spawn = "SpawnPoolWorker", forkserver = "ForkServerPoolWorker"}

local current_process = process.current_process

local signal_names = {}
for name, num in pairs(core.signals) do signal_names[num] = name end

-- The vehicles (pool.cpp) of every pool of this process, so a forked
-- worker can close the copies it inherited (weak: a collected pool takes
-- its vehicle along).
M._live_vehicles = setmetatable({}, {__mode = "k"})
-- Their shared memory (owner's side), closed by forked workers for the
-- same reason: the pages of a terminated pool must not stay mapped.
M._live_shared = setmetatable({}, {__mode = "k"})

---------------------------------------------------------------------------
-- The worker

-- xpcall handler: keep the error and the worker's traceback.
-- The frames below the task (the worker loop, bootstrap) are cut off.
local function task_handler(e)
  local tb = debug.traceback(nil, 2)
  local cut = tb:find("\n\t[^\n]*multiprocessing%.pool%.lua:")
  if cut then tb = tb:sub(1, cut - 1) end
  return {e, tb}
end

-- The error a task raised, ready to travel back (API.md settled details,
-- "Errors from pool tasks").
local function task_error(packed, wname, index)
  local e, tb = packed[1], packed[2]
  local where = string.format("in pool worker %s, task %d", wname, index)
  if type(e) == "table" then
    local ok = pcall(function()
      local prev = rawget(e, "traceback")
      rawset(e, "traceback", where .. ":\n" .. tb .. (prev and ("\n" .. tostring(prev)) or ""))
    end)
    if ok then return e end
    e = tostring(e)
  elseif type(e) ~= "string" then
    e = tostring(e)
  end
  return e .. "\n" .. where .. ":\n" .. tb
end

-- Sends one chunk's answer; values or errors that cannot be encoded become
-- errors of their task instead of killing the worker.
local function send_answer(shared, msg, wname, first, n)
  local ok, err = pcall(shared.answer, shared, msg)
  if ok then return end
  local values, errs = msg[4], msg[5] or {}
  for k = 1, n do
    if errs[k] ~= nil then
      if not pcall(core.dumps, errs[k]) then errs[k] = tostring(errs[k]) end
    elseif not pcall(core.dumps, values[k]) then
      local _, why = pcall(core.dumps, values[k])
      errs[k] = string.format("cannot send the result of task %d: %s\nin pool worker %s, task %d",
                              first + k - 1, tostring(why), wname, first + k - 1)
      values[k] = nil
    end
  end
  msg[5] = errs
  ok, err = pcall(shared.answer, shared, msg)
  if not ok then error(err, 0) end
end

-- The body of a worker process.  It takes tasks from the pool's task ring
-- until it gets a quit.  A task (shared:take, pool.cpp) is a run of chunks
-- of one job: function fid (encoded: fbytes), items[1..total] cut into
-- chunks of cs items, the first being the job's task `first`; star: the
-- items are argument tables.  Each chunk's answer leaves as soon
-- as the chunk ends: {uid, k, seconds, values, errs (sparse, or nil)}, or
-- for numbers only the pool_pack string of the values followed by uid, k
-- and the seconds.  The slot (pool.cpp) says which task this worker took
-- and which of its chunks runs, for the owner to read if it dies.
local function worker_main(vehicle, slot, initializer, initargs, maxtasks)
  core.ignore_sigint()
  for v in pairs(M._live_vehicles) do  -- copies inherited by fork
    if v ~= vehicle then v:close() end
  end
  for sh in pairs(M._live_shared) do sh:close() end
  M._live_vehicles = setmetatable({}, {__mode = "k"})
  M._live_shared = setmetatable({}, {__mode = "k"})
  local shared = core.pool_attach(vehicle, slot)
  vehicle:close()
  local wname = process.current_process().name
  -- The slot says "in the initializer" (the owner reset it) until here.
  if initializer ~= nil then
    initializer(unpack(initargs, 1, count_args(initargs)))
  end
  shared:start(0)
  local funcs, nfuncs = {}, 0
  local done = 0   -- chunks run
  -- The chunk being run.  One protected call runs its items until one
  -- fails; after a failure a new one resumes at the next item (one xpcall
  -- per error, not per item).
  -- items[base+1 .. last] are the chunk's; values[1 ..] its results.
  local f, items, base, last, values, k
  local function run()
    while k < last do
      k = k + 1
      values[k - base] = f(items[k])
    end
  end
  local function run_star()
    while k < last do
      k = k + 1
      local a = items[k]
      if type(a) == "table" then
        values[k - base] = f(unpack(a, 1, count_args(a)))
      else
        values[k - base] = f(a)
      end
    end
  end
  while true do
    local uid, fid, fbytes, star, first0, its, total, cs, encoded = shared:take()
    if not uid then break end  -- quit
    -- Rebuilding the function or the items can fail here (a class or module
    -- this process cannot find): that fails the task's items, not the worker.
    local why = nil
    f = funcs[fid]
    if f == nil then
      local ok, g = pcall(core.loads, fbytes)
      if ok then
        -- Bound the cache: a loop of apply_async(function() ... end) must
        -- not grow the worker without limit.
        if nfuncs >= 256 then funcs, nfuncs = {}, 0 end
        f = g
        funcs[fid], nfuncs = f, nfuncs + 1
      else
        why = "the function: " .. tostring(g)
      end
    end
    if encoded and not why then
      local ok, t = pcall(core.loads, its)
      if ok then
        its = encoded == "args" and {t} or t
      else
        why = (encoded == "args" and "the arguments: " or "the items: ") .. tostring(t)
      end
    end
    items = its
    local body = star and run_star or run
    local o, chunk = 0, 0
    while why and o < total do
      local n = math.min(cs, total - o)
      chunk = chunk + 1
      shared:start(chunk)
      local errs = {}
      for i = 1, n do
        errs[i] = string.format("pool worker %s cannot rebuild task %d's %s", wname, first0 + o + i - 1, why)
      end
      shared:finish(chunk)
      send_answer(shared, {uid, chunk, 0, {}, errs}, wname, first0 + o, n)
      o = o + n
    end
    while o < total do
      local n = total - o
      if n > cs then n = cs end
      local first = first0 + o
      values, k, base, last = n > 8 and pool_table(n + 3) or {}, o, o, o + n
      o = o + n
      chunk = chunk + 1
      local errs = nil
      shared:start(chunk)
      local t0 = monotonic()
      while k < last do
        local okk, e = xpcall(body, task_handler)
        if not okk then
          errs = errs or {}
          errs[k - base] = task_error(e, wname, first + k - base - 1)
        end
      end
      local t = monotonic() - t0
      shared:finish(chunk)
      -- Numbers-only results travel packed, without the codec.
      if errs or not shared:answer_packed(values, n, uid, chunk, t) then
        send_answer(shared, {uid, chunk, t, values, errs}, wname, first, n)
      end
    end
    done = done + chunk
    if maxtasks and done >= maxtasks then break end
  end
  -- Leaving by itself (a quit from close/join or from terminate, or its
  -- last task): a SIGTERM from terminate must not cut the cleanup that
  -- releases what this process holds (the owner's SIGKILL still bounds it).
  core.ignore_sigterm()
  shared:close()
end

---------------------------------------------------------------------------
-- Results

local function check_timeout(timeout, fname)
  if timeout ~= nil and type(timeout) ~= "number" then
    error(string.format("bad argument #1 to '%s' (number expected, got %s)", fname, type(timeout)), 3)
  end
end

-- Pumps `pool` until `done()` or the deadline; returns done().
-- (done is called as done(x): no closure per call)
local function wait_until(pool, done, x, timeout)
  if done(x) then return true end
  local deadline = timeout and (monotonic() + math.max(timeout, 0))
  while not done(x) do
    local left
    if deadline then
      left = deadline - monotonic()
      if left <= 0 then
        pool:_pump(0)
        return done(x)
      end
    end
    if not pool:_pump(left) then return done(x) end
  end
  return true
end

local function result_ready(r) return r._ready end

-- AsyncResult: the result of apply_async (and the base of MapResult).
local AsyncResult = class.new("AsyncResult")
M.AsyncResult = AsyncResult

-- fe, args: apply_async's function ({fid, bytes}) and arguments.
function AsyncResult:new(pool, callback, error_callback, fe, args)
  -- every field in the constructor: the table is made at its final size
  return setmetatable({_pool = pool, _callback = callback, _error_callback = error_callback,
                       _ready = false, _ok = false, _value = false, _id = 0, _fe = fe or false,
                       _args = args or false}, self)
end


function AsyncResult:_finish(ok, value)
  self._ready = true
  self._ok = ok
  self._value = value
  self._pool._jobs[self._id] = nil
  local cb
  if ok then cb = self._callback else cb = self._error_callback end
  if cb then self._pool:_queue_callback(cb, value) end
end

-- One chunk's answer for tasks first..first+n-1 of this job.
function AsyncResult:_deliver(first, n, values, errs)
  if self._ready then return end
  if type(values) ~= "table" then return self:_finish(true, values) end  -- one packed number
  if errs and errs[1] ~= nil then return self:_finish(false, errs[1]) end
  self:_finish(true, values[1])
end

function AsyncResult:ready()
  self._pool:_check_owner("ready")
  if not self._ready then self._pool:_pump(0) end
  return self._ready
end

function AsyncResult:successful()
  if not self:ready() then error("successful: result is not ready", 2) end
  return self._ok
end

function AsyncResult:wait(timeout)
  check_timeout(timeout, "wait")
  local pool = self._pool
  pool:_check_owner("wait")
  wait_until(pool, result_ready, self, timeout)
  pool:_run_callbacks()
end

function AsyncResult:get(timeout)
  check_timeout(timeout, "get")
  local pool = self._pool
  pool:_check_owner("get")
  wait_until(pool, result_ready, self, timeout)
  pool:_run_callbacks()
  if not self._ready then error(errors.TimeoutError(""), 2) end
  if not self._ok then error(self._value, 0) end
  return self._value
end

AsyncResult.__tostring = function(r)
  return string.format("<%s %s>", getmetatable(r).__name, r._ready and (r._ok and "ready" or "failed") or "pending")
end

-- MapResult: map_async/starmap_async.
local MapResult = AsyncResult:extend("MapResult")
M.MapResult = MapResult

function MapResult:_deliver(first, n, values, errs)
  if self._ready then return end
  if errs then
    for k = 1, n do
      if errs[k] ~= nil then return self:_finish(false, errs[k]) end
    end
  end
  local tv = type(values)
  if tv == "string" then  -- packed numbers
    pool_unpack(values, self._out, first, n)
  elseif tv == "table" then
    table.move(values, 1, n, first, self._out)
  else  -- one packed number
    self._out[first] = values
  end
  self._left = self._left - n
  if self._left == 0 then self:_finish(true, self._out) end
end

-- IMapIterator: imap (ordered) and imap_unordered.
local IMapIterator = class.new("IMapIterator")
M.IMapIterator = IMapIterator

function IMapIterator:_deliver(first, n, values, errs)
  local tv = type(values)
  if tv == "string" then  -- packed numbers
    values = pool_unpack(values)
  elseif tv ~= "table" then  -- one packed number
    values = {values}
  end
  local have, vals, order = self._have, self._values, self._order
  for k = 1, n do
    local i = first + k - 1
    if errs and errs[k] ~= nil then
      have[i] = "err"
      vals[i] = errs[k]
    else
      have[i] = "ok"
      vals[i] = values[k]
    end
    if order then
      local on = self._order_n + 1
      self._order_n = on
      order[on] = i
    end
  end
  self._arrived = self._arrived + n
  if self._total and self._arrived >= self._total then self._pool._jobs[self._id] = nil end
end

-- The position of the next element, once it is there; "end" at the end.
function IMapIterator:_next_pos()
  if self._order then
    local i = self._order[self._taken + 1]
    if i then return i end
  else
    local i = self._taken + 1
    if self._have[i] then return i end
  end
  if self._total and self._taken >= self._total then return "end" end
  return nil
end

-- it:next([timeout]): the next result; nil at the end; TimeoutError.
function IMapIterator:next(timeout)
  check_timeout(timeout, "next")
  local pool = self._pool
  pool:_check_owner("next")
  wait_until(pool, IMapIterator._next_pos, self, timeout)
  local pos = self:_next_pos()
  pool:_run_callbacks()
  if pos == nil then error(errors.TimeoutError(""), 2) end
  if pos == "end" then return nil end
  self._taken = self._taken + 1
  local kind, v = self._have[pos], self._values[pos]
  self._have[pos], self._values[pos] = nil, nil
  if self._order then self._order[self._taken] = nil end
  if kind == "err" then error(v, 0) end
  return v
end

IMapIterator.__call = function(self) return self:next() end
IMapIterator.__tostring = function(self)
  return string.format("<IMapIterator %d taken>", self._taken)
end

---------------------------------------------------------------------------
-- The pool

local Pool = class.new("Pool")
M.Pool = Pool

-- mp.pool.Pool(...) is mp.Pool(...) (the default start method).
function Pool:new(opts)
  return M.new_pool(nil, opts)
end

local function check_callable(f, fname, argn)
  local t = type(f)
  if t == "function" then return end
  local mt = getmetatable(f)
  if mt and mt.__call then return end
  error(string.format("bad argument #%d to '%s' (function expected, got %s)", argn, fname,
                      t == "nil" and "no value" or t), 3)
end

local function opt_callable(f, fname, argn)
  if f ~= nil then check_callable(f, fname, argn) end
end

-- mp.Pool([processes | {processes=, initializer=, initargs=, maxtasksperchild=}])
-- `method` is the start method of the pool's context (nil: the default).
function M.new_pool(method, opts)
  local processes, initializer, initargs, maxtasks
  if type(opts) == "table" then
    processes, initializer, initargs, maxtasks = opts.processes, opts.initializer, opts.initargs,
                                                  opts.maxtasksperchild
  elseif opts ~= nil and math.type(opts) ~= "integer" then
    error("bad argument #1 to 'Pool' (integer or table of options expected, got " .. type(opts) .. ")", 3)
  else
    processes = opts
  end
  if processes == nil then processes = core.cpu_count() or 1 end
  if math.type(processes) ~= "integer" or processes < 1 then
    error("bad argument #1 to 'Pool' (processes must be at least 1)", 3)
  end
  if initializer ~= nil then
    local mt = getmetatable(initializer)
    if type(initializer) ~= "function" and not (mt and mt.__call) then
      error("bad argument 'initializer' to 'Pool' (function expected, got " .. type(initializer) .. ")", 3)
    end
  end
  if initargs ~= nil and type(initargs) ~= "table" then
    error("bad argument 'initargs' to 'Pool' (table expected, got " .. type(initargs) .. ")", 3)
  end
  if maxtasks ~= nil and (math.type(maxtasks) ~= "integer" or maxtasks < 1) then
    error("bad argument 'maxtasksperchild' to 'Pool' (positive integer expected)", 3)
  end
  method = method or require("multiprocessing.context").get_start_method()
  local WorkerProcess = process.Process:extend("Process")
  WorkerProcess._start_method = method
  local shared, vehicle = core.pool_shared(processes)
  M._live_vehicles[vehicle] = true
  M._live_shared[shared] = true
  local free = {}
  for i = 1, processes do free[i] = processes - i end  -- slots 0 .. processes-1
  local self = setmetatable({
    _method = method,
    _Process = WorkerProcess,
    _prefix = prefixes[method] or "PoolWorker",
    _processes = processes,
    _initializer = initializer,
    _initargs = initargs or {},
    _maxtasks = maxtasks,
    _owner = core.getpid(),
    _state = "RUN",
    _shared = shared,     -- slots, task ring, result ring (pool.cpp)
    _vehicle = vehicle,   -- carries the shared memory into new workers
    _free_slots = free,
    _workers = {},        -- live workers (array)
    _sentinels = {}, _pids = {},  -- rebuilt when workers change
    _jobs = {},           -- job id -> result object (not yet complete)
    _next_job = 0,
    _units = {},          -- uid -> task on the ring or taken by a worker
    _inflight = 0,        -- entries of _units
    _next_uid = 0,
    _unsent = {}, _unsent_head = 1, _unsent_tail = 0,  -- {uid, msg} that did not fit the ring
    _feed = {}, _feed_head = 1, _feed_tail = 0,   -- jobs with input not yet cut into tasks
    _fids = setmetatable({}, {__mode = "k"}),     -- function -> {id, bytes}
    _next_fid = 0,
    _callbacks = {}, _cb_head = 1, _cb_tail = 0,
    _ct = nil,            -- average seconds per chunk (from the workers)
    _worker_count = 0,
    _interrupted = false, -- set by shared:wait on Ctrl-C
    _busy = false,        -- bookkeeping in progress (see _pump)
  }, Pool)
  for _ = 1, processes do self:_start_worker() end
  return self
end

function Pool:_check_owner(what)
  if rawget(current_process(), "_pid") ~= self._owner then
    error(string.format("%s: a Pool can only be used by the process that created it", what), 3)
  end
  if self._interrupted or self._busy then
    -- A Ctrl-C stopped a wait (pool.cpp killed the workers), or an error
    -- cut the handling of answers short: finish the job.
    self._interrupted, self._busy = false, false
    self:terminate()
  end
end

function Pool:_check_running(what)
  self:_check_owner(what)
  if self._state ~= "RUN" then error(string.format("%s: Pool not running", what), 3) end
end

function Pool:_rebuild_poll()
  local sen, pids = {}, {}
  for i, w in ipairs(self._workers) do
    sen[i] = w.sentinel
    pids[i] = w.pid
  end
  self._sentinels, self._pids = sen, pids
end

function Pool:_start_worker()
  self._worker_count = self._worker_count + 1
  local slot = table.remove(self._free_slots)
  self._shared:reset_slot(slot)
  local proc = self._Process{
    target = worker_main,
    args = {self._vehicle, slot, self._initializer, self._initargs, self._maxtasks},
    name = self._prefix .. "-" .. self._worker_count,
    daemon = true,
  }
  local ok, err = pcall(proc.start, proc)
  if not ok then
    self._free_slots[#self._free_slots + 1] = slot
    error(err, 0)
  end
  local w = {proc = proc, pid = proc.pid, sentinel = proc.sentinel, name = proc.name, slot = slot}
  self._workers[#self._workers + 1] = w
  self:_rebuild_poll()
  util.debug("added worker " .. proc.name)
  return w
end

-- The id of function f, encoding it the first time only.
-- The values of f's upvalues now (nil for a callable table).
local getupvalue = debug.getupvalue
local function upvalues_of(f)
  if type(f) ~= "function" then return nil end
  local snap, i = {}, 1
  while true do
    local name, v = getupvalue(f, i)
    if name == nil then return snap end
    snap[i] = v
    i = i + 1
  end
end

-- True when f's upvalues hold the same values as in `snap`.
local function same_upvalues(f, snap)
  if snap == nil then return false end
  local i = 1
  while true do
    local name, v = getupvalue(f, i)
    if name == nil then return snap[i] == nil and i > #snap end
    if not rawequal(v, snap[i]) then return false end
    i = i + 1
  end
end

-- f encoded as it is now: {id, bytes}.  Each map-family call encodes its
-- function afresh (an upvalue assigned since the last call is seen); the
-- encoding is kept for apply_async (see _fid_cached).
function Pool:_fid(f)
  self._next_fid = self._next_fid + 1
  local e = {self._next_fid, core.dumps(f), upvalues_of(f)}
  self._fids[f] = e
  return e
end

-- For apply_async: the last encoding of f while its upvalues still hold
-- the same values, so a loop of apply_async encodes f once.  (A change
-- inside a table an upvalue refers to is not noticed here.)
function Pool:_fid_cached(f)
  local e = self._fids[f]
  if e and same_upvalues(f, e[3]) then return e end
  return self:_fid(f)
end

-- How many chunks one task on the ring may hold: about 2 ms of work when
-- chunks are quick (fewer messages), one when they are slow (nothing waits
-- behind a slow chunk while another worker is idle), and never more than
-- a share of what is left, so the end of a map is spread over the workers.
function Pool:_run_length(left)
  if self._maxtasks then return 1 end  -- a worker must stop after its last
  local ct = self._ct
  local r = ct and math.floor(0.002 / math.max(ct, 1e-7)) or 16
  if r > 256 then r = 256 end
  local share = -(-left // (2 * self._processes))
  if r > share then r = share end
  if r < 1 then r = 1 end
  return r
end

-- Puts task `u` on the task ring; false when the ring is full.
local function send(shared, uid, u)
  local fe = u._fe
  if fe then  -- apply_async
    return shared:put(uid, fe[1], fe[2], true, 1, u._args, 1, 1, true)
  end
  return shared:put(uid, u.fid, u.fbytes, u.star, u.first, u.items, u.total, u.cs)
end

-- Puts task `unit` on the task ring (or, when the ring is full, in the
-- queue of unsent tasks, which goes first at the next pool call).  A unit
-- is the owner's record of a task: {job, fid, fbytes, star, first, items,
-- total, cs, left (chunks not answered), done (set of answered chunks)},
-- or for apply_async the AsyncResult itself.
function Pool:_put(unit)
  local uid = self._next_uid + 1
  self._next_uid = uid
  self._units[uid] = unit
  self._inflight = self._inflight + 1
  if self._unsent_head > self._unsent_tail and self:_send(uid, unit) then return end
  self._unsent_tail = self._unsent_tail + 1
  self._unsent[self._unsent_tail] = {uid, unit}
end

-- Sends task uid; false when the ring is full.  A task that cannot be
-- encoded (an argument the codec refuses) fails its own tasks.
function Pool:_send(uid, unit)
  local sent, err = send(self._shared, uid, unit)
  if sent ~= nil then return sent end
  self._units[uid] = nil
  self._inflight = self._inflight - 1
  local job, first, n = unit, 1, 1
  if not unit._fe then job, first, n = unit.job, unit.first, unit.total end
  if job._lazy then job._ahead = job._ahead - unit.left end
  local errs = {}
  for i = 1, n do errs[i] = err end
  if self._jobs[job._id] then job:_deliver(first, n, {}, errs) end
  return true
end

-- Moves tasks onto the ring: the unsent ones, then input of the jobs in
-- order, until the ring is full or every job's input is cut.  An input
-- read from an iterator function is read ahead only so far.
function Pool:_feed_ring()
  if self._state == "TERMINATE" then return end
  local shared, unsent = self._shared, self._unsent
  while self._unsent_head <= self._unsent_tail do
    local x = unsent[self._unsent_head]
    if not self:_send(x[1], x[2]) then return end
    unsent[self._unsent_head] = nil
    self._unsent_head = self._unsent_head + 1
  end
  local feed = self._feed
  for i = self._feed_head, self._feed_tail do
    local job = feed[i]
    while job do
      if job._ready or not self._jobs[job._id] then
        feed[i] = false
        break
      end
      if job._lazy and job._ahead >= job._lazy then break end  -- read far enough ahead
      local ok, unit = pcall(job._produce, job, self)
      if not ok then
        -- Reading the input raised (a sequence's __index, say): the job
        -- fails with that error; its tasks already given out still run.
        feed[i] = false
        job:_input_failed(unit)
        break
      end
      if unit == nil then
        feed[i] = false  -- input all cut
        break
      end
      self:_put(unit)
      if self._unsent_head <= self._unsent_tail then return end  -- the ring is full
    end
  end
  -- Drop the jobs whose input is all cut (a lazy job waiting at its
  -- read-ahead limit may stand in front of them).
  local j = self._feed_head
  for i = self._feed_head, self._feed_tail do
    local job = feed[i]
    feed[i] = nil
    if job then
      feed[j] = job
      j = j + 1
    end
  end
  self._feed_tail = j - 1
end

-- Adds a job whose input is cut into tasks by job:_produce(pool).
function Pool:_submit(job)
  self._busy = true  -- see _pump
  self._next_job = self._next_job + 1
  job._id = self._next_job
  self._jobs[job._id] = job
  self._feed_tail = self._feed_tail + 1
  self._feed[self._feed_tail] = job
  self:_feed_ring()
  self._busy = false
  return job
end

-- Queues a callback to run at the end of the current pool call.
function Pool:_queue_callback(cb, value)
  self._cb_tail = self._cb_tail + 1
  self._callbacks[self._cb_tail] = {cb, value}
end

-- Runs the queued callbacks, in the order their results completed.  An
-- error in a callback propagates to the pool call that ran it; the others
-- stay queued for the next call.
function Pool:_run_callbacks()
  while self._cb_head <= self._cb_tail do
    local e = self._callbacks[self._cb_head]
    self._callbacks[self._cb_head] = nil
    self._cb_head = self._cb_head + 1
    e[1](e[2])
  end
end

-- Answers from the result ring (shared:wait), four entries each: uid,
-- chunk, seconds and the values (one number, or a pool_pack string), or
-- false, false, false and {uid, chunk, seconds, values, errs}.
function Pool:_on_answers(answers)
  local units, jobs = self._units, self._jobs
  for a = 1, #answers, 4 do
    local uid, k, t, values = answers[a], answers[a + 1], answers[a + 2], answers[a + 3]
    local errs = nil
    if not uid then
      local msg = values
      uid, k, t, values, errs = msg[1], msg[2], msg[3], msg[4], msg[5]
    end
    local u = units[uid]
    local ct = self._ct
    self._ct = ct and (ct * 0.8 + t * 0.2) or t
    if u and u._fe then  -- apply_async
      units[uid] = nil
      self._inflight = self._inflight - 1
      if jobs[u._id] then u:_deliver(1, 1, values, errs) end
    elseif u then  -- else: a task already failed or requeued (the worker died)
      local cs = u.cs
      local o = (k - 1) * cs
      local n = u.total - o
      if n > cs then n = cs end
      local left = u.left - 1
      if left == 0 then
        units[uid] = nil
        self._inflight = self._inflight - 1
      else
        u.left = left
        u.done = u.done or {}
        u.done[k] = true
      end
      local job = u.job
      if job._lazy then job._ahead = job._ahead - 1 end
      if jobs[job._id] then job:_deliver(u.first + o, n, values, errs) end
    end
  end
end

local function describe_exit(code)
  if code == nil then return "vanished" end
  if code < 0 then
    return string.format("was killed by signal %d (%s)", -code, signal_names[-code] or "?")
  end
  return string.format("exited with code %d", code)
end

-- The chunk of task `u` that starts at offset o (0-based) as a task of its
-- own, for another worker.
local function rest_of(u, o)
  local items = u.items
  if type(items) == "string" then items = pool_unpack(items) end
  local rest = table.move(items, o + 1, u.total, 1, {})
  local r = {job = u.job, fid = u.fid, fbytes = u.fbytes, star = u.star, first = u.first + o,
             items = rest, total = u.total - o, cs = u.cs}
  r.left = -(-r.total // r.cs)
  return r
end

-- A worker's sentinel fired: collect what it sent, fail the chunk it was
-- running, give the chunks of its task it never started to others, and
-- replace it.
function Pool:_on_exit(w)
  if self._state == "TERMINATE" then return end  -- shut down meanwhile
  -- Everything it answered is on the result ring by now.
  while true do
    local answers = self._shared:wait({}, 0)
    if #answers == 0 then break end
    self:_on_answers(answers)
  end
  w.proc:join(1)
  local code = w.proc.exitcode
  if code == nil then  -- the sentinel closed but the process lingers
    w.proc:kill()
    w.proc:join(1)
    code = w.proc.exitcode
  end
  for i, x in ipairs(self._workers) do
    if x == w then table.remove(self._workers, i) break end
  end
  local claimed, started, _, taken = self._shared:slot(w.slot)
  self._shared:gone(w.pid)
  self._free_slots[#self._free_slots + 1] = w.slot
  pcall(w.proc.close, w.proc)
  self:_rebuild_poll()
  local how = describe_exit(code)
  -- The task it took (none if it died inside the ring's lock before the
  -- task left the ring: another worker takes it from there).
  local u = taken and claimed ~= 0 and self._units[claimed]
  if u and u._fe then  -- apply_async: one task
    self._units[claimed] = nil
    self._inflight = self._inflight - 1
    u = {job = u, apply = true, first = 1, total = 1, cs = 1, left = 1, deaths = u._deaths}
  elseif u then
    self._units[claimed] = nil
    self._inflight = self._inflight - 1
  end
  -- A task whose taker died twice before starting it is not given out again
  -- (something in it kills workers before the first item runs).
  local doomed = u and started == 0 and (u.deaths or 0) >= 1
  if u then
    local job = u.job
    local nchunks = -(-u.total // u.cs)
    for k = 1, nchunks do
      local o = (k - 1) * u.cs
      if not (u.done and u.done[k]) then
        if k > started and not doomed then
          -- Never started: another worker runs these.
          if self._jobs[job._id] then
            if u.apply then
              job._deaths = (u.deaths or 0) + 1
              self:_put(job)
            else
              local r = rest_of(u, o)
              if k == 1 then r.deaths = (u.deaths or 0) + 1 end
              self:_put(r)
            end
          end
          break
        end
        -- Running (or finished, its answer lost with the worker).
        local first = u.first + o
        local n = math.min(u.cs, u.total - o)
        local errs = {}
        for i = 1, n do
          local idx = first + i - 1
          local msg
          -- (before: the second worker to die taking this task, see doomed)
          local when = k > started and "before running" or "while running"
          if n == 1 then
            msg = string.format("worker %s (pid %d) %s %s task %d", w.name, w.pid, how, when, idx)
          else
            msg = string.format("worker %s (pid %d) %s %s the chunk of tasks %d-%d (task %d)",
                                w.name, w.pid, how, when, first, first + n - 1, idx)
          end
          errs[i] = errors.WorkerLostError(msg, {task = idx, worker = w.name, pid = w.pid, exitcode = code,
                                                 signal = code and code < 0 and -code or nil})
        end
        util.debug("worker " .. w.name .. " " .. how .. " while running a chunk")
        if job._lazy then job._ahead = job._ahead - 1 end
        if self._jobs[job._id] then job:_deliver(first, n, {}, errs) end
      end
    end
  end
  if started == -1 then
    -- It died starting (its initializer failed; the traceback went to
    -- stderr).  Python's pool would start workers that fail forever; after
    -- 3 in a row this one gives up and fails what is pending instead.
    self._init_failures = (self._init_failures or 0) + 1
    if self._init_failures >= 3 then
      util.debug("initializer failed 3 times: terminating the pool")
      self:_shutdown(string.format("the pool's initializer failed in %d workers in a row "
        .. "(the last, %s, %s; its traceback is on stderr)", self._init_failures, w.name, how))
      return
    end
  else
    self._init_failures = 0
  end
  if self._state ~= "TERMINATE" and (self._state == "RUN" or self:_has_work()) then
    local ok, err = pcall(self._start_worker, self)
    if not ok and #self._workers == 0 then
      -- Nobody left to run the tasks: fail them rather than wait forever.
      self:_shutdown("the pool cannot start a new worker: " .. tostring(err))
    end
  end
end

-- True while some job is not complete.
function Pool:_has_work()
  return next(self._jobs) ~= nil
end

-- Waits up to `timeout` seconds (nil: until something happens) for answers
-- or worker deaths, handles them, and puts more tasks on the ring.
-- Returns false when there is nothing left to wait for.
function Pool:_pump(timeout)
  if self._state == "TERMINATE" or self._state == "CLOSED" then return false end
  self:_feed_ring()
  local busy = self._inflight > 0
  if not busy and timeout ~= 0 then
    if self._state == "TERMINATE" or #self._workers == 0 then return false end
  end
  local answers, dead = self._shared:wait(self._sentinels, busy and timeout or (timeout or 0.05),
                                          self._pids, self)
  -- An error in here (a Ctrl-C raised by the interrupt hook between two
  -- instructions) leaves the bookkeeping half done: the mark stays set and
  -- the next call terminates the pool (see _check_owner).  Submitting
  -- (_submit, apply_async) sets the same mark.
  self._busy = true
  if answers[1] ~= nil then self:_on_answers(answers) end
  if dead[1] ~= nil then
    local workers, gone = self._workers, {}
    for j, i in ipairs(dead) do gone[j] = workers[i] end
    for _, w in ipairs(gone) do self:_on_exit(w) end
  end
  self:_feed_ring()
  self._busy = false
  return true
end

-- Task producers -----------------------------------------------------------

-- job:_produce(pool) over a sequence (anything with # and [i]) or an
-- iterator function: the next task (a run of chunks) or nil; sets
-- job._total when the input is exhausted.
local function make_source(job, seq, chunksize, fe, star)
  local fid, fbytes = fe[1], fe[2]
  local pos = 0
  if type(seq) == "function" then
    local done = false
    -- Read ahead: at most this many chunks given out and not answered.
    job._lazy, job._ahead = 4 * job._pool._processes + 4, 0
    -- An error of the iterator is the result at its position, and the
    -- input ends there (Python's rule).
    return function()
      if done then return nil end
      local items, n = {}, 0
      local failed, err = false, nil
      while n < chunksize do
        local ok, v = pcall(seq)
        if not ok then
          done, failed, err = true, true, v
          break
        end
        if v == nil then
          done = true
          break
        end
        n = n + 1
        items[n] = v
      end
      local u = nil
      if n > 0 then
        u = {job = job, fid = fid, fbytes = fbytes, star = star, first = pos + 1, items = items,
             total = n, cs = chunksize, left = 1}
        job._ahead = job._ahead + 1
        pos = pos + n
        job._produced = pos
      end
      if failed then
        pos = pos + 1
        job._total = pos
        job:_deliver(pos, 1, {}, {err})
      elseif done then
        job._total = pos
      end
      if u == nil then job:_check_complete() end
      return u
    end
  end
  local len = #seq
  local plain = getmetatable(seq) == nil
  return function(_, pool)
    if pos >= len then return nil end
    local left = -(-(len - pos) // chunksize)
    local chunks = pool:_run_length(left)
    local n = math.min(chunks * chunksize, len - pos)
    local items = plain and n > 8 and pool_pack(seq, pos + 1, pos + n)
    if not items then items = table.move(seq, pos + 1, pos + n, 1, {}) end
    local u = {job = job, fid = fid, fbytes = fbytes, star = star, first = pos + 1, items = items,
               total = n, cs = chunksize, left = -(-n // chunksize)}
    pos = pos + n
    job._produced = pos
    return u
  end
end

local function check_sequence(seq, fname, argn, allow_function)
  local t = type(seq)
  if t == "table" then return end
  if allow_function and t == "function" then return end
  local mt = getmetatable(seq)
  if mt and mt.__len and mt.__index then return end
  error(string.format("bad argument #%d to '%s' (%s expected, got %s)", argn, fname,
                      allow_function and "table or iterator function" or "table", t), 3)
end

local function check_chunksize(cs, fname, argn)
  if cs ~= nil and (math.type(cs) ~= "integer" or cs < 1) then
    error(string.format("bad argument #%d to '%s' (chunksize must be a positive integer)", argn, fname), 3)
  end
end

-- Reading the input raised `err`: a map fails with it; an imap gets it at
-- the next position, and its input ends there.
function MapResult:_input_failed(err)
  if self._pool._jobs[self._id] then self:_finish(false, err) end
end

function IMapIterator:_input_failed(err)
  local i = (self._produced or 0) + 1
  self._total = i
  self:_deliver(i, 1, {}, {err})
end

function IMapIterator:_check_complete()
  if self._total and self._arrived >= self._total then self._pool._jobs[self._id] = nil end
end
function MapResult:_check_complete() end
function AsyncResult:_check_complete() end

-- The map family ---------------------------------------------------------

function Pool:_map_async(fname, f, seq, chunksize, callback, error_callback, star)
  self:_check_running(fname)
  check_callable(f, fname, 1)
  check_sequence(seq, fname, 2, false)
  check_chunksize(chunksize, fname, 3)
  opt_callable(callback, fname, 4)
  opt_callable(error_callback, fname, 5)
  local len = #seq
  if chunksize == nil then
    local extra
    chunksize, extra = len // (4 * self._processes), len % (4 * self._processes)
    if extra ~= 0 then chunksize = chunksize + 1 end
    if chunksize < 1 then chunksize = 1 end
  end
  local job = MapResult(self, callback, error_callback)
  job._out = core.pool_table(len)
  job._left = len
  job._total = len
  job._produce = make_source(job, seq, chunksize, self:_fid(f), star)
  if len == 0 then
    -- Ready at once; as in Python, no callback for an empty input.
    job._ready, job._ok, job._value = true, true, {}
    return job
  end
  return self:_submit(job)
end

function Pool:map_async(f, seq, chunksize, callback, error_callback)
  return self:_map_async("map_async", f, seq, chunksize, callback, error_callback, false)
end

function Pool:starmap_async(f, seq, chunksize, callback, error_callback)
  return self:_map_async("starmap_async", f, seq, chunksize, callback, error_callback, true)
end

function Pool:map(f, seq, chunksize)
  local r = self:_map_async("map", f, seq, chunksize, nil, nil, false)
  return r:get()
end

function Pool:starmap(f, seq, chunksize)
  local r = self:_map_async("starmap", f, seq, chunksize, nil, nil, true)
  return r:get()
end

function Pool:apply_async(f, args, callback, error_callback)
  -- (the checks of _check_running, inlined: this is the hot path)
  if rawget(current_process(), "_pid") ~= self._owner or self._state ~= "RUN" or self._interrupted
      or self._busy then
    self:_check_running("apply_async")
  end
  check_callable(f, "apply_async", 1)
  if args ~= nil and type(args) ~= "table" then
    error("bad argument #2 to 'apply_async' (table expected, got " .. type(args) .. ")", 2)
  end
  opt_callable(callback, "apply_async", 3)
  opt_callable(error_callback, "apply_async", 4)
  local e = self:_fid_cached(f)
  local job = AsyncResult.new(AsyncResult, self, callback, error_callback, e, args or {})
  self._busy = true  -- see _pump
  local id = self._next_job + 1
  self._next_job = id
  job._id = id
  self._jobs[id] = job
  self:_put(job)
  self._busy = false
  return job
end

function Pool:apply(f, args)
  self:_check_running("apply")
  return self:apply_async(f, args):get()
end

function Pool:_imap(fname, f, seq, chunksize, unordered)
  self:_check_running(fname)
  check_callable(f, fname, 1)
  check_sequence(seq, fname, 2, true)
  check_chunksize(chunksize, fname, 3)
  local it = setmetatable({_pool = self, _have = {}, _values = {}, _taken = 0, _arrived = 0, _order_n = 0,
                           _order = unordered and {} or nil}, IMapIterator)
  if type(seq) ~= "function" then it._total = #seq end
  it._produce = make_source(it, seq, chunksize or 1, self:_fid(f), false)
  self:_submit(it)
  it:_check_complete()
  return it
end

function Pool:imap(f, seq, chunksize)
  return self:_imap("imap", f, seq, chunksize, false)
end

function Pool:imap_unordered(f, seq, chunksize)
  return self:_imap("imap_unordered", f, seq, chunksize, true)
end

-- Life cycle --------------------------------------------------------------

-- No new tasks; the workers finish the submitted ones and then exit.
function Pool:close()
  self:_check_owner("close")
  if self._state == "RUN" then self._state = "CLOSE" end
end

-- Stops the workers now.  Tasks not finished fail (get raises
-- ProcessError) instead of waiting forever.
function Pool:terminate()
  self:_check_owner("terminate")
  self:_shutdown("the pool was terminated before the task finished")
end

-- Releases the pool's shared memory (the workers are gone).
function Pool:_release()
  M._live_vehicles[self._vehicle] = nil
  M._live_shared[self._shared] = nil
  self._vehicle:close()
  self._shared:close()
end

-- Stops the workers and fails every unfinished result with
-- ProcessError(message).
function Pool:_shutdown(message)
  if self._state == "TERMINATE" then return end
  local was_closed = self._state == "CLOSED"
  self._state = "TERMINATE"
  util.debug("terminating pool")
  local workers = self._workers
  if not was_closed and #workers > 0 then
    -- Idle workers leave by themselves, releasing what they hold (shared
    -- objects their cached functions keep): the tasks not yet taken are
    -- dropped and each worker gets a quit.  Busy ones get SIGTERM below.
    local shared = self._shared
    if pcall(shared.discard, shared) and pcall(shared.quit, shared, #workers) then
      local grace = monotonic() + 0.1
      for _, w in ipairs(workers) do pcall(w.proc.join, w.proc, math.max(grace - monotonic(), 0)) end
    end
  end
  for _, w in ipairs(workers) do
    if w.proc.exitcode == nil then pcall(w.proc.terminate, w.proc) end
  end
  local deadline = monotonic() + 1
  for _, w in ipairs(workers) do
    pcall(w.proc.join, w.proc, math.max(deadline - monotonic(), 0))
    if w.proc.exitcode == nil then
      pcall(w.proc.kill, w.proc)
      pcall(w.proc.join, w.proc, 1)
    end
    pcall(w.proc.close, w.proc)
  end
  self._workers = {}
  self:_rebuild_poll()
  if not was_closed then self:_release() end
  self._units, self._inflight = {}, 0
  self._unsent, self._unsent_head, self._unsent_tail = {}, 1, 0
  self._feed, self._feed_head, self._feed_tail = {}, 1, 0
  local jobs = self._jobs
  self._jobs = {}
  for _, job in pairs(jobs) do
    local err = errors.ProcessError(message)
    if getmetatable(job) == IMapIterator then
      job._terminated = err
      job._total = job._total or job._produced or job._arrived
      for i = 1, job._total do
        if job._have[i] == nil then
          job._have[i] = "err"
          job._values[i] = err
          if job._order then
            job._order_n = job._order_n + 1
            job._order[job._order_n] = i
          end
        end
      end
    elseif not job._ready then
      job._ready, job._ok, job._value = true, false, err
    end
  end
end

-- Waits for the workers to exit (after close() or terminate()).  After
-- close(), every submitted task completes and every callback has run.
function Pool:join(timeout)
  self:_check_owner("join")
  if self._state == "RUN" then error("join: Pool is still running (call close() or terminate() first)", 2) end
  if self._state == "CLOSE" then
    -- Finish the work, then tell the workers to leave.
    while self:_has_work() do
      if not self:_pump(nil) then
        if #self._workers == 0 then break end
      end
    end
    self:_run_callbacks()
    if self._state == "TERMINATE" then return end  -- it shut itself down meanwhile
    -- Tasks still on the ring belong to finished (failed) jobs.
    self._shared:discard()
    self._shared:quit(#self._workers)
    while #self._workers > 0 do
      local _, dead = self._shared:wait(self._sentinels, 1, self._pids, self)
      local gone = {}
      for j, i in ipairs(dead) do gone[j] = self._workers[i] end
      for _, w in ipairs(gone) do
        w.proc:join(1)
        if w.proc.exitcode == nil then w.proc:kill() w.proc:join(1) end
        for i, x in ipairs(self._workers) do
          if x == w then table.remove(self._workers, i) break end
        end
        pcall(w.proc.close, w.proc)
        self:_rebuild_poll()
      end
    end
    self._state = "CLOSED"
    self:_release()
  end
  self:_run_callbacks()
end

-- <close> terminates, as Python's __exit__.
Pool.__close = function(self)
  if core.getpid() == self._owner then self:terminate() end
end

Pool.__gc = function(self)
  if core.getpid() == self._owner and self._state ~= "TERMINATE" and self._state ~= "CLOSED" then
    pcall(self.terminate, self)
  end
end

Pool.__tostring = function(self)
  local state = ({RUN = "RUN", CLOSE = "CLOSE", CLOSED = "CLOSE", TERMINATE = "TERMINATE"})[self._state]
  return string.format("<multiprocessing.pool.Pool state=%s pool_size=%d>", state, self._processes)
end

-- The pool's worker processes (pids), for tests and tools.
function Pool:_worker_pids()
  local t = {}
  for i, w in ipairs(self._workers) do t[i] = w.pid end
  return t
end

return M
