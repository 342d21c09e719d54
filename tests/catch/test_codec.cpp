// The codec (src/mp/codec.cpp): round trips of every kind of value, the
// native-type hook, error paths, limits, a randomized property test and a
// corruption test that mutates valid messages >= 100,000 times.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "host/host.h"
#include "mp/codec.h"
#include "mp/lua_util.h"

namespace {

using luamp::codec::DecodeContext;
using luamp::codec::EncodeContext;

// Lua helpers available in every test state: rt(v) round-trips through
// mp.dumps/mp.loads, same(a, b) compares structurally and checks that the
// sharing of tables and functions is the same on both sides.
const char* kPrelude = R"lua(
mp = require "multiprocessing"
function rt(v) return mp.loads(mp.dumps(v)) end
function same(a, b, map)
  map = map or {}
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return false end
    if a ~= a then return b ~= b end
    if a == 0 and b == 0 then return 1/a == 1/b end
    return a == b
  end
  if type(a) ~= "table" then return rawequal(a, b) end
  if map[a] ~= nil then return rawequal(map[a], b) end
  map[a] = b
  if getmetatable(a) ~= getmetatable(b) then return false end
  local n = 0
  for k, v in next, a do
    n = n + 1
    local bk = k
    if type(k) == "table" then
      bk = map[k]
      if bk == nil then return false end
    end
    if not same(v, rawget(b, bk), map) then return false end
  end
  for _ in next, b do n = n - 1 end
  return n == 0
end
)lua";

// A fresh host state with the prelude run.
struct State {
  lua_State* L;
  State() : L(luaL_newstate()) {
    luamp::host::open_all(L);
    run(kPrelude);
  }
  ~State() { lua_close(L); }
  // Runs a chunk; FAILs with its error message.
  void run(const std::string& code) {
    int top = lua_gettop(L);
    int rc = luaL_loadbuffer(L, code.data(), code.size(), "=test");
    if (rc == LUA_OK) rc = lua_pcall(L, 0, 0, 0);
    if (rc != LUA_OK) {
      std::string msg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)";
      lua_settop(L, top);
      FAIL(msg);
    }
    lua_settop(L, top);
  }
  // Runs `return <expr>` and returns the error message of a failing call,
  // or "" when it succeeded.
  std::string error_of(const std::string& code) {
    int top = lua_gettop(L);
    int rc = luaL_loadbuffer(L, code.data(), code.size(), "=test");
    if (rc == LUA_OK) rc = lua_pcall(L, 0, 0, 0);
    std::string msg;
    if (rc != LUA_OK) msg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)";
    lua_settop(L, top);
    return msg;
  }
};

// Encodes the value on top of the stack with the C++ API.
std::string encode_top(lua_State* L) {
  std::string out;
  EncodeContext ctx;
  luamp::codec::encode(L, -1, out, ctx);
  return out;
}

// Calls mp.loads on `bytes` under pcall.  Returns "" on success (the value
// is left on the stack) or the error message.
int loads_protected(lua_State* L) {
  size_t len;
  const char* s = lua_tolstring(L, 1, &len);
  DecodeContext ctx;
  return luamp::run_guarded(L, [&] {
    luamp::codec::decode(L, s, len, ctx);
    return 1;
  });
}
std::string try_decode(lua_State* L, const std::string& bytes) {
  lua_pushcfunction(L, loads_protected);
  lua_pushlstring(L, bytes.data(), bytes.size());
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
    lua_pop(L, 1);
    return "";
  }
  std::string msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(non-string error)";
  lua_pop(L, 1);
  return msg;
}

}  // namespace

TEST_CASE("codec: scalars are kept apart and bit-exact", "[codec]") {
  State s;
  s.run(R"lua(
    for _, v in ipairs {0, 1, -1, 127, 128, -128, -129, 32767, 32768, -32769, 2^31, -2^31 - 1,
                        math.maxinteger, math.mininteger, 0.0, -0.0, 1.5, 1e308, -1e-308,
                        math.huge, -math.huge, 3.0, 2^53} do
      local b = rt(v)
      assert(math.type(b) == math.type(v), tostring(v))
      assert(b == v, tostring(v))
      assert(same(v, b), tostring(v))
    end
    assert(1/rt(-0.0) == -math.huge)
    assert(math.type(rt(3)) == "integer" and math.type(rt(3.0)) == "float")
    local nan = rt(0/0); assert(nan ~= nan)
    assert(rt(nil) == nil and rt(true) == true and rt(false) == false)
    for _, str in ipairs {"", "a", "\0", "a\0b\0", string.rep("x", 63), string.rep("y", 64),
                          string.rep("z", 40), string.rep("w", 41), string.rep("\255\0", 100000)} do
      assert(rt(str) == str, #str)
    end
  )lua");
  // A NaN payload survives.
  uint64_t bits = 0x7ff8000000000123ULL, back = 0;
  double d;
  std::memcpy(&d, &bits, 8);
  lua_pushnumber(s.L, d);
  std::string msg = encode_top(s.L);
  lua_pop(s.L, 1);
  DecodeContext dctx;
  luamp::codec::decode(s.L, msg.data(), msg.size(), dctx);
  double got = lua_tonumber(s.L, -1);
  std::memcpy(&back, &got, 8);
  CHECK(back == bits);
  lua_pop(s.L, 1);
}

TEST_CASE("codec: the wire format starts with a version byte", "[codec]") {
  State s;
  lua_pushinteger(s.L, 5);
  std::string m = encode_top(s.L);
  lua_pop(s.L, 1);
  REQUIRE(m.size() >= 2);
  CHECK(m[0] == 1);
  m[0] = 2;
  CHECK(try_decode(s.L, m) == "corrupt message: unknown version 2");
  CHECK(try_decode(s.L, "") == "corrupt message: empty");
  CHECK(try_decode(s.L, std::string("\1\0\0", 3)) == "corrupt message: trailing bytes");
}

TEST_CASE("codec: tables with holes, shared references and cycles", "[codec]") {
  State s;
  s.run(R"lua(
    local t = rt {42, nil, "hello"}
    assert(t[1] == 42 and t[2] == nil and t[3] == "hello")
    local h = {}; h[1] = 1; h[5] = 5; h[1000000] = "far"; h[-3] = "neg"; h[0] = 0; h[1.5] = "f"
    h[true] = "yes"; h.x = {y = {z = "deep"}}
    assert(same(h, rt(h)))
    local shared = {1, 2}
    local r = rt {a = shared, b = shared, c = {shared}}
    assert(r.a == r.b and r.c[1] == r.a and r.a[2] == 2)
    local c = {name = "c"}; c.self = c; c.list = {c, c}
    local rc = rt(c)
    assert(rc.self == rc and rc.list[1] == rc and rc.list[2] == rc and rc.name == "c")
    local k = {}
    local tk = rt {[k] = "table key", other = k}
    assert(tk[tk.other] == "table key")
    local big = {}
    for i = 1, 100000 do big[i] = i * 2 end
    big[50] = nil
    local rb = rt(big)
    assert(rb[100000] == 200000 and rb[50] == nil and rb[49] == 98)
    -- Many distinct and repeated keys.
    local recs = {}
    for i = 1, 300 do recs[i] = {id = i, ["key" .. i % 7] = i, [string.rep("long", 20)] = i} end
    assert(same(recs, rt(recs)))
  )lua");
}

TEST_CASE("codec: Lua functions with upvalues", "[codec]") {
  State s;
  s.run(R"lua(
    local up = 10
    local function add(x) return x + up end
    assert(rt(add)(5) == 15)
    -- Shared upvalues stay shared.
    local n = 0
    local function inc() n = n + 1; return n end
    local function get() return n end
    local pair = rt {inc = inc, get = get}
    pair.inc(); pair.inc()
    assert(pair.get() == 2 and n == 0)
    -- A shared upvalue first met inside another function's upvalue.
    local box = 0
    local f1, f2
    local tbl = {}
    function f2() box = box + 1 end
    tbl.f2 = f2
    function f1() local _ = tbl; return box end
    local r = rt {f1, f2}
    r[1]()
    r[2]()
    assert(r[1]() == 1)
    -- Recursion through an upvalue, and the same function twice is one.
    local function fact(k) if k <= 1 then return 1 end return k * fact(k - 1) end
    local rf = rt {fact, fact}
    assert(rf[1] == rf[2] and rf[1](10) == 3628800)
    -- _ENV becomes the receiver's globals.
    local function g() return some_global end
    some_global = "here"
    assert(rt(g)() == "here")
    local env_f = rt(function() return _ENV end)
    assert(env_f() == _G)
    -- Debug info is kept: errors carry line numbers.
    local function boom()
      error("boom")
    end
    local ok, err = pcall(rt(boom))
    assert(not ok and err:find("test:%d+: boom"), err)
    -- C functions by name.
    assert(rt(math.sqrt) == math.sqrt and rt(print) == print and rt(string.format) == string.format)
    assert(rt(repr) == repr and rt(mp.cpu_count) == mp.cpu_count and rt(io.stdout.write) == io.stdout.write)
    -- A function using a module keeps the module (by name).
    local function count() return mp.cpu_count() end
    assert(rt(count)() == mp.cpu_count())
    assert(rt(string) == string and rt(mp) == mp)
    -- Varargs, many upvalues.
    local a1, a2, a3, a4 = 1, 2, 3, 4
    local function sum(...) return a1 + a2 + a3 + a4 + select("#", ...) end
    assert(rt(sum)(1, 2) == 12)
  )lua");
}

TEST_CASE("codec: C functions loaded later are found", "[codec]") {
  State s;
  s.run("assert(rt(math.sqrt) == math.sqrt)");  // builds the name table
  lua_pushcfunction(s.L, [](lua_State* L) -> int {
    lua_pushinteger(L, 7);
    return 1;
  });
  lua_setglobal(s.L, "late_c_function");
  s.run("assert(rt(late_c_function) == late_c_function and late_c_function() == 7)");
  CHECK(s.error_of("mp.dumps(coroutine.create(print))") == "cannot send a coroutine (at value)");
}

TEST_CASE("codec: modules loaded after earlier messages still cross by name", "[codec]") {
  State s;
  s.run(R"lua(
    assert(rt({1, {2}})[2][1] == 2)  -- a first message with tables
    local late = {answer = 42}
    package.loaded["test.late"] = late
    assert(rt(late) == late)
    local both = rt({late, late, string, {late}})
    assert(both[1] == late and both[2] == late and both[3] == string and both[4][1] == late)
    local function use() return late.answer end
    assert(rt(use)() == 42)
    package.loaded["test.late"] = nil
    local copy = rt(late)  -- no longer a module: a copy
    assert(copy ~= late and copy.answer == 42)
  )lua");
}

TEST_CASE("codec: registered classes, __reduce and errors", "[codec]") {
  State s;
  s.run(R"lua(
    local Point = {}
    Point.__index = Point
    function Point:norm2() return self.x * self.x + self.y * self.y end
    mp.register_class("test.Point", Point)
    local p = rt(setmetatable({x = 3, y = 4}, Point))
    assert(getmetatable(p) == Point and p:norm2() == 25)
    -- The class itself travels by name.
    assert(rt(Point) == Point)
    -- Errors arrive as their class, with their fields.
    local e = rt(mp.TimeoutError("late", {traceback = "tb"}))
    assert(mp.isinstance(e, mp.TimeoutError) and mp.isinstance(e, mp.ProcessError))
    assert(e.message == "late" and e.traceback == "tb")
    assert(rt(mp.Empty) == mp.Empty)
    -- User subclasses made with :extend.
    local MyError = mp.ProcessError:extend("MyError")
    mp.register_class("test.MyError", MyError)
    local me = rt(MyError("mine"))
    assert(mp.isinstance(me, MyError) and tostring(me) == "MyError: mine")
    -- __reduce / __rebuild.
    local Handle = {}
    Handle.__index = Handle
    local rebuilt = 0
    function Handle.__reduce(h) return {id = h.id} end
    function Handle.__rebuild(v) rebuilt = rebuilt + 1; return setmetatable({id = v.id, fresh = true}, Handle) end
    mp.register_class("test.Handle", Handle)
    local h = setmetatable({id = 9, secret = "kept here"}, Handle)
    local rh = rt {h, h}
    assert(rh[1] == rh[2] and rh[1].id == 9 and rh[1].fresh and rh[1].secret == nil and rebuilt == 1)
    -- Unregistered metatables fail with the path.
    local ok, err = pcall(mp.dumps, {list = {1, setmetatable({}, {__name = "Thing"})}})
    assert(not ok and err == "cannot send a table with an unregistered metatable 'Thing' (see mp.register_class) (at value.list[2])", err)
  )lua");
  // A class registered on the sending side only.
  s.run("message = mp.dumps(setmetatable({}, mp.register_class('test.Only', {})))");
  lua_getglobal(s.L, "message");
  std::string message = lua_tostring(s.L, -1);
  lua_pop(s.L, 1);
  State other;
  CHECK(try_decode(other.L, message) ==
        "cannot rebuild an object of class 'test.Only': no class registered under that name (mp.register_class)");
}

TEST_CASE("codec: what cannot cross names where it was found", "[codec]") {
  State s;
  CHECK(s.error_of("mp.dumps({1, {cb = coroutine.create(print)}}, 'args')") ==
        "cannot send a coroutine (at args[2].cb)");
  CHECK(s.error_of("mp.dumps({['a b'] = {io.stdout}})") ==
        "cannot send a userdata of type 'FILE*' (at value[\"a b\"][1])");
  CHECK(s.error_of("local co = coroutine.create(print); mp.dumps(function() return co end)") ==
        "cannot send a coroutine (at value(upvalue co))");
  CHECK(s.error_of("mp.dumps({[coroutine.create(print)] = 1})") == "cannot send a coroutine (at value(key))");
  // Depth limit, on both sides.
  CHECK(s.error_of("local t = {} for i = 1, 1001 do t = {t} end mp.dumps(t)").find("nested more than 1000 levels") !=
        std::string::npos);
  s.run("local t = {} for i = 1, 999 do t = {t} end assert(rt(t))");
  std::string deep = "\1";
  for (int i = 0; i < 1001; ++i) deep += std::string("\x0b\x01\0\0\0\0", 6);
  deep += '\0';
  CHECK(try_decode(s.L, deep) == "corrupt message: nested more than 1000 levels deep");
}

namespace {
// A fake native type: a userdata holding an int, sent by value, plus an fd
// when the channel carries fds.
struct Thing {
  int value;
};
void thing_reduce(lua_State* L, int idx, std::string& out, EncodeContext& ctx) {
  auto* t = static_cast<Thing*>(luaL_checkudata(L, idx, "mp.TestThing"));
  if (ctx.fds == nullptr) throw luamp::Failure::plain("cannot send a TestThing through this channel");
  ctx.fds->push_back(100 + t->value);
  out.append(reinterpret_cast<const char*>(&t->value), sizeof t->value);
}
void thing_rebuild(lua_State* L, const char* data, size_t len, DecodeContext& ctx) {
  if (len != sizeof(int) || ctx.fds == nullptr || ctx.fds->empty()) throw luamp::Failure::plain("bad TestThing");
  auto* t = static_cast<Thing*>(lua_newuserdatauv(L, sizeof(Thing), 0));
  std::memcpy(&t->value, data, sizeof(int));
  (*ctx.fds)[0] = -1;  // taken
  luaL_setmetatable(L, "mp.TestThing");
}
const luamp::codec::NativeType kThingType = {"mp.TestThing", thing_reduce, thing_rebuild};
}  // namespace

TEST_CASE("codec: native types cross through their hook", "[codec]") {
  State s;
  luaL_newmetatable(s.L, "mp.TestThing");
  lua_pop(s.L, 1);
  luamp::codec::register_native_type(s.L, &kThingType);
  auto* t = static_cast<Thing*>(lua_newuserdatauv(s.L, sizeof(Thing), 0));
  t->value = 42;
  luaL_setmetatable(s.L, "mp.TestThing");
  lua_setglobal(s.L, "thing");
  // mp.dumps has no fd channel: the reduce refuses, with the path.
  CHECK(s.error_of("mp.dumps({x = thing})") == "cannot send a TestThing through this channel (at value.x)");
  // With fds: one description for the same object twice.
  lua_createtable(s.L, 2, 0);
  lua_getglobal(s.L, "thing");
  lua_rawseti(s.L, -2, 1);
  lua_getglobal(s.L, "thing");
  lua_rawseti(s.L, -2, 2);
  std::vector<int> fds;
  EncodeContext ectx;
  ectx.fds = &fds;
  std::string msg;
  luamp::codec::encode(s.L, -1, msg, ectx);
  lua_pop(s.L, 1);
  REQUIRE(fds == std::vector<int>{142});
  DecodeContext dctx;
  dctx.fds = &fds;
  luamp::codec::decode(s.L, msg.data(), msg.size(), dctx);
  CHECK(fds[0] == -1);
  lua_rawgeti(s.L, -1, 1);
  lua_rawgeti(s.L, -2, 2);
  CHECK(lua_rawequal(s.L, -1, -2));
  CHECK(static_cast<Thing*>(luaL_checkudata(s.L, -1, "mp.TestThing"))->value == 42);
  lua_pop(s.L, 3);
  // Without fds on the receiving side the rebuild fails cleanly.
  CHECK(try_decode(s.L, msg) == "bad TestThing");
}

TEST_CASE("codec: a failed encode leaves the output and the stack as they were", "[codec]") {
  State s;
  std::string out = "prefix";
  int top = lua_gettop(s.L);
  luaL_dostring(s.L, "return {1, 2, {3, coroutine.create(print)}}");
  EncodeContext ctx;
  ctx.path = "args";
  bool threw = false;
  try {
    luamp::codec::encode(s.L, -1, out, ctx);
  } catch (luamp::Failure& f) {
    threw = true;
    CHECK(f.message == "cannot send a coroutine (at args[3][2])");
  }
  CHECK(threw);
  CHECK(ctx.path == "args[3][2]");
  CHECK(out == "prefix");
  CHECK(lua_gettop(s.L) == top + 1);
  lua_pop(s.L, 1);
  // Appending: a second encode goes after what is there.
  lua_pushinteger(s.L, 1);
  luamp::codec::encode(s.L, -1, out, ctx);
  lua_pop(s.L, 1);
  CHECK(out.substr(0, 6) == "prefix");
  CHECK(out.size() == 6 + 3);
}

TEST_CASE("codec: large messages", "[codec][large]") {
  State s;
  s.run(R"lua(
    local big = string.rep("0123456789abcdef", 4 * 1024 * 1024)  -- 64 MiB
    local m = mp.dumps({big, big})
    assert(#m < #big + 100)  -- the same string object twice is sent once
    local back = mp.loads(m)
    assert(back[1] == big and back[2] == big)
    local parts = {}
    for i = 1, 200000 do parts[i] = {i, tostring(i)} end
    local r = mp.loads(mp.dumps(parts))
    assert(#r == 200000 and r[200000][2] == "200000")
  )lua");
}

TEST_CASE("codec: random nested values round-trip equal", "[codec][property]") {
  State s;
  s.run(R"lua(
    math.randomseed(12345)
    local pool_keys = {"a", "b", "name", "x", "", "long key with spaces", string.rep("k", 50)}
    local function scalar()
      local r = math.random(10)
      if r == 1 then return math.random(-2^40, 2^40)
      elseif r == 2 then return math.random() * 1e6 - 5e5
      elseif r == 3 then return math.random(-200, 200)
      elseif r == 4 then return math.random(2) == 1
      elseif r == 5 then return pool_keys[math.random(#pool_keys)]
      elseif r == 6 then
        local t = {}
        for i = 1, math.random(0, 80) do t[i] = string.char(math.random(0, 255)) end
        return table.concat(t)
      elseif r == 7 then return ({math.huge, -math.huge, 0.0, -0.0, math.mininteger, math.maxinteger})[math.random(6)]
      else return math.random(0, 1000) end
    end
    local made, budget
    local function value(depth)
      budget = budget - 1
      if depth > 6 or budget <= 0 or math.random(3) == 1 then return scalar() end
      if #made > 0 and math.random(8) == 1 then return made[math.random(#made)] end
      local t = {}
      made[#made + 1] = t
      for i = 1, math.random(0, 8) do
        if math.random(4) > 1 then t[i] = value(depth + 1) end
      end
      for _ = 1, math.random(0, 6) do
        local k = scalar()
        if k ~= k then k = 1 end
        t[k] = value(depth + 1)
      end
      if math.random(10) == 1 then t.self = t end
      return t
    end
    for iter = 1, 2000 do
      made, budget = {}, 200
      local v = value(0)
      local back = rt(v)
      assert(same(v, back), "iteration " .. iter)
    end
  )lua");
}

TEST_CASE("codec: corrupted messages never crash the decoder", "[codec][mutation]") {
  State s;
  // Valid messages of every kind.
  s.run(R"lua(
    local Point = {}
    Point.__index = Point
    mp.register_class("test.Point", Point)
    local Red = {}
    function Red.__reduce(o) return o.v end
    function Red.__rebuild(v) return setmetatable({v = v}, Red) end
    mp.register_class("test.Red", Red)
    local up, shared = 5, {1}
    local function f(x) return x + up, shared end
    local function g() shared = {2}; return up end
    local c = {n = 1}; c.self = c
    samples = {
      mp.dumps(nil), mp.dumps(true), mp.dumps(12345678901), mp.dumps(-1.5), mp.dumps("str\0ing"),
      mp.dumps(string.rep("long", 40)),
      mp.dumps {42, nil, "hello", x = {y = {z = {}}}, [1.5] = false},
      mp.dumps {f, g, f},
      mp.dumps(c),
      mp.dumps {setmetatable({x = 1, y = 2}, Point), Point, setmetatable({v = {1, 2}}, Red)},
      mp.dumps {math.sqrt, print, mp.cpu_count, mp, string},
      mp.dumps(mp.TimeoutError("t", {traceback = "tb"})),
      mp.dumps {{id = 1, name = "a"}, {id = 2, name = "b"}, {id = 3, name = "c"}},
      mp.dumps(function(a, b) local t = {} for i = a, b do t[#t + 1] = i * 2.5 end return t end),
    }
  )lua");
  std::vector<std::string> samples;
  lua_getglobal(s.L, "samples");
  for (lua_Integer i = 1; lua_rawgeti(s.L, -1, i) == LUA_TSTRING; ++i) {
    size_t n;
    const char* p = lua_tolstring(s.L, -1, &n);
    samples.emplace_back(p, n);
    lua_pop(s.L, 1);
  }
  lua_pop(s.L, 2);
  REQUIRE(samples.size() == 14);
  for (const std::string& m : samples) REQUIRE(try_decode(s.L, m).empty());

  std::mt19937_64 rng(20261126);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  long mutations = 0, accepted = 0;
  // Every truncation of every sample.
  for (const std::string& m : samples) {
    for (size_t len = 0; len < m.size(); ++len) {
      std::string e = try_decode(s.L, m.substr(0, len));
      CHECK(!e.empty());
      ++mutations;
    }
  }
  while (mutations < 120000) {
    std::string m = samples[pick(samples.size())];
    int edits = 1 + static_cast<int>(pick(3));
    for (int e = 0; e < edits && !m.empty(); ++e) {
      size_t at = pick(m.size());
      switch (pick(6)) {
        case 0: m[at] = static_cast<char>(m[at] ^ (1 << pick(8))); break;  // bit flip
        case 1: m[at] = static_cast<char>(rng()); break;                    // random byte
        case 2: {  // a length field made huge
          size_t w = 1 + pick(8);
          for (size_t i = at; i < at + w && i < m.size(); ++i) m[i] = static_cast<char>(0xff);
          break;
        }
        case 3: m.resize(at); break;                                    // truncate
        case 4: m.insert(at, 1, static_cast<char>(rng())); break;       // insert
        case 5: m.erase(at, 1 + pick(4)); break;                        // delete
      }
    }
    std::string err = try_decode(s.L, m);
    if (err.empty()) {
      ++accepted;
    } else {
      // Errors are clean strings from the decoder (or a refused rebuild).
      bool known = err.rfind("corrupt message: ", 0) == 0 || err.rfind("cannot rebuild", 0) == 0 ||
                   err.find("not enough memory") != std::string::npos;
      if (!known) FAIL_CHECK("unexpected error: " << err);
    }
    ++mutations;
    if (mutations % 5000 == 0) lua_gc(s.L, LUA_GCCOLLECT);
  }
  INFO("accepted " << accepted << " of " << mutations);
  CHECK(mutations >= 100000);
}
