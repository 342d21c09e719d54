-- 94_shareable_list_nul: SHM-08, from the newer multiprocessing.shared_memory
-- docs (3.12+): in Python a ShareableList strips trailing NUL bytes from
-- str and bytes values (gh-106939), and the docs suggest appending a non-NUL
-- byte as a workaround.  Lua strings carry their length, and luamp's
-- ShareableList stores it, so the values come back exactly: no workaround
-- is needed.  The workaround still works (it is shown second).
local mp = require "multiprocessing"
local ShareableList = mp.shared_memory.ShareableList

local sl = ShareableList {"?\0", "\3\2\1\0\0\0"}
print(repr(sl[1]))
print(repr(sl[2]))
print(#sl[1], #sl[2])
sl.shm:close()
sl.shm:unlink()

-- Python's workaround: append a byte, drop it when reading.
local padded = ShareableList {"?\0\7", "\3\2\1\0\0\0\7"}
print(repr(padded[1]:sub(1, -2)))
print(repr(padded[2]:sub(1, -2)))
padded.shm:close()
padded.shm:unlink()
