// The REPL, on lua.c's skeleton: read a line, try it as `return <line>`,
// else as a statement; "<eof>" in a syntax error means "read more".  Results
// are echoed with repr (the pretty form for long values); errors print as in
// lua's REPL (no "luamp:" prefix).  Adds to lua.c: `mp` preloaded, history
// in a file, tab completion (src/repl/complete.lua), Ctrl-C at the prompt
// clears the line.  main.cpp calls run(); docs/cli.md describes the result.
//
// Input uses readline's callback interface under ppoll, so SIGINT at the
// prompt is ours to handle (readline's own handler would re-raise it and
// kill the process).  While code runs, host::docall arms interrupt.h, which
// turns Ctrl-C into "interrupted!" and restores our prompt handler after.
#include "repl/repl.h"

#include <poll.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "host/host.h"
#include "mp/repr.h"

namespace luamp::repl {
namespace {

constexpr const char* kPrompt = "> ";
constexpr const char* kContinuePrompt = ">> ";
constexpr int kEchoWidth = 80;
constexpr int kHistoryMax = 1000;
constexpr const char* kCompleterKey = "luamp.repl.completer";
// Word breaks for completion: like readline's, minus "." and ":" so that
// "mp.Queue" and "q:get" are one word.
constexpr const char* kWordBreaks = " \t\n\"\\'`@$><=;|&{(+-*/%^~#,[])}";

// SIGINT and SIGWINCH at the prompt: the only state the handlers touch.
volatile sig_atomic_t g_prompt_sigint = 0;
volatile sig_atomic_t g_sigwinch = 0;

void on_prompt_sigint(int) { g_prompt_sigint = 1; }
void on_sigwinch(int) { g_sigwinch = 1; }

// What readline's callbacks (which carry no user pointer) work on: the state
// for completion and the slot the line handler fills.  Set by run() for its
// duration; there is one readline, hence one REPL per process.
struct Session {
  lua_State* L = nullptr;
  bool line_done = false;
  bool line_eof = false;
  std::string line;
};
Session* g_session = nullptr;

enum class Read { kLine, kEof, kInterrupted };

// The history file: $LUAMP_HISTORY, else ~/.luamp_history; none ("") when
// LUAMP_HISTORY is empty, when neither it nor HOME is set, or when stdin is
// not a terminal (piped input is not the user's history).
std::string history_path() {
  if (!isatty(STDIN_FILENO)) return "";
  if (const char* p = std::getenv("LUAMP_HISTORY")) return p;
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] != '\0') return std::string(home) + "/.luamp_history";
  return "";
}

// rl_callback_handler_install's line handler: stores the line (nullptr at
// end of input) and stops reading.
void on_line(char* line) {
  Session* s = g_session;
  s->line_done = true;
  s->line_eof = line == nullptr;
  if (line != nullptr) {
    s->line = line;
    std::free(line);
  }
  rl_callback_handler_remove();
}

// Reads one line with `prompt`.  Ctrl-C discards what was typed, moves to a
// fresh line and returns kInterrupted.  SIGINT stays blocked except inside
// ppoll, so a Ctrl-C cannot slip in between the check and the wait.
Read read_line(const char* prompt, std::string& out) {
  Session* s = g_session;
  s->line_done = s->line_eof = false;
  s->line.clear();
  sigset_t block, saved, waitmask;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &saved);
  waitmask = saved;
  sigdelset(&waitmask, SIGINT);
  g_prompt_sigint = 0;
  rl_callback_handler_install(prompt, on_line);
  Read result = Read::kEof;
  for (;;) {
    if (g_prompt_sigint) {
      g_prompt_sigint = 0;
      rl_free_line_state();
      rl_callback_sigcleanup();
      rl_replace_line("", 1);
      rl_callback_handler_remove();
      std::fputs("^C\n", stdout);
      std::fflush(stdout);
      result = Read::kInterrupted;
      break;
    }
    if (g_sigwinch) {  // the terminal was resized: readline re-reads its size
      g_sigwinch = 0;
      rl_resize_terminal();
    }
    if (s->line_done) {
      result = s->line_eof ? Read::kEof : Read::kLine;
      out = s->line;
      break;
    }
    struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
    int rc = ppoll(&pfd, 1, nullptr, &waitmask);
    if (rc < 0) {
      if (errno == EINTR) continue;
      rl_callback_handler_remove();
      break;  // stdin unusable: end of input
    }
    rl_callback_read_char();
  }
  sigprocmask(SIG_SETMASK, &saved, nullptr);
  return result;
}

// True when the status/message pair is a syntax error at end of input
// (pops the message then).
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

// Adds a complete chunk to the history (and its file), skipping blanks and
// repeats.  A multi-line chunk is one entry: the file carries a "#<time>"
// line before each entry, so reading it back keeps the lines together.
void remember(const std::string& line, const std::string& hist) {
  if (line.find_first_not_of(" \t") == std::string::npos) return;
  HIST_ENTRY* last = history_length > 0 ? history_get(history_base + history_length - 1) : nullptr;
  if (last != nullptr && line == last->line) return;
  add_history(line.c_str());
  if (!hist.empty()) append_history(1, hist.c_str());
}

// The prompt: the global _PROMPT (or _PROMPT2 while a statement continues)
// when it is a string or number, as lua.c allows, else "> " / ">> ".
std::string prompt(lua_State* L, bool first) {
  lua_pushglobaltable(L);  // raw access: no metamethod may raise here
  lua_pushstring(L, first ? "_PROMPT" : "_PROMPT2");
  lua_rawget(L, -2);
  lua_remove(L, -2);
  std::string p = lua_isstring(L, -1) ? lua_tostring(L, -1) : (first ? kPrompt : kContinuePrompt);
  lua_pop(L, 1);
  return p;
}

// Reads one complete chunk and leaves its compiled function (or the syntax
// error message) on the stack.  Returns the load status, -1 at end of
// input, -2 when Ctrl-C abandoned the chunk (nothing pushed then).
int load_chunk(lua_State* L, const std::string& hist) {
  std::string line;
  Read r = read_line(prompt(L, true).c_str(), line);
  if (r == Read::kEof) return -1;
  if (r == Read::kInterrupted) return -2;
  // "=expr" is "return expr", as in lua 5.4.
  std::string chunk = (!line.empty() && line[0] == '=') ? "return " + line.substr(1) : line;
  std::string expr = (!line.empty() && line[0] == '=') ? chunk + ";" : "return " + line + ";";
  std::string typed = line;
  if (luaL_loadbuffer(L, expr.data(), expr.size(), "=stdin") == LUA_OK) {
    remember(typed, hist);
    return LUA_OK;
  }
  lua_pop(L, 1);
  for (;;) {
    int status = luaL_loadbuffer(L, chunk.data(), chunk.size(), "=stdin");
    if (!incomplete(L, status)) {
      remember(typed, hist);
      return status;
    }
    r = read_line(prompt(L, false).c_str(), line);
    if (r == Read::kInterrupted) return -2;
    if (r == Read::kEof) {  // as lua: report the incomplete chunk, then stop
      remember(typed, hist);
      return luaL_loadbuffer(L, chunk.data(), chunk.size(), "=stdin");
    }
    chunk += "\n" + line;
    typed += "\n" + line;
  }
}

// Echoes the n results on top of the stack with repr, one per line, and
// pops them.
void print_results(lua_State* L, int n) {
  for (int i = -n; i < 0; ++i) {
    int idx = lua_gettop(L) + i + 1;
    lua_pushcfunction(L, lua_repr);
    lua_pushvalue(L, idx);
    lua_pushinteger(L, kEchoWidth);
    if (lua_pcall(L, 2, 1, 0) == LUA_OK) {
      std::printf("%s\n", lua_tostring(L, -1));
    } else {
      const char* msg = lua_tostring(L, -1);
      std::printf("<repr failed: %s>\n", msg ? msg : "?");
    }
    lua_pop(L, 1);
  }
  std::fflush(stdout);
  lua_pop(L, n);
}

// Calls the completer (complete.lua) on `word`; fills matches and the type
// of a sole match.  Never raises: a failing completer completes nothing.
void collect_matches(lua_State* L, const char* word, std::vector<std::string>& matches,
                     std::string& sole_type) {
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 4)) return;
  lua_getfield(L, LUA_REGISTRYINDEX, kCompleterKey);
  lua_pushstring(L, word);
  if (lua_pcall(L, 1, 2, 0) == LUA_OK && lua_istable(L, -2)) {
    lua_Integer n = luaL_len(L, -2);
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L, -2, i);
      if (const char* m = lua_tostring(L, -1)) matches.emplace_back(m);
      lua_pop(L, 1);
    }
    if (n == 1 && lua_istable(L, -1)) {
      lua_rawgeti(L, -1, 1);
      if (const char* t = lua_tostring(L, -1)) sole_type = t;
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
}

char* dup(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p) std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

// rl_attempted_completion_function: the match array readline expects
// (entry 0 is the longest common prefix), or nullptr.  A sole function
// gets "(" appended, other sole matches nothing.
char** complete(const char* text, int, int) {
  rl_attempted_completion_over = 1;  // never fall back to file names
  rl_completion_append_character = '\0';
  if (g_session == nullptr) return nullptr;
  std::vector<std::string> matches;
  std::string sole_type;
  collect_matches(g_session->L, text, matches, sole_type);
  if (matches.empty()) return nullptr;
  if (matches.size() == 1 && sole_type == "function") rl_completion_append_character = '(';
  std::string common = matches[0];
  for (const std::string& m : matches) {
    size_t k = 0;
    while (k < common.size() && k < m.size() && common[k] == m[k]) ++k;
    common.resize(k);
  }
  char** out = static_cast<char**>(std::calloc(matches.size() + 2, sizeof(char*)));
  if (out == nullptr) return nullptr;
  out[0] = dup(matches.size() == 1 ? matches[0] : common);
  if (matches.size() > 1)
    for (size_t i = 0; i < matches.size(); ++i) out[i + 1] = dup(matches[i]);
  return out;
}

// Runs require(name) with a traceback; on success sets global `global` (if
// not null) or stores the result in the registry at `regkey`.
void require_into(lua_State* L, const char* name, const char* global, const char* regkey) {
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  int status = host::docall(L, 1, 1);
  if (status != LUA_OK) {
    host::report(L, status, false);
    return;
  }
  if (global != nullptr) {
    lua_pushglobaltable(L);  // raw: a strict-mode _G must not object
    lua_pushstring(L, global);
    lua_rotate(L, -3, -1);     // table, key, value
    lua_rawset(L, -3);
    lua_pop(L, 1);
  } else {
    lua_setfield(L, LUA_REGISTRYINDEX, regkey);
  }
}

// Reads the history file, creating it if missing (readline appends only to
// an existing file).
void load_history(const std::string& hist) {
  if (hist.empty()) return;
  if (read_history(hist.c_str()) == ENOENT) write_history(hist.c_str());
}

}  // namespace

void run(lua_State* L) {
  Session session;
  session.L = L;
  g_session = &session;

  rl_readline_name = "luamp";
  rl_catch_signals = 0;  // SIGINT is ours (see the header comment)
  rl_catch_sigwinch = 0;
  rl_attempted_completion_function = complete;
  rl_completer_word_break_characters = const_cast<char*>(kWordBreaks);
  using_history();
  stifle_history(kHistoryMax);
  history_write_timestamps = 1;   // "#<time>" before each entry in the file...
  history_comment_char = '#';
  history_multiline_entries = 1;  // ...so multi-line chunks read back whole
  std::string hist = history_path();
  load_history(hist);

  struct sigaction sa {}, old {}, old_winch {};
  sa.sa_handler = on_prompt_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old);
  sa.sa_handler = on_sigwinch;
  sa.sa_flags = SA_RESTART;  // a resize must not disturb running code
  sigaction(SIGWINCH, &sa, &old_winch);

  lua_pushglobaltable(L);
  lua_pushliteral(L, "mp");
  bool have_mp = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  if (!have_mp) require_into(L, "multiprocessing", "mp", nullptr);
  require_into(L, "luamp.complete", nullptr, kCompleterKey);

  for (;;) {
    int top = lua_gettop(L);
    int status = load_chunk(L, hist);
    if (status == -1) break;
    if (status == -2) continue;  // Ctrl-C at the prompt
    if (status == LUA_OK) status = host::docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK) {
      print_results(L, lua_gettop(L) - top);
    } else {
      host::report(L, status, false);
    }
    lua_settop(L, top);
  }
  lua_settop(L, 0);
  if (!hist.empty()) history_truncate_file(hist.c_str(), kHistoryMax);
  sigaction(SIGINT, &old, nullptr);
  sigaction(SIGWINCH, &old_winch, nullptr);
  g_session = nullptr;
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace luamp::repl
