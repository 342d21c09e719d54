-- 23_sharedctypes_syntax: DOC-18, from "The multiprocessing.sharedctypes
-- module" (the table comparing ctypes and sharedctypes syntax).
-- Python creates raw shared objects either from a ctypes type or from a
-- typecode.  Lua has no ctypes, so luamp has the typecode forms, plus
-- mp.Struct for the structure row (Python has no typecode form for it).
local mp = require "multiprocessing"
local sharedctypes = mp.sharedctypes

-- a double 2.4: RawValue(c_double, 2.4) / RawValue('d', 2.4)
local d = sharedctypes.RawValue("d", 2.4)
print(d)

-- a structure built from 4 and 6: RawValue(MyStruct, 4, 6)
local MyStruct = mp.Struct {{"first", "i"}, {"second", "i"}}
local s = sharedctypes.RawValue(MyStruct, {4, 6})
print(s.first, s.second, repr(s.value))

-- 7 shorts: RawArray(c_short, 7) / RawArray('h', 7)
local shorts = sharedctypes.RawArray("h", 7)
print(#shorts, shorts)

-- three ints 9, 2, 8: RawArray(c_int, (9, 2, 8)) / RawArray('i', (9, 2, 8))
local ints = sharedctypes.RawArray("i", {9, 2, 8})
print(#ints, ints)
