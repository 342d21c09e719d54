-- The Pool (API.md "Pools"; docs/api/pool.md, docs/design/pool.md):
-- mp.Pool, AsyncResult, MapResult, IMapIterator, and the worker loop.
--
-- There are no threads.  The owner (the process that made the pool) moves
-- tasks and results only inside pool calls: submitting, get/wait/ready,
-- iterating, close/join/terminate.  Each worker has its own channel (a
-- socket pair: core.pool_pipe) on which the owner sends batches of chunks
-- and the worker sends back the chunks' answers, in order, a few at a time;
-- a shared progress page (started/finished counts) tells the owner which
-- chunk a dead worker was running: that chunk fails with WorkerLostError,
-- its other chunks go to other workers.
local core = require "multiprocessing.core"
local class = require "multiprocessing.class"
local errors = require "multiprocessing.errors"
local process = require "multiprocessing.process"
local util = require "multiprocessing.util"

local M = {}

local count_args = process._count_args
local unpack = table.unpack
local monotonic = core.monotonic
local pool_pack, pool_unpack = core.pool_pack, core.pool_unpack
local sunpack = string.unpack

-- Worker name prefixes, as Python's.
local prefixes = {fork = "ForkPoolWorker", spawn = "SpawnPoolWorker", forkserver = "ForkServerPoolWorker"}

local merge_runs  -- defined with the dispatcher
local current_process = process.current_process

local signal_names = {}
for name, num in pairs(core.signals) do signal_names[num] = name end

-- Channels of every pool of this process, so a forked worker can close
-- the copies it inherited (weak: a collected pool takes its channels along).
M._live_channels = setmetatable({}, {__mode = "k"})

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
local function send_answer(conn, msg, wname, first, n)
  local ok, err = pcall(conn.send, conn, msg)
  if ok then return end
  local values, errs = msg[1], msg[2] or {}
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
  msg[2] = errs
  ok, err = pcall(conn.send, conn, msg)
  if not ok then error(err, 0) end
end

-- The body of a worker process.  Messages from the owner: a batch
-- {chunk, chunk, ..., defs = {[fid] = encoded function}, reset = bool} or
-- false (quit).  A chunk is {fid, star, first, items, n} (items may be a
-- pool_pack string).  The answer to a chunk is {values, errs (sparse, or
-- nil), seconds busy}, or, for numbers only, the pool_pack string of the
-- values followed by the seconds; a message holds one answer or
-- {b = true, answer, answer, ...}.
local function worker_main(conn, slotconn, initializer, initargs, maxtasks)
  core.ignore_sigint()
  for ch in pairs(M._live_channels) do ch:close() end  -- copies inherited by fork
  M._live_channels = setmetatable({}, {__mode = "k"})
  local slot = core.pool_slot(slotconn)
  slotconn:close()
  local wname = process.current_process().name
  slot:start(-1)  -- "in the initializer", until it returns
  if initializer ~= nil then
    initializer(unpack(initargs, 1, count_args(initargs)))
  end
  slot:start(0)
  local funcs = {}
  local done = 0   -- chunks started (and, between chunks, finished)
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
  -- Answers not yet sent: one message carries several (the progress page
  -- says which chunk was running if this process dies meanwhile).
  local out, out_info, out_since = {b = true}, {}, nil
  local function flush()
    local count = #out
    if count == 0 then return end
    local msg = count == 1 and out[1] or out
    if not pcall(conn.send, conn, msg) then
      -- Something in there cannot be encoded: send them one by one, each
      -- bad value becoming its task's error.
      for i = 1, count do
        local info = out_info[i]
        send_answer(conn, out[i], wname, info[1], info[2])
      end
    end
    out, out_info, out_since = {b = true}, {}, nil
  end
  while true do
    local ok, batch = pcall(conn.recv, conn)
    if not ok or not batch then break end  -- quit, or the owner is gone
    if batch.reset then funcs = {} end
    if batch.defs then
      for fid, bytes in pairs(batch.defs) do funcs[fid] = core.loads(bytes) end
    end
    -- A record is one chunk {fid, star, first, items, n}, or a run of
    -- consecutive chunks of one job {fid, star, first, items, total, cs}:
    -- chunks of cs items (the last may be shorter), answered one by one;
    -- with a 7th field true, a run of apply tasks (each its job's task
    -- `first`).
    for i = 1, #batch do
      local c = batch[i]
      local first0, total = c[3], c[5]
      local cs = c[6] or total
      f, items = funcs[c[1]], c[4]
      if type(items) == "string" then items = pool_unpack(items) end
      local body = c[2] and run_star or run
      local o = 0
      while o < total do
        local n = total - o
        if n > cs then n = cs end
        local first = c[7] and first0 or first0 + o
        values, k, base, last = {}, o, o, o + n
        o = o + n
        local errs = nil
        done = done + 1
        slot:start(done)
        local t0 = monotonic()
        while k < last do
          local okk, e = xpcall(body, task_handler)
          if not okk then
            errs = errs or {}
            errs[k - base] = task_error(e, wname, first + k - base - 1)
          end
        end
        local now = monotonic()
        slot:finish(done)
        -- Numbers-only results travel packed, with the busy time as one
        -- more number (see pool.cpp): a string, so no table to encode.
        local t = now - t0
        local answer = nil
        if not errs then
          values[n + 1] = t
          answer = pool_pack(values, 1, n + 1)
          values[n + 1] = nil
        end
        local m = #out + 1
        out[m] = answer or {values, errs, t}
        out_info[m] = {first, n}
        out_since = out_since or t0
        -- Answers leave at the end of the batch, or every 2 ms of work.
        if now - out_since >= 0.002 then flush() end
      end
    end
    flush()
    if maxtasks and done >= maxtasks then break end
  end
  conn:close()
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

function AsyncResult:new(pool, callback, error_callback, fbytes, chunk)
  -- every field in the constructor: the table is made at its final size
  return setmetatable({_pool = pool, _callback = callback, _error_callback = error_callback,
                       _ready = false, _ok = false, _value = false, _id = 0, _fbytes = fbytes,
                       _chunk = chunk}, self)
end

-- An apply job has one chunk.
function AsyncResult:_produce()
  local c = self._chunk
  self._chunk = false
  return c or nil
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
  if type(values) == "string" then
    -- one packed number: 2 tag bytes (value, busy time), then the value
    return self:_finish(true, sunpack(values:byte(1) == 0 and "=j" or "=d", values, 3))
  end
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
  if type(values) == "string" then
    pool_unpack(values, self._out, first, n)
  else
    table.move(values, 1, n, first, self._out)
  end
  self._left = self._left - n
  if self._left == 0 then self:_finish(true, self._out) end
end

-- IMapIterator: imap (ordered) and imap_unordered.
local IMapIterator = class.new("IMapIterator")
M.IMapIterator = IMapIterator

function IMapIterator:_deliver(first, n, values, errs)
  if type(values) == "string" then values = pool_unpack(values) end
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
    _workers = {},        -- live workers (array)
    _poll_ch = {}, _poll_sen = {}, _pids = {},  -- rebuilt when workers change
    _jobs = {},           -- job id -> result object (not yet complete)
    _next_job = 0,
    _feed = {}, _feed_head = 1, _feed_tail = 0,   -- jobs with chunks to send, in order
    _retry = {},          -- {job, chunk} pairs of dead workers, sent first
    _fids = setmetatable({}, {__mode = "k"}),     -- function -> {id, bytes}
    _next_fid = 0,
    _callbacks = {}, _cb_head = 1, _cb_tail = 0,
    _ct = nil,            -- average seconds per chunk (from the workers)
    _worker_count = 0,
  }, Pool)
  for _ = 1, processes do self:_start_worker() end
  return self
end

function Pool:_check_owner(what)
  if rawget(current_process(), "_pid") ~= self._owner then
    error(string.format("%s: a Pool can only be used by the process that created it", what), 3)
  end
  if rawget(self, "_interrupted") then
    -- A Ctrl-C stopped a wait (pool.cpp killed the workers): finish the job.
    self._interrupted = nil
    self:terminate()
  end
end

function Pool:_check_running(what)
  self:_check_owner(what)
  if self._state ~= "RUN" then error(string.format("%s: Pool not running", what), 3) end
end

function Pool:_rebuild_poll()
  local ch, sen, pids = {}, {}, {}
  for i, w in ipairs(self._workers) do
    ch[i] = w.ch
    sen[i] = w.sentinel
    pids[i] = w.pid
  end
  self._poll_ch, self._poll_sen, self._pids = ch, sen, pids
end

function Pool:_start_worker()
  self._worker_count = self._worker_count + 1
  local ch, conn, slotconn = core.pool_pipe()
  M._live_channels[ch] = true
  local proc = self._Process{
    target = worker_main,
    args = {conn, slotconn, self._initializer, self._initargs, self._maxtasks},
    name = self._prefix .. "-" .. self._worker_count,
    daemon = true,
  }
  proc:start()
  conn:close()
  slotconn:close()
  local w = {proc = proc, ch = ch, pid = proc.pid, sentinel = proc.sentinel, name = proc.name,
             q = {}, qjob = {}, qhead = 1, qtail = 0, assigned = 0, has = {}, nfn = 0}
  self._workers[#self._workers + 1] = w
  self:_rebuild_poll()
  util.debug("added worker " .. proc.name)
  return w
end

-- The id of function f, encoding it the first time only.
function Pool:_fid(f)
  local e = self._fids[f]
  if e == nil then
    self._next_fid = self._next_fid + 1
    e = {self._next_fid, core.dumps(f)}
    self._fids[f] = e
  end
  return e
end

-- Adds a job whose chunks are produced by job:_produce().
function Pool:_submit(job)
  self._next_job = self._next_job + 1
  job._id = self._next_job
  self._jobs[job._id] = job
  self._feed_tail = self._feed_tail + 1
  self._feed[self._feed_tail] = job
  -- Keep idle workers busy without a syscall per submission otherwise.
  local workers = self._workers
  for i = 1, #workers do
    local w = workers[i]
    if w.qhead > w.qtail then
      self:_dispatch()
      break
    end
  end
  return job
end

-- The next chunk to send: {job, chunk} or nil.
function Pool:_next_chunk()
  local r = self._retry
  while #r > 0 do
    local x = table.remove(r, 1)
    if self._jobs[x[1]._id] then return x[1], x[2] end
  end
  while self._feed_head <= self._feed_tail do
    local job = self._feed[self._feed_head]
    local c = nil
    if not job._ready then c = job:_produce() end
    if c then return job, c end
    self._feed[self._feed_head] = nil
    self._feed_head = self._feed_head + 1
  end
  return nil
end

-- How many chunks a worker may hold: enough to keep it busy for ~5 ms
-- between two visits of the owner, but few when chunks are slow (a chunk
-- waiting behind a slow one cannot move to an idle worker).
function Pool:_window()
  local ct = self._ct
  if ct == nil then return 2 end
  local w = math.floor(0.005 / math.max(ct, 1e-7))
  -- Below ~20 ms a chunk, a second one in hand hides the round trip.
  if w < 2 then return ct < 0.02 and 2 or 1 end
  if w > 1024 then return 1024 end
  return w
end

-- The message for a batch of chunks: consecutive small chunks of one job,
-- or consecutive apply tasks of one function, become one run record
-- {fid, star, first, items, total, cs [, apply]} (see worker_main), so a map
-- with chunksize 1 encodes a few tables per batch instead of two per task.
-- The owner keeps its per-chunk records.
function merge_runs(b, jobs)
  local nb = #b
  if nb < 2 then return b end
  local msg = {defs = b.defs, reset = b.reset}
  local i = 1
  while i <= nb do
    local c = b[i]
    local cs = c[5]
    local j, total = i, cs
    -- apply_async chunks: one task each, each its job's task 1
    local apply = cs == 1 and c[3] == 1 and getmetatable(jobs[i]) == AsyncResult
    if type(c[4]) == "table" and cs <= 8 then
      while j < nb do
        local d = b[j + 1]
        if d[1] ~= c[1] or d[2] ~= c[2] or type(d[4]) ~= "table" then break end
        if apply then
          if d[3] ~= 1 or d[5] ~= 1 or getmetatable(jobs[j + 1]) ~= AsyncResult then break end
        elseif jobs[j + 1] ~= jobs[i] or d[3] ~= c[3] + total or d[5] > cs or b[j][5] ~= cs then
          break
        end
        j = j + 1
        total = total + d[5]
      end
    end
    if j > i then
      local all, pos = {}, 0
      for x = i, j do
        local e = b[x]
        table.move(e[4], 1, e[5], pos + 1, all)
        pos = pos + e[5]
      end
      msg[#msg + 1] = {c[1], c[2], c[3], pool_pack(all, 1, total) or all, total, cs, apply or nil}
      i = j + 1
    else
      msg[#msg + 1] = c
      i = i + 1
    end
  end
  return msg
end

-- Sends chunks to workers with room: the least loaded first.
function Pool:_dispatch()
  if self._state == "TERMINATE" then return end
  local window = self:_window()
  local workers = self._workers
  local nw = #workers
  if nw == 0 then return end
  local batches, bjobs = {}, {}
  local low = window >= 8 and window // 2 or window - 1
  while true do
    -- the least loaded worker that may take one more chunk
    local best, best_load = nil, math.huge
    for i = 1, nw do
      local w = workers[i]
      local load = w.qtail - w.qhead + 1
      if not w.quit and load < window and load < best_load
          and (batches[w] or load <= low)
          and (self._maxtasks == nil or w.assigned < self._maxtasks) then
        best, best_load = w, load
      end
    end
    if best == nil then break end
    local job, c = self:_next_chunk()
    if job == nil then break end
    local b = batches[best]
    if b == nil then
      b = {}
      batches[best] = b
      bjobs[best] = {}
    end
    b[#b + 1] = c
    bjobs[best][#b] = job
    best.qtail = best.qtail + 1
    best.q[best.qtail] = c
    best.qjob[best.qtail] = job
    best.assigned = best.assigned + 1
  end
  for w, b in pairs(batches) do
    -- The functions this batch uses that the worker lacks go with it.
    local jobs = bjobs[w]
    local need, cnt = {}, 0
    for i = 1, #b do
      local fid = b[i][1]
      if not w.has[fid] and not need[fid] then
        need[fid] = jobs[i]._fbytes
        cnt = cnt + 1
      end
    end
    if cnt > 0 then
      if w.nfn + cnt > 256 then
        -- Bound the worker's cache: it forgets every function, and this
        -- batch carries all those it uses.
        b.reset = true
        w.has, w.nfn = {}, 0
        need, cnt = {}, 0
        for i = 1, #b do
          local fid = b[i][1]
          if not need[fid] then
            need[fid] = jobs[i]._fbytes
            cnt = cnt + 1
          end
        end
      end
      b.defs = need
      for fid in pairs(need) do w.has[fid] = true end
      w.nfn = w.nfn + cnt
    end
    b = merge_runs(b, jobs)
    w.ch:send(b)
  end
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

-- A worker answered: the oldest chunk it holds is done.
function Pool:_on_answers(w, msgs)
  for m = 1, #msgs do
    local msg = msgs[m]
    if type(msg) == "table" and msg.b then
      for j = 1, #msg do self:_on_answer(w, msg[j]) end
    else
      self:_on_answer(w, msg)
    end
  end
end

-- One chunk's answer: a packed string, or {values, errs, seconds}.
function Pool:_on_answer(w, msg)
  do
    local h = w.qhead
    local c, job = w.q[h], w.qjob[h]
    w.q[h], w.qjob[h] = nil, nil
    w.qhead = h + 1
    local values, errs, t
    if type(msg) == "string" then  -- packed numbers, then the busy time
      values, t = msg, sunpack("=d", msg, #msg - 7)
    else
      values, errs, t = msg[1], msg[2], msg[3]
    end
    if t then
      local ct = self._ct
      self._ct = ct and (ct * 0.8 + t * 0.2) or t
    end
    if self._jobs[job._id] then job:_deliver(c[3], c[5], values, errs) end
  end
end

local function describe_exit(code)
  if code == nil then return "vanished" end
  if code < 0 then
    return string.format("was killed by signal %d (%s)", -code, signal_names[-code] or "?")
  end
  return string.format("exited with code %d", code)
end

-- A worker's sentinel fired: collect what it sent, fail the chunk it was
-- running, hand its unstarted chunks to others, and replace it.
function Pool:_on_exit(w)
  if self._state == "TERMINATE" then return end  -- shut down meanwhile
  while true do
    local msgs, eof = w.ch:recv()
    if msgs then self:_on_answers(w, msgs) end
    if eof or not msgs then break end
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
  -- Which chunk was it running?  The progress page says how many it had
  -- started and finished (its answers to finished ones may be lost).
  local started, finished = w.ch:progress()
  local running = started and started > finished and started or nil
  local in_init = started == -1
  M._live_channels[w.ch] = nil
  w.ch:close()
  pcall(w.proc.close, w.proc)
  self:_rebuild_poll()
  local how = describe_exit(code)
  local retry = {}
  for i = w.qhead, w.qtail do
    local c, job = w.q[i], w.qjob[i]
    if i == running then
      local first, n = c[3], c[5]
      local errs = {}
      for k = 1, n do
        local idx = first + k - 1
        local msg
        if n == 1 then
          msg = string.format("worker %s (pid %d) %s while running task %d", w.name, w.pid, how, idx)
        else
          msg = string.format("worker %s (pid %d) %s while running the chunk of tasks %d-%d (task %d)",
                              w.name, w.pid, how, first, first + n - 1, idx)
        end
        errs[k] = errors.WorkerLostError(msg, {task = idx, worker = w.name, pid = w.pid, exitcode = code,
                                               signal = code and code < 0 and -code or nil})
      end
      util.debug("worker " .. w.name .. " " .. how .. " while running a chunk")
      if self._jobs[job._id] then job:_deliver(first, n, {}, errs) end
    else
      -- Not started, or finished with its answer lost: run it again
      -- elsewhere, before anything else.
      retry[#retry + 1] = {job, c}
    end
  end
  for _, x in ipairs(self._retry) do retry[#retry + 1] = x end
  self._retry = retry
  if in_init then
    -- The initializer failed (its traceback went to stderr).  Python's pool
    -- would start workers that fail forever; after 3 in a row this one
    -- gives up and fails what is pending instead of hanging.
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
    self:_start_worker()
  end
end

-- True while some job is not complete or some chunk not sent.
function Pool:_has_work()
  return next(self._jobs) ~= nil or #self._retry > 0
end

-- Waits up to `timeout` seconds (nil: until something happens) for answers
-- or worker deaths, handles them, and sends more chunks.  Returns false
-- when there is nothing left to wait for (no worker holds a chunk).
function Pool:_pump(timeout)
  self:_dispatch()
  local workers = self._workers
  local busy = false
  for i = 1, #workers do
    local w = workers[i]
    if w.qhead <= w.qtail or w.ch:pending() > 0 or w.quit then busy = true break end
  end
  if not busy and timeout ~= 0 then
    if self._state == "TERMINATE" or #workers == 0 then return false end
  end
  local ready = core.pool_poll(self._poll_ch, self._poll_sen, busy and timeout or (timeout or 0.05),
                                self._pids, self)
  local dead
  for _, i in ipairs(ready) do
    if i > 0 then
      local w = workers[i]
      if w.ch:pending() > 0 then w.ch:flush() end
      local msgs = w.ch:recv()
      if msgs then self:_on_answers(w, msgs) end
    else
      dead = dead or {}
      dead[#dead + 1] = workers[-i]
    end
  end
  if dead then
    for _, w in ipairs(dead) do self:_on_exit(w) end
  end
  self:_dispatch()
  return true
end

-- Chunk producers -------------------------------------------------------

-- A producer over a sequence (anything with # and [i]) or an iterator
-- function; sets job._total when the input is exhausted.
local function make_source(job, seq, chunksize, fid, star)
  local pos = 0
  if type(seq) == "function" then
    local done = false
    return function()
      if done then return nil end
      local items, n = {}, 0
      while n < chunksize do
        local v = seq()
        if v == nil then
          done = true
          break
        end
        n = n + 1
        items[n] = v
      end
      if n == 0 then
        job._total = pos
        job:_check_complete()
        return nil
      end
      local c = {fid, star, pos + 1, items, n}
      pos = pos + n
      if done then
        job._total = pos
      end
      return c
    end
  end
  local len = #seq
  local plain = getmetatable(seq) == nil
  return function()
    if pos >= len then return nil end
    local n = math.min(chunksize, len - pos)
    local items = plain and n > 8 and pool_pack(seq, pos + 1, pos + n)
    if not items then items = table.move(seq, pos + 1, pos + n, 1, {}) end
    local c = {fid, star, pos + 1, items, n}
    pos = pos + n
    return c
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
  local e = self:_fid(f)
  job._fbytes = e[2]
  job._out = {}
  job._left = len
  job._total = len
  job._produce = make_source(job, seq, chunksize, e[1], star)
  if len == 0 then
    job._id = -1
    self._jobs[-1] = job
    job:_finish(true, {})
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
  self:_check_running("apply_async")
  check_callable(f, "apply_async", 1)
  if args ~= nil and type(args) ~= "table" then
    error("bad argument #2 to 'apply_async' (table expected, got " .. type(args) .. ")", 2)
  end
  opt_callable(callback, "apply_async", 3)
  opt_callable(error_callback, "apply_async", 4)
  local e = self._fids[f] or self:_fid(f)
  local job = AsyncResult.new(AsyncResult, self, callback, error_callback, e[2], {e[1], true, 1, {args or {}}, 1})
  return self:_submit(job)
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
  local e = self:_fid(f)
  it._fbytes = e[2]
  it._produce = make_source(it, seq, chunksize or 1, e[1], false)
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

-- Stops the workers and fails every unfinished result with
-- ProcessError(message).
function Pool:_shutdown(message)
  if self._state == "TERMINATE" then return end
  self._state = "TERMINATE"
  util.debug("terminating pool")
  local workers = self._workers
  for _, w in ipairs(workers) do pcall(w.proc.terminate, w.proc) end
  local deadline = monotonic() + 1
  for _, w in ipairs(workers) do
    pcall(w.proc.join, w.proc, math.max(deadline - monotonic(), 0))
    if w.proc.exitcode == nil then
      pcall(w.proc.kill, w.proc)
      pcall(w.proc.join, w.proc, 1)
    end
    M._live_channels[w.ch] = nil
    w.ch:close()
    pcall(w.proc.close, w.proc)
  end
  self._workers = {}
  self:_rebuild_poll()
  self._retry = {}
  self._feed, self._feed_head, self._feed_tail = {}, 1, 0
  local jobs = self._jobs
  self._jobs = {}
  for _, job in pairs(jobs) do
    local err = errors.ProcessError(message)
    if getmetatable(job) == IMapIterator then
      job._terminated = err
      job._total = job._total or (job._arrived + 0)
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
    while self:_has_work() or self._feed_head <= self._feed_tail do
      if not self:_pump(nil) then
        if #self._workers == 0 then break end
      end
    end
    self:_run_callbacks()
    for _, w in ipairs(self._workers) do
      if not w.quit then
        w.quit = true
        w.ch:send(false)
      end
    end
    while #self._workers > 0 do
      local ready = core.pool_poll(self._poll_ch, self._poll_sen, 1, self._pids, self)
      local dead = {}
      for _, i in ipairs(ready) do
        local w = self._workers[i < 0 and -i or i]
        if i > 0 then
          if w.ch:pending() > 0 then w.ch:flush() end
          w.ch:recv()
        else
          dead[#dead + 1] = w
        end
      end
      for _, w in ipairs(dead) do
        w.proc:join(1)
        if w.proc.exitcode == nil then w.proc:kill() w.proc:join(1) end
        for i, x in ipairs(self._workers) do
          if x == w then table.remove(self._workers, i) break end
        end
        M._live_channels[w.ch] = nil
        w.ch:close()
        pcall(w.proc.close, w.proc)
        self:_rebuild_poll()
      end
    end
    self._state = "CLOSED"
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
