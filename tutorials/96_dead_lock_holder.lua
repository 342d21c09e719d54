-- 96_dead_lock_holder: not from Python's documentation; what luamp does
-- where Python hangs.  A child takes a Lock and dies without releasing it
-- (os.exit inside the locked region).  In Python every later acquire()
-- waits forever.  In luamp a blocking acquire notices within about 100 ms
-- that the holder's pid is gone and raises mp.ProcessError naming it; the
-- program decides what to do with the data the lock protected, then
-- release() frees the lock (any process may release a Lock).  An RLock
-- behaves the same.  See docs/api/synchronize.md, "Dead holders".
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local lock = mp.Lock()
local p = mp.Process{target = function(l)
  l:acquire()
  os.exit(3)        -- dies holding the lock
end, args = {lock}}
p:start()
p:join()
print("child exit code", p.exitcode)
print("locked:", lock:locked())

local t0 = os.monotonic()
local ok, err = pcall(lock.acquire, lock, true, 10)
print(ok, mp.isinstance(err, mp.ProcessError))
print((tostring(err):gsub("pid %d+", "pid N")))
print("noticed within a second:", os.monotonic() - t0 < 1)

lock:release()      -- recover
print(lock:acquire(false), lock)
lock:release()
