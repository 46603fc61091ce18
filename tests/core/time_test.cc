#include <catch2/catch.hpp>

#include "core/time.h"

using namespace citycard;

TEST_CASE("Local times are read and written in Asia/Shanghai", "[core][time]") {
  auto t = ParseLocalTime("2018-08-31 22:14:50");
  REQUIRE(t.ok());
  REQUIRE(*t == 1535724890);  // 2018-08-31T14:14:50Z
  REQUIRE(FormatLocalTime(*t) == "2018-08-31 22:14:50");
  REQUIRE(FormatLocalTime(0) == "1970-01-01 08:00:00");
}

TEST_CASE("Impossible times and dates are refused", "[core][time]") {
  REQUIRE(ParseLocalTime("2018-02-29 00:00:00").status().code() == "invalid_time");
  REQUIRE_FALSE(ParseLocalTime("2018-08-31 24:00:00").ok());
  REQUIRE_FALSE(ParseLocalTime("2018-08-31T22:14:50").ok());
  REQUIRE(ParseDay("2018-13-01").status().code() == "invalid_date");
  REQUIRE(*ParseDay("2020-02-29") == DaysFromCivil(2020, 2, 29));
}

TEST_CASE("The clearing day of a tap follows local midnight and the cut-off", "[core][time]") {
  int64_t day = *ParseDay("2018-08-31");
  REQUIRE(ClearingDay(*ParseLocalTime("2018-08-31 23:59:59")) == day);
  REQUIRE(ClearingDay(*ParseLocalTime("2018-09-01 00:00:00")) == day + 1);
  REQUIRE(ClearingDay(*ParseLocalTime("2018-09-01 01:59:59"), 2 * 3600) == day);
  REQUIRE(ClearingDayStart(day) == *ParseLocalTime("2018-08-31 00:00:00"));
  REQUIRE(FormatDay(day) == "2018-08-31");
}
