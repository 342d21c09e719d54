// help(): the documentation of luamp's functions, classes and methods, read
// from the API pages docs/api/*.md compiled into the binary.  open_all()
// (host.cpp) calls open_help; the REPL and docs tests use the Lua side
// (require "luamp.help").
#pragma once
#include <lua.hpp>

namespace luamp::repl {

// Registers package.preload["luamp.help"] and ["luamp.complete"] (the REPL's
// Lua helpers, src/repl/*.lua) and sets the global `help`, which loads
// "luamp.help" on its first call.  Stack unchanged.
void open_help(lua_State* L);

}  // namespace luamp::repl
