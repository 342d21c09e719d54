// The forkserver start method, native side: a single-threaded server
// process (started once, by exec of a fresh luamp that has loaded
// multiprocessing) forks a child for each request.  Used by
// src/lua/multiprocessing.forkserver.lua.
//
// Protocol over a Unix stream socket (abstract address):
//   client -> server: 8 bytes "LMPFSRQ1" ("LMPFSRQD" for a daemon) with
//                     SCM_RIGHTS [payload memfd, extra fds...]
//   server -> client: int64 pid of the new child, then int64 exit code when it
//                     exits (-N for signal N); then the server closes.
// The client's connection is the child's sentinel: readable once the exit
// code has arrived.  The payload (encoded process object) travels in a
// memfd, so a slow or silent client never holds up the server for long.
// When a client's end of the connection closes while its daemonic child
// still runs, the requesting process is gone: the server kills the child,
// as the kernel does for daemons started by fork or spawn.
#include "mp/forkserver.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "mp/interrupt.h"
#include "mp/lua_util.h"
#include "mp/process.h"
#include "mp/unique.h"

namespace luamp {
namespace {

constexpr char kRequestMagic[8] = {'L', 'M', 'P', 'F', 'S', 'R', 'Q', '1'};
constexpr char kDaemonRequestMagic[8] = {'L', 'M', 'P', 'F', 'S', 'R', 'Q', 'D'};
constexpr int kMaxRequestFds = 64;
constexpr int kRequestTimeoutMs = 2000;

// Fills a sockaddr_un for an address whose first byte may be NUL (abstract).
socklen_t make_address(const std::string& address, sockaddr_un* sa) {
  std::memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (address.size() >= sizeof sa->sun_path) throw Failure::plain("forkserver: address too long");
  std::memcpy(sa->sun_path, address.data(), address.size());
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
}

// Writes all of buf; false on error (EPIPE included, never SIGPIPE).
bool send_all(int fd, const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// Reads exactly len bytes, waiting at most timeout_ms in total (-1: no
// limit).  Returns false on EOF, error or timeout.
bool recv_exact(int fd, void* buf, size_t len, int timeout_ms, bool interruptible) {
  char* p = static_cast<char*>(buf);
  while (len > 0) {
    struct pollfd pf = {fd, POLLIN, 0};
    int r = poll(&pf, 1, timeout_ms);
    if (r < 0) {
      if (errno == EINTR) {
        if (interruptible && interrupt::pending()) throw Failure::plain(interrupt::kMessage);
        continue;
      }
      return false;
    }
    if (r == 0) return false;
    ssize_t n = recv(fd, p, len, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return false;
    }
    if (n == 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// core.forkserver_listen() -> listen_fd, address.  A fresh abstract Unix
// address; the fd is close-on-exec (the launcher keeps it for the server).
int forkserver_listen(lua_State* L) {
  return run_guarded(L, [&] {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw Failure::os("forkserver: socket", errno);
    unsigned char rnd[8];
    if (getentropy(rnd, sizeof rnd) != 0) throw Failure::os("forkserver: getentropy", errno);
    char name[80];
    int n = std::snprintf(name, sizeof name, "luamp-forkserver-%d-", static_cast<int>(getpid()));
    for (unsigned char b : rnd) n += std::snprintf(name + n, sizeof name - static_cast<size_t>(n), "%02x", b);
    std::string address(1, '\0');
    address += name;
    sockaddr_un sa;
    socklen_t len = make_address(address, &sa);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) throw Failure::os("forkserver: bind", errno);
    if (listen(fd.get(), 128) != 0) throw Failure::os("forkserver: listen", errno);
    lua_pushinteger(L, fd.release());
    lua_pushlstring(L, address.data(), address.size());
    return 2;
  });
}

// Receives one request on conn: the fds it carries (payload memfd first).
// Returns false for a malformed, silent or truncated request.
bool receive_request(int conn, std::vector<int>& fds, bool* daemon) {
  struct pollfd pf = {conn, POLLIN, 0};
  for (;;) {
    int r = poll(&pf, 1, kRequestTimeoutMs);
    if (r > 0) break;
    if (r < 0 && errno == EINTR) continue;
    return false;
  }
  char magic[sizeof kRequestMagic];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxRequestFds)];
  iovec iov = {magic, sizeof magic};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const int* data = reinterpret_cast<const int*>(CMSG_DATA(c));
      for (size_t i = 0; i < count; ++i) fds.push_back(data[i]);
    }
  }
  *daemon = n == static_cast<ssize_t>(sizeof magic) &&
            std::memcmp(magic, kDaemonRequestMagic, sizeof magic) == 0;
  bool ok = n == static_cast<ssize_t>(sizeof magic) && !(msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) &&
            (*daemon || std::memcmp(magic, kRequestMagic, sizeof magic) == 0) && !fds.empty();
  if (!ok) {
    for (int fd : fds) close(fd);
    fds.clear();
  }
  return ok;
}

// core.forkserver_serve(listen_fd, alive_fd) serves requests until alive_fd
// reports EOF (the process that started the server is gone), then returns
// nothing.  In each forked child it returns instead: payload_fd, {fds...}.
int forkserver_serve(lua_State* L) {
  int listen_fd = static_cast<int>(luaL_checkinteger(L, 1));
  int alive_fd = static_cast<int>(luaL_checkinteger(L, 2));
  return run_guarded(L, [&]() -> int {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, nullptr);
    UniqueFd sigfd(signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sigfd) throw Failure::os("forkserver: signalfd", errno);
    struct Client {
      int fd;        // connection to report the exit code to
      bool daemon;   // kill the child if the client goes away first
      bool watched;  // still polled for hang-up
    };
    std::map<pid_t, Client> clients;  // child pid -> its requester

    auto reap = [&] {
      for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        auto it = clients.find(pid);
        if (it == clients.end()) continue;
        int64_t code = exitcode_from_status(status);
        send_all(it->second.fd, &code, sizeof code);
        close(it->second.fd);
        clients.erase(it);
      }
    };

    std::vector<struct pollfd> pfds;
    std::vector<pid_t> watched_pids;
    for (;;) {
      pfds.assign({{listen_fd, POLLIN, 0}, {alive_fd, POLLIN, 0}, {sigfd.get(), POLLIN, 0}});
      watched_pids.clear();
      for (auto& c : clients) {
        if (!c.second.watched) continue;
        pfds.push_back({c.second.fd, POLLRDHUP, 0});
        watched_pids.push_back(c.first);
      }
      int r = poll(pfds.data(), pfds.size(), -1);
      if (r < 0) {
        if (errno == EINTR) continue;
        throw Failure::os("forkserver: poll", errno);
      }
      for (size_t i = 3; i < pfds.size(); ++i) {
        if (!pfds[i].revents) continue;
        auto it = clients.find(watched_pids[i - 3]);
        if (it == clients.end()) continue;
        it->second.watched = false;  // the requester is gone (or sent junk)
        if (it->second.daemon) kill(it->first, SIGKILL);
      }
      if (pfds[2].revents) {
        signalfd_siginfo info;
        while (read(sigfd.get(), &info, sizeof info) > 0) {
        }
        reap();
      }
      if (pfds[1].revents) break;  // our starter is gone
      if (!(pfds[0].revents & POLLIN)) continue;
      UniqueFd conn(accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) continue;
      std::vector<int> fds;
      bool daemon = false;
      if (!receive_request(conn.get(), fds, &daemon)) continue;  // costs only this connection
      std::fflush(nullptr);
      pid_t pid = fork();
      if (pid < 0) {
        for (int fd : fds) close(fd);
        continue;  // the client sees EOF instead of a pid
      }
      if (pid == 0) {
        // The child: drop everything of the server's and become a process.
        close(listen_fd);
        close(alive_fd);
        for (auto& c : clients) close(c.second.fd);
        conn.reset();
        sigfd.reset();
        sigprocmask(SIG_UNBLOCK, &chld, nullptr);
        // A daemon also dies with the server (which dies with its starter).
        if (daemon) {
          prctl(PR_SET_PDEATHSIG, SIGKILL);
          if (getppid() == 1) _exit(1);
        }
        lua_pushinteger(L, fds[0]);
        lua_createtable(L, static_cast<int>(fds.size()), 0);
        for (size_t i = 1; i < fds.size(); ++i) {
          lua_pushinteger(L, fds[i]);
          lua_rawseti(L, -2, static_cast<lua_Integer>(i));
        }
        return 2;
      }
      for (int fd : fds) close(fd);
      int64_t pid64 = pid;
      if (send_all(conn.get(), &pid64, sizeof pid64)) clients[pid] = Client{conn.release(), daemon, true};
    }
    for (auto& c : clients) close(c.second.fd);
    return 0;
  });
}

// core.forkserver_request(address, payload_fd, {fds} [, daemon]) -> conn_fd, pid
int forkserver_request(lua_State* L) {
  size_t alen;
  const char* addr = luaL_checklstring(L, 1, &alen);
  int payload_fd = static_cast<int>(luaL_checkinteger(L, 2));
  // Every check that can raise comes before the first C++ object.
  lua_Integer n = 0;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    n = static_cast<lua_Integer>(lua_rawlen(L, 3));
    luaL_argcheck(L, n < kMaxRequestFds, 3, "too many file descriptors");
  }
  bool daemon = lua_toboolean(L, 4);
  return run_guarded(L, [&] {
    std::vector<int> fds{payload_fd};
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L, 3, i);
      fds.push_back(static_cast<int>(lua_tointeger(L, -1)));
      lua_pop(L, 1);
    }
    std::string address(addr, alen);
    UniqueFd conn(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!conn) throw Failure::os("forkserver: socket", errno);
    sockaddr_un sa;
    socklen_t len = make_address(address, &sa);
    int r;
    do {
      r = connect(conn.get(), reinterpret_cast<sockaddr*>(&sa), len);
    } while (r != 0 && errno == EINTR);
    if (r != 0) throw Failure::os("forkserver: cannot reach the fork server", errno);
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxRequestFds)];
    std::memset(control, 0, sizeof control);
    iovec iov = {const_cast<char*>(daemon ? kDaemonRequestMagic : kRequestMagic), sizeof kRequestMagic};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    ssize_t n;
    do {
      n = sendmsg(conn.get(), &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof kRequestMagic)) throw Failure::os("forkserver: send request", errno);
    int64_t pid = 0;
    if (!recv_exact(conn.get(), &pid, sizeof pid, -1, true) || pid <= 0)
      throw Failure::plain("forkserver: the fork server did not start the process");
    lua_pushinteger(L, conn.release());
    lua_pushinteger(L, pid);
    return 2;
  });
}

// core.forkserver_status(conn_fd, block) -> exit code, or nil while the
// child runs (block false).  If the server vanished without reporting, the
// exit code is 255 (as CPython's forkserver reports it).
int forkserver_status(lua_State* L) {
  int fd = static_cast<int>(luaL_checkinteger(L, 1));
  bool block = lua_toboolean(L, 2);
  return run_guarded(L, [&] {
    struct pollfd pf = {fd, POLLIN, 0};
    if (!block) {
      int r;
      do {
        r = poll(&pf, 1, 0);
      } while (r < 0 && errno == EINTR);
      if (r <= 0) {
        lua_pushnil(L);
        return 1;
      }
    }
    int64_t code = 0;
    if (!recv_exact(fd, &code, sizeof code, -1, true)) code = 255;
    lua_pushinteger(L, code);
    return 1;
  });
}

}  // namespace

void open_forkserver(lua_State* L) {
  static const luaL_Reg funcs[] = {{"forkserver_listen", forkserver_listen},
                                   {"forkserver_serve", forkserver_serve},
                                   {"forkserver_request", forkserver_request},
                                   {"forkserver_status", forkserver_status},
                                   {nullptr, nullptr}};
  luaL_setfuncs(L, funcs, 0);
}

}  // namespace luamp
