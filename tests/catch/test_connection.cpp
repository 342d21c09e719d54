// Connections from C++: recv_bytes_into / send_bytes through the byte-buffer
// capability (buffer.h) with a test buffer type, and a Listener fed raw
// garbage by a forked client that never speaks the protocol.
#include <catch2/catch.hpp>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "host/host.h"
#include "mp/buffer.h"
#include "mp/lua_util.h"

namespace {

// A fixed 16-byte buffer userdata, "test.Buffer".
void test_buffer_getter(lua_State* L, int idx, luamp::buffer::ByteSpan* out) {
  out->data = static_cast<char*>(lua_touserdata(L, idx));
  out->size = 16;
}

int new_test_buffer(lua_State* L) {
  void* p = lua_newuserdatauv(L, 16, 0);
  std::memset(p, 0, 16);
  luaL_setmetatable(L, "test.Buffer");
  return 1;
}

int test_buffer_read(lua_State* L) {
  lua_pushlstring(L, static_cast<char*>(luaL_checkudata(L, 1, "test.Buffer")), 16);
  return 1;
}

lua_State* new_state() {
  lua_State* L = luaL_newstate();
  luamp::host::open_all(L);
  REQUIRE(luaL_dostring(L, "mp = require 'multiprocessing'") == LUA_OK);
  luaL_newmetatable(L, "test.Buffer");
  lua_pop(L, 1);
  luamp::buffer::register_type(L, "test.Buffer", test_buffer_getter);
  lua_register(L, "TestBuffer", new_test_buffer);
  lua_register(L, "read_buffer", test_buffer_read);
  return L;
}

std::string run(lua_State* L, const char* code) {
  if (luaL_dostring(L, code) != LUA_OK) {
    std::string err = lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)";
    lua_pop(L, 1);
    return "error: " + err;
  }
  std::string out = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
  lua_settop(L, 0);
  return out;
}

}  // namespace

TEST_CASE("recv_bytes_into writes into a registered byte buffer", "[connection]") {
  lua_State* L = new_state();
  CHECK(run(L, R"(
    local a, b = mp.Pipe()
    local buf = TestBuffer()
    a:send_bytes("hello")
    local n = b:recv_bytes_into(buf)
    a:send_bytes("XY")
    local m = b:recv_bytes_into(buf, 6)
    return n .. " " .. m .. " " .. read_buffer(buf):sub(1, 8))") == "5 2 helloXY\0");
  // Too short: BufferTooShort with the whole message in err.data; the
  // message is consumed.
  CHECK(run(L, R"(
    local a, b = mp.Pipe()
    local buf = TestBuffer()
    a:send_bytes(string.rep("z", 20))
    a:send_bytes("next")
    local ok, err = pcall(b.recv_bytes_into, b, buf)
    assert(not ok and mp.isinstance(err, mp.BufferTooShort), tostring(err))
    assert(err.data == string.rep("z", 20))
    local ok2, err2 = pcall(b.recv_bytes_into, b, buf, 14)
    assert(not ok2 and err2.data == "next")
    assert(not pcall(b.recv_bytes_into, b, buf, 18))  -- offset out of range
    assert(not pcall(b.recv_bytes_into, b, "a string"))
    return "ok")") == "ok");
  // send_bytes from a buffer, with offset and size.
  CHECK(run(L, R"(
    local a, b = mp.Pipe()
    local buf = TestBuffer()
    a:send_bytes("0123456789abcdef")
    b:recv_bytes_into(buf)
    b:send_bytes(buf, 11, 6)
    return a:recv_bytes())") == "abcdef");
  lua_close(L);
}

TEST_CASE("a Listener survives a raw garbage client and keeps accepting", "[connection][fork]") {
  lua_State* L = new_state();
  REQUIRE(run(L, R"(
    L = mp.connection.Listener{address = {"127.0.0.1", 0}, authkey = "key", handshake_timeout = 2}
    return tostring(L.address[2]))") != "");
  REQUIRE(luaL_dostring(L, "return L.address[2]") == LUA_OK);
  int port = static_cast<int>(lua_tointeger(L, -1));
  lua_settop(L, 0);
  pid_t pid = fork();
  if (pid == 0) {
    // A client that speaks HTTP instead of the protocol, then a good one.
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) _exit(2);
    const char junk[] = "GET / HTTP/1.0\r\n\r\n";
    if (write(s, junk, sizeof junk - 1) < 0) _exit(3);
    usleep(200000);
    close(s);
    lua_State* C = luaL_newstate();
    luamp::host::open_all(C);
    std::string code = "local mp = require 'multiprocessing'; local c = mp.connection.Client({'127.0.0.1', " +
                       std::to_string(port) + "}, {authkey = 'key'}); c:send('good client')";
    _exit(luaL_dostring(C, code.c_str()) == LUA_OK ? 0 : 4);
  }
  CHECK(run(L, R"(
    local ok, err = pcall(L.accept, L)
    assert(not ok and mp.isinstance(err, mp.AuthenticationError), tostring(err))
    local c = L:accept()
    return c:recv())") == "good client");
  int status = 0;
  for (int i = 0; i < 1000 && waitpid(pid, &status, WNOHANG) == 0; ++i) usleep(10000);
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  run(L, "L:close()");
  lua_close(L);
}
