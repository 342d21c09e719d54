// Shared memory segments, their per-process table, fork accounting and the
// tracker process.  See shm.h and docs/design/shared-memory.md.
//
// Process-wide state: the table of this process's mappings and the tracker
// socket.  They are per process by nature (a mapping belongs to the process,
// not to a Lua state), so they live in one heap object that is never freed
// (the exit handler still uses it).
#include "mp/shm.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "mp/lua_util.h"
#include "mp/unique.h"

namespace luamp::shm {
namespace {

constexpr uint32_t kMagic = 0x706d756c;  // "lump"
constexpr size_t kHeaderSize = 64;

// The header at the start of every counted segment.
struct Header {
  uint32_t magic;
  std::atomic<uint32_t> holders;
  uint64_t size;  // usable bytes after the header
};
static_assert(sizeof(Header) <= kHeaderSize, "header too large");

struct Table {
  std::mutex mu;
  std::unordered_map<std::string, std::weak_ptr<Segment>> live;
  bool released = false;         // release_all() ran: holds are gone
  bool forking_tracker = false;  // the fork hook must not count this child (tracker, exec)
  bool fork_locked = false;      // before_fork took `mu`
  int tracker_fd = -1;
  uint64_t counter = 0;
};

Table& table();

// Sends one message ("R name", "N name", "U name") to the tracker.  A dead
// tracker is ignored (MSG_NOSIGNAL: no SIGPIPE).  Keeps errno.
void tell_tracker(char op, const std::string& name) {
  int fd = table().tracker_fd;
  if (fd < 0) return;
  std::string msg;
  msg += op;
  msg += ' ';
  msg += name;
  int saved = errno;
  while (::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
  errno = saved;
}

void quiet_unlink(const std::string& name) {
  std::string path = "/" + name;
  int saved = errno;
  ::shm_unlink(path.c_str());
  errno = saved;
}

// Drops one hold on the counted segment mapped at base; the last holder
// unlinks the name.
void drop_hold(void* base, const std::string& name) {
  auto* h = static_cast<Header*>(base);
  if (h->holders.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    quiet_unlink(name);
    tell_tracker('U', name);
  }
}

}  // namespace

// Friend-level helpers (a nested type may touch Segment's private members).
struct Segment::Impl {
  static Header* header(const Segment& s) { return static_cast<Header*>(s.base_); }

  // Maps fd (map_size bytes) into a new Segment object.  Throws mp.OSError.
  static std::shared_ptr<Segment> map(int fd, const std::string& name, size_t map_size, Kind kind) {
    void* base = ::mmap(nullptr, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) throw Failure::os("mmap", errno, name);
    std::shared_ptr<Segment> seg(new Segment);
    seg->name_ = name;
    seg->base_ = base;
    seg->map_size_ = map_size;
    seg->kind_ = kind;
    if (kind == Kind::Counted) {
      seg->data_ = static_cast<char*>(base) + kHeaderSize;
      seg->size_ = map_size - kHeaderSize;
    } else {
      seg->data_ = base;
      seg->size_ = map_size;
    }
    return seg;
  }

  static void before_fork();
  // The tracker drops inherited mappings without touching their counts.
  static void unmap(Segment& s) {
    if (s.base_) ::munmap(s.base_, s.map_size_);
    s.base_ = nullptr;
  }
};

namespace {

void after_fork() {
  Table& t = table();
  if (t.fork_locked) {
    t.fork_locked = false;
    t.mu.unlock();
  }
}

Table& table() {
  static Table* t = [] {
    auto* tab = new Table;
    pthread_atfork(Segment::Impl::before_fork, after_fork, after_fork);
    std::atexit([] { release_all(); });
    return tab;
  }();
  return *t;
}

std::string generate_name(Table& t) {
  uint32_t rnd = 0;
  if (::getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof rnd)) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rnd = static_cast<uint32_t>(ts.tv_nsec);
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%d-%llu-%08x", kNamePrefix, static_cast<int>(::getpid()),
                static_cast<unsigned long long>(++t.counter), rnd);
  return buf;
}

// Opens a fresh name with O_CREAT|O_EXCL (a fresh random part on a clash).
// Returns the fd; *name receives the name.  Throws mp.OSError.
int open_new(Table& t, std::string* name, bool generated) {
  for (int attempt = 0;; ++attempt) {
    if (generated) *name = generate_name(t);
    std::string path = "/" + *name;
    int fd = ::shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    if (errno == EEXIST && generated && attempt < 16) continue;
    throw Failure::os("SharedMemory '/" + *name + "'", errno, *name);
  }
}

// Valid names: no '/', not empty, short enough for NAME_MAX.
void check_name(const std::string& name) {
  if (name.empty() || name.size() > 250 || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    throw Failure::plain("invalid shared memory name '" + name + "'");
  }
}

// Strips one leading '/' (Python accepts "/name" and "name").
std::string strip_slash(const std::string& name) {
  return (!name.empty() && name[0] == '/') ? name.substr(1) : name;
}

// ---- the tracker ------------------------------------------------------------

// The tracker's loop: reads "R/N/U name" messages until every luamp process
// of the program has closed its end, then unlinks what is left.  Never
// returns.
[[noreturn]] void tracker_main(int fd) {
  std::set<std::string> counted, named;
  char buf[512];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 0) break;  // every writer is gone
    if (n < 3 || buf[1] != ' ') continue;
    std::string name(buf + 2, static_cast<size_t>(n - 2));
    switch (buf[0]) {
      case 'R': counted.insert(name); break;
      case 'N': named.insert(name); break;
      case 'U': counted.erase(name); named.erase(name); break;
      default: break;
    }
  }
  for (const auto& name : counted) quiet_unlink(name);
  if (!named.empty()) {
    std::string list;
    for (const auto& name : named) {
      quiet_unlink(name);
      if (!list.empty()) list += ", ";
      list += "'/" + name + "'";
    }
    std::fprintf(stderr,
                 "luamp: resource_tracker: There appear to be %zu leaked shared_memory objects "
                 "to clean up at shutdown: [%s]\n",
                 named.size(), list.c_str());
    std::fflush(stderr);
  }
  ::_exit(0);
}

// Closes every fd above `keep` (keep itself too if not listed).
void close_fds_from(int first) {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, first, ~0U, 0) == 0) return;
#endif
  long max = ::sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (int fd = first; fd < max; ++fd) ::close(fd);
}

// Starts the tracker: a socketpair, then fork -> setsid -> fork, so the
// tracker is in its own session (a signal to the program's process group
// or tree does not reach it) and is nobody's child to reap.
void start_tracker(Table& t) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    throw Failure::os("tracker socketpair", errno);
  }
  std::fflush(nullptr);
  t.forking_tracker = true;
  pid_t first = ::fork();
  if (first != 0) t.forking_tracker = false;  // the child keeps it for its own fork
  if (first < 0) {
    int err = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    throw Failure::os("tracker fork", err);
  }
  if (first == 0) {
    ::close(sv[1]);
    ::setsid();
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    pid_t second = ::fork();
    if (second != 0) ::_exit(0);
    // The tracker: keep only its socket (as fd 3) and stderr.
    if (sv[0] != 3) {
      ::dup2(sv[0], 3);
    }
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
    }
    close_fds_from(4);
    // Forget the inherited mappings (their memory would stay allocated).
    for (auto& entry : t.live) {
      if (auto seg = entry.second.lock()) Segment::Impl::unmap(*seg);
    }
    tracker_main(3);
  }
  ::close(sv[0]);
  int status;
  while (::waitpid(first, &status, 0) < 0 && errno == EINTR) {
  }
  t.tracker_fd = sv[1];
}

}  // namespace

void Segment::Impl::before_fork() {
  Table& t = table();
  if (t.forking_tracker) return;  // ensure_tracker holds `mu` already
  t.mu.lock();
  t.fork_locked = true;
  if (t.released) return;
  for (auto& entry : t.live) {
    auto seg = entry.second.lock();
    if (seg && seg->kind_ == Kind::Counted) header(*seg)->holders.fetch_add(1, std::memory_order_relaxed);
  }
}

// ---- Segment ------------------------------------------------------------------

std::shared_ptr<Segment> Segment::create(size_t size) {
  if (size > (size_t{1} << 46)) throw Failure::plain("shared segment too large");
  ensure_tracker();
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  std::string name;
  UniqueFd fd(open_new(t, &name, true));
  tell_tracker('R', name);
  size_t map_size = kHeaderSize + (size == 0 ? 1 : size);
  std::shared_ptr<Segment> seg;
  try {
    if (::ftruncate(fd.get(), static_cast<off_t>(map_size)) != 0) throw Failure::os("ftruncate", errno, name);
    seg = Impl::map(fd.get(), name, map_size, Kind::Counted);
  } catch (...) {
    quiet_unlink(name);
    tell_tracker('U', name);
    throw;
  }
  Header* h = Impl::header(*seg);
  h->magic = kMagic;
  h->size = size;
  h->holders.store(1, std::memory_order_release);
  seg->size_ = size;
  t.live[name] = seg;
  return seg;
}

std::shared_ptr<Segment> Segment::create_named(const std::string& requested, size_t size) {
  if (size == 0) throw Failure::plain("'size' must be a positive number different from zero");
  ensure_tracker();
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  std::string name = strip_slash(requested);
  bool generated = name.empty();
  if (!generated) check_name(name);
  UniqueFd fd(open_new(t, &name, generated));
  tell_tracker('N', name);
  std::shared_ptr<Segment> seg;
  try {
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) throw Failure::os("ftruncate", errno, name);
    seg = Impl::map(fd.get(), name, size, Kind::Named);
    struct stat st;
    if (::fstat(fd.get(), &st) == 0) seg->ino_ = static_cast<uint64_t>(st.st_ino);
  } catch (...) {
    quiet_unlink(name);
    tell_tracker('U', name);
    throw;
  }
  t.live[name] = seg;
  return seg;
}

std::shared_ptr<Segment> Segment::attach_named(const std::string& requested) {
  Table& t = table();
  std::string name = strip_slash(requested);
  check_name(name);
  std::lock_guard<std::mutex> lock(t.mu);
  // Always open by name: an unlinked block must not be found again.
  std::string path = "/" + name;
  UniqueFd fd(::shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0600));
  if (!fd) throw Failure::os("SharedMemory '/" + name + "'", errno, name);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) throw Failure::os("fstat", errno, name);
  auto it = t.live.find(name);
  if (it != t.live.end()) {
    auto seg = it->second.lock();
    if (seg && seg->kind_ == Kind::Named && seg->ino_ == static_cast<uint64_t>(st.st_ino)) return seg;
  }
  if (st.st_size <= 0) throw Failure::plain("SharedMemory: block '" + name + "' is empty");
  auto seg = Impl::map(fd.get(), name, static_cast<size_t>(st.st_size), Kind::Named);
  seg->ino_ = static_cast<uint64_t>(st.st_ino);
  t.live[name] = seg;
  return seg;
}

std::shared_ptr<Segment> Segment::adopt(const std::string& name) {
  check_name(name);
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  auto it = t.live.find(name);
  if (it != t.live.end()) {
    if (auto seg = it->second.lock()) {
      // This process holds it already: the in-flight hold is not needed.
      if (seg->kind_ == Kind::Counted) Impl::header(*seg)->holders.fetch_sub(1, std::memory_order_acq_rel);
      return seg;
    }
  }
  std::string path = "/" + name;
  UniqueFd fd(::shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0600));
  if (!fd) throw Failure::os("shm_open", errno, name);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) throw Failure::os("fstat", errno, name);
  if (static_cast<size_t>(st.st_size) < kHeaderSize + 1) throw Failure::plain("corrupt message: bad segment " + name);
  auto seg = Impl::map(fd.get(), name, static_cast<size_t>(st.st_size), Kind::Counted);
  Header* h = Impl::header(*seg);
  if (h->magic != kMagic || h->size > seg->size_) {
    seg->kind_ = Kind::Named;  // do not touch its "count" on destruction
    throw Failure::plain("corrupt message: " + name + " is not a luamp segment");
  }
  seg->size_ = h->size;
  t.live[name] = seg;
  return seg;
}

Segment::~Segment() {
  Table& t = table();
  {
    std::lock_guard<std::mutex> lock(t.mu);
    auto it = t.live.find(name_);
    if (it != t.live.end() && it->second.expired()) t.live.erase(it);
    if (kind_ == Kind::Counted && !t.released && base_) drop_hold(base_, name_);
  }
  if (base_) {
    int saved = errno;
    ::munmap(base_, map_size_);
    errno = saved;
  }
}

void Segment::add_in_flight() {
  if (kind_ == Kind::Counted) Impl::header(*this)->holders.fetch_add(1, std::memory_order_relaxed);
}

uint32_t Segment::holders() const {
  if (kind_ != Kind::Counted) return 0;
  return Impl::header(*this)->holders.load(std::memory_order_acquire);
}

void Segment::unlink() {
  std::string path = "/" + name_;
  if (::shm_unlink(path.c_str()) != 0) throw Failure::os("unlink", errno, name_);
  tell_tracker('U', name_);
}

void Segment::unlink_name(const std::string& requested) {
  std::string name = strip_slash(requested);
  check_name(name);
  std::string path = "/" + name;
  if (::shm_unlink(path.c_str()) != 0) throw Failure::os("unlink", errno, name);
  tell_tracker('U', name);
}

// ---- references in messages ---------------------------------------------------

void encode_ref(std::string& out, Segment& seg, uint64_t offset) {
  out += static_cast<char>(seg.kind());
  out += static_cast<char>(seg.name().size());
  out += seg.name();
  char buf[8];
  std::memcpy(buf, &offset, 8);
  out.append(buf, 8);
  seg.add_in_flight();
}

std::shared_ptr<Segment> decode_ref(const char** p, const char* end, uint64_t* offset) {
  const char* q = *p;
  if (end - q < 2) throw Failure::plain("corrupt message: truncated shared reference");
  auto kind = static_cast<Kind>(static_cast<uint8_t>(q[0]));
  size_t len = static_cast<uint8_t>(q[1]);
  q += 2;
  if (static_cast<size_t>(end - q) < len + 8) throw Failure::plain("corrupt message: truncated shared reference");
  std::string name(q, len);
  q += len;
  std::memcpy(offset, q, 8);
  q += 8;
  std::shared_ptr<Segment> seg;
  if (kind == Kind::Counted) {
    seg = Segment::adopt(name);
  } else if (kind == Kind::Named) {
    seg = Segment::attach_named(name);
  } else {
    throw Failure::plain("corrupt message: bad shared reference kind");
  }
  if (*offset > seg->size()) throw Failure::plain("corrupt message: shared reference offset out of range");
  *p = q;
  return seg;
}

// ---- process-wide hooks ---------------------------------------------------------

void release_all() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  if (t.released) return;
  t.released = true;
  for (auto& entry : t.live) {
    auto seg = entry.second.lock();
    if (seg && seg->kind() == Kind::Counted) drop_hold(Segment::Impl::header(*seg), seg->name());
  }
}

namespace {
// A spawned child finds the tracker's socket through LUAMP_TRACKER_FD
// ("<fd>:<pid of the parent that set it>"); the pid check keeps an
// unrelated program that merely inherited the variable from adopting a
// random fd.
void adopt_tracker_from_env(Table& t) {
  const char* v = std::getenv(kTrackerEnv);
  if (!v) return;
  int fd = -1;
  long ppid = -1;
  if (std::sscanf(v, "%d:%ld", &fd, &ppid) == 2 && ppid == static_cast<long>(::getppid()) && fd >= 0 &&
      ::fcntl(fd, F_GETFD) >= 0) {
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET) {
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      t.tracker_fd = fd;
    }
  }
  ::unsetenv(kTrackerEnv);
}
}  // namespace

void adopt_inherited_tracker() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  if (t.tracker_fd < 0) adopt_tracker_from_env(t);
}

void ensure_tracker() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  if (t.tracker_fd >= 0) return;
  adopt_tracker_from_env(t);
  if (t.tracker_fd >= 0) return;
  start_tracker(t);
}

int tracker_fd() { return table().tracker_fd; }

ForkWithoutHolds::ForkWithoutHolds() { table().forking_tracker = true; }
ForkWithoutHolds::~ForkWithoutHolds() { table().forking_tracker = false; }

std::string tracker_env_value() {
  int fd = tracker_fd();
  if (fd < 0) return "";
  return std::to_string(fd) + ":" + std::to_string(::getpid());
}

}  // namespace luamp::shm
