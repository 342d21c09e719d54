// Files compiled into the host by cmake/embed_files.cmake: the REPL's Lua
// helpers (src/repl/*.lua) and the API reference pages (docs/api/*.md) that
// help() reads.  help.cpp is the only user.
#pragma once
#include <cstddef>

namespace luamp {

struct EmbeddedFile {
  const char* name;  // file name without directory, e.g. "host.md"
  const char* data;  // NUL-terminated copy of the file
  size_t size;
};

// Both lists end with an entry whose name is nullptr.
extern const EmbeddedFile kReplLua[];
extern const EmbeddedFile kApiDocs[];

}  // namespace luamp
