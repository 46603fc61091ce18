#include <catch2/catch.hpp>

#include "core/money.h"

using citycard::FormatYuan;
using citycard::FormatYuanSign;
using citycard::ParseYuan;

TEST_CASE("ParseYuan accepts whole yuan and one or two decimals", "[core][money]") {
  REQUIRE(*ParseYuan("12") == 1200);
  REQUIRE(*ParseYuan("12.5") == 1250);
  REQUIRE(*ParseYuan("12.50") == 1250);
  REQUIRE(*ParseYuan("0.01") == 1);
  REQUIRE(*ParseYuan("0") == 0);
  REQUIRE(*ParseYuan("100000000.00") == 10'000'000'000);
}

TEST_CASE("ParseYuan refuses anything that is not a whole number of fen", "[core][money]") {
  for (const char* bad : {"12.505", "-3", "1e3", "abc", "", " 1", "1 ", "1.", ".5", "+1",
                          "1,000", "100000000.01", "1.2.3", "0x10"}) {
    INFO(bad);
    auto r = ParseYuan(bad);
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.status().code() == "invalid_amount");
    REQUIRE(r.status().exit_code() == 5);
  }
}

TEST_CASE("FormatYuan prints two decimals and the sign", "[core][money]") {
  REQUIRE(FormatYuan(1250) == "12.50");
  REQUIRE(FormatYuan(5) == "0.05");
  REQUIRE(FormatYuan(-5) == "-0.05");
  REQUIRE(FormatYuan(0) == "0.00");
  REQUIRE(FormatYuan(INT64_MIN) == "-92233720368547758.08");
  REQUIRE(FormatYuanSign(1250) == "¥12.50");
  REQUIRE(FormatYuanSign(-1250) == "-¥12.50");
}
