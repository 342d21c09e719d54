-- 32_pool_repl: DOC-12, the note in "Using a pool of workers" that says a
-- Pool fails in Python's interactive interpreter: Python sends a function
-- by its name, and a function typed at the prompt has no name the workers
-- can find ("AttributeError: Can't get attribute 'f' on <module
-- '__main__'>"), so each worker prints a traceback and the pool hangs.
--
-- luamp sends the function itself (its bytecode and upvalues), so the same
-- session works, under every start method.  This script replays it in the
-- order of the documentation: the pool first, then `f` defined afterwards
-- (as a global, as at a REPL prompt), then map.  Typed at luamp's REPL it
-- gives the same result (tests/catch/test_pool_repl.cpp checks that
-- through a pty):
--
--   > p = mp.Pool(5)
--   > function f(x) return x * x end
--   > p:map(f, {1, 2, 3})
--   {1, 4, 9}
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

p = mp.Pool(5)
function f(x) return x * x end   -- defined after the workers started
do
  local pool <close> = p
  print(repr(pool:map(f, {1, 2, 3})))
end
