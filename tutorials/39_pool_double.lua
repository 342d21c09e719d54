-- 39_pool_double: SEED-003-06, the "Real-World Example" of the same
-- tutorial: an unguarded Pool(4).map that doubles 0 to 9.  Values made by
-- Python's range(10) are data, so they stay 0 to 9 (only positions are
-- 1-based in Lua).  As in 38, no guard is needed under any start method.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function process_data(x)
  return x * 2
end

local data = {}
for i = 0, 9 do data[#data + 1] = i end
local pool <close> = mp.Pool(4)
print(repr(pool:map(process_data, data)))
