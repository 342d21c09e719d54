// Futex-based process-shared Lock, RLock and semaphores.  See semlock.h.
//
// Lock/RLock word: the holder's pid (0 = free), so the holder is known
// atomically with the acquisition and a waiter can tell a dead holder.
// Semaphore word: the count.  `waiters` lets release() skip the futex_wake
// system call when nobody sleeps: a waiter increments it before re-checking
// the word, the releaser changes the word before reading it (both seq_cst),
// so one of them always sees the other.
#include "mp/semlock.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <string>

#include "mp/interrupt.h"
#include "mp/lua_util.h"

namespace luamp::semlock {
namespace {

// The cached pid: 0 means "ask the kernel"; reset in fork children.  A plain
// int read and written without locks (async-signal-safe).
volatile pid_t g_pid = 0;
void forget_pid() { g_pid = 0; }
const int kForkHook = pthread_atfork(nullptr, nullptr, forget_pid);

constexpr int64_t kSliceNs = 100 * 1000 * 1000;  // dead-holder probe period
constexpr int kSpins = 200;                       // busy checks before sleeping

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Lock: return "Lock";
    case Kind::RLock: return "RLock";
    case Kind::Semaphore: return "Semaphore";
    case Kind::BoundedSemaphore: return "BoundedSemaphore";
  }
  return "SemLock";
}

// Counts this process among the waiters for the life of a blocking acquire.
struct WaiterMark {
  std::atomic<uint32_t>& w;
  explicit WaiterMark(std::atomic<uint32_t>& waiters) : w(waiters) { w.fetch_add(1, std::memory_order_seq_cst); }
  ~WaiterMark() { w.fetch_sub(1, std::memory_order_seq_cst); }
};

}  // namespace

int64_t monotonic_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

Deadline Deadline::after(double seconds) {
  Deadline d;
  if (std::isnan(seconds) || seconds <= 0) {
    d.ns = monotonic_ns();
  } else if (seconds > 1e9) {
    d.ns = -1;  // centuries: the same as no deadline
  } else {
    d.ns = monotonic_ns() + static_cast<int64_t>(seconds * 1e9);
  }
  return d;
}

bool Deadline::expired() const { return ns >= 0 && monotonic_ns() >= ns; }

pid_t self_pid() {
  (void)kForkHook;
  pid_t p = g_pid;
  if (p == 0) {
    p = ::getpid();
    g_pid = p;
  }
  return p;
}

bool pid_is_dead(pid_t pid) { return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH; }

bool futex_wait(std::atomic<uint32_t>* word, uint32_t expected, Deadline deadline, bool interruptible) {
  for (;;) {
    // A SIGINT that arrived between two waits (not inside one) gives no
    // EINTR: look at the flag before every sleep.
    if (interruptible && interrupt::pending()) throw Failure::plain(interrupt::kMessage);
    // Sleep at most one slice: a SIGINT landing between the check above
    // and the system call does not interrupt it, so the flag is looked at
    // again within 100 ms.  A slice that ends before the deadline is
    // reported as a wake-up (callers re-check their condition).
    int64_t slice_end = monotonic_ns() + kSliceNs;
    bool sliced = deadline.infinite() || deadline.ns > slice_end;
    int64_t until = sliced ? slice_end : deadline.ns;
    struct timespec ts;
    ts.tv_sec = until / 1000000000LL;
    ts.tv_nsec = until % 1000000000LL;
    struct timespec* tsp = &ts;
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time.
    long rc = ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_BITSET, expected, tsp,
                        nullptr, FUTEX_BITSET_MATCH_ANY);
    if (rc == 0) return true;
    switch (errno) {
      case EAGAIN: return true;  // the word changed before we slept
      case ETIMEDOUT: return sliced;
      case EINTR:
        if (interruptible && interrupt::pending()) throw Failure::plain(interrupt::kMessage);
        if (word->load(std::memory_order_acquire) != expected) return true;
        continue;
      default:
        throw Failure::os("futex", errno);
    }
  }
}

void futex_wake(std::atomic<uint32_t>* word, int n) {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, n, nullptr, nullptr, 0);
}

void SemLock::init(Kind k, uint32_t value) {
  kind = static_cast<uint32_t>(k);
  depth = 0;
  waiters.store(0, std::memory_order_relaxed);
  if (k == Kind::Lock || k == Kind::RLock) {
    word.store(0, std::memory_order_relaxed);
    maxvalue = 1;
  } else {
    word.store(value, std::memory_order_relaxed);
    maxvalue = value;
  }
  std::atomic_thread_fence(std::memory_order_release);
}

bool SemLock::is_mine() const {
  Kind k = type();
  return (k == Kind::Lock || k == Kind::RLock) && word.load(std::memory_order_relaxed) == static_cast<uint32_t>(self_pid());
}

uint32_t SemLock::value() const {
  switch (type()) {
    case Kind::Lock: return word.load(std::memory_order_relaxed) == 0 ? 1 : 0;
    case Kind::RLock: return word.load(std::memory_order_relaxed) == 0 ? 0 : depth;
    default: return word.load(std::memory_order_relaxed);
  }
}

Acquired SemLock::acquire(bool block, Deadline deadline, DeadHolder on_dead, bool interruptible) {
  Kind k = type();
  if (k == Kind::Lock || k == Kind::RLock) {
    const uint32_t me = static_cast<uint32_t>(self_pid());
    uint32_t seen = 0;
    if (word.compare_exchange_strong(seen, me, std::memory_order_seq_cst)) {
      depth = 1;
      return Acquired::Yes;
    }
    if (k == Kind::RLock && seen == me) {
      ++depth;
      return Acquired::Yes;
    }
    if (!block) return Acquired::TimedOut;
    // Spin briefly first: critical sections are usually short, and a
    // futex sleep + wake costs microseconds.
    for (int i = 0; i < kSpins; ++i) {
      cpu_relax();
      if (word.load(std::memory_order_relaxed) == 0) {
        seen = 0;
        if (word.compare_exchange_strong(seen, me, std::memory_order_seq_cst)) {
          depth = 1;
          return Acquired::Yes;
        }
      }
    }
    WaiterMark mark(waiters);
    for (;;) {
      seen = word.load(std::memory_order_seq_cst);
      if (seen == 0) {
        if (word.compare_exchange_strong(seen, me, std::memory_order_seq_cst)) {
          depth = 1;
          return Acquired::Yes;
        }
        continue;
      }
      // Sleep one slice at most, then look at the holder.
      Deadline slice{monotonic_ns() + kSliceNs};
      if (!deadline.infinite() && deadline.ns < slice.ns) slice = deadline;
      if (futex_wait(&word, seen, slice, interruptible)) continue;
      if (pid_is_dead(static_cast<pid_t>(seen))) {
        if (on_dead == DeadHolder::Recover) {
          if (word.compare_exchange_strong(seen, me, std::memory_order_seq_cst)) {
            depth = 1;
            return Acquired::Recovered;
          }
          continue;
        }
        throw Failure::of("ProcessError", std::string(kind_name(k)) + ".acquire: the holder (pid " +
                                              std::to_string(seen) +
                                              ") died while holding the lock; release() it to recover");
      }
      if (deadline.expired()) return Acquired::TimedOut;
    }
  }
  // Semaphores.
  uint32_t v = word.load(std::memory_order_relaxed);
  while (v > 0) {
    if (word.compare_exchange_weak(v, v - 1, std::memory_order_seq_cst)) return Acquired::Yes;
  }
  if (!block) return Acquired::TimedOut;
  WaiterMark mark(waiters);
  for (;;) {
    v = word.load(std::memory_order_seq_cst);
    while (v > 0) {
      if (word.compare_exchange_weak(v, v - 1, std::memory_order_seq_cst)) return Acquired::Yes;
    }
    if (!futex_wait(&word, 0, deadline, interruptible)) {
      // One last try at the deadline.
      v = word.load(std::memory_order_seq_cst);
      while (v > 0) {
        if (word.compare_exchange_weak(v, v - 1, std::memory_order_seq_cst)) return Acquired::Yes;
      }
      return Acquired::TimedOut;
    }
  }
}

void SemLock::release() {
  Kind k = type();
  switch (k) {
    case Kind::Lock: {
      // Python: any process may release a Lock.
      uint32_t old = word.exchange(0, std::memory_order_seq_cst);
      if (old == 0) throw Failure::plain("release: lock is not acquired (release unlocked lock)");
      break;
    }
    case Kind::RLock: {
      uint32_t holder_pid = word.load(std::memory_order_relaxed);
      if (holder_pid != static_cast<uint32_t>(self_pid())) {
        if (holder_pid != 0 && pid_is_dead(static_cast<pid_t>(holder_pid))) {
          // Recovery: the owner died holding it.
          uint32_t expected = holder_pid;
          if (word.compare_exchange_strong(expected, 0, std::memory_order_seq_cst)) break;
        }
        throw Failure::plain("release: cannot release un-acquired lock");
      }
      if (--depth > 0) return;
      word.store(0, std::memory_order_seq_cst);
      break;
    }
    case Kind::Semaphore: {
      uint32_t old = word.fetch_add(1, std::memory_order_seq_cst);
      if (old >= static_cast<uint32_t>(INT_MAX)) {
        word.fetch_sub(1, std::memory_order_seq_cst);
        throw Failure::plain("release: semaphore value would overflow");
      }
      break;
    }
    case Kind::BoundedSemaphore: {
      uint32_t v = word.load(std::memory_order_relaxed);
      do {
        if (v >= maxvalue) throw Failure::plain("release: semaphore or lock released too many times");
      } while (!word.compare_exchange_weak(v, v + 1, std::memory_order_seq_cst));
      break;
    }
  }
  if (waiters.load(std::memory_order_seq_cst) != 0) futex_wake(&word, 1);
}

}  // namespace luamp::semlock
