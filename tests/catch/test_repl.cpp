// The REPL driven through a real pseudo-terminal (forkpty): echo of values,
// multi-line input, =expr, Ctrl-C while code runs (a busy loop, a pcall loop,
// os.sleep) and at the prompt, Ctrl-D, tab completion, help, history.  Every
// wait has a deadline, so a hang fails the test instead of stalling it.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace {

constexpr double kTimeout = 10.0;  // seconds for any one expected output

double now() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// A luamp REPL on the slave side of a pty.  The child gets TERM=dumb and
// INPUTRC=/dev/null (no user key bindings) and the history file given
// (LUAMP_HISTORY; empty means none).
class Repl {
 public:
  explicit Repl(const std::string& history = "") {  // "": no history file
    struct winsize ws {};
    ws.ws_row = 24;
    ws.ws_col = 200;  // wide: no line wrapping in what we match
    pid_ = forkpty(&master_, nullptr, nullptr, &ws);
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      setenv("TERM", "dumb", 1);
      setenv("INPUTRC", "/dev/null", 1);
      setenv("LUAMP_HISTORY", history.c_str(), 1);
      unsetenv("LUA_INIT");
      unsetenv("LUA_INIT_5_4");
      execl(LUAMP_EXE, "luamp", static_cast<char*>(nullptr));
      _exit(127);
    }
    expect("> ");
  }

  ~Repl() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) close(master_);
  }

  void send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = write(master_, s.data() + off, s.size() - off);
      REQUIRE(n > 0);
      off += static_cast<size_t>(n);
    }
  }

  // Reads until `needle` appears in the output not yet consumed; returns and
  // consumes the output up to and including it.  Fails after the deadline.
  std::string expect(const std::string& needle, double timeout = kTimeout) {
    double deadline = now() + timeout;
    for (;;) {
      size_t at = buffer_.find(needle);
      if (at != std::string::npos) {
        std::string out = buffer_.substr(0, at + needle.size());
        buffer_.erase(0, at + needle.size());
        return out;
      }
      double left = deadline - now();
      if (left <= 0 || !read_some(left)) {
        FAIL("expected \"" << needle << "\", got so far: \"" << buffer_ << "\"");
      }
    }
  }

  // Waits for the child to exit; returns its exit status (or -signal).
  int wait_exit(double timeout = kTimeout) {
    double deadline = now() + timeout;
    while (now() < deadline) {
      read_some(0.05);  // keep the pty drained
      int status;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      }
    }
    FAIL("luamp did not exit; output: \"" << buffer_ << "\"");
    return -1;
  }

 private:
  // Appends what the pty has within `timeout` seconds; false on EOF/timeout.
  bool read_some(double timeout) {
    struct pollfd pfd = {master_, POLLIN, 0};
    int rc = poll(&pfd, 1, static_cast<int>(timeout * 1000));
    if (rc <= 0) return false;
    char buf[4096];
    ssize_t n = read(master_, buf, sizeof buf);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int master_ = -1;
  std::string buffer_;
};

}  // namespace

TEST_CASE("REPL echoes expressions with repr, not statements", "[repl]") {
  Repl r;
  r.send("1 + 1\n");
  CHECK(r.expect("> ").find("2\r\n") != std::string::npos);
  r.send("x = {1, 4, 9}\n");
  CHECK(r.expect("> ").find("\r\n") != std::string::npos);
  r.send("x\n");
  CHECK(r.expect("> ").find("{1, 4, 9}\r\n") != std::string::npos);
  r.send("=1, \"a\"\n");
  std::string out = r.expect("> ");
  CHECK(out.find("1\r\n\"a\"\r\n") != std::string::npos);
  r.send("local y = 3\n");
  r.expect("> ");
  r.send("y\n");  // each line is its own chunk: the local is gone
  CHECK(r.expect("> ").find("nil\r\n") != std::string::npos);
  r.send("mp.cpu_count() >= 1\n");
  CHECK(r.expect("> ").find("true\r\n") != std::string::npos);
  r.send("error('boom')\n");
  out = r.expect("> ");
  CHECK(out.find("stdin:1: boom") != std::string::npos);
  CHECK(out.find("luamp:") == std::string::npos);  // as lua's REPL: no prefix
  r.send("\x04");
  CHECK(r.wait_exit() == 0);
}

TEST_CASE("REPL reads multi-line statements", "[repl]") {
  Repl r;
  r.send("for i = 1, 3 do\n");
  r.expect(">> ");
  r.send("print(i * 10)\n");
  r.expect(">> ");
  r.send("end\n");
  std::string out = r.expect("> ");
  CHECK(out.find("10\r\n20\r\n30\r\n") != std::string::npos);
  r.send("=1 +\n");
  r.expect(">> ");
  r.send("41\n");
  CHECK(r.expect("> ").find("42\r\n") != std::string::npos);
  r.send("\x04");
  CHECK(r.wait_exit() == 0);
}

TEST_CASE("Ctrl-C stops running code and returns to the prompt", "[repl]") {
  Repl r;
  SECTION("a busy loop") {
    r.send("print('go') while true do end\n");
  }
  SECTION("a pcall loop cannot swallow it") {
    r.send("print('go') while true do pcall(function() while true do end end) end\n");
  }
  SECTION("a blocking native call (os.sleep)") {
    r.send("print('go') os.sleep(100)\n");
  }
  r.expect("go\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  double t0 = now();
  r.send("\x03");
  std::string out = r.expect("> ");
  CHECK(out.find("interrupted!") != std::string::npos);
  CHECK(now() - t0 < 5);
  r.send("1 + 2\n");  // the REPL still works
  CHECK(r.expect("> ").find("3\r\n") != std::string::npos);
  r.send("\x04");
  CHECK(r.wait_exit() == 0);
}

TEST_CASE("Ctrl-C at the prompt clears the line", "[repl]") {
  Repl r;
  r.send("abc");
  r.expect("abc");
  r.send("\x03");
  r.expect("> ");
  r.send("2 + 2\n");
  CHECK(r.expect("> ").find("4\r\n") != std::string::npos);
  // In the middle of a multi-line statement it drops the whole statement.
  r.send("for i = 1, 2 do\n");
  r.expect(">> ");
  r.send("\x03");
  r.expect("> ");
  r.send("3 + 3\n");
  CHECK(r.expect("> ").find("6\r\n") != std::string::npos);
  r.send("\x04");
  CHECK(r.wait_exit() == 0);
}

TEST_CASE("Ctrl-D on an empty line exits with status 0", "[repl]") {
  Repl r;
  r.send("\x04");
  CHECK(r.wait_exit() == 0);
}

TEST_CASE("Tab completes fields after '.' and methods after ':'", "[repl]") {
  Repl r;
  r.send("mp.cpu_c\t");
  r.expect("mp.cpu_count(");  // a sole function gets "("
  r.send(") >= 1\n");
  CHECK(r.expect("> ").find("true\r\n") != std::string::npos);
  r.send("s = 'abc'\n");
  r.expect("> ");
  r.send("s:upp\t");  // through the string metatable's __index
  r.expect("s:upper(");
  r.send(")\n");
  CHECK(r.expect("> ").find("\"ABC\"\r\n") != std::string::npos);
  r.send("e = mp.Empty('x')\n");
  r.expect("> ");
  r.send("e:ext\t");  // an mp object: its class's methods
  r.expect("e:extend(");
  r.send("\x03");
  r.expect("> ");
  r.send("a, b = mp.Pipe()\n");
  r.expect("> ");
  r.send("a:recv_bytes_i\t");  // a native type's method
  r.expect("a:recv_bytes_into(");
  r.send("\x03");
  r.expect("> ");
  r.send("t = {inner = {deep = {value = 7}}}\n");
  r.expect("> ");
  r.send("t.inner.deep.va\t");
  r.expect("t.inner.deep.value");
  r.send("\n");
  CHECK(r.expect("> ").find("7\r\n") != std::string::npos);
  r.send("\x04");
  CHECK(r.wait_exit() == 0);
}

TEST_CASE("help shows the documentation of mp functions", "[repl]") {
  Repl r;  // help texts contain "--> ", so a prompt is "\r\n> " here
  r.send("help(mp.cpu_count)\n");
  std::string out = r.expect("\r\n> ");
  CHECK(out.find("mp.cpu_count()") != std::string::npos);
  CHECK(out.find("number of CPUs online") != std::string::npos);
  r.send("help('os.sleep')\n");
  CHECK(r.expect("\r\n> ").find("os.sleep(seconds)") != std::string::npos);
  r.send("help(12345)\n");
  CHECK(r.expect("\r\n> ").find("No documentation for 12345") != std::string::npos);
  r.send("help()\n");
  CHECK(r.expect("\r\n> ").find("Documented entry points") != std::string::npos);
  r.send("\x04");
  CHECK(r.wait_exit() == 0);
}

TEST_CASE("History is written to LUAMP_HISTORY", "[repl]") {
  char dir_template[] = "/tmp/luamp_repl_XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  std::string dir = dir_template;
  std::string hist = dir + "/history";
  {
    Repl r(hist);
    r.send("answer = 6 * 7\n");
    r.expect("> ");
    r.send("for i = 1, 2 do\n");
    r.expect(">> ");
    r.send("print(i * 100)\n");
    r.expect(">> ");
    r.send("end\n");
    r.expect("200\r\n> ");
    r.send("\x04");
    CHECK(r.wait_exit() == 0);
  }
  std::ifstream in(hist);
  std::stringstream content;
  content << in.rdbuf();
  CHECK(content.str().find("answer = 6 * 7") != std::string::npos);
  {
    Repl r(hist);  // the next session finds it with the up arrow (Ctrl-P)
    r.send("\x10");  // the multi-line chunk comes back whole
    r.expect("end");
    r.send("\n");
    r.expect("200\r\n> ");
    r.send("\x10\x10");
    r.expect("answer = 6 * 7");
    r.send("\n");
    r.expect("\r\n> ");  // (the redisplay may show the line twice)
    r.send("answer\n");
    std::string out = r.expect("> ");
    INFO(out);
    CHECK(out.find("42\r\n") != std::string::npos);
    r.send("\x04");
    CHECK(r.wait_exit() == 0);
  }
  std::remove(hist.c_str());
  rmdir(dir.c_str());
}
