-- mp.shared_memory.SharedMemory, ShareableList and
-- mp.managers.SharedMemoryManager: create/attach by name, errno 17/2,
-- close/unlink, the 1-based byte view, fixed slot capacities, attaching
-- from another process (also an unrelated luamp program), crossing in
-- Process args, and no shared memory left behind.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"
local leakcheck = require "leakcheck"
local SharedMemory = mp.shared_memory.SharedMemory
local ShareableList = mp.shared_memory.ShareableList

local check_error = require("testlib").check_error
local children = {}
local function run(target, ...)
  local p = mp.Process{target = target, args = table.pack(...)}
  p:start()
  children[#children + 1] = p.pid
  p:join(60)
  assert(p.exitcode == 0, "child failed: " .. tostring(p.exitcode))
end

-- SharedMemory basics.
do
  local a = SharedMemory{create = true, size = 10}
  assert(a.size == 10 and #a.buf == 10 and a.name:find("^luamp%-"))
  assert(tostring(a) == "SharedMemory('" .. a.name .. "', size=10)")
  a.buf:write(1, string.char(22, 33, 44, 55))
  a.buf[5] = 100
  assert(a.buf[5] == 100 and a.buf[11] == nil and a.buf[0] == nil)
  local b = SharedMemory{name = a.name}
  assert(b.size == 10)
  assert(repr {string.byte(b.buf:read(1, 5), 1, -1)} == "{22, 33, 44, 55, 100}")
  b.buf:write(1, "howdy")
  assert(a.buf:read(1, 5) == "howdy")
  assert(a.buf:read(8, 100) == "\0\0\0" and a.buf:read() == b.buf:read())
  check_error("do not fit", a.buf.write, a.buf, 8, "abcd")
  check_error("out of range", function() a.buf[11] = 1 end)
  check_error("byte value 256", function() a.buf[1] = 256 end)
  local err = check_error("File exists", SharedMemory, {name = a.name, create = true, size = 10})
  assert(mp.isinstance(err, mp.OSError) and err.errno == 17 and err.filename == a.name)
  -- the positional form: (name, create, size)
  local c = SharedMemory(a.name)
  assert(c.size == 10)
  c:close()
  c:close()  -- idempotent
  check_error("closed SharedMemory", function() return c.buf end)
  b:close()
  a:close()
  a:unlink()
  err = check_error("No such file", SharedMemory, {name = a.name})
  assert(err.errno == 2)
  err = check_error("No such file", a.unlink, a)
  assert(err.errno == 2)
  check_error("positive number", SharedMemory, {create = true, size = 0})
  check_error("can only be nil", SharedMemory, {})
  -- a chosen name, with <close>
  local name = "luamp-" .. os.getpid() .. "-test-block"
  do
    local s <close> = SharedMemory{name = name, create = true, size = 4096}
    assert(s.name == name and s.size == 4096)
    s:unlink()
  end
end

-- A child writes into a block it got in its args, and into one it attaches
-- by name.
do
  local shm = SharedMemory{create = true, size = 16}
  run(function(s, name)
    s.buf:write(1, "from args")
    local other = mp.shared_memory.SharedMemory{name = name}
    other.buf[16] = 7
    other:close()
  end, shm, shm.name)
  assert(shm.buf:read(1, 9) == "from args" and shm.buf[16] == 7)
  shm:close()
  shm:unlink()
end

-- An unrelated luamp program attaches by name.
do
  local exe = os.getenv("LUAMP_EXE")
  if exe then
    local shm = SharedMemory{create = true, size = 8}
    local cmd = string.format("%q -e %q", exe,
      "local mp = require 'multiprocessing'; local s = mp.shared_memory.SharedMemory{name = '" .. shm.name ..
      "'}; s.buf:write(1, 'outside'); s:close()")
    assert(os.execute(cmd))
    assert(shm.buf:read(1, 7) == "outside")
    shm:close()
    shm:unlink()
  end
end

-- ShareableList.
do
  local sl = ShareableList(table.pack("howdy", "HoWdY", -273.154, 100, nil, true, 42))
  assert(#sl == 7 and sl[1] == "howdy" and sl[3] == -273.154 and sl[5] == nil and sl[6] == true)
  assert(math.type(sl[4]) == "integer" and sl[8] == nil)
  sl[3] = -78.5
  assert(sl[3] == -78.5)
  sl[3] = "dry ice"
  assert(sl[3] == "dry ice")
  check_error("exceeds available storage", function() sl[3] = string.rep("x", 46) end)
  assert(sl[3] == "dry ice")
  assert(sl:index(42) == 7 and sl:count("HoWdY") == 1 and sl:count("nope") == 0)
  check_error("not in this container", sl.index, sl, "nope")
  check_error("out of range", function() sl[8] = 1 end)
  check_error("cannot store a table", function() sl[1] = {} end)
  -- attach by name, here and in a child
  local other = ShareableList(nil, {name = sl.shm.name})
  assert(#other == 7 and other[1] == "howdy")
  other[7] = -999
  assert(sl[7] == -999)
  run(function(l, name)
    assert(l[1] == "howdy")
    local byname = mp.shared_memory.ShareableList(nil, {name = name})
    byname[4] = 101
  end, sl, sl.shm.name)
  assert(sl[4] == 101)
  -- trailing NULs survive (Python's gh-106939 does not apply)
  local nul = ShareableList {"?\0", "\3\2\1\0\0\0"}
  assert(nul[1] == "?\0" and nul[2] == "\3\2\1\0\0\0")
  nul.shm:close()
  nul.shm:unlink()
  local numbers = ShareableList {0, 1, 2, 3}
  assert(tostring(numbers) == 'ShareableList({0, 1, 2, 3}, name="' .. numbers.shm.name .. '")')
  assert(repr(numbers:totable(2, 9)) == "{1, 2, 3, n = 3}")
  local arr = mp.Array("i", numbers)  -- a ShareableList as a source sequence
  assert(arr[4] == 3)
  numbers.shm:close()
  numbers.shm:unlink()
  other.shm:close()
  sl.shm:close()
  sl.shm:unlink()
end

-- SharedMemoryManager: frees every block it made.
do
  local names = {}
  do
    local smm <close> = mp.managers.SharedMemoryManager()
    local sl = smm:ShareableList {0, 1, 2, 3}
    local raw = smm:SharedMemory(128)
    local letters = smm:ShareableList {"a", "l", "p", "h", "a"}
    assert(raw.size == 128 and letters[2] == "l")
    names = {sl.shm.name, raw.name, letters.shm.name}
  end
  for _, n in ipairs(names) do
    check_error("No such file", SharedMemory, {name = n})
  end
  local smm = mp.managers.SharedMemoryManager()
  smm:SharedMemory(8)
  smm:shutdown()
  smm:shutdown()
  check_error("shut down", smm.SharedMemory, smm, 8)
end

leakcheck.assert_clean(children, 10)
