// mp.shared_memory.SharedMemory (shared_memory.cpp) as other native files
// need it: the bytes of a SharedMemory `buf`, for
// Connection:recv_bytes_into.
#pragma once
#include <lua.hpp>

#include <cstddef>

namespace luamp {

// If the value at idx is the `buf` of an open SharedMemory, sets *data and
// *size to its bytes and returns true.
bool shared_memory_span(lua_State* L, int idx, char** data, size_t* size);

// Adds SharedMemory to the table on top of the stack; registers the type.
void open_shared_memory(lua_State* L);

}  // namespace luamp
