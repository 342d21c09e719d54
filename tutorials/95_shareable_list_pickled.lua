-- 95_shareable_list_pickled: SHM-07, from multiprocessing.shared_memory
-- (ShareableList, current docs).  Python pickles a ShareableList and
-- unpickles it: the copy is attached to the same block, so changes through
-- either show in both.  luamp's pickle is mp.dumps/mp.loads; the same holds
-- when the list is sent through a Pipe to a process that is already
-- running, shown second.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"
local ShareableList = mp.shared_memory.ShareableList

local sl = ShareableList {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
local function show(l) local t = l:totable(); t.n = nil; print(repr(t)) end
show(sl)
local deserialized_sl = mp.loads(mp.dumps(sl))
show(deserialized_sl)
sl[1] = -1
deserialized_sl[2] = -2
show(sl)
show(deserialized_sl)

-- Through a Pipe, to a running process.
local here, there = mp.Pipe()
local p = mp.Process{target = function(conn)
  local received = conn:recv()
  received[3] = -3
  conn:send("done")
end, args = {there}}
p:start()
here:send(sl)
print(here:recv())
show(sl)
p:join()
sl.shm:close()
sl.shm:unlink()
