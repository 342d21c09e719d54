// The Catch2 test runner for luamp's C++ core (tests/catch/test_*.cpp).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
