-- 38_pool_unguarded: SEED-003-03, "Using Process Pools": Pool(4).map of
-- squares over 1 to 4, written without Python's main-module guard.  In
-- Python that works only under fork (spawn would re-run the script in
-- every worker).  luamp never re-runs the main script in a child, so the
-- unguarded program is correct under every start method.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function square(n)
  return n * n
end

local pool <close> = mp.Pool(4)
print(repr(pool:map(square, {1, 2, 3, 4})))
