// Native help for the Pool (src/lua/multiprocessing.pool.lua, docs/design/pool.md):
// the memory a pool shares with its workers, and the owner's wait.
//
// One memfd per pool holds a slot per worker, the task ring and the result
// ring (ring.h rings in memory the pool owns, so a worker killed with
// SIGKILL leaves nothing in /dev/shm: the kernel drops its mapping).
//
//   core.pool_shared(nslots) -> shared, vehicle
//       The owner's side, and a Connection object that only carries the
//       memfd into workers (Connections cross into children under every
//       start method, with their fds).
//   core.pool_attach(vehicle, slot) -> shared    a worker's side, slot `slot`
//   Owner:
//     shared:put(uid, fid, fbytes, star, first, items, total, cs [, apply]) -> bool
//                                    puts a task record on the task ring,
//                                    tagged `uid`, never blocking (false: full)
//     shared:wait(sentinels, timeout, pids, pool) -> answers, dead
//                                    waits up to `timeout` (nil: no limit) for
//                                    answers on the result ring or a worker
//                                    sentinel; answers: four entries per
//                                    answer, in arrival order (see
//                                    decode_one); dead: positions of the
//                                    sentinels that fired.  On Ctrl-C it
//                                    SIGKILLs `pids` before raising
//                                    "interrupted!" and sets pool._interrupted.
//     shared:slot(i) -> claimed, started, finished, taken
//     shared:reset_slot(i)           before a new worker takes slot i
//     shared:gone(pid)               after reaping a worker
//     shared:discard() -> n          drops the tasks not yet taken
//     shared:quit(n)                 n workers leave (each takes one quit)
//   Worker:
//     shared:take() -> uid, fid, fbytes, star, first, items, total, cs, encoded
//                                    the oldest task, waiting as long as it
//                                    takes; records `uid` in the worker's slot
//                                    before the task leaves the ring
//     shared:start(k), shared:finish(k)   chunk k of the task starts / ends
//     shared:answer(v)               encodes v and puts it on the result ring
//                                    (waits for room)
//     shared:answer_packed(values, n, uid, chunk, seconds) -> bool
//                                    the same for numbers only, without the
//                                    codec (false: not all numbers)
//   shared:close() (also __gc, __close)
//   core.pool_table(n)      a table with room for n sequence items
//   core.pool_pack(t, i, j) / core.pool_unpack(s [, t, offset [, count]])
//       numbers-only chunks (items and results) as one flat string, which
//       the codec copies instead of walking element by element.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "mp/codec.h"
#include "mp/connection.h"
#include "mp/interrupt.h"
#include "mp/lua_util.h"
#include "mp/pool.h"
#include "mp/ring.h"
#include "mp/system.h"
#include "mp/unique.h"

namespace luamp {
namespace {

constexpr const char* kSharedType = "mp.PoolShared";

// Ring sizes: tmpfs pages are only used once touched.
constexpr size_t kTaskCapacity = 16u << 20;
constexpr size_t kResultCapacity = 32u << 20;
// While answers keep arriving, the owner looks at the sentinels at least
// this often.
constexpr double kSentinelEvery = 0.01;
// A blocked owner wakes this often to look at the sentinels.
constexpr double kWaitSlice = 0.02;

// What one worker is doing, written only by that worker (claimed under the
// task ring's lock), read by the owner after the worker died.
struct WorkerSlot {
  std::atomic<int64_t> claimed;   // tag of the last task taken (0: none)
  std::atomic<int64_t> started;   // chunk of it started (-1: in the initializer)
  std::atomic<int64_t> finished;  // chunk of it finished
  std::atomic<uint64_t> claimed_pos;  // where the task was in the ring
  int64_t reserved[4];
};
static_assert(sizeof(WorkerSlot) == 64, "one slot per cache line");

size_t slots_bytes(int nslots) {
  size_t b = sizeof(WorkerSlot) * static_cast<size_t>(nslots);
  return (b + 4095) & ~size_t{4095};
}

// The userdata; closed when map is null.  Owned C++ objects are freed by
// close (Lua never runs destructors of userdata).
struct PoolShared {
  Mapping* map;
  ring::Ring* tasks;
  ring::Ring* results;
  WorkerSlot* slots;
  int nslots;
  int my_slot;            // the worker's slot, -1 in the owner
  double sentinels_seen;  // owner: when the sentinels were last polled
  std::string* scratch;   // a task record being built (reused: no allocation per task)
};

PoolShared* check_shared(lua_State* L, int idx) {
  auto* p = static_cast<PoolShared*>(luaL_checkudata(L, idx, kSharedType));
  if (p->map == nullptr) luaL_error(L, "attempt to use a closed pool (its shared memory is released)");
  return p;
}

int shared_close(lua_State* L) {
  auto* p = static_cast<PoolShared*>(luaL_checkudata(L, 1, kSharedType));
  delete p->tasks;
  delete p->results;
  delete p->map;
  delete p->scratch;
  p->scratch = nullptr;
  p->tasks = p->results = nullptr;
  p->map = nullptr;
  p->slots = nullptr;
  return 0;
}

// Maps the pool memory of `fd` (nslots read from its size when < 0) into
// the closed-first userdata on top of the stack.
void map_shared(PoolShared* p, int fd, int nslots, bool format) {
  size_t task_bytes = ring::Ring::bytes_at(kTaskCapacity);
  size_t result_bytes = ring::Ring::bytes_at(kResultCapacity);
  size_t total = slots_bytes(nslots) + task_bytes + result_bytes;
  if (format && ::ftruncate(fd, static_cast<off_t>(total)) != 0) throw Failure::os("Pool: ftruncate", errno);
  void* mem = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) throw Failure::os("Pool: mmap", errno);
  auto map = std::make_unique<Mapping>(mem, total);
  char* base = static_cast<char*>(mem);
  char* task_mem = base + slots_bytes(nslots);
  char* result_mem = task_mem + task_bytes;
  if (format) {
    ring::Ring::format_at(task_mem, kTaskCapacity);
    ring::Ring::format_at(result_mem, kResultCapacity);
  }
  auto tasks = std::make_unique<ring::Ring>(task_mem, task_bytes);
  auto results = std::make_unique<ring::Ring>(result_mem, result_bytes);
  p->slots = reinterpret_cast<WorkerSlot*>(base);
  p->nslots = nslots;
  p->tasks = tasks.release();
  p->results = results.release();
  p->map = map.release();
}

PoolShared* new_shared(lua_State* L) {
  auto* p = static_cast<PoolShared*>(lua_newuserdatauv(L, sizeof(PoolShared), 0));
  *p = PoolShared{nullptr, nullptr, nullptr, nullptr, 0, -1, 0, nullptr};
  luaL_setmetatable(L, kSharedType);
  return p;
}

// core.pool_shared(nslots) -> shared, vehicle
int pool_shared(lua_State* L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 1 << 16, 1, "number of worker slots out of range");
  PoolShared* p = new_shared(L);
  return run_guarded(L, [&] {
    UniqueFd mem(memfd_create("luamp-pool", MFD_CLOEXEC));
    if (!mem) throw Failure::os("Pool: memfd_create", errno);
    map_shared(p, mem.get(), static_cast<int>(n), true);
    connection::push_connection(L, mem.release(), true, false, false);
    return 2;
  });
}

// core.pool_attach(vehicle, slot) -> shared
int pool_attach(lua_State* L) {
  int fd = connection::connection_fd(L, 1);
  luaL_argcheck(L, fd >= 0, 1, "Connection expected");
  lua_Integer slot = luaL_checkinteger(L, 2);
  PoolShared* p = new_shared(L);
  return run_guarded(L, [&] {
    struct stat st;
    if (::fstat(fd, &st) != 0) throw Failure::os("Pool: fstat", errno);
    size_t rings = ring::Ring::bytes_at(kTaskCapacity) + ring::Ring::bytes_at(kResultCapacity);
    size_t size = static_cast<size_t>(st.st_size);
    if (size <= rings) throw Failure::plain("Pool: not a pool's shared memory");
    int nslots = static_cast<int>((size - rings) / sizeof(WorkerSlot));
    if (slots_bytes(nslots) + rings != size || slot < 0 || slot >= nslots)
      throw Failure::plain("Pool: not a pool's shared memory");
    map_shared(p, fd, nslots, false);
    p->my_slot = static_cast<int>(slot);
    return 1;
  });
}

// Encodes the value at idx into `out` (fds are refused: the rings carry bytes).
void encode_value(lua_State* L, int idx, std::string& out, const char* path) {
  codec::EncodeContext ctx;
  ctx.path = path;
  codec::encode(L, idx, out, ctx);
}

// Numbers-only chunks skip the codec: 1 tag byte per element (0 integer,
// 1 float), then 8 bytes per element in native byte order (both ends are
// processes of the same machine and build).
//
// core.pool_pack(t, i, j) -> string, or nil when t[i..j] holds anything
// but numbers (raw access: plain tables only).
// Appends t[i..j] packed to `out` (raw access); false, with `out` as it
// was, when something there is not a number.
bool pack_numbers(lua_State* L, int t, lua_Integer i, lua_Integer j, std::string& out) {
  if (j < i) return true;
  t = lua_absindex(L, t);
  size_t n = static_cast<size_t>(j - i + 1);
  size_t at = out.size();
  out.resize(at + n * 9);
  char* p = out.data() + at;
  char* vals = p + n;
  // Values are fetched a batch at a time and dropped with one settop.
  constexpr int kBatch = 256;
  if (!lua_checkstack(L, kBatch + 1)) throw Failure::plain("Pool: out of stack space");
  const int base = lua_gettop(L);
  for (size_t k0 = 0; k0 < n; k0 += kBatch) {
    size_t m = n - k0 < static_cast<size_t>(kBatch) ? n - k0 : kBatch;
    for (size_t k = 0; k < m; ++k) {
      if (lua_rawgeti(L, t, i + static_cast<lua_Integer>(k0 + k)) != LUA_TNUMBER) {
        lua_settop(L, base);
        out.resize(at);
        return false;
      }
    }
    for (size_t k = 0; k < m; ++k) {
      int idx = base + 1 + static_cast<int>(k);
      size_t e = k0 + k;
      if (lua_isinteger(L, idx)) {
        lua_Integer iv = lua_tointegerx(L, idx, nullptr);
        p[e] = 0;
        std::memcpy(vals + 8 * e, &iv, 8);
      } else {
        lua_Number d = lua_tonumberx(L, idx, nullptr);
        p[e] = 1;
        std::memcpy(vals + 8 * e, &d, 8);
      }
    }
    lua_settop(L, base);
  }
  return true;
}

// True when the table at t has no keys but 1..#t (an args table with a
// field `n`, or holes, must travel whole).
bool keys_are_sequence(lua_State* L, int t) {
  lua_Integer len = static_cast<lua_Integer>(lua_rawlen(L, t));
  lua_Integer count = 0;
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    lua_pop(L, 1);
    if (++count > len) {
      lua_pop(L, 1);
      return false;
    }
  }
  return count == len;
}

// Pushes one packed number: its tag byte (0 integer, 1 float) and the 8
// bytes at v.
void push_packed(lua_State* L, char tag, const char* v) {
  if (tag == 0) {
    lua_Integer i;
    std::memcpy(&i, v, 8);
    lua_pushinteger(L, i);
  } else {
    lua_Number d;
    std::memcpy(&d, v, 8);
    lua_pushnumber(L, d);
  }
}

// Stores the first `count` of the `n` packed numbers at p into the table
// on top of the stack, at offset, offset+1, ...
void unpack_into(lua_State* L, const char* p, size_t n, size_t count, lua_Integer offset) {
  const char* vals = p + n;
  for (size_t k = 0; k < count; ++k) {
    push_packed(L, p[k], vals + 8 * k);
    lua_rawseti(L, -2, offset + static_cast<lua_Integer>(k));
  }
}

// Pushes a new table of the `n` packed numbers at p.
void push_unpacked(lua_State* L, const char* p, size_t n) {
  lua_createtable(L, static_cast<int>(n), 0);
  unpack_into(L, p, n, n, 1);
}

int pool_pack(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer i = luaL_checkinteger(L, 2);
  lua_Integer j = luaL_checkinteger(L, 3);
  return run_guarded(L, [&] {
    std::string out;
    if (pack_numbers(L, 1, i, j, out))
      lua_pushlstring(L, out.data(), out.size());
    else
      lua_pushnil(L);
    return 1;
  });
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
  unpack_into(L, s, n, count, offset);
  return 1;
}

// A task on the ring: this head, the function's bytes, then the items,
// packed numbers or codec bytes.  A quit has only the head.
struct TaskHead {
  uint32_t magic;
  uint8_t star;
  uint8_t items_kind;  // kPacked, kEncoded, kApplyPacked, kApplyEncoded
  uint8_t reserved[2];
  int64_t fid, first, total, cs;
  uint64_t fbytes_size;
};
constexpr uint32_t kTaskMagic = 0x4b534154;  // "TASK"
constexpr uint32_t kQuitMagic = 0x54495551;  // "QUIT"
enum ItemsKind : uint8_t { kPacked = 0, kEncoded = 1, kApplyPacked = 2, kApplyEncoded = 3 };

// shared:put(uid, fid, fbytes, star, first, items, total, cs [, apply]) -> bool
//   items: a pool_pack string or a table of the items; with apply, the
//   argument table of the one task.  true: on the ring; false: the ring is
//   full; nil, err: the items cannot be encoded.
int shared_put(lua_State* L) {
  PoolShared* p = check_shared(L, 1);
  lua_Integer uid = luaL_checkinteger(L, 2);
  TaskHead head{};
  head.magic = kTaskMagic;
  head.fid = luaL_checkinteger(L, 3);
  size_t fsize;
  const char* fbytes = luaL_checklstring(L, 4, &fsize);
  head.star = lua_toboolean(L, 5) ? 1 : 0;
  head.first = luaL_checkinteger(L, 6);
  bool packed_string = lua_type(L, 7) == LUA_TSTRING;
  if (!packed_string) luaL_checktype(L, 7, LUA_TTABLE);
  head.total = luaL_checkinteger(L, 8);
  head.cs = luaL_checkinteger(L, 9);
  bool apply = lua_toboolean(L, 10);
  head.fbytes_size = fsize;
  return run_guarded(L, [&] {
    if (p->scratch == nullptr) p->scratch = new std::string();
    std::string& out = *p->scratch;
    // A big task's buffer is not kept.
    struct Trim {
      std::string& s;
      ~Trim() {
        if (s.capacity() > (1u << 20)) std::string().swap(s);
      }
    } trim{out};
    out.assign(reinterpret_cast<const char*>(&head), sizeof head);
    out.append(fbytes, fsize);
    if (packed_string) {
      size_t n;
      const char* s = lua_tolstring(L, 7, &n);
      out.append(s, n);
      head.items_kind = kPacked;
    } else if (pack_numbers(L, 7, 1, apply ? static_cast<lua_Integer>(lua_rawlen(L, 7)) : head.total, out) &&
               (!apply || keys_are_sequence(L, 7))) {
      head.items_kind = apply ? kApplyPacked : kPacked;
    } else {
      out.resize(sizeof head + fsize);
      try {
        encode_value(L, 7, out, apply ? "args" : "items");
      } catch (Failure& f) {
        // Not a programmer's mistake in the call: the task fails, not
        // the caller (the pool hands the message to the task's result).
        lua_pushnil(L);
        push_failure(L, f);
        return 2;
      }
      head.items_kind = apply ? kApplyEncoded : kEncoded;
    }
    std::memcpy(out.data(), &head, sizeof head);
    ring::Status s = p->tasks->put_tagged(static_cast<uint64_t>(uid), out.data(), out.size(), false,
                                          semlock::Deadline::never());
    lua_pushboolean(L, s == ring::Status::Ok);
    return 1;
  });
}

// shared:discard() -> n: drops the tasks not yet taken (terminate).
int shared_discard(lua_State* L) {
  PoolShared* p = check_shared(L, 1);
  return run_guarded(L, [&] {
    lua_Integer n = 0;
    ring::Message m;
    while (p->tasks->get(m, false, semlock::Deadline::never()) == ring::Status::Ok) ++n;
    lua_pushinteger(L, n);
    return 1;
  });
}

// shared:quit(n): n workers leave (each takes one).
int shared_quit(lua_State* L) {
  PoolShared* p = check_shared(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  return run_guarded(L, [&] {
    TaskHead head{};
    head.magic = kQuitMagic;
    for (lua_Integer i = 0; i < n; ++i)
      p->tasks->put_tagged(0, reinterpret_cast<const char*>(&head), sizeof head, true, semlock::Deadline::never());
    return 0;
  });
}

void record_claim(void* ctx, uint64_t tag, uint64_t pos) {
  auto* slot = static_cast<WorkerSlot*>(ctx);
  slot->claimed_pos.store(pos, std::memory_order_relaxed);
  slot->started.store(0, std::memory_order_relaxed);
  slot->finished.store(0, std::memory_order_relaxed);
  slot->claimed.store(static_cast<int64_t>(tag), std::memory_order_release);
}

WorkerSlot* my_slot(lua_State* L, PoolShared* p) {
  if (p->my_slot < 0) luaL_error(L, "Pool: only a worker has a slot");
  return &p->slots[p->my_slot];
}

// shared:take() -> uid, fid, fbytes, star, first, items, total, cs,
// encoded; or nothing for a quit.  items is the table of the task's items
// (for an apply task: {args}), or when `encoded` is "items" or "args" the
// codec bytes of that table (or of the args), which the worker decodes
// under pcall: an item that cannot be rebuilt there fails its tasks, not
// the worker.
int shared_take(lua_State* L) {
  PoolShared* p = check_shared(L, 1);
  WorkerSlot* slot = my_slot(L, p);
  lua_settop(L, 1);
  return run_guarded(L, [&] {
    ring::Message m;
    p->tasks->get_claimed(m, true, semlock::Deadline::never(), record_claim, slot, true);
    TaskHead head;
    if (m.size() < sizeof head) throw Failure::plain("corrupt message: short pool task");
    std::memcpy(&head, m.data(), sizeof head);
    if (head.magic == kQuitMagic) return 0;
    const char* data = m.data() + sizeof head;
    size_t left = m.size() - sizeof head;
    if (head.magic != kTaskMagic || head.fbytes_size > left || head.total < 0 || head.cs < 1)
      throw Failure::plain("corrupt message: bad pool task");
    lua_pushinteger(L, slot->claimed.load(std::memory_order_relaxed));
    lua_pushinteger(L, head.fid);
    lua_pushlstring(L, data, head.fbytes_size);
    lua_pushboolean(L, head.star);
    lua_pushinteger(L, head.first);
    data += head.fbytes_size;
    left -= head.fbytes_size;
    const char* encoded = nullptr;
    if (head.items_kind == kPacked || head.items_kind == kApplyPacked) {
      if (left % 9 != 0) throw Failure::plain("corrupt message: bad packed items");
      bool apply = head.items_kind == kApplyPacked;
      if (apply) lua_createtable(L, 1, 0);
      push_unpacked(L, data, left / 9);
      if (apply) lua_rawseti(L, -2, 1);
    } else if (head.items_kind == kEncoded || head.items_kind == kApplyEncoded) {
      lua_pushlstring(L, data, left);
      encoded = head.items_kind == kEncoded ? "items" : "args";
    } else {
      throw Failure::plain("corrupt message: bad pool task items");
    }
    lua_pushinteger(L, head.total);
    lua_pushinteger(L, head.cs);
    if (encoded)
      lua_pushstring(L, encoded);
    else
      lua_pushnil(L);
    return 9;
  });
}

int shared_start(lua_State* L) {
  PoolShared* p = check_shared(L, 1);
  my_slot(L, p)->started.store(luaL_checkinteger(L, 2), std::memory_order_release);
  return 0;
}

int shared_finish(lua_State* L) {
  PoolShared* p = check_shared(L, 1);
  my_slot(L, p)->finished.store(luaL_checkinteger(L, 2), std::memory_order_release);
  return 0;
}

// shared:answer(v)
int shared_answer(lua_State* L) {
  PoolShared* p = check_shared(L, 1);
  luaL_checkany(L, 2);
  return run_guarded(L, [&] {
    std::string out;
    encode_value(L, 2, out, "result");
    p->results->put(out.data(), out.size(), true, semlock::Deadline::never());
    return 0;
  });
}

// A chunk's answer of numbers only, on the result ring without the codec:
// this head, then the packed values (pack_numbers' format).
struct PackedAnswer {
  uint8_t marker;  // kPackedMarker; a codec message starts with its version (1)
  uint8_t reserved[7];
  int64_t uid, chunk;
  double seconds;
};
constexpr uint8_t kPackedMarker = 0xA5;

// shared:answer_packed(values, n, uid, chunk, seconds) -> bool: puts the
// answer if values[1..n] are all numbers (false: they are not; nothing sent).
int shared_answer_packed(lua_State* L) {
  PoolShared* p = check_shared(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_checkinteger(L, 3);
  PackedAnswer head{};
  head.marker = kPackedMarker;
  head.uid = luaL_checkinteger(L, 4);
  head.chunk = luaL_checkinteger(L, 5);
  head.seconds = luaL_checknumber(L, 6);
  return run_guarded(L, [&] {
    if (p->scratch == nullptr) p->scratch = new std::string();
    std::string& out = *p->scratch;
    out.assign(reinterpret_cast<const char*>(&head), sizeof head);
    bool ok = pack_numbers(L, 2, 1, n, out);
    if (ok) p->results->put(out.data(), out.size(), true, semlock::Deadline::never());
    if (out.capacity() > (1u << 20)) std::string().swap(out);
    lua_pushboolean(L, ok);
    return 1;
  });
}

int check_slot_index(lua_State* L, PoolShared* p) {
  lua_Integer i = luaL_checkinteger(L, 2);
  luaL_argcheck(L, i >= 0 && i < p->nslots, 2, "slot out of range");
  return static_cast<int>(i);
}

// shared:slot(i) -> claimed, started, finished, taken
//   taken: the claimed task has left the ring (false only when the worker
//   died inside the ring's lock right after its claim: the task is still
//   there and another worker will run it).
int shared_slot(lua_State* L) {
  PoolShared* p = check_shared(L, 1);
  WorkerSlot& s = p->slots[check_slot_index(L, p)];
  int64_t claimed = s.claimed.load(std::memory_order_acquire);
  lua_pushinteger(L, claimed);
  lua_pushinteger(L, s.started.load(std::memory_order_acquire));
  lua_pushinteger(L, s.finished.load(std::memory_order_acquire));
  return run_guarded(L, [&] {
    lua_pushboolean(L, claimed == 0 || p->tasks->consumed(s.claimed_pos.load(std::memory_order_acquire)));
    return 4;
  });
}

// shared:gone(pid): a worker was reaped (if it died spinning on the task
// ring, another may spin now).
int shared_gone(lua_State* L) {
  PoolShared* p = check_shared(L, 1);
  pid_t pid = static_cast<pid_t>(luaL_checkinteger(L, 2));
  p->tasks->forget_spinner(pid);
  return 0;
}

// shared:reset_slot(i): nothing claimed, "in the initializer" until the new
// worker says otherwise (a worker that dies before that died starting).
int shared_reset_slot(lua_State* L) {
  PoolShared* p = check_shared(L, 1);
  WorkerSlot& s = p->slots[check_slot_index(L, p)];
  s.claimed.store(0, std::memory_order_relaxed);
  s.finished.store(0, std::memory_order_relaxed);
  s.started.store(-1, std::memory_order_release);
  return 0;
}

// Polls the sentinels without waiting; appends the positions that fired.
void poll_sentinels(const std::vector<pollfd>& in, lua_State* L, int dead_idx) {
  if (in.empty()) return;
  std::vector<pollfd> fds(in);
  int rc;
  do rc = ::poll(fds.data(), fds.size(), 0);
  while (rc < 0 && errno == EINTR && !interrupt::pending());
  if (rc < 0 && errno != EINTR) throw Failure::os("Pool: poll", errno);
  lua_Integer k = static_cast<lua_Integer>(lua_rawlen(L, dead_idx));
  for (size_t i = 0; i < fds.size(); ++i) {
    if (fds[i].revents == 0) continue;
    lua_pushinteger(L, static_cast<lua_Integer>(i + 1));
    lua_rawseti(L, dead_idx, ++k);
  }
}

// shared:wait(sentinels, timeout, pids, pool) -> answers, dead
int shared_wait(lua_State* L) {
  PoolShared* p = check_shared(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  double timeout = luaL_optnumber(L, 3, -1);
  bool has_pids = lua_istable(L, 4);
  bool has_owner = lua_istable(L, 5);
  // Gather everything while no C++ object is alive (luaL_check* may raise).
  int nsen = static_cast<int>(luaL_len(L, 2));
  int npids = has_pids ? static_cast<int>(luaL_len(L, 4)) : 0;
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
  lua_settop(L, 5);
  lua_newtable(L);  // 6: answers
  lua_newtable(L);  // 7: dead
  return run_guarded(L, [&] {
    std::vector<pollfd> sentinels;
    sentinels.reserve(static_cast<size_t>(nsen));
    for (int i = 1; i <= nsen; ++i) {
      lua_rawgeti(L, 2, i);
      sentinels.push_back(pollfd{static_cast<int>(lua_tointeger(L, -1)), POLLIN, 0});
      lua_pop(L, 1);
    }
    std::vector<pid_t> pids;
    for (int i = 1; i <= npids; ++i) {
      lua_rawgeti(L, 4, i);
      pids.push_back(static_cast<pid_t>(lua_tointeger(L, -1)));
      lua_pop(L, 1);
    }
    const double start = monotonic_seconds();
    const double deadline = timeout < 0 ? -1 : start + timeout;
    lua_Integer got = 0;
    ring::Message m;
    auto take = [&](bool block, semlock::Deadline d) {
      try {
        return p->results->get(m, block, d);
      } catch (Failure&) {
        if (interrupt::pending()) {
          // Ctrl-C: stop the workers now (they ignore SIGINT by design);
          // the owner reaps them when the pool is terminated or at exit.
          for (pid_t pid : pids)
            if (pid > 0) ::kill(pid, SIGKILL);
          if (has_owner) {  // the field exists already: no allocation
            lua_pushboolean(L, 1);
            lua_setfield(L, 5, "_interrupted");
          }
        }
        throw;
      }
    };
    // Each answer is four entries: uid, chunk, seconds, value (a packed
    // answer: the number itself when it holds one, else the packed string),
    // or false, false, false, the decoded {uid, chunk, seconds, values, errs}.
    lua_Integer slots = 0;
    auto decode_one = [&] {
      const char* data = m.data();
      size_t size = m.size();
      if (size >= sizeof(PackedAnswer) && static_cast<uint8_t>(data[0]) == kPackedMarker) {
        PackedAnswer head;
        std::memcpy(&head, data, sizeof head);
        size_t bytes = size - sizeof head;
        if (bytes % 9 != 0) throw Failure::plain("corrupt message: bad packed answer");
        lua_pushinteger(L, head.uid);
        lua_rawseti(L, 6, ++slots);
        lua_pushinteger(L, head.chunk);
        lua_rawseti(L, 6, ++slots);
        lua_pushnumber(L, head.seconds);
        lua_rawseti(L, 6, ++slots);
        const char* packed = data + sizeof head;
        if (bytes == 9) {
          push_packed(L, packed[0], packed + 1);
        } else {
          lua_pushlstring(L, packed, bytes);
        }
        lua_rawseti(L, 6, ++slots);
      } else {
        for (int i = 0; i < 3; ++i) {
          lua_pushboolean(L, 0);
          lua_rawseti(L, 6, ++slots);
        }
        codec::DecodeContext ctx;
        codec::decode(L, data, size, ctx);
        lua_rawseti(L, 6, ++slots);
      }
      ++got;
      m = ring::Message();
    };
    for (;;) {
      while (got < 4096 && take(false, semlock::Deadline::never()) == ring::Status::Ok) decode_one();
      double now = monotonic_seconds();
      if (got > 0) {
        if (now - p->sentinels_seen >= kSentinelEvery) {
          p->sentinels_seen = now;
          poll_sentinels(sentinels, L, 7);
        }
        break;
      }
      p->sentinels_seen = now;
      poll_sentinels(sentinels, L, 7);
      if (lua_rawlen(L, 7) > 0) break;
      if (deadline >= 0 && now >= deadline) break;
      double until = now + kWaitSlice;
      if (deadline >= 0 && deadline < until) until = deadline;
      if (take(true, semlock::Deadline::after(until - now)) == ring::Status::Ok) decode_one();
    }
    lua_settop(L, 7);
    return 2;
  });
}

// core.pool_table(n) -> a new table with room for n sequence items (a
// map's results arrive out of order; growing the table as they come costs
// a rehash per doubling).
int pool_table(lua_State* L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 0) n = 0;
  if (n > (1 << 24)) n = 1 << 24;  // beyond that the table grows as usual
  lua_createtable(L, static_cast<int>(n), 0);
  return 1;
}

}  // namespace

void open_pool(lua_State* L) {
  if (luaL_newmetatable(L, kSharedType)) {
    static const luaL_Reg methods[] = {{"put", shared_put},       {"quit", shared_quit},
                                       {"discard", shared_discard},
                                       {"take", shared_take},
                                       {"start", shared_start},   {"finish", shared_finish},
                                       {"answer", shared_answer},
                                       {"answer_packed", shared_answer_packed}, {"wait", shared_wait},
                                       {"slot", shared_slot},     {"reset_slot", shared_reset_slot},
                                       {"gone", shared_gone},
                                       {"close", shared_close},   {nullptr, nullptr}};
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, shared_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, shared_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  static const luaL_Reg funcs[] = {{"pool_shared", pool_shared},
                                   {"pool_attach", pool_attach},
                                   {"pool_pack", pool_pack},
                                   {"pool_unpack", pool_unpack},
                                   {"pool_table", pool_table},
                                   {nullptr, nullptr}};
  luaL_setfuncs(L, funcs, 0);
}

}  // namespace luamp
