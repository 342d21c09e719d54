// Lua access to the codec with out-of-band file descriptors, for process
// payloads (spawn and forkserver): the fds that luamp objects in a Process's
// args need are kept open across exec, or passed over the fork server's
// socket, and named in the payload.  Used by multiprocessing.spawn.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <string>
#include <vector>

#include "mp/payload.h"

#include "mp/codec.h"
#include "mp/lua_util.h"

namespace luamp {
namespace {

// core.encode_with_fds(value [, rootname]) -> bytes, {fds...}.  The fds are
// duplicates (close-on-exec) that the caller owns and must close once the
// child has them: the objects in `value` keep their own fds, so a Listener or
// Connection sent to several children stays usable in the parent.
int payload_encode(lua_State* L) {
  luaL_checkany(L, 1);
  const char* root = luaL_optstring(L, 2, "value");
  lua_settop(L, 1);
  return run_guarded(L, [&] {
    std::string out;
    std::vector<int> fds;
    codec::EncodeContext ctx;
    ctx.fds = &fds;
    ctx.path = root;
    codec::encode(L, 1, out, ctx);
    for (size_t i = 0; i < fds.size(); ++i) {
      int dup = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
      if (dup < 0) {
        int saved = errno;
        for (size_t j = 0; j < i; ++j) close(fds[j]);
        throw Failure::os("dup", saved);
      }
      fds[i] = dup;
    }
    lua_pushlstring(L, out.data(), out.size());
    lua_createtable(L, static_cast<int>(fds.size()), 0);
    for (size_t i = 0; i < fds.size(); ++i) {
      lua_pushinteger(L, fds[i]);
      lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
    }
    return 2;
  });
}

// core.decode_with_fds(bytes, {fds...}) -> value.  Fds the value does not
// take over are closed.
int payload_decode(lua_State* L) {
  size_t len;
  const char* data = luaL_checklstring(L, 1, &len);
  luaL_checktype(L, 2, LUA_TTABLE);
  std::vector<int> fds;
  for (lua_Integer i = 1;; ++i) {
    if (lua_rawgeti(L, 2, i) == LUA_TNIL) {
      lua_pop(L, 1);
      break;
    }
    fds.push_back(static_cast<int>(lua_tointeger(L, -1)));
    lua_pop(L, 1);
  }
  return run_guarded(L, [&] {
    codec::DecodeContext ctx;
    ctx.fds = &fds;
    struct CloseLeftovers {
      std::vector<int>& fds;
      ~CloseLeftovers() {
        for (int fd : fds)
          if (fd >= 0) close(fd);
      }
    } leftovers{fds};
    codec::decode(L, data, len, ctx);
    return 1;
  });
}

}  // namespace

void open_payload(lua_State* L) {
  static const luaL_Reg funcs[] = {
      {"encode_with_fds", payload_encode}, {"decode_with_fds", payload_decode}, {nullptr, nullptr}};
  luaL_setfuncs(L, funcs, 0);
}

}  // namespace luamp
