// Host set-up and the docall/report pair, as lua.c has them.  See host.h.
#include "host/host.h"

#include <cstdio>

#include "mp/interrupt.h"
#include "mp/module.h"
#include "mp/repr.h"
#include "mp/system.h"
#include "repl/help.h"

namespace luamp::host {

void open_all(lua_State* L) {
  luaL_openlibs(L);
  lua_getglobal(L, "os");
  static const luaL_Reg os_additions[] = {{"getpid", system_getpid},
                                          {"getppid", system_getppid},
                                          {"sleep", system_sleep},
                                          {"monotonic", system_monotonic},
                                          {nullptr, nullptr}};
  luaL_setfuncs(L, os_additions, 0);
  lua_pop(L, 1);
  lua_pushcfunction(L, lua_repr);
  lua_setglobal(L, "repr");
  preload_multiprocessing(L);
  repl::open_help(L);
}

int message_handler(lua_State* L) {
  const char* msg = lua_tostring(L, 1);
  if (msg == nullptr) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
      msg = lua_tostring(L, -1);
    } else {
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int docall(lua_State* L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, message_handler);
  lua_insert(L, base);
  interrupt::arm(L);
  int status = lua_pcall(L, nargs, nresults, base);
  interrupt::disarm(L);
  lua_remove(L, base);
  return status;
}

void print_message(const char* msg) {
  std::fprintf(stderr, "luamp: %s\n", msg);
  std::fflush(stderr);
}

int report(lua_State* L, int status, bool progname) {
  if (status != LUA_OK) {
    const char* msg = lua_tostring(L, -1);
    if (msg == nullptr) msg = "(error object is not a string)";
    if (progname) {
      print_message(msg);
    } else {
      std::fprintf(stderr, "%s\n", msg);
      std::fflush(stderr);
    }
    lua_pop(L, 1);
  }
  return status;
}

}  // namespace luamp::host
