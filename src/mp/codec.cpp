// The codec: Lua values <-> bytes (see codec.h; the wire format and the
// limits are in docs/design/codec.md).  Used by every channel that carries
// values between processes (Queue, Pipe/Connection, Pool, managers, spawned
// Process arguments) and exposed to Lua as mp.dumps / mp.loads /
// mp.register_class.
//
// Per-state data lives in the registry:
//   luamp.codec.types      metatable name -> lightuserdata(NativeType*)
//   luamp.codec.classes    class name -> metatable      (mp.register_class)
//   luamp.codec.classnames metatable -> class name
//   luamp.codec.cnames     C function -> path ("math.sqrt"), built lazily
//   luamp.codec.cfuncs     path -> C function, built with cnames
//   luamp.codec.moduledir  the module directory (userdata, see below)
//   luamp.codec.modulerefs the tables the module directory names
// and mp.dumps keeps its output buffer in an upvalue.
#include "mp/codec.h"

#include <cctype>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "mp/lua_util.h"
#include "mp/repr.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the codec writes fixed-width fields in host order, which must be little-endian"
#endif

namespace luamp::codec {
namespace {

constexpr const char* kTypesKey = "luamp.codec.types";
constexpr const char* kClassesKey = "luamp.codec.classes";
constexpr const char* kClassNamesKey = "luamp.codec.classnames";
constexpr const char* kCNamesKey = "luamp.codec.cnames";
constexpr const char* kCFuncsKey = "luamp.codec.cfuncs";

constexpr uint8_t kVersion = 1;
constexpr int kMaxDepth = kMaxNesting;
// Strings up to this length are interned by Lua (LUAI_MAXSHORTLEN), so one
// pointer means one content: table keys that short are sent once per message.
constexpr size_t kMemoStringMax = 40;
// Bytecode nesting limit (functions inside functions), as Lua's parser has.
constexpr int kMaxProtoDepth = 200;

// Wire tags (docs/design/codec.md).
enum Tag : uint8_t {
  T_NIL = 0x00,
  T_FALSE = 0x01,
  T_TRUE = 0x02,
  T_INT8 = 0x03,
  T_INT16 = 0x04,
  T_INT32 = 0x05,
  T_INT64 = 0x06,
  T_FLOAT = 0x07,
  T_STR = 0x08,      // varint length, bytes: a string longer than 40 bytes, numbered
  T_KEYSTR = 0x09,   // u8 length, bytes: a table key or name, numbered
  T_STRREF = 0x0A,   // varint number of an earlier T_STR or T_KEYSTR
  T_TABLE = 0x0B,    // varint narr, u32 nhash, narr values, nhash key/value pairs
  T_CLASS = 0x0C,    // class name (a string), then a table body
  T_REDUCE = 0x0D,   // class name, then the value __reduce returned
  T_REF = 0x0E,      // varint index of an object already in the message
  T_GLOBALS = 0x0F,  // the receiver's global table
  T_MODULE = 0x10,   // module name: package.loaded[name] (or require(name))
  T_CLASSREF = 0x11, // a registered class itself, by name
  T_LFUNC = 0x12,    // u32 length, bytecode, u8 nups, nups upvalue entries
  T_CFUNC = 0x13,    // path ("math.sqrt")
  T_NATIVE = 0x14,   // type name, varint length, the type's own description
  T_UPREF = 0x15,    // in an upvalue list: varint function index, u8 upvalue number
  T_SHORTSTR = 0x40, // 0x40 | length: a string of 0..40 bytes (the decoder takes up to 63)
};
// Set on the tag of an object or key string that a later T_REF, T_UPREF or
// T_STRREF names, so the receiver keeps only those in its memo.
constexpr uint8_t kMemoFlag = 0x80;

// ---------------------------------------------------------------------------
// A map from non-null pointers to 32-bit values (identity of tables,
// functions, interned strings and upvalues while encoding).  The first
// kInline keys live in the map itself and are scanned in order: most messages
// number a handful of objects, and then the map costs no allocation and no
// zero-fill.  Past that, an open-addressing table on the heap.
class PtrMap {
 public:
  static constexpr size_t kInline = 16;

  PtrMap() = default;
  PtrMap(const PtrMap&) = delete;
  PtrMap& operator=(const PtrMap&) = delete;

  // Returns the value for key, or -1.
  int64_t find(const void* key) const {
    if (slots_.empty()) {
      for (size_t i = 0; i < count_; ++i)
        if (inline_[i].key == key) return inline_[i].val;
      return -1;
    }
    size_t mask = slots_.size() - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
      if (slots_[i].key == key) return slots_[i].val;
      if (slots_[i].key == nullptr) return -1;
    }
  }
  // Inserts or overwrites.
  void put(const void* key, uint32_t val) {
    if (slots_.empty()) {
      for (size_t i = 0; i < count_; ++i) {
        if (inline_[i].key == key) {
          inline_[i].val = val;
          return;
        }
      }
      if (count_ < kInline) {
        inline_[count_++] = {key, val};
        return;
      }
      rehash(4 * kInline);
    } else if ((count_ + 1) * 2 > slots_.size()) {
      rehash(slots_.size() * 2);
    }
    size_t mask = slots_.size() - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
      if (slots_[i].key == key) {
        slots_[i].val = val;
        return;
      }
      if (slots_[i].key == nullptr) {
        slots_[i] = {key, val};
        ++count_;
        return;
      }
    }
  }

  static size_t hash(const void* p) {
    uint64_t x = reinterpret_cast<uintptr_t>(p);
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    return static_cast<size_t>(x ^ (x >> 32));
  }
  // Makes room for `more` keys beyond those present in one rehash.
  void reserve(size_t more) {
    if (slots_.empty() && count_ + more <= kInline) return;
    size_t want = slots_.empty() ? 4 * kInline : slots_.size();
    while ((count_ + more + 1) * 2 > want) want *= 2;
    if (want != slots_.size()) rehash(want);
  }
  size_t size() const { return count_; }
  // True once the keys have moved to the heap table.
  bool large() const { return !slots_.empty(); }
  void clear() {
    slots_.clear();
    count_ = 0;
  }

 private:
  struct Slot {
    const void* key;
    uint32_t val;
  };
  // Moves every key into a zeroed heap table of `size` (a power of two) slots.
  void rehash(size_t size) {
    std::vector<Slot> old(size, Slot{nullptr, 0});
    old.swap(slots_);
    const Slot* from = old.empty() ? inline_ : old.data();
    size_t n = old.empty() ? count_ : old.size();
    // The keys are distinct: each goes to the first free slot of its probe.
    size_t mask = slots_.size() - 1;
    for (size_t i = 0; i < n; ++i) {
      if (from[i].key == nullptr) continue;
      size_t j = hash(from[i].key) & mask;
      while (slots_[j].key != nullptr) j = (j + 1) & mask;
      slots_[j] = from[i];
    }
  }
  Slot inline_[kInline];  // the first count_ are used while slots_ is empty
  std::vector<Slot> slots_;
  size_t count_ = 0;
};

// A vector of trivially copyable T whose first N elements need no heap.
template <class T, size_t N>
class SmallVec {
 public:
  SmallVec() = default;
  SmallVec(const SmallVec&) = delete;
  SmallVec& operator=(const SmallVec&) = delete;

  void push_back(const T& v) {
    if (size_ == cap_) grow();
    data_[size_++] = v;
  }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  size_t size() const { return size_; }

 private:
  void grow() {
    cap_ *= 2;
    std::unique_ptr<T[]> bigger(new T[cap_]);
    std::memcpy(bigger.get(), data_, size_ * sizeof(T));
    heap_ = std::move(bigger);
    data_ = heap_.get();
  }
  T inline_[N];  // the elements while size_ <= N
  T* data_ = inline_;
  size_t size_ = 0;
  size_t cap_ = N;
  std::unique_ptr<T[]> heap_;
};

// Pushes registry[key], creating an empty table there if missing.
void push_registry_table(lua_State* L, const char* key) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, key);
  }
}

bool is_identifier(const char* s, size_t len) {
  if (len == 0 || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (size_t i = 1; i < len; ++i)
    if (!(std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) return false;
  return true;
}

// ---------------------------------------------------------------------------
// The C-function name table.

// Adds every C function field of the table at `idx` as "<prefix><sep><key>"
// (or just "<key>" when prefix is empty) unless the function already has a
// name; every path is added to the path -> function map.
void add_cfunctions(lua_State* L, int idx, const std::string& prefix, char sep, int names, int funcs) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_iscfunction(L, -1)) {
      size_t klen;
      const char* k = lua_tolstring(L, -2, &klen);
      std::string path = prefix.empty() ? std::string(k, klen) : prefix + sep + std::string(k, klen);
      lua_pushvalue(L, -1);
      if (lua_rawget(L, names) == LUA_TNIL) {
        lua_pushvalue(L, -2);
        lua_pushlstring(L, path.data(), path.size());
        lua_rawset(L, names);
      }
      lua_pop(L, 1);
      lua_pushlstring(L, path.data(), path.size());
      lua_pushvalue(L, -2);
      lua_rawset(L, funcs);
    }
    lua_pop(L, 1);
  }
}

// (Re)builds registry cnames/cfuncs from the globals, the standard library,
// the loaded luamp modules, the FILE* methods and the metatables of the
// registered native types.  Stack-neutral.  Runs Lua API calls only (no
// metamethods), so nothing raises except on memory exhaustion.
void build_cfunction_table(lua_State* L) {
  int top = lua_gettop(L);
  lua_newtable(L);
  int names = lua_gettop(L);
  lua_newtable(L);
  int funcs = lua_gettop(L);
  lua_pushglobaltable(L);
  add_cfunctions(L, -1, "", '.', names, funcs);
  lua_pop(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  int loaded = lua_gettop(L);
  static const char* const kStd[] = {"string", "table", "math", "io", "os", "coroutine", "utf8",
                                     "debug", "package", "multiprocessing.core", nullptr};
  for (int i = 0; kStd[i] != nullptr; ++i) {
    if (lua_getfield(L, loaded, kStd[i]) == LUA_TTABLE) add_cfunctions(L, -1, kStd[i], '.', names, funcs);
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, loaded) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
      std::string name = lua_tostring(L, -2);
      if (name.rfind("multiprocessing", 0) == 0) add_cfunctions(L, -1, name, '.', names, funcs);
    }
    lua_pop(L, 1);
  }
  if (luaL_getmetatable(L, LUA_FILEHANDLE) == LUA_TTABLE) {
    add_cfunctions(L, -1, "FILE*", '.', names, funcs);
    if (lua_getfield(L, -1, "__index") == LUA_TTABLE) add_cfunctions(L, -1, "FILE*", '.', names, funcs);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  push_registry_table(L, kTypesKey);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      std::string tname = lua_tostring(L, -2);
      if (luaL_getmetatable(L, tname.c_str()) == LUA_TTABLE) {
        add_cfunctions(L, -1, tname, '.', names, funcs);
        if (lua_getfield(L, -1, "__index") == LUA_TTABLE) add_cfunctions(L, -1, tname, '.', names, funcs);
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, names);
  lua_setfield(L, LUA_REGISTRYINDEX, kCNamesKey);
  lua_pushvalue(L, funcs);
  lua_setfield(L, LUA_REGISTRYINDEX, kCFuncsKey);
  lua_settop(L, top);
}

// Looks the value at `idx` up in the name table registry[table_key]
// (kCNamesKey: C function -> path; kCFuncsKey: path -> C function) and
// pushes what it maps to, or nil.  Rebuilds the tables once when the value
// is not found (a module loaded since).
void push_cfunction_lookup(lua_State* L, const char* table_key, int idx) {
  idx = lua_absindex(L, idx);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (attempt == 1 || lua_getfield(L, LUA_REGISTRYINDEX, table_key) != LUA_TTABLE) {
      if (attempt == 0) lua_pop(L, 1);
      build_cfunction_table(L);
      lua_getfield(L, LUA_REGISTRYINDEX, table_key);
    }
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) != LUA_TNIL) {
      lua_remove(L, -2);
      return;
    }
    lua_pop(L, 2);
  }
  lua_pushnil(L);
}

// Pushes the path of the C function at `idx`, or nil.
void push_cfunction_name(lua_State* L, int idx) { push_cfunction_lookup(L, kCNamesKey, idx); }

// Pushes the C function known by the path at `path_idx` here, or nil.
void push_cfunction_by_name(lua_State* L, int path_idx) { push_cfunction_lookup(L, kCFuncsKey, path_idx); }

// ---------------------------------------------------------------------------
// Encoder.

// Thrown inside the encoder when a value cannot cross; each frame on the way
// out prepends its step, so the path costs nothing until something fails.
struct Unsendable {
  std::string what;  // "a coroutine", or a full message when raw
  std::string path;  // ".cb", "[2]", "(upvalue co)", ...
  bool raw = false;  // what is a native reduce's own message
};

// ---------------------------------------------------------------------------
// The module directory: which tables cross by name (the loaded modules and
// the registered classes), kept per state and rebuilt only when it may have
// changed, so that a small message does not walk package.loaded each time.
// package.loaded gets a __newindex that marks the directory stale when a
// module is added; mp.register_class marks it stale too.  The directory
// keeps the tables it names alive (registry kModuleRefsKey), so a pointer
// in it can never be reused by another table.

constexpr const char* kModuleDirKey = "luamp.codec.moduledir";
constexpr const char* kModuleRefsKey = "luamp.codec.modulerefs";

struct ModuleDirectory {
  PtrMap map;  // table -> kModule or kClass | index in names
  std::vector<std::string> names;
  bool valid = false;
  bool watched = false;  // package.loaded reports additions to us
};

int module_directory_gc(lua_State* L) {
  auto* dir = static_cast<ModuleDirectory*>(lua_touserdata(L, 1));
  if (dir) dir->~ModuleDirectory();
  return 0;
}

// Pushes nothing; returns the state's directory (creating it).
ModuleDirectory* module_directory(lua_State* L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, kModuleDirKey) == LUA_TUSERDATA) {
    auto* dir = static_cast<ModuleDirectory*>(lua_touserdata(L, -1));
    lua_pop(L, 1);
    return dir;
  }
  lua_pop(L, 1);
  void* mem = lua_newuserdatauv(L, sizeof(ModuleDirectory), 0);
  auto* dir = new (mem) ModuleDirectory();
  lua_newtable(L);
  lua_pushcfunction(L, module_directory_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, kModuleDirKey);
  return dir;
}

void invalidate_module_directory(lua_State* L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, kModuleDirKey) == LUA_TUSERDATA)
    static_cast<ModuleDirectory*>(lua_touserdata(L, -1))->valid = false;
  lua_pop(L, 1);
}

// __newindex of package.loaded: store, and mark the directory stale.
int loaded_newindex(lua_State* L) {
  lua_settop(L, 3);
  lua_rawset(L, 1);
  invalidate_module_directory(L);
  return 0;
}

class Encoder {
  static constexpr size_t kKeyCacheSize = 64;  // a power of two
  struct KeySlot {
    const char* s;
    uint32_t number;
  };

 public:
  Encoder(lua_State* L, std::string& out, EncodeContext& ctx)
      : L_(L), s_(out), pos_(out.size()), ctx_(ctx) {}

  // Encodes the value at `idx` after the version byte.  On failure restores
  // the stack top and the output size, sets ctx.path to the failing path,
  // and throws Failure.
  void run(int idx) {
    idx = lua_absindex(L_, idx);
    int top = lua_gettop(L_);
    size_t start = pos_;
    try {
      try {
        if (!lua_checkstack(L_, 8)) throw Unsendable{"a value: Lua stack overflow", "", false};
        // A slot for the table that keeps the values __reduce returned alive
        // until the message is done (their identities are in the memo); the
        // table is made by the first __reduce.
        lua_pushnil(L_);
        anchors_ = lua_gettop(L_);
        put_byte(kVersion);
        value(idx);
        s_.resize(pos_);
      } catch (Unsendable& u) {
        std::string path = (ctx_.path.empty() ? "value" : ctx_.path) + u.path;
        if (path.size() > 300) path = path.substr(0, 100) + "..." + path.substr(path.size() - 150);
        ctx_.path = path;
        if (u.raw) throw Failure::plain(u.what + " (at " + path + ")");
        throw Failure::plain("cannot send " + u.what + " (at " + path + ")");
      }
    } catch (...) {
      s_.resize(start);
      lua_settop(L_, top);
      throw;
    }
    lua_settop(L_, top);
  }

 private:
  // --- output -------------------------------------------------------------
  char* room(size_t n) {
    if (s_.size() - pos_ < n) grow(n);
    return &s_[pos_];
  }
  // Out of line: the first growth of a small message's buffer is the only
  // one (256 bytes hold most messages), the others double.
  [[gnu::noinline]] void grow(size_t n) {
    size_t want = pos_ + n;
    size_t cap = s_.size() < 256 ? 256 : s_.size() * 2;
    if (cap < want) cap = want;
    s_.resize(cap);
  }
  void put_byte(uint8_t b) {
    *room(1) = static_cast<char>(b);
    ++pos_;
  }
  void put_bytes(const void* p, size_t n) {
    std::memcpy(room(n), p, n);
    pos_ += n;
  }
  void put_varint(uint64_t v) {
    char* p = room(10);
    size_t i = 0;
    while (v >= 0x80) {
      p[i++] = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    p[i++] = static_cast<char>(v);
    pos_ += i;
  }
  void put_u32_at(size_t at, uint32_t v) { std::memcpy(&s_[at], &v, 4); }
  size_t reserve_u32() {
    room(4);
    size_t at = pos_;
    pos_ += 4;
    return at;
  }

  // --- errors -------------------------------------------------------------
  [[noreturn]] static void fail(std::string what) { throw Unsendable{std::move(what), "", false}; }

  // The path step for the table key at stack index k.
  std::string key_step(int k) {
    switch (lua_type(L_, k)) {
      case LUA_TSTRING: {
        size_t len;
        const char* str = lua_tolstring(L_, k, &len);
        if (is_identifier(str, len)) return "." + std::string(str, len);
        return "[" + repr_value(L_, k) + "]";
      }
      case LUA_TNUMBER:
      case LUA_TBOOLEAN: return "[" + repr_value(L_, k) + "]";
      default: return std::string("[<") + luaL_typename(L_, k) + ">]";
    }
  }

  // --- values -------------------------------------------------------------
  void value(int idx) { value(idx, lua_type(L_, idx)); }
  // The same, when the caller already knows the type (lua_rawgeti says it).
  void value(int idx, int type) {
    switch (type) {
      case LUA_TNIL: put_byte(T_NIL); return;
      case LUA_TBOOLEAN: put_byte(lua_toboolean(L_, idx) ? T_TRUE : T_FALSE); return;
      case LUA_TNUMBER: {
        if (lua_isinteger(L_, idx)) {
          integer(lua_tointeger(L_, idx));
        } else {
          double d = lua_tonumber(L_, idx);
          char* p = room(9);
          p[0] = static_cast<char>(T_FLOAT);
          std::memcpy(p + 1, &d, 8);
          pos_ += 9;
        }
        return;
      }
      case LUA_TSTRING: string(idx); return;
      case LUA_TTABLE: table(idx); return;
      case LUA_TFUNCTION:
        if (lua_iscfunction(L_, idx)) {
          cfunction(idx);
        } else {
          lfunction(idx);
        }
        return;
      case LUA_TUSERDATA: userdata(idx); return;
      case LUA_TLIGHTUSERDATA: fail("a light userdata");
      case LUA_TTHREAD: fail("a coroutine");
      default: fail(std::string("a ") + luaL_typename(L_, idx));
    }
  }

  void integer(lua_Integer v) {
    char* p = room(9);
    if (v >= INT8_MIN && v <= INT8_MAX) {
      p[0] = static_cast<char>(T_INT8);
      p[1] = static_cast<char>(static_cast<int8_t>(v));
      pos_ += 2;
    } else if (v >= INT16_MIN && v <= INT16_MAX) {
      int16_t x = static_cast<int16_t>(v);
      p[0] = static_cast<char>(T_INT16);
      std::memcpy(p + 1, &x, 2);
      pos_ += 3;
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      int32_t x = static_cast<int32_t>(v);
      p[0] = static_cast<char>(T_INT32);
      std::memcpy(p + 1, &x, 4);
      pos_ += 5;
    } else {
      int64_t x = v;
      p[0] = static_cast<char>(T_INT64);
      std::memcpy(p + 1, &x, 8);
      pos_ += 9;
    }
  }

  // A string value: short ones inline; longer ones (not interned by Lua)
  // are numbered by identity, so the same string object twice is sent once.
  void string(int idx) {
    size_t len;
    const char* s = lua_tolstring(L_, idx, &len);
    if (len <= kMemoStringMax) {
      char* p = room(1 + len);
      p[0] = static_cast<char>(T_SHORTSTR | len);
      std::memcpy(p + 1, s, len);
      pos_ += 1 + len;
      return;
    }
    if (string_ref(s)) return;
    put_byte(T_STR);
    put_varint(len);
    put_bytes(s, len);
  }

  // Emits T_STRREF for a string already numbered (flagging its first
  // appearance) and returns true; else numbers the one about to be written.
  // A small direct-mapped cache by pointer sits in front of strings_: the
  // records of a message repeat the same few keys.  It is cleared by the
  // message's first numbered string, so a message without any does not pay
  // for that.
  bool string_ref(const char* s) {
    if (!key_cache_ready_) {
      std::memset(key_cache_, 0, sizeof key_cache_);
      key_cache_ready_ = true;
    }
    KeySlot& slot = key_cache_[(reinterpret_cast<uintptr_t>(s) >> 4) & (kKeyCacheSize - 1)];
    if (slot.s == s) {
      put_string_ref(slot.number);
      return true;
    }
    return string_ref_slow(s, slot);
  }
  void put_string_ref(uint32_t number) {
    s_[string_pos_[number]] |= static_cast<char>(kMemoFlag);
    char* p = room(6);
    p[0] = static_cast<char>(T_STRREF);
    size_t i = 1;
    while (number >= 0x80) {
      p[i++] = static_cast<char>((number & 0x7f) | 0x80);
      number >>= 7;
    }
    p[i++] = static_cast<char>(number);
    pos_ += i;
  }
  // string_ref for a string not in the cache slot it maps to.
  [[gnu::noinline]] bool string_ref_slow(const char* s, KeySlot& slot) {
    int64_t found = strings_.find(s);
    if (found >= 0) {
      slot = {s, static_cast<uint32_t>(found)};
      put_string_ref(static_cast<uint32_t>(found));
      return true;
    }
    uint32_t number = static_cast<uint32_t>(string_pos_.size());
    strings_.put(s, number);
    slot = {s, number};
    string_pos_.push_back(pos_);
    return false;
  }

  // A table key or a name: strings up to kMemoStringMax bytes are numbered
  // in order of first appearance; a repeat is sent as T_STRREF and flags the
  // first appearance (kMemoFlag) so the receiver remembers that one.
  void key_string(int idx) {
    size_t len;
    const char* s = lua_tolstring(L_, idx, &len);
    if (len > kMemoStringMax) {
      string(idx);
      return;
    }
    if (string_ref(s)) return;
    char* p = room(2 + len);
    p[0] = static_cast<char>(T_KEYSTR);
    p[1] = static_cast<char>(len);
    std::memcpy(p + 2, s, len);
    pos_ += 2 + len;
  }

  // Emits a reference if the object was seen (returns true).
  bool reference(const void* p) {
    int64_t found = objects_.find(p);
    if (found < 0) return false;
    uint32_t v = static_cast<uint32_t>(found);
    if (v & kPending) fail("an object whose __reduce result contains the object itself");
    s_[object_pos_[v]] |= static_cast<char>(kMemoFlag);
    put_byte(T_REF);
    put_varint(v);
    return true;
  }
  // True while package.loaded[name] is still the table p.
  bool still_loaded(const void* p, const std::string& name) {
    luaL_getsubtable(L_, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushlstring(L_, name.data(), name.size());
    lua_rawget(L_, -2);
    bool same = lua_topointer(L_, -1) == p;
    lua_pop(L_, 2);
    return same;
  }
  // Numbers the object whose tag is about to be written at pos_.
  uint32_t remember(const void* p) {
    uint32_t i = static_cast<uint32_t>(object_pos_.size());
    if (i >= kClass) fail("a message with more than 2^29 tables and functions");
    objects_.put(p, i);
    object_pos_.push_back(pos_);
    return i;
  }

  void enter() {
    if (++depth_ > kMaxDepth) fail("a value nested more than " + std::to_string(kMaxDepth) + " levels deep");
    if (!lua_checkstack(L_, 10)) fail("a value: Lua stack overflow");
  }
  void leave() { --depth_; }

  // Emits a loaded module (package.loaded) or a registered class by name
  // (returns true), so a module (an upvalue `mp`, say) or a class crosses
  // by name.  They are looked up in the state's module directory, rebuilt
  // only when a module or class was added; a message looks at it only
  // for a table it has not numbered yet, so a table that crossed by value
  // stays a reference to that value.
  bool named(const void* p) {
    if (dir_ == nullptr) {
      dir_ = module_directory(L_);
      if (!dir_->valid) rebuild_directory(dir_);
    }
    int64_t found = dir_->map.find(p);
    if (found < 0) return false;
    uint32_t v = static_cast<uint32_t>(found);
    const std::string& name = dir_->names[v & ~(kModule | kClass)];
    if ((v & kModule) && !still_loaded(p, name)) {
      // Unloaded since the directory was built (package.loaded[name] =
      // nil does not pass through __newindex): no longer a module, so it
      // crosses by value; the directory is rebuilt for the next message.
      invalidate_module_directory(L_);
      return false;
    }
    put_byte((v & kModule) ? T_MODULE : T_CLASSREF);
    lua_pushlstring(L_, name.data(), name.size());
    key_string(-1);
    lua_pop(L_, 1);
    return true;
  }

  void rebuild_directory(ModuleDirectory* dir) {
    dir->map.clear();
    dir->names.clear();
    luaL_getsubtable(L_, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    int loaded = lua_gettop(L_);
    // Watch package.loaded for additions, unless someone else set its metatable.
    if (!dir->watched && !lua_getmetatable(L_, loaded)) {
      lua_newtable(L_);
      lua_pushcfunction(L_, loaded_newindex);
      lua_setfield(L_, -2, "__newindex");
      lua_setmetatable(L_, loaded);
      dir->watched = true;
    } else if (!dir->watched) {
      lua_pop(L_, 1);  // a foreign metatable: rebuild every time
    }
    push_registry_table(L_, kClassNamesKey);
    lua_newtable(L_);  // the references that keep the named tables alive
    int refs = lua_gettop(L_);
    lua_Integer nrefs = 0;
    for (uint32_t bit : {kModule, kClass}) {
      lua_pushnil(L_);
      while (lua_next(L_, bit == kModule ? loaded : refs - 1) != 0) {
        int name = bit == kModule ? -2 : -1, obj = bit == kModule ? -1 : -2;
        if (lua_type(L_, name) == LUA_TSTRING && lua_istable(L_, obj) && lua_topointer(L_, obj) != globals_) {
          dir->map.put(lua_topointer(L_, obj), bit | static_cast<uint32_t>(dir->names.size()));
          dir->names.emplace_back(lua_tostring(L_, name));
          lua_pushvalue(L_, obj);
          lua_rawseti(L_, refs, ++nrefs);
        }
        lua_pop(L_, 1);
      }
    }
    lua_setfield(L_, LUA_REGISTRYINDEX, kModuleRefsKey);
    lua_pop(L_, 2);
    dir->valid = dir->watched;
  }

  // Out of line, as lfunction and userdata: value() stays small for scalars.
  [[gnu::noinline]] void table(int idx) {
    idx = lua_absindex(L_, idx);
    const void* p = lua_topointer(L_, idx);
    if (globals_ == nullptr) {  // the first table of the message
      lua_pushglobaltable(L_);
      globals_ = lua_topointer(L_, -1);
      lua_pop(L_, 1);
    }
    if (p == globals_) {
      put_byte(T_GLOBALS);
      return;
    }
    if (reference(p) || named(p)) return;
    enter();
    if (lua_getmetatable(L_, idx)) {
      int mt = lua_gettop(L_);
      push_registry_table(L_, kClassNamesKey);
      int classnames = mt + 1;
      lua_pushvalue(L_, mt);
      if (lua_rawget(L_, classnames) != LUA_TSTRING) {
        lua_pop(L_, 1);
        std::string what = "a table with an unregistered metatable";
        if (lua_getfield(L_, mt, "__name") == LUA_TSTRING) what += std::string(" '") + lua_tostring(L_, -1) + "'";
        fail(what + " (see mp.register_class)");
      }
      int name = lua_gettop(L_);
      if (lua_getfield(L_, mt, "__reduce") == LUA_TFUNCTION) {
        uint32_t me = remember(p);
        objects_.put(p, me | kPending);
        put_byte(T_REDUCE);
        key_string(name);
        lua_pushvalue(L_, idx);
        if (lua_pcall(L_, 1, 1, 0) != LUA_OK) {
          std::string msg = lua_type(L_, -1) == LUA_TSTRING ? lua_tostring(L_, -1) : "(error object)";
          fail(std::string("an object: its __reduce failed: ") + msg);
        }
        // Anchor the result so its identity stays unique while encoding.
        if (nanchors_ == 0) {
          lua_newtable(L_);
          lua_replace(L_, anchors_);
        }
        lua_pushvalue(L_, -1);
        lua_rawseti(L_, anchors_, ++nanchors_);
        try {
          value(lua_gettop(L_));
        } catch (Unsendable& u) {
          u.path.insert(0, "(reduced)");
          throw;
        }
        objects_.put(p, me);
        lua_settop(L_, mt - 1);
        leave();
        return;
      }
      lua_pop(L_, 1);
      remember(p);
      put_byte(T_CLASS);
      key_string(name);
      lua_settop(L_, mt - 1);
    } else {
      remember(p);
      put_byte(T_TABLE);
    }
    table_body(idx);
    leave();
  }

  // narr values for t[1..narr] (narr = the border #t), then the remaining
  // key/value pairs, their u32 count patched in afterwards.  One lua_next
  // walk serves both: it gives the array part first, in order, so the
  // positional values come from the walk while its keys are 1, 2, 3, ...;
  // any it does not give in that order (holes, elements kept in the hash
  // part) are read with lua_rawgeti, and the walk goes on with the pairs,
  // skipping the keys 1..narr already sent.
  void table_body(int idx) {
    lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L_, idx));
    put_varint(static_cast<uint64_t>(n));
    size_t count_at = reserve_u32();
    lua_Integer i = 1;
    int key = 0;
    bool as_key = false;
    try {
      int kslot = lua_gettop(L_) + 1;  // where lua_next leaves the key
      int vslot = kslot + 1;           // and the value
      lua_pushnil(L_);
      int more = lua_next(L_, idx);
      for (; more && i <= n && lua_isinteger(L_, kslot) && lua_tointeger(L_, kslot) == i; ++i) {
        int type = lua_type(L_, vslot);
        if (type == LUA_TTABLE && i == 1 && n > 1) reserve_objects(n);
        value(vslot, type);
        lua_pop(L_, 1);
        more = lua_next(L_, idx);
      }
      int slot = more ? vslot + 1 : kslot;  // where lua_rawgeti leaves t[i]
      for (; i <= n; ++i) {
        int type = lua_rawgeti(L_, idx, i);
        if (type == LUA_TTABLE && i == 1 && n > 1) reserve_objects(n);
        value(slot, type);
        lua_pop(L_, 1);
      }
      uint32_t count = 0;
      for (; more; more = lua_next(L_, idx)) {
        key = kslot;
        int kt = lua_type(L_, key);
        if (kt == LUA_TSTRING) {
          key_string(key);
        } else {
          if (kt == LUA_TNUMBER) {
            // A float key is never integral (Lua normalizes those to
            // integers), so this is true only for integer keys.
            int isint;
            lua_Integer k = lua_tointegerx(L_, key, &isint);
            if (isint && k >= 1 && k <= n) {
              lua_pop(L_, 1);
              continue;
            }
          }
          as_key = true;
          value(key);
          as_key = false;
        }
        value(vslot);
        lua_pop(L_, 1);
        if (++count == UINT32_MAX) fail("a table with 2^32 or more keys");
      }
      put_u32_at(count_at, count);
    } catch (Unsendable& u) {
      if (key == 0) {
        u.path.insert(0, "[" + std::to_string(i) + "]");
      } else if (as_key) {
        u.path.insert(0, "(key)");
      } else {
        u.path.insert(0, key_step(key));
      }
      throw;
    }
  }
  // A list of tables (records, rows): number them all without rehashing the
  // object map again and again on the way.
  void reserve_objects(lua_Integer n) {
    objects_.reserve(static_cast<size_t>(n < kReserveMax ? n : kReserveMax));
  }

  static int dump_writer(lua_State*, const void* p, size_t n, void* ud) {
    Encoder* e = static_cast<Encoder*>(ud);
    e->put_bytes(p, n);
    return 0;
  }

  [[gnu::noinline]] void lfunction(int idx) {
    idx = lua_absindex(L_, idx);
    const void* p = lua_topointer(L_, idx);
    if (reference(p)) return;
    enter();
    uint32_t me = remember(p);
    put_byte(T_LFUNC);
    size_t len_at = reserve_u32();
    size_t start = pos_;
    lua_pushvalue(L_, idx);
    int rc = lua_dump(L_, dump_writer, this, 0);
    lua_pop(L_, 1);
    if (rc != 0) fail("a function: lua_dump failed");
    if (pos_ - start > UINT32_MAX) fail("a function whose bytecode is larger than 4 GiB");
    put_u32_at(len_at, static_cast<uint32_t>(pos_ - start));
    int nups = 0;
    while (lua_getupvalue(L_, idx, nups + 1) != nullptr) {
      lua_pop(L_, 1);
      ++nups;
    }
    put_byte(static_cast<uint8_t>(nups));  // Lua allows at most 255
    int i = 1;
    try {
      for (; i <= nups; ++i) {
        const void* id = lua_upvalueid(L_, idx, i);
        int64_t shared = upvalues_.find(id);
        if (shared >= 0) {
          const UpvalueOwner& owner = upvalue_owners_[static_cast<size_t>(shared)];
          s_[object_pos_[owner.function]] |= static_cast<char>(kMemoFlag);
          put_byte(T_UPREF);
          put_varint(owner.function);
          put_byte(owner.number);
          continue;
        }
        upvalues_.put(id, static_cast<uint32_t>(upvalue_owners_.size()));
        upvalue_owners_.push_back({me, static_cast<uint8_t>(i)});
        lua_getupvalue(L_, idx, i);
        value(lua_gettop(L_));
        lua_pop(L_, 1);
      }
    } catch (Unsendable& u) {
      const char* name = lua_getupvalue(L_, idx, i);
      std::string n = name && *name ? name : "?";
      if (name != nullptr) lua_pop(L_, 1);
      u.path.insert(0, "(upvalue " + n + ")");
      throw;
    }
    leave();
  }

  void cfunction(int idx) {
    push_cfunction_name(L_, idx);
    if (lua_isnil(L_, -1)) fail("a C function luamp does not know");
    put_byte(T_CFUNC);
    key_string(-1);
    lua_pop(L_, 1);
  }

  [[gnu::noinline]] void userdata(int idx) {
    idx = lua_absindex(L_, idx);
    const void* p = lua_topointer(L_, idx);
    if (reference(p)) return;
    if (!lua_getmetatable(L_, idx)) fail("a userdata without a metatable");
    int mt = lua_gettop(L_);
    const NativeType* type = nullptr;
    if (lua_getfield(L_, mt, "__name") == LUA_TSTRING) {
      push_registry_table(L_, kTypesKey);
      lua_pushvalue(L_, -2);
      lua_rawget(L_, -2);
      type = static_cast<const NativeType*>(lua_touserdata(L_, -1));
      lua_pop(L_, 2);
      if (type != nullptr) {
        luaL_getmetatable(L_, type->metatable_name);
        if (!lua_rawequal(L_, -1, mt)) type = nullptr;
        lua_pop(L_, 1);
      }
    }
    if (type == nullptr) {
      std::string what = "a userdata";
      if (lua_type(L_, mt + 1) == LUA_TSTRING) what += std::string(" of type '") + lua_tostring(L_, mt + 1) + "'";
      fail(what);
    }
    enter();
    remember(p);
    put_byte(T_NATIVE);
    key_string(mt + 1);
    lua_settop(L_, mt - 1);
    scratch_.clear();
    try {
      type->reduce(L_, idx, scratch_, ctx_);
    } catch (Failure& f) {
      if (f.cls.empty()) throw Unsendable{f.message, "", true};
      throw;
    }
    put_varint(scratch_.size());
    put_bytes(scratch_.data(), scratch_.size());
    leave();
  }

  // Object map values: an index, flagged kPending while the object's
  // __reduce runs.  Module directory values: kModule or kClass | an index in
  // its names (which is why a message numbers fewer than 2^29 objects).
  static constexpr lua_Integer kReserveMax = 1 << 16;  // object map hint, in entries
  static constexpr uint32_t kPending = 0x80000000u;
  static constexpr uint32_t kModule = 0x40000000u;
  static constexpr uint32_t kClass = 0x20000000u;

  lua_State* L_;
  std::string& s_;
  size_t pos_;
  EncodeContext& ctx_;
  const void* globals_ = nullptr;
  int anchors_ = 0;
  lua_Integer nanchors_ = 0;
  int depth_ = 0;
  PtrMap objects_;
  SmallVec<size_t, 16> object_pos_;  // where each object's tag is
  PtrMap strings_;
  SmallVec<size_t, 16> string_pos_;  // where each key string's tag is
  KeySlot key_cache_[kKeyCacheSize];  // string -> number, a subset of strings_
  bool key_cache_ready_ = false;      // key_cache_ is cleared
  // The first function (and its upvalue number) each upvalue was sent with.
  struct UpvalueOwner {
    uint32_t function;
    uint8_t number;
  };
  PtrMap upvalues_;  // upvalue id -> index in upvalue_owners_
  SmallVec<UpvalueOwner, 8> upvalue_owners_;
  ModuleDirectory* dir_ = nullptr;  // the state's, fetched by the first table
  std::string scratch_;
};

// ---------------------------------------------------------------------------
// Bytecode check: walks a lua_dump image (Lua 5.4 format, lundump.c) and
// checks that every count and length fits in the bytes that follow, that
// nesting is bounded and that the upvalue tables agree, so lua_load never
// allocates from an unchecked length nor writes out of bounds.  It does not
// make the instructions safe to run (see "Trust" in docs/design/codec.md).
class BytecodeCheck {
 public:
  BytecodeCheck(const char* p, size_t n) : p_(reinterpret_cast<const uint8_t*>(p)), end_(p_ + n) {}

  // Returns the number of upvalues of the main function, or throws.
  int run() {
    static const char kHead[] = "\x1bLua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08";
    need(sizeof kHead - 1);
    if (std::memcmp(p_, kHead, sizeof kHead - 1) != 0) bad("bad bytecode header");
    p_ += sizeof kHead - 1;
    need(16);  // LUAC_INT, LUAC_NUM: lua_load checks their values
    p_ += 16;
    int nups = byte();
    int main_ups = function(0);
    if (nups != main_ups) bad("bytecode upvalue count mismatch");
    if (p_ != end_) bad("trailing bytes after bytecode");
    return nups;
  }

 private:
  [[noreturn]] static void bad(const char* why) { throw Failure::plain(std::string("corrupt message: ") + why); }
  void need(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) bad("truncated bytecode");
  }
  int byte() {
    need(1);
    return *p_++;
  }
  // lundump's loadUnsigned: 7-bit groups, most significant first, the last
  // byte has bit 7 set.
  size_t unsigned_(size_t limit) {
    size_t x = 0;
    int b;
    limit >>= 7;
    do {
      b = byte();
      if (x >= limit) bad("integer overflow in bytecode");
      x = (x << 7) | (b & 0x7f);
    } while ((b & 0x80) == 0);
    return x;
  }
  size_t count() { return unsigned_(INT_MAX); }
  void skip(size_t n) {
    need(n);
    p_ += n;
  }
  void str() {
    size_t size = unsigned_(~static_cast<size_t>(0));
    if (size != 0) skip(size - 1);
  }
  // Returns the function's upvalue count.
  int function(int depth) {
    if (depth > kMaxProtoDepth) bad("bytecode nested too deep");
    str();      // source
    count();    // linedefined
    count();    // lastlinedefined
    skip(3);    // numparams, is_vararg, maxstacksize
    size_t n = count();
    if (n > static_cast<size_t>(end_ - p_) / 4) bad("truncated bytecode");
    skip(n * 4);  // code
    n = count();
    for (size_t i = 0; i < n; ++i) {
      switch (byte()) {
        case 0: case 1: case 17: break;  // nil, false, true
        case 3: case 19: skip(8); break;  // integer, float
        case 4: case 20: str(); break;    // short, long string
        default: bad("bad constant in bytecode");
      }
    }
    size_t nups = count();
    if (nups > 255) bad("too many upvalues in bytecode");
    skip(nups * 3);
    n = count();
    for (size_t i = 0; i < n; ++i) function(depth + 1);
    n = count();  // lineinfo
    skip(n);
    n = count();  // abslineinfo
    for (size_t i = 0; i < n; ++i) {
      count();
      count();
    }
    n = count();  // locvars
    for (size_t i = 0; i < n; ++i) {
      str();
      count();
      count();
    }
    n = count();  // upvalue names: lundump writes them without a bound check
    if (n > nups) bad("bytecode upvalue names mismatch");
    for (size_t i = 0; i < n; ++i) str();
    return static_cast<int>(nups);
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

// ---------------------------------------------------------------------------
// Decoder.

class Decoder {
 public:
  Decoder(lua_State* L, const char* data, size_t len, DecodeContext& ctx)
      : L_(L), p_(reinterpret_cast<const uint8_t*>(data)), end_(p_ + len), ctx_(ctx) {}

  // Pushes the decoded value; on failure restores the stack top and rethrows.
  void run() {
    int top = lua_gettop(L_);
    try {
      // The memo slots below come on top of the LUA_MINSTACK free slots
      // that the decoding steps count on between their own checks.
      if (!lua_checkstack(L_, LUA_MINSTACK + 2 + kStackStrings)) throw Failure::plain("corrupt message: Lua stack overflow");
      if (p_ == end_) bad("empty");
      uint8_t version = *p_++;
      if (version != kVersion) bad("unknown version " + std::to_string(version));
      // Stack slots: the object memo and the string memo tables (made when
      // first needed: most messages need neither), then the first
      // kStackStrings memo strings themselves, cheaper to reach than t[i].
      objects_ = top + 1;
      strings_ = top + 2;
      string_slots_ = top + 3;
      lua_settop(L_, top + 2 + static_cast<int>(kStackStrings));
      value();
      if (p_ != end_) bad("trailing bytes");
      lua_replace(L_, objects_);
      lua_settop(L_, objects_);
    } catch (...) {
      lua_settop(L_, top);
      throw;
    }
  }

 private:
  [[noreturn]] static void bad(const std::string& why) { throw Failure::plain("corrupt message: " + why); }
  size_t left() const { return static_cast<size_t>(end_ - p_); }
  void need(size_t n) {
    if (left() < n) bad("truncated");
  }
  uint8_t byte() {
    need(1);
    return *p_++;
  }
  template <class T>
  T fixed() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  uint64_t varint() {
    if (p_ < end_ && *p_ < 0x80) return *p_++;  // one byte: the usual case
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = byte();
      if (shift == 63 && b > 1) bad("varint overflow");
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    bad("varint overflow");
  }
  // A length that must fit in what is left of the message.
  size_t length() {
    uint64_t n = varint();
    if (n > left()) bad("length " + std::to_string(n) + " exceeds the message");
    return static_cast<size_t>(n);
  }

  void enter() {
    if (++depth_ > kMaxDepth) bad("nested more than " + std::to_string(kMaxDepth) + " levels deep");
    if (!lua_checkstack(L_, 10)) bad("Lua stack overflow");
  }
  void leave() { --depth_; }

  // Numbers the next object; returns its 1-based slot in the memo table.
  uint32_t remember_slot() {
    if (nobjects_ == UINT32_MAX) bad("too many objects");
    return ++nobjects_;
  }
  // Keeps the object at idx in the memo when its tag was flagged.
  void set_slot(uint32_t slot, int idx) {
    if (!memo_) return;
    idx = lua_absindex(L_, idx);
    if (!have_objects_) {
      lua_newtable(L_);
      lua_replace(L_, objects_);
      have_objects_ = true;
    }
    lua_pushvalue(L_, idx);
    lua_rawseti(L_, objects_, slot);
  }
  // Pushes memo object number i (0-based), nil if it was not kept.
  int push_object(uint64_t i) {
    if (!have_objects_) {
      lua_pushnil(L_);
      return LUA_TNIL;
    }
    return lua_rawgeti(L_, objects_, static_cast<lua_Integer>(i + 1));
  }

  // Pushes a string value read from a string tag (for names), or throws.
  void name() {
    uint8_t tag = byte();
    if (!string_tag(tag)) bad("expected a name");
  }

  // Handles the string tags; returns false for any other tag.
  bool string_tag(uint8_t tag) {
    if ((tag & 0xC0) == T_SHORTSTR) {
      size_t n = tag & 0x3f;
      need(n);
      lua_pushlstring(L_, reinterpret_cast<const char*>(p_), n);
      p_ += n;
      return true;
    }
    switch (tag) {
      case T_STR:
      case T_STR | kMemoFlag:
      case T_KEYSTR:
      case T_KEYSTR | kMemoFlag: {
        size_t n = (tag & ~kMemoFlag) == T_STR ? length() : byte();
        need(n);
        lua_pushlstring(L_, reinterpret_cast<const char*>(p_), n);
        p_ += n;
        if (nstrings_ == UINT32_MAX) bad("too many strings");
        ++nstrings_;
        if (tag & kMemoFlag) keep_string(nstrings_ - 1);
        return true;
      }
      case T_STRREF: string_ref(); return true;
      default: return false;
    }
  }

  // Keeps the string on top as memo string number i (0-based).
  void keep_string(uint32_t i) {
    lua_pushvalue(L_, -1);
    if (i < kStackStrings) {
      lua_replace(L_, string_slots_ + static_cast<int>(i));
      kept_in_slots_ |= uint64_t{1} << i;
      return;
    }
    if (!have_strings_) {
      lua_newtable(L_);
      lua_replace(L_, strings_);
      have_strings_ = true;
    }
    lua_rawseti(L_, strings_, static_cast<lua_Integer>(i) + 1);
  }
  // After a T_STRREF tag: pushes the memo string it names.
  void string_ref() {
    uint64_t i = varint();
    if (i >= nstrings_) bad("bad string reference");
    if (i < kStackStrings) {
      if (!(kept_in_slots_ & (uint64_t{1} << i))) bad("bad string reference");
      lua_pushvalue(L_, string_slots_ + static_cast<int>(i));
      return;
    }
    if (!have_strings_ || lua_rawgeti(L_, strings_, static_cast<lua_Integer>(i + 1)) != LUA_TSTRING)
      bad("bad string reference");
  }

  void value() {
    uint8_t tag = byte();
    memo_ = false;
    if (tag & kMemoFlag) {
      uint8_t base = tag & ~kMemoFlag;
      if (base == T_TABLE || base == T_CLASS || base == T_REDUCE || base == T_LFUNC || base == T_NATIVE) {
        memo_ = true;
        tag = base;
      }
    }
    switch (tag) {
      case T_NIL: lua_pushnil(L_); return;
      case T_FALSE: lua_pushboolean(L_, 0); return;
      case T_TRUE: lua_pushboolean(L_, 1); return;
      case T_INT8: lua_pushinteger(L_, fixed<int8_t>()); return;
      case T_INT16: lua_pushinteger(L_, fixed<int16_t>()); return;
      case T_INT32: lua_pushinteger(L_, fixed<int32_t>()); return;
      case T_INT64: lua_pushinteger(L_, fixed<int64_t>()); return;
      case T_FLOAT: lua_pushnumber(L_, fixed<double>()); return;
      case T_TABLE: {
        enter();
        lua_Integer narr;
        uint32_t nhash;
        table_sizes(&narr, &nhash);
        create_table(narr, nhash);
        set_slot(remember_slot(), -1);
        table_body(narr, nhash);
        leave();
        return;
      }
      case T_CLASS: {
        enter();
        name();
        push_class(-1);
        lua_remove(L_, -2);
        lua_Integer narr;
        uint32_t nhash;
        table_sizes(&narr, &nhash);
        create_table(narr, nhash);
        set_slot(remember_slot(), -1);
        table_body(narr, nhash);
        lua_insert(L_, -2);
        lua_setmetatable(L_, -2);
        leave();
        return;
      }
      case T_REDUCE: {
        enter();
        uint32_t slot = remember_slot();
        bool memo = memo_;
        name();
        push_class(-1);
        if (lua_getfield(L_, -1, "__rebuild") != LUA_TFUNCTION) {
          throw Failure::plain(std::string("cannot rebuild an object of class '") + lua_tostring(L_, -3) +
                               "': its metatable has __reduce but no __rebuild");
        }
        value();
        if (lua_pcall(L_, 1, 1, 0) != LUA_OK) {
          std::string msg = lua_type(L_, -1) == LUA_TSTRING ? lua_tostring(L_, -1) : "(error object)";
          throw Failure::plain(std::string("cannot rebuild an object of class '") + lua_tostring(L_, -3) +
                               "': " + msg);
        }
        memo_ = memo;
        set_slot(slot, -1);
        lua_replace(L_, -3);
        lua_pop(L_, 1);
        leave();
        return;
      }
      case T_REF: {
        uint64_t i = varint();
        if (i >= nobjects_) bad("bad reference");
        if (push_object(i) == LUA_TNIL)
          bad("reference to an object still being rebuilt");
        return;
      }
      case T_GLOBALS: lua_pushglobaltable(L_); return;
      case T_MODULE: {
        name();
        module();
        return;
      }
      case T_CLASSREF: {
        name();
        push_class(-1);
        lua_remove(L_, -2);
        return;
      }
      case T_LFUNC: lfunction(); return;
      case T_CFUNC: {
        name();
        push_cfunction_by_name(L_, -1);
        if (lua_isnil(L_, -1))
          throw Failure::plain(std::string("cannot rebuild C function '") + lua_tostring(L_, -2) +
                               "': not known in this process");
        lua_remove(L_, -2);
        return;
      }
      case T_NATIVE: native(); return;
      default:
        if (string_tag(tag)) return;
        bad("unknown tag " + std::to_string(tag));
    }
  }

  void table_sizes(lua_Integer* narr, uint32_t* nhash) {
    uint64_t n = varint();
    uint32_t h = fixed<uint32_t>();
    // Every element takes at least one byte, every pair two.
    if (n > left() || n > INT_MAX) bad("array size " + std::to_string(n) + " exceeds the message");
    if (h > left() / 2) bad("hash size " + std::to_string(h) + " exceeds the message");
    *narr = static_cast<lua_Integer>(n);
    *nhash = h;
  }
  // lua_createtable with the sizes as hints, the hash hint capped well below
  // Lua's limit (a bigger table still grows as pairs arrive).
  void create_table(lua_Integer narr, uint32_t nhash) {
    lua_createtable(L_, static_cast<int>(narr), static_cast<int>(nhash < (1u << 26) ? nhash : (1u << 26)));
  }

  // The table is on top of the stack.
  void table_body(lua_Integer narr, uint32_t nhash) {
    int t = lua_gettop(L_);
    for (lua_Integer i = 1; i <= narr; ++i) {
      if (left() > 0 && *p_ == T_NIL) {  // a hole
        ++p_;
        continue;
      }
      value();
      lua_rawseti(L_, t, i);
    }
    for (uint32_t i = 0; i < nhash; ++i) {
      // Keys are mostly strings, which need no check.
      uint8_t tag = left() > 0 ? *p_ : 0;
      if (tag == T_STRREF) {
        ++p_;
        string_ref();
      } else if (tag == T_KEYSTR || tag == (T_KEYSTR | kMemoFlag)) {
        ++p_;
        string_tag(tag);
      } else {
        value();
        int kt = lua_type(L_, -1);
        if (kt == LUA_TNIL) bad("nil table key");
        if (kt == LUA_TNUMBER && !lua_isinteger(L_, -1) && std::isnan(lua_tonumber(L_, -1))) bad("NaN table key");
      }
      value();
      lua_rawset(L_, t);
    }
  }

  // Name on top; replaces it with the registered metatable.
  // A class not registered here is looked for as pickle does: a name
  // "pkg.mod.Class" makes the receiver require "pkg.mod" (then "pkg") once,
  // so that a module that registers its classes when loaded (say, in a
  // spawned child that never ran the main script) provides them.
  void push_class(int name_idx) {
    name_idx = lua_absindex(L_, name_idx);
    push_registry_table(L_, kClassesKey);
    lua_pushvalue(L_, name_idx);
    bool found = lua_rawget(L_, -2) == LUA_TTABLE;
    if (!found) {
      lua_pop(L_, 1);
      size_t len;
      const char* full = lua_tolstring(L_, name_idx, &len);
      for (size_t cut = len; cut > 0 && !found; --cut) {
        if (full[cut - 1] != '.') continue;
        lua_getglobal(L_, "require");
        lua_pushlstring(L_, full, cut - 1);
        if (lua_pcall(L_, 1, 0, 0) != LUA_OK) lua_pop(L_, 1);  // not a module: keep looking
        lua_pushvalue(L_, name_idx);
        found = lua_rawget(L_, -2) == LUA_TTABLE;
        if (!found) lua_pop(L_, 1);
        full = lua_tolstring(L_, name_idx, &len);
      }
      if (!found) lua_pushnil(L_);
    }
    if (!found)
      throw Failure::plain(std::string("cannot rebuild an object of class '") + lua_tostring(L_, name_idx) +
                           "': no class registered under that name (mp.register_class)");
    lua_remove(L_, -2);
  }

  // Name on top; replaces it with package.loaded[name], requiring it if needed.
  void module() {
    luaL_getsubtable(L_, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L_, -2);
    if (lua_rawget(L_, -2) == LUA_TTABLE) {
      lua_replace(L_, -3);
      lua_pop(L_, 1);
      return;
    }
    lua_pop(L_, 2);
    lua_getglobal(L_, "require");
    lua_pushvalue(L_, -2);
    if (lua_pcall(L_, 1, 1, 0) != LUA_OK || !lua_istable(L_, -1)) {
      std::string msg = lua_type(L_, -1) == LUA_TSTRING ? lua_tostring(L_, -1) : "it did not return a table";
      throw Failure::plain(std::string("cannot rebuild a reference to module '") + lua_tostring(L_, -2) +
                           "': " + msg);
    }
    lua_replace(L_, -2);
  }

  struct Reader {
    const char* p;
    size_t n;
  };
  static const char* reader(lua_State*, void* ud, size_t* size) {
    Reader* r = static_cast<Reader*>(ud);
    *size = r->n;
    r->n = 0;
    return *size ? r->p : nullptr;
  }

  void lfunction() {
    enter();
    uint32_t slot = remember_slot();
    bool memo = memo_;
    uint32_t len = fixed<uint32_t>();
    need(len);
    const char* code = reinterpret_cast<const char*>(p_);
    int nups = BytecodeCheck(code, len).run();
    Reader r{code, len};
    if (lua_load(L_, reader, &r, "=(message)", "b") != LUA_OK) {
      std::string msg = lua_type(L_, -1) == LUA_TSTRING ? lua_tostring(L_, -1) : "?";
      bad("bad bytecode: " + msg);
    }
    p_ += len;
    int f = lua_gettop(L_);
    memo_ = memo;
    set_slot(slot, f);
    if (byte() != nups) bad("upvalue count mismatch");
    for (int i = 1; i <= nups; ++i) {
      if (left() > 0 && *p_ == T_UPREF) {
        ++p_;
        uint64_t fi = varint();
        int n = byte();
        if (fi >= nobjects_) bad("bad upvalue reference");
        push_object(fi);  // nil unless flagged
        if (lua_type(L_, -1) != LUA_TFUNCTION || lua_iscfunction(L_, -1) || n < 1 ||
            lua_getupvalue(L_, -1, n) == nullptr)
          bad("bad upvalue reference");
        lua_pop(L_, 1);
        lua_upvaluejoin(L_, f, i, -1, n);
        lua_pop(L_, 1);
        continue;
      }
      value();
      lua_setupvalue(L_, f, i);
    }
    leave();
  }

  void native() {
    enter();
    uint32_t slot = remember_slot();
    bool memo = memo_;
    name();
    push_registry_table(L_, kTypesKey);
    lua_pushvalue(L_, -2);
    lua_rawget(L_, -2);
    const NativeType* type = static_cast<const NativeType*>(lua_touserdata(L_, -1));
    if (type == nullptr)
      throw Failure::plain(std::string("cannot rebuild a '") + lua_tostring(L_, -3) +
                           "': type not known in this process");
    lua_pop(L_, 3);
    size_t len = length();
    const char* data = reinterpret_cast<const char*>(p_);
    p_ += len;
    int top = lua_gettop(L_);
    type->rebuild(L_, data, len, ctx_);
    if (lua_gettop(L_) != top + 1) {
      lua_settop(L_, top);
      throw Failure::plain(std::string("rebuild of '") + type->metatable_name + "' did not push one value");
    }
    memo_ = memo;
    set_slot(slot, -1);
    leave();
  }

  lua_State* L_;
  const uint8_t* p_;
  const uint8_t* end_;
  DecodeContext& ctx_;
  static constexpr uint32_t kStackStrings = 32;  // at most 64 (kept_in_slots_)
  int objects_ = 0;        // stack slot of the object memo table
  bool have_objects_ = false;
  int strings_ = 0;        // stack slot of the memo table of strings kStackStrings and up
  bool have_strings_ = false;
  int string_slots_ = 0;   // first of kStackStrings stack slots for the first strings
  uint64_t kept_in_slots_ = 0;  // bit i: string number i is in its stack slot
  uint32_t nobjects_ = 0;
  uint32_t nstrings_ = 0;
  int depth_ = 0;
  bool memo_ = false;  // the tag being decoded carried kMemoFlag
};

// ---------------------------------------------------------------------------
// Lua bindings.

// mp.dumps's output buffer, kept between calls (upvalue 1 of dumps) so a
// small message costs no allocation.  Buffers that grew past kKeep are
// dropped rather than kept.
struct DumpsBuffer {
  static constexpr size_t kKeep = 64 * 1024;
  std::string out;
  bool busy = false;  // a dumps is using `out` (a nested one makes its own)
};

int dumps_buffer_gc(lua_State* L) {
  auto* b = static_cast<DumpsBuffer*>(lua_touserdata(L, 1));
  if (b) b->~DumpsBuffer();
  return 0;
}

// mp.dumps(v [, name]) -> string.  `name` names v in error paths.
int codec_dumps(lua_State* L) {
  luaL_checkany(L, 1);
  const char* root = luaL_optstring(L, 2, nullptr);
  auto* cache = static_cast<DumpsBuffer*>(lua_touserdata(L, lua_upvalueindex(1)));
  return run_guarded(L, [&] {
    // A dumps nested in a __reduce finds the buffer busy and uses its own.
    std::string own;
    bool reuse = !cache->busy;
    std::string& out = reuse ? cache->out : own;
    struct Release {
      DumpsBuffer* cache;
      bool reuse;
      ~Release() {
        if (!reuse) return;
        cache->busy = false;
        if (cache->out.capacity() > DumpsBuffer::kKeep) std::string().swap(cache->out);
      }
    } release{cache, reuse};
    cache->busy = true;
    out.clear();
    EncodeContext ctx;
    if (root != nullptr) ctx.path = root;  // empty: "value"
    encode(L, 1, out, ctx);
    lua_pushlstring(L, out.data(), out.size());
    return 1;
  });
}

// mp.loads(s) -> value.
int codec_loads(lua_State* L) {
  size_t len;
  const char* s = luaL_checklstring(L, 1, &len);
  return run_guarded(L, [&] {
    DecodeContext ctx;
    decode(L, s, len, ctx);
    return 1;
  });
}

// mp.register_class(name, mt) -> mt
int codec_register_class(lua_State* L) {
  luaL_checktype(L, 1, LUA_TSTRING);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  push_registry_table(L, kClassesKey);     // 3
  push_registry_table(L, kClassNamesKey);  // 4
  // Forget the old metatable of this name, if it maps back to it.
  lua_pushvalue(L, 1);
  if (lua_rawget(L, 3) == LUA_TTABLE) {
    lua_pushvalue(L, -1);
    lua_rawget(L, 4);
    if (lua_rawequal(L, -1, 1)) {
      lua_pushvalue(L, -2);
      lua_pushnil(L);
      lua_rawset(L, 4);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_rawset(L, 3);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  lua_rawset(L, 4);
  lua_settop(L, 2);
  invalidate_module_directory(L);
  return 1;
}

}  // namespace

void register_native_type(lua_State* L, const NativeType* type) {
  push_registry_table(L, kTypesKey);
  lua_pushlightuserdata(L, const_cast<NativeType*>(type));
  lua_setfield(L, -2, type->metatable_name);
  lua_pop(L, 1);
}

void encode(lua_State* L, int idx, std::string& out, EncodeContext& ctx) {
  Encoder(L, out, ctx).run(idx);
}

void decode(lua_State* L, const char* data, size_t len, DecodeContext& ctx) {
  Decoder(L, data, len, ctx).run();
}

void open_codec(lua_State* L) {
  static const luaL_Reg funcs[] = {{"loads", codec_loads},
                                   {"register_class", codec_register_class},
                                   {nullptr, nullptr}};
  luaL_setfuncs(L, funcs, 0);
  new (lua_newuserdatauv(L, sizeof(DumpsBuffer), 0)) DumpsBuffer();
  lua_newtable(L);
  lua_pushcfunction(L, dumps_buffer_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pushcclosure(L, codec_dumps, 1);
  lua_setfield(L, -2, "dumps");
}

}  // namespace luamp::codec
