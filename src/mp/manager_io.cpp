// Manager wire I/O: one framed, codec-encoded message over a Connection's
// socket, with a deadline on both directions.  Used only by the embedded
// managers (src/lua/multiprocessing.managers*.lua): the server must never be
// wedged by a client that sends half a frame, sends garbage, or does not read
// its replies (docs/design/managers.md), and a proxy call is one send plus
// one receive done in a single native call.
//
// The frames are the Connection frames (connection.h: 4-byte big-endian
// length, then the payload), so the handshake done by Listener/Client and
// these calls share one socket.  No file descriptors travel: a proxy call
// carrying a Connection raises the codec's "carries no file descriptors".
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "mp/codec.h"
#include "mp/connection.h"
#include "mp/interrupt.h"
#include "mp/lua_util.h"
#include "mp/manager_io.h"
#include "mp/system.h"

namespace luamp {
namespace {

// Thrown when a deadline passes; the Lua side sees the message "timed out".
constexpr const char* kTimedOut = "timed out";

// Waits for `events` on fd until the absolute monotonic `deadline` (< 0:
// forever).  Returns false when the deadline passed.  EINTR checks Ctrl-C.
bool wait_fd(int fd, short events, double deadline) {
  if (events == POLLIN) {
    struct pollfd p {fd, events, 0};
    if (connection::spin_until_ready(&p, 1)) return true;
  }
  for (;;) {
    int ms = -1;
    if (deadline >= 0) {
      double left = deadline - monotonic_seconds();
      if (left <= 0) return false;
      ms = static_cast<int>(std::ceil(std::min(left, 86400.0) * 1000.0));
    }
    struct pollfd p {fd, events, 0};
    int rc = ::poll(&p, 1, ms);
    if (rc > 0) return true;
    if (rc < 0) {
      if (errno != EINTR) throw Failure::os("poll", errno);
      if (interrupt::pending()) throw Failure::plain(interrupt::kMessage);
    }
  }
}

// Writes all of data[0..n) before the deadline (socket, never SIGPIPE).
void write_all(int fd, const char* data, size_t n, double deadline) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = ::send(fd, data + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w >= 0) {
      done += static_cast<size_t>(w);
      continue;
    }
    if (errno == EINTR) {
      if (interrupt::pending()) throw Failure::plain(interrupt::kMessage);
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw Failure::os("send", errno);
    if (!wait_fd(fd, POLLOUT, deadline)) throw Failure::plain(kTimedOut);
  }
}

// Reads up to n bytes (at least 1) before the deadline; 0 means end of file.
size_t read_some(int fd, char* p, size_t n, double deadline) {
  // Without a deadline, a plain blocking recv (one syscall; a Connection's
  // socket is blocking); with one, poll between non-blocking attempts.
  int flags = deadline < 0 ? 0 : MSG_DONTWAIT;
  for (;;) {
    ssize_t r = ::recv(fd, p, n, flags);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno == EINTR) {
      if (interrupt::pending()) throw Failure::plain(interrupt::kMessage);
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw Failure::os("recv", errno);
    if (!wait_fd(fd, POLLIN, deadline)) throw Failure::plain(kTimedOut);
  }
}

void read_exact(int fd, char* p, size_t n, double deadline) {
  size_t done = 0;
  while (done < n) {
    size_t got = read_some(fd, p + done, n - done, deadline);
    if (got == 0) throw Failure::of("EOFError", "got end of file during message");
    done += got;
  }
}

// Reads one frame into `out`.  Returns false on a clean end of file before
// the first byte.  The first read takes up to 64 KiB, so a small message
// costs one recv: a peer of the manager protocol never sends a second frame
// before the answer to the first, so bytes past the frame are a protocol
// violation ("unexpected data").  The body buffer then grows with the bytes
// that actually arrive, so a garbage length costs no memory until data
// backs it.
bool read_frame(int fd, std::string& out, double deadline, size_t maxlength) {
  constexpr size_t kFirst = 64 * 1024;
  char first[kFirst];
  size_t got = read_some(fd, first, kFirst, deadline);
  if (got == 0) return false;
  if (got < 4) {
    read_exact(fd, first + got, 4 - got, deadline);
    got = 4;
  }
  const auto* u = reinterpret_cast<const unsigned char*>(first);
  uint32_t raw = (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
  if (raw & 0x80000000u) throw Failure::plain("bad message length");
  size_t size = raw;
  if (size > maxlength) throw Failure::plain("bad message length");
  if (got - 4 > size) throw Failure::plain("unexpected data after a message");
  out.assign(first + 4, got - 4);
  size_t chunk = 64 * 1024;
  while (out.size() < size) {
    size_t want = std::min(size - out.size(), chunk);
    size_t at = out.size();
    out.resize(at + want);
    read_exact(fd, out.data() + at, want, deadline);
    chunk = std::min<size_t>(chunk * 2, 16u << 20);
  }
  return true;
}

// Writes one frame (header and payload) before the deadline.  Small frames
// go in one send; large ones without copying the payload.
void write_frame(int fd, const char* data, size_t size, double deadline) {
  if (size > 0x7fffffffu) throw Failure::plain("message too long for a manager (2 GiB or more)");
  uint32_t n = static_cast<uint32_t>(size);
  char h[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
               static_cast<char>(n)};
  if (size <= 64 * 1024) {
    char small[4 + 64 * 1024];
    std::memcpy(small, h, 4);
    std::memcpy(small + 4, data, size);
    write_all(fd, small, 4 + size, deadline);
    return;
  }
  write_all(fd, h, 4, deadline);
  write_all(fd, data, size, deadline);
}

// The deadline for an optional timeout argument at idx (nil: none).
double deadline_at(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return -1;
  double t = luaL_checknumber(L, idx);
  return monotonic_seconds() + std::max(t, 0.0);
}

int open_fd(lua_State* L, int idx) {
  int fd = connection::connection_fd(L, idx);
  if (fd < 0) luaL_typeerror(L, idx, "Connection");
  return fd;
}

// core.manager_send(conn, payload [, timeout]): writes the bytes `payload`
// (a message already encoded with core.dumps) as one frame, giving up
// ("timed out") when the peer does not read in time.
int manager_send(lua_State* L) {
  int fd = open_fd(L, 1);
  size_t n;
  const char* p = luaL_checklstring(L, 2, &n);
  double deadline = deadline_at(L, 3);
  return run_guarded(L, [&] {
    write_frame(fd, p, n, deadline);
    return 0;
  });
}

// core.manager_recv(conn [, timeout [, maxlength]]) -> true, v | false (end
// of file).  Raises "timed out", "bad message length", a corrupt message.
int manager_recv(lua_State* L) {
  int fd = open_fd(L, 1);
  double deadline = deadline_at(L, 2);
  lua_Integer maxlength = luaL_optinteger(L, 3, 0x7fffffff);
  lua_settop(L, 1);
  return run_guarded(L, [&] {
    std::string in;
    if (!read_frame(fd, in, deadline, static_cast<size_t>(std::max<lua_Integer>(maxlength, 0)))) {
      lua_pushboolean(L, 0);
      return 1;
    }
    lua_pushboolean(L, 1);
    codec::DecodeContext ctx;
    codec::decode(L, in.data(), in.size(), ctx);
    return 2;
  });
}

// core.manager_call(conn, payload) -> true, reply | false (end of file):
// one proxy call: writes the encoded request, waits for the reply frame and
// decodes it, in a single native call.
int manager_call(lua_State* L) {
  int fd = open_fd(L, 1);
  size_t n;
  const char* p = luaL_checklstring(L, 2, &n);
  lua_settop(L, 2);
  return run_guarded(L, [&] {
    write_frame(fd, p, n, -1);
    std::string buf;
    if (!read_frame(fd, buf, -1, 0x7fffffff)) {
      lua_pushboolean(L, 0);
      return 1;
    }
    lua_pushboolean(L, 1);
    codec::DecodeContext ctx;
    codec::decode(L, buf.data(), buf.size(), ctx);
    return 2;
  });
}

}  // namespace

void open_manager_io(lua_State* L) {
  static const luaL_Reg funcs[] = {{"manager_send", manager_send},
                                   {"manager_recv", manager_recv},
                                   {"manager_call", manager_call},
                                   {nullptr, nullptr}};
  luaL_setfuncs(L, funcs, 0);
}

}  // namespace luamp
