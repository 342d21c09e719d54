-- 21_value_array: DOC-09, from "Sharing state between processes" (Shared
-- memory).  A child sets a shared double and negates a shared int array in
-- place; the parent sees both changes.  Indexes are 1-based in Lua, the
-- stored numbers stay 0..9, and `arr[:]` becomes `arr:totable()`.  Both
-- objects carry a lock (an RLock by default), as in Python.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function f(n, a)
  n.value = 3.1415927
  for i = 1, #a do
    a[i] = -a[i]
  end
end

local num = mp.Value("d", 0.0)
local arr = mp.Array("i", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9})

local p = mp.Process{target = f, args = {num, arr}}
p:start()
p:join()

print(num.value)
print(repr(arr:totable()))
