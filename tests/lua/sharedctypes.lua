-- Value, Array, RawValue, RawArray, Struct, sharedctypes.synchronized/copy:
-- every typecode with its range checks, 1-based access, 'c' arrays, the
-- lock= option, crossing to children under each start method and through
-- mp.dumps/loads, and no shared memory left behind.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"
local leakcheck = require "leakcheck"

local function check_error(pattern, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(tostring(err):find(pattern), "error '" .. tostring(err) .. "' does not match " .. pattern)
end
local function set_value(v, x) v.value = x end

-- Ranges of every integer typecode: the limits fit, one past raises.
local ranges = {
  b = {-128, 127}, B = {0, 255}, h = {-32768, 32767}, H = {0, 65535},
  i = {-2147483648, 2147483647}, I = {0, 4294967295},
  l = {math.mininteger, math.maxinteger}, q = {math.mininteger, math.maxinteger},
  L = {0, math.maxinteger}, Q = {0, math.maxinteger},
}
for tc, r in pairs(ranges) do
  local v = mp.Value(tc, 0)
  v.value = r[1]; assert(v.value == r[1], tc)
  v.value = r[2]; assert(v.value == r[2], tc)
  if r[1] > math.mininteger then check_error("out of range for typecode '" .. tc .. "'", set_value, v, r[1] - 1) end
  if r[2] < math.maxinteger then check_error("out of range for typecode '" .. tc .. "'", set_value, v, r[2] + 1) end
  check_error("integer expected", set_value, v, 1.5)
  check_error("integer expected", set_value, v, "1")
  v.value = 3.0  -- an integral float is accepted
  assert(math.type(v.value) == "integer" and v.value == 3)
end
check_error("out of range", mp.Value, "b", 300)
do
  local v = mp.Value("b", 0)
  check_error("300 is out of range for typecode 'b'", set_value, v, 300)
  local q = mp.Value("Q", 0)
  q.value = 2.0^63  -- above maxinteger: stored, read back as a float
  assert(q.value == 2.0^63)
  check_error("out of range", set_value, q, -1)
  local d = mp.Value("d", 1 / 3)
  assert(d.value == 1 / 3)
  local f = mp.Value("f", 0.5)
  assert(f.value == 0.5)
  check_error("number expected", set_value, d, "x")
  local b = mp.Value("?", true)
  assert(b.value == true)
  b.value = false
  assert(b.value == false)
  local c = mp.Value("c", "a")
  assert(c.value == "a")
  c.value = 66
  assert(c.value == "B")
  check_error("one%-byte string", set_value, c, "ab")
  assert(mp.Value("i").value == 0)
  assert(tostring(mp.Value("i", 5)) == "Value('i', 5)")
  assert(tostring(mp.RawValue("d", 2.5)) == "RawValue('d', 2.5)")
end

-- Bad typecodes and arguments.
check_error("bad argument #1 to '.-Value' %(bad typecode 'x'", mp.Value, "x", 0)
check_error("bad argument #1 to '.-Array' %(bad typecode 'ii'", mp.Array, "ii", 3)
check_error("bad argument #1 to '.-RawArray' %(typecode string or mp.Struct expected", mp.RawArray, 5, 3)
check_error("size must be non%-negative", mp.Array, "i", -1)
check_error("bad argument #3 to 'Value'", mp.Value, "i", 0, 5)
check_error("boolean or lock expected", mp.Value, "i", 0, {lock = 5})

-- Arrays: 1-based, #, ipairs, reads past the end are nil, writes raise,
-- totable clamps j.
do
  local a = mp.Array("i", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
  assert(#a == 10 and a[1] == 0 and a[10] == 9 and a[11] == nil and a[0] == nil)
  local n = 0
  for i, x in ipairs(a) do n = n + 1; a[i] = -x end
  assert(n == 10)
  assert(repr(a:totable()) == "{0, -1, -2, -3, -4, -5, -6, -7, -8, -9}")
  assert(repr(a:totable(3, 5)) == "{-2, -3, -4}")
  assert(repr(a:totable(9, 100)) == "{-8, -9}")
  assert(repr(a:totable(5, 4)) == "{}")
  assert(tostring(a) == "{0, -1, -2, -3, -4, -5, -6, -7, -8, -9}")
  check_error("Array index 11 out of range %(length 10%)", function() a[11] = 1 end)
  check_error("Array index 0 out of range", function() a[0] = 1 end)
  check_error("out of range for typecode 'i'", function() a[1] = 2^40 // 1 end)
  local z = mp.RawArray("h", 7)
  assert(repr(z:totable()) == "{0, 0, 0, 0, 0, 0, 0}")
  local d = mp.RawArray("d", {9, 2, 8})
  assert(math.type(d[1]) == "float" and d[1] == 9.0)
  -- a ShareableList or another Array as the source sequence
  local a2 = mp.Array("i", a)
  assert(a2[2] == -1 and #a2 == 10)
  -- 'c' arrays: value up to the first NUL, raw = all bytes
  local s = mp.Array("c", "hello world")
  assert(s.value == "hello world" and #s == 11 and s[1] == "h")
  s.value = "HELLO"
  assert(s.value == "HELLO" and s.raw == "HELLO\0world")
  s.raw = "xy"
  assert(s.raw == "xyLLO\0world")
  check_error("too long", function() s.value = string.rep("x", 12) end)
  local e = mp.Array("c", 4)
  assert(e.value == "" and e.raw == "\0\0\0\0")
  check_error("only 'c', 'b' or 'B'", mp.Array, "i", "abc")
  local bytes = mp.Array("B", "\1\2\255")
  assert(bytes[3] == 255)
end

-- Locks: lock=true (an RLock of its own), false (none), or a given lock;
-- get_lock returns that very lock; guard/acquire/release forward to it.
do
  local v = mp.Value("i", 0)
  local l1 = v:get_lock()
  assert(l1 == v:get_lock() and tostring(l1):find("^<RLock"))
  do
    local g <close> = v:guard()
    assert(tostring(l1) == "<RLock(MainProcess, 1)>")
  end
  assert(v:acquire() == true)
  v:release()
  local lock = mp.Lock()
  local a = mp.Array("d", 3, {lock = lock})
  local b = mp.Array("d", 3, {lock = lock})
  assert(a:get_lock() == lock and b:get_lock() == lock)
  local raw = mp.Value("i", 0, {lock = false})
  check_error("no lock", raw.get_lock, raw)
  check_error("no lock", mp.RawArray("i", 1).get_lock, mp.RawArray("i", 1))
  local obj = v:get_obj()
  obj.value = 7
  assert(v.value == 7)
  check_error("no lock", obj.get_lock, obj)
  local sync = mp.sharedctypes.synchronized(raw)
  assert(tostring(sync:get_lock()):find("^<RLock"))
  local sync2 = mp.sharedctypes.synchronized(raw, lock)
  assert(sync2:get_lock() == lock)
  local copy = mp.sharedctypes.copy(mp.Array("i", {1, 2, 3}))
  copy[1] = 10
  assert(repr(copy:totable()) == "{10, 2, 3}")
  assert(mp.sharedctypes.Value == mp.Value and mp.sharedctypes.RawArray == mp.RawArray)
end

-- Structs.
do
  local Point = mp.Struct {{"x", "d"}, {"y", "d"}}
  local A = mp.Array(Point, {{x = 1.875, y = -6.25}, {x = -5.75, y = 2.0}, {2.375, 9.5}})
  assert(#A == 3 and A[1].x == 1.875 and A[3].y == 9.5 and A[4] == nil)
  A[1].x = 2
  assert(A[1].x == 2.0)
  A[2] = {x = 0, y = 0}
  assert(repr(A:totable(1, 2)) == "{{x = 2.0, y = -6.25}, {x = 0.0, y = 0.0}}")
  local V = mp.Value(Point, {x = 0, y = 1})
  V.x = 3
  assert(V.x == 3.0 and V.y == 1.0 and repr(V.value) == "{x = 3.0, y = 1.0}")
  V.value = {x = 5, y = 6}
  assert(V.y == 6.0)
  local Rec = mp.Struct {{"tag", "b"}, {"n", "i"}, {"d", "d"}}
  local r = mp.RawValue(Rec, {tag = 1, n = 2, d = 3})
  assert(r.tag == 1 and r.n == 2 and r.d == 3.0)
  check_error("out of range for typecode 'b'", function() r.tag = 1000 end)
  check_error("missing field 'y'", mp.Value, Point, {x = 1})
  check_error("Struct", mp.Struct, {{"x"}})
end

-- A child changes a Value, an Array and a Struct array in place.
local children = {}
do
  local num, arr = mp.Value("d", 0.0), mp.Array("i", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
  local Point = mp.Struct {{"x", "d"}, {"y", "d"}}
  local pts = mp.Array(Point, {{1, 2}, {3, 4}}, {lock = mp.Lock()})
  local s = mp.Array("c", "hello")
  local p = mp.Process{target = function(n, a, ps, str)
    n.value = 3.1415927
    for i = 1, #a do a[i] = -a[i] end
    for i = 1, #ps do ps[i].x = ps[i].x * ps[i].x end
    str.value = str.value:upper()
  end, args = {num, arr, pts, s}}
  p:start()
  children[#children + 1] = p.pid
  p:join(60)
  assert(p.exitcode == 0)
  assert(num.value == 3.1415927)
  assert(repr(arr:totable()) == "{0, -1, -2, -3, -4, -5, -6, -7, -8, -9}")
  assert(pts[2].x == 9.0 and s.value == "HELLO")
end

-- mp.dumps/loads: the same shared memory, the same lock.
do
  local v = mp.Value("i", 1)
  local v2 = mp.loads(mp.dumps(v))
  v2.value = 42
  assert(v.value == 42)
  v2:get_lock():acquire()
  assert(tostring(v:get_lock()) == "<RLock(MainProcess, 1)>")  -- the same lock word
  v2:get_lock():release()
  assert(tostring(v:get_lock()) == "<RLock(None, 0)>")
  local a = mp.RawArray("d", {1, 2})
  local a2 = mp.loads(mp.dumps({arr = a})).arr
  a2[2] = 5
  assert(a[2] == 5.0)
end

leakcheck.assert_clean(children, 10)
