// The keyed tap authenticator (crypto/keyed_tap_authenticator.h) with a real key file.
#include "crypto/keyed_tap_authenticator.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "crypto/card_keys.h"
#include "crypto/key_wrap.h"
#include "crypto/tap_auth.h"

namespace citycard::crypto {
namespace {

struct Keys {
  Keys() {
    char dir[] = "/tmp/citycard-auth-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    path = std::string(dir);
    auto created = KeyFile::Create(path + "/keys");
    REQUIRE(created.ok());
    file.emplace(std::move(*created));
  }
  ~Keys() { std::filesystem::remove_all(path); }
  std::string path;
  std::optional<KeyFile> file;
};

TapRecord Record() {
  TapRecord r;
  r.card_no = 8607550000000012;
  r.card_counter = 3;
  r.balance_before_fen = 500;
  r.amount_fen = 200;
  r.terminal_id = "T1";
  r.terminal_counter = 9;
  r.time_s = 1'709'258'400;
  r.operator_id = "BUS1";
  return r;
}

TEST_CASE("the keyed authenticator verifies TACs under diversified card keys",
          "[crypto][tap_auth]") {
  Keys k;
  KeyedTapAuthenticator auth(*k.file);
  TapRecord r = Record();
  auto master = k.file->CardMasterKey(1);
  REQUIRE(master.ok());
  AesCmac card_key(DeriveCardKey(*master, r.card_no));
  r.tac = ComputeTac(card_key, r);
  CHECK(auth.VerifyTac(r) == TacVerdict::valid);
  CHECK(auth.VerifyTac(r) == TacVerdict::valid);  // from the cache
  TapRecord changed = r;
  changed.balance_before_fen += 1;
  CHECK(auth.VerifyTac(changed) == TacVerdict::mismatch);
  TapRecord version = r;
  version.tac_key_version = 9;
  CHECK(auth.VerifyTac(version) == TacVerdict::unknown_key_version);
  TapRecord torn = r;
  torn.tac = {};
  CHECK(auth.VerifyTac(torn) == TacVerdict::missing);
}

TEST_CASE("the keyed authenticator verifies terminal MACs per key version and refuses revoked ones",
          "[crypto][tap_auth]") {
  Keys k;
  KeyedTapAuthenticator auth(*k.file);
  Bytes key1(32, 0x11);
  Bytes key2(32, 0x22);
  Terminal t;
  t.id = "T1";
  t.keys.push_back(citycard::TerminalKey{1, *WrapKey(k.file->WrapKey(), key1), 0, false});
  t.keys.push_back(citycard::TerminalKey{2, *WrapKey(k.file->WrapKey(), key2), 0, false});
  TapRecord r = Record();
  r.terminal_key_version = 1;
  SignTapRecord(HmacSha256(key1), &r);
  CHECK(auth.VerifyTerminalMac(t, r) == TerminalMacVerdict::valid);
  TapRecord two = Record();
  two.terminal_key_version = 2;
  SignTapRecord(HmacSha256(key2), &two);
  CHECK(auth.VerifyTerminalMac(t, two) == TerminalMacVerdict::valid);
  TapRecord wrong = r;
  wrong.terminal_mac[0] ^= 1;
  CHECK(auth.VerifyTerminalMac(t, wrong) == TerminalMacVerdict::mac_mismatch);
  TapRecord unknown = r;
  unknown.terminal_key_version = 3;
  CHECK(auth.VerifyTerminalMac(t, unknown) == TerminalMacVerdict::unknown_key_version);
  t.keys[0].revoked = true;
  CHECK(auth.VerifyTerminalMac(t, r) == TerminalMacVerdict::key_revoked);
  t.keys[1].wrapped_key[3] ^= 1;  // a damaged wrapped key proves nothing
  CHECK(auth.VerifyTerminalMac(t, two) == TerminalMacVerdict::mac_mismatch);
}

TEST_CASE("the keyed authenticator computes load MACs and checks card proofs",
          "[crypto][tap_auth]") {
  Keys k;
  KeyedTapAuthenticator auth(*k.file);
  auto master = k.file->CardMasterKey(1);
  AesCmac card_key(DeriveCardKey(*master, 8607550000000012));
  LoadFields f{8607550000000012, 3, 500, 1000, "K1", 77};
  LoadMacBytes mac{};
  REQUIRE(auth.LoadAuthorisation(1, f, &mac));
  CHECK(mac == ComputeLoadAuthorisation(card_key, f));
  CHECK_FALSE(auth.LoadAuthorisation(9, f, &mac));
  auto confirmation = ComputeLoadConfirmation(card_key, f, 1500);
  CHECK(auth.VerifyLoadConfirmation(1, f, 1500, confirmation));
  CHECK_FALSE(auth.VerifyLoadConfirmation(1, f, 1501, confirmation));
  Bytes input = {1, 2, 3, 4};
  Mac16 full = card_key.Compute(input);
  CHECK(auth.VerifyCardProof(8607550000000012, 1, input, ByteView(full.data(), 8)));
  full[0] ^= 1;
  CHECK_FALSE(auth.VerifyCardProof(8607550000000012, 1, input, ByteView(full.data(), 8)));
}

}  // namespace
}  // namespace citycard::crypto
