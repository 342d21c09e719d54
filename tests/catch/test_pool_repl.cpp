// The Pool from luamp's REPL, through a pseudo-terminal (DOC-12: the case
// that fails in Python's interactive interpreter).  A pool is made at the
// prompt, a function is typed afterwards, and map works under every start
// method; then Ctrl-C during a long map interrupts it once, the REPL keeps
// going, and the pool (terminated by the interrupt) reports so.
#include <catch2/catch.hpp>

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

namespace {

// A luamp REPL on a pty.  Everything is bounded by deadlines.
class Repl {
 public:
  explicit Repl(const char* method) {
    struct winsize ws {};
    ws.ws_col = 200;
    ws.ws_row = 50;
    pid_ = forkpty(&fd_, nullptr, nullptr, &ws);
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      setenv("LUAMP_START_METHOD", method, 1);
      setenv("TERM", "dumb", 1);
      setenv("HOME", "/nonexistent", 1);  // no history file
      execl(LUAMP_EXE, LUAMP_EXE, static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Repl() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
    if (fd_ >= 0) close(fd_);
  }

  void send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = write(fd_, s.data() + off, s.size() - off);
      REQUIRE(n > 0);
      off += static_cast<size_t>(n);
    }
  }

  // Reads until `needle` appears in the output since the last expect, or
  // `seconds` pass.  Returns whether it appeared.
  bool expect(const std::string& needle, double seconds = 20) {
    if (getenv("POOL_REPL_DEBUG")) fprintf(stderr, "expect [%s] buffer [%s]\n", needle.c_str(), buffer_.c_str());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    for (;;) {
      size_t at = buffer_.find(needle);
      if (at != std::string::npos) {
        buffer_.erase(0, at + needle.size());
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      struct pollfd p {fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) return false;
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }

  const std::string& rest() const { return buffer_; }
  pid_t pid() const { return pid_; }

  // Ends the session with Ctrl-D and waits for a normal exit.
  int finish() {
    send("\x04");
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      char buf[4096];
      struct pollfd p {fd_, POLLIN, 0};
      // After the child closes the pty, poll reports a hang-up at once.
      if (poll(&p, 1, 50) > 0 && read(fd_, buf, sizeof buf) <= 0) usleep(20 * 1000);
    }
    return -2;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace

TEST_CASE("a function typed at the REPL runs in a Pool under every start method", "[pool][repl]") {
  for (const char* method : {"fork", "spawn", "forkserver"}) {
    INFO("start method " << method);
    Repl repl(method);
    REQUIRE(repl.expect("> "));
    repl.send("p = mp.Pool(3)\n");
    REQUIRE(repl.expect("> "));
    repl.send("function f(x) return x * x end\n");
    REQUIRE(repl.expect("> "));
    repl.send("p:map(f, {1, 2, 3})\n");
    REQUIRE(repl.expect("{1, 4, 9}"));
    REQUIRE(repl.expect("> "));
    // A local typed on one line, with an upvalue.
    repl.send("local k = 10; print(repr(p:map(function(x) return x * k end, {1, 2})))\n");
    REQUIRE(repl.expect("{10, 20}"));
    REQUIRE(repl.expect("> "));
    repl.send("p:terminate(); p:join(); print('done', #mp.active_children())\n");
    REQUIRE(repl.expect("done\t0"));
    REQUIRE(repl.expect("> "));
    CHECK(repl.finish() == 0);
  }
}

TEST_CASE("Ctrl-C at the REPL stops a running map once and terminates the pool", "[pool][repl]") {
  Repl repl("fork");
  REQUIRE(repl.expect("> "));
  repl.send("p = mp.Pool(2)\n");
  REQUIRE(repl.expect("> "));
  repl.send("p:map(os.sleep, {30, 30, 30})\n");
  // Let the map start, then Ctrl-C through the terminal.
  usleep(500 * 1000);
  repl.send("\x03");
  REQUIRE(repl.expect("interrupted!", 10));
  REQUIRE(repl.expect("> "));
  CHECK(repl.rest().find("interrupted!") == std::string::npos);
  // The interrupted pool was terminated: it says so and has no workers.
  repl.send("print(pcall(p.apply, p, os.getpid)); print('children', #mp.active_children())\n");
  REQUIRE(repl.expect("Pool not running"));
  REQUIRE(repl.expect("children\t0"));
  REQUIRE(repl.expect("> "));
  CHECK(repl.finish() == 0);
}
