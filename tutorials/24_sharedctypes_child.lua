-- 24_sharedctypes_child: DOC-19, from "The multiprocessing.sharedctypes
-- module".  A child squares an int Value (with its own lock), a double
-- Value made with lock=false, upper-cases a char Array and squares the
-- points of an Array of structures; the last two share one Lock given with
-- {lock = lock}.  Python's ctypes Structure becomes mp.Struct.  Squares
-- are written n * n, since Lua's ^ always gives a float (49.0), and the
-- char array's value is a plain Lua string (Python 3 prints b'HELLO WORLD').
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local Point = mp.Struct {{"x", "d"}, {"y", "d"}}

local function modify(n, x, s, A)
  n.value = n.value * n.value
  x.value = x.value * x.value
  s.value = s.value:upper()
  for i = 1, #A do
    local a = A[i]
    a.x = a.x * a.x
    a.y = a.y * a.y
  end
end

local lock = mp.Lock()
local n = mp.Value("i", 7)
local x = mp.Value("d", 1.0 / 3.0, {lock = false})
local s = mp.Array("c", "hello world", {lock = lock})
local A = mp.Array(Point, {{1.875, -6.25}, {-5.75, 2.0}, {2.375, 9.5}}, {lock = lock})

local p = mp.Process{target = modify, args = {n, x, s, A}}
p:start()
p:join()

print(n.value)
print(repr(x.value))
print(s.value)
local pairs_ = {}
for i, a in ipairs(A) do pairs_[i] = {a.x, a.y} end
print(repr(pairs_))
print(s:get_lock() == lock, A:get_lock() == lock)
