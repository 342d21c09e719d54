-- Pool under each start method: order of map/imap results, chunk
-- boundaries, starmap/apply, errors and tracebacks, callbacks and error
-- callbacks, initializer, maxtasksperchild, close/join, terminate with
-- tasks running, misuse, and no process left behind.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"
local method = os.getenv("LUAMP_START_METHOD") or "fork"

local check_error = require("testlib").check_error

local function seq(n, f)
  local t = {}
  for i = 1, n do t[i] = f and f(i) or i end
  return t
end

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function square(x) return x * x end

-- Children of this process that are still running (fork and spawn workers
-- are our children; forkserver workers are the server's).
local function live_children()
  local f = io.popen("ps -o pid= --ppid " .. os.getpid())
  local n = 0
  for line in f:lines() do
    local pid = tonumber(line)
    if pid then
      local cmd = io.open("/proc/" .. pid .. "/cmdline")
      local text = cmd and cmd:read("a") or ""
      if cmd then cmd:close() end
      -- the fork server and the ps of this very call are not workers
      if not text:find("forkserver") and not text:find("^ps") then n = n + 1 end
    end
  end
  f:close()
  return n
end

local baseline = live_children()

local function open_fds()
  local p = io.popen("ls /proc/" .. os.getpid() .. "/fd")
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end
-- (a first pool starts what stays for the run, e.g. the fork server)
do
  local pool <close> = mp.Pool(1)
  pool:apply(square, {1})
end
collectgarbage()
local fd_baseline = open_fds()

do
  local pool <close> = mp.Pool(3)
  assert(tostring(pool):find("Pool state=RUN pool_size=3"), tostring(pool))

  -- map keeps the input order, for every chunk size (default, 1, a prime,
  -- larger than the input) and every input size (0, 1, a prime, larger).
  for _, n in ipairs {0, 1, 2, 13, 101} do
    local xs = seq(n)
    local want = seq(n, square)
    assert(same(pool:map(square, xs), want), "map of " .. n)
    for _, cs in ipairs {1, 3, 7, 1000} do
      assert(same(pool:map(square, xs, cs), want), string.format("map of %d, chunksize %d", n, cs))
      local got = {}
      for v in pool:imap(square, xs, cs) do got[#got + 1] = v end
      assert(same(got, want), string.format("imap of %d, chunksize %d", n, cs))
      got = {}
      for v in pool:imap_unordered(square, xs, cs) do got[#got + 1] = v end
      table.sort(got)
      assert(same(got, want), string.format("imap_unordered of %d, chunksize %d", n, cs))
    end
  end
  assert(#pool:map(square, {}) == 0)

  -- Closures with upvalues, C functions, starmap, apply.
  local k = 10
  assert(same(pool:map(function(x) return x * k end, {1, 2, 3}), {10, 20, 30}))
  assert(same(pool:map(math.abs, {-1, -2}), {1, 2}))
  assert(same(pool:starmap(function(a, b) return a * b end, {{1, 2}, {3, 4}, {5, 6}}), {2, 12, 30}))
  assert(pool:apply(function(a, b) return a + b end, {2, 3}) == 5)
  assert(pool:apply(function() return "no args" end) == "no args")
  local pid = pool:apply(os.getpid)
  assert(pid ~= os.getpid())
  -- nil results keep their positions
  local r = pool:map(function(x) if x % 2 == 0 then return x end end, {1, 2, 3, 4})
  assert(r[1] == nil and r[2] == 2 and r[3] == nil and r[4] == 4)

  -- imap preserves order even when later tasks finish first.
  local slow_first = {}
  for v in pool:imap(function(x) os.sleep(x == 1 and 0.2 or 0) return x end, {1, 2, 3, 4}) do
    slow_first[#slow_first + 1] = v
  end
  assert(same(slow_first, {1, 2, 3, 4}))
  -- imap_unordered gives completion order.
  local order = {}
  for v in pool:imap_unordered(function(x) os.sleep(x == 1 and 0.5 or 0) return x end, {1, 2, 3}) do
    order[#order + 1] = v
  end
  assert(order[3] == 1, "the slow task comes last: " .. repr(order))

  -- imap over an iterator function; next(timeout); nil at the end.
  local i = 0
  local gen = function() i = i + 1 if i <= 5 then return i end end
  local it = pool:imap(square, gen, 2)
  local got = {}
  for v in it do got[#got + 1] = v end
  assert(same(got, {1, 4, 9, 16, 25}), repr(got))
  assert(it:next() == nil and it:next(0) == nil)
  local it2 = pool:imap(function(x) os.sleep(x) return x end, {0.6})
  local err = check_error("TimeoutError", it2.next, it2, 0.05)
  assert(mp.isinstance(err, mp.TimeoutError))
  assert(it2:next(10) == 0.6)
  assert(it2:next(1) == nil)

  -- Task errors: a string error comes back with the worker's traceback
  -- under a line naming the worker and the task; an error object keeps its
  -- class and carries err.traceback.  The pool keeps serving.
  local function fails_at_3(x)
    if x == 3 then error("three is bad") end
    return x
  end
  err = check_error("three is bad", pool.map, pool, fails_at_3, {1, 2, 3, 4}, 1)
  assert(type(err) == "string")
  assert(err:find("in pool worker %a+PoolWorker%-%d+, task 3:"), err)
  assert(err:find("stack traceback:"), err)
  err = check_error("TimeoutError: custom", pool.apply, pool, function() error(mp.TimeoutError("custom")) end)
  assert(mp.isinstance(err, mp.TimeoutError))
  assert(err.message == "custom")
  assert(err.traceback:find("in pool worker %a+PoolWorker%-%d+, task 1:"), err.traceback)
  check_error("in pool worker", pool.starmap, pool, function(a) error("star " .. a) end, {{1}})
  -- imap: the failed element raises at its position, iteration continues.
  it = pool:imap(fails_at_3, {1, 2, 3, 4, 5})
  assert(it:next(10) == 1 and it:next(10) == 2)
  check_error("three is bad", it.next, it, 10)
  assert(it:next(10) == 4 and it:next(10) == 5 and it:next(10) == nil)
  -- a result that cannot cross fails its task only
  err = check_error("cannot send", pool.apply, pool, function() return coroutine.create(print) end)
  assert(pool:apply(square, {9}) == 81, "the pool keeps serving")

  -- AsyncResult: get/wait/ready/successful; TimeoutError leaves it usable.
  local slow = pool:apply_async(function() os.sleep(0.5) return "late" end)
  check_error("TimeoutError", slow.get, slow, 0.05)
  assert(not slow:ready())
  check_error("not ready", slow.successful, slow)
  slow:wait(0.01)
  assert(slow:get(10) == "late" and slow:ready() and slow:successful())
  local bad = pool:apply_async(error, {"plain"})
  bad:wait(10)
  assert(bad:ready() and not bad:successful())

  -- Callbacks run in this process, before get/wait of their result returns.
  local me = os.getpid()
  local seen = {}
  local ar = pool:apply_async(square, {7}, function(v) seen[#seen + 1] = {"apply", v, os.getpid()} end)
  assert(ar:get(10) == 49)
  assert(#seen == 1 and seen[1][2] == 49 and seen[1][3] == me)
  local mr = pool:map_async(square, {1, 2, 3}, nil, function(v) seen[#seen + 1] = {"map", v} end)
  mr:wait(10)
  assert(#seen == 2 and same(seen[2][2], {1, 4, 9}))
  local errs = {}
  local er = pool:apply_async(function() error("cb") end, nil, function() error("must not run") end,
                              function(e) errs[#errs + 1] = e end)
  er:wait(10)
  assert(#errs == 1 and tostring(errs[1]):find("cb"))
  local sr = pool:starmap_async(function(a, b) return a - b end, {{5, 1}, {9, 3}}, 1,
                                function(v) seen[#seen + 1] = {"starmap", v} end)
  assert(same(sr:get(10), {4, 6}) and same(seen[3][2], {4, 6}))
  local me2 = pool:map_async(fails_at_3, {1, 2, 3}, 1, nil, function(e) errs[#errs + 1] = e end)
  me2:wait(10)
  assert(#errs == 2 and tostring(errs[2]):find("three is bad"))

  -- Misuse.
  check_error("bad argument #1 to 'map' %(function expected", pool.map, pool, 42, {})
  check_error("bad argument #2 to 'map' %(table expected", pool.map, pool, square, 42)
  check_error("chunksize must be a positive integer", pool.map, pool, square, {1}, 0)
  check_error("chunksize must be a positive integer", pool.imap, pool, square, {1}, -1)
  check_error("join: Pool is still running", pool.join, pool)
  if method == "fork" then
    -- Methods used from a process that did not create the pool raise.
    local a, b = mp.Pipe()
    local p = mp.Process{target = function()
      local ok, e = pcall(pool.map, pool, square, {1})
      b:send(tostring(e))
    end}
    p:start()
    assert(a:recv():find("a Pool can only be used by the process that created it"))
    p:join(30)
    p:close()
    a:close()
    b:close()
  end
end
check_error("processes must be at least 1", mp.Pool, 0)
check_error("integer or table of options expected", mp.Pool, "x")
collectgarbage()
collectgarbage()

-- close() + join(): every submitted task completes and every callback has
-- run by the time join returns; workers are gone.
do
  local pool = mp.Pool(2)
  local done = {}
  local rs = {}
  for i = 1, 6 do
    rs[i] = pool:apply_async(function(x) os.sleep(0.05) return x end, {i}, function(v) done[#done + 1] = v end)
  end
  pool:close()
  check_error("Pool not running", pool.map, pool, square, {1})
  pool:join()
  assert(#done == 6, "callbacks ran: " .. #done)
  for i = 1, 6 do assert(rs[i]:get(0) == i) end
  assert(#mp.active_children() == 0)
end

-- Workers start, and run their initializer, when the pool is made (before
-- any task).
do
  local q = mp.Queue()
  local pool <close> = mp.Pool{processes = 2, initializer = function(qq) qq:put(os.getpid()) end,
                               initargs = {q}}
  local a, b = q:get(true, 20), q:get(true, 20)
  local pids = pool:_worker_pids()
  assert((a == pids[1] and b == pids[2]) or (a == pids[2] and b == pids[1]), repr{a, b, pids})
end

-- initializer / initargs run in each worker when it starts.
do
  local pool <close> = mp.Pool{processes = 2, initializer = function(a, b) _G.INIT = a .. b end,
                               initargs = {"x", "y"}}
  local got = pool:map(function() return _G.INIT end, {1, 2, 3, 4}, 1)
  assert(same(got, {"xy", "xy", "xy", "xy"}), repr(got))
end

-- Messages larger than the socket buffers, both ways, several in flight:
-- the owner never blocks in a write while a worker blocks writing back.
do
  local pool <close> = mp.Pool(2)
  local big = {}
  for i = 1, 6 do big[i] = string.rep(string.char(64 + i), 3 * 1024 * 1024) end
  local r = pool:map(function(s) return s .. s end, big, 1)
  for i = 1, 6 do assert(#r[i] == 6 * 1024 * 1024 and r[i]:sub(-1) == string.char(64 + i)) end
end

-- An initializer that fails: the pool gives up after 3 workers in a row
-- instead of restarting workers forever (the tracebacks on stderr are
-- expected).
do
  local pool <close> = mp.Pool{processes = 2, initializer = function()
    error("expected failure of an initializer, ignore this traceback")
  end}
  local t0 = os.monotonic()
  local err = check_error("initializer failed", pool.map, pool, square, {1, 2, 3})
  assert(mp.isinstance(err, mp.ProcessError))
  assert(os.monotonic() - t0 < 20)
  check_error("Pool not running", pool.apply, pool, square, {1})
end

-- maxtasksperchild: workers are replaced (pids change), results stay right.
do
  local pool <close> = mp.Pool{processes = 2, maxtasksperchild = 1}
  local pids = pool:map(function() os.sleep(0.01) return os.getpid() end, seq(8), 1)
  local distinct = {}
  for _, p in ipairs(pids) do distinct[p] = true end
  local n = 0
  for _ in pairs(distinct) do n = n + 1 end
  assert(n >= 5, "expected fresh workers, saw " .. n .. " pids")
  assert(same(pool:map(square, seq(10), 3), seq(10, square)))
end

-- terminate() with tasks running: quick, workers gone, results fail.
do
  local pool = mp.Pool(2)
  local rs = {}
  for i = 1, 4 do rs[i] = pool:apply_async(os.sleep, {30}) end
  local it = pool:imap(os.sleep, {30, 30})
  os.sleep(0.2)
  local t0 = os.monotonic()
  pool:terminate()
  pool:join()
  assert(os.monotonic() - t0 < 5, "terminate took too long")
  for i = 1, 4 do
    local e = check_error("terminated", rs[i].get, rs[i], 1)
    assert(mp.isinstance(e, mp.ProcessError))
  end
  check_error("terminated", it.next, it, 1)
  check_error("Pool not running", pool.apply, pool, square, {1})
end

-- <close> terminates (a sleeping task does not delay the end of the block).
do
  local t0 = os.monotonic()
  do
    local pool <close> = mp.Pool(1)
    pool:apply_async(os.sleep, {30})
    assert(pool:apply_async(square, {3}) ~= nil)
  end
  assert(os.monotonic() - t0 < 10)
end

-- The same function for many tasks is encoded once per map call, and once
-- for a run of apply_async while its upvalues keep their values (pool
-- internals: _next_fid counts encodings); its bytes travel with each task
-- and each worker decodes each encoding once.
do
  local pool <close> = mp.Pool(2)
  local f = function(x) return x + 1 end
  assert(#pool:map(f, seq(2000), 1) == 2000)
  for i = 1, 200 do pool:apply_async(f, {i}) end
  assert(same(pool:map(f, seq(3)), {2, 3, 4}))
  assert(pool._next_fid == 2, "f was encoded " .. pool._next_fid .. " times")
  -- Many distinct closures: the workers' caches stay bounded.
  local rs = {}
  for i = 1, 600 do rs[i] = pool:apply_async(function() return i end) end
  for i = 1, 600 do assert(rs[i]:get(10) == i) end
  assert(pool._next_fid == 602)
  -- An upvalue assigned between calls is seen by the next call.
  local k = 1
  local g = function(x) return x * k end
  assert(same(pool:map(g, {1, 2}), {1, 2}))
  assert(pool:apply_async(g, {3}):get(10) == 3)
  k = 10
  assert(same(pool:map(g, {1, 2}), {10, 20}))
  assert(pool:apply_async(g, {3}):get(10) == 30)
  k = 100
  assert(pool:apply_async(g, {3}):get(10) == 300)
end

collectgarbage()
collectgarbage()
assert(#mp.active_children() == 0, "children left: " .. #mp.active_children())
assert(live_children() <= baseline, "processes left behind")
-- (the fork server may hold a descriptor for a moment while it answers)
local fds = open_fds()
for _ = 1, 20 do
  if fds <= fd_baseline then break end
  os.sleep(0.05)
  collectgarbage()
  fds = open_fds()
end
assert(fds <= fd_baseline, "file descriptors left open: " .. fds .. " > " .. fd_baseline)
print("pool tests passed (" .. method .. ")")
