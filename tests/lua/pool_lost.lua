-- Pool workers that die in the middle of a task, every kind of death
-- (SIGKILL, a crash signal, os.exit with a code, os.exit(0), SIGTERM from
-- outside): the death is noticed within a second, the task fails with
-- WorkerLostError naming the task and the signal or exit code, the worker is
-- replaced, and every other task completes.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function kill_self(sig)
  return function()
    os.execute(string.format("kill -%s %d", sig, os.getpid()))
    os.sleep(30)  -- the signal arrives before this ends
  end
end

local deaths = {
  {"SIGKILL", kill_self("KILL"), "killed by signal 9 %(SIGKILL%)", -9},
  {"SIGSEGV", kill_self("SEGV"), "killed by signal 11 %(SIGSEGV%)", -11},
  {"os.exit(3)", function() os.exit(3) end, "exited with code 3", 3},
  {"os.exit(0)", function() os.exit(0) end, "exited with code 0", 0},
}

for _, d in ipairs(deaths) do
  local name, die, pattern, code = d[1], d[2], d[3], d[4]
  local pool <close> = mp.Pool(2)
  local before = pool:_worker_pids()
  -- Task 3 dies; the others sleep a little so some are queued behind it.
  local f = function(x)
    if x == 3 then die() end
    os.sleep(0.02)
    return x * 10
  end
  local t0 = os.monotonic()
  local it = pool:imap(f, {1, 2, 3, 4, 5, 6, 7, 8}, 1)
  local got = {}
  for i = 1, 8 do
    local ok, v = pcall(it.next, it, 20)
    if i == 3 then
      assert(not ok, name .. ": task 3 should fail")
      assert(mp.isinstance(v, mp.WorkerLostError), name .. ": " .. tostring(v))
      assert(tostring(v):find(pattern), name .. ": " .. tostring(v))
      assert(tostring(v):find("task 3"), tostring(v))
      assert(v.task == 3 and v.exitcode == code, name)
    else
      assert(ok, name .. ": task " .. i .. " failed: " .. tostring(v))
      got[#got + 1] = v
    end
  end
  assert(os.monotonic() - t0 < 10, name .. ": took too long")
  assert(#got == 7 and got[7] == 80)
  -- The pool was refilled, with a new worker in place of the dead one.
  local after = pool:_worker_pids()
  assert(#after == 2, name .. ": pool has " .. #after .. " workers")
  assert(not (after[1] == before[1] and after[2] == before[2]), name .. ": no worker was replaced")
  assert(pool:apply(function(x) return x + 1 end, {1}) == 2)
  -- map: the lost task fails the whole map, like any task error.
  local ok, err = pcall(pool.map, pool, f, {1, 2, 3, 4}, 1)
  assert(not ok and mp.isinstance(err, mp.WorkerLostError), tostring(err))
  assert(pool:map(function(x) return -x end, {1, 2})[2] == -2)
end

-- Detected within a second: a worker killed from outside while it sleeps.
do
  local pool <close> = mp.Pool(1)
  local r = pool:apply_async(os.sleep, {30})
  os.sleep(0.1)
  local pid = pool:_worker_pids()[1]
  os.execute("kill -TERM " .. pid)
  local t0 = os.monotonic()
  local ok, err = pcall(r.get, r, 5)
  assert(not ok and mp.isinstance(err, mp.WorkerLostError), tostring(err))
  assert(tostring(err):find("signal 15 %(SIGTERM%)"), tostring(err))
  assert(os.monotonic() - t0 < 1, "took " .. (os.monotonic() - t0) .. " s to notice")
end

-- A chunk of several tasks: every task of the chunk the worker held fails.
do
  local pool <close> = mp.Pool(1)
  local r = pool:map_async(function(x) if x == 2 then os.exit(5) end return x end, {1, 2, 3, 4, 5, 6}, 3)
  local ok, err = pcall(r.get, r, 20)
  assert(not ok and mp.isinstance(err, mp.WorkerLostError), tostring(err))
  assert(tostring(err):find("chunk of tasks 1%-3"), tostring(err))
  assert(pool:map(function(x) return x end, {7})[1] == 7)
end

-- Fast tasks around a deadly one: answers the worker had not sent yet
-- are not lost (those tasks run again elsewhere), only the deadly task
-- fails, and exactly it.
do
  local pool <close> = mp.Pool(2)
  for _, cs in ipairs {1, 7} do
    local it = pool:imap(function(x) if x == 500 then os.exit(7) end return x * 2 end, seq and seq(1000) or (function()
      local t = {}
      for i = 1, 1000 do t[i] = i end
      return t
    end)(), cs)
    for i = 1, 1000 do
      local ok, v = pcall(it.next, it, 20)
      if cs == 1 and i == 500 or cs == 7 and i >= 498 and i <= 504 then
        assert(not ok and mp.isinstance(v, mp.WorkerLostError), i .. ": " .. tostring(v))
        assert(v.exitcode == 7 and v.task == i, tostring(v))
      else
        assert(ok and v == i * 2, "task " .. i .. ": " .. tostring(v))
      end
    end
    assert(it:next(1) == nil)
  end
end

collectgarbage()
collectgarbage()
assert(#mp.active_children() == 0, "children left: " .. #mp.active_children())
print("pool_lost passed")
