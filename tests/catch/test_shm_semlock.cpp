// Pure C++ tests of shm.h (segments, holder counting, fork accounting) and
// semlock.h (futex locks and semaphores across fork), no Lua.  Every child
// is reaped with a bounded wait; every test checks /dev/shm is left clean.
#include <catch2/catch.hpp>
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>

#include "mp/lua_util.h"
#include "mp/semlock.h"
#include "mp/shm.h"
#include "process_helpers.h"

using namespace luamp;
using luamp::testing::own_shm_entries;
using luamp::testing::reap;

namespace {

bool shm_exists(const std::string& name) { return access(("/dev/shm/" + name).c_str(), F_OK) == 0; }

// Count of /dev/shm entries made by this process.

// Runs fn in a forked child that leaves with _exit(fn() ? 0 : 1).
template <class F>
pid_t fork_child(F fn) {
  pid_t pid = fork();
  if (pid == 0) {
    int rc = 1;
    try {
      rc = fn() ? 0 : 1;
    } catch (...) {
      rc = 2;
    }
    shm::release_all();
    _exit(rc);
  }
  return pid;
}

}  // namespace

TEST_CASE("a counted segment is unlinked when its last holder lets go", "[shm]") {
  std::string name;
  {
    auto seg = shm::Segment::create(100);
    name = seg->name();
    REQUIRE(name.rfind("luamp-", 0) == 0);
    REQUIRE(seg->size() == 100);
    REQUIRE(seg->holders() == 1);
    REQUIRE(shm_exists(name));
    static_cast<char*>(seg->data())[99] = 7;
    // An in-flight reference adopted by this same process drops back to 1.
    std::string msg;
    shm::encode_ref(msg, *seg, 42);
    REQUIRE(seg->holders() == 2);
    const char* p = msg.data();
    uint64_t off = 0;
    auto again = shm::decode_ref(&p, msg.data() + msg.size(), &off);
    REQUIRE(again.get() == seg.get());
    REQUIRE(off == 42);
    REQUIRE(seg->holders() == 1);
  }
  REQUIRE_FALSE(shm_exists(name));
  REQUIRE(own_shm_entries() == 0);
}

TEST_CASE("a fork child counts as a holder and its exit releases it", "[shm]") {
  std::string name;
  {
    auto seg = shm::Segment::create(64);
    name = seg->name();
    auto* word = static_cast<std::atomic<uint32_t>*>(seg->data());
    pid_t pid = fork_child([&] {
      word->store(seg->holders());
      return true;
    });
    REQUIRE(reap(pid) == 0);
    REQUIRE(word->load() == 2);      // parent + child while the child ran
    REQUIRE(seg->holders() == 1);    // the child's release_all gave it back
  }
  REQUIRE_FALSE(shm_exists(name));
}

TEST_CASE("a message keeps a segment alive after its sender let go", "[shm]") {
  std::string msg, name;
  {
    auto seg = shm::Segment::create(16);
    name = seg->name();
    static_cast<char*>(seg->data())[0] = 'x';
    shm::encode_ref(msg, *seg, 0);
  }
  REQUIRE(shm_exists(name));  // the in-flight reference holds it
  {
    const char* p = msg.data();
    uint64_t off;
    auto seg = shm::decode_ref(&p, msg.data() + msg.size(), &off);
    REQUIRE(static_cast<char*>(seg->data())[0] == 'x');
  }
  REQUIRE_FALSE(shm_exists(name));
}

TEST_CASE("named blocks follow the explicit unlink rule", "[shm]") {
  auto a = shm::Segment::create_named("", 10);
  REQUIRE(a->size() == 10);
  auto b = shm::Segment::attach_named(a->name());
  REQUIRE(b.get() == a.get());  // one mapping per process
  try {
    shm::Segment::create_named(a->name(), 10);
    FAIL("no error");
  } catch (Failure& f) {
    REQUIRE(f.cls == "OSError");
    REQUIRE(f.error_number == EEXIST);
  }
  a->unlink();
  REQUIRE_FALSE(shm_exists(a->name()));
  try {
    shm::Segment::attach_named("luamp-no-such-block");
    FAIL("no error");
  } catch (Failure& f) {
    REQUIRE(f.error_number == ENOENT);
  }
}

TEST_CASE("Lock: exact counts under contention across processes", "[semlock]") {
  auto seg = shm::Segment::create(64 + sizeof(uint64_t));
  auto* lock = semlock::semlock_at(seg->data());
  lock->init(semlock::Kind::Lock, 0);
  auto* counter = reinterpret_cast<volatile uint64_t*>(static_cast<char*>(seg->data()) + 64);
  const int kProcs = 4, kIters = 20000;
  pid_t pids[kProcs];
  for (auto& pid : pids) {
    pid = fork_child([&] {
      for (int i = 0; i < kIters; ++i) {
        lock->acquire(true, semlock::Deadline::never());
        *counter = *counter + 1;
        lock->release();
      }
      return true;
    });
  }
  for (pid_t pid : pids) REQUIRE(reap(pid) == 0);
  REQUIRE(*counter == uint64_t(kProcs) * kIters);
  REQUIRE(lock->holder() == 0);
}

TEST_CASE("acquire timeouts are accurate", "[semlock]") {
  auto seg = shm::Segment::create(64);
  auto* lock = semlock::semlock_at(seg->data());
  lock->init(semlock::Kind::Lock, 0);
  REQUIRE(lock->acquire(true, semlock::Deadline::never()) == semlock::Acquired::Yes);
  REQUIRE(lock->acquire(false, semlock::Deadline::never()) == semlock::Acquired::TimedOut);
  int64_t t0 = semlock::monotonic_ns();
  REQUIRE(lock->acquire(true, semlock::Deadline::after(0.25)) == semlock::Acquired::TimedOut);
  double dt = (semlock::monotonic_ns() - t0) / 1e9;
  REQUIRE(dt >= 0.25);
  REQUIRE(dt < 0.30);
  lock->release();
  REQUIRE_THROWS_AS(lock->release(), Failure);
}

TEST_CASE("a dead holder raises, or is recovered in Recover mode", "[semlock]") {
  auto seg = shm::Segment::create(64);
  auto* lock = semlock::semlock_at(seg->data());
  lock->init(semlock::Kind::Lock, 0);
  pid_t pid = fork_child([&] {
    lock->acquire(true, semlock::Deadline::never());
    return true;  // exits holding it
  });
  REQUIRE(reap(pid) == 0);
  REQUIRE(lock->holder() == pid);
  try {
    lock->acquire(true, semlock::Deadline::after(5));
    FAIL("no error");
  } catch (Failure& f) {
    REQUIRE(f.cls == "ProcessError");
    REQUIRE(f.message.find("pid " + std::to_string(pid)) != std::string::npos);
  }
  REQUIRE(lock->acquire(true, semlock::Deadline::after(5), semlock::DeadHolder::Recover) ==
          semlock::Acquired::Recovered);
  REQUIRE(lock->is_mine());
  lock->release();
}

TEST_CASE("RLock counts per owner; semaphores count and bound", "[semlock]") {
  auto seg = shm::Segment::create(128);
  auto* r = semlock::semlock_at(seg->data());
  r->init(semlock::Kind::RLock, 0);
  REQUIRE(r->acquire(true, semlock::Deadline::never()) == semlock::Acquired::Yes);
  REQUIRE(r->acquire(false, semlock::Deadline::never()) == semlock::Acquired::Yes);
  REQUIRE(r->value() == 2);
  pid_t pid = fork_child([&] {  // another process neither gets nor releases it
    bool ok = r->acquire(false, semlock::Deadline::never()) == semlock::Acquired::TimedOut;
    try {
      r->release();
      return false;
    } catch (Failure&) {
    }
    return ok;
  });
  REQUIRE(reap(pid) == 0);
  r->release();
  r->release();
  REQUIRE(r->holder() == 0);

  auto* s = semlock::semlock_at(static_cast<char*>(seg->data()) + 64);
  s->init(semlock::Kind::BoundedSemaphore, 2);
  REQUIRE(s->acquire(false, semlock::Deadline::never()) == semlock::Acquired::Yes);
  REQUIRE(s->acquire(false, semlock::Deadline::never()) == semlock::Acquired::Yes);
  REQUIRE(s->acquire(false, semlock::Deadline::never()) == semlock::Acquired::TimedOut);
  // A child releases after 100 ms; the blocked acquire wakes by futex.
  pid = fork_child([&] {
    usleep(100000);
    s->release();
    return true;
  });
  int64_t t0 = semlock::monotonic_ns();
  REQUIRE(s->acquire(true, semlock::Deadline::after(5)) == semlock::Acquired::Yes);
  REQUIRE((semlock::monotonic_ns() - t0) / 1e9 < 1.0);
  REQUIRE(reap(pid) == 0);
  s->release();
  s->release();
  REQUIRE_THROWS_AS(s->release(), Failure);
  REQUIRE(s->value() == 2);
}

TEST_CASE("no luamp segment of this process is left", "[shm]") {
  REQUIRE(own_shm_entries() == 0);
}
