-- 93_shareable_list_attach: SHM-06, from multiprocessing.shared_memory
-- (ShareableList).  A list of 0..4 is made in a first process; a second
-- process attaches to it by the block's name, shows it and sets its last
-- item (Python's c[-1], here c[#c]) to -999; the first sees the change.
-- Both close; the block is unlinked once.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"
local ShareableList = mp.shared_memory.ShareableList

local b = ShareableList {0, 1, 2, 3, 4}   -- in a first process

local function second(name)               -- in a second process
  local c = mp.shared_memory.ShareableList(nil, {name = name})
  print(c)
  c[#c] = -999
  c.shm:close()
end

local p = mp.Process{target = second, args = {b.shm.name}}
p:start()
p:join()
print(b[#b])
b.shm:close()
b.shm:unlink()
