// mp.Lock, RLock, Semaphore, BoundedSemaphore, Condition and Event: Lua
// userdata over futex words in shared segments (semlock.h, shm.h).  Barrier
// is embedded Lua over Condition (src/lua/multiprocessing.synchronize.lua),
// which also adds Condition:wait_for.  Users: init.lua (the public names),
// sharedctypes.cpp (the lock of a Value/Array), the codec (NativeTypes
// below send each object by reference: segment name + offset).
//
// Dead holders (docs/api/synchronize.md): a blocking acquire of a Lock or
// RLock whose holder died raises mp.ProcessError naming the pid; release()
// frees it (anyone may release a Lock; an RLock whose owner is dead may be
// released by anyone).
#include "mp/synchronize.h"

#include <climits>
#include <cstring>
#include <string>

#include "mp/codec.h"
#include "mp/lua_util.h"

namespace luamp {
namespace {

constexpr const char* kGuard = "mp.Guard";

using semlock::Acquired;
using semlock::Deadline;
using semlock::Kind;
using semlock::SemLock;

// A Condition's words.  `sleepers`: waiters registered and not yet granted
// a wake-up; `credits`: wake-ups granted and not yet taken; `seq`: the
// futex word, bumped by every notify.  notify(n) moves min(n, sleepers)
// from sleepers to credits, bumps seq and wakes that many sleepers.  A
// waiter takes a credit only after it has seen seq change since it
// registered, so a waiter that arrives after a notify (the notifier itself,
// typically) cannot take that notify's wake-up: at most n earlier waiters
// return true.  All counters change under the condition's lock, except that
// a woken waiter takes its credit before re-acquiring the lock.
struct CondWords {
  std::atomic<uint32_t> seq;
  std::atomic<uint32_t> sleepers;
  std::atomic<uint32_t> credits;
  uint32_t pad;
};
// Takes one credit if there is one.
bool cond_take_credit(CondWords* cw) {
  uint32_t v = cw->credits.load(std::memory_order_seq_cst);
  while (v > 0) {
    if (cw->credits.compare_exchange_weak(v, v - 1, std::memory_order_seq_cst)) return true;
  }
  return false;
}
// An Event's words: the flag and the processes waiting for it.
struct EventWords {
  std::atomic<uint32_t> flag;
  std::atomic<uint32_t> waiters;
};

// Every synchronization userdata.  Closed when seg is null (after __gc).
struct SyncUd {
  std::shared_ptr<shm::Segment> seg;
  uint64_t offset = 0;
  void* words = nullptr;
  const char* type = nullptr;  // the metatable name constant (fast self check)
};

constexpr const char* kLock = "mp.Lock";
constexpr const char* kRLock = "mp.RLock";
constexpr const char* kSemaphore = "mp.Semaphore";
constexpr const char* kBounded = "mp.BoundedSemaphore";
constexpr const char* kCondition = "mp.Condition";
constexpr const char* kEvent = "mp.Event";

const char* kind_metatable(Kind k) {
  switch (k) {
    case Kind::Lock: return kLock;
    case Kind::RLock: return kRLock;
    case Kind::Semaphore: return kSemaphore;
    case Kind::BoundedSemaphore: return kBounded;
  }
  return kLock;
}

// Pushes a closed SyncUd with metatable `mt` (closed first: resources are
// attached after the allocation succeeded).
SyncUd* new_sync(lua_State* L, const char* mt) {
  auto* u = static_cast<SyncUd*>(lua_newuserdatauv(L, sizeof(SyncUd), 1));
  new (u) SyncUd();
  u->type = mt;
  luaL_setmetatable(L, mt);
  return u;
}

// Methods get their own metatable as upvalue 1: one pointer comparison
// checks `self` (the fast path of acquire/release).
SyncUd* check_self(lua_State* L) {
  auto* u = static_cast<SyncUd*>(lua_touserdata(L, 1));
  if (u != nullptr && lua_getmetatable(L, 1)) {
    bool same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (same) {
      if (!u->seg) luaL_error(L, "attempt to use a closed %s", lua_tostring(L, lua_upvalueindex(2)));
      return u;
    }
  }
  luaL_typeerror(L, 1, lua_tostring(L, lua_upvalueindex(2)));
  return nullptr;
}

// (block, timeout) arguments at 2, 3 -> block flag and deadline.
void read_block_timeout(lua_State* L, int first, bool* block, Deadline* d) {
  *block = lua_isnoneornil(L, first) ? true : lua_toboolean(L, first);
  *d = Deadline::never();
  if (!lua_isnoneornil(L, first + 1)) *d = Deadline::after(luaL_checknumber(L, first + 1));
}

// Deadline from an optional timeout argument (nil = forever).
Deadline read_timeout(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return Deadline::never();
  return Deadline::after(luaL_checknumber(L, idx));
}

int sync_gc(lua_State* L) {
  auto* u = static_cast<SyncUd*>(lua_touserdata(L, 1));
  if (u) {
    u->seg.reset();
    u->words = nullptr;
  }
  return 0;
}

// The lock under a Condition (its user value).
SemLock* condition_lock(lua_State* L, int idx) {
  lua_getiuservalue(L, idx, 1);
  SemLock* sl = test_semlock(L, -1);
  lua_pop(L, 1);
  return sl;
}

// ---- Lock, RLock, Semaphore, BoundedSemaphore (and Condition's lock) ----

// acquire(block, timeout) with the arguments at 2, 3, on any SemLock.
int acquire_slow(lua_State* L, SemLock* sl) {
  bool block;
  Deadline d;
  read_block_timeout(L, 2, &block, &d);
  return run_guarded(L, [&] {
    lua_pushboolean(L, sl->acquire(block, d) != Acquired::TimedOut);
    return 1;
  });
}

int release_slow(lua_State* L, SemLock* sl) {
  return run_guarded(L, [&] {
    sl->release();
    return 0;
  });
}

// cond:acquire([block [, timeout]]) / cond:release(): the Condition's lock.
int condition_acquire(lua_State* L) {
  check_self(L);
  SemLock* sl = condition_lock(L, 1);
  if (!sl) return luaL_error(L, "Condition's lock is closed");
  return acquire_slow(L, sl);
}
int condition_release(lua_State* L) {
  check_self(L);
  SemLock* sl = condition_lock(L, 1);
  if (!sl) return luaL_error(L, "Condition's lock is closed");
  return release_slow(L, sl);
}

// lock:acquire([block [, timeout]]) -> boolean
// A Lock or RLock at index 1, known without touching its metatable: the
// userdata has our size and carries one of our type constants (a foreign
// userdata of the same size holding that address is not a real concern).
SyncUd* fast_lock(lua_State* L) {
  auto* u = static_cast<SyncUd*>(lua_touserdata(L, 1));
  if (u && lua_rawlen(L, 1) == sizeof(SyncUd) && (u->type == kLock || u->type == kRLock) && u->seg) return u;
  return nullptr;
}

int lock_acquire(lua_State* L) {
  SyncUd* u = lua_gettop(L) == 1 ? fast_lock(L) : nullptr;
  if (!u) u = check_self(L);
  // Fast path: a Lock/RLock, no arguments, and the word free.
  if (lua_gettop(L) == 1) {
    auto* sl = static_cast<SemLock*>(u->words);
    Kind k = sl->type();
    if (k == Kind::Lock || k == Kind::RLock) {
      uint32_t me = static_cast<uint32_t>(semlock::self_pid());
      uint32_t expected = 0;
      if (sl->word.compare_exchange_strong(expected, me, std::memory_order_seq_cst)) {
        sl->depth = 1;
        lua_pushboolean(L, 1);
        return 1;
      }
      if (k == Kind::RLock && expected == me) {
        ++sl->depth;
        lua_pushboolean(L, 1);
        return 1;
      }
    }
  }
  return acquire_slow(L, static_cast<SemLock*>(u->words));
}

// lock:release()
int lock_release(lua_State* L) {
  SyncUd* u = fast_lock(L);
  if (!u) u = check_self(L);
  {
    auto* sl = static_cast<SemLock*>(u->words);
    if (sl->type() == Kind::Lock) {
      // Fast path: held, and nobody waits.
      if (sl->word.exchange(0, std::memory_order_seq_cst) != 0) {
        if (sl->waiters.load(std::memory_order_seq_cst) != 0) semlock::futex_wake(&sl->word, 1);
        return 0;
      }
      return luaL_error(L, "release: lock is not acquired (release unlocked lock)");
    }
    if (sl->type() == Kind::RLock && sl->word.load(std::memory_order_relaxed) == static_cast<uint32_t>(semlock::self_pid())) {
      if (--sl->depth > 0) return 0;
      sl->word.store(0, std::memory_order_seq_cst);
      if (sl->waiters.load(std::memory_order_seq_cst) != 0) semlock::futex_wake(&sl->word, 1);
      return 0;
    }
  }
  return release_slow(L, static_cast<SemLock*>(u->words));
}

// guard.__close: releases the guarded object once.
int guard_close(lua_State* L) {
  auto* done = static_cast<int*>(luaL_checkudata(L, 1, kGuard));
  if (*done) return 0;
  *done = 1;
  lua_getiuservalue(L, 1, 1);
  lua_getfield(L, -1, "release");
  lua_insert(L, -2);
  lua_call(L, 1, 0);
  return 0;
}

}  // namespace

// obj:guard() -> a closable object: calls obj:acquire() now (blocking) and
// obj:release() in its __close.  Shared by locks, Condition, Value, Array.
int object_guard(lua_State* L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  lua_getfield(L, 1, "acquire");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  auto* done = static_cast<int*>(lua_newuserdatauv(L, sizeof(int), 1));
  *done = 0;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, kGuard);
  return 1;
}

namespace {

int lock_guard(lua_State* L) {
  check_self(L);
  return object_guard(L);
}

// lock:locked() -> boolean (Lock/RLock)
int lock_locked(lua_State* L) {
  SyncUd* u = check_self(L);
  lua_pushboolean(L, static_cast<SemLock*>(u->words)->holder() != 0);
  return 1;
}

// sem:get_value() -> integer
int lock_get_value(lua_State* L) {
  SyncUd* u = check_self(L);
  lua_pushinteger(L, static_cast<SemLock*>(u->words)->value());
  return 1;
}

// Pushes the display name of a holder: the current process's name when it
// is this process, else its pid.
void push_owner(lua_State* L, SemLock* sl) {
  pid_t holder = sl->holder();
  if (holder == 0) {
    lua_pushliteral(L, "None");
  } else if (holder == semlock::self_pid()) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "multiprocessing.process");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
      lua_getfield(L, -1, "current_process");
      if (lua_pcall(L, 0, 1, 0) == LUA_OK && lua_istable(L, -1)) {
        lua_getfield(L, -1, "name");
        lua_remove(L, -2);
        lua_remove(L, -2);
        return;
      }
    }
    lua_settop(L, lua_gettop(L) - 1);
    lua_pushliteral(L, "MainProcess");
  } else {
    lua_pushinteger(L, holder);
  }
  luaL_tolstring(L, -1, nullptr);
  lua_remove(L, -2);
}

// Python-like repr: <Lock(owner=None)>, <RLock(MainProcess, 1)>,
// <Semaphore(value=2)>, <BoundedSemaphore(value=2, maxvalue=3)>.
void push_semlock_repr(lua_State* L, SemLock* sl) {
  switch (sl->type()) {
    case Kind::Lock:
      push_owner(L, sl);
      lua_pushfstring(L, "<Lock(owner=%s)>", lua_tostring(L, -1));
      break;
    case Kind::RLock:
      push_owner(L, sl);
      lua_pushfstring(L, "<RLock(%s, %d)>", lua_tostring(L, -1), static_cast<int>(sl->value()));
      break;
    case Kind::Semaphore:
      lua_pushnil(L);
      lua_pushfstring(L, "<Semaphore(value=%d)>", static_cast<int>(sl->value()));
      break;
    case Kind::BoundedSemaphore:
      lua_pushnil(L);
      lua_pushfstring(L, "<BoundedSemaphore(value=%d, maxvalue=%d)>", static_cast<int>(sl->value()),
                      static_cast<int>(sl->maxvalue));
      break;
  }
  lua_remove(L, -2);
}

int lock_tostring(lua_State* L) {
  auto* u = static_cast<SyncUd*>(lua_touserdata(L, 1));
  if (!u || !u->seg) {
    lua_pushliteral(L, "<closed lock>");
    return 1;
  }
  push_semlock_repr(L, static_cast<SemLock*>(u->words));
  return 1;
}

// Makes a new SemLock of `kind` with start `value` in its own segment.
int new_semlock(lua_State* L, Kind kind, lua_Integer value) {
  SyncUd* u = new_sync(L, kind_metatable(kind));
  return run_guarded(L, [&] {
    auto seg = shm::Segment::create(sizeof(SemLock));
    semlock::semlock_at(seg->data())->init(kind, static_cast<uint32_t>(value));
    u->words = seg->data();
    u->seg = std::move(seg);
    return 1;
  });
}

lua_Integer check_sem_value(lua_State* L) {
  lua_Integer v = luaL_optinteger(L, 1, 1);
  luaL_argcheck(L, v >= 0, 1, "semaphore initial value must be >= 0");
  luaL_argcheck(L, v <= INT_MAX, 1, "semaphore initial value too large");
  return v;
}

int core_lock(lua_State* L) { return new_semlock(L, Kind::Lock, 0); }
int core_rlock(lua_State* L) { return new_semlock(L, Kind::RLock, 0); }
int core_semaphore(lua_State* L) { return new_semlock(L, Kind::Semaphore, check_sem_value(L)); }
int core_bounded_semaphore(lua_State* L) { return new_semlock(L, Kind::BoundedSemaphore, check_sem_value(L)); }

// ---- Condition ----

// mp.Condition([lock]): lock is a Lock or RLock (default: a new RLock).
int core_condition(lua_State* L) {
  bool own_lock = lua_isnoneornil(L, 1);
  if (!own_lock) {
    SemLock* sl = test_semlock(L, 1);
    luaL_argexpected(L, sl && (sl->type() == Kind::Lock || sl->type() == Kind::RLock), 1, "Lock or RLock");
  }
  SyncUd* u = new_sync(L, kCondition);
  int cond_idx = lua_gettop(L);
  run_guarded(L, [&] {
    // One segment: the words, then (by default) the RLock at offset 32.
    auto seg = shm::Segment::create(32 + sizeof(SemLock));
    auto* cw = static_cast<CondWords*>(seg->data());
    cw->seq.store(0);
    cw->sleepers.store(0);
    cw->credits.store(0);
    if (own_lock) {
      semlock::semlock_at(static_cast<char*>(seg->data()) + 32)->init(Kind::RLock, 0);
      push_semlock(L, seg, 32, Kind::RLock);
    } else {
      lua_pushvalue(L, 1);
    }
    lua_setiuservalue(L, cond_idx, 1);
    u->words = cw;
    u->seg = std::move(seg);
    return 0;
  });
  return 1;
}

// Checks that this process holds the condition's lock.
SemLock* owned_condition_lock(lua_State* L, const char* what) {
  SemLock* sl = condition_lock(L, 1);
  if (!sl) luaL_error(L, "Condition's lock is closed");
  if (!sl->is_mine()) luaL_error(L, "%s: must acquire() the condition's lock first", what);
  return sl;
}

// cond:wait([timeout]) -> true when notified, false on timeout.  Releases
// the lock (all RLock levels), sleeps on the sequence word, re-acquires.
int condition_wait(lua_State* L) {
  SyncUd* u = check_self(L);
  Deadline d = read_timeout(L, 2);
  SemLock* sl = owned_condition_lock(L, "wait");
  auto* cw = static_cast<CondWords*>(u->words);
  return run_guarded(L, [&] {
    uint32_t depth = sl->depth;
    cw->sleepers.fetch_add(1, std::memory_order_seq_cst);  // under the lock
    uint32_t mine = cw->seq.load(std::memory_order_seq_cst);
    sl->depth = 1;
    sl->release();
    bool notified = false;
    struct Reacquire {  // also on Ctrl-C: the caller holds the lock again
      SemLock* sl;
      uint32_t depth;
      CondWords* cw;
      bool* notified;
      uint32_t* mine;
      ~Reacquire() {
        bool locked = true;
        try {
          // Not interruptible: when Ctrl-C is the reason we leave, the
          // caller must still get its lock back (its guard releases it).
          sl->acquire(true, Deadline::never(), semlock::DeadHolder::Raise, false);
        } catch (...) {
          // A dead holder or Ctrl-C while re-acquiring: the error of the
          // wait itself (if any) is already on its way.
          locked = false;
        }
        if (!*notified) {
          // Leaving without a wake-up (timeout, Ctrl-C): with the lock held,
          // no notify runs now.  A credit granted since we registered may be
          // ours: take it; else give back our registration.
          if (cw->seq.load(std::memory_order_seq_cst) != *mine && cond_take_credit(cw)) {
            *notified = true;
          } else {
            cw->sleepers.fetch_sub(1, std::memory_order_seq_cst);
          }
        }
        if (locked && sl->type() == Kind::RLock) sl->depth = depth;
      }
    };
    {
      Reacquire reacquire{sl, depth, cw, &notified, &mine};
      for (;;) {
        uint32_t now_seq = cw->seq.load(std::memory_order_seq_cst);
        if (now_seq != mine) {
          if (cond_take_credit(cw)) {
            notified = true;
            break;
          }
          mine = now_seq;  // that notify was for others
        }
        if (!semlock::futex_wait(&cw->seq, mine, d)) break;  // deadline
      }
    }
    lua_pushboolean(L, notified);
    return 1;
  });
}

// cond:notify([n]) wakes up to n (default 1) waiters; cond:notify_all().
int condition_notify_n(lua_State* L, int n) {
  SyncUd* u = check_self(L);
  owned_condition_lock(L, "notify");
  auto* cw = static_cast<CondWords*>(u->words);
  uint32_t waiting = cw->sleepers.load(std::memory_order_seq_cst);
  uint32_t m = static_cast<uint32_t>(n) < waiting ? static_cast<uint32_t>(n) : waiting;
  if (m == 0) return 0;
  cw->sleepers.fetch_sub(m, std::memory_order_seq_cst);
  cw->credits.fetch_add(m, std::memory_order_seq_cst);  // before seq: a waiter seeing seq sees them
  cw->seq.fetch_add(1, std::memory_order_seq_cst);
  semlock::futex_wake(&cw->seq, static_cast<int>(m));
  return 0;
}
int condition_notify(lua_State* L) {
  lua_Integer n = luaL_optinteger(L, 2, 1);
  return condition_notify_n(L, n < 0 ? 0 : (n > INT_MAX ? INT_MAX : static_cast<int>(n)));
}
int condition_notify_all(lua_State* L) { return condition_notify_n(L, INT_MAX); }

// <Condition(<RLock(None, 0)>, 0)>: the lock and the number of sleepers.
int condition_tostring(lua_State* L) {
  auto* u = static_cast<SyncUd*>(lua_touserdata(L, 1));
  SemLock* sl = u && u->seg ? condition_lock(L, 1) : nullptr;
  if (!sl) {
    lua_pushliteral(L, "<closed Condition>");
    return 1;
  }
  push_semlock_repr(L, sl);
  lua_pushfstring(L, "<Condition(%s, %d)>", lua_tostring(L, -1),
                  static_cast<int>(static_cast<CondWords*>(u->words)->sleepers.load()));
  return 1;
}

// ---- Event ----

int core_event(lua_State* L) {
  SyncUd* u = new_sync(L, kEvent);
  return run_guarded(L, [&] {
    auto seg = shm::Segment::create(sizeof(EventWords));
    u->words = seg->data();
    u->seg = std::move(seg);
    return 1;
  });
}

int event_is_set(lua_State* L) {
  SyncUd* u = check_self(L);
  lua_pushboolean(L, static_cast<EventWords*>(u->words)->flag.load(std::memory_order_acquire) != 0);
  return 1;
}

int event_set(lua_State* L) {
  auto* ew = static_cast<EventWords*>(check_self(L)->words);
  ew->flag.store(1, std::memory_order_seq_cst);
  if (ew->waiters.load(std::memory_order_seq_cst) != 0) semlock::futex_wake(&ew->flag, INT_MAX);
  return 0;
}

int event_clear(lua_State* L) {
  static_cast<EventWords*>(check_self(L)->words)->flag.store(0, std::memory_order_seq_cst);
  return 0;
}

// event:wait([timeout]) -> the flag on return.
int event_wait(lua_State* L) {
  auto* ew = static_cast<EventWords*>(check_self(L)->words);
  Deadline d = read_timeout(L, 2);
  return run_guarded(L, [&] {
    if (ew->flag.load(std::memory_order_seq_cst) == 0) {
      ew->waiters.fetch_add(1, std::memory_order_seq_cst);
      struct Unmark {
        std::atomic<uint32_t>& w;
        ~Unmark() { w.fetch_sub(1, std::memory_order_seq_cst); }
      } unmark{ew->waiters};
      while (ew->flag.load(std::memory_order_seq_cst) == 0) {
        if (!semlock::futex_wait(&ew->flag, 0, d)) break;
      }
    }
    lua_pushboolean(L, ew->flag.load(std::memory_order_seq_cst) != 0);
    return 1;
  });
}

int event_tostring(lua_State* L) {
  auto* u = static_cast<SyncUd*>(lua_touserdata(L, 1));
  if (!u || !u->seg) {
    lua_pushliteral(L, "<closed Event>");
    return 1;
  }
  lua_pushstring(L, static_cast<EventWords*>(u->words)->flag.load() ? "<Event(set)>" : "<Event(unset)>");
  return 1;
}

// ---- crossing processes ----

SyncUd* check_any(lua_State* L, int idx) {
  auto* u = static_cast<SyncUd*>(lua_touserdata(L, idx));
  if (!u || !u->seg) throw Failure::plain("cannot send a closed synchronization object");
  return u;
}

void semlock_reduce(lua_State* L, int idx, std::string& out, codec::EncodeContext&) {
  SyncUd* u = check_any(L, idx);
  shm::encode_ref(out, *u->seg, u->offset);
}

void semlock_rebuild(lua_State* L, const char* data, size_t len, codec::DecodeContext&) {
  const char* p = data;
  uint64_t offset = 0;
  auto seg = shm::decode_ref(&p, data + len, &offset);
  if (offset + sizeof(SemLock) > seg->size()) throw Failure::plain("corrupt message: bad lock reference");
  auto* sl = semlock::semlock_at(static_cast<char*>(seg->data()) + offset);
  if (sl->kind < 1 || sl->kind > 4) throw Failure::plain("corrupt message: bad lock reference");
  push_semlock(L, std::move(seg), offset, sl->type());
}

void condition_reduce(lua_State* L, int idx, std::string& out, codec::EncodeContext& ctx) {
  SyncUd* u = check_any(L, idx);
  shm::encode_ref(out, *u->seg, u->offset);
  // Then the lock, as a nested encoding with its length in front.
  lua_getiuservalue(L, idx, 1);
  std::string nested;
  codec::encode(L, lua_gettop(L), nested, ctx);
  lua_pop(L, 1);
  uint32_t n = static_cast<uint32_t>(nested.size());
  out.append(reinterpret_cast<const char*>(&n), 4);
  out += nested;
}

void condition_rebuild(lua_State* L, const char* data, size_t len, codec::DecodeContext& ctx) {
  const char* p = data;
  const char* end = data + len;
  uint64_t offset = 0;
  auto seg = shm::decode_ref(&p, end, &offset);
  uint32_t n = 0;
  if (end - p < 4 || offset + sizeof(CondWords) > seg->size()) throw Failure::plain("corrupt message: bad Condition");
  std::memcpy(&n, p, 4);
  p += 4;
  if (static_cast<size_t>(end - p) < n) throw Failure::plain("corrupt message: bad Condition");
  SyncUd* u = new_sync(L, kCondition);
  int cond_idx = lua_gettop(L);
  codec::decode(L, p, n, ctx);
  if (!test_semlock(L, -1)) throw Failure::plain("corrupt message: Condition without a lock");
  lua_setiuservalue(L, cond_idx, 1);
  u->offset = offset;
  u->words = static_cast<char*>(seg->data()) + offset;
  u->seg = std::move(seg);
}

void event_reduce(lua_State* L, int idx, std::string& out, codec::EncodeContext&) {
  SyncUd* u = check_any(L, idx);
  shm::encode_ref(out, *u->seg, u->offset);
}

void event_rebuild(lua_State* L, const char* data, size_t len, codec::DecodeContext&) {
  const char* p = data;
  uint64_t offset = 0;
  auto seg = shm::decode_ref(&p, data + len, &offset);
  if (offset + sizeof(EventWords) > seg->size()) throw Failure::plain("corrupt message: bad Event");
  SyncUd* u = new_sync(L, kEvent);
  u->offset = offset;
  u->words = static_cast<char*>(seg->data()) + offset;
  u->seg = std::move(seg);
}

const codec::NativeType kNativeTypes[] = {
    {kLock, semlock_reduce, semlock_rebuild},
    {kRLock, semlock_reduce, semlock_rebuild},
    {kSemaphore, semlock_reduce, semlock_rebuild},
    {kBounded, semlock_reduce, semlock_rebuild},
    {kCondition, condition_reduce, condition_rebuild},
    {kEvent, event_reduce, event_rebuild},
};

// Creates metatable `name` whose __index holds `methods`; each method gets
// upvalues (metatable, type name).
void make_type(lua_State* L, const char* name, const luaL_Reg* methods, lua_CFunction tostring) {
  luaL_newmetatable(L, name);
  int mt = lua_gettop(L);
  lua_newtable(L);
  for (const luaL_Reg* r = methods; r->name; ++r) {
    lua_pushvalue(L, mt);
    lua_pushstring(L, name + 3);  // "Lock" for messages
    lua_pushcclosure(L, r->func, 2);
    lua_setfield(L, -2, r->name);
  }
  lua_setfield(L, mt, "__index");
  lua_pushcfunction(L, sync_gc);
  lua_setfield(L, mt, "__gc");
  lua_pushcfunction(L, tostring);
  lua_setfield(L, mt, "__tostring");
  lua_pop(L, 1);
}

}  // namespace

void push_semlock(lua_State* L, std::shared_ptr<shm::Segment> seg, uint64_t offset, Kind kind) {
  SyncUd* u = new_sync(L, kind_metatable(kind));
  u->offset = offset;
  u->words = static_cast<char*>(seg->data()) + offset;
  u->seg = std::move(seg);
}

SemLock* test_semlock(lua_State* L, int idx) {
  auto* u = static_cast<SyncUd*>(lua_touserdata(L, idx));
  if (!u || !lua_getmetatable(L, idx)) return nullptr;
  bool ok = false;
  for (const char* name : {kLock, kRLock, kSemaphore, kBounded}) {
    luaL_getmetatable(L, name);
    ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
    if (ok) break;
  }
  lua_pop(L, 1);
  if (!ok || !u->seg) return nullptr;
  return static_cast<SemLock*>(u->words);
}

void open_synchronize(lua_State* L) {
  static const luaL_Reg lock_methods[] = {{"acquire", lock_acquire}, {"release", lock_release},
                                          {"guard", lock_guard},     {"locked", lock_locked},
                                          {nullptr, nullptr}};
  static const luaL_Reg sem_methods[] = {{"acquire", lock_acquire}, {"release", lock_release},
                                         {"guard", lock_guard},     {"get_value", lock_get_value},
                                         {nullptr, nullptr}};
  static const luaL_Reg cond_methods[] = {{"acquire", condition_acquire}, {"release", condition_release},
                                          {"guard", lock_guard},     {"wait", condition_wait},
                                          {"notify", condition_notify}, {"notify_all", condition_notify_all},
                                          {nullptr, nullptr}};
  static const luaL_Reg event_methods[] = {{"is_set", event_is_set}, {"set", event_set},
                                           {"clear", event_clear},   {"wait", event_wait},
                                           {nullptr, nullptr}};
  make_type(L, kLock, lock_methods, lock_tostring);
  make_type(L, kRLock, lock_methods, lock_tostring);
  make_type(L, kSemaphore, sem_methods, lock_tostring);
  make_type(L, kBounded, sem_methods, lock_tostring);
  make_type(L, kCondition, cond_methods, condition_tostring);
  make_type(L, kEvent, event_methods, event_tostring);

  luaL_newmetatable(L, kGuard);
  lua_pushcfunction(L, guard_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, guard_close);
  lua_setfield(L, -2, "release");
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  for (const auto& t : kNativeTypes) codec::register_native_type(L, &t);
  // A spawned child takes over the shared-memory tracker it inherited.
  shm::adopt_inherited_tracker();

  static const luaL_Reg funcs[] = {{"Lock", core_lock},
                                   {"RLock", core_rlock},
                                   {"Semaphore", core_semaphore},
                                   {"BoundedSemaphore", core_bounded_semaphore},
                                   {"Condition", core_condition},
                                   {"Event", core_event},
                                   {nullptr, nullptr}};
  luaL_setfuncs(L, funcs, 0);
}

}  // namespace luamp
