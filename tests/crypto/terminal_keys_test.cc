#include <catch2/catch.hpp>

#include "crypto/tap_auth.h"
#include "crypto/terminal_keys.h"

using namespace citycard;
using namespace citycard::crypto;

namespace {
TapRecord SignedWith(ByteView key, uint8_t version) {
  TapRecord r;
  r.card_no = 6201000000000018;
  r.terminal_id = "BUS00042";
  r.operator_id = "szbus";
  r.terminal_counter = 9;
  r.terminal_key_version = version;
  SignTapRecord(HmacSha256(key), &r);
  return r;
}
}  // namespace

TEST_CASE("A rotated terminal key still verifies what the old version signed until revoked",
          "[crypto][terminal_keys]") {
  Bytes v1 = GenerateTerminalKey();
  Bytes v2 = GenerateTerminalKey();
  REQUIRE(v1.size() == kTerminalKeyBytes);
  REQUIRE(v1 != v2);
  TerminalKeyRing ring;
  REQUIRE(ring.Add(1, v1).ok());
  TapRecord old_record = SignedWith(v1, 1);
  REQUIRE(ring.Check(old_record) == TerminalMacCheck::valid);

  REQUIRE(ring.Add(2, v2).ok());  // rotation
  TapRecord new_record = SignedWith(v2, 2);
  REQUIRE(ring.Check(new_record) == TerminalMacCheck::valid);
  REQUIRE(ring.Check(old_record) == TerminalMacCheck::valid);

  REQUIRE(ring.Revoke(1).ok());
  REQUIRE(ring.Check(old_record) == TerminalMacCheck::key_revoked);
  REQUIRE(ring.Check(new_record) == TerminalMacCheck::valid);
  REQUIRE(ring.Find(1) == nullptr);
  REQUIRE(ring.Find(2) != nullptr);
}

TEST_CASE("A MAC under a key version the terminal never had, or a wrong MAC, is refused",
          "[crypto][terminal_keys]") {
  Bytes v1 = GenerateTerminalKey();
  TerminalKeyRing ring;
  REQUIRE(ring.Add(1, v1).ok());
  REQUIRE(ring.Check(SignedWith(v1, 3)) == TerminalMacCheck::unknown_key_version);
  // Signed with version 2's key but claiming version 1.
  REQUIRE(ring.Check(SignedWith(GenerateTerminalKey(), 1)) == TerminalMacCheck::mac_mismatch);
  REQUIRE(TerminalMacCheckName(TerminalMacCheck::mac_mismatch) == "mac_mismatch");
  REQUIRE(TerminalMacCheckName(TerminalMacCheck::key_revoked) == "key_revoked");
  REQUIRE(TerminalMacCheckName(TerminalMacCheck::unknown_key_version) == "unknown_key_version");
  REQUIRE(TerminalMacCheckName(TerminalMacCheck::valid) == "valid");
}

TEST_CASE("A terminal key ring refuses a wrong-size key, a reused version and an unknown revoke",
          "[crypto][terminal_keys]") {
  TerminalKeyRing ring;
  REQUIRE(ring.Add(1, Bytes(16, 1)).code() == "invalid_terminal_key");
  REQUIRE(ring.Add(1, Bytes(32, 1)).ok());
  Status again = ring.Add(1, Bytes(32, 2));
  REQUIRE(again.code() == "terminal_key_version_exists");
  REQUIRE(again.kind() == Kind::refused);
  Status revoke = ring.Revoke(9);
  REQUIRE(revoke.code() == "terminal_key_version_unknown");
  REQUIRE(revoke.kind() == Kind::not_found);
}
