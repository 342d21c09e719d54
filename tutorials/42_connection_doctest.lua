-- 42_connection_doctest: DOC-16, Python's "Reference › Connection Objects"
-- doctest.  Both ends of a Pipe in one process: send/recv of a value,
-- send_bytes/recv_bytes of raw bytes, and an array of five C ints sent as
-- bytes.  Lua has no `array` module: string.pack("i4", ...) makes the bytes,
-- and the receiving side unpacks them.  recv_bytes_into(buf [, offset])
-- writes into a byte buffer (an mp.Array of typecode "c", "b" or "B" or a
-- SharedMemory buf); here the bytes are unpacked from recv_bytes instead.
-- Lua strings are bytes, so b'thank you' prints as plain "thank you".
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local a, b = mp.Pipe()
a:send({1, "hello", nil})
print(repr(b:recv()))

b:send_bytes("thank you")
print(a:recv_bytes())

local arr1 = string.pack("<i4i4i4i4i4", 0, 1, 2, 3, 4)
a:send_bytes(arr1)
local bytes = b:recv_bytes()
assert(#bytes == 5 * 4)                       -- 20 bytes: five 4-byte ints
local arr2 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
for i = 1, #bytes // 4 do arr2[i] = string.unpack("<i4", bytes, 4 * i - 3) end
print(#bytes, repr(arr2))
a:close()
b:close()
