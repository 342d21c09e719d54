-- 01_codec: what crosses between processes, shown with mp.dumps / mp.loads.
-- Not from Python's documentation: in Python this is pickle.dumps /
-- pickle.loads.  Every Queue, Pipe, Pool task and spawned Process sends its
-- values through this codec, so a round trip here is exactly what another
-- process would receive.
-- start methods: fork
local mp = require "multiprocessing"

local function roundtrip(v)
  return mp.loads(mp.dumps(v))
end

-- Numbers keep their kind: integers stay integers, floats stay floats.
print("numbers:", repr(roundtrip {1, 2.0, -0.0, math.mininteger, 1/0, 0.1}))
print("types:", math.type(roundtrip(3)), math.type(roundtrip(3.0)))

-- Strings carry any bytes, NUL included.
local bytes = roundtrip "a\0b"
print("string:", repr(bytes), #bytes)

-- Holes in sequences survive.
print("holes:", repr(roundtrip {42, nil, "hello"}))

-- Nested tables, and two keys pointing at one table arrive pointing at one table.
local shared = {"shared"}
local t = roundtrip {a = shared, b = shared, nested = {deeper = {x = 1}}}
print("nested:", repr(t.nested))
print("shared:", t.a == t.b)

-- Cycles are kept.
local node = {name = "loop"}
node.self = node
local back = roundtrip(node)
print("cycle:", back.self == back, repr(back))

-- A closure travels with its upvalues; a standard C function by name.
local base = 100
local function add(x) return base + x end
print("closure:", roundtrip(add)(23))
print("C function:", roundtrip(math.sqrt) == math.sqrt, roundtrip(math.sqrt)(16))

-- An error object arrives as an instance of its class.
local err = roundtrip(mp.TimeoutError("took too long"))
print("error:", mp.isinstance(err, mp.TimeoutError), tostring(err))

-- Tables with a metatable cross when the metatable is registered by name.
local Point = {}
Point.__index = Point
function Point:norm2() return self.x * self.x + self.y * self.y end
mp.register_class("tutorial.Point", Point)
local p = roundtrip(setmetatable({x = 3, y = 4}, Point))
print("class:", getmetatable(p) == Point, p:norm2())

-- What cannot cross says where it was found.
local ok, msg = pcall(mp.dumps, {1, {cb = coroutine.create(print)}}, "args")
print("refused:", ok, msg)
