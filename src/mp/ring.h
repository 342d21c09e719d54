// The queue's message ring: a circular buffer of encoded messages in one
// counted shared segment (shm.h), guarded by a process-shared futex lock
// (semlock.h, dead-holder recovery) with futex wake-ups for readers and
// writers.  No Lua here: queue.cpp builds mp.Queue, mp.SimpleQueue and
// mp.JoinableQueue on it; the Catch2 tests drive it with plain fork().
// Design and the reasons for it: docs/design/queues.md.
//
// put() copies an already-encoded message in (encode happens before, outside
// the lock); get() copies one out (decode happens after, outside the lock).
// A message larger than big_threshold() travels in its own segment and the
// ring carries a reference to it.  Waiting for space or data never holds the
// lock.  A process killed anywhere leaves the ring usable: a record becomes
// visible only when `tail` moves past it, is consumed only when `head` moves
// past it, and the lock is taken over from a dead holder, which recounts.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "mp/semlock.h"
#include "mp/shm.h"

namespace luamp::ring {

struct Header;  // the shared layout, private to ring.cpp

// Default ring size in bytes (tmpfs pages are only used once touched).
inline constexpr size_t kDefaultCapacity = 32u << 20;

enum class Status { Ok, WouldBlock, TimedOut };

// One message taken out of the ring: either bytes copied out, or the whole
// segment of a big message (decoded in place, freed when dropped).
struct Message {
  std::unique_ptr<char[]> bytes;  // not zero-filled first: it is copied over at once
  size_t bytes_size = 0;
  std::shared_ptr<shm::Segment> big;
  size_t big_size = 0;

  const char* data() const { return big ? static_cast<const char*>(big->data()) : bytes.get(); }
  size_t size() const { return big ? big_size : bytes_size; }
};

class Ring {
 public:
  // Creates a ring of `capacity` bytes (rounded up to 8) in a new counted
  // segment.  maxsize <= 0: no limit on the number of messages (only on
  // bytes).  Throws mp.OSError.
  static Ring create(size_t capacity = kDefaultCapacity, int64_t maxsize = 0);
  // Wraps an existing ring segment (from a decoded reference); throws
  // Failure("corrupt message: ...") when it is not a ring.
  explicit Ring(std::shared_ptr<shm::Segment> seg);

  // A ring in memory the caller owns and keeps mapped for the Ring's life
  // (the Pool's memfd, pool.cpp): format_at() writes an empty ring of
  // bytes_at(capacity) bytes at `mem`; the constructor wraps one (throws
  // Failure("corrupt message: ...") when it is not a ring).  segment() is
  // null for such a ring.
  static size_t bytes_at(size_t capacity);
  static void format_at(void* mem, size_t capacity, int64_t maxsize = 0);
  Ring(void* mem, size_t bytes);

  // Appends one message.  block=false: WouldBlock when full.  Otherwise
  // waits (without the lock) until there is room or the deadline passes
  // (TimedOut).  Throws Failure on Ctrl-C ("interrupted!") or OS errors.
  Status put(const char* data, size_t size, bool block, semlock::Deadline deadline);
  // Takes the oldest message.  WouldBlock / TimedOut as for put.
  Status get(Message& out, bool block, semlock::Deadline deadline);

  // The Pool's exact hand-over (docs/design/pool.md): put_tagged() stores a
  // 64-bit tag with the message; get_claimed() calls claim(ctx, tag, pos) with
  // the ring's lock held, before the message leaves the ring (untagged
  // messages give tag 0), so a process that dies anywhere has either left
  // the message in the ring or recorded that it took it.  claim must not
  // throw or block.  With spin, a reader that finds the ring empty first
  // watches it for up to 50 us (one such reader at a time) before it
  // sleeps, so a writer of many small messages wakes nobody.  A spinner
  // that dies while spinning would stop the others from spinning: whoever
  // reaps it calls forget_spinner(pid).
  // `pos` is the record's position: consumed(pos) tells later whether it
  // left the ring (a reader killed inside the lock, after its claim but
  // before head moved, left it there).
  using ClaimFn = void (*)(void* ctx, uint64_t tag, uint64_t pos);
  Status put_tagged(uint64_t tag, const char* data, size_t size, bool block, semlock::Deadline deadline);
  Status get_claimed(Message& out, bool block, semlock::Deadline deadline, ClaimFn claim, void* ctx,
                     bool spin = false);
  void forget_spinner(pid_t pid);
  // True once the record at `pos` (from a claim) has left the ring.  Takes
  // the lock (so a dead holder's ring is repaired first).
  bool consumed(uint64_t pos);

  size_t qsize() const;  // messages in the ring now (a snapshot)
  bool full() const;     // maxsize reached (never for maxsize <= 0)
  int64_t maxsize() const;
  size_t capacity() const;
  // Messages at most this big are copied into the ring; larger ones get a
  // segment of their own.
  size_t big_threshold() const;

  // JoinableQueue: put() counts an unfinished task; task_done() counts one
  // done and throws Failure("task_done() called too many times") below
  // zero; join() waits until none is unfinished (TimedOut past deadline).
  void task_done();
  Status join(semlock::Deadline deadline);
  uint32_t unfinished() const;

  const std::shared_ptr<shm::Segment>& segment() const { return seg_; }  // null: not in a segment

  // The ring's lock, public for the crash tests (a child that dies holding
  // it).  lock() takes a dead holder's lock over and repairs the ring.
  void lock();
  void unlock();

 private:
  void repair();  // after taking the lock over from a dead holder
  Status wait_for(std::atomic<uint32_t>& seq, uint32_t seen, std::atomic<uint32_t>& waiting,
                  semlock::Deadline deadline);
  Status put_record(const uint64_t* tag, const char* data, size_t size, bool block, semlock::Deadline deadline);
  Status get_record(Message& out, bool block, semlock::Deadline deadline, ClaimFn claim, void* ctx, bool spin);
  void attach(void* mem, size_t bytes);

  std::shared_ptr<shm::Segment> seg_;
  Header* h_ = nullptr;
  char* data_ = nullptr;
};

}  // namespace luamp::ring
