-- 90_shared_memory_manager: SHM-03, from multiprocessing.managers
-- (SharedMemoryManager).  A SharedMemoryManager makes a ShareableList of
-- 0..3, a raw 128-byte block and a ShareableList of the letters of "alpha";
-- shutdown() unlinks all three.  A Lua string is not a sequence, so "alpha"
-- is written as a table of five letters.  In luamp the manager is started
-- when made and runs in the calling process (docs/api/shared_memory.md).
-- Block names vary, so the expected output matches them with a placeholder.
local mp = require "multiprocessing"

local smm = mp.managers.SharedMemoryManager()
smm:start()
local sl = smm:ShareableList {0, 1, 2, 3}
print(sl)
local raw_shm = smm:SharedMemory(128)
print(raw_shm.size)
local another_sl = smm:ShareableList {"a", "l", "p", "h", "a"}
print(another_sl)
local names = {sl.shm.name, raw_shm.name, another_sl.shm.name}
smm:shutdown()  -- unlinks all three blocks
for _, name in ipairs(names) do
  local ok, err = pcall(mp.shared_memory.SharedMemory, {name = name})
  print(ok, err.errno)
end
