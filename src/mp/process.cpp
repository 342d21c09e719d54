// Native side of Process: see process.h.  Used by
// src/lua/multiprocessing.process.lua and multiprocessing.popen.lua.
//
// Sentinels: fork() gets a pipe whose write end only the child keeps (it is
// closed in the parent); the parent's read end becomes readable (EOF) when
// the child has exited.  A child closes the write end of its own sentinel
// in its children (after_fork_child), so grandchildren never hold it.
#include "mp/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "mp/interrupt.h"
#include "mp/lua_util.h"
#include "mp/shm.h"
#include "mp/system.h"
#include "mp/unique.h"

extern char** environ;

namespace luamp {
namespace {

// Registry key: the write end of this process's own sentinel pipe (if it was
// forked by a luamp parent), to be closed in each child it forks.
constexpr const char* kOwnSentinelKey = "luamp.process.own_sentinel";

int own_sentinel(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kOwnSentinelKey);
  int fd = lua_isinteger(L, -1) ? static_cast<int>(lua_tointeger(L, -1)) : -1;
  lua_pop(L, 1);
  return fd;
}

// Reads an optional timeout argument: nil/none -> negative (forever).
double opt_timeout(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return -1;
  double t = luaL_checknumber(L, idx);
  if (std::isnan(t)) luaL_argerror(L, idx, "timeout is NaN");
  return t < 0 ? 0 : t;
}

// core.fork([daemon [, child_main]]) -> 0 in the child; pid, sentinel_fd in
// the parent.  Flushes stdio first so buffered output is not written twice.
// A daemon child asks the kernel for SIGKILL when its parent dies.  With
// child_main, the child does not return at all: it calls child_main() in
// protected mode and leaves with _exit(its integer result), or 1 after
// printing the error, so no error (not even a Ctrl-C that arrives before
// the target runs) can send the child back into its parent's code.
int process_fork(lua_State* L) {
  bool die_with_parent = lua_toboolean(L, 1);
  bool has_main = !lua_isnoneornil(L, 2);
  if (has_main) luaL_checktype(L, 2, LUA_TFUNCTION);
  // Children must inherit the shared-memory tracker's socket (shm.h).
  try {
    shm::ensure_tracker();
  } catch (Failure&) {
    // No tracker: segments are still freed by their last holder.
  }
  std::fflush(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    int err = errno;
    return luaL_error(L, "fork: cannot create sentinel pipe: %s", std::strerror(err));
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return luaL_error(L, "fork: %s", std::strerror(err));
  }
  if (pid == 0) {
    close(fds[0]);
    int previous = own_sentinel(L);
    if (previous >= 0) close(previous);
    lua_pushinteger(L, fds[1]);
    lua_setfield(L, LUA_REGISTRYINDEX, kOwnSentinelKey);
    if (die_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);  // the parent died before prctl
    }
    if (has_main) {
      lua_pushvalue(L, 2);
      int code = 1;
      if (lua_pcall(L, 0, 1, 0) == LUA_OK) {
        if (lua_isinteger(L, -1)) code = static_cast<int>(lua_tointeger(L, -1));
      } else {
        const char* msg = lua_tostring(L, -1);
        std::fprintf(stderr, "Process %d: %s\n", static_cast<int>(getpid()), msg ? msg : "(error object)");
      }
      std::fflush(nullptr);
      shm::release_all();  // this process's holds on shared segments, as core.exit does
      _exit(code);
    }
    lua_pushinteger(L, 0);
    return 1;
  }
  close(fds[1]);
  lua_pushinteger(L, pid);
  lua_pushinteger(L, fds[0]);
  return 2;
}

}  // namespace

int exitcode_from_status(int status) {
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 0;
}

namespace {

// core.waitpid(pid, block) -> exitcode, or nil if still running (block false).
// Blocking waits are interruptible by Ctrl-C.
int process_waitpid(lua_State* L) {
  pid_t pid = static_cast<pid_t>(luaL_checkinteger(L, 1));
  bool block = lua_toboolean(L, 2);
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, block ? 0 : WNOHANG);
    if (r == pid) {
      lua_pushinteger(L, exitcode_from_status(status));
      return 1;
    }
    if (r == 0) {
      lua_pushnil(L);
      return 1;
    }
    if (errno == EINTR) {
      if (interrupt::pending()) return luaL_error(L, "%s", interrupt::kMessage);
      continue;
    }
    if (errno == ECHILD) {  // already reaped elsewhere: report nothing known
      lua_pushnil(L);
      lua_pushstring(L, "no such child");
      return 2;
    }
    int err = errno;
    return luaL_error(L, "waitpid(%d): %s", static_cast<int>(pid), std::strerror(err));
  }
}

// core.wait_readable(fd, timeout) -> true when fd is readable (or hung up)
// before the timeout (seconds; nil waits forever), false otherwise.
int process_wait_readable(lua_State* L) {
  int fd = static_cast<int>(luaL_checkinteger(L, 1));
  double timeout = opt_timeout(L, 2);
  double deadline = timeout < 0 ? -1 : monotonic_seconds() + timeout;
  for (;;) {
    int ms = -1;
    if (deadline >= 0) {
      double left = deadline - monotonic_seconds();
      if (left < 0) left = 0;
      ms = left > INT_MAX / 1000.0 ? INT_MAX : static_cast<int>(std::ceil(left * 1000));
    }
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, ms);
    if (r > 0) {
      if (p.revents & POLLNVAL) return luaL_error(L, "wait: bad file descriptor %d", fd);
      lua_pushboolean(L, 1);
      return 1;
    }
    if (r == 0) {
      lua_pushboolean(L, 0);
      return 1;
    }
    if (errno == EINTR) {
      if (interrupt::pending()) return luaL_error(L, "%s", interrupt::kMessage);
      continue;
    }
    int err = errno;
    return luaL_error(L, "poll: %s", std::strerror(err));
  }
}

// core.kill(pid, signal_number) -> true, or nil, message (e.g. no such process).
int process_kill(lua_State* L) {
  pid_t pid = static_cast<pid_t>(luaL_checkinteger(L, 1));
  int sig = static_cast<int>(luaL_checkinteger(L, 2));
  luaL_argcheck(L, pid > 0, 1, "pid must be positive");
  if (kill(pid, sig) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  int err = errno;
  lua_pushnil(L);
  lua_pushstring(L, std::strerror(err));
  return 2;
}

// core.close_fd(fd): closes a descriptor owned by Lua code (sentinels).
int process_close_fd(lua_State* L) {
  int fd = static_cast<int>(luaL_checkinteger(L, 1));
  if (fd >= 0) close(fd);
  return 0;
}

// core.exit(code): flushes stdio and leaves the process at once, without
// running the caller's code any further (a forked child never returns).
int process_exit(lua_State* L) {
  int code = static_cast<int>(luaL_optinteger(L, 1, 0));
  std::fflush(nullptr);
  shm::release_all();  // this process's holds on shared segments
  _exit(code);
}

// core.run_protected(f, ...) -> true, results... | false, message_with_traceback
// Runs f with Ctrl-C armed, then forgets any pending interrupt, so the
// caller (a child's bootstrap) can report and exit normally.
int message_handler(lua_State* L) {
  const char* msg = lua_tostring(L, 1);
  if (msg == nullptr) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  // Frames below run_protected belong to whoever started the child (the
  // parent's stack, under fork): cut the traceback there.
  size_t len;
  const char* tb = lua_tolstring(L, -1, &len);
  const char* cut = std::strstr(tb, "\n\t[C]: in function 'multiprocessing.core.run_protected'");
  if (cut) {
    const char* tail = "\n\t(...tail calls...)";
    size_t n = static_cast<size_t>(cut - tb);
    size_t tl = std::strlen(tail);
    if (n >= tl && std::memcmp(cut - tl, tail, tl) == 0) n -= tl;
    lua_pushlstring(L, tb, n);
  }
  return 1;
}

int process_run_protected(lua_State* L) {
  luaL_checkany(L, 1);
  int nargs = lua_gettop(L) - 1;
  lua_pushcfunction(L, message_handler);
  lua_insert(L, 1);
  interrupt::arm(L);
  int status = lua_pcall(L, nargs, LUA_MULTRET, 1);
  interrupt::clear(L);
  lua_pushboolean(L, status == LUA_OK);
  lua_replace(L, 1);
  return lua_gettop(L);
}

// core.random_bytes(n) -> n bytes from the kernel's CSPRNG (authkeys).
int process_random_bytes(lua_State* L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0 && n <= 4096, 1, "size out of range");
  char buf[4096];
  size_t got = 0;
  while (got < static_cast<size_t>(n)) {
    ssize_t r = getrandom(buf + got, static_cast<size_t>(n) - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      return luaL_error(L, "getrandom: %s", std::strerror(err));
    }
    got += static_cast<size_t>(r);
  }
  lua_pushlstring(L, buf, got);
  return 1;
}

// core.executable() -> path of the running binary (/proc/self/exe).
int process_executable(lua_State* L) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushlstring(L, buf, static_cast<size_t>(n));
  return 1;
}

// core.spawn_exec(executable, argv_table, keep_fds_table [, die_with_parent])
// -> pid.  Forks and execs `executable` with the given argv; the fds listed
// in keep_fds stay open across exec (everything else luamp opens is
// close-on-exec).
int process_spawn_exec(lua_State* L) {
  const char* exe = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  bool die_with_parent = lua_toboolean(L, 4);
  return run_guarded(L, [&] {
    std::vector<std::string> args;
    for (lua_Integer i = 1;; ++i) {
      if (lua_rawgeti(L, 2, i) == LUA_TNIL) {
        lua_pop(L, 1);
        break;
      }
      size_t n;
      const char* s = lua_tolstring(L, -1, &n);
      if (!s) {
        lua_pop(L, 1);
        throw Failure::plain("spawn: argv entries must be strings");
      }
      args.emplace_back(s, n);
      lua_pop(L, 1);
    }
    std::vector<int> keep;
    for (lua_Integer i = 1;; ++i) {
      if (lua_rawgeti(L, 3, i) == LUA_TNIL) {
        lua_pop(L, 1);
        break;
      }
      keep.push_back(static_cast<int>(lua_tointeger(L, -1)));
      lua_pop(L, 1);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    // Fail in the caller, as Python does, rather than in a child that
    // cannot exec (which could only report exit code 127).
    if (access(exe, X_OK) != 0) throw Failure::os(std::string("spawn: cannot execute '") + exe + "'", errno, exe);
    int own = own_sentinel(L);
    // The child keeps the shared-memory tracker's socket across exec and
    // finds it through LUAMP_TRACKER_FD (shm.h); the exec'd child does not
    // hold the parent's segments, so the fork does not count it.
    try {
      shm::ensure_tracker();
    } catch (Failure&) {
    }
    if (shm::tracker_fd() >= 0) {
      keep.push_back(shm::tracker_fd());
      setenv(shm::kTrackerEnv, shm::tracker_env_value().c_str(), 1);
    }
    shm::ForkWithoutHolds no_holds;
    std::fflush(nullptr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) throw Failure::os("spawn: fork", errno);
    if (pid == 0) {
      // Child: only async-signal-safe calls until exec.
      if (own >= 0) close(own);
      for (int fd : keep) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
      }
      if (die_with_parent) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
      }
      execve(exe, argv.data(), environ);
      const char msg[] = "luamp: spawn: cannot exec the luamp executable\n";
      ssize_t ignored = write(2, msg, sizeof msg - 1);
      (void)ignored;
      _exit(127);
    }
    lua_pushinteger(L, pid);
    return 1;
  });
}

// core.pipe() -> read_fd, write_fd (both close-on-exec).
int process_pipe(lua_State* L) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    int err = errno;
    return luaL_error(L, "pipe: %s", std::strerror(err));
  }
  lua_pushinteger(L, fds[0]);
  lua_pushinteger(L, fds[1]);
  return 2;
}

// core.memfd_from(bytes) -> fd: an anonymous file holding the bytes,
// positioned at 0 (close-on-exec).  Spawn and forkserver payloads travel so.
int process_memfd_from(lua_State* L) {
  size_t len;
  const char* data = luaL_checklstring(L, 1, &len);
  return run_guarded(L, [&] {
    UniqueFd fd(memfd_create("luamp-payload", MFD_CLOEXEC));
    if (!fd) throw Failure::os("memfd_create", errno);
    size_t done = 0;
    while (done < len) {
      ssize_t n = write(fd.get(), data + done, len - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw Failure::os("memfd write", errno);
      }
      done += static_cast<size_t>(n);
    }
    if (lseek(fd.get(), 0, SEEK_SET) != 0) throw Failure::os("memfd lseek", errno);
    lua_pushinteger(L, fd.release());
    return 1;
  });
}

// core.read_fd(fd) -> the rest of the file's bytes; closes fd.
int process_read_fd(lua_State* L) {
  int raw = static_cast<int>(luaL_checkinteger(L, 1));
  return run_guarded(L, [&] {
    UniqueFd fd(raw);
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = read(fd.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw Failure::os("read payload", errno);
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    lua_pushlstring(L, out.data(), out.size());
    return 1;
  });
}

// core.set_own_sentinel(fd): a spawned child records the write end of its
// sentinel (passed in its payload) so that its own children do not keep it.
int process_set_own_sentinel(lua_State* L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  lua_pushinteger(L, fd);
  lua_setfield(L, LUA_REGISTRYINDEX, kOwnSentinelKey);
  return 0;
}

// core.die_with_parent(): the calling process gets SIGKILL when its parent
// exits (used by spawned daemons and workers after exec).
int process_die_with_parent(lua_State* L) {
  pid_t expected = static_cast<pid_t>(luaL_optinteger(L, 1, 0));
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (expected > 0 && getppid() != expected) _exit(1);
  return 0;
}

// core.ignore_sigint(): SIGINT is ignored from now on (pool workers, servers).
int process_ignore_sigint(lua_State* L) {
  (void)L;
  signal(SIGINT, SIG_IGN);
  return 0;
}

// core.ignore_sigterm(): SIGTERM is ignored from now on (a pool worker that
// is leaving by itself finishes its cleanup; its owner's SIGKILL still
// ends a worker that takes too long).
int process_ignore_sigterm(lua_State* L) {
  (void)L;
  signal(SIGTERM, SIG_IGN);
  return 0;
}

// core.restore_sigint(): back to the default SIGINT disposition.
int process_restore_sigint(lua_State* L) {
  (void)L;
  signal(SIGINT, SIG_DFL);
  return 0;
}

}  // namespace

void open_process(lua_State* L) {
  static const luaL_Reg funcs[] = {{"fork", process_fork},
                                   {"waitpid", process_waitpid},
                                   {"wait_readable", process_wait_readable},
                                   {"kill", process_kill},
                                   {"close_fd", process_close_fd},
                                   {"exit", process_exit},
                                   {"run_protected", process_run_protected},
                                   {"random_bytes", process_random_bytes},
                                   {"executable", process_executable},
                                   {"spawn_exec", process_spawn_exec},
                                   {"pipe", process_pipe},
                                   {"memfd_from", process_memfd_from},
                                   {"read_fd", process_read_fd},
                                   {"set_own_sentinel", process_set_own_sentinel},
                                   {"die_with_parent", process_die_with_parent},
                                   {"ignore_sigint", process_ignore_sigint},
                                   {"ignore_sigterm", process_ignore_sigterm},
                                   {"restore_sigint", process_restore_sigint},
                                   {nullptr, nullptr}};
  luaL_setfuncs(L, funcs, 0);
  static const struct {
    const char* name;
    int value;
  } signals[] = {{"SIGTERM", SIGTERM}, {"SIGKILL", SIGKILL}, {"SIGINT", SIGINT},
                 {"SIGSEGV", SIGSEGV}, {"SIGABRT", SIGABRT}, {"SIGHUP", SIGHUP},
                 {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGCHLD", SIGCHLD}};
  lua_newtable(L);
  for (const auto& s : signals) {
    lua_pushinteger(L, s.value);
    lua_setfield(L, -2, s.name);
  }
  lua_setfield(L, -2, "signals");
}

}  // namespace luamp
