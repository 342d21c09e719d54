// repr(v): any Lua value as a one-line, deterministic Lua literal (API.md,
// "Translation rules").  The host installs it as the global `repr`; the
// REPL uses the pretty form to echo results; proxies and shared objects
// render through their `__repr` metamethod.
#pragma once
#include <lua.hpp>

#include <string>

namespace luamp {

// Renders the value at `idx`.  With width > 0, a table whose one-line form is
// longer than `width` is broken over several indented lines.  Errors raised
// by __repr/__tostring metamethods propagate as Failure.
std::string repr_value(lua_State* L, int idx, int width = 0);

// Shortest decimal form that reads back as the same double ("0.1", "4.0").
std::string repr_float(double d);

// repr(v [, width]) for Lua.
int lua_repr(lua_State* L);

}  // namespace luamp
