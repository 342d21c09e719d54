// The forkserver start method's native side: the server loop, requests and
// exit-status reports.  See forkserver.cpp for the protocol.
#pragma once
#include <lua.hpp>

namespace luamp {

// Adds forkserver_listen/serve/request/status to the core table on top.
void open_forkserver(lua_State* L);

}  // namespace luamp
