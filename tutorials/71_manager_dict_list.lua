-- 71_manager_dict_list: SEED-001-07.  A dict proxy starts as
-- {processed = false, count = 0} and a list proxy empty; a child marks the
-- work processed, adds 1 to the count and appends "done".  The parent
-- prints plain copies (d:copy(), l:copy() are ordinary tables).
--
-- repr sorts keys, so `count` prints before `processed` (Python prints
-- {'processed': True, 'count': 1} in insertion order).
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function worker(shared_dict, shared_list)
  shared_dict.processed = true
  shared_dict.count = shared_dict.count + 1   -- a read, then a write
  shared_list:append("done")
end

do
  local manager <close> = mp.Manager()
  local shared_dict = manager:dict({processed = false, count = 0})
  local shared_list = manager:list()

  local p = mp.Process{target = worker, args = {shared_dict, shared_list}}
  p:start()
  p:join()

  print(repr(shared_dict:copy()))   --> {count = 1, processed = true}
  print(repr(shared_list:copy()))   --> {"done"}
end
