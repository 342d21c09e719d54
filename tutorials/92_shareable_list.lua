-- 92_shareable_list: SHM-05, from multiprocessing.shared_memory
-- (ShareableList).  A list of seven values (strings, a float, integers, a
-- hole, a boolean) in shared memory: types, item assignment that changes the
-- type, the fixed storage of each slot, len, index and count.
-- Differences: Lua has one string type, so Python's str/bytes pair becomes
-- two strings ("howdy" and "HoWdY") and the counts use them; the hole
-- (Python's None) needs table.pack so the length counts it; Python's
-- ValueError message is luamp's error text; index() is 1-based.
local mp = require "multiprocessing"
local shared_memory = mp.shared_memory

local a = shared_memory.ShareableList(table.pack("howdy", "HoWdY", -273.154, 100, nil, true, 42))
local types = {}
for i = 1, #a do
  local v = a[i]
  types[i] = math.type(v) or type(v)
end
print(repr(types))
print(a[3])
a[3] = -78.5
print(a[3])
a[3] = "dry ice"        -- changing data types is supported as well
print(repr(a[3]))
local ok, err = pcall(function() a[3] = "larger than previously allocated storage space" end)
print(ok, err:match("ShareableList: .*"))
print(repr(a[3]))
print(#a)
print(a:index(42))
print(a:count("howdy"))
print(a:count("HoWdY"))
print(a:count("nothing"))
a.shm:close()
a.shm:unlink()
