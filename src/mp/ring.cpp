// The queue's message ring.  See ring.h for the contract and
// docs/design/queues.md for the design.
//
// Layout of the segment: a 128-byte Header, then `capacity` bytes of ring.
// Positions `head` and `tail` only grow (the byte index is pos % capacity).
// A record is an 8-byte header {u32 length, u32 kind} and the payload,
// padded to 8 bytes, so record headers never straddle the end of the ring;
// payloads may wrap and are copied in two pieces.
//   kind 1 (Inline): the payload is the encoded message.
//   kind 2 (Big):    u64 message size, then shm::encode_ref of the segment
//                    holding the message (one in-flight hold travels with it).
//   kind | kTagged:  the payload starts with a u64 tag (put_tagged), then
//                    the kind's payload; the length counts the tag.
#include "mp/ring.h"

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstring>

#include "mp/lua_util.h"

namespace luamp::ring {

namespace {
constexpr uint32_t kMagic = 0x474e4952;  // "RING"
constexpr uint32_t kVersion = 1;
constexpr uint32_t kInline = 1;
constexpr uint32_t kBig = 2;
constexpr uint32_t kTagged = 0x100;
constexpr size_t kHeaderBytes = 128;
constexpr size_t kMinCapacity = 4096;
// Waits sleep at most this long before looking again, so a wake-up lost to a
// process killed between being woken and taking the lock costs a little
// latency, never a hang.
constexpr double kSliceSeconds = 0.1;
constexpr int kSpins = 200;
// How long a get_claimed(spin) reader watches an empty ring before it sleeps.
constexpr int64_t kSpinNanos = 50000;


inline size_t round8(size_t n) { return (n + 7) & ~size_t{7}; }

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

struct Header {
  uint32_t magic;
  uint32_t version;
  uint64_t capacity;
  int64_t maxsize;
  uint64_t reserved0;
  semlock::SemLock lock;  // offset 32: Lock kind, taken over from dead holders
  // Under the lock:
  uint64_t head;
  uint64_t tail;
  // Written under the lock, read without it (qsize, empty, full):
  std::atomic<uint64_t> count;
  // Futex words: bumped on every put (readers sleep on it) / every get
  // (writers sleep on it).
  std::atomic<uint32_t> data_seq;
  std::atomic<uint32_t> space_seq;
  std::atomic<uint32_t> readers_waiting;
  std::atomic<uint32_t> writers_waiting;
  std::atomic<uint32_t> unfinished;  // JoinableQueue tasks not yet done
  std::atomic<uint32_t> spinner;     // pid of the reader spinning before it sleeps, or 0
};
static_assert(sizeof(Header) <= kHeaderBytes, "ring header must fit its 128 bytes");
static_assert(offsetof(Header, lock) % 32 == 0, "SemLock must be 32-byte aligned");

namespace {

// Counts this process in a waiting counter for the duration of one wait.
struct WaitMark {
  std::atomic<uint32_t>& n;
  explicit WaitMark(std::atomic<uint32_t>& c) : n(c) {}
  WaitMark(const WaitMark&) = delete;
  WaitMark& operator=(const WaitMark&) = delete;
  ~WaitMark() { n.fetch_sub(1, std::memory_order_seq_cst); }
};

// A big message's reference with its in-flight hold; if the message never
// makes it into the ring, the destructor takes the hold back (adopts and
// drops it) so the segment is freed.
struct PendingRef {
  std::string ref;
  bool delivered = false;
  PendingRef() = default;
  PendingRef(const PendingRef&) = delete;
  PendingRef& operator=(const PendingRef&) = delete;
  ~PendingRef() {
    if (delivered || ref.empty()) return;
    try {
      const char* p = ref.data() + 8;
      uint64_t offset;
      shm::decode_ref(&p, ref.data() + ref.size(), &offset);
    } catch (Failure&) {  // nothing more can be done; the tracker frees it at exit
    } catch (std::exception&) {
    }
  }
};

}  // namespace

Ring Ring::create(size_t capacity, int64_t maxsize) {
  if (capacity < kMinCapacity) capacity = kMinCapacity;
  capacity = round8(capacity);
  auto seg = shm::Segment::create(kHeaderBytes + capacity);
  format_at(seg->data(), capacity, maxsize);
  return Ring(std::move(seg));
}

Ring::Ring(std::shared_ptr<shm::Segment> seg) : seg_(std::move(seg)) {
  if (!seg_) throw Failure::plain("corrupt message: not a queue ring");
  attach(seg_->data(), seg_->size());
}

Ring::Ring(void* mem, size_t bytes) { attach(mem, bytes); }

void Ring::attach(void* mem, size_t bytes) {
  if (mem == nullptr || bytes < kHeaderBytes + kMinCapacity) throw Failure::plain("corrupt message: not a queue ring");
  h_ = static_cast<Header*>(mem);
  if (h_->magic != kMagic || h_->version != kVersion || h_->capacity + kHeaderBytes > bytes)
    throw Failure::plain("corrupt message: not a queue ring");
  data_ = static_cast<char*>(mem) + kHeaderBytes;
}

size_t Ring::bytes_at(size_t capacity) {
  if (capacity < kMinCapacity) capacity = kMinCapacity;
  return kHeaderBytes + round8(capacity);
}

// `mem` is zero-filled (fresh memfd or segment pages).
void Ring::format_at(void* mem, size_t capacity, int64_t maxsize) {
  if (capacity < kMinCapacity) capacity = kMinCapacity;
  auto* h = static_cast<Header*>(mem);
  h->capacity = round8(capacity);
  h->maxsize = maxsize;
  h->lock.init(semlock::Kind::Lock, 0);
  h->head = h->tail = 0;
  h->count.store(0, std::memory_order_relaxed);
  h->version = kVersion;
  std::atomic_thread_fence(std::memory_order_release);
  h->magic = kMagic;
}

size_t Ring::capacity() const { return h_->capacity; }
size_t Ring::big_threshold() const { return h_->capacity / 8; }
int64_t Ring::maxsize() const { return h_->maxsize; }
size_t Ring::qsize() const { return static_cast<size_t>(h_->count.load(std::memory_order_acquire)); }
bool Ring::full() const { return h_->maxsize > 0 && qsize() >= static_cast<uint64_t>(h_->maxsize); }
uint32_t Ring::unfinished() const { return h_->unfinished.load(std::memory_order_acquire); }

// Takes the ring lock: a short spin (the lock is held only for a copy),
// then a futex wait.  A dead holder's lock is taken over and the ring
// recounted.
void Ring::lock() {
  for (int i = 0; i < kSpins; ++i) {
    if (h_->lock.acquire(false, semlock::Deadline::never(), semlock::DeadHolder::Recover) ==
        semlock::Acquired::Yes)
      return;
    cpu_relax();
  }
  if (h_->lock.acquire(true, semlock::Deadline::never(), semlock::DeadHolder::Recover) ==
      semlock::Acquired::Recovered)
    repair();
}

void Ring::unlock() { h_->lock.release(); }

// The previous holder died inside put or get.  Records between head and
// tail are whole (tail moves only after a copy completes); walk them to
// recount, and cut the ring at the first record that does not parse.
void Ring::repair() {
  const uint64_t cap = h_->capacity;
  if (h_->tail < h_->head || h_->tail - h_->head > cap) h_->tail = h_->head;
  uint64_t pos = h_->head, n = 0;
  while (pos < h_->tail) {
    uint32_t rec[2];
    std::memcpy(rec, data_ + pos % cap, 8);
    uint64_t size = 8 + round8(rec[0]);
    uint32_t kind = rec[1] & ~kTagged;
    if ((kind != kInline && kind != kBig) || ((rec[1] & kTagged) && rec[0] < 8) || size > h_->tail - pos) {
      h_->tail = pos;
      break;
    }
    pos += size;
    ++n;
  }
  h_->count.store(n, std::memory_order_release);
}

namespace {

void copy_in(char* ring, uint64_t cap, uint64_t pos, const char* src, size_t n) {
  size_t idx = static_cast<size_t>(pos % cap);
  size_t first = n < cap - idx ? n : static_cast<size_t>(cap - idx);
  std::memcpy(ring + idx, src, first);
  if (n > first) std::memcpy(ring, src + first, n - first);
}

void copy_out(const char* ring, uint64_t cap, uint64_t pos, char* dst, size_t n) {
  size_t idx = static_cast<size_t>(pos % cap);
  size_t first = n < cap - idx ? n : static_cast<size_t>(cap - idx);
  std::memcpy(dst, ring + idx, first);
  if (n > first) std::memcpy(dst + first, ring, n - first);
}

semlock::Deadline slice_of(semlock::Deadline deadline) {
  semlock::Deadline slice = semlock::Deadline::after(kSliceSeconds);
  if (!deadline.infinite() && deadline.ns < slice.ns) return deadline;
  return slice;
}

}  // namespace

// Called with the lock held: registers as a waiter, releases the lock,
// sleeps on `seq` (one slice at most).  Returns TimedOut once the deadline
// has passed, Ok otherwise (the caller re-checks under the lock).
Status Ring::wait_for(std::atomic<uint32_t>& seq, uint32_t seen, std::atomic<uint32_t>& waiting,
                      semlock::Deadline deadline) {
  waiting.fetch_add(1, std::memory_order_seq_cst);
  unlock();
  WaitMark mark(waiting);
  semlock::futex_wait(&seq, seen, slice_of(deadline));
  if (deadline.expired()) return Status::TimedOut;
  return Status::Ok;
}

Status Ring::put(const char* data, size_t size, bool block, semlock::Deadline deadline) {
  return put_record(nullptr, data, size, block, deadline);
}

Status Ring::put_tagged(uint64_t tag, const char* data, size_t size, bool block, semlock::Deadline deadline) {
  return put_record(&tag, data, size, block, deadline);
}

Status Ring::get(Message& out, bool block, semlock::Deadline deadline) {
  return get_record(out, block, deadline, nullptr, nullptr, false);
}

Status Ring::get_claimed(Message& out, bool block, semlock::Deadline deadline, ClaimFn claim, void* ctx,
                         bool spin) {
  return get_record(out, block, deadline, claim, ctx, spin);
}

Status Ring::put_record(const uint64_t* tag, const char* data, size_t size, bool block,
                        semlock::Deadline deadline) {
  const uint64_t cap = h_->capacity;
  PendingRef big;
  const char* payload = data;
  size_t payload_size = size;
  uint32_t kind = kInline;
  if (size > big_threshold()) {
    // Its own segment, filled outside the lock; the ring carries the size
    // and a reference.
    auto seg = shm::Segment::create(size);
    std::memcpy(seg->data(), data, size);
    big.ref.resize(8);
    uint64_t sz = size;
    std::memcpy(big.ref.data(), &sz, 8);
    shm::encode_ref(big.ref, *seg, 0);
    payload = big.ref.data();
    payload_size = big.ref.size();
    kind = kBig;
  }
  const size_t tag_size = tag ? 8 : 0;
  if (tag) kind |= kTagged;
  const uint64_t need = 8 + round8(tag_size + payload_size);
  if (need > cap) throw Failure::plain("message too large for the queue ring");
  bool timed_out = false;
  for (;;) {
    lock();
    bool room = cap - (h_->tail - h_->head) >= need &&
                (h_->maxsize <= 0 || h_->count.load(std::memory_order_relaxed) < static_cast<uint64_t>(h_->maxsize));
    if (room) {
      uint32_t rec[2] = {static_cast<uint32_t>(tag_size + payload_size), kind};
      copy_in(data_, cap, h_->tail, reinterpret_cast<const char*>(rec), 8);
      if (tag) copy_in(data_, cap, h_->tail + 8, reinterpret_cast<const char*>(tag), 8);
      copy_in(data_, cap, h_->tail + 8 + tag_size, payload, payload_size);
      h_->unfinished.fetch_add(1, std::memory_order_relaxed);
      // The commit point: the record is visible once tail moves past it.
      std::atomic_thread_fence(std::memory_order_release);
      h_->tail += need;
      uint64_t before = h_->count.fetch_add(1, std::memory_order_release);
      h_->data_seq.fetch_add(1, std::memory_order_seq_cst);
      // Wake a reader only when there are more sleepers than messages
      // already waiting for them: a burst of puts to one sleeping reader
      // costs one futex wake, not one per message.  A reader spinning
      // (get_claimed) takes the first message without being woken; it
      // looks again under the lock when it stops, so nothing is missed.
      uint64_t awake = h_->spinner.load(std::memory_order_seq_cst) != 0 ? 1 : 0;
      bool wake = before >= awake &&
                  h_->readers_waiting.load(std::memory_order_seq_cst) + awake > before;
      big.delivered = true;
      unlock();
      if (wake) semlock::futex_wake(&h_->data_seq, 1);
      return Status::Ok;
    }
    if (!block || deadline.expired()) {
      unlock();
      return timed_out || block ? Status::TimedOut : Status::WouldBlock;
    }
    uint32_t seen = h_->space_seq.load(std::memory_order_seq_cst);
    if (wait_for(h_->space_seq, seen, h_->writers_waiting, deadline) == Status::TimedOut) {
      block = false;  // one last look, then TimedOut
      timed_out = true;
    }
  }
}

Status Ring::get_record(Message& out, bool block, semlock::Deadline deadline, ClaimFn claim, void* ctx,
                        bool spin) {
  const uint64_t cap = h_->capacity;
  std::string ref;
  bool timed_out = false;
  for (;;) {
    lock();
    if (h_->tail != h_->head) {
      uint32_t rec[2];
      copy_out(data_, cap, h_->head, reinterpret_cast<char*>(rec), 8);
      uint64_t tag = 0;
      uint32_t skip = 0;  // the tag's bytes
      if (rec[1] & kTagged) {
        copy_out(data_, cap, h_->head + 8, reinterpret_cast<char*>(&tag), 8);
        skip = 8;
      }
      const uint32_t kind = rec[1] & ~kTagged;
      const uint32_t len = rec[0] - skip;
      if (kind == kInline) {
        out.bytes.reset(new char[len > 0 ? len : 1]);
        out.bytes_size = len;
        copy_out(data_, cap, h_->head + 8 + skip, out.bytes.get(), len);
      } else {
        ref.resize(len);
        copy_out(data_, cap, h_->head + 8 + skip, ref.data(), len);
      }
      if (claim) claim(ctx, tag, h_->head);
      // The message is consumed once head moves past it.
      std::atomic_thread_fence(std::memory_order_release);
      h_->head += 8 + round8(rec[0]);
      h_->count.fetch_sub(1, std::memory_order_release);
      h_->space_seq.fetch_add(1, std::memory_order_seq_cst);
      bool wake = h_->writers_waiting.load(std::memory_order_seq_cst) != 0;
      unlock();
      if (wake) semlock::futex_wake(&h_->space_seq, INT_MAX);
      if (kind == kBig) {
        if (ref.size() < 8) throw Failure::plain("corrupt message: bad big-message reference");
        uint64_t sz;
        std::memcpy(&sz, ref.data(), 8);
        const char* p = ref.data() + 8;
        uint64_t offset;
        out.big = shm::decode_ref(&p, ref.data() + ref.size(), &offset);
        if (offset != 0 || sz > out.big->size()) throw Failure::plain("corrupt message: bad big-message reference");
        out.big_size = static_cast<size_t>(sz);
      }
      return Status::Ok;
    }
    if (!block || deadline.expired()) {
      unlock();
      return timed_out || block ? Status::TimedOut : Status::WouldBlock;
    }
    if (spin) {
      // One reader at a time watches the ring for a moment before it
      // sleeps: a writer putting many small messages then wakes nobody.
      spin = false;
      const uint32_t me = static_cast<uint32_t>(::getpid());
      uint32_t none = 0;
      if (h_->spinner.compare_exchange_strong(none, me, std::memory_order_acq_rel)) {
        unlock();
        const int64_t until = semlock::monotonic_ns() + kSpinNanos;
        for (int i = 1; h_->count.load(std::memory_order_acquire) == 0; ++i) {
          cpu_relax();
          if ((i & 63) == 0) {
            if (semlock::monotonic_ns() >= until) break;
            // The writer may be waiting for this CPU (more processes
            // than CPUs): let it run.
            sched_yield();
          }
        }
        h_->spinner.store(0, std::memory_order_release);
        continue;
      }
    }
    uint32_t seen = h_->data_seq.load(std::memory_order_seq_cst);
    if (wait_for(h_->data_seq, seen, h_->readers_waiting, deadline) == Status::TimedOut) {
      block = false;  // one last look, then TimedOut
      timed_out = true;
    }
  }
}

bool Ring::consumed(uint64_t pos) {
  lock();
  bool gone = h_->head > pos;
  unlock();
  return gone;
}

void Ring::forget_spinner(pid_t pid) {
  uint32_t dead = static_cast<uint32_t>(pid);
  if (!h_->spinner.compare_exchange_strong(dead, 0, std::memory_order_acq_rel)) return;
  // Puts made meanwhile left their first message to the dead spinner.
  if (h_->count.load(std::memory_order_acquire) > 0) {
    h_->data_seq.fetch_add(1, std::memory_order_seq_cst);
    semlock::futex_wake(&h_->data_seq, INT_MAX);
  }
}

void Ring::task_done() {
  uint32_t v = h_->unfinished.load(std::memory_order_acquire);
  do {
    if (v == 0) throw Failure::plain("task_done() called too many times");
  } while (!h_->unfinished.compare_exchange_weak(v, v - 1, std::memory_order_seq_cst));
  if (v == 1) semlock::futex_wake(&h_->unfinished, INT_MAX);
}

Status Ring::join(semlock::Deadline deadline) {
  for (;;) {
    uint32_t v = h_->unfinished.load(std::memory_order_seq_cst);
    if (v == 0) return Status::Ok;
    if (deadline.expired()) return Status::TimedOut;
    semlock::futex_wait(&h_->unfinished, v, slice_of(deadline));
  }
}

}  // namespace luamp::ring
