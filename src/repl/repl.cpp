// The REPL, on lua.c's skeleton: read a line, try it as `return <line>`,
// else as a statement; "<eof>" in a syntax error means "read more".  Results
// are echoed with repr (the pretty form for long values).
#include "repl/repl.h"

#include <readline/history.h>
#include <readline/readline.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "host/host.h"
#include "mp/lua_util.h"
#include "mp/repr.h"

namespace luamp::repl {
namespace {

constexpr const char* kPrompt = "> ";
constexpr const char* kContinuePrompt = ">> ";
constexpr int kEchoWidth = 80;

std::string history_path() {
  if (const char* p = std::getenv("LUAMP_HISTORY")) return p;
  if (const char* home = std::getenv("HOME")) return std::string(home) + "/.luamp_history";
  return "";
}

// True when the status/message pair is a syntax error at end of input.
bool incomplete(lua_State* L, int status) {
  if (status != LUA_ERRSYNTAX) return false;
  size_t len;
  const char* msg = lua_tolstring(L, -1, &len);
  static const char mark[] = "<eof>";
  size_t marklen = sizeof(mark) - 1;
  if (msg && len >= marklen && std::strcmp(msg + len - marklen, mark) == 0) {
    lua_pop(L, 1);
    return true;
  }
  return false;
}

// Reads a line; returns false at end of input.
bool read_line(const char* prompt, std::string& out) {
  char* line = readline(prompt);
  if (line == nullptr) return false;
  out = line;
  std::free(line);
  return true;
}

// Compiles `return <line>` (or `=expr`); leaves the function on the stack.
int try_expression(lua_State* L, const std::string& line) {
  std::string src = line;
  if (!src.empty() && src[0] == '=') src = src.substr(1);
  std::string code = "return " + src + ";";
  return luaL_loadbuffer(L, code.data(), code.size(), "=stdin");
}

// Reads one complete chunk and leaves its compiled function on the stack.
// Returns -1 at end of input, else the load status (message on the stack).
int load_chunk(lua_State* L, std::string& chunk) {
  std::string line;
  if (!read_line(kPrompt, line)) return -1;
  chunk = line;
  int status = try_expression(L, line);
  if (status == LUA_OK) return status;
  lua_pop(L, 1);
  if (!line.empty() && line[0] == '=') line = line.substr(1);
  chunk = line;
  for (;;) {
    status = luaL_loadbuffer(L, chunk.data(), chunk.size(), "=stdin");
    if (!incomplete(L, status)) break;
    if (!read_line(kContinuePrompt, line)) return -1;
    chunk += "\n" + line;
  }
  return status;
}

// Echoes the n results on the stack with repr.
void print_results(lua_State* L, int n) {
  for (int i = -n; i < 0; ++i) {
    int idx = lua_gettop(L) + i + 1;
    lua_pushcfunction(L, lua_repr);
    lua_pushvalue(L, idx);
    lua_pushinteger(L, kEchoWidth);
    if (lua_pcall(L, 2, 1, 0) == LUA_OK) {
      std::printf("%s\n", lua_tostring(L, -1));
    } else {
      std::printf("<repr failed: %s>\n", lua_tostring(L, -1));
    }
    lua_pop(L, 1);
  }
  std::fflush(stdout);
  lua_pop(L, n);
}

}  // namespace

void run(lua_State* L) {
  std::string hist = history_path();
  if (!hist.empty()) read_history(hist.c_str());
  for (;;) {
    std::string chunk;
    int top = lua_gettop(L);
    int status = load_chunk(L, chunk);
    if (status == -1) break;
    if (!chunk.empty()) {
      add_history(chunk.c_str());
      if (!hist.empty()) append_history(1, hist.c_str());
    }
    if (status == LUA_OK) status = host::docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK) {
      print_results(L, lua_gettop(L) - top);
    } else {
      host::report(L, status);
    }
    lua_settop(L, top);
  }
  lua_settop(L, 0);
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace luamp::repl
