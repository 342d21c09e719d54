// The codec: any Lua value <-> bytes.  Every Queue, Pipe, Pool task,
// Manager call and spawned Process uses it (API.md, "What crosses between
// processes"; wire format in docs/design/codec.md).
//
// Native luamp types (queues, locks, values, connections, ...) cross by
// reference: each registers a NativeType for its metatable name, saying how
// one object is reduced to bytes (plus, for file-descriptor objects, fds
// carried out of band) and rebuilt on the other side.  The codec's core
// never needs to know the types.
#pragma once
#include <lua.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace luamp::codec {

// Where the encoded message is going, which decides what may cross.
struct EncodeContext {
  // Out-of-band file descriptors (SCM_RIGHTS over a Connection, or inherited
  // by a spawned child).  nullptr means the channel cannot carry fds (a
  // Queue, mp.dumps): reducing an fd object must then fail with a clear error.
  std::vector<int>* fds = nullptr;
  // Where the value being encoded was found, for error messages
  // ("args[2].cb").  The caller sets the root's name ("args"; empty means
  // "value"); when encode fails, the codec sets it to the full path of the
  // value that could not be sent.
  std::string path;
};

struct DecodeContext {
  // The fds received with the message, in the order they were added when
  // encoding.  A rebuild takes ownership of the ones it uses (sets the entry
  // to -1); the caller closes whatever is left.
  std::vector<int>* fds = nullptr;
};

// How one native type crosses.  `reduce` appends an opaque description of
// the userdata at `idx` to `out` (and may push fds onto ctx.fds); it throws
// luamp::Failure when the object cannot be sent (closed, or fds not allowed).
// `rebuild` reads that description and pushes a new userdata of the type
// referring to the same shared object; it throws Failure on bad input.
struct NativeType {
  const char* metatable_name;  // e.g. "mp.Lock"
  void (*reduce)(lua_State* L, int idx, std::string& out, EncodeContext& ctx);
  void (*rebuild)(lua_State* L, const char* data, size_t len, DecodeContext& ctx);
};

// Registers `type` (static storage) in L so the codec can send its objects.
// Call from the concept's open_<concept>() when the module loads.
void register_native_type(lua_State* L, const NativeType* type);

// Appends the encoding of the value at `idx` to `out` (grown in place: the
// message is written once, straight into `out`).  Throws Failure ("cannot
// send a coroutine (at args[2].cb)") for values that cannot cross; `out` and
// the Lua stack are then as they were.  May call __reduce metamethods and
// NativeType::reduce.  Stack-neutral.
void encode(lua_State* L, int idx, std::string& out, EncodeContext& ctx);

// Decodes one message and pushes the value.  Never trusts the bytes: throws
// Failure with cls "" and message "corrupt message: <why>" on bad input, or
// "cannot rebuild ..." when the message names a class, C function, module or
// native type this process does not have; the stack is then as it was.
// May call __rebuild, require and NativeType::rebuild.
void decode(lua_State* L, const char* data, size_t len, DecodeContext& ctx);

// Adds the codec's functions (dumps, loads, register_class) to the table on
// top of the stack.  The C-function name table is built at first use (and
// rebuilt when a C function is not found), so modules loaded later count.
void open_codec(lua_State* L);

// The deepest nesting of tables, functions and objects a message may have,
// on both sides ("nested more than 1000 levels deep").
inline constexpr int kMaxNesting = 1000;

}  // namespace luamp::codec
