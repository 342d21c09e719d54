// Ctrl-C handling shared by the host (script runs, the REPL) and the native
// module (blocking calls).  This is the "small interface" between them: the
// host arms SIGINT around a top-level call; blocking native calls ask
// pending() when a syscall returns EINTR and raise "interrupted!".
//
// While armed, SIGINT sets a flag and installs a count hook on the running
// state that raises "interrupted!" at the next Lua instruction, and keeps
// raising until the top-level call returns, so a user's pcall loop cannot
// swallow it.  Loaded into a stock lua5.4 the module never arms anything and
// pending() stays false.
#pragma once
#include <lua.hpp>

namespace luamp::interrupt {

// Message of the error raised on Ctrl-C, as lua.c prints it.
inline constexpr const char* kMessage = "interrupted!";

// Installs the SIGINT handler (without SA_RESTART, so blocking syscalls
// return EINTR) for a top-level call on L.  Clears any stale flag.  If
// SIGINT is ignored (SIG_IGN), it stays ignored.
void arm(lua_State* L);
// Restores the SIGINT disposition arm() found and clears flag and hook.
void disarm(lua_State* L);
// True after SIGINT arrived while armed and before disarm/clear.
bool pending();
// Forgets a pending interrupt and removes the hook (used when a process
// handles the interrupt itself, e.g. a child reporting its error).
void clear(lua_State* L);

}  // namespace luamp::interrupt
