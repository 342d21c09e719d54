-- start methods: fork spawn forkserver
-- m:Pool(n): a pool owned by the manager's server.  Every method through
-- the proxy; async results and imap iterators are proxies too; a task's
-- error comes back as itself; a wait on a result does not stop the server
-- from serving others; the pool is usable from a child.
local mp = require "multiprocessing"

local function check(cond, ...)
  if not cond then error(table.concat({...}, " "), 2) end
end

do
  local m <close> = mp.Manager()
  local pool = m:Pool(2)
  check(repr(pool:map(function(x) return x * x end, {1, 2, 3, 4})) == "{1, 4, 9, 16}")
  check(repr(pool:starmap(function(a, b) return a * b end, {{1, 2}, {3, 4}})) == "{2, 12}")
  check(pool:apply(function(a, b) return a - b end, {5, 3}) == 2)

  local r = pool:apply_async(function(a, b) os.sleep(0.3) return a + b end, {2, 3})
  check(r:ready() == false)
  -- The server keeps serving while r is being waited for in a child.
  local d = m:dict()
  local waiter = mp.Process{target = function(r, d) d.got = r:get(10) end, args = {r, d}}
  waiter:start()
  os.sleep(0.05)
  d.other = "served"
  waiter:join(10)
  check(d.got == 5 and d.other == "served")
  check(r:get(1) == 5 and r:ready() and r:successful())
  r:wait(1)

  local bad = pool:apply_async(function() error(mp.TimeoutError("task failed on purpose")) end)
  local ok, err = pcall(bad.get, bad, 5)
  check(not ok and mp.isinstance(err, mp.TimeoutError) and tostring(err):find("on purpose", 1, true), tostring(err))
  check(bad:successful() == false)

  local slow = pool:apply_async(function() os.sleep(3) return 1 end)
  local t0 = os.monotonic()
  ok, err = pcall(slow.get, slow, 0.1)
  check(not ok and mp.isinstance(err, mp.TimeoutError), tostring(err))
  check(os.monotonic() - t0 < 2.5, "the timeout is honoured")

  local mr = pool:map_async(function(x) return x + 1 end, {1, 2, 3})
  check(repr(mr:get(5)) == "{2, 3, 4}")
  local sr = pool:starmap_async(function(a, b) return a .. b end, {{"a", "b"}})
  check(repr(sr:get(5)) == '{"ab"}')

  local out = {}
  for v in pool:imap(function(x) return x * 2 end, {1, 2, 3}) do out[#out + 1] = v end
  check(repr(out) == "{2, 4, 6}", repr(out))
  local it = pool:imap_unordered(function(x) return x * 10 end, {1, 2, 3})
  local sum = 0
  for v in it do sum = sum + v end
  check(sum == 60)
  local it2 = pool:imap(function(x) if x == 2 then error("bad 2") end return x end, {1, 2, 3})
  check(it2:next(5) == 1)
  check(not pcall(it2.next, it2, 5), "an element's error raises at its position")
  check(it2:next(5) == 3 and it2:next(5) == nil, "and iteration continues")

  local child = mp.Process{target = function(pool, d)
    d.child = pool:map(function(x) return x + 100 end, {1, 2})
  end, args = {pool, d}}
  child:start(); child:join(20)
  check(repr(d.child) == "{101, 102}", repr(d.child))

  pool:close()
  pool:join()
  check(not pcall(pool.map, pool, print, {1}), "closed pool refuses work")
  local pool2 = m:Pool(1)
  pool2:terminate()
end
check(#mp.active_children() == 0)
print("managers_pool ok", mp.get_start_method())
