// Native help for the Pool: the memory a pool shares with its workers (a
// slot per worker, the task ring, the result ring) and the owner's wait
// over answers and worker sentinels (see pool.cpp).
#pragma once
#include <lua.hpp>

namespace luamp {

// Adds pool_shared, pool_attach, pool_pack, pool_unpack and the
// mp.PoolShared metatable to the core table on top of the stack.
void open_pool(lua_State* L);

}  // namespace luamp
