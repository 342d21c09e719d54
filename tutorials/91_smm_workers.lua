-- 91_smm_workers: SHM-04, from multiprocessing.managers
-- (SharedMemoryManager in a `with` block).  The docs' example leaves
-- `do_work` undefined and prints nothing; here do_work squares its half of
-- a ShareableList of 0..1999 in place, two processes share the work, and
-- the parent prints the total.  `with SharedMemoryManager() as smm:` becomes
-- a <close> variable: the block is unlinked when the do-block ends.  The
-- ShareableList crosses to each child as a reference to the same block.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function do_work(sl, first, last)
  for i = first, last do
    sl[i] = sl[i] * sl[i]
  end
end

do
  local smm <close> = mp.managers.SharedMemoryManager()
  local seq = {}
  for i = 1, 2000 do seq[i] = i - 1 end
  local sl = smm:ShareableList(seq)
  local p1 = mp.Process{target = do_work, args = {sl, 1, 1000}}
  local p2 = mp.Process{target = do_work, args = {sl, 1001, 2000}}
  p1:start(); p2:start()
  p1:join(); p2:join()
  local total = 0
  for i = 1, #sl do total = total + sl[i] end
  print(total)   -- the sum of the squares of 0..1999
end
