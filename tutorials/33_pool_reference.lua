-- 33_pool_reference: DOC-34, the demo after "Process Pools" in Python's
-- reference.  apply_async + get(1), map, an imap iterator read three
-- times (luamp's iterator is called like a function where Python calls the
-- built-in next(), and it:next(1) is next with a timeout), then a task
-- that sleeps 10 seconds whose get(1) raises mp.TimeoutError.  Nothing
-- catches it: the script stops with that error (exit status 1, the message
-- and a traceback on stderr), and leaving the `<close>` block on the way
-- out terminates the pool, so the script ends after about 1 second.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function f(x)
  return x * x
end

local pool <close> = mp.Pool(4)
local result = pool:apply_async(f, {10})   -- evaluate "f(10)" asynchronously
print(result:get(1))                       -- prints "100" unless your computer is *very* slow

print(repr(pool:map(f, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9})))   -- prints "{0, 1, 4,..., 81}"

local it = pool:imap(f, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
print(it())                                -- prints "0"
print(it())                                -- prints "1"
print(it:next(1))                          -- prints "4" unless your computer is *very* slow

result = pool:apply_async(os.sleep, {10})
print(result:get(1))                       -- raises mp.TimeoutError
