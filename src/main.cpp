// luamp: a Lua 5.4 host that behaves like the standard `lua` command (same
// options, `arg` table, LUA_INIT, exit codes) and adds luamp's globals, the
// `multiprocessing` module and a readline REPL.  The option handling follows
// lua.c: main -> lua_pcall(pmain) so that errors while starting are reported.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "host/host.h"
#include "repl/repl.h"

namespace {

using luamp::host::docall;
using luamp::host::report;

constexpr int kHasError = 1;  // bad option
constexpr int kHasI = 2;      // -i
constexpr int kHasV = 4;      // -v
constexpr int kHasE = 8;      // -e
constexpr int kHasCapitalE = 16;  // -E

void print_usage(const char* badoption) {
  std::fprintf(stderr, "luamp: ");
  if (badoption[1] == 'e' || badoption[1] == 'l')
    std::fprintf(stderr, "'%s' needs argument\n", badoption);
  else
    std::fprintf(stderr, "unrecognized option '%s'\n", badoption);
  std::fprintf(stderr,
               "usage: luamp [options] [script [args]]\n"
               "Available options are:\n"
               "  -e stat   execute string 'stat'\n"
               "  -i        enter interactive mode after executing 'script'\n"
               "  -l mod    require library 'mod' into global 'mod'\n"
               "  -l g=mod  require library 'mod' into global 'g'\n"
               "  -v        show version information\n"
               "  -E        ignore environment variables\n"
               "  -W        turn warnings on\n"
               "  --        stop handling options\n"
               "  -         stop handling options and execute stdin\n");
  std::fflush(stderr);
}

// "luamp 0.1.0 -- Lua 5.4.4  Copyright (C) 1994-2022 Lua.org, PUC-Rio"
void print_version() {
  std::printf("luamp %s -- %s\n", luamp::host::kVersion, LUA_COPYRIGHT);
  std::fflush(stdout);
}

// Scans options as lua.c does.  *first receives the index of the script
// name (0 if none); returns the kHas* flags.
int collect_args(char** argv, int* first) {
  int args = 0;
  if (argv[0] == nullptr) {
    *first = -1;
    return 0;
  }
  int i;
  for (i = 1; argv[i] != nullptr; i++) {
    *first = i;
    if (argv[i][0] != '-') return args;
    switch (argv[i][1]) {
      case '-':
        if (argv[i][2] != '\0') return kHasError;
        // "--" with nothing after it: no script (stdin or the REPL), as lua.
        *first = argv[i + 1] != nullptr ? i + 1 : 0;
        return args;
      case '\0': return args;  // "-": the script is stdin
      case 'E':
        if (argv[i][2] != '\0') return kHasError;
        args |= kHasCapitalE;
        break;
      case 'W':
        if (argv[i][2] != '\0') return kHasError;
        break;
      case 'i': args |= kHasI; [[fallthrough]];  // -i implies -v
      case 'v':
        if (argv[i][2] != '\0') return kHasError;
        args |= kHasV;
        break;
      case 'e': args |= kHasE; [[fallthrough]];
      case 'l':
        if (argv[i][2] == '\0') {
          i++;
          if (argv[i] == nullptr || argv[i][0] == '-') return kHasError;
        }
        break;
      default: return kHasError;
    }
  }
  *first = 0;
  return args;
}

void create_arg_table(lua_State* L, char** argv, int argc, int script) {
  int narg = argc - (script + 1);
  lua_createtable(L, narg > 0 ? narg : 0, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

int dochunk(lua_State* L, int status) {
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

int dofile(lua_State* L, const char* name) { return dochunk(L, luaL_loadfile(L, name)); }

int dostring(lua_State* L, const char* s, const char* name) {
  return dochunk(L, luaL_loadbuffer(L, s, std::strlen(s), name));
}

// -l mod or -l g=mod: global = require(mod).  Without "=", the global has
// the module's full name (as Debian's lua5.4 5.4.4 does: -l a-b sets _G["a-b"]).
int dolibrary(lua_State* L, char* spec) {
  char* globname = spec;
  char* modname = std::strchr(spec, '=');
  if (modname == nullptr) {
    modname = spec;
  } else {
    *modname = '\0';
    modname++;
  }
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  int status = docall(L, 1, 1);
  if (status == LUA_OK) lua_setglobal(L, globname);
  return report(L, status);
}

int run_args(lua_State* L, char** argv, int n) {
  for (int i = 1; i < n; i++) {
    int option = argv[i][1];
    switch (option) {
      case 'e':
      case 'l': {
        char* extra = argv[i] + 2;
        if (*extra == '\0') extra = argv[++i];
        int status = option == 'e' ? dostring(L, extra, "=(command line)") : dolibrary(L, extra);
        if (status != LUA_OK) return 0;
        break;
      }
      case 'W': lua_warning(L, "@on", 0); break;
    }
  }
  return 1;
}

int handle_luainit(lua_State* L) {
  const char* name = "=LUA_INIT_5_4";
  const char* init = std::getenv(name + 1);
  if (init == nullptr) {
    name = "=LUA_INIT";
    init = std::getenv(name + 1);
  }
  if (init == nullptr) return LUA_OK;
  if (init[0] == '@') return dofile(L, init + 1);
  return dostring(L, init, name);
}

int push_script_args(lua_State* L) {
  if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
  int n = static_cast<int>(luaL_len(L, -1));
  luaL_checkstack(L, n + 3, "too many arguments to script");
  int i;
  for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -i);
  return n;
}

int handle_script(lua_State* L, char** argv) {
  const char* fname = argv[0];
  if (std::strcmp(fname, "-") == 0 && std::strcmp(argv[-1], "--") != 0) fname = nullptr;  // stdin
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = push_script_args(L);
    status = docall(L, n, LUA_MULTRET);
  }
  return report(L, status);
}

int pmain(lua_State* L) {
  int argc = static_cast<int>(lua_tointeger(L, 1));
  char** argv = static_cast<char**>(lua_touserdata(L, 2));
  int script = 0;
  int args = collect_args(argv, &script);
  int optlim = script > 0 ? script : argc;
  luaL_checkversion(L);
  if (args == kHasError) {
    print_usage(argv[script]);
    return 0;
  }
  if (args & kHasV) print_version();
  if (args & kHasCapitalE) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luamp::host::open_all(L);
  create_arg_table(L, argv, argc, script);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  if (!(args & kHasCapitalE)) {
    if (handle_luainit(L) != LUA_OK) return 0;
  }
  if (!run_args(L, argv, optlim)) return 0;
  if (script > 0) {
    if (handle_script(L, argv + script) != LUA_OK) return 0;
  }
  if (args & kHasI) {
    luamp::repl::run(L);
  } else if (script < 1 && !(args & (kHasE | kHasV))) {
    if (isatty(STDIN_FILENO)) {
      print_version();
      luamp::repl::run(L);
    } else if (dofile(L, nullptr) != LUA_OK) {
      return 0;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  lua_State* L = luaL_newstate();
  if (L == nullptr) {
    luamp::host::print_message("cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  lua_gc(L, LUA_GCSTOP);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 0);
  int result = lua_toboolean(L, -1);
  report(L, status);
  lua_close(L);
  return (result && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}
