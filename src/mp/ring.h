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

  // Appends one message.  block=false: WouldBlock when full.  Otherwise
  // waits (without the lock) until there is room or the deadline passes
  // (TimedOut).  Throws Failure on Ctrl-C ("interrupted!") or OS errors.
  Status put(const char* data, size_t size, bool block, semlock::Deadline deadline);
  // Takes the oldest message.  WouldBlock / TimedOut as for put.
  Status get(Message& out, bool block, semlock::Deadline deadline);

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

  const std::shared_ptr<shm::Segment>& segment() const { return seg_; }

  // The ring's lock, public for the crash tests (a child that dies holding
  // it).  lock() takes a dead holder's lock over and repairs the ring.
  void lock();
  void unlock();

 private:
  void repair();  // after taking the lock over from a dead holder
  Status wait_for(std::atomic<uint32_t>& seq, uint32_t seen, std::atomic<uint32_t>& waiting,
                  semlock::Deadline deadline);

  std::shared_ptr<shm::Segment> seg_;
  Header* h_ = nullptr;
  char* data_ = nullptr;
};

}  // namespace luamp::ring
