// Small OS queries the module and the host both need: cpu_count, getpid,
// getppid, monotonic clock, an interruptible sleep.  The host installs the
// last four into `os` (os.getpid, ...); the module exposes them in its core.
#pragma once
#include <lua.hpp>

namespace luamp {

// Seconds from CLOCK_MONOTONIC.
double monotonic_seconds();

// Lua functions (see docs/api/os.md).
int system_cpu_count(lua_State* L);
int system_getpid(lua_State* L);
int system_getppid(lua_State* L);
int system_monotonic(lua_State* L);
int system_sleep(lua_State* L);

// Adds the functions above to the table at the top of the stack.
void open_system(lua_State* L);

}  // namespace luamp
