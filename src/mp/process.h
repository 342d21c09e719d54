// Process primitives for multiprocessing.process (the Lua Process class):
// fork with a sentinel pipe, exec of a fresh luamp for spawn, waitpid with
// Python's exit codes, waiting on a sentinel with a deadline, signals, the
// child's protected run and its final _exit.
#pragma once
#include <lua.hpp>

namespace luamp {

// Adds the process functions to the core table on top of the stack.
void open_process(lua_State* L);

// Python's exit code for a wait status: the exit status, or -N for signal N.
int exitcode_from_status(int status);

}  // namespace luamp
