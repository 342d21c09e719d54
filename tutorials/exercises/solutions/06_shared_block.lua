-- Exercise 6, a solution.  Every process that opens the block closes its
-- own view; exactly one process (here its creator) unlinks the name.
local mp = require "multiprocessing"
local SharedMemory = mp.shared_memory.SharedMemory

local function child(name)
  local block = SharedMemory{name = name}
  block.buf:write(1, string.pack("<i8i8", 42, -7))
  block:close()
end

local block = SharedMemory{create = true, size = 16}
local p = mp.Process{target = child, args = {block.name}}
p:start()
p:join(30)
local a, b = string.unpack("<i8i8", block.buf:read(1, 16))
print("values:", a, b)
local name = block.name
block:close()
block:unlink()

local ok, err = pcall(SharedMemory, {name = name})
print("unlinked:", not ok and mp.isinstance(err, mp.OSError) and err.errno == 2)
