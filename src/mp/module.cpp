// Assembles the module "multiprocessing".  Native primitives register into
// the core table (package.loaded["multiprocessing.core"]); the embedded Lua
// modules (src/lua/*.lua) are put in package.preload; then the embedded
// "multiprocessing" chunk builds the public table from both.
#include "mp/module.h"

#include "mp/codec.h"
#include "mp/connection.h"
#include "mp/embedded.h"
#include "mp/forkserver.h"
#include "mp/lua_util.h"
#include "mp/manager_io.h"
#include "mp/payload.h"
#include "mp/pool.h"
#include "mp/process.h"
#include "mp/system.h"

namespace luamp {
namespace {

// package.preload loader for an embedded module; upvalue 1 is its index.
int load_embedded(lua_State* L) {
  const EmbeddedModule& m = kEmbeddedModules[lua_tointeger(L, lua_upvalueindex(1))];
  if (luaL_loadbufferx(L, m.source, m.size, m.chunkname, "t") != LUA_OK) return lua_error(L);
  lua_pushstring(L, m.name);
  lua_call(L, 1, 1);
  return 1;
}

void preload_embedded(lua_State* L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (int i = 0; kEmbeddedModules[i].name != nullptr; ++i) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, kEmbeddedModules[i].name);
  }
  lua_pop(L, 1);
}

// core.set_error_classes(t): remembers mp's error classes in the registry so
// native code can raise mp.Empty and friends (lua_util.h).
int core_set_error_classes(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, kErrorsRegistryKey);
  return 0;
}

// The native core: every Lua-visible primitive, by concept.
void open_core(lua_State* L) {
  lua_newtable(L);
  lua_pushcfunction(L, core_set_error_classes);
  lua_setfield(L, -2, "set_error_classes");
  open_system(L);
  open_process(L);
  open_forkserver(L);
  codec::open_codec(L);
  open_payload(L);
  connection::open_connection(L);
  open_pool(L);
  open_manager_io(L);
  lua_pushstring(L, "0.1.0");
  lua_setfield(L, -2, "version");
}

}  // namespace

void preload_multiprocessing(lua_State* L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_multiprocessing);
  lua_setfield(L, -2, "multiprocessing");
  lua_pop(L, 1);
}

}  // namespace luamp

extern "C" int luaopen_multiprocessing(lua_State* L) {
  using namespace luamp;
  preload_embedded(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  open_core(L);
  lua_setfield(L, -2, "multiprocessing.core");
  lua_pop(L, 1);
  // The embedded chunk named "multiprocessing.init" builds the public table.
  lua_getglobal(L, "require");
  lua_pushstring(L, "multiprocessing.init");
  lua_call(L, 1, 1);
  return 1;
}
