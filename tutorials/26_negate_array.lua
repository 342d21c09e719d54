-- 26_negate_array: SEED-001-06 ("multiprocessing.Array"), the Array half of
-- DOC-09.  A shared int array 1..5 is printed, a child negates every
-- element in place, and the parent prints it again.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function negate(arr)
  for i = 1, #arr do
    arr[i] = -arr[i]
  end
end

local arr = mp.Array("i", {1, 2, 3, 4, 5})
print(repr(arr:totable()))
local p = mp.Process{target = negate, args = {arr}}
p:start()
p:join()
print(repr(arr:totable()))
