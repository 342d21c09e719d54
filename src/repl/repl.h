// The interactive REPL: readline input with history, multi-line statements,
// results echoed with repr, Ctrl-C handling.  main.cpp calls run() for -i or
// when stdin is a terminal and no script is given.
#pragma once
#include <lua.hpp>

namespace luamp::repl {

// Runs the read-eval-print loop on L until end of input.
void run(lua_State* L);

}  // namespace luamp::repl
