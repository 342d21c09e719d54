-- 28_shared_memory_basics: SHM-01, from multiprocessing.shared_memory
-- (SharedMemory, first example).  A 10-byte block is made, written, attached
-- a second time by name, read back, written through the second object and
-- read through the first; both close and the block is unlinked once.
-- Python's memoryview becomes the 1-based byte view `buf` (`buf[i]`, `#buf`,
-- `buf:read(i, j)`, `buf:write(i, s)`); `array('b', ...)` becomes a table
-- of the bytes; b'howdy' prints as a plain string.
local mp = require "multiprocessing"
local SharedMemory = mp.shared_memory.SharedMemory

local shm_a = SharedMemory{create = true, size = 10}
print(#shm_a.buf)                               -- Python: type(buf), len(buf)
shm_a.buf:write(1, string.char(22, 33, 44, 55)) -- buffer[:4] = bytearray([22, 33, 44, 55])
shm_a.buf[5] = 100                              -- buffer[4] = 100
local shm_b = SharedMemory{name = shm_a.name}   -- attach to the existing block
print(repr {string.byte(shm_b.buf:read(1, 5), 1, -1)})
shm_b.buf:write(1, "howdy")                     -- copy into shm_a via shm_b
print(shm_a.buf:read(1, 5))
shm_b:close()
shm_a:close()
shm_a:unlink()                                  -- once, from one process
print(pcall(SharedMemory, {name = shm_a.name}))
