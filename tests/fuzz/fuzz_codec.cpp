// libFuzzer target: feeds arbitrary bytes to the codec's decoder
// (src/mp/codec.cpp).  Every input must either decode or fail with a clean
// Lua error; nothing may crash, over-read, or allocate without bound (run
// with -rss_limit_mb / -malloc_limit_mb).  A value that decodes is encoded
// again and that message must decode too.  Seeds: make_corpus.lua.
#include <lua.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "mp/codec.h"
#include "mp/lua_util.h"
#include "mp/module.h"

namespace {

// Classes the seeds use, registered so their messages decode.
const char* kSetup = R"lua(
  local mp = require "multiprocessing"
  local Point = {}
  Point.__index = Point
  mp.register_class("test.Point", Point)
  local Red = {}
  function Red.__reduce(o) return o.v end
  function Red.__rebuild(v) return setmetatable({v = v}, Red) end
  mp.register_class("test.Red", Red)
)lua";

lua_State* state() {
  static lua_State* L = [] {
    lua_State* s = luaL_newstate();
    luaL_openlibs(s);
    luamp::preload_multiprocessing(s);
    if (luaL_dostring(s, kSetup) != LUA_OK) abort();
    return s;
  }();
  return L;
}

// Set once the first decode of the current input succeeded.
bool decoded_once = false;

// loads(bytes) -> value, then dumps(value) -> bytes2, loads(bytes2).
int roundtrip(lua_State* L) {
  size_t len;
  const char* s = lua_tolstring(L, 1, &len);
  return luamp::run_guarded(L, [&] {
    luamp::codec::DecodeContext dctx;
    luamp::codec::decode(L, s, len, dctx);
    std::string again;
    luamp::codec::EncodeContext ectx;
    luamp::codec::encode(L, -1, again, ectx);
    decoded_once = true;
    lua_pushboolean(L, 1);
    luamp::codec::decode(L, again.data(), again.size(), dctx);
    return 3;
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lua_State* L = state();
  decoded_once = false;
  lua_pushcfunction(L, roundtrip);
  lua_pushlstring(L, reinterpret_cast<const char*>(data), size);
  if (lua_pcall(L, 1, 3, 0) != LUA_OK) {
    // A clean error is fine, but a message that decoded must re-decode.
    const char* msg = lua_tostring(L, -1);
    if (msg == nullptr) abort();
    if (decoded_once) {
      fprintf(stderr, "re-encoded message failed: %s\n", msg);
      abort();
    }
  }
  lua_settop(L, 0);
  static int n = 0;
  if (++n % 1000 == 0) lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
