// The module "multiprocessing": luaopen_multiprocessing assembles the native
// core table (one open_<concept> per src/mp/<concept>.cpp) and runs the
// embedded Lua that builds the public API on top of it.
#pragma once
#include <lua.hpp>

extern "C" int luaopen_multiprocessing(lua_State* L);

namespace luamp {
// Registers luaopen_multiprocessing in package.preload (the host calls this).
void preload_multiprocessing(lua_State* L);
}  // namespace luamp
