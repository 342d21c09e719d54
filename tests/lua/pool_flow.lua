-- The Pool's task flow: workers keep working while the owner is away from
-- the pool (sleeping, calling no pool method); a finished task never runs
-- twice, even when its worker dies later; a lazy input is read a bounded
-- amount ahead; big values both ways; more results in flight than a queue
-- holds; terminate with many tasks queued; maxtasksperchild; close + join
-- drain everything; and the owner's own mistakes (a callback that raises,
-- an input iterator that raises, an argument that cannot be sent).
-- Counts of what workers did live in shared memory (mp.Value, mp.Array).
-- Every wait has a timeout, so a hang fails the check instead of stalling.
--
--   luamp pool_flow.lua [name ...]   runs only the named checks
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"
local leakcheck = require "leakcheck"
local method = os.getenv("LUAMP_START_METHOD") or "fork"

local function seq(n, f)
  local t = {}
  for i = 1, n do t[i] = f and f(i) or i end
  return t
end

local check_error = require("testlib").check_error

-- Adds 1 to a shared Value under its lock (runs in workers: the Value
-- travels as a reference to the same shared memory).
local function bump(v)
  local _ <close> = v:get_lock():guard()
  v.value = v.value + 1
end

-- True while pid is a live process (a zombie counts as gone).
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local stat = f:read("a") or ""
  f:close()
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

-- Waits up to `timeout` seconds until none of `pids` is alive; fails
-- naming the ones left.
local function assert_gone(pids, timeout, what)
  local deadline = os.monotonic() + timeout
  local left
  repeat
    left = {}
    for _, pid in ipairs(pids) do
      if alive(pid) then left[#left + 1] = pid end
    end
    if #left == 0 then return end
    os.sleep(0.02)
  until os.monotonic() > deadline
  error(what .. ": workers still alive: " .. table.concat(left, " "), 2)
end

-- The luamp entries in /dev/shm now (a set), to compare with later.
local function shm_now()
  local set = {}
  for _, name in ipairs(leakcheck.entries()) do set[name] = true end
  return set
end

-- leakcheck.assert_clean for what a check made: entries of this process
-- and of `pids` that were not in `before`.  (A worker killed by terminate
-- or SIGKILL cannot drop its holds, so the shared objects it held stay
-- until the program ends: docs/design/shared-memory.md, "Limits".  Checks
-- that kill workers holding their own Values leave those behind.)
local function assert_no_new_shm(before, pids, what)
  local all = {os.getpid()}
  for _, p in ipairs(pids) do all[#all + 1] = p end
  local deadline = os.monotonic() + 5
  local new
  repeat
    collectgarbage()
    collectgarbage()
    new = {}
    for _, name in ipairs(leakcheck.entries(all)) do
      if not before[name] then new[#new + 1] = name end
    end
    if #new == 0 then return end
    os.sleep(0.02)
  until os.monotonic() > deadline
  error(what .. ": shared memory left in /dev/shm: " .. table.concat(new, " "), 2)
end

-- 1. apply_async tasks run while the owner sleeps without touching the pool.
local function background_apply()
  local pool <close> = mp.Pool(2)
  local counter = mp.Value("i", 0)
  local task = function(i)
    os.sleep(0.005)
    bump(counter)
    return i * 3
  end
  local rs = {}
  for i = 1, 100 do rs[i] = pool:apply_async(task, {i}) end
  os.sleep(1.5)
  local n = counter.value
  assert(n == 100, "while the owner slept 1.5 s the workers ran " .. n .. " of 100 tasks")
  for i = 1, 100 do assert(rs[i]:get(10) == i * 3, "result " .. i) end
end

-- 2. The same with one map_async of 100 one-task chunks.
local function background_map()
  local pool <close> = mp.Pool(2)
  local counter = mp.Value("i", 0)
  local r = pool:map_async(function(i)
    os.sleep(0.005)
    bump(counter)
    return i * 3
  end, seq(100), 1)
  os.sleep(1.5)
  local n = counter.value
  assert(n == 100, "while the owner slept 1.5 s the workers ran " .. n .. " of 100 tasks")
  local out = r:get(10)
  for i = 1, 100 do assert(out[i] == i * 3, "result " .. i) end
end

-- 3. A worker killed in task 40: task 40 fails with WorkerLostError, every
-- other task succeeds, and no task ran twice (its answer was not lost).
local function no_rerun()
  local pool <close> = mp.Pool(2)
  local runs = mp.Array("i", 60)
  local it = pool:imap(function(i)
    do
      local _ <close> = runs:get_lock():guard()
      runs[i] = runs[i] + 1
    end
    if i == 40 then
      os.execute("kill -KILL " .. os.getpid())
      os.sleep(30)  -- the signal arrives before this ends
    end
    return i * 2
  end, seq(60), 1)
  for i = 1, 60 do
    local ok, v = pcall(it.next, it, 20)
    if i == 40 then
      assert(not ok and mp.isinstance(v, mp.WorkerLostError), "task 40: " .. tostring(v))
    else
      assert(ok and v == i * 2, "task " .. i .. ": " .. tostring(v))
    end
  end
  assert(it:next(5) == nil)
  local twice = {}
  for i = 1, 60 do
    if runs[i] ~= 1 then twice[#twice + 1] = i .. "x" .. runs[i] end
  end
  assert(#twice == 0, "tasks that did not run exactly once (task x runs): " .. table.concat(twice, " "))
end

-- 3b. A worker killed inside a chunk of several tasks, with the chunks
-- grouped into runs (quick tasks): the tasks of that chunk fail with
-- WorkerLostError naming the chunk, the chunks of its run it had not
-- started run on another worker, and no task runs twice.  With map the
-- whole map fails (Python's rule); with imap every other element arrives.
local function chunk_death()
  local pool <close> = mp.Pool(2)
  pool:map(function(x) return x end, seq(50), 1)  -- the pool learns that chunks are quick
  local function task(runs)
    return function(i)
      do
        local _ <close> = runs:get_lock():guard()
        runs[i] = runs[i] + 1
      end
      if i == 123 and runs[200 + 1] == 0 then
        runs[200 + 1] = 1  -- only the first time: the kill is not a property of the task
        os.execute("kill -KILL " .. os.getpid())
        os.sleep(30)  -- the signal arrives before this ends
      end
      return i * 2
    end
  end
  -- imap: each element on its own
  local runs = mp.Array("i", 201)
  local it = pool:imap(task(runs), seq(200), 5)
  for i = 1, 200 do
    local ok, v = pcall(it.next, it, 20)
    if i >= 121 and i <= 125 then
      assert(not ok and mp.isinstance(v, mp.WorkerLostError), "task " .. i .. ": " .. tostring(v))
      assert(tostring(v):find("chunk of tasks 121%-125 %(task " .. i .. "%)"), tostring(v))
      assert(v.task == i)
    else
      assert(ok and v == i * 2, "task " .. i .. ": " .. tostring(v))
    end
  end
  assert(it:next(5) == nil)
  for i = 1, 200 do
    local want = (i > 123 and i <= 125) and 0 or 1  -- 124, 125 never started
    assert(runs[i] == want, "task " .. i .. " ran " .. runs[i] .. " times")
  end
  -- map: fails as a whole; nothing runs twice
  runs = mp.Array("i", 201)
  local r = pool:map_async(task(runs), seq(200), 5)
  local ok, err = pcall(r.get, r, 30)
  assert(not ok and mp.isinstance(err, mp.WorkerLostError), "map: " .. tostring(err))
  assert(tostring(err):find("chunk of tasks 121%-125"), tostring(err))
  assert(pool:apply(function() return "still serving" end) == "still serving")
  for i = 1, 200 do assert(runs[i] <= 1, "task " .. i .. " ran " .. runs[i] .. " times") end
end

-- 4. imap over an endless iterator: the owner reads a bounded amount ahead.
local function lazy_iterator()
  local pool <close> = mp.Pool(2)
  local handed = 0
  local it = pool:imap(function(x) return x + 1 end, function()
    handed = handed + 1
    return handed
  end)
  for i = 1, 20 do
    local v = it:next(10)
    assert(v == i + 1, "element " .. i .. ": " .. tostring(v))
  end
  assert(handed <= 2000, "the pool read " .. handed .. " values ahead of 20 results")
  pool:terminate()
end

-- 5. A 10 MiB result and an 8 MiB argument arrive intact; nothing is left
-- in /dev/shm afterwards.
local function big_values()
  local before = shm_now()
  local pids
  do
    local pool <close> = mp.Pool(2)
    pids = pool:_worker_pids()
    local s = pool:apply_async(function() return string.rep("x", 10 << 20) end):get(30)
    assert(#s == 10 << 20, "result of " .. #s .. " bytes")
    assert(not s:find("[^x]"), "result corrupted")
    s = nil
    local big = string.rep("y", 8 << 20)
    local r = pool:map_async(function(t)
      return #t .. (t:find("[^y]") and " corrupted" or " intact")
    end, {big}):get(30)
    assert(r[1] == (8 << 20) .. " intact", "the worker received " .. tostring(r[1]))
    -- and back again, through imap
    local it = pool:imap(function(t) return t .. "z" end, {big})
    local back = it:next(30)
    assert(#back == (8 << 20) + 1 and back:sub(-2) == "yz")
  end
  assert_no_new_shm(before, pids, "big_values")
end

-- 6. About 40 MB of results (more than a queue's 32 MiB ring) from 20000
-- one-task chunks: no deadlock between the owner putting tasks and the
-- workers putting results.
local function result_pressure()
  local pool <close> = mp.Pool(2)
  local t0 = os.monotonic()
  local out = pool:map_async(function(i) return string.rep("r", 2048) .. i end, seq(20000), 1):get(60)
  local took = os.monotonic() - t0
  assert(#out == 20000, "got " .. #out .. " results")
  local pad = string.rep("r", 2048)
  for i = 1, 20000 do assert(out[i] == pad .. i, "result " .. i) end
  assert(took < 60, "took " .. took .. " s")
end

-- 7. terminate() with most of 1000 tasks still queued: the result fails
-- with ProcessError, the workers are gone, nothing is left in /dev/shm.
local function terminate_queued()
  local before = shm_now()
  local pool = mp.Pool(2)
  local pids = pool:_worker_pids()
  local r = pool:map_async(function(x)
    os.sleep(0.01)
    return x
  end, seq(1000), 1)
  os.sleep(0.1)
  local t0 = os.monotonic()
  pool:terminate()
  assert(os.monotonic() - t0 < 5, "terminate took " .. (os.monotonic() - t0) .. " s")
  local err = check_error("terminated", r.get, r, 5)
  assert(mp.isinstance(err, mp.ProcessError), tostring(err))
  pool:join()
  assert_gone(pids, 2, "terminate_queued")
  pool, r = nil, nil
  assert_no_new_shm(before, pids, "terminate_queued")
end

-- 7b. terminate (here through <close>) lets idle workers leave by
-- themselves, so the shared objects their cached functions hold are
-- released at once, not at the end of the program.
local function terminate_releases()
  local before = shm_now()
  local pids
  do
    local v = mp.Value("i", 0)
    local pool <close> = mp.Pool(2)
    pids = pool:_worker_pids()
    local f = function(x) return x + v.value end
    assert(pool:map(f, seq(8), 1)[8] == 8)
  end
  assert_gone(pids, 2, "terminate_releases")
  assert_no_new_shm(before, pids, "terminate_releases")
end

-- 8. maxtasksperchild = 3: 30 one-task chunks need at least 10 workers,
-- none of which runs more than 3 tasks.
local function maxtasks_replaced()
  local pool <close> = mp.Pool{processes = 2, maxtasksperchild = 3}
  local got = pool:map_async(function() return os.getpid() end, seq(30), 1):get(60)
  local per = {}
  local distinct = 0
  for i = 1, 30 do
    local pid = got[i]
    assert(math.type(pid) == "integer", "result " .. i .. ": " .. tostring(pid))
    if not per[pid] then distinct = distinct + 1 end
    per[pid] = (per[pid] or 0) + 1
    assert(per[pid] <= 3, "worker " .. pid .. " ran " .. per[pid] .. " tasks")
  end
  assert(distinct >= 10, "only " .. distinct .. " workers ran 30 tasks")
end

-- 9. close() + join(): every task completes and every callback has run by
-- the time join returns; the workers are gone.
local function close_join_drains()
  local before = shm_now()
  local pool = mp.Pool(2)
  local pids = pool:_worker_pids()
  local done = {}
  for i = 1, 50 do
    pool:apply_async(function(x) return x end, {i}, function(v) done[#done + 1] = v end)
  end
  pool:close()
  pool:join()
  assert(#done == 50, "callbacks ran: " .. #done)
  table.sort(done)
  for i = 1, 50 do assert(done[i] == i, "callback values: " .. repr(done)) end
  assert_gone(pids, 2, "close_join_drains")
  pool = nil
  assert_no_new_shm(before, pids, "close_join_drains")
end

-- 10. A callback that raises: the error comes out of the get that ran the
-- callback (docs/api/pool.md, "When callbacks run"), once; the result
-- stays as it is and the pool keeps serving.
local function callback_raises()
  local pool <close> = mp.Pool(2)
  local ran = 0
  local r = pool:apply_async(function() os.sleep(0.05) return 7 end, nil, function(v)
    ran = ran + 1
    error("callback boom " .. v)
  end)
  check_error("callback boom 7", r.get, r, 10)
  assert(ran == 1)
  assert(r:ready() and r:successful() and r:get(0) == 7 and ran == 1, "the callback ran again")
  -- an error_callback that raises: its error first, then the task's own
  local eran = 0
  local r2 = pool:apply_async(function() os.sleep(0.05) error("task boom") end, nil, nil, function()
    eran = eran + 1
    error("error_callback boom")
  end)
  check_error("error_callback boom", r2.get, r2, 10)
  check_error("task boom", r2.get, r2, 0)
  assert(eran == 1)
  -- map_async's callback: wait raises it, get then returns the list
  local r3 = pool:map_async(function(x) return -x end, {1, 2, 3}, 1, function() error("map callback boom") end)
  check_error("map callback boom", r3.wait, r3, 10)
  local out = r3:get(0)
  assert(out[1] == -1 and out[3] == -3)
  assert(pool:apply_async(function() return "still serving" end):get(10) == "still serving")
end

-- 11. imap over an iterator that raises in the owner (Python's
-- _guarded_task_generation): the results before it arrive, the iterator's
-- error is raised at its position, then the iteration ends, the iterator
-- is not called again, and the pool keeps serving.
local function iterator_raises()
  local pool <close> = mp.Pool(2)
  local n = 0
  local gen = function()
    n = n + 1
    if n == 40 then error("iterator boom") end
    if n < 40 then return n end
  end
  local ok, it = pcall(pool.imap, pool, function(x) return x * 10 end, gen)
  assert(ok, "imap raised: " .. tostring(it))
  for i = 1, 39 do
    local okk, v = pcall(it.next, it, 5)
    assert(okk and v == i * 10, "element " .. i .. ": " .. tostring(v))
  end
  check_error("iterator boom", it.next, it, 5)
  assert(it:next(5) == nil, "the iteration ends after the iterator's error")
  assert(n == 40, "the iterator was called " .. n .. " times")
  assert(pool:apply_async(function() return "still serving" end):get(10) == "still serving")
end

-- 12. An argument that cannot be sent (a coroutine), submitted while the
-- worker is busy: apply_async raises at once, or its own get raises; the
-- other tasks are not disturbed and the pool keeps serving.
local function unsendable_argument()
  local pool <close> = mp.Pool(1)
  local busy = {}
  for i = 1, 3 do busy[i] = pool:apply_async(function(x) os.sleep(0.1) return x end, {i}) end
  local ok, r = pcall(pool.apply_async, pool, function(x) return x end, {coroutine.create(print)})
  if ok then
    check_error("cannot send a coroutine", r.get, r, 10)
  else
    assert(tostring(r):find("cannot send a coroutine"), tostring(r))
  end
  local after = pool:apply_async(function() return "after" end)
  for i = 1, 3 do
    local okk, v = pcall(busy[i].get, busy[i], 5)
    assert(okk and v == i, "busy task " .. i .. ": " .. tostring(v))
  end
  assert(after:get(5) == "after")
  assert(pool:apply_async(function() return "still serving" end):get(10) == "still serving")
end

-- 13. An item a worker cannot rebuild (a class registered only in the
-- main script: a spawned worker never ran it) fails its tasks; it does
-- not kill worker after worker.  Under fork the worker has the class.
local function unrebuildable_item()
  local P = {}
  P.__index = P
  mp.register_class("PoolFlowLocalPoint", P)
  local pool <close> = mp.Pool(2)
  local items = {setmetatable({x = 1}, P), setmetatable({x = 2}, P)}
  local r = pool:map_async(function(p) return p.x end, items, 1)
  local ok, v = pcall(r.get, r, 20)
  if method == "fork" then
    assert(ok and v[2] == 2, tostring(v))
  else
    assert(not ok and tostring(v):find("cannot rebuild task %d's the items"), tostring(v))
  end
  assert(pool:apply(function() return "still serving" end) == "still serving")
  assert(pool._worker_count == 2, "workers started: " .. pool._worker_count)
end

-- 14. A pool whose initializer keeps failing shuts itself down inside
-- join(): join returns, the pending result fails.
local function init_fail_join()
  local pool = mp.Pool{processes = 2, initializer = function() os.exit(1) end}
  local r = pool:apply_async(function() return 1 end)
  pool:close()
  pool:join()
  local err = check_error("initializer failed", r.get, r, 5)
  assert(mp.isinstance(err, mp.ProcessError), tostring(err))
end

-- 15. A sequence whose __index raises part way: map fails with that error,
-- imap gives the elements before it and then the error; the pool keeps
-- serving and close + join finish (nothing is left waiting).
local function bad_sequence()
  local pool = mp.Pool(2)
  local bad = setmetatable({}, {__len = function() return 100 end, __index = function(_, i)
    if i > 50 then error("bad index " .. i) end
    return i
  end})
  check_error("bad index 51", pool.map, pool, function(x) return x end, bad, 10)
  local it = pool:imap(function(x) return x * 2 end, bad, 10)
  for i = 1, 50 do assert(it:next(10) == i * 2) end
  check_error("bad index 51", it.next, it, 10)
  assert(it:next(1) == nil)
  assert(pool:apply(function() return "still serving" end) == "still serving")
  pool:close()
  pool:join()
end

local checks = {
  {"background_apply", background_apply},
  {"background_map", background_map},
  {"no_rerun", no_rerun},
  {"chunk_death", chunk_death},
  {"lazy_iterator", lazy_iterator},
  {"big_values", big_values},
  {"result_pressure", result_pressure},
  {"terminate_queued", terminate_queued},
  {"terminate_releases", terminate_releases},
  {"maxtasks_replaced", maxtasks_replaced},
  {"close_join_drains", close_join_drains},
  {"callback_raises", callback_raises},
  {"iterator_raises", iterator_raises},
  {"unsendable_argument", unsendable_argument},
  {"unrebuildable_item", unrebuildable_item},
  {"init_fail_join", init_fail_join},
  {"bad_sequence", bad_sequence},
}

local only = nil
if arg and #arg > 0 then
  only = {}
  for i = 1, #arg do only[arg[i]] = true end
end

-- Every check runs even after one fails (its pools close on the way out),
-- so one run shows all that is wrong.
local failed = {}
for _, c in ipairs(checks) do
  local name, f = c[1], c[2]
  if not only or only[name] then
    local t0 = os.monotonic()
    local ok, err = xpcall(f, function(e) return debug.traceback(tostring(e), 2) end)
    collectgarbage()
    collectgarbage()
    if ok then
      print(string.format("ok %s (%.1f s)", name, os.monotonic() - t0))
    else
      failed[#failed + 1] = name
      print(string.format("FAIL %s (%.1f s): %s", name, os.monotonic() - t0, tostring(err)))
    end
    io.stdout:flush()
  end
end

assert(#mp.active_children() == 0, "children left: " .. #mp.active_children())
assert(#failed == 0, "failed (" .. method .. "): " .. table.concat(failed, " "))
print("pool_flow passed (" .. method .. ")")
