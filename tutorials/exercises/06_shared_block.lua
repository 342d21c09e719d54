-- Exercise 6 (session 3, sharing state): a named block, cleaned up.
--
-- The parent makes a 16-byte SharedMemory block and starts a child that
-- receives only the block's *name* (a string).  The child attaches to the
-- block by name, writes the two 8-byte integers 42 and -7 at its start
-- (string.pack("<i8i8", 42, -7)), closes its view and returns.  The
-- parent then reads them back and prints them.  At the end the parent
-- closes the block and unlinks it, so that nothing is left in /dev/shm.
-- (If a program forgets to unlink, luamp's tracker removes the block when
-- the program ends and warns on stderr about a "leaked shared_memory"
-- object.)  The last lines check it: opening the name again must fail
-- with errno 2 (no such name).  Expected output:
--
--   values:	42	-7
--   unlinked:	true
--
-- Check your work:  luamp tutorials/exercises/check.lua 6
local mp = require "multiprocessing"
local SharedMemory = mp.shared_memory.SharedMemory

local function child(name)
  -- TODO: attach with SharedMemory{name = name}, write the two integers
  -- with block.buf:write(1, ...), then close the block
end

local block = SharedMemory{create = true, size = 16}
local p = mp.Process{target = child, args = {block.name}}
p:start()
p:join(30)
local a, b = string.unpack("<i8i8", block.buf:read(1, 16))
print("values:", a, b)
local name = block.name
-- TODO: close the block, and unlink it (once, here in its creator)

local ok, err = pcall(SharedMemory, {name = name})
print("unlinked:", not ok and mp.isinstance(err, mp.OSError) and err.errno == 2)
