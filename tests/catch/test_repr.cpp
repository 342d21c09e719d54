// repr(): deterministic one-line literals, floats, cycles, pretty form.
#include <catch2/catch.hpp>

#include <string>

#include "host/host.h"
#include "mp/repr.h"

namespace {

// Evaluates `return <expr>` in a fresh host state and returns repr of it.
std::string repr_of(const std::string& expr, int width = 0) {
  lua_State* L = luaL_newstate();
  luamp::host::open_all(L);
  std::string code = "return " + expr;
  REQUIRE(luaL_dostring(L, code.c_str()) == LUA_OK);
  std::string out = luamp::repr_value(L, -1, width);
  lua_close(L);
  return out;
}

}  // namespace

TEST_CASE("repr renders scalars as Lua literals", "[repr]") {
  CHECK(repr_of("nil") == "nil");
  CHECK(repr_of("true") == "true");
  CHECK(repr_of("42") == "42");
  CHECK(repr_of("math.mininteger") == "-9223372036854775808");
  CHECK(repr_of("4.0") == "4.0");
  CHECK(repr_of("-78.5") == "-78.5");
  CHECK(repr_of("0.1") == "0.1");
  CHECK(repr_of("1/9") == "0.1111111111111111");
  CHECK(repr_of("3.1415927") == "3.1415927");
  CHECK(repr_of("-0.0") == "-0.0");
  CHECK(repr_of("1e300") == "1e+300");
  CHECK(repr_of("1/0") == "math.huge");
  CHECK(repr_of("-1/0") == "-math.huge");
  CHECK(repr_of("'a\"b\\n'") == "\"a\\\"b\\n\"");
  CHECK(repr_of("'\\0' .. '1'") == "\"\\0001\"");
}

TEST_CASE("repr of tables: sequence, sorted keys, holes, cycles", "[repr]") {
  CHECK(repr_of("{}") == "{}");
  CHECK(repr_of("{1, 4, 9}") == "{1, 4, 9}");
  CHECK(repr_of("{x = 1, 1, 2, ['a b'] = 2}") == "{1, 2, [\"a b\"] = 2, x = 1}");
  CHECK(repr_of("{42, nil, 'hello'}") == "{42, nil, \"hello\"}");
  CHECK(repr_of("{[1] = 1, [100] = 2}") == "{1, [100] = 2}");
  CHECK(repr_of("{[1.5] = 'a', [-1] = 'b', [true] = 1, ['end'] = 0}") ==
        "{[-1] = \"b\", [1.5] = \"a\", [\"end\"] = 0, [true] = 1}");
  CHECK(repr_of("(function() local t = {1}; t.self = t; return t end)()") == "{1, self = <cycle>}");
  CHECK(repr_of("(function() local s = {1}; return {s, s} end)()") == "{{1}, {1}}");
  CHECK(repr_of("setmetatable({}, {__repr = function() return 'R' end})") == "R");
}

TEST_CASE("repr pretty form breaks long tables over lines", "[repr]") {
  std::string long_expr = "{alpha = 'aaaaaaaaaaaaaaaaaaaa', beta = 'bbbbbbbbbbbbbbbbbbbbbbb', gamma = {1, 2, 3}}";
  CHECK(repr_of(long_expr).find('\n') == std::string::npos);
  std::string pretty = repr_of(long_expr, 40);
  CHECK(pretty ==
        "{\n"
        "  alpha = \"aaaaaaaaaaaaaaaaaaaa\",\n"
        "  beta = \"bbbbbbbbbbbbbbbbbbbbbbb\",\n"
        "  gamma = {1, 2, 3},\n"
        "}");
}
