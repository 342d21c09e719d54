-- The codec across a process boundary: a message made here is loaded by a
-- separate luamp process (LUAMP_EXE), which runs the function it received
-- and sends its answer back the same way.  Also mp.dumps/mp.loads misuse.
local mp = require "multiprocessing"
local exe = assert(os.getenv("LUAMP_EXE"), "LUAMP_EXE not set")

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local input, output = os.tmpname(), os.tmpname()
local ok, err = pcall(function()
  local offset = 100
  local function work(t)
    -- math.sqrt and string.format are C functions sent by name; `label` is a
    -- global of the receiving process (the _ENV upvalue is its globals).
    return string.format("%s %g", label, math.sqrt(t.n) + offset)
  end
  local cls = mp.TimeoutError("from the parent")
  write(input, mp.dumps {work = work, arg = {n = 16}, err = cls, holes = {1, nil, 3}})
  local child = [[
    local mp = require "multiprocessing"
    local f = assert(io.open(arg[1], "rb")); local msg = mp.loads(f:read("a")); f:close()
    label = "child says"
    local out = {
      answer = msg.work(msg.arg),
      is_timeout = mp.isinstance(msg.err, mp.TimeoutError),
      holes = msg.holes,
      err = mp.Empty("from the child"),
      pid = os.getpid(),
    }
    local o = assert(io.open(arg[2], "wb")); o:write(mp.dumps(out)); o:close()
  ]]
  local script = os.tmpname()
  write(script, child)
  local okx = os.execute(string.format("'%s' '%s' '%s' '%s'", exe, script, input, output))
  os.remove(script)
  assert(okx, "child failed")
  local back = mp.loads(read(output))
  assert(back.answer == "child says 104", back.answer)
  assert(back.is_timeout == true)
  assert(back.holes[1] == 1 and back.holes[2] == nil and back.holes[3] == 3)
  assert(mp.isinstance(back.err, mp.Empty) and back.err.message == "from the child")
  assert(back.pid ~= os.getpid())
end)
os.remove(input)
os.remove(output)
assert(ok, err)

-- mp.dumps reuses one output buffer between calls: a dumps nested in a
-- __reduce, and a failed dumps, must leave the outer message intact.
do
  local Boxed = {}
  Boxed.__reduce = function(o) return mp.dumps({o.v, string.rep("z", 300)}) end
  Boxed.__rebuild = function(s) return setmetatable({v = mp.loads(s)[1]}, Boxed) end
  mp.register_class("test.codec.Boxed", Boxed)
  local list = {}
  for i = 1, 40 do list[i] = setmetatable({v = i}, Boxed) end
  local msg = mp.dumps({list, string.rep("q", 500)})
  assert(not pcall(mp.dumps, {coroutine.create(print)}))
  local back = mp.loads(msg)
  assert(back[1][40].v == 40 and getmetatable(back[1][1]) == Boxed and back[2] == string.rep("q", 500))
  assert(#mp.dumps(string.rep("h", 100000)) > 100000)
  assert(mp.loads(mp.dumps({1, 2, 3}))[3] == 3)
end

-- The encoder takes positional values from its lua_next walk while the keys
-- come in order, and falls back to t[i] otherwise: tables whose elements sit
-- in the hash part, with holes and with keys past the border round-trip.
do
  local function same(a, b)
    for k, v in pairs(a) do assert(b[k] == v, tostring(k)) end
    for k, v in pairs(b) do assert(a[k] == v, tostring(k)) end
  end
  local cases = {{nil, nil, 3}, {1, nil, 3, nil, 5}, {}}
  local t = {}
  for i = 20, 1, -1 do t[i] = i end
  t.x, t[25], t[0], t[-1], t[2.5] = "x", 25, 0, -1, "f"
  cases[#cases + 1] = t
  t = {}
  for i = 1, 100 do t[i] = i end
  for i = 1, 100, 3 do t[i] = nil end
  cases[#cases + 1] = t
  t = {}
  t[1], t[2], t[4], t[3] = 1, 2, 4, 3
  cases[#cases + 1] = t
  for _, c in ipairs(cases) do same(c, mp.loads(mp.dumps(c))) end
  local ok, err = pcall(mp.dumps, (function() local u = {} u[2] = 2 u[1] = 1 u[3] = print u[3] = coroutine.create(print) return u end)())
  assert(not ok and err:find("%(at value%[3%]%)"), err)
end

-- Misuse.
assert(not pcall(mp.dumps))
assert(select(2, pcall(mp.loads, 42)):find("corrupt message"))
assert(select(2, pcall(mp.loads, {})):find("bad argument #1 to '[%w.]*loads'"))
assert(select(2, pcall(mp.register_class, 1, {})):find("bad argument #1 to '[%w.]*register_class'"))
assert(select(2, pcall(mp.register_class, "x", 1)):find("bad argument #2 to '[%w.]*register_class'"))
print("ok")
