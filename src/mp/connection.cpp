// Connections (API.md "Pipes and connections"; docs/api/connection.md):
// the mp.Connection and mp.Listener types, mp.Pipe, mp.connection.Client and
// mp.connection.wait, the frame format, fd passing, the HMAC handshake, and
// the byte-buffer capability registry (buffer.h).  Used from Lua through the
// core table (multiprocessing.init.lua builds mp.Pipe and mp.connection) and
// from C++ through connection.h.
#include "mp/connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "mp/buffer.h"
#include "mp/codec.h"
#include "mp/interrupt.h"
#include "mp/lua_util.h"
#include "mp/shared_memory.h"
#include "mp/sharedctypes.h"
#include "mp/system.h"
#include "mp/unique.h"

namespace luamp {

// ---------------------------------------------------------------------------
// The byte-buffer capability (buffer.h): registry table metatable -> getter.

namespace buffer {
namespace {
constexpr const char* kBuffersKey = "luamp.buffers";
}

// Keyed by metatable name (__name), so a type may be registered before or
// after its metatable is created.
void register_type(lua_State* L, const char* metatable_name, Getter getter) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, kBuffersKey);
  lua_pushlightuserdata(L, reinterpret_cast<void*>(getter));
  lua_setfield(L, -2, metatable_name);
  lua_pop(L, 1);
}

bool get(lua_State* L, int idx, ByteSpan* out) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TUSERDATA) return false;
  int type = luaL_getmetafield(L, idx, "__name");  // pushes nothing for nil
  if (type != LUA_TSTRING) {
    if (type != LUA_TNIL) lua_pop(L, 1);
    return false;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, kBuffersKey);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 2);
    return false;
  }
  lua_insert(L, -2);
  lua_rawget(L, -2);
  void* p = lua_touserdata(L, -1);
  lua_pop(L, 2);
  if (p == nullptr) return false;
  reinterpret_cast<Getter>(p)(L, idx, out);
  return true;
}

}  // namespace buffer

namespace connection {
namespace {

// ---------------------------------------------------------------------------
// Low-level I/O.  Every wait has an optional absolute monotonic deadline
// (< 0: none); EINTR re-checks the Ctrl-C flag and otherwise retries.

constexpr size_t kMaxFdsPerFrame = 64;
constexpr int32_t kBigFrameMarker = -1;
constexpr size_t kHandshakeMaxLength = 256;

[[noreturn]] void throw_interrupted() { throw Failure::plain(interrupt::kMessage); }

// Waits until fd has `events` (or an error/hangup).  Returns false when the
// deadline passed first.  deadline < 0 waits forever.
bool wait_fd(int fd, short events, double deadline) {
  for (;;) {
    int ms = -1;
    if (deadline >= 0) {
      double left = deadline - monotonic_seconds();
      if (left <= 0) {
        ms = 0;
      } else {
        ms = static_cast<int>(std::ceil(std::min(left, 86400.0) * 1000.0));
      }
    }
    struct pollfd p {fd, events, 0};
    int rc = ::poll(&p, 1, ms);
    if (rc > 0) return true;
    if (rc == 0) {
      if (ms == 0 || (deadline >= 0 && monotonic_seconds() >= deadline)) return false;
      continue;
    }
    if (errno == EINTR) {
      if (interrupt::pending()) throw_interrupted();
      continue;
    }
    throw Failure::os("poll", errno);
  }
}

// Writes to a pipe with SIGPIPE blocked, so a reader that went away gives
// EPIPE instead of killing the process; a SIGPIPE this write raised is
// consumed before the mask is restored.
ssize_t write_pipe(int fd, const struct iovec* iov, int iovcnt) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t n = ::writev(fd, iov, iovcnt);
  int saved = errno;
  if (n < 0 && saved == EPIPE) {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) && !sigismember(&old, SIGPIPE)) {
      struct timespec zero {0, 0};
      sigtimedwait(&pipe_set, nullptr, &zero);
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return n;
}

// Writes all of iov[0..iovcnt) (modified in place); fds go with the first
// chunk.  deadline as for wait_fd (only used for the handshake).
void write_all(int fd, bool is_socket, struct iovec* iov, int iovcnt, const std::vector<int>* fds,
               double deadline = -1) {
  bool fds_pending = fds != nullptr && !fds->empty();
  if (fds_pending && !is_socket) throw Failure::plain("cannot send file descriptors over a pipe");
  if (fds_pending && fds->size() > kMaxFdsPerFrame)
    throw Failure::plain("too many file descriptor objects in one message");
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerFrame)];
  while (iovcnt > 0) {
    if (iov->iov_len == 0) {
      ++iov;
      --iovcnt;
      continue;
    }
    if (deadline >= 0 && !wait_fd(fd, POLLOUT, deadline)) throw Failure::plain("timed out");
    ssize_t n;
    if (is_socket) {
      struct msghdr msg {};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(iovcnt);
      if (fds_pending) {
        size_t bytes = sizeof(int) * fds->size();
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(bytes);
        struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(bytes);
        std::memcpy(CMSG_DATA(cm), fds->data(), bytes);
      }
      n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    } else {
      n = write_pipe(fd, iov, iovcnt);
    }
    if (n < 0) {
      if (errno == EINTR) {
        if (interrupt::pending()) throw_interrupted();
        continue;
      }
      if (errno == EAGAIN) {  // a non-blocking fd handed to us: wait
        wait_fd(fd, POLLOUT, -1);
        continue;
      }
      throw Failure::os("send", errno);
    }
    fds_pending = false;
    size_t left = static_cast<size_t>(n);
    while (iovcnt > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --iovcnt;
    }
    if (iovcnt > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
}

// Reads up to n bytes; collects SCM_RIGHTS fds on a socket.  Returns 0 at
// end of file.  Throws on errors, a pending Ctrl-C, or the deadline.
size_t read_some(int fd, bool is_socket, char* p, size_t n, std::vector<int>* fds, double deadline) {
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerFrame)];
  // Before a read that would sleep, look for the data for a moment
  // (spin_until_ready).  A socket is first read without waiting, so data
  // already there costs no extra system call; a pipe is looked at first.
  struct pollfd ready {fd, POLLIN, 0};
  bool looked = !is_socket;
  if (looked) spin_until_ready(&ready, 1);
  for (;;) {
    if (looked && deadline >= 0 && !wait_fd(fd, POLLIN, deadline)) throw Failure::plain("timed out");
    ssize_t got;
    if (is_socket) {
      struct iovec iov {p, n};
      struct msghdr msg {};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      got = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | (looked ? 0 : MSG_DONTWAIT));
      if (got >= 0) {
        for (struct cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
          if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
          size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
          const unsigned char* data = CMSG_DATA(cm);
          for (size_t i = 0; i < count; ++i) {
            int received;
            std::memcpy(&received, data + i * sizeof(int), sizeof(int));
            if (fds != nullptr) {
              fds->push_back(received);
            } else {
              ::close(received);  // a peer sent fds where none are expected
            }
          }
        }
        if (msg.msg_flags & MSG_CTRUNC) throw Failure::plain("file descriptors lost in transit");
      }
    } else {
      got = ::read(fd, p, n);
    }
    if (got >= 0) return static_cast<size_t>(got);
    if (errno == EINTR) {
      if (interrupt::pending()) throw_interrupted();
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!looked) {
        looked = true;
        spin_until_ready(&ready, 1);
      } else {
        wait_fd(fd, POLLIN, -1);
      }
      continue;
    }
    throw Failure::os("recv", errno);
  }
}

// Reads exactly n bytes.  Returns false on end of file before the first byte
// when `eof_ok`; end of file later raises mp.EOFError.
bool read_exact(int fd, bool is_socket, char* p, size_t n, std::vector<int>* fds, double deadline,
                bool eof_ok) {
  size_t done = 0;
  while (done < n) {
    size_t got = read_some(fd, is_socket, p + done, n - done, fds, deadline);
    if (got == 0) {
      if (done == 0 && eof_ok) return false;
      throw Failure::of("EOFError", "got end of file during message");
    }
    done += got;
  }
  return true;
}

void put_be32(char* out, uint32_t v) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}

uint32_t get_be32(const char* in) {
  const auto* u = reinterpret_cast<const unsigned char*>(in);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

// Fills `header` for a payload of `size` bytes; returns the header length.
size_t make_header(char header[12], size_t size) {
  if (size <= 0x7fffffffu) {
    put_be32(header, static_cast<uint32_t>(size));
    return 4;
  }
  put_be32(header, static_cast<uint32_t>(kBigFrameMarker));
  put_be32(header + 4, static_cast<uint32_t>(static_cast<uint64_t>(size) >> 32));
  put_be32(header + 8, static_cast<uint32_t>(size));
  return 12;
}

// Reads a frame header.  Returns false on a clean end of file.
bool read_header(int fd, bool is_socket, size_t* size, std::vector<int>* fds, double deadline) {
  char h[8];
  if (!read_exact(fd, is_socket, h, 4, fds, deadline, true)) return false;
  int32_t n = static_cast<int32_t>(get_be32(h));
  if (n == kBigFrameMarker) {
    read_exact(fd, is_socket, h, 8, fds, deadline, false);
    uint64_t big = (uint64_t{get_be32(h)} << 32) | get_be32(h + 4);
    *size = static_cast<size_t>(big);
  } else if (n < 0) {
    throw Failure::plain("bad message length");
  } else {
    *size = static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

void send_frame(int fd, bool is_socket, const char* data, size_t size, const std::vector<int>* fds) {
  char header[12];
  struct iovec iov[2];
  iov[0].iov_base = header;
  iov[0].iov_len = make_header(header, size);
  iov[1].iov_base = const_cast<char*>(data);
  iov[1].iov_len = size;
  write_all(fd, is_socket, iov, 2, fds);
}

bool recv_frame(int fd, bool is_socket, std::string& out, std::vector<int>* fds, double deadline,
                size_t maxlength) {
  size_t size;
  if (!read_header(fd, is_socket, &size, fds, deadline)) return false;
  if (size > maxlength) throw Failure::plain("bad message length");
  out.resize(size);
  read_exact(fd, is_socket, out.data(), size, fds, deadline, false);
  return true;
}

namespace {

// Closes every fd left in the list (those no rebuild took) when it dies.
struct FdList {
  std::vector<int> fds;
  FdList() = default;
  FdList(const FdList&) = delete;
  FdList& operator=(const FdList&) = delete;
  ~FdList() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
};

// ---------------------------------------------------------------------------
// The mp.Connection userdata.  Created closed (fd -1), then given its fd.

struct Conn {
  int fd;
  bool readable;
  bool writable;
  bool is_socket;    // send/recvmsg with MSG_NOSIGNAL; else read/write
  bool carries_fds;  // an AF_UNIX socket: fd objects may ride along
};

Conn* new_conn(lua_State* L) {
  auto* c = static_cast<Conn*>(lua_newuserdatauv(L, sizeof(Conn), 0));
  *c = Conn{-1, false, false, false, false};
  luaL_setmetatable(L, kConnectionType);
  return c;
}

// check_connection(L, i): the Connection at i (open or closed).
Conn* check_connection(lua_State* L, int i) { return static_cast<Conn*>(luaL_checkudata(L, i, kConnectionType)); }

// The open Connection at i; raises "attempt to use a closed Connection".
Conn* check_open(lua_State* L, int i) {
  Conn* c = check_connection(L, i);
  if (c->fd < 0) luaL_error(L, "attempt to use a closed Connection");
  return c;
}

Conn* check_readable(lua_State* L, int i) {
  Conn* c = check_open(L, i);
  if (!c->readable) luaL_error(L, "connection is write-only");
  return c;
}

Conn* check_writable(lua_State* L, int i) {
  Conn* c = check_open(L, i);
  if (!c->writable) luaL_error(L, "connection is read-only");
  return c;
}

void conn_close_fd(Conn* c) {
  if (c->fd >= 0) ::close(c->fd);
  c->fd = -1;
}

// Connection:send(v): encodes v (fd objects ride along on socket
// connections) and sends it as one frame.
int connection_send(lua_State* L) {
  Conn* c = check_writable(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  return run_guarded(L, [&] {
    std::vector<int> fds;  // borrowed from the objects being sent
    codec::EncodeContext ctx;
    ctx.fds = c->carries_fds ? &fds : nullptr;
    std::string out;
    codec::encode(L, 2, out, ctx);
    send_frame(c->fd, c->is_socket, out.data(), out.size(), &fds);
    return 0;
  });
}

// Connection:recv(): the next message, decoded.  mp.EOFError when the peer
// closed and nothing is left.
int connection_recv(lua_State* L) {
  Conn* c = check_readable(L, 1);
  return run_guarded(L, [&] {
    FdList fds;
    std::string in;
    if (!recv_frame(c->fd, c->is_socket, in, &fds.fds)) throw Failure::of("EOFError", "");
    codec::DecodeContext ctx;
    ctx.fds = &fds.fds;
    codec::decode(L, in.data(), in.size(), ctx);
    return 1;
  });
}

// The bytes of the string or buffer object at idx (for send_bytes).
buffer::ByteSpan source_bytes(lua_State* L, int idx) {
  buffer::ByteSpan span;
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char* s = lua_tolstring(L, idx, &n);
    span.data = const_cast<char*>(s);
    span.size = n;
    return span;
  }
  bool ok = false;
  int rc = run_guarded(L, [&] {  // the getter may throw (closed object)
    ok = buffer::get(L, idx, &span);
    return 0;
  });
  (void)rc;
  if (!ok) luaL_typeerror(L, idx, "string or byte buffer");
  return span;
}

// Connection:send_bytes(s [, offset [, size]]): sends bytes offset ..
// offset+size-1 of a string or byte buffer (1-based, like string.sub).
int connection_send_bytes(lua_State* L) {
  Conn* c = check_writable(L, 1);
  buffer::ByteSpan span = source_bytes(L, 2);
  lua_Integer offset = luaL_optinteger(L, 3, 1);
  luaL_argcheck(L, offset >= 1, 3, "offset must be at least 1");
  luaL_argcheck(L, static_cast<lua_Unsigned>(offset - 1) <= span.size, 3, "buffer length < offset");
  lua_Integer size = luaL_optinteger(L, 4, static_cast<lua_Integer>(span.size) - (offset - 1));
  luaL_argcheck(L, size >= 0, 4, "size is negative");
  luaL_argcheck(L, static_cast<lua_Unsigned>(offset - 1 + size) <= span.size, 4,
                "buffer length < offset + size");
  return run_guarded(L, [&] {
    send_frame(c->fd, c->is_socket, span.data + (offset - 1), static_cast<size_t>(size), nullptr);
    return 0;
  });
}

// Connection:recv_bytes([maxlength]): the next message as a string.  A
// message longer than maxlength closes the connection and raises mp.OSError,
// as in Python.
int connection_recv_bytes(lua_State* L) {
  Conn* c = check_readable(L, 1);
  lua_Integer maxlength = luaL_optinteger(L, 2, -1);
  luaL_argcheck(L, lua_isnoneornil(L, 2) || maxlength >= 0, 2, "negative maxlength");
  size_t size = 0;
  run_guarded(L, [&] {
    FdList fds;  // none are expected with bytes: closed
    if (!read_header(c->fd, c->is_socket, &size, &fds.fds, -1)) throw Failure::of("EOFError", "");
    return 0;
  });
  if (maxlength >= 0 && size > static_cast<size_t>(maxlength)) {
    conn_close_fd(c);
    return raise_error(L, "OSError", "bad message length");
  }
  // The Lua buffer is made with no C++ object alive: it may raise "not
  // enough memory" for an absurd length.
  luaL_Buffer b;
  char* p = luaL_buffinitsize(L, &b, size);
  run_guarded(L, [&] {
    FdList fds;
    read_exact(c->fd, c->is_socket, p, size, &fds.fds, -1, false);
    return 0;
  });
  luaL_pushresultsize(&b, size);
  return 1;
}

// Connection:recv_bytes_into(buf [, offset]): reads the next message into a
// byte buffer at 1-based offset; returns its length.  A message that does
// not fit raises mp.BufferTooShort with the whole message in err.data.
int connection_recv_bytes_into(lua_State* L) {
  Conn* c = check_readable(L, 1);
  buffer::ByteSpan span;
  bool ok = false;
  run_guarded(L, [&] {
    ok = buffer::get(L, 2, &span);
    return 0;
  });
  if (!ok) luaL_typeerror(L, 2, "byte buffer (mp.Array of c/b/B, SharedMemory buf)");
  lua_Integer offset = luaL_optinteger(L, 3, 1);
  luaL_argcheck(L, offset >= 1 && static_cast<lua_Unsigned>(offset - 1) <= span.size, 3,
                "offset out of range");
  lua_settop(L, 3);
  size_t size = 0;
  size_t room = span.size - static_cast<size_t>(offset - 1);
  run_guarded(L, [&] {
    FdList fds;
    if (!read_header(c->fd, c->is_socket, &size, &fds.fds, -1)) throw Failure::of("EOFError", "");
    if (size <= room) read_exact(c->fd, c->is_socket, span.data + (offset - 1), size, &fds.fds, -1, false);
    return 0;
  });
  if (size <= room) {
    lua_pushinteger(L, static_cast<lua_Integer>(size));
    return 1;
  }
  // Too short: the whole message goes to err.data (read into a Lua buffer
  // made with no C++ object alive).
  luaL_Buffer b;
  char* p = luaL_buffinitsize(L, &b, size);
  run_guarded(L, [&] {
    FdList fds;
    read_exact(c->fd, c->is_socket, p, size, &fds.fds, -1, false);
    return 0;
  });
  luaL_pushresultsize(&b, size);  // stack: ..., data
  push_error_class(L, "BufferTooShort");
  lua_pushliteral(L, "message too long for the buffer");
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, -4);
  lua_setfield(L, -2, "data");
  lua_call(L, 2, 1);
  return lua_error(L);
}

// Timeout argument: none -> `absent` seconds; nil -> forever (-1); a number
// -> max(0, n).  Returns the absolute deadline (or -1).
double deadline_arg(lua_State* L, int i, double absent) {
  double seconds;
  if (lua_isnone(L, i)) {
    seconds = absent;
  } else if (lua_isnil(L, i)) {
    return -1;
  } else {
    seconds = luaL_checknumber(L, i);
    if (std::isnan(seconds)) luaL_argerror(L, i, "timeout is NaN");
  }
  if (seconds < 0) seconds = 0;
  if (seconds > 1e9) return -1;
  return monotonic_seconds() + seconds;
}

// Connection:poll([timeout]): true when data (or end of file) is ready.
// No timeout means 0 (return at once); nil waits forever.
int connection_poll(lua_State* L) {
  Conn* c = check_readable(L, 1);
  double deadline = deadline_arg(L, 2, 0);
  bool ready = false;
  run_guarded(L, [&] {
    ready = wait_fd(c->fd, POLLIN, deadline);
    return 0;
  });
  lua_pushboolean(L, ready);
  return 1;
}

int connection_fileno(lua_State* L) {
  Conn* c = check_open(L, 1);
  lua_pushinteger(L, c->fd);
  return 1;
}

// Connection:close(), __gc, __close: idempotent.
int connection_close(lua_State* L) {
  conn_close_fd(check_connection(L, 1));
  return 0;
}

int connection_tostring(lua_State* L) {
  Conn* c = check_connection(L, 1);
  if (c->fd < 0) {
    lua_pushliteral(L, "<Connection closed>");
  } else {
    lua_pushfstring(L, "<Connection fd=%d%s%s>", c->fd, c->readable ? " readable" : "",
                    c->writable ? " writable" : "");
  }
  return 1;
}

// __index: the fields closed/readable/writable, then the methods.
int connection_index(lua_State* L) {
  Conn* c = check_connection(L, 1);
  const char* key = lua_tostring(L, 2);
  if (key != nullptr) {
    if (std::strcmp(key, "closed") == 0) {
      lua_pushboolean(L, c->fd < 0);
      return 1;
    }
    if (std::strcmp(key, "readable") == 0) {
      lua_pushboolean(L, c->readable);
      return 1;
    }
    if (std::strcmp(key, "writable") == 0) {
      lua_pushboolean(L, c->writable);
      return 1;
    }
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

// mp.Pipe([duplex]): two connected Connections.  Duplex ends are a Unix
// socket pair (they can carry fd objects); Pipe(false) gives (reader,
// writer) over pipe(2).
int mp_pipe(lua_State* L) {
  bool duplex = lua_isnoneornil(L, 1) ? true : lua_toboolean(L, 1);
  Conn* a = new_conn(L);
  Conn* b = new_conn(L);
  return run_guarded(L, [&] {
    int fds[2];
    if (duplex) {
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw Failure::os("socketpair", errno);
      *a = Conn{fds[0], true, true, true, true};
      *b = Conn{fds[1], true, true, true, true};
    } else {
      if (::pipe2(fds, O_CLOEXEC) != 0) throw Failure::os("pipe", errno);
      *a = Conn{fds[0], true, false, false, false};
      *b = Conn{fds[1], false, true, false, false};
    }
    return 2;
  });
}

}  // namespace

namespace {
// How long a wait of this process looks before it sleeps, in ns: doubled
// (up to kSpinMaxNs) when a look sees the peer's answer, halved when it
// does not; below kSpinMinNs the process sleeps at once and tries a whole
// look again every kSpinRetry waits.  Loaded, or on one CPU, looks fail
// (the peer needs the CPU being spent) and stop; idle CPUs make them pay.
// Process-wide heuristic state, not meaning: atomics (a fork inherits them).
constexpr int32_t kSpinMaxNs = 30000;
constexpr int32_t kSpinMinNs = 2000;
constexpr int32_t kSpinRetry = 64;
std::atomic<int32_t> spin_window_ns{kSpinMaxNs};
std::atomic<int32_t> spin_skipped{0};
}  // namespace

bool spin_until_ready(struct pollfd* fds, size_t n) {
  for (size_t i = 0; i < n; ++i) fds[i].revents = 0;
  if (::poll(fds, static_cast<nfds_t>(n), 0) != 0) return true;  // ready (or an error the caller sees)
  int32_t window = spin_window_ns.load(std::memory_order_relaxed);
  if (window < kSpinMinNs) {
    if (spin_skipped.fetch_add(1, std::memory_order_relaxed) + 1 < kSpinRetry) return false;
    spin_skipped.store(0, std::memory_order_relaxed);
    window = kSpinMaxNs;  // a whole look: a short one would fail by itself
  }
  const double until = monotonic_seconds() + window * 1e-9;
  do {
    if (::poll(fds, static_cast<nfds_t>(n), 0) != 0) {
      spin_window_ns.store(window * 2 > kSpinMaxNs ? kSpinMaxNs : window * 2, std::memory_order_relaxed);
      return true;
    }
  } while (monotonic_seconds() < until);
  spin_window_ns.store(window / 2, std::memory_order_relaxed);
  return false;
}

void push_connection(lua_State* L, int fd, bool readable, bool writable, bool is_socket) {
  Conn* c = new_conn(L);
  *c = Conn{fd, readable, writable, is_socket, is_socket};
}

int connection_fd(lua_State* L, int idx) {
  auto* c = static_cast<Conn*>(luaL_testudata(L, idx, kConnectionType));
  if (c == nullptr) return -1;
  if (c->fd < 0) luaL_error(L, "attempt to use a closed Connection");
  return c->fd;
}

namespace {

// ---------------------------------------------------------------------------
// Addresses: {host, port} tables for AF_INET, strings for AF_UNIX ("\0..."
// is abstract).

struct SockAddr {
  struct sockaddr_storage ss {};
  socklen_t len = 0;
  int family = AF_UNSPEC;
};

// The family named by `name` (nullptr: deduce from the address).
int family_of(lua_State* L, int arg, const char* name, int addr_idx) {
  if (name == nullptr) {
    if (lua_istable(L, addr_idx)) return AF_INET;
    return AF_UNIX;
  }
  if (std::strcmp(name, "AF_INET") == 0) return AF_INET;
  if (std::strcmp(name, "AF_UNIX") == 0) return AF_UNIX;
  if (std::strcmp(name, "AF_PIPE") == 0) luaL_argerror(L, arg, "family AF_PIPE exists only on Windows");
  luaL_argerror(L, arg, lua_pushfstring(L, "unknown family '%s' (AF_INET or AF_UNIX)", name));
  return AF_UNSPEC;
}

const char* family_name(int family) { return family == AF_INET ? "AF_INET" : "AF_UNIX"; }

// An AF_INET address as read from Lua: plain pointers into strings the
// caller keeps on the stack (no C++ object may be alive when an argument
// check raises).  Resolved inside run_guarded by resolve_inet.
struct InetSpec {
  const char* host = "127.0.0.1";
  lua_Integer port = 0;
};

// Checks the {host, port} table at idx (nil: 127.0.0.1, port 0).  The host
// string stays alive in that table.
InetSpec check_inet(lua_State* L, int idx, int arg) {
  InetSpec spec;
  if (lua_isnoneornil(L, idx)) return spec;
  if (!lua_istable(L, idx)) luaL_argerror(L, arg, "AF_INET address must be a table {host, port}");
  lua_geti(L, idx, 1);
  lua_geti(L, idx, 2);
  if (lua_type(L, -2) != LUA_TSTRING) luaL_argerror(L, arg, "address[1] must be a host string");
  if (!lua_isinteger(L, -1)) luaL_argerror(L, arg, "address[2] must be an integer port");
  spec.host = lua_tostring(L, -2);
  spec.port = lua_tointeger(L, -1);
  lua_pop(L, 2);
  if (spec.port < 0 || spec.port > 65535) luaL_argerror(L, arg, "port out of range 0-65535");
  return spec;
}

SockAddr resolve_inet(const InetSpec& spec) {
  SockAddr a;
  a.family = AF_INET;
  auto* sin = reinterpret_cast<struct sockaddr_in*>(&a.ss);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(static_cast<uint16_t>(spec.port));
  a.len = sizeof(struct sockaddr_in);
  if (spec.host[0] == '\0') {
    sin->sin_addr.s_addr = htonl(INADDR_ANY);
    return a;
  }
  if (inet_pton(AF_INET, spec.host, &sin->sin_addr) == 1) return a;
  struct addrinfo hints {};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* res = nullptr;
  int rc = getaddrinfo(spec.host, nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    Failure f = Failure::of("OSError", std::string("getaddrinfo: ") + spec.host + ": " + gai_strerror(rc));
    f.error_number = 0;
    throw f;
  }
  sin->sin_addr = reinterpret_cast<struct sockaddr_in*>(res->ai_addr)->sin_addr;
  freeaddrinfo(res);
  return a;
}

SockAddr unix_address(const std::string& path) {
  SockAddr a;
  a.family = AF_UNIX;
  auto* sun = reinterpret_cast<struct sockaddr_un*>(&a.ss);
  sun->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sun->sun_path))
    throw Failure::plain("AF_UNIX address must be 1 to " + std::to_string(sizeof(sun->sun_path) - 1) + " bytes");
  std::memcpy(sun->sun_path, path.data(), path.size());
  // Abstract names ("\0...") have no terminator; the length says where they end.
  a.len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size() + (path[0] == '\0' ? 0 : 1));
  return a;
}

// Pushes the Lua form of a socket address: {ip, port} or the path ("" for
// an unnamed Unix socket).
void push_sockaddr(lua_State* L, const struct sockaddr_storage& ss, socklen_t len) {
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const struct sockaddr_in*>(&ss);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
    lua_createtable(L, 2, 0);
    lua_pushstring(L, ip);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, ntohs(sin->sin_port));
    lua_rawseti(L, -2, 2);
    return;
  }
  const auto* sun = reinterpret_cast<const struct sockaddr_un*>(&ss);
  size_t off = offsetof(struct sockaddr_un, sun_path);
  if (len <= off) {
    lua_pushliteral(L, "");
    return;
  }
  size_t n = len - off;
  if (sun->sun_path[0] != '\0') n = strnlen(sun->sun_path, n);
  lua_pushlstring(L, sun->sun_path, n);
}

// ---------------------------------------------------------------------------
// The HMAC handshake (the same exchange as Python 3.12's connection.py):
//   deliver: send "#CHALLENGE#{sha256}<40 random bytes>"; receive
//            "{sha256}" + HMAC-SHA256(key, "{sha256}<random>"); reply
//            "#WELCOME#" or "#FAILURE#".
//   answer:  the mirror image.
// The listener delivers then answers; the client answers then delivers.

constexpr char kChallenge[] = "#CHALLENGE#";
constexpr char kWelcome[] = "#WELCOME#";
constexpr char kFailure[] = "#FAILURE#";
constexpr char kDigestTag[] = "{sha256}";
constexpr size_t kNonceBytes = 40;

std::string hmac_sha256(const std::string& key, const std::string& message) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), md, &md_len) == nullptr)
    throw Failure::plain("HMAC failed");
  return std::string(reinterpret_cast<char*>(md), md_len);
}

void send_small(int fd, const std::string& s, double deadline) {
  char header[12];
  struct iovec iov[2];
  iov[0].iov_base = header;
  iov[0].iov_len = make_header(header, s.size());
  iov[1].iov_base = const_cast<char*>(s.data());
  iov[1].iov_len = s.size();
  write_all(fd, true, iov, 2, nullptr, deadline);
}

std::string recv_small(int fd, double deadline) {
  std::string in;
  if (!recv_frame(fd, true, in, nullptr, deadline, kHandshakeMaxLength))
    throw Failure::of("AuthenticationError", "connection closed during the handshake");
  return in;
}

[[noreturn]] void auth_fail(const std::string& why) { throw Failure::of("AuthenticationError", why); }

void deliver_challenge(int fd, const std::string& key, double deadline) {
  std::string nonce(kNonceBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), static_cast<int>(nonce.size())) != 1)
    throw Failure::plain("RAND_bytes failed");
  std::string message = std::string(kDigestTag) + nonce;
  send_small(fd, kChallenge + message, deadline);
  std::string response = recv_small(fd, deadline);
  std::string expected = kDigestTag + hmac_sha256(key, message);
  bool ok = response.size() == expected.size() &&
            CRYPTO_memcmp(response.data(), expected.data(), expected.size()) == 0;
  if (!ok) {
    try {
      send_small(fd, kFailure, deadline);
    } catch (Failure&) {  // the peer may be gone already; the verdict stands
    }
    auth_fail("digest received was wrong");
  }
  send_small(fd, kWelcome, deadline);
}

void answer_challenge(int fd, const std::string& key, double deadline) {
  std::string message = recv_small(fd, deadline);
  size_t clen = sizeof kChallenge - 1;
  if (message.compare(0, clen, kChallenge) != 0) auth_fail("protocol error: expected a challenge");
  message.erase(0, clen);
  size_t tlen = sizeof kDigestTag - 1;
  if (message.size() < tlen + 20 || message.compare(0, tlen, kDigestTag) != 0)
    auth_fail("unsupported challenge (only {sha256} is supported)");
  send_small(fd, kDigestTag + hmac_sha256(key, message), deadline);
  std::string verdict = recv_small(fd, deadline);
  if (verdict != kWelcome) auth_fail("digest sent was rejected");
}

// ---------------------------------------------------------------------------
// mp.Listener.  Uservalues: 1 address, 2 authkey (or nil), 3 last_accepted,
// 4 the socket path to unlink on close (or nil).

struct Listener {
  int fd;
  int family;
  pid_t owner;  // only the creating process unlinks the socket file
  double handshake_timeout;
};

enum ListenerSlot { kAddress = 1, kAuthkey = 2, kLastAccepted = 3, kUnlinkPath = 4 };

Listener* check_listener(lua_State* L, int i) { return static_cast<Listener*>(luaL_checkudata(L, i, kListenerType)); }

Listener* check_open_listener(lua_State* L, int i) {
  Listener* l = check_listener(L, i);
  if (l->fd < 0) luaL_error(L, "attempt to use a closed Listener");
  return l;
}

Listener* new_listener(lua_State* L) {
  auto* l = static_cast<Listener*>(lua_newuserdatauv(L, sizeof(Listener), 4));
  *l = Listener{-1, AF_UNIX, getpid(), 10.0};
  luaL_setmetatable(L, kListenerType);
  return l;
}

// Reads an optional authkey (string or nil) at idx; pushes it (or nil).
void push_authkey_arg(lua_State* L, int idx, int arg) {
  if (lua_isnoneornil(L, idx)) {
    lua_pushnil(L);
    return;
  }
  if (lua_type(L, idx) != LUA_TSTRING) luaL_argerror(L, arg, "authkey must be a string");
  lua_pushvalue(L, idx);
}

// A random abstract Unix name for a Listener without an address.
std::string random_unix_name() {
  unsigned char r[8];
  if (RAND_bytes(r, sizeof r) != 1) throw Failure::plain("RAND_bytes failed");
  char buf[64];
  std::snprintf(buf, sizeof buf, "luamp-listener-%d-%02x%02x%02x%02x%02x%02x%02x%02x", static_cast<int>(getpid()),
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
  return std::string(1, '\0') + buf;
}

// mp.connection.Listener{address=, family=, backlog=, authkey=,
// handshake_timeout=} or Listener(address [, family [, backlog [, authkey]]]).
// No address: a free one (port 0 / a random abstract name), reported in
// l.address.
int mp_listener(lua_State* L) {
  // Normalise both call forms to: 1 options, then locals.
  int addr_idx, fam_idx, backlog_idx, key_idx, timeout_idx = 0;
  bool options = lua_istable(L, 1) && lua_rawlen(L, 1) == 0 && lua_isnone(L, 2);
  if (options) {
    lua_settop(L, 1);
    lua_getfield(L, 1, "address");            // 2
    lua_getfield(L, 1, "family");             // 3
    lua_getfield(L, 1, "backlog");            // 4
    lua_getfield(L, 1, "authkey");            // 5
    lua_getfield(L, 1, "handshake_timeout");  // 6
    addr_idx = 2, fam_idx = 3, backlog_idx = 4, key_idx = 5, timeout_idx = 6;
  } else {
    lua_settop(L, 4);
    addr_idx = 1, fam_idx = 2, backlog_idx = 3, key_idx = 4;
  }
  const char* fam_name = luaL_optstring(L, fam_idx, nullptr);
  int family = family_of(L, fam_idx, fam_name, addr_idx);
  lua_Integer backlog = luaL_optinteger(L, backlog_idx, 1);
  if (backlog < 0) backlog = 0;
  double timeout = timeout_idx ? luaL_optnumber(L, timeout_idx, 10.0) : 10.0;
  luaL_argcheck(L, timeout > 0, timeout_idx ? timeout_idx : 1, "handshake_timeout must be positive");
  InetSpec inet;
  const char* path = nullptr;
  size_t path_len = 0;
  if (family == AF_INET) {
    inet = check_inet(L, addr_idx, addr_idx);
  } else if (!lua_isnoneornil(L, addr_idx)) {
    if (lua_type(L, addr_idx) != LUA_TSTRING) luaL_argerror(L, addr_idx, "AF_UNIX address must be a path string");
    path = lua_tolstring(L, addr_idx, &path_len);
  }
  push_authkey_arg(L, key_idx, key_idx);
  int key_slot = lua_gettop(L);
  Listener* l = new_listener(L);
  int self = lua_gettop(L);
  lua_pushvalue(L, key_slot);
  lua_setiuservalue(L, self, kAuthkey);
  l->family = family;
  l->handshake_timeout = timeout;
  return run_guarded(L, [&] {
    SockAddr addr;
    std::string unix_path;
    if (family == AF_INET) {
      addr = resolve_inet(inet);
    } else {
      unix_path = path ? std::string(path, path_len) : random_unix_name();
      addr = unix_address(unix_path);
    }
    UniqueFd sock(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) throw Failure::os("socket", errno);
    if (family == AF_INET) {
      int one = 1;
      setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    }
    if (::bind(sock.get(), reinterpret_cast<struct sockaddr*>(&addr.ss), addr.len) != 0)
      throw Failure::os("bind", errno, family == AF_UNIX ? unix_path : inet.host);
    if (::listen(sock.get(), static_cast<int>(backlog)) != 0) throw Failure::os("listen", errno);
    struct sockaddr_storage bound {};
    socklen_t blen = sizeof bound;
    if (::getsockname(sock.get(), reinterpret_cast<struct sockaddr*>(&bound), &blen) != 0)
      throw Failure::os("getsockname", errno);
    if (family == AF_INET) {
      push_sockaddr(L, bound, blen);
    } else {
      lua_pushlstring(L, unix_path.data(), unix_path.size());
    }
    lua_setiuservalue(L, self, kAddress);
    if (family == AF_UNIX && unix_path[0] != '\0') {
      lua_pushlstring(L, unix_path.data(), unix_path.size());
      lua_setiuservalue(L, self, kUnlinkPath);
    }
    l->fd = sock.release();
    lua_pushvalue(L, self);
    return 1;
  });
}

// Listener:accept(): waits for a client; with an authkey, runs the
// handshake (bounded by handshake_timeout).  A failed handshake closes that
// connection and raises mp.AuthenticationError; the Listener stays usable.
int listener_accept(lua_State* L) {
  Listener* l = check_open_listener(L, 1);
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, kAuthkey);  // 2
  bool has_key = lua_isstring(L, 2);
  size_t klen = 0;
  const char* kdata = has_key ? lua_tolstring(L, 2, &klen) : nullptr;
  Conn* c = new_conn(L);  // 3, closed until the handshake succeeds
  return run_guarded(L, [&] {
    struct sockaddr_storage peer {};
    socklen_t plen;
    UniqueFd fd;
    for (;;) {
      plen = sizeof peer;
      int got = ::accept4(l->fd, reinterpret_cast<struct sockaddr*>(&peer), &plen, SOCK_CLOEXEC);
      if (got >= 0) {
        fd.reset(got);
        break;
      }
      if (errno == EINTR) {
        if (interrupt::pending()) throw_interrupted();
        continue;
      }
      if (errno == ECONNABORTED) continue;
      throw Failure::os("accept", errno);
    }
    push_sockaddr(L, peer, plen);
    lua_setiuservalue(L, 1, kLastAccepted);
    if (l->family == AF_INET) {
      int one = 1;
      setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (has_key) {
      std::string key(kdata, klen);
      double deadline = monotonic_seconds() + l->handshake_timeout;
      try {
        deliver_challenge(fd.get(), key, deadline);
        answer_challenge(fd.get(), key, deadline);
      } catch (Failure& f) {
        if (f.message == interrupt::kMessage) throw;
        if (f.cls != "AuthenticationError") f = Failure::of("AuthenticationError", "handshake failed: " + f.message);
        throw;
      }
    }
    *c = Conn{fd.release(), true, true, true, l->family == AF_UNIX};
    return 1;
  });
}

int listener_close(lua_State* L) {
  Listener* l = check_listener(L, 1);
  if (l->fd >= 0) {
    ::close(l->fd);
    l->fd = -1;
    if (l->owner == getpid() && lua_getiuservalue(L, 1, kUnlinkPath) == LUA_TSTRING) ::unlink(lua_tostring(L, -1));
  }
  return 0;
}

int listener_fileno(lua_State* L) {
  lua_pushinteger(L, check_open_listener(L, 1)->fd);
  return 1;
}

int listener_index(lua_State* L) {
  Listener* l = check_listener(L, 1);
  const char* key = lua_tostring(L, 2);
  if (key != nullptr) {
    if (std::strcmp(key, "address") == 0) {
      lua_getiuservalue(L, 1, kAddress);
      return 1;
    }
    if (std::strcmp(key, "last_accepted") == 0) {
      lua_getiuservalue(L, 1, kLastAccepted);
      return 1;
    }
    if (std::strcmp(key, "closed") == 0) {
      lua_pushboolean(L, l->fd < 0);
      return 1;
    }
    if (std::strcmp(key, "family") == 0) {
      lua_pushstring(L, family_name(l->family));
      return 1;
    }
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

int listener_tostring(lua_State* L) {
  Listener* l = check_listener(L, 1);
  if (l->fd < 0) {
    lua_pushliteral(L, "<Listener closed>");
    return 1;
  }
  lua_getiuservalue(L, 1, kAddress);
  std::string addr;
  if (lua_istable(L, -1)) {
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    lua_pushfstring(L, "%s:%d", lua_tostring(L, -2), static_cast<int>(lua_tointeger(L, -1)));
  } else {
    size_t n;
    const char* s = lua_tolstring(L, -1, &n);
    if (n > 0 && s[0] == '\0') {
      lua_pushfstring(L, "@%s", s + 1);
    } else {
      lua_pushvalue(L, -1);
    }
  }
  lua_pushfstring(L, "<Listener %s %s>", family_name(l->family), lua_tostring(L, -1));
  return 1;
}

// mp.connection.Client(address [, {family=, authkey=}]) or
// Client(address, family [, authkey]): connects; with an authkey, answers
// then delivers the challenge (no timeout: the listener may accept late).
int mp_client(lua_State* L) {
  lua_settop(L, 3);
  const char* fam_name = nullptr;
  int key_idx = 3;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "family");   // 4
    lua_getfield(L, 2, "authkey");  // 5
    fam_name = luaL_optstring(L, 4, nullptr);
    key_idx = 5;
  } else {
    fam_name = luaL_optstring(L, 2, nullptr);
  }
  if (lua_isnoneornil(L, 1)) luaL_argerror(L, 1, "address expected");
  int family = family_of(L, 2, fam_name, 1);
  InetSpec inet;
  const char* path_data = nullptr;
  size_t path_len = 0;
  if (family == AF_INET) {
    inet = check_inet(L, 1, 1);
  } else {
    if (lua_type(L, 1) != LUA_TSTRING) luaL_argerror(L, 1, "AF_UNIX address must be a path string");
    path_data = lua_tolstring(L, 1, &path_len);
  }
  push_authkey_arg(L, key_idx, key_idx);
  bool has_key = lua_isstring(L, -1);
  size_t klen = 0;
  const char* kdata = has_key ? lua_tolstring(L, -1, &klen) : nullptr;
  Conn* c = new_conn(L);
  return run_guarded(L, [&] {
    std::string path = path_data ? std::string(path_data, path_len) : std::string();
    SockAddr addr = family == AF_INET ? resolve_inet(inet) : unix_address(path);
    UniqueFd sock(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) throw Failure::os("socket", errno);
    if (::connect(sock.get(), reinterpret_cast<struct sockaddr*>(&addr.ss), addr.len) != 0) {
      if (errno != EINTR && errno != EINPROGRESS) throw Failure::os("connect", errno, family == AF_UNIX ? path : inet.host);
      // Interrupted: the connection continues in the background; wait for it.
      if (interrupt::pending()) throw_interrupted();
      wait_fd(sock.get(), POLLOUT, -1);
      int err = 0;
      socklen_t elen = sizeof err;
      getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &err, &elen);
      if (err != 0) throw Failure::os("connect", err);
    }
    if (family == AF_INET) {
      int one = 1;
      setsockopt(sock.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (has_key) {
      std::string key(kdata, klen);
      answer_challenge(sock.get(), key, -1);
      deliver_challenge(sock.get(), key, -1);
    }
    *c = Conn{sock.release(), true, true, true, family == AF_UNIX};
    return 1;
  });
}

// ---------------------------------------------------------------------------
// mp.connection.wait(list [, timeout]): the objects of `list` that are ready
// to read (data, end of file, a listener with a pending client, a process
// sentinel that fired), in list order.  Elements: Connections, Listeners,
// integer fds, anything with a fileno() method.  No timeout / nil: forever.

int connection_wait(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  double deadline = deadline_arg(L, 2, -1);
  if (lua_isnone(L, 2)) deadline = -1;
  lua_settop(L, 1);
  lua_Integer n = luaL_len(L, 1);
  // Scratch pollfd array as a userdata: no C++ object is alive while we call
  // fileno() methods, which may raise.
  auto* pfds = static_cast<struct pollfd*>(lua_newuserdatauv(L, sizeof(struct pollfd) * (n > 0 ? n : 1), 0));
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_geti(L, 1, i);
    int fd = -1;
    if (lua_isinteger(L, -1)) {
      fd = static_cast<int>(lua_tointeger(L, -1));
    } else if ((fd = connection_fd(L, -1)) >= 0) {
    } else if (luaL_testudata(L, -1, kListenerType)) {
      fd = check_open_listener(L, lua_gettop(L))->fd;
    } else if (lua_istable(L, -1) || lua_isuserdata(L, -1)) {
      lua_getfield(L, -1, "fileno");
      if (!lua_isfunction(L, -1))
        luaL_error(L, "bad argument #1 to 'wait' (element %d has no fileno)", static_cast<int>(i));
      lua_pushvalue(L, -2);
      lua_call(L, 1, 1);
      if (!lua_isinteger(L, -1))
        luaL_error(L, "bad argument #1 to 'wait' (fileno of element %d is not an integer)", static_cast<int>(i));
      fd = static_cast<int>(lua_tointeger(L, -1));
      lua_pop(L, 1);
    } else {
      luaL_error(L, "bad argument #1 to 'wait' (element %d is a %s, expected a connection or fd)",
                 static_cast<int>(i), luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    pfds[i - 1] = pollfd{fd, POLLIN, 0};
  }
  int rc = run_guarded(L, [&] {
    if (deadline < 0 || deadline > monotonic_seconds()) spin_until_ready(pfds, static_cast<size_t>(n));
    for (;;) {
      int ms = -1;
      if (deadline >= 0) {
        double left = deadline - monotonic_seconds();
        ms = left <= 0 ? 0 : static_cast<int>(std::ceil(std::min(left, 86400.0) * 1000.0));
      }
      int got = ::poll(pfds, static_cast<nfds_t>(n), ms);
      if (got >= 0) {
        if (got == 0 && ms != 0 && deadline >= 0 && monotonic_seconds() < deadline) continue;
        if (got == 0 && deadline < 0) continue;
        return 0;
      }
      if (errno == EINTR) {
        if (interrupt::pending()) throw_interrupted();
        continue;
      }
      throw Failure::os("poll", errno);
    }
  });
  (void)rc;
  lua_newtable(L);
  lua_Integer out = 0;
  for (lua_Integer i = 1; i <= n; ++i) {
    if (pfds[i - 1].revents != 0) {
      lua_geti(L, 1, i);
      lua_rawseti(L, -2, ++out);
    }
  }
  return 1;
}

// ---------------------------------------------------------------------------
// Crossing processes (codec.h NativeType): a Connection or Listener reduces
// to its fd (borrowed: pushed onto ctx.fds; the channel duplicates it) plus
// its flags; a channel without fds refuses it.

void put_u32(std::string& out, uint32_t v) {
  char b[4];
  put_be32(b, v);
  out.append(b, 4);
}

void require_fds(codec::EncodeContext& ctx, const char* what) {
  if (ctx.fds == nullptr)
    throw Failure::plain(std::string("cannot send a ") + what +
                         " through this channel: it carries no file descriptors (send it in Process args or "
                         "through a duplex Pipe/Connection)");
}

void connection_reduce(lua_State* L, int idx, std::string& out, codec::EncodeContext& ctx) {
  auto* c = static_cast<Conn*>(luaL_checkudata(L, idx, kConnectionType));
  if (c->fd < 0) throw Failure::plain("cannot send a closed Connection");
  require_fds(ctx, "Connection");
  put_u32(out, static_cast<uint32_t>(ctx.fds->size()));
  ctx.fds->push_back(c->fd);
  out.push_back(static_cast<char>((c->readable ? 1 : 0) | (c->writable ? 2 : 0) | (c->is_socket ? 4 : 0) |
                                  (c->carries_fds ? 8 : 0)));
}

int take_fd(const char* data, size_t len, codec::DecodeContext& ctx, const char* what) {
  if (len < 4) throw Failure::plain(std::string("corrupt message: short ") + what);
  uint32_t i = get_be32(data);
  if (ctx.fds == nullptr || i >= ctx.fds->size() || (*ctx.fds)[i] < 0)
    throw Failure::plain(std::string("corrupt message: ") + what + " without its file descriptor");
  int fd = (*ctx.fds)[i];
  (*ctx.fds)[i] = -1;
  return fd;
}

void connection_rebuild(lua_State* L, const char* data, size_t len, codec::DecodeContext& ctx) {
  if (len != 5) throw Failure::plain("corrupt message: bad Connection");
  Conn* c = new_conn(L);
  int fd = take_fd(data, len, ctx, "Connection");
  unsigned flags = static_cast<unsigned char>(data[4]);
  *c = Conn{fd, (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0, (flags & 8) != 0};
}

// Listener: fd index, family, handshake timeout (ms), address, authkey.
void listener_reduce(lua_State* L, int idx, std::string& out, codec::EncodeContext& ctx) {
  auto* l = static_cast<Listener*>(luaL_checkudata(L, idx, kListenerType));
  if (l->fd < 0) throw Failure::plain("cannot send a closed Listener");
  require_fds(ctx, "Listener");
  put_u32(out, static_cast<uint32_t>(ctx.fds->size()));
  ctx.fds->push_back(l->fd);
  out.push_back(static_cast<char>(l->family == AF_INET ? 1 : 2));
  put_u32(out, static_cast<uint32_t>(l->handshake_timeout * 1000.0));
  std::string addr;
  lua_getiuservalue(L, idx, kAddress);
  if (lua_istable(L, -1)) {
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    addr = std::string(lua_tostring(L, -2)) + "\n" + std::to_string(lua_tointeger(L, -1));
    lua_pop(L, 2);
  } else {
    size_t n;
    const char* s = lua_tolstring(L, -1, &n);
    addr.assign(s, n);
  }
  lua_pop(L, 1);
  put_u32(out, static_cast<uint32_t>(addr.size()));
  out += addr;
  lua_getiuservalue(L, idx, kAuthkey);
  if (lua_isstring(L, -1)) {
    size_t n;
    const char* s = lua_tolstring(L, -1, &n);
    out.push_back(1);
    out.append(s, n);
  } else {
    out.push_back(0);
  }
  lua_pop(L, 1);
}

void listener_rebuild(lua_State* L, const char* data, size_t len, codec::DecodeContext& ctx) {
  if (len < 14) throw Failure::plain("corrupt message: bad Listener");
  int family = data[4] == 1 ? AF_INET : AF_UNIX;
  uint32_t timeout_ms = get_be32(data + 5);
  uint32_t alen = get_be32(data + 9);
  if (len < 13 + size_t{alen} + 1) throw Failure::plain("corrupt message: bad Listener");
  std::string addr(data + 13, alen);
  bool has_key = data[13 + alen] == 1;
  std::string key(data + 14 + alen, len - 14 - alen);
  Listener* l = new_listener(L);
  int self = lua_gettop(L);
  l->family = family;
  l->handshake_timeout = timeout_ms / 1000.0;
  l->owner = 0;  // a copy never unlinks the socket file
  if (family == AF_INET) {
    size_t nl = addr.find('\n');
    lua_createtable(L, 2, 0);
    lua_pushlstring(L, addr.data(), nl == std::string::npos ? addr.size() : nl);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, nl == std::string::npos ? 0 : std::atoi(addr.c_str() + nl + 1));
    lua_rawseti(L, -2, 2);
  } else {
    lua_pushlstring(L, addr.data(), addr.size());
  }
  lua_setiuservalue(L, self, kAddress);
  if (has_key) {
    lua_pushlstring(L, key.data(), key.size());
    lua_setiuservalue(L, self, kAuthkey);
  }
  l->fd = take_fd(data, len, ctx, "Listener");
}

// mp.Array / mp.RawArray of typecode c, b or B lend their bytes
// (sharedctypes.h).
void array_bytes(lua_State* L, int idx, buffer::ByteSpan* out) {
  if (!sharedctypes::byte_span(L, idx, &out->data, &out->size))
    throw Failure::plain("a byte buffer must be an Array of typecode 'c', 'b' or 'B' (and open)");
}

// A SharedMemory's `buf` lends its bytes (shared_memory.h).
void shared_memory_bytes(lua_State* L, int idx, buffer::ByteSpan* out) {
  if (!shared_memory_span(L, idx, &out->data, &out->size))
    throw Failure::plain("the SharedMemory of this buf is closed");
}

const codec::NativeType kConnectionNative{kConnectionType, connection_reduce, connection_rebuild};
const codec::NativeType kListenerNative{kListenerType, listener_reduce, listener_rebuild};

// Builds a metatable with __index = index_fn (upvalue: the methods).
void make_metatable(lua_State* L, const char* name, const luaL_Reg* methods, lua_CFunction index_fn,
                    lua_CFunction close_fn, lua_CFunction tostring_fn) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_pushcclosure(L, index_fn, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, close_fn);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, close_fn);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, tostring_fn);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

}  // namespace

void open_connection(lua_State* L) {
  static const luaL_Reg conn_methods[] = {
      {"send", connection_send},
      {"recv", connection_recv},
      {"send_bytes", connection_send_bytes},
      {"recv_bytes", connection_recv_bytes},
      {"recv_bytes_into", connection_recv_bytes_into},
      {"poll", connection_poll},
      {"fileno", connection_fileno},
      {"close", connection_close},
      {nullptr, nullptr}};
  static const luaL_Reg listener_methods[] = {
      {"accept", listener_accept}, {"close", listener_close}, {"fileno", listener_fileno}, {nullptr, nullptr}};
  make_metatable(L, kConnectionType, conn_methods, connection_index, connection_close, connection_tostring);
  make_metatable(L, kListenerType, listener_methods, listener_index, listener_close, listener_tostring);
  codec::register_native_type(L, &kConnectionNative);
  codec::register_native_type(L, &kListenerNative);
  buffer::register_type(L, "mp.Array", array_bytes);
  buffer::register_type(L, "mp.SharedMemoryBuffer", shared_memory_bytes);
  static const luaL_Reg funcs[] = {{"Pipe", mp_pipe},
                                   {"Listener", mp_listener},
                                   {"Client", mp_client},
                                   {"connection_wait", connection_wait},
                                   {nullptr, nullptr}};
  luaL_setfuncs(L, funcs, 0);
}

}  // namespace connection
}  // namespace luamp
