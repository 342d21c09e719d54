// The luamp host: what `luamp` adds to a plain Lua state (the globals `repr`
// and `help`, os.getpid/getppid/sleep/monotonic, `multiprocessing` in
// package.preload), and the call/report helpers shared by main.cpp and the
// REPL.
#pragma once
#include <lua.hpp>

namespace luamp::host {

// luamp's version, shown by -v and the REPL banner.
inline constexpr const char* kVersion = "0.1.0";

// Opens the standard libraries and luamp's additions on a fresh state:
// repr, os.getpid/getppid/sleep/monotonic, package.preload entries for
// "multiprocessing", "luamp.help" and "luamp.complete", and the global help.
void open_all(lua_State* L);

// Message handler: turns the error at index 1 into its message plus a
// traceback.  Error objects with __tostring (mp.* errors) use it.
int message_handler(lua_State* L);

// Calls the function below `nargs` arguments with message_handler and with
// Ctrl-C armed (interrupt.h).  Returns the lua_pcall status.
int docall(lua_State* L, int nargs, int nresults);

// Prints "luamp: <msg>" to stderr for a non-OK status (popping the message).
// Returns status.  With progname false the "luamp: " prefix is left out, as
// lua.c does in its REPL.
int report(lua_State* L, int status, bool progname = true);

// Prints "luamp: <msg>" to stderr.
void print_message(const char* msg);

}  // namespace luamp::host
