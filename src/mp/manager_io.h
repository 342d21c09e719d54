// Manager wire I/O (manager_io.cpp): framed codec messages with deadlines,
// for the embedded managers' server loop and proxy calls.
#pragma once
#include <lua.hpp>

namespace luamp {
// Adds manager_send, manager_recv and manager_call to the core table on top
// of the stack.
void open_manager_io(lua_State* L);
}  // namespace luamp
