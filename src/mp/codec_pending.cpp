// TEMPORARY: weak stand-ins for the codec (codec.h) until codec.cpp lands on
// main; the real definitions override these.  Delete this file when merging
// the codec.
#include "mp/codec.h"

#include "mp/lua_util.h"

namespace luamp::codec {

__attribute__((weak)) void register_native_type(lua_State*, const NativeType*) {}

__attribute__((weak)) void encode(lua_State*, int, std::string&, EncodeContext&) {
  throw Failure::plain("the codec is not built yet");
}

__attribute__((weak)) void decode(lua_State*, const char*, size_t, DecodeContext&) {
  throw Failure::plain("the codec is not built yet");
}

}  // namespace luamp::codec
