#include <catch2/catch.hpp>

#include "core/load_record.h"

using namespace citycard;

namespace {
LoadFields SampleFields() {
  LoadFields f;
  f.card_no = 6201000000000018;
  f.card_counter = 7;
  f.balance_before_fen = 5000;
  f.amount_fen = 10000;
  f.terminal_id = "KIOSK01";
  f.request_id = 99;
  return f;
}
}  // namespace

TEST_CASE("The load authorisation input has the documented layout", "[core][load]") {
  Bytes in = LoadAuthInput(SampleFields());
  REQUIRE(in.size() == kLoadAuthInputBytes);
  REQUIRE(ToHex(in) ==
          "41"                                  // tag 'A'
          "001607c6d2409012"                    // card_no 6201000000000018
          "00000007"                            // card_counter
          "0000000000001388"                    // balance_before 5000
          "0000000000002710"                    // amount 10000
          "4b494f534b30310000000000000000" "00"  // "KIOSK01" padded to 16
          "0000000000000063");                  // request_id 99
}

TEST_CASE("The load confirmation input is the authorisation fields plus the new balance",
          "[core][load]") {
  Bytes auth = LoadAuthInput(SampleFields());
  Bytes confirm = LoadConfirmInput(SampleFields(), 15000);
  REQUIRE(confirm.size() == kLoadConfirmInputBytes);
  REQUIRE(confirm[0] == kLoadConfirmTag);
  REQUIRE(Bytes(confirm.begin() + 1, confirm.begin() + kLoadAuthInputBytes) ==
          Bytes(auth.begin() + 1, auth.end()));
  REQUIRE(ToHex(ByteView(confirm).last(8)) == "0000000000003a98");
}
