// Process-shared locks and semaphores on Linux futexes, living inside shared
// segments (shm.h).  Used by the Lua types of synchronize.cpp (Lock, RLock,
// Semaphore, BoundedSemaphore, Condition, Event), by sharedctypes.cpp (the
// lock of a Value/Array) and by the queue ring (its internal lock, in
// Recover mode, and futex_wait/futex_wake on its own words).  No Lua here.
//
// Waits block in the kernel (FUTEX_WAIT_BITSET with an absolute
// CLOCK_MONOTONIC deadline) in slices of at most 100 ms; when a slice of a
// Lock/RLock wait expires, the holder's pid is probed with kill(pid, 0) so
// a dead holder is noticed.  EINTR: interrupt::pending() -> "interrupted!",
// else the wait resumes toward the same deadline.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <cstdint>

namespace luamp::semlock {

// An absolute point on CLOCK_MONOTONIC, or "never" (ns < 0).
struct Deadline {
  int64_t ns = -1;
  static Deadline never() { return Deadline{}; }
  // now + seconds; a negative or NaN timeout means "already expired".
  static Deadline after(double seconds);
  bool infinite() const { return ns < 0; }
  bool expired() const;
};
int64_t monotonic_ns();

// Futex helpers on a 32-bit word in shared memory (never FUTEX_PRIVATE).
// futex_wait sleeps while *word == expected, until woken or the deadline,
// in slices of at most 100 ms (so a Ctrl-C is never missed).  Returns false
// when the deadline passed, true otherwise (woken, value changed, a slice
// ended, or a spurious wake-up: callers re-check their condition in a
// loop).  Throws Failure("interrupted!") when Ctrl-C is pending.
// With interruptible=false a pending Ctrl-C is ignored (for re-taking a
// lock while an interrupt is already being raised).
bool futex_wait(std::atomic<uint32_t>* word, uint32_t expected, Deadline deadline, bool interruptible = true);
// Wakes up to n waiters (INT32_MAX for all).
void futex_wake(std::atomic<uint32_t>* word, int n);

enum class Kind : uint32_t { Lock = 1, RLock = 2, Semaphore = 3, BoundedSemaphore = 4 };

enum class Acquired { Yes, TimedOut, Recovered };

// What acquire() does when the holder of a Lock/RLock is found dead.
enum class DeadHolder {
  Raise,    // throw Failure mp.ProcessError naming the pid (the Lua behaviour)
  Recover,  // take the lock over and return Acquired::Recovered (queue ring)
};

// The shared word set.  32 bytes, placement-initialised with init() inside
// zeroed shared memory; valid in every process that maps it.
struct SemLock {
  // Lock/RLock: pid of the holder, 0 when free.  Semaphores: the count.
  std::atomic<uint32_t> word;
  // Processes inside a blocking acquire (so release skips futex_wake when 0).
  std::atomic<uint32_t> waiters;
  uint32_t kind;
  uint32_t maxvalue;  // BoundedSemaphore's start value
  uint32_t depth;     // RLock recursion depth; touched only by the holder
  uint32_t reserved[3];

  // Sets up a fresh word (value: a semaphore's start count).
  void init(Kind k, uint32_t value);
  Kind type() const { return static_cast<Kind>(kind); }

  // Python's acquire(block, timeout).  Non-blocking (block=false) tries
  // once.  Returns Yes/Recovered on success, TimedOut when the deadline
  // passed or the lock was not free.  Throws Failure on Ctrl-C and, with
  // DeadHolder::Raise, when a Lock/RLock holder died (mp.ProcessError).
  // interruptible=false: ignores a pending Ctrl-C (Condition::wait uses it
  // to take its lock back while "interrupted!" is on its way).
  Acquired acquire(bool block, Deadline deadline, DeadHolder on_dead = DeadHolder::Raise,
                   bool interruptible = true);
  // Releases one level.  Throws Failure (plain error) on misuse: releasing an
  // unheld Lock, an RLock held by another live process, or a
  // BoundedSemaphore above its start value.  Releasing an RLock whose holder
  // died frees it (recovery).
  void release();

  // The holder's pid (Lock/RLock), 0 when free.
  pid_t holder() const { return static_cast<pid_t>(word.load(std::memory_order_relaxed)); }
  bool is_mine() const;
  // Semaphores: the count; Lock: 1 when free, 0 when held (Python's
  // _get_value); RLock: the depth held by its owner.
  uint32_t value() const;
};
static_assert(sizeof(SemLock) == 32, "SemLock layout is shared between processes");

// The SemLock at addr (32-byte aligned, inside a mapped segment).
inline SemLock* semlock_at(void* addr) { return static_cast<SemLock*>(addr); }

// This process's pid, cached (updated after fork by a pthread_atfork handler).
pid_t self_pid();
// True when pid names no process (kill(pid, 0) fails with ESRCH).
bool pid_is_dead(pid_t pid);

}  // namespace luamp::semlock
