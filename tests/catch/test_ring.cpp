// Pure C++ tests of the queue ring (ring.h), no Lua: order and wrap-around,
// big messages in their own segment, timeouts, a producer and a consumer
// across fork, and processes that die holding the ring's lock or in the
// middle of writing a record.  Children are reaped with bounded waits and
// leave with _exit after shm::release_all(); /dev/shm is checked clean.
#include <catch2/catch.hpp>
#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>

#include "mp/lua_util.h"
#include "mp/ring.h"
#include "mp/semlock.h"
#include "mp/shm.h"
#include "process_helpers.h"

using namespace luamp;
using luamp::testing::own_shm_entries;
using luamp::testing::reap;

namespace {


[[noreturn]] void child_exit(int code) {
  shm::release_all();
  _exit(code);
}

std::string get_string(ring::Ring& r) {
  ring::Message m;
  REQUIRE(r.get(m, true, semlock::Deadline::after(10)) == ring::Status::Ok);
  return std::string(m.data(), m.size());
}

}  // namespace

TEST_CASE("ring keeps order across wrap-around and counts messages", "[ring]") {
  int before = own_shm_entries();
  {
    ring::Ring r = ring::Ring::create(4096);
    ring::Message m;
    CHECK(r.get(m, false, semlock::Deadline::never()) == ring::Status::WouldBlock);
    for (int round = 0; round < 200; ++round) {
      for (int i = 0; i < 5; ++i) {
        std::string s(static_cast<size_t>((round * 31 + i * 7) % 400), static_cast<char>('a' + i));
        REQUIRE(r.put(s.data(), s.size(), true, semlock::Deadline::never()) == ring::Status::Ok);
      }
      CHECK(r.qsize() == 5);
      for (int i = 0; i < 5; ++i) {
        std::string s = get_string(r);
        REQUIRE(s.size() == static_cast<size_t>((round * 31 + i * 7) % 400));
        if (!s.empty()) REQUIRE(s[0] == 'a' + i);
      }
    }
    CHECK(r.qsize() == 0);
  }
  CHECK(own_shm_entries() == before);
}

TEST_CASE("ring sends big messages through their own segment", "[ring]") {
  int before = own_shm_entries();
  {
    ring::Ring r = ring::Ring::create(8192);
    std::string big(3 * 1024 * 1024 + 5, 'B');
    big[12345] = 'x';
    REQUIRE(r.put(big.data(), big.size(), true, semlock::Deadline::never()) == ring::Status::Ok);
    CHECK(own_shm_entries() == before + 2);  // the ring and the big message
    {
      ring::Message m;
      REQUIRE(r.get(m, true, semlock::Deadline::never()) == ring::Status::Ok);
      REQUIRE(m.big);
      CHECK(std::string(m.data(), m.size()) == big);
    }
    CHECK(own_shm_entries() == before + 1);  // the big one is gone once read
    // A big message that never makes it into the ring is freed too.
    ring::Ring small = ring::Ring::create(4096, 1);
    REQUIRE(small.put("x", 1, false, semlock::Deadline::never()) == ring::Status::Ok);
    CHECK(small.put(big.data(), big.size(), false, semlock::Deadline::never()) == ring::Status::WouldBlock);
    CHECK(small.full());
  }
  CHECK(own_shm_entries() == before);
}

TEST_CASE("ring timeouts and maxsize", "[ring]") {
  ring::Ring r = ring::Ring::create(4096, 2);
  REQUIRE(r.put("a", 1, false, semlock::Deadline::never()) == ring::Status::Ok);
  REQUIRE(r.put("b", 1, false, semlock::Deadline::never()) == ring::Status::Ok);
  CHECK(r.full());
  int64_t t0 = semlock::monotonic_ns();
  CHECK(r.put("c", 1, true, semlock::Deadline::after(0.1)) == ring::Status::TimedOut);
  CHECK(semlock::monotonic_ns() - t0 >= 90000000);
  ring::Message m;
  REQUIRE(r.get(m, true, semlock::Deadline::after(1)) == ring::Status::Ok);
  REQUIRE(r.get(m, true, semlock::Deadline::after(1)) == ring::Status::Ok);
  t0 = semlock::monotonic_ns();
  CHECK(r.get(m, true, semlock::Deadline::after(0.1)) == ring::Status::TimedOut);
  CHECK(semlock::monotonic_ns() - t0 >= 90000000);
  // JoinableQueue accounting.
  CHECK(r.unfinished() == 2);
  r.task_done();
  r.task_done();
  CHECK_THROWS_AS(r.task_done(), Failure);
  CHECK(r.join(semlock::Deadline::after(0)) == ring::Status::Ok);
}

TEST_CASE("ring carries 200,000 messages from a forked producer", "[ring][fork]") {
  int before = own_shm_entries();
  {
    ring::Ring r = ring::Ring::create(64 * 1024);
    const int n = 200000;
    pid_t pid = fork();
    if (pid == 0) {
      for (int i = 1; i <= n; ++i) {
        if (r.put(reinterpret_cast<const char*>(&i), sizeof i, true, semlock::Deadline::after(20)) !=
            ring::Status::Ok)
          child_exit(2);
      }
      child_exit(0);
    }
    long long sum = 0;
    ring::Message m;
    for (int i = 1; i <= n; ++i) {
      REQUIRE(r.get(m, true, semlock::Deadline::after(20)) == ring::Status::Ok);
      int v;
      std::memcpy(&v, m.data(), sizeof v);
      REQUIRE(v == i);
      sum += v;
    }
    CHECK(sum == static_cast<long long>(n) * (n + 1) / 2);
    int status = reap(pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(own_shm_entries() == before);
}

TEST_CASE("a process that dies holding the ring's lock leaves it usable", "[ring][fork]") {
  ring::Ring r = ring::Ring::create(4096);
  REQUIRE(r.put("kept", 4, true, semlock::Deadline::never()) == ring::Status::Ok);
  pid_t pid = fork();
  if (pid == 0) {
    r.lock();
    _exit(0);  // dies holding the lock (and keeps its hold: a crash)
  }
  reap(pid);
  // The next get waits one slice, sees the holder dead, takes over.
  CHECK(get_string(r) == "kept");
  REQUIRE(r.put("after", 5, true, semlock::Deadline::after(5)) == ring::Status::Ok);
  CHECK(get_string(r) == "after");
}

TEST_CASE("a producer killed while writing leaves no half message", "[ring][fork]") {
  ring::Ring r = ring::Ring::create(1 << 20);
  pid_t pid = fork();
  if (pid == 0) {
    // Writers copy under the lock and publish by moving `tail` last; a
    // writer stopped between the two is simulated by SIGKILL at random
    // moments of a stream of 100 KiB messages.
    std::string s(100 * 1024, 'w');
    for (;;) r.put(s.data(), s.size(), true, semlock::Deadline::never());
  }
  usleep(20000);
  kill(pid, SIGKILL);
  reap(pid);
  // Whatever is visible is whole.
  ring::Message m;
  size_t n = 0;
  while (r.get(m, true, semlock::Deadline::after(0.5)) == ring::Status::Ok) {
    REQUIRE(m.size() == 100 * 1024);
    REQUIRE(m.data()[m.size() - 1] == 'w');
    ++n;
  }
  CHECK(r.qsize() == 0);
  REQUIRE(r.put("next", 4, true, semlock::Deadline::after(5)) == ring::Status::Ok);
  CHECK(get_string(r) == "next");
}

TEST_CASE("a producer waiting for room does not hold the ring's lock", "[ring][fork]") {
  ring::Ring r = ring::Ring::create(4096);
  std::string chunk(1000, 'f');
  int filled = 0;
  while (r.put(chunk.data(), chunk.size(), false, semlock::Deadline::never()) == ring::Status::Ok) ++filled;
  REQUIRE(filled >= 3);
  pid_t pid = fork();
  if (pid == 0) {
    std::string last(1000, 'L');
    child_exit(r.put(last.data(), last.size(), true, semlock::Deadline::after(10)) == ring::Status::Ok ? 0 : 1);
  }
  usleep(100000);  // the child is now waiting for room
  int64_t t0 = semlock::monotonic_ns();
  ring::Message m;
  REQUIRE(r.get(m, true, semlock::Deadline::after(2)) == ring::Status::Ok);
  CHECK(semlock::monotonic_ns() - t0 < 500000000);  // not blocked behind the waiter
  for (int i = 1; i < filled; ++i) REQUIRE(r.get(m, true, semlock::Deadline::after(2)) == ring::Status::Ok);
  REQUIRE(r.get(m, true, semlock::Deadline::after(5)) == ring::Status::Ok);
  CHECK(std::string(m.data(), m.size()) == std::string(1000, 'L'));
  int status = reap(pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

namespace {
struct ClaimLog {
  int calls = 0;
  uint64_t last = ~uint64_t{0};
};
void log_claim(void* ctx, uint64_t tag, uint64_t) {
  auto* log = static_cast<ClaimLog*>(ctx);
  ++log->calls;
  log->last = tag;
}
}  // namespace

TEST_CASE("tagged messages hand their tag to the claim callback, untagged ones 0", "[ring]") {
  ring::Ring r = ring::Ring::create(4096);
  std::string big(3000, 'b');  // wraps the 4 KiB ring on later rounds
  ClaimLog log;
  for (int round = 0; round < 20; ++round) {
    REQUIRE(r.put_tagged(1000 + round, "tagged", 6, true, semlock::Deadline::after(5)) == ring::Status::Ok);
    ring::Message m;
    REQUIRE(r.get_claimed(m, true, semlock::Deadline::after(5), log_claim, &log) == ring::Status::Ok);
    CHECK(std::string(m.data(), m.size()) == "tagged");
    CHECK(log.last == static_cast<uint64_t>(1000 + round));
    REQUIRE(r.put(big.data(), big.size(), true, semlock::Deadline::after(5)) == ring::Status::Ok);
    REQUIRE(r.get_claimed(m, true, semlock::Deadline::after(5), log_claim, &log) == ring::Status::Ok);
    CHECK(m.size() == big.size());
    CHECK(log.last == 0);
  }
  CHECK(log.calls == 40);
  // A plain get reads a tagged message without its tag.
  REQUIRE(r.put_tagged(7, "x", 1, true, semlock::Deadline::after(5)) == ring::Status::Ok);
  CHECK(get_string(r) == "x");
}

TEST_CASE("a tagged message bigger than the ring's threshold travels in its own segment", "[ring]") {
  int before = own_shm_entries();
  {
    ring::Ring r = ring::Ring::create(8192);
    std::string s(r.big_threshold() + 100, 'B');
    REQUIRE(r.put_tagged(42, s.data(), s.size(), true, semlock::Deadline::after(5)) == ring::Status::Ok);
    ClaimLog log;
    ring::Message m;
    REQUIRE(r.get_claimed(m, true, semlock::Deadline::after(5), log_claim, &log) == ring::Status::Ok);
    CHECK(log.last == 42);
    CHECK(std::string(m.data(), m.size()) == s);
  }
  CHECK(own_shm_entries() == before);
}

TEST_CASE("a ring in caller-owned shared memory works across fork and repairs tagged records", "[ring][fork]") {
  size_t bytes = ring::Ring::bytes_at(64 * 1024);
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mem != MAP_FAILED);
  ring::Ring::format_at(mem, 64 * 1024);
  ring::Ring r(mem, bytes);
  CHECK(r.segment() == nullptr);
  CHECK_THROWS(ring::Ring(static_cast<char*>(mem) + 8, bytes - 8));  // not a ring
  // A child claims under the lock into a shared word, then dies holding
  // the lock right after its next claim-and-take: the record it took is
  // gone, the claim says which one, the rest stay whole.
  auto* claimed = static_cast<std::atomic<uint64_t>*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  REQUIRE(claimed != MAP_FAILED);
  for (uint64_t t = 1; t <= 5; ++t)
    REQUIRE(r.put_tagged(t, "task", 4, true, semlock::Deadline::after(5)) == ring::Status::Ok);
  pid_t pid = fork();
  if (pid == 0) {
    ring::Message m;
    r.get_claimed(m, true, semlock::Deadline::after(5),
                  [](void* ctx, uint64_t tag, uint64_t) { static_cast<std::atomic<uint64_t>*>(ctx)->store(tag); }, claimed);
    r.lock();
    _exit(0);  // dies holding the lock
  }
  reap(pid);
  CHECK(claimed->load() == 1);
  ClaimLog log;
  for (uint64_t t = 2; t <= 5; ++t) {
    ring::Message m;
    REQUIRE(r.get_claimed(m, true, semlock::Deadline::after(5), log_claim, &log) == ring::Status::Ok);
    CHECK(log.last == t);
  }
  CHECK(r.qsize() == 0);
  munmap(claimed, 4096);
  munmap(mem, bytes);
}

TEST_CASE("a spinning reader takes a message put while it watches, and sleeps when none comes", "[ring][fork]") {
  ring::Ring r = ring::Ring::create(4096);
  pid_t pid = fork();
  if (pid == 0) {
    usleep(20000);
    for (uint64_t t = 1; t <= 100; ++t) r.put_tagged(t, "s", 1, true, semlock::Deadline::after(5));
    child_exit(0);
  }
  ClaimLog log;
  for (int i = 0; i < 100; ++i) {
    ring::Message m;
    REQUIRE(r.get_claimed(m, true, semlock::Deadline::after(10), log_claim, &log, true) == ring::Status::Ok);
  }
  CHECK(log.last == 100);
  reap(pid);
  ring::Message m;
  int64_t t0 = semlock::monotonic_ns();
  CHECK(r.get_claimed(m, true, semlock::Deadline::after(0.2), log_claim, &log, true) == ring::Status::TimedOut);
  CHECK(semlock::monotonic_ns() - t0 >= 150000000);
}

TEST_CASE("a reader killed inside the lock after its claim leaves the record in the ring, and consumed() says so",
          "[ring][fork]") {
  ring::Ring r = ring::Ring::create(4096);
  REQUIRE(r.put_tagged(1, "one", 3, true, semlock::Deadline::after(5)) == ring::Status::Ok);
  REQUIRE(r.put_tagged(2, "two", 3, true, semlock::Deadline::after(5)) == ring::Status::Ok);
  auto* where = static_cast<std::atomic<uint64_t>*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  REQUIRE(where != MAP_FAILED);
  pid_t pid = fork();
  if (pid == 0) {
    ring::Message m;
    r.get_claimed(m, true, semlock::Deadline::after(5),
                  [](void* ctx, uint64_t, uint64_t pos) {
                    static_cast<std::atomic<uint64_t>*>(ctx)->store(pos + 1);
                    _exit(0);  // dies inside the lock, after the claim
                  },
                  where);
    _exit(1);
  }
  reap(pid);
  REQUIRE(where->load() != 0);
  uint64_t pos = where->load() - 1;
  CHECK_FALSE(r.consumed(pos));  // repaired: the record is still there
  ClaimLog log;
  ring::Message m;
  REQUIRE(r.get_claimed(m, true, semlock::Deadline::after(5), log_claim, &log) == ring::Status::Ok);
  CHECK(log.last == 1);
  CHECK(r.consumed(pos));
  munmap(where, 4096);
}
