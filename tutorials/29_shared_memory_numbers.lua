-- 29_shared_memory_numbers: SHM-02 without NumPy, from
-- multiprocessing.shared_memory (SharedMemory, second example).  Python
-- copies a NumPy int64 array (1, 1, 2, 3, 5, 8) into a 48-byte block; a
-- second shell attaches by name, sets the last element to 888, and the
-- first shell sees the change.  Here the ndarray views become
-- string.pack/string.unpack of six "i8" values over `buf`, and "shell 2" is
-- a second process that receives only the block's name.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"
local SharedMemory = mp.shared_memory.SharedMemory

local function read_all(shm)
  return {string.unpack("<i8i8i8i8i8i8", shm.buf:read(1, 48))}
end

local a = {1, 1, 2, 3, 5, 8}
local shm = SharedMemory{create = true, size = 48}
shm.buf:write(1, string.pack("<i8i8i8i8i8i8", table.unpack(a)))
local b = read_all(shm)
b[7] = nil                                   -- unpack's next position
print(repr(b))

local function shell2(name)
  local existing = mp.shared_memory.SharedMemory{name = name}
  local c = {string.unpack("<i8i8i8i8i8i8", existing.buf:read(1, 48))}
  c[7] = nil
  print(repr(c))
  existing.buf:write(41, string.pack("<i8", 888))  -- c[-1] = 888
  c[6] = 888
  print(repr(c))
  existing:close()
end

local p = mp.Process{target = shell2, args = {shm.name}}
p:start()
p:join()

b = read_all(shm)
b[7] = nil
print(repr(b))
shm:close()
shm:unlink()
