// Shared memory segments: the memory under every luamp shared object (locks,
// Values, Arrays, SharedMemory blocks) and under the Queue's message ring.
// Used by semlock.cpp, sharedctypes.cpp, shared_memory.cpp, the queue ring,
// and by the process code (fork/spawn hooks).  Design and the reasons for it:
// docs/design/shared-memory.md.
//
// A segment is a named POSIX shared memory object, /dev/shm/luamp-<pid>-<n>-<rand>,
// created with O_CREAT|O_EXCL.  Two kinds:
//   Counted  a 64-byte header holds an atomic count of holders: processes that
//            have it mapped plus references in flight inside encoded messages.
//            The holder that brings the count to 0 unlinks the name.
//   Named    a SharedMemory block (Python's explicit-unlink rule): raw bytes,
//            no header, unlinked only by Segment::unlink() (or by the tracker).
// Each process keeps one mapping per name (attaching a name it already maps
// reuses the mapping); a shared_ptr<Segment> is one local reference, and the
// process's hold is released when the last local reference goes.
//
// A fork child inherits the parent's mappings, so a pthread_atfork handler
// counts the child as a holder of each.  A child that leaves with _exit must
// call release_all() first (a normal exit does it through atexit).  Processes
// killed with SIGKILL cannot release: the tracker (a double-forked process
// that every luamp process of the program keeps alive through an inherited
// pipe) unlinks whatever is still registered once the last of them is gone.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace luamp::shm {

enum class Kind : uint8_t { Counted = 1, Named = 2 };

class Segment {
 public:
  // Creates a counted segment with `size` usable bytes (zero-filled), held
  // by this process.  Throws Failure (mp.OSError) on OS failure.
  static std::shared_ptr<Segment> create(size_t size);

  // Creates a named block (SharedMemory{create=true}).  `name` without the
  // leading '/'; empty means a generated luamp-... name.  size must be > 0.
  // Throws mp.OSError (errno 17 when the name exists).
  static std::shared_ptr<Segment> create_named(const std::string& name, size_t size);

  // Attaches a named block by name (reusing this process's mapping if it
  // is still the same file).
  // Throws mp.OSError (errno 2 when there is no such name).
  static std::shared_ptr<Segment> attach_named(const std::string& name);

  // Attaches a counted segment for which the caller owns one hold already
  // (an in-flight reference taken by add_in_flight() in another process):
  // the hold becomes this process's, or is dropped if the process already
  // maps the segment.  Throws mp.OSError.
  static std::shared_ptr<Segment> adopt(const std::string& name);

  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  const std::string& name() const { return name_; }  // without '/'
  void* data() const { return data_; }
  size_t size() const { return size_; }
  Kind kind() const { return kind_; }

  // Counted: one more holder, for a reference about to travel in a message.
  // The receiver's adopt() takes it over.
  void add_in_flight();
  // Counted: the current number of holders (for tests and diagnostics).
  uint32_t holders() const;

  // Named: removes the name (shm_unlink) and tells the tracker.  The mapping
  // stays valid.  Throws mp.OSError (errno 2 if already unlinked).
  void unlink();
  // Removes a named block by name (SharedMemory:unlink() after close()).
  // Throws mp.OSError (errno 2 if there is no such name).
  static void unlink_name(const std::string& name);

  struct Impl;  // private to shm.cpp

 private:
  Segment() = default;
  std::string name_;
  void* base_ = nullptr;  // start of the mapping
  size_t map_size_ = 0;
  void* data_ = nullptr;  // start of the usable bytes
  size_t size_ = 0;
  Kind kind_ = Kind::Counted;
  uint64_t ino_ = 0;  // Named: the file, to tell a re-created name apart
};

// Encodes a reference to `offset` inside `seg` for a message: kind, name and
// offset.  For a counted segment this takes one in-flight hold (add_in_flight)
// that decode_ref() hands to the receiving process.
void encode_ref(std::string& out, Segment& seg, uint64_t offset);

// Reads what encode_ref wrote at [*p, end), advances *p, and returns the
// segment (adopting the in-flight hold).  Throws Failure ("corrupt message:
// ...") on bad input, mp.OSError if the segment is gone.
std::shared_ptr<Segment> decode_ref(const char** p, const char* end, uint64_t* offset);

// Releases every hold this process has (counted segments: holder count - 1,
// unlink at 0).  Call in a child just before _exit; runs at exit() by itself.
// Afterwards the process must not use shared objects any more.
void release_all();

// While one of these lives, fork() does not count the child as a holder:
// for a fork that is followed by exec (spawn), where the child's inherited
// mappings vanish without a release.
class ForkWithoutHolds {
 public:
  ForkWithoutHolds();
  ~ForkWithoutHolds();
  ForkWithoutHolds(const ForkWithoutHolds&) = delete;
  ForkWithoutHolds& operator=(const ForkWithoutHolds&) = delete;
};

// Starts the tracker if this program has none yet (no-op when it runs).
// Process:start calls this before forking or spawning, so that every child
// inherits the tracker's pipe.  Throws mp.OSError.
void ensure_tracker();

// A spawned child: adopts the tracker socket named by LUAMP_TRACKER_FD (if
// it is really ours) and makes it close-on-exec again.  Called when the
// module loads, so that programs the child runs do not inherit it.
void adopt_inherited_tracker();

// The write end of the tracker's pipe, or -1 before the tracker started.
// It is O_CLOEXEC: spawn must clear FD_CLOEXEC on it in the child before
// exec and set the environment variable LUAMP_TRACKER_FD to
// tracker_env_value() (computed in the parent: "<fd>:<parent pid>").
int tracker_fd();
std::string tracker_env_value();
inline constexpr const char* kTrackerEnv = "LUAMP_TRACKER_FD";

// The prefix of every generated name: "luamp-".
inline constexpr const char* kNamePrefix = "luamp-";

}  // namespace luamp::shm
