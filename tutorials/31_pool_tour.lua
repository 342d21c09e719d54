-- 31_pool_tour: DOC-11, Python's "Using a pool of workers": a tour of the
-- pool methods.  What to notice:
--   * map returns the results in input order; imap_unordered yields them as
--     they complete (any order);
--   * apply_async returns an AsyncResult; get(1) waits at most 1 second;
--   * C functions such as os.getpid are sent by name and run in a worker;
--   * a task still running when get(timeout) gives up raises
--     mp.TimeoutError, and the pool stays usable;
--   * leaving the `<close>` block terminates the pool (Python's __exit__
--     calls terminate()), so the 10-second sleep does not delay the end.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function f(x)
  return x * x
end

local t0 = os.monotonic()
do
  local pool <close> = mp.Pool(4)   -- start 4 worker processes

  -- print {0, 1, 4, ..., 81}
  print(repr(pool:map(f, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9})))

  -- print the same numbers in arbitrary order
  for i in pool:imap_unordered(f, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) do
    print(i)
  end

  -- evaluate f(20) asynchronously
  local res = pool:apply_async(f, {20})   -- runs in *only* one process
  print(res:get(1))                       -- prints 400

  -- evaluate os.getpid() asynchronously
  res = pool:apply_async(os.getpid)       -- runs in *only* one process
  local pid = res:get(1)
  print(pid ~= os.getpid() and "a worker's pid" or "the parent's pid?!")

  -- launching multiple evaluations asynchronously *may* use more processes
  local multiple_results = {}
  for i = 1, 4 do multiple_results[i] = pool:apply_async(os.getpid) end
  local pids = {}
  for i, r in ipairs(multiple_results) do pids[i] = r:get(1) end
  print(#pids .. " pids, none of them ours: " .. tostring(pids[1] ~= os.getpid() and pids[4] ~= os.getpid()))

  -- make a single worker sleep for 10 seconds
  res = pool:apply_async(os.sleep, {10})
  local ok, err = pcall(res.get, res, 1)
  if not ok and mp.isinstance(err, mp.TimeoutError) then
    print("We lacked patience and got a multiprocessing.TimeoutError")
  end

  print("For the moment, the pool remains available for more work")
end

-- exiting the block has terminated the pool
print("Now the pool is closed and no longer available")
print(os.monotonic() - t0 < 8 and "(and we did not wait for the 10-second sleep)" or "(too slow)")
