// The Lua types of synchronize.cpp (mp.Lock, RLock, Semaphore,
// BoundedSemaphore, Condition, Event) as other native files need them:
// sharedctypes.cpp makes the lock of a Value/Array and checks a `lock=`
// argument.
#pragma once
#include <lua.hpp>

#include <cstdint>
#include <memory>

#include "mp/semlock.h"
#include "mp/shm.h"

namespace luamp {

// Pushes a new Lock/RLock/Semaphore/BoundedSemaphore userdata for the
// SemLock at `offset` in `seg` (already initialised).  Throws Failure.
void push_semlock(lua_State* L, std::shared_ptr<shm::Segment> seg, uint64_t offset, semlock::Kind kind);

// The SemLock of the Lock/RLock/Semaphore/BoundedSemaphore at idx, or
// nullptr if the value is not one (or is closed).
semlock::SemLock* test_semlock(lua_State* L, int idx);

// obj:guard() for any object with acquire/release methods: acquires now,
// returns a closable object whose __close releases once.
int object_guard(lua_State* L);

// Adds Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event and
// metatable to the table on top of the stack and registers the types.
void open_synchronize(lua_State* L);

}  // namespace luamp
