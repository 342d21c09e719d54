-- 42_connection_doctest: DOC-16, Python's "Reference › Connection Objects"
-- doctest.  Both ends of a Pipe in one process: send/recv of a value,
-- send_bytes/recv_bytes of raw bytes, and an array of five C ints sent as
-- bytes and received with recv_bytes_into.  Lua has no `array` module:
-- string.pack("<i4", ...) makes the bytes, and the receiving buffer is an
-- mp.Array of typecode "c" (recv_bytes_into writes into an Array of typecode
-- "c", "b" or "B", or a SharedMemory buf) with room for ten ints; its `raw`
-- field gives the bytes back for string.unpack.  Lua strings are bytes, so
-- b'thank you' prints as plain "thank you".
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local a, b = mp.Pipe()
a:send({1, "hello", nil})
print(repr(b:recv()))

b:send_bytes("thank you")
print(a:recv_bytes())

local arr1 = string.pack("<i4i4i4i4i4", 0, 1, 2, 3, 4)
a:send_bytes(arr1)
local arr2 = mp.Array("c", 10 * 4)            -- zeroed: ten 4-byte ints
local count = b:recv_bytes_into(arr2)
assert(count == 5 * 4)                         -- 20 bytes: five 4-byte ints
local ints = {string.unpack("<" .. string.rep("i4", 10), arr2.raw)}
ints[11] = nil                                 -- unpack's next position
print(count, repr(ints))
a:close()
b:close()
