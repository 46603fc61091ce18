#include <catch2/catch.hpp>

#include "core/national_id.h"

using citycard::MaskNationalId;
using citycard::NationalIdCheckChar;
using citycard::NormalizeNationalId;

TEST_CASE("The MOD 11-2 check character matches the standard's examples", "[core][national_id]") {
  REQUIRE(NationalIdCheckChar("11010519491231002") == 'X');
  REQUIRE(NationalIdCheckChar("32128119900101123") == '4');
  REQUIRE(NationalIdCheckChar("44052419800101001") == '3');
}

TEST_CASE("A valid national id is accepted and a lower-case x is upper-cased",
          "[core][national_id]") {
  REQUIRE(*NormalizeNationalId("321281199001011234") == "321281199001011234");
  REQUIRE(*NormalizeNationalId("11010519491231002X") == "11010519491231002X");
  REQUIRE(*NormalizeNationalId("11010519491231002x") == "11010519491231002X");
}

TEST_CASE("A national id with a wrong shape, date or check character is refused",
          "[core][national_id]") {
  for (const char* bad : {
           "321281199001011235",   // wrong check digit
           "32128119900101123",    // 17 characters
           "3212811990010112345",  // 19 characters
           "32128119900101123X",   // X where 4 belongs
           "3212811990010112a4",   // a letter inside
           "321281199002301234",   // 30 February
           "321281189001011234",   // born 1890
           "",
       }) {
    INFO(bad);
    auto r = NormalizeNationalId(bad);
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.status().code() == "invalid_national_id");
    REQUIRE(r.status().exit_code() == 5);
    // The id itself never appears in the message: it is personal data.
    if (*bad) REQUIRE(r.status().message().find(bad) == std::string::npos);
  }
}

TEST_CASE("A masked id keeps four characters at each end", "[core][national_id]") {
  REQUIRE(MaskNationalId("321281199001011234") == "3212**********1234");
  REQUIRE(MaskNationalId("11010519491231002X") == "1101**********002X");
}
