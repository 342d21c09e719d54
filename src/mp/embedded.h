// Embedded Lua modules: the sources under src/lua/, compiled into the binary
// by cmake/embed_lua.cmake.  module.cpp registers each one in package.preload.
#pragma once
#include <cstddef>

namespace luamp {

struct EmbeddedModule {
  const char* name;       // module name for require, e.g. "multiprocessing.pool"
  const char* chunkname;  // "@multiprocessing.pool.lua", shown in tracebacks
  const char* source;
  size_t size;
  const char* bytecode;  // luac output of source (debug info kept), or nullptr
  size_t bytecode_size;
};

// Terminated by an entry whose name is nullptr.
extern const EmbeddedModule kEmbeddedModules[];

}  // namespace luamp
