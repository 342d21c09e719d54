// The global `help` and the preloaded Lua helpers of the REPL ("luamp.help",
// "luamp.complete").  The help texts are the Markdown pages docs/api/*.md,
// embedded at build time (cmake/embed_files.cmake): one place holds them, so
// help() and docs/ cannot drift.  The convention that makes a section findable
// is in docs/api/README.md; src/repl/help.lua parses and searches the pages.
#include "repl/help.h"

#include <cstring>

#include "repl/embedded_files.h"

namespace luamp::repl {
namespace {

// Finds src/repl/<name> among the embedded Lua helpers; nullptr if absent.
const EmbeddedFile* find_lua(const char* name) {
  for (const EmbeddedFile* f = kReplLua; f->name != nullptr; ++f)
    if (std::strcmp(f->name, name) == 0) return f;
  return nullptr;
}

// package.preload loader; upvalue 1 is the helper's file name.  "luamp.help"
// receives the table {[page file name] = Markdown text} of docs/api.
int load_helper(lua_State* L) {
  const char* file = lua_tostring(L, lua_upvalueindex(1));
  const EmbeddedFile* f = find_lua(file);
  if (f == nullptr) return luaL_error(L, "luamp helper '%s' is not compiled in", file);
  lua_pushfstring(L, "@luamp/%s", file);
  if (luaL_loadbufferx(L, f->data, f->size, lua_tostring(L, -1), "t") != LUA_OK) return lua_error(L);
  lua_newtable(L);
  for (const EmbeddedFile* d = kApiDocs; d->name != nullptr; ++d) {
    lua_pushlstring(L, d->data, d->size);
    lua_setfield(L, -2, d->name);
  }
  lua_call(L, 1, 1);
  return 1;
}

// help([x]): require("luamp.help").show(...).
int help_call(lua_State* L) {
  int n = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luamp.help");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "show");
  lua_insert(L, 1);
  lua_pop(L, 1);  // the module table
  lua_call(L, n, 0);
  return 0;
}

}  // namespace

void open_help(lua_State* L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushliteral(L, "help.lua");
  lua_pushcclosure(L, load_helper, 1);
  lua_setfield(L, -2, "luamp.help");
  lua_pushliteral(L, "complete.lua");
  lua_pushcclosure(L, load_helper, 1);
  lua_setfield(L, -2, "luamp.complete");
  lua_pop(L, 1);
  lua_pushcfunction(L, help_call);
  lua_setglobal(L, "help");
}

}  // namespace luamp::repl
