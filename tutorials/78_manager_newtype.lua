-- 78_manager_newtype: INC-mp_newtype, Python's example "customized managers
-- and proxies".
--   Foo1: a type with public methods f and g and a private _h; by default a
--         proxy exposes the public ones only.
--   Foo2: the same type registered with exposed = {"g", "_h"}.
--   baz:  a generator in the server (a coroutine there), reached through a
--         custom proxy class: a BaseProxy:extend() class whose __call
--         forwards "next", so `for v in proxy do` iterates it.
--   math: a module in the server, every function exposed.  A referent's
--         methods are called as obj:method(...), so the module is wrapped
--         in an object whose methods drop the self argument.
-- The "you called" lines are printed by the manager's server process; each
-- proxy call waits for its reply, so they still come in order (both sides
-- flush stdout after printing).
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function say(...)
  print(...)
  io.stdout:flush()
end

local Foo = {}
Foo.__index = Foo
function Foo:f() print("you called Foo.f()"); io.stdout:flush() end
function Foo:g() print("you called Foo.g()"); io.stdout:flush() end
function Foo:_h() print("you called Foo._h()"); io.stdout:flush() end
local function new_foo() return setmetatable({}, Foo) end

-- A generator: yields the squares of 0..9.  In the server it is an object
-- with a `next` method; nil marks the end.
local function baz()
  local co = coroutine.wrap(function()
    for i = 0, 9 do coroutine.yield(i * i) end
  end)
  return {next = function() return co() end}
end

-- Proxy type for generator objects.
local GeneratorProxy = mp.managers.BaseProxy:extend("GeneratorProxy")
GeneratorProxy._exposed_ = {"next"}
function GeneratorProxy:__call() return self:_callmethod("next") end

-- A module as an object: its functions become methods.
local function get_math()
  local obj = {}
  for name, fn in pairs(math) do
    if type(fn) == "function" then obj[name] = function(_, ...) return fn(...) end end
  end
  return obj
end

local MyManager = mp.managers.BaseManager:extend("MyManager")
MyManager.register("Foo1", new_foo)
MyManager.register("Foo2", new_foo, {exposed = {"g", "_h"}})
MyManager.register("baz", baz, {proxytype = GeneratorProxy})
MyManager.register("math", get_math)

local function test()
  local manager = MyManager()
  manager:start()

  say(string.rep("-", 20))
  local f1 = manager:Foo1()
  f1:f()
  f1:g()
  assert(f1._h == nil)
  assert(repr(f1._exposed_) == repr({"f", "g"}))

  say(string.rep("-", 20))
  local f2 = manager:Foo2()
  f2:g()
  f2:_callmethod("_h")
  assert(f2.f == nil)
  assert(repr(f2._exposed_) == repr({"g", "_h"}))

  say(string.rep("-", 20))
  local it = manager:baz()
  for i in it do io.write("<", i, "> ") end
  say()

  say(string.rep("-", 20))
  local op = manager:math()
  say("op:max(23, 45) = " .. op:max(23, 45))
  say("op:sqrt(2) = " .. repr(op:sqrt(2)))
  -- Python prints pow(2, 94) as an exact big integer; Lua integers are 64
  -- bits, so 2^94 is the float 1.9807040628566e+28.  A fitting power:
  say("op:tointeger(2^62) = " .. op:tointeger(2^62))
  say("op._exposed_ = " .. repr(op._exposed_))

  manager:shutdown()
end

test()
