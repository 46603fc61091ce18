#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "crypto/signer.h"

using namespace citycard;
using namespace citycard::crypto;

namespace {

Bytes Hex(std::string_view hex) {
  Bytes out;
  REQUIRE(FromHex(hex, &out));
  return out;
}

struct Rfc8032Case {
  const char* secret;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 section 7.1, tests 1, 2 and 3.
const Rfc8032Case kCases[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

}  // namespace

TEST_CASE("Ed25519 matches RFC 8032 tests 1 to 3", "[crypto][signer]") {
  for (const Rfc8032Case& c : kCases) {
    auto signer = Ed25519Signer::FromPrivateKey(Hex(c.secret));
    REQUIRE(signer.ok());
    REQUIRE(ToHex(signer->PublicKey()) == c.public_key);
    REQUIRE(ToHex(signer->PrivateKey()) == c.secret);
    Bytes message = Hex(c.message);
    REQUIRE(ToHex(signer->Sign(message)) == c.signature);
    REQUIRE(VerifyEd25519(Hex(c.public_key), message, Hex(c.signature)));
  }
}

TEST_CASE("An Ed25519 signature fails for another message, key or a flipped bit",
          "[crypto][signer]") {
  Ed25519Signer signer = Ed25519Signer::Generate();
  Bytes message = Hex("0102030405");
  Ed25519Signature signature = signer.Sign(message);
  Ed25519PublicKey public_key = signer.PublicKey();
  REQUIRE(VerifyEd25519(public_key, message, signature));
  REQUIRE_FALSE(VerifyEd25519(public_key, Hex("0102030406"), signature));
  REQUIRE_FALSE(VerifyEd25519(Ed25519Signer::Generate().PublicKey(), message, signature));
  for (size_t i = 0; i < signature.size(); ++i) {
    Ed25519Signature bad = signature;
    bad[i] ^= 0x01;
    REQUIRE_FALSE(VerifyEd25519(public_key, message, bad));
  }
}

TEST_CASE("Ed25519 verification refuses wrong sizes instead of failing", "[crypto][signer]") {
  Ed25519Signer signer = Ed25519Signer::Generate();
  Bytes message = Hex("00");
  Ed25519Signature signature = signer.Sign(message);
  Ed25519PublicKey public_key = signer.PublicKey();
  REQUIRE_FALSE(VerifyEd25519(ByteView(public_key).first(31), message, signature));
  REQUIRE_FALSE(VerifyEd25519(public_key, message, ByteView(signature).first(63)));
}

TEST_CASE("An Ed25519 private key of the wrong size is refused", "[crypto][signer]") {
  auto signer = Ed25519Signer::FromPrivateKey(Hex("0011"));
  REQUIRE_FALSE(signer.ok());
  REQUIRE(signer.status().code() == "invalid_ed25519_key");
  REQUIRE(signer.status().kind() == Kind::bad_input);
}

TEST_CASE("A generated Ed25519 key round-trips through its private key", "[crypto][signer]") {
  Ed25519Signer signer = Ed25519Signer::Generate();
  auto again = Ed25519Signer::FromPrivateKey(signer.PrivateKey());
  REQUIRE(again.ok());
  REQUIRE(again->PublicKey() == signer.PublicKey());
  Ed25519Signer moved = std::move(signer);
  REQUIRE(moved.PublicKey() == again->PublicKey());
}

// A measurement, hidden from normal runs: citycard_crypto_tests "[.bench]" -s
TEST_CASE("Measure: Ed25519 sign and verify rates", "[crypto][.bench]") {
  constexpr int kIterations = 5'000;
  Ed25519Signer signer = Ed25519Signer::Generate();
  Ed25519PublicKey public_key = signer.PublicKey();
  Bytes message(64, 0x5a);
  Ed25519Signature signature{};
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kIterations; ++i) signature = signer.Sign(message);
  std::chrono::duration<double> sign_s = std::chrono::steady_clock::now() - start;
  start = std::chrono::steady_clock::now();
  int valid = 0;
  for (int i = 0; i < kIterations; ++i) valid += VerifyEd25519(public_key, message, signature);
  std::chrono::duration<double> verify_s = std::chrono::steady_clock::now() - start;
  WARN("Ed25519 sign: " << kIterations / sign_s.count() / 1e3 << " k/s; verify: "
       << kIterations / verify_s.count() / 1e3 << " k/s");
  REQUIRE(valid == kIterations);
}
