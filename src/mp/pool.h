// Native help for the Pool: the owner's non-blocking channel to each worker
// and the owner's wait over channels and sentinels (see pool.cpp).
#pragma once
#include <lua.hpp>

namespace luamp {

// Adds pool_pipe, pool_poll and the mp.PoolChannel metatable to the core
// table on top of the stack.
void open_pool(lua_State* L);

}  // namespace luamp
