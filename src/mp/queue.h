// Queues: mp.Queue, mp.SimpleQueue, mp.JoinableQueue over the shared-memory
// ring (ring.h).  See queue.cpp and docs/api/queues.md.
#pragma once
#include <lua.hpp>

namespace luamp {

// Adds Queue, SimpleQueue and JoinableQueue to the core table on top of the
// stack and registers their metatables and NativeTypes.
void open_queue(lua_State* L);

}  // namespace luamp
