// Queues (API.md "Queues"; docs/api/queues.md): the Lua types mp.Queue,
// mp.SimpleQueue and mp.JoinableQueue over the shared-memory message ring
// (ring.h).  Encoding happens before the ring's lock is taken, decoding
// after it is released (DESIGN.md, "A queue message").  Queues cross to
// other processes by reference (a NativeType: the ring segment's name), in
// Process args under every start method and through Queues and Pipes.
// Used from Lua through the core table (multiprocessing.init.lua).
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "mp/codec.h"
#include "mp/lua_util.h"
#include "mp/ring.h"
#include "mp/shm.h"

namespace luamp {
namespace {

enum QueueKind : unsigned char { kQueue = 0, kSimple = 1, kJoinable = 2 };
const char* const kTypeNames[] = {"mp.Queue", "mp.SimpleQueue", "mp.JoinableQueue"};
const char* const kShortNames[] = {"Queue", "SimpleQueue", "JoinableQueue"};

// The userdata: closed when ring is null.  The Ring (and its segment hold)
// is owned here and freed by close/__gc.
struct QueueUd {
  ring::Ring* ring;
  QueueKind kind;
};

QueueUd* new_queue(lua_State* L, QueueKind kind) {
  auto* q = static_cast<QueueUd*>(lua_newuserdatauv(L, sizeof(QueueUd), 0));
  q->ring = nullptr;
  q->kind = kind;
  luaL_setmetatable(L, kTypeNames[kind]);
  return q;
}

// Any of the three queue types at i (open or closed).
QueueUd* check_any(lua_State* L, int i) {
  for (const char* name : kTypeNames) {
    if (void* p = luaL_testudata(L, i, name)) return static_cast<QueueUd*>(p);
  }
  luaL_typeerror(L, i, "Queue");
  return nullptr;
}

// The open queue at i: "attempt to use a closed Queue" otherwise.
QueueUd* check_open(lua_State* L, int i) {
  QueueUd* q = check_any(L, i);
  if (q->ring == nullptr) luaL_error(L, "attempt to use a closed %s", kShortNames[q->kind]);
  return q;
}

// Python's (block, timeout) pair at i, i+1.  block absent: true.  timeout
// absent or nil: forever; negative: an error, as in Python.
semlock::Deadline check_block_timeout(lua_State* L, int i, bool* block) {
  *block = lua_isnone(L, i) || lua_toboolean(L, i);
  if (lua_isnoneornil(L, i + 1)) return semlock::Deadline::never();
  double t = luaL_checknumber(L, i + 1);
  luaL_argcheck(L, !std::isnan(t) && t >= 0, i + 1, "'timeout' must be a non-negative number");
  if (t > 1e9) return semlock::Deadline::never();
  return semlock::Deadline::after(t);
}

// Encodes the value at idx (outside any lock) and puts it.
int do_put(lua_State* L, QueueUd* q, int idx, bool block, semlock::Deadline deadline) {
  return run_guarded(L, [&] {
    std::string out;
    codec::EncodeContext ctx;  // ctx.fds null: fd objects are refused
    ctx.path = "value";
    codec::encode(L, idx, out, ctx);
    ring::Status s = q->ring->put(out.data(), out.size(), block, deadline);
    if (s != ring::Status::Ok) throw Failure::of("Full", "");
    return 0;
  });
}

// Gets one message and decodes it (after the ring's lock is released).
int do_get(lua_State* L, QueueUd* q, bool block, semlock::Deadline deadline) {
  return run_guarded(L, [&] {
    ring::Message m;
    ring::Status s = q->ring->get(m, block, deadline);
    if (s != ring::Status::Ok) throw Failure::of("Empty", "");
    codec::DecodeContext ctx;
    codec::decode(L, m.data(), m.size(), ctx);
    return 1;
  });
}

// Queue:put(v [, block [, timeout]]): mp.Full when there is no room in time.
int queue_put(lua_State* L) {
  QueueUd* q = check_open(L, 1);
  luaL_checkany(L, 2);
  bool block;
  semlock::Deadline deadline = check_block_timeout(L, 3, &block);
  lua_settop(L, 2);
  return do_put(L, q, 2, block, deadline);
}

// SimpleQueue:put(v): waits for room as long as it takes.
int simplequeue_put(lua_State* L) {
  QueueUd* q = check_open(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  return do_put(L, q, 2, true, semlock::Deadline::never());
}

int queue_put_nowait(lua_State* L) {
  QueueUd* q = check_open(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  return do_put(L, q, 2, false, semlock::Deadline::never());
}

// Queue:get([block [, timeout]]): mp.Empty when nothing came in time.
int queue_get(lua_State* L) {
  QueueUd* q = check_open(L, 1);
  bool block;
  semlock::Deadline deadline = check_block_timeout(L, 2, &block);
  return do_get(L, q, block, deadline);
}

int simplequeue_get(lua_State* L) {
  QueueUd* q = check_open(L, 1);
  return do_get(L, q, true, semlock::Deadline::never());
}

int queue_get_nowait(lua_State* L) {
  QueueUd* q = check_open(L, 1);
  return do_get(L, q, false, semlock::Deadline::never());
}

int queue_qsize(lua_State* L) {
  lua_pushinteger(L, static_cast<lua_Integer>(check_open(L, 1)->ring->qsize()));
  return 1;
}

int queue_empty(lua_State* L) {
  lua_pushboolean(L, check_open(L, 1)->ring->qsize() == 0);
  return 1;
}

int queue_full(lua_State* L) {
  lua_pushboolean(L, check_open(L, 1)->ring->full());
  return 1;
}

// Queue:close(), __gc, __close: this process stops using the queue (its
// hold on the shared ring is dropped; the messages stay for the others).
// Idempotent.
int queue_close(lua_State* L) {
  QueueUd* q = check_any(L, 1);
  delete q->ring;
  q->ring = nullptr;
  return 0;
}

// join_thread() and cancel_join_thread(): there is no feeder thread, so
// there is nothing to join or cancel (docs/api/queues.md).
int queue_join_thread(lua_State* L) {
  check_any(L, 1);
  return 0;
}

// JoinableQueue:task_done(): one task finished.  Too many calls raise.
int queue_task_done(lua_State* L) {
  QueueUd* q = check_open(L, 1);
  return run_guarded(L, [&] {
    q->ring->task_done();
    return 0;
  });
}

// JoinableQueue:join([timeout]): waits until every task put was marked done.
// Returns true, or false when the (luamp-only) timeout passed first.
int queue_join(lua_State* L) {
  QueueUd* q = check_open(L, 1);
  semlock::Deadline deadline = semlock::Deadline::never();
  if (!lua_isnoneornil(L, 2)) {
    double t = luaL_checknumber(L, 2);
    luaL_argcheck(L, !std::isnan(t) && t >= 0, 2, "'timeout' must be a non-negative number");
    deadline = semlock::Deadline::after(t);
  }
  bool done = false;
  run_guarded(L, [&] {
    done = q->ring->join(deadline) == ring::Status::Ok;
    return 0;
  });
  lua_pushboolean(L, done);
  return 1;
}

int queue_tostring(lua_State* L) {
  QueueUd* q = check_any(L, 1);
  if (q->ring == nullptr) {
    lua_pushfstring(L, "<%s closed>", kShortNames[q->kind]);
  } else if (q->kind == kSimple) {
    lua_pushfstring(L, "<SimpleQueue qsize=%d>", static_cast<int>(q->ring->qsize()));
  } else {
    lua_pushfstring(L, "<%s qsize=%d maxsize=%d>", kShortNames[q->kind], static_cast<int>(q->ring->qsize()),
                    static_cast<int>(q->ring->maxsize()));
  }
  return 1;
}

// Constructors.  mp.Queue([maxsize [, {ring_size=}]]): maxsize <= 0 (the
// default) means no limit on the number of messages; ring_size (a luamp
// addition) is the ring's byte capacity.
int make_queue(lua_State* L, QueueKind kind, int opt_idx) {
  lua_Integer maxsize = kind == kSimple ? 0 : luaL_optinteger(L, 1, 0);
  lua_Integer ring_size = static_cast<lua_Integer>(ring::kDefaultCapacity);
  if (lua_istable(L, opt_idx)) {
    lua_getfield(L, opt_idx, "ring_size");
    ring_size = luaL_optinteger(L, -1, ring_size);
    lua_pop(L, 1);
    luaL_argcheck(L, ring_size >= 4096 && ring_size <= (lua_Integer{1} << 40), opt_idx,
                  "ring_size must be between 4096 and 2^40 bytes");
  } else if (!lua_isnoneornil(L, opt_idx)) {
    luaL_typeerror(L, opt_idx, "table");
  }
  QueueUd* q = new_queue(L, kind);
  return run_guarded(L, [&] {
    auto r = std::make_unique<ring::Ring>(ring::Ring::create(static_cast<size_t>(ring_size), maxsize));
    q->ring = r.release();
    return 1;
  });
}

int mp_queue(lua_State* L) { return make_queue(L, kQueue, 2); }
int mp_joinable_queue(lua_State* L) { return make_queue(L, kJoinable, 2); }
int mp_simple_queue(lua_State* L) { return make_queue(L, kSimple, 1); }

// Crossing processes: one kind byte, then a reference to the ring segment
// (shm::encode_ref carries a hold, so the ring outlives the message).
void queue_reduce(lua_State* L, int idx, std::string& out, codec::EncodeContext&) {
  QueueUd* q = check_any(L, idx);
  if (q->ring == nullptr) throw Failure::plain(std::string("cannot send a closed ") + kShortNames[q->kind]);
  out.push_back(static_cast<char>(q->kind));
  shm::encode_ref(out, *q->ring->segment(), 0);
}

void queue_rebuild(lua_State* L, const char* data, size_t len, codec::DecodeContext&) {
  if (len < 2 || static_cast<unsigned char>(data[0]) > kJoinable) throw Failure::plain("corrupt message: bad Queue");
  auto kind = static_cast<QueueKind>(data[0]);
  const char* p = data + 1;
  uint64_t offset;
  auto seg = shm::decode_ref(&p, data + len, &offset);
  auto r = std::make_unique<ring::Ring>(std::move(seg));
  QueueUd* q = new_queue(L, kind);  // may raise only on out of memory
  q->ring = r.release();
}

const codec::NativeType kNative[] = {
    {"mp.Queue", queue_reduce, queue_rebuild},
    {"mp.SimpleQueue", queue_reduce, queue_rebuild},
    {"mp.JoinableQueue", queue_reduce, queue_rebuild},
};

void make_metatable(lua_State* L, QueueKind kind, const luaL_Reg* methods) {
  luaL_newmetatable(L, kTypeNames[kind]);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, queue_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, queue_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, queue_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  codec::register_native_type(L, &kNative[kind]);
}

}  // namespace

// Adds Queue, SimpleQueue, JoinableQueue to the core table on top.
void open_queue(lua_State* L) {
  static const luaL_Reg queue_methods[] = {{"put", queue_put},
                                           {"get", queue_get},
                                           {"put_nowait", queue_put_nowait},
                                           {"get_nowait", queue_get_nowait},
                                           {"qsize", queue_qsize},
                                           {"empty", queue_empty},
                                           {"full", queue_full},
                                           {"close", queue_close},
                                           {"join_thread", queue_join_thread},
                                           {"cancel_join_thread", queue_join_thread},
                                           {nullptr, nullptr}};
  static const luaL_Reg joinable_methods[] = {{"put", queue_put},
                                              {"get", queue_get},
                                              {"put_nowait", queue_put_nowait},
                                              {"get_nowait", queue_get_nowait},
                                              {"qsize", queue_qsize},
                                              {"empty", queue_empty},
                                              {"full", queue_full},
                                              {"close", queue_close},
                                              {"join_thread", queue_join_thread},
                                              {"cancel_join_thread", queue_join_thread},
                                              {"task_done", queue_task_done},
                                              {"join", queue_join},
                                              {nullptr, nullptr}};
  static const luaL_Reg simple_methods[] = {{"put", simplequeue_put},
                                            {"get", simplequeue_get},
                                            {"empty", queue_empty},
                                            {"close", queue_close},
                                            {nullptr, nullptr}};
  make_metatable(L, kQueue, queue_methods);
  make_metatable(L, kJoinable, joinable_methods);
  make_metatable(L, kSimple, simple_methods);
  static const luaL_Reg funcs[] = {
      {"Queue", mp_queue}, {"SimpleQueue", mp_simple_queue}, {"JoinableQueue", mp_joinable_queue}, {nullptr, nullptr}};
  luaL_setfuncs(L, funcs, 0);
}

}  // namespace luamp
