// repr: see repr.h.  Tables print their sequence part positionally (holes as
// nil), then the other keys sorted: numbers, strings, booleans, the rest.
// Cycles print as <cycle>; a value seen twice without a cycle prints twice.
#include "mp/repr.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "mp/lua_util.h"

namespace luamp {
namespace {

constexpr int kMaxDepth = 200;

bool is_keyword(const char* s, size_t n) {
  static const char* const words[] = {"and",   "break", "do",     "else", "elseif", "end",
                                      "false", "for",   "function", "goto", "if",   "in",
                                      "local", "nil",   "not",    "or",   "repeat", "return",
                                      "then",  "true",  "until",  "while"};
  for (const char* w : words)
    if (std::strlen(w) == n && std::memcmp(w, s, n) == 0) return true;
  return false;
}

bool is_identifier(const char* s, size_t n) {
  if (n == 0) return false;
  auto alpha = [](unsigned char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(static_cast<unsigned char>(s[0]))) return false;
  for (size_t i = 1; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  }
  return !is_keyword(s, n);
}

void quote_string(std::string& out, const char* s, size_t n) {
  out.push_back('"');
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 32 || c == 127) {
          char buf[8];
          bool digit_follows = i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9';
          std::snprintf(buf, sizeof buf, digit_follows ? "\\%03d" : "\\%d", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// Sort rank of a non-sequence key: numbers, strings, booleans, the rest.
struct KeyInfo {
  int rank;
  double num;
  std::string str;
  int slot;  // index in the temporary key table
};

class Renderer {
 public:
  explicit Renderer(lua_State* L) : L_(L) {}

  // Appends the value at absolute index idx.
  std::string render(int idx, int width, int indent, int depth) {
    std::string out;
    switch (lua_type(L_, idx)) {
      case LUA_TNIL: return "nil";
      case LUA_TBOOLEAN: return lua_toboolean(L_, idx) ? "true" : "false";
      case LUA_TNUMBER:
        if (lua_isinteger(L_, idx)) return std::to_string(static_cast<long long>(lua_tointeger(L_, idx)));
        return repr_float(lua_tonumber(L_, idx));
      case LUA_TSTRING: {
        size_t n;
        const char* s = lua_tolstring(L_, idx, &n);
        quote_string(out, s, n);
        return out;
      }
      case LUA_TTABLE: return render_table(idx, width, indent, depth);
      default: return by_metamethod_or_tostring(idx);
    }
  }

 private:
  // __repr, then __tostring, then luaL_tolstring's default form.
  std::string by_metamethod_or_tostring(int idx) {
    luaL_checkstack(L_, 4, "repr");
    if (luaL_getmetafield(L_, idx, "__repr") != LUA_TNIL) return call_meta(idx);
    if (luaL_getmetafield(L_, idx, "__tostring") != LUA_TNIL) return call_meta(idx);
    size_t n;
    const char* s = luaL_tolstring(L_, idx, &n);
    std::string r(s, n);
    lua_pop(L_, 1);
    return r;
  }

  // Calls the metamethod on top of the stack with the value at idx.
  std::string call_meta(int idx) {
    lua_pushvalue(L_, idx);
    if (lua_pcall(L_, 1, 1, 0) != LUA_OK) {
      std::string msg = lua_tostring(L_, -1) ? lua_tostring(L_, -1) : "error in __repr/__tostring";
      lua_pop(L_, 1);
      throw Failure::plain(msg);
    }
    size_t n;
    const char* s = lua_tolstring(L_, -1, &n);
    if (!s) {
      lua_pop(L_, 1);
      throw Failure::plain("'__repr' or '__tostring' must return a string");
    }
    std::string r(s, n);
    lua_pop(L_, 1);
    return r;
  }

  std::string render_table(int idx, int width, int indent, int depth) {
    const void* id = lua_topointer(L_, idx);
    if (visiting_.count(id)) return "<cycle>";
    if (lua_getmetatable(L_, idx)) {
      lua_pop(L_, 1);
      luaL_checkstack(L_, 4, "repr");
      if (luaL_getmetafield(L_, idx, "__repr") != LUA_TNIL) return call_meta(idx);
      if (luaL_getmetafield(L_, idx, "__tostring") != LUA_TNIL) return call_meta(idx);
    }
    if (depth >= kMaxDepth) return "{...}";
    luaL_checkstack(L_, 8, "repr: nesting too deep");
    visiting_.insert(id);

    // Collect keys: positive integers for the sequence part, others sorted.
    lua_newtable(L_);  // temporary key table
    int keys = lua_gettop(L_);
    std::vector<lua_Integer> ints;
    std::vector<KeyInfo> others;
    int slot = 0;
    lua_pushnil(L_);
    while (lua_next(L_, idx) != 0) {
      lua_pop(L_, 1);
      if (lua_isinteger(L_, -1) && lua_tointeger(L_, -1) >= 1) {
        ints.push_back(lua_tointeger(L_, -1));
      } else {
        KeyInfo k{3, 0, "", ++slot};
        int t = lua_type(L_, -1);
        if (t == LUA_TNUMBER) {
          k.rank = 0;
          k.num = lua_tonumber(L_, -1);
        } else if (t == LUA_TSTRING) {
          k.rank = 1;
          size_t n;
          const char* s = lua_tolstring(L_, -1, &n);
          k.str.assign(s, n);
        } else if (t == LUA_TBOOLEAN) {
          k.rank = 2;
          k.num = lua_toboolean(L_, -1);
        } else {
          k.str = lua_typename(L_, t);
        }
        lua_pushvalue(L_, -1);
        lua_rawseti(L_, keys, k.slot);
        others.push_back(std::move(k));
      }
    }
    std::sort(ints.begin(), ints.end());
    // The sequence part: 1..m, where m is the largest integer key that keeps
    // at least half of 1..m present (so {42, nil, "hello"} stays positional).
    lua_Integer m = 0;
    for (size_t i = 0; i < ints.size(); ++i)
      if (static_cast<lua_Integer>(2 * (i + 1)) >= ints[i]) m = ints[i];
    for (lua_Integer k : ints) {
      if (k > m) {
        KeyInfo info{0, static_cast<double>(k), "", ++slot};
        lua_pushinteger(L_, k);
        lua_rawseti(L_, keys, info.slot);
        others.push_back(std::move(info));
      }
    }
    std::stable_sort(others.begin(), others.end(), [](const KeyInfo& a, const KeyInfo& b) {
      if (a.rank != b.rank) return a.rank < b.rank;
      if (a.rank == 0 || a.rank == 2) return a.num < b.num;
      return a.str < b.str;
    });

    std::vector<std::string> items;
    items.reserve(static_cast<size_t>(m) + others.size());
    for (lua_Integer i = 1; i <= m; ++i) {
      lua_rawgeti(L_, idx, i);
      items.push_back(render(lua_gettop(L_), width, indent + 2, depth + 1));
      lua_pop(L_, 1);
    }
    for (const KeyInfo& k : others) {
      lua_rawgeti(L_, keys, k.slot);
      int key = lua_gettop(L_);
      std::string item;
      size_t n = 0;
      const char* s = k.rank == 1 ? lua_tolstring(L_, key, &n) : nullptr;
      if (s && is_identifier(s, n)) {
        item.assign(s, n);
      } else {
        item = "[" + render(key, 0, 0, depth + 1) + "]";
      }
      item += " = ";
      lua_pushvalue(L_, key);
      lua_rawget(L_, idx);
      item += render(lua_gettop(L_), width, indent + 2, depth + 1);
      lua_pop(L_, 2);
      items.push_back(std::move(item));
    }
    lua_pop(L_, 1);  // key table
    visiting_.erase(id);

    if (items.empty()) return "{}";
    std::string line = "{";
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) line += ", ";
      line += items[i];
    }
    line += "}";
    bool multiline_item = false;
    for (const auto& it : items) multiline_item = multiline_item || it.find('\n') != std::string::npos;
    if (width <= 0 || (!multiline_item && static_cast<int>(line.size()) + indent <= width)) return line;
    std::string pad(static_cast<size_t>(indent + 2), ' ');
    std::string out = "{\n";
    for (const auto& it : items) out += pad + it + ",\n";
    out += std::string(static_cast<size_t>(indent), ' ') + "}";
    return out;
  }

  lua_State* L_;
  std::unordered_set<const void*> visiting_;
};

}  // namespace

std::string repr_float(double d) {
  if (std::isnan(d)) return "0/0";
  if (std::isinf(d)) return d > 0 ? "math.huge" : "-math.huge";
  char buf[48];
  for (int prec = 15; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s(buf);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string repr_value(lua_State* L, int idx, int width) {
  idx = lua_absindex(L, idx);
  Renderer r(L);
  return r.render(idx, width, 0, 0);
}

int lua_repr(lua_State* L) {
  luaL_checkany(L, 1);
  int width = static_cast<int>(luaL_optinteger(L, 2, 0));
  return run_guarded(L, [&] {
    std::string s = repr_value(L, 1, width);
    lua_pushlstring(L, s.data(), s.size());
    return 1;
  });
}

}  // namespace luamp
