// The byte-buffer capability: a native type whose objects are a run of bytes
// (mp.Array / mp.RawArray of typecode c, b or B, a SharedMemory `buf`, ...)
// registers a getter here, and Connection:recv_bytes_into / send_bytes use any
// registered object without knowing its type (STYLE.md: shared capabilities
// are a registry set, not a type switch).  Implemented in connection.cpp.
#pragma once
#include <lua.hpp>

#include <cstddef>

namespace luamp::buffer {

// A view of an object's bytes.  Valid while the object at the stack index is
// alive and not closed; the caller must not keep it across Lua calls that
// could collect or close the object.
struct ByteSpan {
  char* data = nullptr;
  size_t size = 0;
};

// Fills `out` for the userdata at `idx` (already known to have the registered
// metatable).  Throws luamp::Failure when the object cannot lend its bytes
// (closed, or an Array of a typecode that is not bytes).
using Getter = void (*)(lua_State* L, int idx, ByteSpan* out);

// Registers `getter` for userdata whose metatable's __name is
// `metatable_name` (before or after the metatable exists).  Call from the
// concept's open_<concept>().
void register_type(lua_State* L, const char* metatable_name, Getter getter);

// True (and `out` filled) when the value at `idx` is a registered buffer
// object; false for anything else.  May throw Failure from the getter.
bool get(lua_State* L, int idx, ByteSpan* out);

}  // namespace luamp::buffer
