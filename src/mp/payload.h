// Codec access with out-of-band fds for process payloads (spawn and
// forkserver): core.encode_with_fds / core.decode_with_fds.
#pragma once
#include <lua.hpp>

namespace luamp {

// Adds encode_with_fds and decode_with_fds to the core table on top.
void open_payload(lua_State* L);

}  // namespace luamp
