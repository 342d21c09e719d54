-- 35_pool_map_squares: SEED-001-02, Pool(processes=4).map over 1 to 5.
-- Python's keyword argument becomes a field of the options table.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function square(x)
  return x * x
end

do
  local pool <close> = mp.Pool{processes = 4}
  print(repr(pool:map(square, {1, 2, 3, 4, 5})))
end
