-- 30_pool_intro: DOC-01 and SEED-000-01, the first example of Python's
-- documentation (Introduction).  A pool of 5 worker processes maps a
-- function over {1, 2, 3}; map keeps the input order.  `<close>` plays the
-- part of Python's `with`: leaving the block terminates the pool.
--
-- Python needs `if __name__ == '__main__':` around this because spawn and
-- forkserver re-import the main module in each worker.  luamp never re-runs
-- the main script in a child: `f` travels to the workers as bytecode (with
-- its upvalues), so no guard is needed under any start method.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function f(x)
  return x * x
end

do
  local p <close> = mp.Pool(5)
  print(repr(p:map(f, {1, 2, 3})))   -- prints {1, 4, 9}
end
