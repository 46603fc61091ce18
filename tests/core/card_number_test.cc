#include <catch2/catch.hpp>

#include "core/card_number.h"

using namespace citycard;

TEST_CASE("The Luhn check digit matches the ISO 7812 example", "[core][card_number]") {
  REQUIRE(LuhnCheckDigit("7992739871") == '3');
  REQUIRE(LuhnCheckDigit("860755000000001") == '2');
}

TEST_CASE("Card numbers are the prefix, the padded sequence and a check digit",
          "[core][card_number]") {
  REQUIRE(MakeCardNumber(1) == "8607550000000012");
  REQUIRE(MakeCardNumber(42) == "8607550000000426");
  REQUIRE(MakeCardNumber(kCardSequenceMax).size() == kCardNumberLength);
  REQUIRE(ValidateCardNumber(MakeCardNumber(kCardSequenceMax)).ok());
}

TEST_CASE("A well-formed card number passes validation", "[core][card_number]") {
  REQUIRE(ValidateCardNumber("8607550000000012").ok());
}

TEST_CASE("A mistyped card number is refused as invalid_card_no", "[core][card_number]") {
  for (const char* bad : {"8607550000000013",    // wrong check digit
                          "8607550000000102",    // two digits swapped
                          "860755000000001",     // 15 digits
                          "86075500000000120",   // 17 digits
                          "860755000000001a", "", "-607550000000012"}) {
    INFO(bad);
    Status s = ValidateCardNumber(bad);
    REQUIRE(s.code() == "invalid_card_no");
    REQUIRE(s.exit_code() == 5);
  }
}

TEST_CASE("Card numbers convert to the tap record's integer and back", "[core][card_number]") {
  REQUIRE(CardNumberToInt("8607550000000012") == 8607550000000012ULL);
  REQUIRE(CardNumberFromInt(8607550000000012ULL) == "8607550000000012");
  REQUIRE(CardNumberFromInt(12) == "0000000000000012");
}
