-- 34_pool_examples: INC-mp_pool, the "Using Pool" example program of
-- Python's documentation (the current revision, plus the callbacks,
-- close() and terminate() checks of the older one).
--
-- Differences from Python, and why:
--   * functions have no __name__, so each task carries its name:
--     {name = "mul", fn = mul, args = {i, 7}};
--   * 1/(x-5) is inf in Lua, not an error, so f raises explicitly, with a
--     string that starts with "ZeroDivisionError";
--   * Python's print('\t', x) writes a tab and a space: io.write("\t ", x);
--   * the benchmark and garbage-collection parts of the older revision are
--     left out (the second depends on CPython's reference counting), and so
--     is the threads switch (luamp has no multiprocessing.dummy).
-- Worker names are ForkPoolWorker-N, SpawnPoolWorker-N or
-- ForkServerPoolWorker-N, depending on the start method.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

-- Functions used by the tests
local function mul(a, b)
  os.sleep(0.5 * math.random())
  return a * b
end

local function plus(a, b)
  os.sleep(0.5 * math.random())
  return a + b
end

local function f(x)
  if x == 5 then error("ZeroDivisionError: float division by zero", 0) end
  return 1.0 / (x - 5.0)
end

local function pow3(x)
  return x ^ 3 // 1 | 0
end

-- "<worker> says that mul(3, 7) = 21"
local function calculate(task)
  local result = task.fn(table.unpack(task.args))
  local args = {}
  for i, a in ipairs(task.args) do args[i] = tostring(a) end
  return string.format("%s says that %s(%s) = %s", mp.current_process().name, task.name,
                       table.concat(args, ", "), tostring(result))
end

local function raises_zero_division(fn, ...)
  local ok, err = pcall(fn, ...)
  return not ok and tostring(err):find("ZeroDivisionError") ~= nil
end

local function test()
  print("Creating pool with 4 processes\n")
  local pool <close> = mp.Pool(4)

  -- Tests
  local TASKS = {}
  for i = 0, 9 do TASKS[#TASKS + 1] = {name = "mul", fn = mul, args = {i, 7}} end
  for i = 0, 9 do TASKS[#TASKS + 1] = {name = "plus", fn = plus, args = {i, 8}} end

  local results = {}
  for i, t in ipairs(TASKS) do results[i] = pool:apply_async(calculate, {t}) end
  local imap_it = pool:imap(calculate, TASKS)
  local imap_unordered_it = pool:imap_unordered(calculate, TASKS)

  print("Ordered results using pool.apply_async():")
  for _, r in ipairs(results) do io.write("\t ", r:get(), "\n") end
  print()

  print("Ordered results using pool.imap():")
  for x in imap_it do io.write("\t ", x, "\n") end
  print()

  print("Unordered results using pool.imap_unordered():")
  for x in imap_unordered_it do io.write("\t ", x, "\n") end
  print()

  print("Ordered results using pool.map() --- will block till complete:")
  for _, x in ipairs(pool:map(calculate, TASKS)) do io.write("\t ", x, "\n") end
  print()

  -- Test error handling
  print("Testing error handling:")
  assert(raises_zero_division(pool.apply, pool, f, {5}), "expected ZeroDivisionError")
  print("\tGot ZeroDivisionError as expected from pool.apply()")
  local xs = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
  assert(raises_zero_division(pool.map, pool, f, xs), "expected ZeroDivisionError")
  print("\tGot ZeroDivisionError as expected from pool.map()")
  assert(raises_zero_division(function()
    local all = {}
    for x in pool:imap(f, xs) do all[#all + 1] = x end
  end), "expected ZeroDivisionError")
  print("\tGot ZeroDivisionError as expected from list(pool.imap())")
  local it = pool:imap(f, xs)
  local last
  for i = 0, 9 do
    local ok, err = pcall(it.next, it)
    if ok then
      assert(i ~= 5, "expected ZeroDivisionError")
    else
      assert(i == 5 and tostring(err):find("ZeroDivisionError"), tostring(err))
    end
    last = i
  end
  assert(last == 9 and it:next() == nil)
  print("\tGot ZeroDivisionError as expected from IMapIterator.next()")
  print()

  -- Testing timeouts
  io.write("Testing ApplyResult.get() with timeout: ")
  local res = pool:apply_async(calculate, {TASKS[1]})
  while true do
    io.stdout:flush()
    local ok, v = pcall(res.get, res, 0.02)
    if ok then
      io.write("\n\t ", v, "\n")
      break
    elseif mp.isinstance(v, mp.TimeoutError) then
      io.write(".")
    else
      error(v, 0)
    end
  end
  print()
  print()

  io.write("Testing IMapIterator.next() with timeout: ")
  it = pool:imap(calculate, TASKS)
  while true do
    io.stdout:flush()
    local ok, v = pcall(it.next, it, 0.02)
    if ok then
      if v == nil then break end
      io.write("\n\t", v)
    elseif mp.isinstance(v, mp.TimeoutError) then
      io.write(".")
    else
      error(v, 0)
    end
  end
  print()
  print()

  -- Testing callbacks (the older revision): they run in this process,
  -- before wait() returns.
  local A = {}
  local B = {56, 0, 1, 8, 27, 64, 125, 216, 343, 512, 729}
  local r = pool:apply_async(mul, {7, 8}, function(v) A[#A + 1] = v end)
  r:wait()
  r = pool:map_async(pow3, xs, nil, function(list)
    for _, v in ipairs(list) do A[#A + 1] = v end
  end)
  r:wait()
  if repr(A) == repr(B) then
    print("\tcallbacks succeeded\n")
  else
    print("*** callbacks failed\n\t\t" .. repr(A) .. " != " .. repr(B) .. "\n")
  end
end

test()

-- close(): submitted work completes, then the workers exit.
do
  local pool = mp.Pool(4)
  local r = pool:apply_async(os.sleep, {0.5})
  pool:close()
  pool:join()
  assert(r:get() == nil)
  assert(#mp.active_children() == 0)
  print("\tclose() succeeded\n")
end

-- terminate(): the workers stop at once, tasks or not.
do
  local pool = mp.Pool(2)
  assert(pool:apply(pow3, {2}) == 8)
  for _ = 1, 100 do pool:apply_async(os.sleep, {0.1}) end
  pool:terminate()
  pool:join()
  assert(#mp.active_children() == 0)
  print("\tterminate() succeeded\n")
end
