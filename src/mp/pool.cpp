// Native help for the Pool (src/lua/multiprocessing.pool.lua, docs/design/pool.md):
// the owner's side of the channel to one worker, and the owner's wait.
//
//   core.pool_pipe() -> channel, conn, slot_conn
//       A connected pair of stream sockets.  `conn` is an ordinary
//       mp.Connection for the worker (it travels in the worker's Process
//       args under every start method); `channel` (mp.PoolChannel) is the
//       owner's end.  The frames are the Connection frames (4-byte
//       big-endian length, codec payload), so the worker just uses
//       conn:recv() and conn:send().
//   channel:send(v) -> bool        encodes v, queues it, writes what the
//                                  socket takes now; true if all is written
//   channel:flush() -> bool        writes more of the queue
//   channel:pending() -> bytes     bytes still queued
//   channel:recv() -> list|nil, eof   every whole message that has arrived
//   channel:progress() -> started, finished   the worker's chunk counts
//   channel:fileno(), channel:close()  (__gc and __close close too)
//   core.pool_slot(slot_conn) -> slot  the worker's side of the progress
//                                  page: slot:start(n), slot:finish(n)
//   core.pool_pack(t, i, j) / core.pool_unpack(s [, t, offset])
//       numbers-only chunks (items and results) as one flat string, which
//       the codec copies instead of walking element by element.
//   core.pool_poll(channels, sentinels, timeout, pids, pool) -> list
//       waits until a channel is readable (or writable while it has queued
//       bytes) or a sentinel fd is readable; returns their positions
//       (channels as i, sentinels as -i).  On Ctrl-C it SIGKILLs `pids` (the
//       pool's workers) before raising "interrupted!", so an interrupted map
//       leaves no busy worker behind, and sets pool._interrupted.
//
// Why not mp.Connection on the owner's side: the owner has no thread, so it
// must never block in a write while a worker blocks writing its results back
// (both socket buffers full).  The channel's writes never block; the owner
// keeps reading while its queued bytes drain.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "mp/codec.h"
#include "mp/connection.h"
#include "mp/interrupt.h"
#include "mp/lua_util.h"
#include "mp/pool.h"
#include "mp/system.h"

namespace luamp {
namespace {

constexpr const char* kChannelType = "mp.PoolChannel";
constexpr const char* kSlotType = "mp.PoolSlot";

// A worker's progress, in a shared page the owner also maps: how many
// chunks it has started and how many it has finished.  Written only by the
// worker; read by the owner after the worker died, to tell the chunk it was
// running from the ones it finished (answers not yet sent) and the ones it
// never started.
struct Progress {
  int64_t started;
  int64_t finished;
};
constexpr size_t kSlotSize = 4096;

struct Slot {
  Progress* p = nullptr;  // mapped kSlotSize bytes, or nullptr when closed
};

struct Channel {
  int fd = -1;
  Progress* progress = nullptr;  // the worker's slot (mapped kSlotSize)
  bool eof = false;
  std::string out;        // queued frames not yet written
  size_t out_pos = 0;     // bytes of `out` already written
  std::string in;         // received bytes not yet decoded
  size_t in_pos = 0;
};

Channel* check_channel(lua_State* L, int idx) {
  auto* ch = static_cast<Channel*>(luaL_checkudata(L, idx, kChannelType));
  if (ch->fd < 0) luaL_error(L, "attempt to use a closed PoolChannel");
  return ch;
}

// Idempotent: __gc, __close and close().
int channel_close(lua_State* L) {
  auto* ch = static_cast<Channel*>(luaL_checkudata(L, 1, kChannelType));
  if (ch->fd >= 0) {
    ::close(ch->fd);
    ch->fd = -1;
  }
  if (ch->progress) {
    ::munmap(ch->progress, kSlotSize);
    ch->progress = nullptr;
  }
  // The strings are C++ objects inside a Lua userdata: release their memory
  // here, as __gc never runs a destructor.
  std::string().swap(ch->out);
  std::string().swap(ch->in);
  ch->out_pos = ch->in_pos = 0;
  return 0;
}

// Writes queued bytes until the socket would block.  Returns false when the
// peer is gone (the queue is dropped: the worker's death is reported by its
// sentinel).  Throws on other errors.
bool write_some(Channel* ch) {
  while (ch->out_pos < ch->out.size()) {
    ssize_t n = ::send(ch->fd, ch->out.data() + ch->out_pos, ch->out.size() - ch->out_pos,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      ch->out_pos += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      ch->out.clear();
      ch->out_pos = 0;
      return false;
    }
    throw Failure::os("PoolChannel:send", errno);
  }
  if (ch->out_pos == ch->out.size()) {
    ch->out.clear();
    ch->out_pos = 0;
  } else if (ch->out_pos > (1u << 20) && ch->out_pos * 2 > ch->out.size()) {
    ch->out.erase(0, ch->out_pos);  // keep the queue from growing without bound
    ch->out_pos = 0;
  }
  return true;
}

// channel:send(v) -> true if the whole queue is written now.
int channel_send(lua_State* L) {
  Channel* ch = check_channel(L, 1);
  luaL_checkany(L, 2);
  return run_guarded(L, [&] {
    size_t start = ch->out.size();
    ch->out.append(4, '\0');
    codec::EncodeContext ctx;  // fds == nullptr: fd objects cannot go to a pool
    try {
      codec::encode(L, 2, ch->out, ctx);
    } catch (...) {
      ch->out.resize(start);
      throw;
    }
    uint64_t len = ch->out.size() - start - 4;
    if (len > 0x7fffffffu) {
      // Large frame: length -1, then an 8-byte length.
      ch->out.insert(start + 4, 8, '\0');
      unsigned char* h = reinterpret_cast<unsigned char*>(&ch->out[start]);
      h[0] = h[1] = h[2] = h[3] = 0xff;
      for (int i = 0; i < 8; ++i) h[4 + i] = static_cast<unsigned char>(len >> (56 - 8 * i));
    } else {
      unsigned char* h = reinterpret_cast<unsigned char*>(&ch->out[start]);
      for (int i = 0; i < 4; ++i) h[i] = static_cast<unsigned char>(len >> (24 - 8 * i));
    }
    write_some(ch);
    lua_pushboolean(L, ch->out.empty());
    return 1;
  });
}

int channel_flush(lua_State* L) {
  Channel* ch = check_channel(L, 1);
  return run_guarded(L, [&] {
    write_some(ch);
    lua_pushboolean(L, ch->out.empty());
    return 1;
  });
}

int channel_pending(lua_State* L) {
  Channel* ch = check_channel(L, 1);
  lua_pushinteger(L, static_cast<lua_Integer>(ch->out.size() - ch->out_pos));
  return 1;
}

int channel_fileno(lua_State* L) {
  Channel* ch = check_channel(L, 1);
  lua_pushinteger(L, ch->fd);
  return 1;
}

// channel:recv() -> list of the whole messages that arrived (nil if none),
// and true once the worker's end is closed.  Never blocks.
int channel_recv(lua_State* L) {
  Channel* ch = check_channel(L, 1);
  lua_settop(L, 1);
  lua_pushnil(L);  // 2: the list, made on the first message
  return run_guarded(L, [&] {
    // Read everything available now.
    while (!ch->eof) {
      size_t old = ch->in.size();
      size_t want = 1 << 16;
      ch->in.resize(old + want);
      ssize_t n = ::recv(ch->fd, &ch->in[old], want, MSG_DONTWAIT);
      if (n > 0) {
        ch->in.resize(old + static_cast<size_t>(n));
        if (static_cast<size_t>(n) < want) break;
        continue;
      }
      ch->in.resize(old);
      if (n == 0) {
        ch->eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ECONNRESET) {
        ch->eof = true;
        break;
      }
      throw Failure::os("PoolChannel:recv", errno);
    }
    // Decode the whole frames.
    lua_Integer count = 0;
    for (;;) {
      size_t avail = ch->in.size() - ch->in_pos;
      if (avail < 4) break;
      const unsigned char* h = reinterpret_cast<const unsigned char*>(ch->in.data() + ch->in_pos);
      int32_t len32 = static_cast<int32_t>((uint32_t(h[0]) << 24) | (uint32_t(h[1]) << 16) |
                                           (uint32_t(h[2]) << 8) | uint32_t(h[3]));
      size_t header = 4;
      uint64_t len;
      if (len32 == -1) {
        if (avail < 12) break;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | h[4 + i];
        header = 12;
      } else if (len32 < 0) {
        throw Failure::plain("PoolChannel:recv: corrupt frame length");
      } else {
        len = static_cast<uint64_t>(len32);
      }
      if (avail - header < len) break;
      if (count == 0) {
        lua_newtable(L);
        lua_replace(L, 2);
      }
      codec::DecodeContext ctx;
      const char* data = ch->in.data() + ch->in_pos + header;
      ch->in_pos += header + len;
      codec::decode(L, data, len, ctx);
      lua_rawseti(L, 2, ++count);
    }
    if (ch->in_pos == ch->in.size()) {
      ch->in.clear();
      ch->in_pos = 0;
    } else if (ch->in_pos > (1u << 20)) {
      ch->in.erase(0, ch->in_pos);
      ch->in_pos = 0;
    }
    lua_pushvalue(L, 2);
    lua_pushboolean(L, ch->eof && ch->in.empty());
    return 2;
  });
}

// channel:progress() -> started, finished: the worker's counts of chunks.
int channel_progress(lua_State* L) {
  Channel* ch = check_channel(L, 1);
  if (ch->progress == nullptr) return 0;
  lua_pushinteger(L, __atomic_load_n(&ch->progress->started, __ATOMIC_ACQUIRE));
  lua_pushinteger(L, __atomic_load_n(&ch->progress->finished, __ATOMIC_ACQUIRE));
  return 2;
}

// core.pool_pipe() -> channel, conn, slot_conn
// `slot_conn` is a Connection object used only as the vehicle of the
// progress page's fd (a memfd) to the worker, which maps it with
// core.pool_slot(slot_conn): Connections already cross into children under
// every start method.
int pool_pipe(lua_State* L) {
  auto* ch = static_cast<Channel*>(lua_newuserdatauv(L, sizeof(Channel), 0));
  new (ch) Channel();  // closed first: fd == -1
  luaL_setmetatable(L, kChannelType);
  int mem = memfd_create("luamp-pool-progress", MFD_CLOEXEC);
  if (mem < 0 || ftruncate(mem, kSlotSize) != 0) {
    int err = errno;
    if (mem >= 0) ::close(mem);
    return luaL_error(L, "Pool: cannot create a progress page: %s", std::strerror(err));
  }
  void* page = mmap(nullptr, kSlotSize, PROT_READ | PROT_WRITE, MAP_SHARED, mem, 0);
  if (page == MAP_FAILED) {
    int err = errno;
    ::close(mem);
    return luaL_error(L, "Pool: cannot map a progress page: %s", std::strerror(err));
  }
  ch->progress = static_cast<Progress*>(page);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    int err = errno;
    ::close(mem);
    return luaL_error(L, "Pool: cannot create a worker channel: %s", std::strerror(err));
  }
  ch->fd = sv[0];
  connection::push_connection(L, sv[1], true, true, true);
  connection::push_connection(L, mem, true, false, false);
  return 3;
}

Slot* check_slot(lua_State* L) {
  auto* s = static_cast<Slot*>(luaL_checkudata(L, 1, kSlotType));
  if (s->p == nullptr) luaL_error(L, "attempt to use a closed PoolSlot");
  return s;
}

// core.pool_slot(slot_conn) -> slot: the worker's side of the progress page.
int pool_slot(lua_State* L) {
  int fd = connection::connection_fd(L, 1);
  luaL_argcheck(L, fd >= 0, 1, "Connection expected");
  auto* s = static_cast<Slot*>(lua_newuserdatauv(L, sizeof(Slot), 0));
  s->p = nullptr;  // closed first
  luaL_setmetatable(L, kSlotType);
  void* page = mmap(nullptr, kSlotSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (page == MAP_FAILED) {
    int err = errno;
    return luaL_error(L, "Pool: cannot map the progress page: %s", std::strerror(err));
  }
  s->p = static_cast<Progress*>(page);
  return 1;
}

// slot:start(n) / slot:finish(n): chunk n (counted from 1) starts / ends.
int slot_start(lua_State* L) {
  Slot* s = check_slot(L);
  __atomic_store_n(&s->p->started, static_cast<int64_t>(luaL_checkinteger(L, 2)), __ATOMIC_RELEASE);
  return 0;
}

int slot_finish(lua_State* L) {
  Slot* s = check_slot(L);
  __atomic_store_n(&s->p->finished, static_cast<int64_t>(luaL_checkinteger(L, 2)), __ATOMIC_RELEASE);
  return 0;
}

int slot_close(lua_State* L) {
  auto* s = static_cast<Slot*>(luaL_checkudata(L, 1, kSlotType));
  if (s->p) {
    ::munmap(s->p, kSlotSize);
    s->p = nullptr;
  }
  return 0;
}

// Fills `fds` with the integers of the sequence at idx (channels give their
// fd).  Returns the count.
int collect(lua_State* L, int idx, std::vector<pollfd>& fds, bool channels) {
  int n = static_cast<int>(luaL_len(L, idx));
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, idx, i);
    pollfd p{};
    if (channels) {
      auto* ch = static_cast<Channel*>(luaL_checkudata(L, -1, kChannelType));
      p.fd = ch->fd;  // a closed channel (-1) is ignored by poll
      p.events = POLLIN;
      if (ch->out.size() > ch->out_pos) p.events |= POLLOUT;
    } else {
      p.fd = static_cast<int>(luaL_checkinteger(L, -1));
      p.events = POLLIN;
    }
    lua_pop(L, 1);
    fds.push_back(p);
  }
  return n;
}

// core.pool_poll(channels, sentinels [, timeout [, pids [, pool]]]) -> list
int pool_poll(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  double timeout = luaL_optnumber(L, 3, -1);
  bool has_pids = lua_istable(L, 4);
  bool has_owner = lua_istable(L, 5);
  // Gather everything while no C++ object is alive (luaL_check* may raise).
  int nch = static_cast<int>(luaL_len(L, 1));
  int nsen = static_cast<int>(luaL_len(L, 2));
  int npids = has_pids ? static_cast<int>(luaL_len(L, 4)) : 0;
  for (int i = 1; i <= nch; ++i) {
    lua_rawgeti(L, 1, i);
    luaL_checkudata(L, -1, kChannelType);
    lua_pop(L, 1);
  }
  for (int i = 1; i <= nsen; ++i) {
    lua_rawgeti(L, 2, i);
    luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  if (has_owner) {
    // Make the field now, so that setting it on Ctrl-C (below, with C++
    // objects alive) cannot need memory and so cannot raise.
    lua_pushboolean(L, 0);
    lua_setfield(L, 5, "_interrupted");
  }
  lua_newtable(L);
  int result = lua_gettop(L);
  return run_guarded(L, [&] {
    std::vector<pollfd> fds;
    fds.reserve(static_cast<size_t>(nch + nsen));
    collect(L, 1, fds, true);
    collect(L, 2, fds, false);
    std::vector<pid_t> pids;
    for (int i = 1; i <= npids; ++i) {
      lua_rawgeti(L, 4, i);
      pids.push_back(static_cast<pid_t>(lua_tointeger(L, -1)));
      lua_pop(L, 1);
    }
    double deadline = timeout < 0 ? -1 : monotonic_seconds() + timeout;
    int rc;
    for (;;) {
      int ms = -1;
      if (deadline >= 0) {
        double left = deadline - monotonic_seconds();
        ms = left <= 0 ? 0 : static_cast<int>(std::ceil(left * 1000));
      }
      rc = ::poll(fds.data(), fds.size(), ms);
      if (rc >= 0) break;
      if (errno != EINTR) throw Failure::os("Pool: poll", errno);
      if (interrupt::pending()) {
        // Ctrl-C: stop the workers now (they ignore SIGINT by design); the
        // owner reaps them when the pool is terminated or at exit.
        for (pid_t pid : pids)
          if (pid > 0) ::kill(pid, SIGKILL);
        // Tell the pool (no Lua code can run until the interrupt is over):
        // its next call terminates it properly.  The field exists already.
        if (has_owner) {
          lua_pushboolean(L, 1);
          lua_setfield(L, 5, "_interrupted");
        }
        throw Failure::plain(interrupt::kMessage);
      }
    }
    lua_Integer k = 0;
    for (int i = 0; i < nch + nsen; ++i) {
      if (fds[i].revents == 0) continue;
      lua_pushinteger(L, i < nch ? i + 1 : -(i - nch + 1));
      lua_rawseti(L, result, ++k);
    }
    lua_pushvalue(L, result);
    return 1;
  });
}

// Numbers-only chunks skip the codec: 1 tag byte per element (0 integer,
// 1 float), then 8 bytes per element in native byte order (both ends are
// processes of the same machine and build).
//
// core.pool_pack(t, i, j) -> string, or nil when t[i..j] holds anything
// but numbers (raw access: plain tables only).
int pool_pack(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer i = luaL_checkinteger(L, 2);
  lua_Integer j = luaL_checkinteger(L, 3);
  if (j < i) {
    lua_pushliteral(L, "");
    return 1;
  }
  size_t n = static_cast<size_t>(j - i + 1);
  luaL_Buffer b;
  char* p = luaL_buffinitsize(L, &b, n * 9);
  char* vals = p + n;
  for (size_t k = 0; k < n; ++k) {
    lua_rawgeti(L, 1, i + static_cast<lua_Integer>(k));
    int isint = 0;
    lua_Integer iv = lua_tointegerx(L, -1, &isint);
    if (isint && lua_isinteger(L, -1)) {
      p[k] = 0;
      std::memcpy(vals + 8 * k, &iv, 8);
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
      lua_Number d = lua_tonumber(L, -1);
      p[k] = 1;
      std::memcpy(vals + 8 * k, &d, 8);
    } else {
      lua_pushnil(L);
      return 1;
    }
    lua_pop(L, 1);
  }
  luaL_pushresultsize(&b, n * 9);
  return 1;
}

// core.pool_unpack(s [, t, offset [, count]]) -> t: the numbers of a
// pool_pack string (the first `count` of them, default all) stored at
// t[offset], t[offset+1], ... (a new table at 1 by default).
int pool_unpack(lua_State* L) {
  size_t len;
  const char* s = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, len % 9 == 0, 1, "not a packed chunk");
  size_t n = len / 9;
  lua_Integer offset = 1;
  size_t count = n;
  if (lua_istable(L, 2)) {
    offset = luaL_checkinteger(L, 3);
    lua_Integer c = luaL_optinteger(L, 4, static_cast<lua_Integer>(n));
    luaL_argcheck(L, c >= 0 && static_cast<size_t>(c) <= n, 4, "count out of range");
    count = static_cast<size_t>(c);
    lua_settop(L, 2);
  } else {
    lua_settop(L, 1);
    lua_createtable(L, static_cast<int>(n), 0);
  }
  const char* vals = s + n;
  for (size_t k = 0; k < count; ++k) {
    if (s[k] == 0) {
      lua_Integer v;
      std::memcpy(&v, vals + 8 * k, 8);
      lua_pushinteger(L, v);
    } else {
      lua_Number d;
      std::memcpy(&d, vals + 8 * k, 8);
      lua_pushnumber(L, d);
    }
    lua_rawseti(L, -2, offset + static_cast<lua_Integer>(k));
  }
  return 1;
}

}  // namespace

void open_pool(lua_State* L) {
  if (luaL_newmetatable(L, kChannelType)) {
    static const luaL_Reg methods[] = {{"send", channel_send},       {"flush", channel_flush},
                                       {"pending", channel_pending}, {"recv", channel_recv},
                                       {"fileno", channel_fileno},   {"progress", channel_progress},
                                       {"close", channel_close},     {nullptr, nullptr}};
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, channel_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, channel_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, kSlotType)) {
    static const luaL_Reg methods[] = {
        {"start", slot_start}, {"finish", slot_finish}, {"close", slot_close}, {nullptr, nullptr}};
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, slot_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, slot_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  static const luaL_Reg funcs[] = {{"pool_pipe", pool_pipe},
                                   {"pool_slot", pool_slot},
                                   {"pool_poll", pool_poll},
                                   {"pool_pack", pool_pack},
                                   {"pool_unpack", pool_unpack},
                                   {nullptr, nullptr}};
  luaL_setfuncs(L, funcs, 0);
}

}  // namespace luamp
