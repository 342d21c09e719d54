// SIGINT -> "interrupted!" for running Lua code and blocking native calls.
// See interrupt.h.  The statics here are the only process-wide state the
// signal handler may touch: a sig_atomic_t flag and the state to hook (as
// lua.c keeps `globalL`).
#include "mp/interrupt.h"

#include <signal.h>

namespace luamp::interrupt {
namespace {

volatile sig_atomic_t g_pending = 0;
lua_State* volatile g_state = nullptr;
// The SIGINT disposition arm() replaced, restored by disarm() (the REPL has
// its own prompt handler there).  Never touched by the signal handler.
struct sigaction g_saved;
bool g_have_saved = false;

// Count hook: raise while the interrupt is pending.  The hook stays
// installed, so catching the error with pcall only delays the next raise by
// one instruction.
void stop_hook(lua_State* L, lua_Debug*) {
  if (g_pending) luaL_error(L, "%s", kMessage);
  lua_sethook(L, nullptr, 0, 0);
}

void on_sigint(int) {
  g_pending = 1;
  lua_State* L = g_state;
  // lua_sethook is documented as safe to call from a signal handler.
  if (L) lua_sethook(L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

}  // namespace

void arm(lua_State* L) {
  g_pending = 0;
  g_state = L;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls see EINTR
  struct sigaction old {};
  // A process that ignores SIGINT (pool workers, servers, `nohup`) keeps
  // ignoring it: the decision is its owner's.
  sigaction(SIGINT, nullptr, &old);
  if (old.sa_handler == SIG_IGN) return;
  sigaction(SIGINT, &sa, &old);
  if (old.sa_handler != on_sigint) {  // not re-armed: remember the caller's
    g_saved = old;
    g_have_saved = true;
  }
}

void disarm(lua_State* L) {
  // Put back what arm() replaced; if arm() left an ignored SIGINT alone
  // there is nothing to restore.
  if (g_have_saved) sigaction(SIGINT, &g_saved, nullptr);
  g_have_saved = false;
  clear(L);
  g_state = nullptr;
}

bool pending() { return g_pending != 0; }

void clear(lua_State* L) {
  g_pending = 0;
  if (L) lua_sethook(L, nullptr, 0, 0);
}

}  // namespace luamp::interrupt
