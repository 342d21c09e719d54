// mp.Value, Array, RawValue, RawArray, mp.Struct records and the
// sharedctypes helpers (synchronized, copy): typed views over shared
// segments (shm.h).  Users: init.lua (public names and the options-table
// forms), multiprocessing.synchronize.lua (Barrier's state is a RawArray),
// the codec (NativeTypes below), connection code (recv_bytes_into writes
// into 'c'/'b'/'B' arrays through sharedctypes::byte_span).
//
// A view is (segment, offset, typecode or struct layout, length).  A Value
// or Array made with a lock keeps it as user value 1; with the default
// lock=true the RLock lives in the same segment, before the data.
#include "mp/sharedctypes.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "mp/codec.h"
#include "mp/lua_util.h"
#include "mp/repr.h"
#include "mp/semlock.h"
#include "mp/shm.h"
#include "mp/synchronize.h"

namespace luamp {
namespace {

constexpr const char* kValue = "mp.Value";
constexpr const char* kArray = "mp.Array";
constexpr const char* kStructRef = "mp.StructRef";
constexpr const char* kTypecodes = "c b B h H i I l L q Q f d ?";
constexpr char kStructCode = 'S';

struct Field {
  std::string name;
  char tc;
  uint32_t offset;
};
// A C-like record: fields with natural alignment.
struct Layout {
  std::vector<Field> fields;
  uint32_t size = 0;
  uint32_t align = 1;
};

struct View {
  std::shared_ptr<shm::Segment> seg;  // null when closed
  char* data = nullptr;               // the first element
  uint64_t offset = 0;                // of data inside seg
  uint64_t length = 0;                // elements (1 for a Value)
  char tc = 0;                        // typecode, or kStructCode
  uint32_t esize = 0;                 // bytes per element
  bool is_array = false;
  std::shared_ptr<const Layout> layout;  // for kStructCode
};

uint32_t typecode_size(char tc) {
  switch (tc) {
    case 'c': case 'b': case 'B': case '?': return 1;
    case 'h': case 'H': return 2;
    case 'i': case 'I': case 'f': return 4;
    case 'l': case 'L': case 'q': case 'Q': case 'd': return 8;
    default: return 0;
  }
}

// ---- element access ----

// Pushes the scalar of typecode tc at p.
void read_scalar(lua_State* L, char tc, const char* p) {
  switch (tc) {
    case 'c': lua_pushlstring(L, p, 1); break;
    case 'b': { int8_t v; std::memcpy(&v, p, 1); lua_pushinteger(L, v); break; }
    case 'B': { uint8_t v; std::memcpy(&v, p, 1); lua_pushinteger(L, v); break; }
    case 'h': { int16_t v; std::memcpy(&v, p, 2); lua_pushinteger(L, v); break; }
    case 'H': { uint16_t v; std::memcpy(&v, p, 2); lua_pushinteger(L, v); break; }
    case 'i': { int32_t v; std::memcpy(&v, p, 4); lua_pushinteger(L, v); break; }
    case 'I': { uint32_t v; std::memcpy(&v, p, 4); lua_pushinteger(L, v); break; }
    case 'l': case 'q': { int64_t v; std::memcpy(&v, p, 8); lua_pushinteger(L, v); break; }
    case 'L': case 'Q': {
      uint64_t v;
      std::memcpy(&v, p, 8);
      if (v <= static_cast<uint64_t>(LUA_MAXINTEGER)) lua_pushinteger(L, static_cast<lua_Integer>(v));
      else lua_pushnumber(L, static_cast<lua_Number>(v));
      break;
    }
    case 'f': { float v; std::memcpy(&v, p, 4); lua_pushnumber(L, v); break; }
    case 'd': { double v; std::memcpy(&v, p, 8); lua_pushnumber(L, v); break; }
    case '?': lua_pushboolean(L, *p != 0); break;
    default: lua_pushnil(L);
  }
}

// Raises "<what>: <value> is out of range for typecode 'b'".
[[noreturn]] void range_error(lua_State* L, const char* what, int idx, char tc) {
  luaL_tolstring(L, idx, nullptr);
  luaL_error(L, "%s: %s is out of range for typecode '%c'", what, lua_tostring(L, -1), tc);
  __builtin_unreachable();
}

[[noreturn]] void type_error(lua_State* L, const char* what, int idx, char tc, const char* expected) {
  luaL_error(L, "%s: %s expected for typecode '%c', got %s", what, expected, tc, luaL_typename(L, idx));
  __builtin_unreachable();
}

// Stores the Lua value at idx as typecode tc at p, with range checks.
// Raises (plain Lua error naming `what`) on a bad value; no C++ object may
// be alive in the callers' frames.
void write_scalar(lua_State* L, char tc, char* p, int idx, const char* what) {
  idx = lua_absindex(L, idx);
  if (tc == 'f' || tc == 'd') {
    if (lua_type(L, idx) != LUA_TNUMBER) type_error(L, what, idx, tc, "number");
    double d = lua_tonumber(L, idx);
    if (tc == 'f') {
      float f = static_cast<float>(d);
      std::memcpy(p, &f, 4);
    } else {
      std::memcpy(p, &d, 8);
    }
    return;
  }
  if (tc == '?') {
    int t = lua_type(L, idx);
    if (t != LUA_TBOOLEAN && t != LUA_TNUMBER) type_error(L, what, idx, tc, "boolean");
    *p = t == LUA_TBOOLEAN ? (lua_toboolean(L, idx) ? 1 : 0) : (lua_tonumber(L, idx) != 0 ? 1 : 0);
    return;
  }
  if (tc == 'c' && lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char* s = lua_tolstring(L, idx, &len);
    if (len != 1) luaL_error(L, "%s: a one-byte string expected for typecode 'c', got %d bytes", what, static_cast<int>(len));
    *p = s[0];
    return;
  }
  if (lua_type(L, idx) != LUA_TNUMBER) type_error(L, what, idx, tc, tc == 'c' ? "one-byte string" : "integer");
  int isint = 0;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (!isint) {
    // Q/L accept integral floats up to 2^64; everything else needs an integer.
    double d = lua_tonumber(L, idx);
    if ((tc == 'Q' || tc == 'L') && d >= 0 && d < 18446744073709551616.0 && std::floor(d) == d) {
      uint64_t u = static_cast<uint64_t>(d);
      std::memcpy(p, &u, 8);
      return;
    }
    if (std::floor(d) == d && std::isfinite(d)) range_error(L, what, idx, tc);
    type_error(L, what, idx, tc, "integer");
  }
  auto in = [&](lua_Integer lo, lua_Integer hi) {
    if (v < lo || v > hi) range_error(L, what, idx, tc);
  };
  switch (tc) {
    case 'c': case 'B': { in(0, 255); uint8_t x = static_cast<uint8_t>(v); std::memcpy(p, &x, 1); break; }
    case 'b': { in(-128, 127); int8_t x = static_cast<int8_t>(v); std::memcpy(p, &x, 1); break; }
    case 'h': { in(-32768, 32767); int16_t x = static_cast<int16_t>(v); std::memcpy(p, &x, 2); break; }
    case 'H': { in(0, 65535); uint16_t x = static_cast<uint16_t>(v); std::memcpy(p, &x, 2); break; }
    case 'i': { in(INT32_MIN, INT32_MAX); int32_t x = static_cast<int32_t>(v); std::memcpy(p, &x, 4); break; }
    case 'I': { in(0, UINT32_MAX); uint32_t x = static_cast<uint32_t>(v); std::memcpy(p, &x, 4); break; }
    case 'l': case 'q': { std::memcpy(p, &v, 8); break; }
    case 'L': case 'Q': { in(0, LUA_MAXINTEGER); uint64_t x = static_cast<uint64_t>(v); std::memcpy(p, &x, 8); break; }
    default: break;
  }
}

// Pushes a record at p as a table {field = value, ...}.
void read_struct(lua_State* L, const Layout& layout, const char* p) {
  lua_createtable(L, 0, static_cast<int>(layout.fields.size()));
  for (const Field& f : layout.fields) {
    read_scalar(L, f.tc, p + f.offset);
    lua_setfield(L, -2, f.name.c_str());
  }
}

// Writes the table at idx into the record at p: t.name, or t[i] for the
// i-th field; a missing field is an error.
void write_struct(lua_State* L, const Layout& layout, char* p, int idx, const char* what) {
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx)) luaL_error(L, "%s: table expected for a Struct, got %s", what, luaL_typename(L, idx));
  int i = 0;
  for (const Field& f : layout.fields) {
    ++i;
    lua_getfield(L, idx, f.name.c_str());
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_geti(L, idx, i);
    }
    if (lua_isnil(L, -1)) luaL_error(L, "%s: missing field '%s'", what, f.name.c_str());
    write_scalar(L, f.tc, p + f.offset, -1, what);
    lua_pop(L, 1);
  }
}

void read_elem(lua_State* L, const View& v, uint64_t i);

// ---- userdata ----

View* new_view(lua_State* L, const char* mt) {
  auto* v = static_cast<View*>(lua_newuserdatauv(L, sizeof(View), 1));
  new (v) View();
  luaL_setmetatable(L, mt);
  return v;
}

View* check_view(lua_State* L, int idx) {
  auto* v = static_cast<View*>(luaL_testudata(L, idx, kValue));
  if (!v) v = static_cast<View*>(luaL_testudata(L, idx, kArray));
  if (!v) luaL_typeerror(L, idx, "Value or Array");
  if (!v->seg) luaL_error(L, "attempt to use a closed %s", v->is_array ? "Array" : "Value");
  return v;
}

int view_gc(lua_State* L) {
  auto* v = static_cast<View*>(lua_touserdata(L, 1));
  if (v) v->~View();
  return 0;
}

// Pushes the StructRef for element i (0-based) of a struct array.
void push_struct_ref(lua_State* L, const View& v, uint64_t i) {
  View* r = new_view(L, kStructRef);
  r->seg = v.seg;
  r->offset = v.offset + i * v.esize;
  r->data = v.data + i * v.esize;
  r->length = 1;
  r->tc = kStructCode;
  r->esize = v.esize;
  r->layout = v.layout;
}

void read_elem(lua_State* L, const View& v, uint64_t i) {
  if (v.tc == kStructCode) {
    if (v.is_array) push_struct_ref(L, v, i);
    else read_struct(L, *v.layout, v.data + i * v.esize);
  } else {
    read_scalar(L, v.tc, v.data + i * v.esize);
  }
}

void write_elem(lua_State* L, View& v, uint64_t i, int idx, const char* what) {
  if (v.tc == kStructCode) write_struct(L, *v.layout, v.data + i * v.esize, idx, what);
  else write_scalar(L, v.tc, v.data + i * v.esize, idx, what);
}

const Field* find_field(const View& v, const char* name) {
  if (!v.layout) return nullptr;
  for (const Field& f : v.layout->fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// Pushes a table with elements i..j (1-based, inclusive) as plain values.
void push_range(lua_State* L, const View& v, lua_Integer i, lua_Integer j) {
  lua_createtable(L, j >= i ? static_cast<int>(j - i + 1) : 0, 0);
  if (v.tc == 'd') {  // the common bulk case: one tight loop
    const char* p = v.data + (i - 1) * 8;
    for (lua_Integer k = i; k <= j; ++k, p += 8) {
      double d;
      std::memcpy(&d, p, 8);
      lua_pushnumber(L, d);
      lua_rawseti(L, -2, k - i + 1);
    }
    return;
  }
  for (lua_Integer k = i; k <= j; ++k) {
    if (v.tc == kStructCode) read_struct(L, *v.layout, v.data + (k - 1) * v.esize);
    else read_scalar(L, v.tc, v.data + (k - 1) * v.esize);
    lua_rawseti(L, -2, k - i + 1);
  }
}

// The string of a 'c' array up to the first NUL.
size_t c_value_len(const View& v) {
  const void* nul = std::memchr(v.data, 0, v.length);
  return nul ? static_cast<size_t>(static_cast<const char*>(nul) - v.data) : v.length;
}

// ---- methods ----

// a:totable([i [, j]]) -> the elements i..j as a table (Python's a[i-1:j];
// j is clamped to the length).
int view_totable(lua_State* L) {
  View* v = check_view(L, 1);
  lua_Integer n = static_cast<lua_Integer>(v->length);
  lua_Integer i = luaL_optinteger(L, 2, 1);
  lua_Integer j = luaL_optinteger(L, 3, n);
  if (i < 1) i = 1;
  if (j > n) j = n;
  push_range(L, *v, i, j);
  return 1;
}

// v:get_lock() -> the lock given with lock= (or made by lock=true).
int view_get_lock(lua_State* L) {
  check_view(L, 1);
  if (lua_getiuservalue(L, 1, 1) == LUA_TNIL) {
    return luaL_error(L, "get_lock: this object has no lock (made by RawValue/RawArray or with lock=false)");
  }
  return 1;
}

// v:get_obj() -> the same shared memory without the lock (a raw view).
int view_get_obj(lua_State* L) {
  View* v = check_view(L, 1);
  View* r = new_view(L, v->is_array ? kArray : kValue);
  *r = *v;
  return 1;
}

// v:acquire(...)/v:release(): forwarded to the lock (Python's
// SynchronizedBase).
int view_forward(lua_State* L, const char* method) {
  check_view(L, 1);
  int n = lua_gettop(L);
  if (lua_getiuservalue(L, 1, 1) == LUA_TNIL) return luaL_error(L, "%s: this object has no lock", method);
  lua_getfield(L, -1, method);
  lua_insert(L, -2);
  for (int i = 2; i <= n; ++i) lua_pushvalue(L, i);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L) - n;
}
int view_acquire(lua_State* L) { return view_forward(L, "acquire"); }
int view_release(lua_State* L) { return view_forward(L, "release"); }
int view_guard(lua_State* L) {
  check_view(L, 1);
  if (lua_getiuservalue(L, 1, 1) == LUA_TNIL) return luaL_error(L, "guard: this object has no lock");
  lua_replace(L, 1);
  lua_settop(L, 1);
  return object_guard(L);
}

// Looks k up in the methods table (upvalue 1).
int method_or_nil(lua_State* L, int key) {
  lua_pushvalue(L, key);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

// Array.__index: a[i] (nil outside 1..#a), a.value / a.raw on 'c' arrays,
// methods.
int array_index(lua_State* L) {
  View* v = check_view(L, 1);
  int isint = 0;
  lua_Integer i = lua_tointegerx(L, 2, &isint);
  if (isint && lua_type(L, 2) == LUA_TNUMBER) {
    if (i < 1 || static_cast<uint64_t>(i) > v->length) {
      lua_pushnil(L);
    } else {
      read_elem(L, *v, static_cast<uint64_t>(i - 1));
    }
    return 1;
  }
  if (v->tc == 'c' && lua_type(L, 2) == LUA_TSTRING) {
    const char* k = lua_tostring(L, 2);
    if (std::strcmp(k, "value") == 0) {
      lua_pushlstring(L, v->data, c_value_len(*v));
      return 1;
    }
    if (std::strcmp(k, "raw") == 0) {
      lua_pushlstring(L, v->data, v->length);
      return 1;
    }
  }
  return method_or_nil(L, 2);
}

// Array.__newindex: a[i] = x for 1 <= i <= #a; a.value / a.raw on 'c'.
int array_newindex(lua_State* L) {
  View* v = check_view(L, 1);
  int isint = 0;
  lua_Integer i = lua_tointegerx(L, 2, &isint);
  if (isint && lua_type(L, 2) == LUA_TNUMBER) {
    if (i < 1 || static_cast<uint64_t>(i) > v->length) {
      return luaL_error(L, "Array index %I out of range (length %I)", i, static_cast<lua_Integer>(v->length));
    }
    write_elem(L, *v, static_cast<uint64_t>(i - 1), 3, "Array");
    return 0;
  }
  if (v->tc == 'c' && lua_type(L, 2) == LUA_TSTRING) {
    const char* k = lua_tostring(L, 2);
    bool is_value = std::strcmp(k, "value") == 0;
    if (is_value || std::strcmp(k, "raw") == 0) {
      size_t len;
      const char* s = luaL_checklstring(L, 3, &len);
      if (len > v->length) return luaL_error(L, "Array.%s: byte string too long (%d > %d)", k, static_cast<int>(len), static_cast<int>(v->length));
      std::memcpy(v->data, s, len);
      if (is_value && len < v->length) v->data[len] = '\0';
      return 0;
    }
  }
  luaL_tolstring(L, 2, nullptr);
  return luaL_error(L, "cannot set field '%s' of an Array", lua_tostring(L, -1));
}

int array_len(lua_State* L) {
  lua_pushinteger(L, static_cast<lua_Integer>(check_view(L, 1)->length));
  return 1;
}

// tostring(a): the contents like repr ({1, 2, 3}); a 'c' array shows its
// raw bytes as a quoted string.
int array_tostring(lua_State* L) {
  View* v = check_view(L, 1);
  if (v->tc == 'c') {
    lua_pushlstring(L, v->data, v->length);
  } else {
    push_range(L, *v, 1, static_cast<lua_Integer>(v->length));
  }
  int t = lua_gettop(L);
  return run_guarded(L, [&] {
    std::string s = repr_value(L, t);
    lua_pushlstring(L, s.data(), s.size());
    return 1;
  });
}

// Value.__index: v.value, a struct's fields, methods.
int value_index(lua_State* L) {
  View* v = check_view(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char* k = lua_tostring(L, 2);
    if (std::strcmp(k, "value") == 0) {
      read_elem(L, *v, 0);
      return 1;
    }
    if (const Field* f = find_field(*v, k)) {
      read_scalar(L, f->tc, v->data + f->offset);
      return 1;
    }
  }
  return method_or_nil(L, 2);
}

int value_newindex(lua_State* L) {
  View* v = check_view(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char* k = lua_tostring(L, 2);
    if (std::strcmp(k, "value") == 0) {
      write_elem(L, *v, 0, 3, "Value.value");
      return 0;
    }
    if (const Field* f = find_field(*v, k)) {
      write_scalar(L, f->tc, v->data + f->offset, 3, k);
      return 0;
    }
  }
  luaL_tolstring(L, 2, nullptr);
  return luaL_error(L, "cannot set field '%s' of a Value", lua_tostring(L, -1));
}

// tostring(v): Value('i', 5) (RawValue('i', 5) without a lock).
int value_tostring(lua_State* L) {
  View* v = check_view(L, 1);
  bool has_lock = lua_getiuservalue(L, 1, 1) != LUA_TNIL;
  lua_pop(L, 1);
  read_elem(L, *v, 0);
  int t = lua_gettop(L);
  char tc = v->tc;
  return run_guarded(L, [&] {
    std::string s = repr_value(L, t);
    std::string out = has_lock ? "Value(" : "RawValue(";
    if (tc == kStructCode) out += "Struct, ";
    else out += std::string("'") + tc + "', ";
    out += s + ")";
    lua_pushlstring(L, out.data(), out.size());
    return 1;
  });
}

// StructRef: one record of a struct Array; fields read and written in place.
int structref_index(lua_State* L) {
  auto* r = static_cast<View*>(luaL_checkudata(L, 1, kStructRef));
  const char* k = luaL_checkstring(L, 2);
  if (const Field* f = find_field(*r, k)) {
    read_scalar(L, f->tc, r->data + f->offset);
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

int structref_newindex(lua_State* L) {
  auto* r = static_cast<View*>(luaL_checkudata(L, 1, kStructRef));
  const char* k = luaL_checkstring(L, 2);
  const Field* f = find_field(*r, k);
  if (!f) return luaL_error(L, "Struct has no field '%s'", k);
  write_scalar(L, f->tc, r->data + f->offset, 3, k);
  return 0;
}

int structref_tostring(lua_State* L) {
  auto* r = static_cast<View*>(luaL_checkudata(L, 1, kStructRef));
  read_struct(L, *r->layout, r->data);
  int t = lua_gettop(L);
  return run_guarded(L, [&] {
    std::string s = repr_value(L, t);
    lua_pushlstring(L, s.data(), s.size());
    return 1;
  });
}

// ---- construction ----

// Reads a typecode or a Struct at idx.  Returns the typecode (kStructCode
// for a Struct) or raises with luaL_argerror wording.
char check_typecode(lua_State* L, int idx) {
  if (lua_istable(L, idx)) return kStructCode;
  if (lua_type(L, idx) != LUA_TSTRING) luaL_argexpected(L, false, idx, "typecode string or mp.Struct");
  size_t len = 0;
  const char* s = lua_tolstring(L, idx, &len);
  if (len != 1 || typecode_size(s[0]) == 0) {
    lua_pushfstring(L, "bad typecode '%s' (expected one of %s, or an mp.Struct)", s, kTypecodes);
    luaL_argerror(L, idx, lua_tostring(L, -1));
  }
  return s[0];
}

// Builds the layout of the Struct at idx ({{"x", "d"}, {"y", "d"}}).
// Throws Failure on a bad description.
std::shared_ptr<Layout> parse_layout(lua_State* L, int idx) {
  auto layout = std::make_shared<Layout>();
  lua_Integer n = luaL_len(L, idx);
  if (n < 1) throw Failure::plain("Struct: at least one field expected");
  uint32_t off = 0;
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_geti(L, idx, i);
    if (!lua_istable(L, -1)) throw Failure::plain("Struct: field " + std::to_string(i) + " must be {name, typecode}");
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    const char* name = lua_tostring(L, -2);
    const char* tc = lua_tostring(L, -1);
    if (!name || !tc || std::strlen(tc) != 1 || typecode_size(tc[0]) == 0) {
      throw Failure::plain("Struct: field " + std::to_string(i) + " must be {name, typecode} with a typecode of " + kTypecodes);
    }
    if (std::strlen(name) == 0 || std::strlen(name) > 255) {
      throw Failure::plain("Struct: field " + std::to_string(i) + " needs a name of 1 to 255 bytes");
    }
    if (n > 65535) throw Failure::plain("Struct: too many fields");
    uint32_t sz = typecode_size(tc[0]);
    off = (off + sz - 1) / sz * sz;
    layout->fields.push_back(Field{name, tc[0], off});
    off += sz;
    if (sz > layout->align) layout->align = sz;
    lua_pop(L, 3);
  }
  layout->size = (off + layout->align - 1) / layout->align * layout->align;
  return layout;
}

// Lock option at idx: nil/true -> own RLock, false -> none, or a lock.
enum class LockMode { Own, None, Given };
LockMode check_lock_option(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return LockMode::Own;
  if (lua_isboolean(L, idx)) return lua_toboolean(L, idx) ? LockMode::Own : LockMode::None;
  if (test_semlock(L, idx)) return LockMode::Given;
  if (luaL_testudata(L, idx, "mp.Condition")) return LockMode::Given;
  luaL_argexpected(L, false, idx, "boolean or lock");
  return LockMode::None;
}

// Creates the segment and the userdata for `length` elements; leaves the
// view on the stack and returns it.  Raises on failure.
View* make_view(lua_State* L, int tc_idx, char tc, uint64_t length, bool is_array, LockMode mode, int lock_idx) {
  View* v = new_view(L, is_array ? kArray : kValue);
  int vidx = lua_gettop(L);
  run_guarded(L, [&] {
    std::shared_ptr<const Layout> layout;
    uint32_t esize = typecode_size(tc);
    if (tc == kStructCode) {
      auto l = parse_layout(L, tc_idx);
      esize = l->size;
      layout = std::move(l);
    }
    if (length > (uint64_t{1} << 40) / esize) throw Failure::plain("Array: too many elements");
    uint64_t data_off = mode == LockMode::Own ? 64 : 0;
    auto seg = shm::Segment::create(data_off + length * esize);
    if (mode == LockMode::Own) {
      semlock::semlock_at(seg->data())->init(semlock::Kind::RLock, 0);
      push_semlock(L, seg, 0, semlock::Kind::RLock);
      lua_setiuservalue(L, vidx, 1);
    } else if (mode == LockMode::Given) {
      lua_pushvalue(L, lock_idx);
      lua_setiuservalue(L, vidx, 1);
    }
    v->data = static_cast<char*>(seg->data()) + data_off;
    v->offset = data_off;
    v->length = length;
    v->tc = tc;
    v->esize = esize;
    v->is_array = is_array;
    v->layout = std::move(layout);
    v->seg = std::move(seg);
    return 0;
  });
  return v;
}

// core.Value(tc, [init], lock) / core.RawValue(tc, [init])
int new_value(lua_State* L, bool raw) {
  char tc = check_typecode(L, 1);
  LockMode mode = raw ? LockMode::None : check_lock_option(L, 3);
  View* v = make_view(L, 1, tc, 1, false, mode, 3);
  if (!lua_isnoneornil(L, 2)) write_elem(L, *v, 0, 2, raw ? "RawValue" : "Value");
  return 1;
}
int core_value(lua_State* L) { return new_value(L, false); }
int core_raw_value(lua_State* L) { return new_value(L, true); }

// core.Array(tc, size_or_sequence, lock) / core.RawArray(tc, size_or_sequence)
int new_array(lua_State* L, bool raw) {
  const char* what = raw ? "RawArray" : "Array";
  char tc = check_typecode(L, 1);
  uint64_t n = 0;
  int init = lua_type(L, 2);
  if (init == LUA_TNUMBER) {
    lua_Integer size = luaL_checkinteger(L, 2);
    luaL_argcheck(L, size >= 0, 2, "size must be non-negative");
    n = static_cast<uint64_t>(size);
  } else if (init == LUA_TSTRING) {
    luaL_argcheck(L, tc == 'c' || tc == 'b' || tc == 'B', 2, "a string initialises only 'c', 'b' or 'B' arrays");
    n = lua_rawlen(L, 2);
  } else if (init == LUA_TTABLE || init == LUA_TUSERDATA) {
    lua_Integer len = luaL_len(L, 2);
    n = len > 0 ? static_cast<uint64_t>(len) : 0;
  } else {
    luaL_argexpected(L, false, 2, "size or sequence");
  }
  LockMode mode = raw ? LockMode::None : check_lock_option(L, 3);
  View* v = make_view(L, 1, tc, n, true, mode, 3);
  if (init == LUA_TSTRING) {
    std::memcpy(v->data, lua_tostring(L, 2), n);
  } else if (init != LUA_TNUMBER) {
    for (uint64_t i = 0; i < n; ++i) {
      lua_geti(L, 2, static_cast<lua_Integer>(i + 1));
      write_elem(L, *v, i, -1, what);
      lua_pop(L, 1);
    }
  }
  return 1;
}
int core_array(lua_State* L) { return new_array(L, false); }
int core_raw_array(lua_State* L) { return new_array(L, true); }

// core.synchronized(obj [, lock]) -> the same memory with a lock (a new
// RLock when none is given).
int core_synchronized(lua_State* L) {
  View* v = check_view(L, 1);
  bool given = !lua_isnoneornil(L, 2);
  if (given) luaL_argexpected(L, test_semlock(L, 2) != nullptr, 2, "lock");
  lua_settop(L, 2);
  View* r = new_view(L, v->is_array ? kArray : kValue);
  *r = *v;
  int ridx = lua_gettop(L);
  if (given) {
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, ridx, 1);
    return 1;
  }
  return run_guarded(L, [&] {
    auto seg = shm::Segment::create(sizeof(semlock::SemLock));
    semlock::semlock_at(seg->data())->init(semlock::Kind::RLock, 0);
    push_semlock(L, std::move(seg), 0, semlock::Kind::RLock);
    lua_setiuservalue(L, ridx, 1);
    lua_settop(L, ridx);
    return 1;
  });
}

// core.copy(obj) -> a new raw object with a copy of obj's bytes.
int core_copy(lua_State* L) {
  View* v = check_view(L, 1);
  View* r = new_view(L, v->is_array ? kArray : kValue);
  return run_guarded(L, [&] {
    auto seg = shm::Segment::create(v->length * v->esize);
    std::memcpy(seg->data(), v->data, v->length * v->esize);
    r->data = static_cast<char*>(seg->data());
    r->offset = 0;
    r->length = v->length;
    r->tc = v->tc;
    r->esize = v->esize;
    r->is_array = v->is_array;
    r->layout = v->layout;
    r->seg = std::move(seg);
    return 1;
  });
}

// ---- crossing processes ----
//
// Wire form: segment reference (shm::encode_ref), typecode, is_array,
// length (u64), for a Struct its fields (count u16, then name length u8,
// name, typecode), then a lock flag (0 none, 1: u32 length + the lock's
// nested encoding).

void put_u32(std::string& out, uint32_t x) { out.append(reinterpret_cast<const char*>(&x), 4); }

void view_reduce(lua_State* L, int idx, std::string& out, codec::EncodeContext& ctx) {
  auto* v = static_cast<View*>(lua_touserdata(L, idx));
  if (!v || !v->seg) throw Failure::plain("cannot send a closed Value or Array");
  shm::encode_ref(out, *v->seg, v->offset);
  out += v->tc;
  out += static_cast<char>(v->is_array ? 1 : 0);
  out.append(reinterpret_cast<const char*>(&v->length), 8);
  if (v->tc == kStructCode) {
    uint16_t nf = static_cast<uint16_t>(v->layout->fields.size());
    out.append(reinterpret_cast<const char*>(&nf), 2);
    for (const Field& f : v->layout->fields) {
      out += static_cast<char>(f.name.size());
      out += f.name;
      out += f.tc;
    }
  }
  if (lua_getiuservalue(L, idx, 1) == LUA_TNIL) {
    lua_pop(L, 1);
    out += '\0';
    return;
  }
  std::string nested;
  codec::encode(L, lua_gettop(L), nested, ctx);
  lua_pop(L, 1);
  out += '\1';
  put_u32(out, static_cast<uint32_t>(nested.size()));
  out += nested;
}

void view_rebuild_as(lua_State* L, const char* data, size_t len, codec::DecodeContext& ctx) {
  const char* p = data;
  const char* end = data + len;
  uint64_t offset = 0;
  auto seg = shm::decode_ref(&p, end, &offset);
  auto need = [&](size_t n) {
    if (static_cast<size_t>(end - p) < n) throw Failure::plain("corrupt message: truncated Value/Array");
  };
  need(10);
  char tc = p[0];
  bool is_array = p[1] != 0;
  uint64_t length;
  std::memcpy(&length, p + 2, 8);
  p += 10;
  std::shared_ptr<const Layout> layout;
  uint32_t esize = typecode_size(tc);
  if (tc == kStructCode) {
    auto l = std::make_shared<Layout>();
    need(2);
    uint16_t nf;
    std::memcpy(&nf, p, 2);
    p += 2;
    uint32_t off = 0;
    for (uint16_t i = 0; i < nf; ++i) {
      need(1);
      size_t nl = static_cast<uint8_t>(*p++);
      need(nl + 1);
      std::string name(p, nl);
      p += nl;
      char ftc = *p++;
      uint32_t sz = typecode_size(ftc);
      if (sz == 0) throw Failure::plain("corrupt message: bad Struct field");
      off = (off + sz - 1) / sz * sz;
      l->fields.push_back(Field{name, ftc, off});
      off += sz;
      if (sz > l->align) l->align = sz;
    }
    if (nf == 0) throw Failure::plain("corrupt message: empty Struct");
    l->size = (off + l->align - 1) / l->align * l->align;
    esize = l->size;
    layout = std::move(l);
  }
  if (esize == 0 || offset + length * esize > seg->size() || length > (uint64_t{1} << 40)) {
    throw Failure::plain("corrupt message: bad Value/Array");
  }
  need(1);
  char lock_flag = *p++;
  View* v = new_view(L, is_array ? kArray : kValue);
  int vidx = lua_gettop(L);
  v->data = static_cast<char*>(seg->data()) + offset;
  v->offset = offset;
  v->length = length;
  v->tc = tc;
  v->esize = esize;
  v->is_array = is_array;
  v->layout = std::move(layout);
  v->seg = std::move(seg);
  if (lock_flag == 1) {
    need(4);
    uint32_t n;
    std::memcpy(&n, p, 4);
    p += 4;
    need(n);
    codec::decode(L, p, n, ctx);
    lua_setiuservalue(L, vidx, 1);
  }
}

const codec::NativeType kNativeTypes[] = {
    {kValue, view_reduce, view_rebuild_as},
    {kArray, view_reduce, view_rebuild_as},
};

// Metatable `name` with __index/__newindex closures over a methods table.
void make_type(lua_State* L, const char* name, lua_CFunction index, lua_CFunction newindex, lua_CFunction tostring,
               bool with_len) {
  static const luaL_Reg methods[] = {{"totable", view_totable}, {"get_lock", view_get_lock},
                                     {"get_obj", view_get_obj}, {"acquire", view_acquire},
                                     {"release", view_release}, {"guard", view_guard},
                                     {nullptr, nullptr}};
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  if (!with_len) {
    lua_pushnil(L);
    lua_setfield(L, -2, "totable");
  }
  lua_pushcclosure(L, index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, view_gc);
  lua_setfield(L, -2, "__gc");
  if (with_len) {
    lua_pushcfunction(L, array_len);
    lua_setfield(L, -2, "__len");
  }
  lua_pop(L, 1);
}

}  // namespace

bool sharedctypes::byte_span(lua_State* L, int idx, char** data, size_t* size) {
  auto* v = static_cast<View*>(luaL_testudata(L, idx, kArray));
  if (!v || !v->seg || !(v->tc == 'c' || v->tc == 'b' || v->tc == 'B')) return false;
  *data = v->data;
  *size = v->length;
  return true;
}

void open_sharedctypes(lua_State* L) {
  make_type(L, kValue, value_index, value_newindex, value_tostring, false);
  make_type(L, kArray, array_index, array_newindex, array_tostring, true);
  luaL_newmetatable(L, kStructRef);
  lua_pushcfunction(L, structref_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, structref_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, structref_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, view_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  for (const auto& t : kNativeTypes) codec::register_native_type(L, &t);

  static const luaL_Reg funcs[] = {{"Value", core_value},         {"RawValue", core_raw_value},
                                   {"Array", core_array},         {"RawArray", core_raw_array},
                                   {"synchronized", core_synchronized}, {"copy", core_copy},
                                   {nullptr, nullptr}};
  luaL_setfuncs(L, funcs, 0);
}

}  // namespace luamp
