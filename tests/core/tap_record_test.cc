#include <catch2/catch.hpp>

#include "core/tap_record.h"

using namespace citycard;

namespace {
TapRecord SampleRecord() {
  TapRecord r;
  r.type = TapType::metro_exit;
  r.profile = Profile::student;
  r.card_no = 6201000000000018;
  r.card_counter = 7;
  r.balance_before_fen = 5000;
  r.amount_fen = 665;
  r.terminal_id = "263031101";
  r.terminal_counter = 42;
  r.time_s = 1535724890;
  r.operator_id = "szmetro5";
  r.route_code = 5;
  r.station_code = 101;
  r.fare_version = 3;
  r.full_fare_fen = 700;
  r.concession_fen = 35;
  for (size_t i = 0; i < r.tac.size(); ++i) r.tac[i] = static_cast<uint8_t>(i + 1);
  for (size_t i = 0; i < r.terminal_mac.size(); ++i) r.terminal_mac[i] = static_cast<uint8_t>(0xa0 + i);
  return r;
}
}  // namespace

TEST_CASE("A tap record survives encoding and decoding unchanged", "[core][tap]") {
  TapRecord r = SampleRecord();
  Bytes bytes = EncodeTapRecord(r);
  REQUIRE(bytes.size() == kTapRecordBytes);
  auto back = DecodeTapRecord(bytes);
  REQUIRE(back.ok());
  REQUIRE(*back == r);
}

TEST_CASE("The TAC input and MAC input are prefixes of fixed size", "[core][tap]") {
  TapRecord r = SampleRecord();
  REQUIRE(TacInput(r).size() == kTacInputBytes);
  Bytes mac_input = TerminalMacInput(r);
  Bytes full = EncodeTapRecord(r);
  REQUIRE(mac_input.size() == kTapMacInputBytes);
  REQUIRE(std::equal(mac_input.begin(), mac_input.end(), full.begin()));
  // The TAC input starts with the card number, big-endian.
  REQUIRE(ToHex(ByteView(TacInput(r)).first(8)) == "001607c6d2409012");
}

TEST_CASE("A record of the wrong size or with an unknown type is refused", "[core][tap]") {
  Bytes bytes = EncodeTapRecord(SampleRecord());
  REQUIRE(DecodeTapRecord(ByteView(bytes).first(100)).status().code() == "invalid_tap_record");
  bytes[1] = 99;
  REQUIRE(DecodeTapRecord(bytes).status().code() == "invalid_tap_record");
}

TEST_CASE("Validation refuses identifiers that are empty, too long or not ASCII", "[core][tap]") {
  TapRecord r = SampleRecord();
  r.terminal_id = "";
  REQUIRE_FALSE(ValidateTapRecord(r).ok());
  r.terminal_id = "12345678901234567";
  REQUIRE_FALSE(ValidateTapRecord(r).ok());
  r.terminal_id = "站";
  REQUIRE_FALSE(ValidateTapRecord(r).ok());
  r = SampleRecord();
  r.amount_fen = -1;
  REQUIRE_FALSE(ValidateTapRecord(r).ok());
}

TEST_CASE("A record whose text padding is not all NUL is refused", "[core][tap]") {
  Bytes bytes = EncodeTapRecord(SampleRecord());
  // The terminal id "263031101" is 9 bytes at offset 38; its padding follows.
  bytes[6 + 8 + 4 + 8 + 8 + 12] = 'x';
  auto decoded = DecodeTapRecord(bytes);
  REQUIRE_FALSE(decoded.ok());
  REQUIRE(decoded.status().code() == "invalid_tap_record");
}
