#include <catch2/catch.hpp>

#include "crypto/card_keys.h"
#include "crypto/tap_auth.h"

using namespace citycard;
using namespace citycard::crypto;

namespace {

// Used for file-level constants too, so it cannot use REQUIRE (no test is running yet).
Bytes Hex(std::string_view hex) {
  Bytes out;
  CITYCARD_ASSERT(FromHex(hex, &out));
  return out;
}

const Bytes kMaster = Hex("00112233445566778899aabbccddeeff");
const Bytes kTerminalKey =
    Hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");

TapRecord SampleRecord() {
  TapRecord r;
  r.type = TapType::purchase;
  r.profile = Profile::adult;
  r.card_no = 6201000000000018;
  r.card_counter = 7;
  r.balance_before_fen = 5000;
  r.amount_fen = 200;
  r.terminal_id = "BUS00042";
  r.terminal_counter = 42;
  r.time_s = 1535724890;
  r.operator_id = "szbus";
  r.route_code = 5;
  r.fare_version = 3;
  r.full_fare_fen = 200;
  return r;
}

TapRecord SignedRecord(const AesCmac& card_key, const HmacSha256& terminal_key) {
  TapRecord r = SampleRecord();
  r.tac = ComputeTac(card_key, r);
  SignTapRecord(terminal_key, &r);
  return r;
}

}  // namespace

TEST_CASE("The TAC is the truncated AES-CMAC of the TAC input under the card key",
          "[crypto][tap_auth]") {
  AesCmac card_key(DeriveCardKey(kMaster, 6201000000000018));
  TapRecord r = SampleRecord();
  Mac16 full = card_key.Compute(TacInput(r));
  Tac tac = ComputeTac(card_key, r);
  REQUIRE(std::equal(tac.begin(), tac.end(), full.begin()));
  r.tac = tac;
  REQUIRE(VerifyTac(card_key, r));
}

TEST_CASE("The terminal MAC is the truncated HMAC-SHA256 of the MAC input", "[crypto][tap_auth]") {
  HmacSha256 terminal_key(kTerminalKey);
  TapRecord r = SampleRecord();
  SignTapRecord(terminal_key, &r);
  Mac32 full = terminal_key.Compute(TerminalMacInput(r));
  REQUIRE(std::equal(r.terminal_mac.begin(), r.terminal_mac.end(), full.begin()));
  REQUIRE(VerifyTerminalMac(terminal_key, r));
}

TEST_CASE("A flipped bit anywhere in an encoded tap fails its terminal MAC", "[crypto][tap_auth]") {
  AesCmac card_key(DeriveCardKey(kMaster, 6201000000000018));
  HmacSha256 terminal_key(kTerminalKey);
  Bytes good = EncodeTapRecord(SignedRecord(card_key, terminal_key));
  REQUIRE(good.size() == kTapRecordBytes);
  REQUIRE(VerifyTerminalMacBytes(terminal_key, good));
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bad = good;
      bad[i] ^= static_cast<uint8_t>(1u << bit);
      REQUIRE_FALSE(VerifyTerminalMacBytes(terminal_key, bad));
    }
  }
  REQUIRE_FALSE(VerifyTerminalMacBytes(terminal_key, ByteView(good).first(kTapRecordBytes - 1)));
}

TEST_CASE("A flipped bit in any field of a decoded tap fails its TAC or terminal MAC",
          "[crypto][tap_auth]") {
  AesCmac card_key(DeriveCardKey(kMaster, 6201000000000018));
  HmacSha256 terminal_key(kTerminalKey);
  TapRecord good = SignedRecord(card_key, terminal_key);
  Bytes encoded = EncodeTapRecord(good);
  size_t tac_failures = 0, checked = 0;
  for (size_t i = 0; i < encoded.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bad = encoded;
      bad[i] ^= static_cast<uint8_t>(1u << bit);
      auto decoded = DecodeTapRecord(bad);
      // Refused before any MAC is checked, or (text padding after a NUL) decoded to the very
      // same record: see VerifyTerminalMacBytes for the check that covers those bytes.
      if (!decoded.ok() || *decoded == good) continue;
      ++checked;
      REQUIRE_FALSE(VerifyTerminalMac(terminal_key, *decoded));
      if (!VerifyTac(card_key, *decoded)) ++tac_failures;
    }
  }
  // Of the 1,104 single-bit changes, 909 decode to a different record and every one fails the
  // terminal MAC; the 431 among them that touch a TAC-covered field fail the TAC too (the
  // others are refused by the decoder, or are flips in the terminal id's padding).
  REQUIRE(checked == 909);
  REQUIRE(tac_failures == 431);
}

TEST_CASE("A flipped bit in any TAC-covered byte fails the TAC itself", "[crypto][tap_auth]") {
  AesCmac card_key(DeriveCardKey(kMaster, 6201000000000018));
  TapRecord r = SampleRecord();
  r.tac = ComputeTac(card_key, r);
  Bytes input = TacInput(r);
  for (size_t i = 0; i < input.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bad = input;
      bad[i] ^= static_cast<uint8_t>(1u << bit);
      Mac16 mac = card_key.Compute(bad);
      REQUIRE_FALSE(ConstantTimeEqual(ByteView(mac).first(kTacBytes), r.tac));
    }
  }
  for (size_t i = 0; i < r.tac.size(); ++i) {
    TapRecord bad = r;
    bad.tac[i] ^= 0x80;
    REQUIRE_FALSE(VerifyTac(card_key, bad));
  }
}

TEST_CASE("A TAC made with another card's key fails verification", "[crypto][tap_auth]") {
  AesCmac card_key(DeriveCardKey(kMaster, 6201000000000018));
  AesCmac other_key(DeriveCardKey(kMaster, 6201000000000026));
  TapRecord r = SampleRecord();
  r.tac = ComputeTac(other_key, r);
  REQUIRE_FALSE(VerifyTac(card_key, r));
  r.tac = ComputeTac(card_key, r);
  REQUIRE(VerifyTac(card_key, r));
}

TEST_CASE("A terminal MAC made with another terminal's key fails verification",
          "[crypto][tap_auth]") {
  HmacSha256 terminal_key(kTerminalKey);
  HmacSha256 other_key(Bytes(32, 0x42));
  TapRecord r = SampleRecord();
  SignTapRecord(other_key, &r);
  REQUIRE_FALSE(VerifyTerminalMac(terminal_key, r));
}

TEST_CASE("Load authorisations and confirmations verify and refuse any other field value",
          "[crypto][tap_auth]") {
  AesCmac card_key(DeriveCardKey(kMaster, 6201000000000018));
  LoadFields f;
  f.card_no = 6201000000000018;
  f.card_counter = 7;
  f.balance_before_fen = 5000;
  f.amount_fen = 10000;
  f.terminal_id = "KIOSK01";
  f.request_id = 99;
  LoadMac auth = ComputeLoadAuthorisation(card_key, f);
  LoadMac confirm = ComputeLoadConfirmation(card_key, f, 15000);
  REQUIRE(VerifyLoadAuthorisation(card_key, f, auth));
  REQUIRE(VerifyLoadConfirmation(card_key, f, 15000, confirm));
  // The two MACs differ even over the same fields (different tags), so neither stands in for
  // the other.
  REQUIRE(auth != confirm);
  REQUIRE_FALSE(VerifyLoadConfirmation(card_key, f, 15001, confirm));
  LoadFields changed = f;
  changed.amount_fen = 10001;
  REQUIRE_FALSE(VerifyLoadAuthorisation(card_key, changed, auth));
  changed = f;
  changed.card_counter = 8;
  REQUIRE_FALSE(VerifyLoadAuthorisation(card_key, changed, auth));
  changed = f;
  changed.request_id = 100;
  REQUIRE_FALSE(VerifyLoadAuthorisation(card_key, changed, auth));
  AesCmac other_key(DeriveCardKey(kMaster, 6201000000000026));
  REQUIRE_FALSE(VerifyLoadAuthorisation(other_key, f, auth));
  REQUIRE_FALSE(VerifyLoadAuthorisation(card_key, f, ByteView(auth).first(7)));
}

TEST_CASE("The worked examples of docs/crypto.md hold", "[crypto][tap_auth]") {
  // Cross-checked with an independent AES-CMAC and HMAC implementation (Python).
  Mac16 card_key_bytes = DeriveCardKey(kMaster, 6201000000000018);
  REQUIRE(ToHex(card_key_bytes) == "fe458c967f442e5936b3a08cad9821ef");
  AesCmac card_key(card_key_bytes);
  HmacSha256 terminal_key(kTerminalKey);
  TapRecord r = SampleRecord();
  r.time_s = 1709258400;
  r.tac = ComputeTac(card_key, r);
  REQUIRE(ToHex(r.tac) == "1cbef905951f0dd5");
  SignTapRecord(terminal_key, &r);
  REQUIRE(ToHex(r.terminal_mac) == "5949b489a95ff98c70b395a732dae256");
  LoadFields f;
  f.card_no = 6201000000000018;
  f.card_counter = 8;
  f.balance_before_fen = 4800;
  f.amount_fen = 10000;
  f.terminal_id = "KIOSK01";
  f.request_id = 99;
  REQUIRE(ToHex(ComputeLoadAuthorisation(card_key, f)) == "c3a211b4086d937a");
  REQUIRE(ToHex(ComputeLoadConfirmation(card_key, f, 14800)) == "f1e19e42c6b46928");
}
