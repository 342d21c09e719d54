// mp.Value, Array, RawValue, RawArray, Struct records (sharedctypes.cpp) as
// other native files need them: the byte view of a 'c'/'b'/'B' Array, for
// Connection:recv_bytes_into.
#pragma once
#include <lua.hpp>

#include <cstddef>

namespace luamp {

namespace sharedctypes {
// If the value at idx is an open Array of typecode 'c', 'b' or 'B', sets
// *data/*size to its bytes and returns true.
bool byte_span(lua_State* L, int idx, char** data, size_t* size);
}  // namespace sharedctypes

// Adds Value, RawValue, Array, RawArray, synchronized, copy to the table on
// top of the stack and registers the types.
void open_sharedctypes(lua_State* L);

}  // namespace luamp
