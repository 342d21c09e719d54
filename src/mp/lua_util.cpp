// Raising luamp errors from native code.  See lua_util.h.
#include "mp/lua_util.h"

#include <cstring>

namespace luamp {

Failure Failure::os(const std::string& what, int err, std::string filename) {
  Failure f;
  f.cls = "OSError";
  f.message = what + ": " + std::strerror(err);
  f.error_number = err;
  f.filename = std::move(filename);
  return f;
}

void push_error_class(lua_State* L, const char* cls) {
  lua_getfield(L, LUA_REGISTRYINDEX, kErrorsRegistryKey);
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, cls);
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

void push_failure(lua_State* L, const Failure& f) {
  if (f.cls.empty()) {
    lua_pushlstring(L, f.message.data(), f.message.size());
    return;
  }
  push_error_class(L, f.cls.c_str());
  if (lua_isnil(L, -1)) {  // errors not set up (should not happen): plain error
    lua_pop(L, 1);
    lua_pushfstring(L, "%s: %s", f.cls.c_str(), f.message.c_str());
    return;
  }
  // err = Class(message); for OSError also errno, strerror, filename.
  lua_pushlstring(L, f.message.data(), f.message.size());
  lua_call(L, 1, 1);
  if (f.error_number != 0) {
    lua_pushinteger(L, f.error_number);
    lua_setfield(L, -2, "errno");
    lua_pushstring(L, std::strerror(f.error_number));
    lua_setfield(L, -2, "strerror");
  }
  if (!f.filename.empty()) {
    lua_pushlstring(L, f.filename.data(), f.filename.size());
    lua_setfield(L, -2, "filename");
  }
}

int raise_error(lua_State* L, const char* cls, const char* message) {
  push_error_class(L, cls);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushfstring(L, "%s: %s", cls, message);
    lua_error(L);
  }
  lua_pushstring(L, message);
  lua_call(L, 1, 1);
  lua_error(L);
  __builtin_unreachable();
}

}  // namespace luamp
