// Helpers shared by every binding of the native module: the C++ -> Lua error
// trampoline, raising luamp's error classes (mp.Empty, mp.OSError, ...) from
// C++, and small checks.  Used by every src/mp/*.cpp that exposes functions.
//
// Debian's Lua is built as C, so lua_error is a longjmp that skips C++
// destructors.  A binding therefore checks its arguments first, runs its C++
// body inside run_guarded(), and raises only after the body's RAII objects are
// gone.  Bodies report failure by throwing Failure; they never call lua_error.
#pragma once
#include <lua.hpp>

#include <string>
#include <utility>

namespace luamp {

// A failure raised inside a C++ body, turned into a Lua error by run_guarded.
//   cls empty   -> a plain Lua error with `message` (misuse, luaL_error style)
//   cls "Empty" -> an instance of mp.Empty with `message`
//   cls "OSError" -> mp.OSError carrying errno (and filename, if set)
struct Failure {
  std::string cls;
  std::string message;
  int error_number = 0;
  std::string filename;

  static Failure plain(std::string msg) { return Failure{"", std::move(msg), 0, ""}; }
  static Failure of(std::string cls, std::string msg) { return Failure{std::move(cls), std::move(msg), 0, ""}; }
  // An OS failure: message is "<what>: <strerror(err)>".
  static Failure os(const std::string& what, int err, std::string filename = "");
};

// Pushes the Lua error value for `f`: a string, or an mp.<cls> instance.
void push_failure(lua_State* L, const Failure& f);

// Raises mp.<cls>(message).  Never returns.  Must be called with no C++
// object that needs destruction alive in the caller's frames (hence the
// C string).
[[noreturn]] int raise_error(lua_State* L, const char* cls, const char* message);

// Runs body() (which returns the number of Lua results it pushed) and turns a
// thrown Failure or std::exception into a Lua error after unwinding.
template <class Body>
int run_guarded(lua_State* L, Body&& body) {
  {
    Failure failure;
    try {
      return body();
    } catch (Failure& f) {
      failure = std::move(f);
    } catch (std::bad_alloc&) {
      failure = Failure::plain("not enough memory");
    } catch (std::exception& e) {
      failure = Failure::plain(e.what());
    }
    push_failure(L, failure);
  }  // `failure` is destroyed here, before the longjmp
  return lua_error(L);
}

// Pushes the error class mp.<cls> (from the registry) or nil if unknown.
void push_error_class(lua_State* L, const char* cls);

// Registry key under which multiprocessing.lua stores its error classes.
inline constexpr const char* kErrorsRegistryKey = "luamp.errors";

}  // namespace luamp
