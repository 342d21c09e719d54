// OS queries and sleep: see system.h.
#include "mp/system.h"

#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>

#include "mp/interrupt.h"
#include "mp/lua_util.h"

namespace luamp {

double monotonic_seconds() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// mp.cpu_count() -> number of online CPUs (Python's os.cpu_count()).
int system_cpu_count(lua_State* L) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  lua_pushinteger(L, n > 0 ? n : 1);
  return 1;
}

int system_getpid(lua_State* L) {
  lua_pushinteger(L, getpid());
  return 1;
}

int system_getppid(lua_State* L) {
  lua_pushinteger(L, getppid());
  return 1;
}

int system_monotonic(lua_State* L) {
  lua_pushnumber(L, monotonic_seconds());
  return 1;
}

// os.sleep(seconds): fractional seconds; a signal does not shorten it (the
// sleep resumes until the deadline), but Ctrl-C raises "interrupted!".
int system_sleep(lua_State* L) {
  double seconds = luaL_checknumber(L, 1);
  luaL_argcheck(L, !std::isnan(seconds) && seconds >= 0, 1, "must be a non-negative number");
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  double whole;
  double frac = std::modf(seconds, &whole);
  if (whole > 1e12) whole = 1e12;  // far enough in the future
  deadline.tv_sec += static_cast<time_t>(whole);
  deadline.tv_nsec += static_cast<long>(frac * 1e9);
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1000000000L;
  }
  for (;;) {
    int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nullptr);
    if (rc == 0) break;
    if (rc == EINTR) {
      if (interrupt::pending()) return luaL_error(L, "%s", interrupt::kMessage);
      continue;
    }
    return luaL_error(L, "sleep failed (error %d)", rc);
  }
  return 0;
}

void open_system(lua_State* L) {
  static const luaL_Reg funcs[] = {
      {"cpu_count", system_cpu_count}, {"getpid", system_getpid}, {"getppid", system_getppid},
      {"monotonic", system_monotonic}, {"sleep", system_sleep},   {nullptr, nullptr}};
  luaL_setfuncs(L, funcs, 0);
}

}  // namespace luamp
