// mp.shared_memory.SharedMemory: a named block of raw bytes (Python's
// explicit unlink rule) and its 1-based byte view `buf`.  Built on
// shm::Segment's Named kind.  Users: init.lua and
// multiprocessing.shared_memory.lua (ShareableList, SharedMemoryManager),
// the codec (SharedMemory crosses by name), connections (recv_bytes_into
// writes into a buf through shared_memory_span).
#include "mp/shared_memory.h"

#include <cstring>
#include <string>

#include "mp/codec.h"
#include "mp/lua_util.h"
#include "mp/shm.h"

namespace luamp {
namespace {

constexpr const char* kShm = "mp.SharedMemory";
constexpr const char* kBuf = "mp.SharedMemoryBuffer";

struct ShmUd {
  std::shared_ptr<shm::Segment> seg;  // null after close()
  std::string name;                   // kept after close (unlink uses it)
  size_t size = 0;
};

ShmUd* new_shm(lua_State* L) {
  auto* u = static_cast<ShmUd*>(lua_newuserdatauv(L, sizeof(ShmUd), 1));
  new (u) ShmUd();
  luaL_setmetatable(L, kShm);
  return u;
}

ShmUd* check_shm(lua_State* L, int idx) { return static_cast<ShmUd*>(luaL_checkudata(L, idx, kShm)); }

int shm_gc(lua_State* L) {
  auto* u = static_cast<ShmUd*>(lua_touserdata(L, 1));
  if (u) u->~ShmUd();
  return 0;
}

// shm:close(): drops this object's access (idempotent); the block lives on.
int shm_close(lua_State* L) {
  check_shm(L, 1)->seg.reset();
  return 0;
}

// shm:unlink(): removes the block's name; mp.OSError (errno 2) when already
// gone.  Needs no open mapping.
int shm_unlink(lua_State* L) {
  ShmUd* u = check_shm(L, 1);
  return run_guarded(L, [&] {
    if (u->seg) {
      u->seg->unlink();
    } else {
      shm::Segment::unlink_name(u->name);
    }
    return 0;
  });
}

int shm_index(lua_State* L) {
  ShmUd* u = check_shm(L, 1);
  const char* k = luaL_checkstring(L, 2);
  if (std::strcmp(k, "name") == 0) {
    lua_pushlstring(L, u->name.data(), u->name.size());
  } else if (std::strcmp(k, "size") == 0) {
    lua_pushinteger(L, static_cast<lua_Integer>(u->size));
  } else if (std::strcmp(k, "buf") == 0) {
    if (!u->seg) return luaL_error(L, "attempt to use a closed SharedMemory");
    // One view per object, cached in the user value; it refers back to
    // the SharedMemory so close() invalidates it.
    if (lua_getiuservalue(L, 1, 1) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_newuserdatauv(L, 0, 1);
      lua_pushvalue(L, 1);
      lua_setiuservalue(L, -2, 1);
      luaL_setmetatable(L, kBuf);
      lua_pushvalue(L, -1);
      lua_setiuservalue(L, 1, 1);
    }
  } else if (std::strcmp(k, "close") == 0) {
    lua_pushcfunction(L, shm_close);
  } else if (std::strcmp(k, "unlink") == 0) {
    lua_pushcfunction(L, shm_unlink);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

// SharedMemory('luamp-1-2-ab', size=16)
int shm_tostring(lua_State* L) {
  ShmUd* u = check_shm(L, 1);
  lua_pushfstring(L, "SharedMemory('%s', size=%I)", u->name.c_str(), static_cast<lua_Integer>(u->size));
  return 1;
}

// The open segment behind a buf view at idx.
ShmUd* buf_shm(lua_State* L, int idx) {
  luaL_checkudata(L, idx, kBuf);
  lua_getiuservalue(L, idx, 1);
  auto* u = static_cast<ShmUd*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  if (!u || !u->seg) luaL_error(L, "attempt to use a closed SharedMemory");
  return u;
}

// buf:read([i [, j]]) -> the bytes i..j as a string (j clamped).
int buf_read(lua_State* L) {
  ShmUd* u = buf_shm(L, 1);
  lua_Integer n = static_cast<lua_Integer>(u->size);
  lua_Integer i = luaL_optinteger(L, 2, 1);
  lua_Integer j = luaL_optinteger(L, 3, n);
  if (i < 1) i = 1;
  if (j > n) j = n;
  if (j < i) {
    lua_pushliteral(L, "");
  } else {
    lua_pushlstring(L, static_cast<const char*>(u->seg->data()) + (i - 1), static_cast<size_t>(j - i + 1));
  }
  return 1;
}

// buf:write(i, s): copies s at position i; raises when it does not fit.
int buf_write(lua_State* L) {
  ShmUd* u = buf_shm(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  size_t len;
  const char* s = luaL_checklstring(L, 3, &len);
  lua_Integer n = static_cast<lua_Integer>(u->size);
  if (i < 1 || i - 1 + static_cast<lua_Integer>(len) > n) {
    return luaL_error(L, "write: %d bytes at %I do not fit in %I bytes", static_cast<int>(len), i, n);
  }
  std::memcpy(static_cast<char*>(u->seg->data()) + (i - 1), s, len);
  return 0;
}

int buf_index(lua_State* L) {
  ShmUd* u = buf_shm(L, 1);
  int isint = 0;
  lua_Integer i = lua_tointegerx(L, 2, &isint);
  if (isint && lua_type(L, 2) == LUA_TNUMBER) {
    if (i < 1 || i > static_cast<lua_Integer>(u->size)) {
      lua_pushnil(L);
    } else {
      lua_pushinteger(L, static_cast<unsigned char>(static_cast<const char*>(u->seg->data())[i - 1]));
    }
    return 1;
  }
  const char* k = lua_tostring(L, 2);
  if (k && std::strcmp(k, "read") == 0) {
    lua_pushcfunction(L, buf_read);
  } else if (k && std::strcmp(k, "write") == 0) {
    lua_pushcfunction(L, buf_write);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

int buf_newindex(lua_State* L) {
  ShmUd* u = buf_shm(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  lua_Integer b = luaL_checkinteger(L, 3);
  if (i < 1 || i > static_cast<lua_Integer>(u->size)) {
    return luaL_error(L, "buf index %I out of range (size %I)", i, static_cast<lua_Integer>(u->size));
  }
  if (b < 0 || b > 255) return luaL_error(L, "buf[%I]: byte value %I out of range 0..255", i, b);
  static_cast<unsigned char*>(u->seg->data())[i - 1] = static_cast<unsigned char>(b);
  return 0;
}

int buf_len(lua_State* L) {
  lua_pushinteger(L, static_cast<lua_Integer>(buf_shm(L, 1)->size));
  return 1;
}

int buf_tostring(lua_State* L) {
  ShmUd* u = buf_shm(L, 1);
  lua_pushfstring(L, "<SharedMemory buffer of %I bytes>", static_cast<lua_Integer>(u->size));
  return 1;
}

// core.SharedMemory(name, create, size): Python's argument order.
int core_shared_memory(lua_State* L) {
  const char* name = luaL_optstring(L, 1, nullptr);
  bool create = lua_toboolean(L, 2);
  lua_Integer size = luaL_optinteger(L, 3, 0);
  luaL_argcheck(L, size >= 0, 3, "'size' must be a positive integer");
  if (create) luaL_argcheck(L, size > 0, 3, "'size' must be a positive number different from zero");
  if (!create) luaL_argcheck(L, name != nullptr, 1, "'name' can only be nil if create=true");
  ShmUd* u = new_shm(L);
  return run_guarded(L, [&] {
    u->seg = create ? shm::Segment::create_named(name ? name : "", static_cast<size_t>(size))
                    : shm::Segment::attach_named(name);
    u->name = u->seg->name();
    u->size = u->seg->size();
    return 1;
  });
}

void shm_reduce(lua_State* L, int idx, std::string& out, codec::EncodeContext&) {
  auto* u = static_cast<ShmUd*>(lua_touserdata(L, idx));
  if (!u || !u->seg) throw Failure::plain("cannot send a closed SharedMemory");
  shm::encode_ref(out, *u->seg, 0);
}

void shm_rebuild(lua_State* L, const char* data, size_t len, codec::DecodeContext&) {
  const char* p = data;
  uint64_t offset = 0;
  auto seg = shm::decode_ref(&p, data + len, &offset);
  if (seg->kind() != shm::Kind::Named) throw Failure::plain("corrupt message: bad SharedMemory");
  ShmUd* u = new_shm(L);
  u->name = seg->name();
  u->size = seg->size();
  u->seg = std::move(seg);
}

const codec::NativeType kShmType = {kShm, shm_reduce, shm_rebuild};

}  // namespace

bool shared_memory_span(lua_State* L, int idx, char** data, size_t* size) {
  if (!luaL_testudata(L, idx, kBuf)) return false;
  lua_getiuservalue(L, idx, 1);
  auto* u = static_cast<ShmUd*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  if (!u || !u->seg) return false;
  *data = static_cast<char*>(u->seg->data());
  *size = u->size;
  return true;
}

void open_shared_memory(lua_State* L) {
  luaL_newmetatable(L, kShm);
  lua_pushcfunction(L, shm_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, shm_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, shm_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, shm_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);

  luaL_newmetatable(L, kBuf);
  lua_pushcfunction(L, buf_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, buf_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, buf_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, buf_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  codec::register_native_type(L, &kShmType);
  lua_pushcfunction(L, core_shared_memory);
  lua_setfield(L, -2, "SharedMemory");
}

}  // namespace luamp
