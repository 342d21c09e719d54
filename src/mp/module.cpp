// Assembles the module "multiprocessing".  Native primitives register into
// the core table (package.loaded["multiprocessing.core"]); the embedded Lua
// modules (src/lua/*.lua) are put in package.preload; then the embedded
// "multiprocessing" chunk builds the public table from both.
#include "mp/module.h"

#include <cstdlib>

#include "mp/codec.h"
#include "mp/connection.h"
#include "mp/embedded.h"
#include "mp/forkserver.h"
#include "mp/lua_util.h"
#include "mp/manager_io.h"
#include "mp/payload.h"
#include "mp/pool.h"
#include "mp/process.h"
#include "mp/queue.h"
#include "mp/shared_memory.h"
#include "mp/sharedctypes.h"
#include "mp/shm.h"
#include "mp/synchronize.h"
#include "mp/system.h"

namespace luamp {
namespace {

// package.preload loader for an embedded module; upvalue 1 is its index.
int load_embedded(lua_State* L) {
  const EmbeddedModule& m = kEmbeddedModules[lua_tointeger(L, lua_upvalueindex(1))];
  // Precompiled bytecode when the build made it and this Lua accepts it
  // (a module loaded into another Lua release falls back to the source).
  if (m.bytecode == nullptr || luaL_loadbufferx(L, m.bytecode, m.bytecode_size, m.chunkname, "b") != LUA_OK) {
    if (m.bytecode != nullptr) lua_pop(L, 1);
    if (luaL_loadbufferx(L, m.source, m.size, m.chunkname, "t") != LUA_OK) return lua_error(L);
  }
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

// core.metatable(name) -> the registered metatable of a native type (the
// embedded Lua adds methods to some, e.g. Condition:wait_for).
int core_metatable(lua_State* L) {
  luaL_getmetatable(L, luaL_checkstring(L, 1));
  return 1;
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
  open_manager_io(L);
  open_pool(L);
  open_synchronize(L);
  open_sharedctypes(L);
  open_shared_memory(L);
  lua_pushcfunction(L, core_metatable);
  lua_setfield(L, -2, "metatable");
  open_queue(L);
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
  // A spawned child (or the fork server) joins its program's segment
  // tracker now, before it forks children of its own (shm.h).
  if (std::getenv(shm::kTrackerEnv) != nullptr) {
    run_guarded(L, [] {
      shm::ensure_tracker();
      return 0;
    });
  }
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
