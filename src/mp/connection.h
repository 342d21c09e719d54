// Connections: message framing over a file descriptor (Pipe ends, sockets),
// mp.Pipe, mp.connection.wait, Listener/Client with the HMAC handshake.
// Lua side: docs/api/connection.md.  C++ users: the Lua-visible queue code
// (fd objects refused), Process/spawn (passes Connections to children), and
// anyone who needs to push a Connection over an fd it made.
//
// Wire format (the same as Python's multiprocessing.connection, so the bytes
// are readable by either): a 4-byte big-endian signed length, then the
// payload; payloads over 2**31-1 bytes use length -1 followed by an 8-byte
// big-endian length.  File descriptors travel as SCM_RIGHTS ancillary data on
// the first bytes of a frame (socket connections only).
#pragma once
#include <lua.hpp>
#include <poll.h>

#include <string>
#include <vector>

namespace luamp::connection {

// Metatable names.
inline constexpr const char* kConnectionType = "mp.Connection";
inline constexpr const char* kListenerType = "mp.Listener";

// Pushes a new Connection owning `fd` (close-on-exec).  `is_socket`: an
// AF_UNIX stream socket (it can then carry fd objects); false for a pipe(2)
// end.  The fd is owned from then on (a memory error while pushing leaks it).
void push_connection(lua_State* L, int fd, bool readable, bool writable, bool is_socket);

// Before a wait for input that would sleep: polls `fds` without sleeping
// for a moment (at most 30 us) and returns true as soon as one is ready.
// A peer that answers within that time (a ping-pong of small messages, a
// manager's reply) is then read without this process going to sleep: on a
// virtual machine an idle CPU halts, and waking it costs more than the
// looking (pipe_pingpong: 43 us -> 9 us a round trip here).  The moment
// adapts: looks that keep failing (a loaded machine, one CPU) shrink it to
// nothing, so they cost nothing there.  Only shortens waits; reads nothing.
bool spin_until_ready(struct pollfd* fds, size_t n);

// The fd of the Connection at idx, or -1 if idx is not a Connection.
// Raises (Lua error) if it is a closed Connection.
int connection_fd(lua_State* L, int idx);

// Sends one frame: header + `size` bytes of `data`, with `fds` (may be null
// or empty) attached on a socket.  Blocks until written; EINTR with a pending
// Ctrl-C throws Failure("interrupted!").  Throws mp.OSError on failure.
void send_frame(int fd, bool is_socket, const char* data, size_t size, const std::vector<int>* fds);

// Receives one whole frame into `out`.  Received fds are appended to `fds`
// (owned by the caller; close-on-exec).  `deadline` is a monotonic time in
// seconds, or < 0 for none.  Returns false on end of file before the first
// byte; throws mp.EOFError on end of file inside a frame, Failure on a
// frame longer than `maxlength` ("bad message length"), on timeout
// ("timed out"), or on an OS error.
bool recv_frame(int fd, bool is_socket, std::string& out, std::vector<int>* fds,
                double deadline = -1, size_t maxlength = SIZE_MAX);

// Adds Pipe, Listener, Client, connection_wait and the metatables to the
// core table on top of the stack, and registers the NativeTypes.
void open_connection(lua_State* L);

}  // namespace luamp::connection
