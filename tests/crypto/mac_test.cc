#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "crypto/mac.h"

using namespace citycard;
using namespace citycard::crypto;

namespace {

Bytes Hex(std::string_view hex) {
  Bytes out;
  REQUIRE(FromHex(hex, &out));
  return out;
}

Bytes Text(std::string_view text) { return Bytes(text.begin(), text.end()); }

Bytes Repeat(uint8_t byte, size_t n) { return Bytes(n, byte); }

}  // namespace

TEST_CASE("AES-CMAC matches the four RFC 4493 examples", "[crypto][mac]") {
  AesCmac cmac(Hex("2b7e151628aed2a6abf7158809cf4f3c"));
  const std::string message =
      "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
      "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
  Bytes all = Hex(message);
  REQUIRE(ToHex(cmac.Compute({})) == "bb1d6929e95937287fa37d129b756746");
  REQUIRE(ToHex(cmac.Compute(ByteView(all).first(16))) == "070a16b46b4d4144f79bdd9dd04a287c");
  REQUIRE(ToHex(cmac.Compute(ByteView(all).first(40))) == "dfa66747de9ae63030ca32611497c827");
  REQUIRE(ToHex(cmac.Compute(all)) == "51f0bebf7e3b9d92fc49741779363cfe");
}

TEST_CASE("AES-CMAC gives the same answer when its context is reused", "[crypto][mac]") {
  AesCmac cmac(Hex("2b7e151628aed2a6abf7158809cf4f3c"));
  Bytes m = Hex("6bc1bee22e409f96e93d7e117393172a");
  Mac16 first = cmac.Compute(m);
  for (int i = 0; i < 3; ++i) REQUIRE(cmac.Compute(m) == first);
  AesCmac moved = std::move(cmac);
  REQUIRE(moved.Compute(m) == first);
}

TEST_CASE("HMAC-SHA256 matches the RFC 4231 test cases", "[crypto][mac]") {
  struct Case {
    Bytes key;
    Bytes data;
    std::string mac;
  };
  Bytes key25 = Hex("0102030405060708090a0b0c0d0e0f10111213141516171819");
  const Case cases[] = {
      {Repeat(0x0b, 20), Text("Hi There"),
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {Text("Jefe"), Text("what do ya want for nothing?"),
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {Repeat(0xaa, 20), Repeat(0xdd, 50),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {key25, Repeat(0xcd, 50),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {Repeat(0xaa, 131), Text("Test Using Larger Than Block-Size Key - Hash Key First"),
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {Repeat(0xaa, 131),
       Text("This is a test using a larger than block-size key and a larger than block-size "
            "data. The key needs to be hashed before being used by the HMAC algorithm."),
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (const Case& c : cases) {
    HmacSha256 hmac(c.key);
    REQUIRE(ToHex(hmac.Compute(c.data)) == c.mac);
    REQUIRE(ToHex(hmac.Compute(c.data)) == c.mac);  // the reused context gives the same
  }
}

TEST_CASE("HMAC-SHA256 truncated to 128 bits matches RFC 4231 case 5", "[crypto][mac]") {
  HmacSha256 hmac(Repeat(0x0c, 20));
  Mac32 full = hmac.Compute(Text("Test With Truncation"));
  REQUIRE(ToHex(ByteView(full).first(16)) == "a3b6167473100ee06e0c796c2955552b");
}

TEST_CASE("HMAC-SHA256 accepts an empty key", "[crypto][mac]") {
  HmacSha256 hmac(ByteView{});
  // HMAC-SHA256 with an empty key over an empty message, a widely published value.
  REQUIRE(ToHex(hmac.Compute({})) ==
          "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST_CASE("ConstantTimeEqual compares length and every byte", "[crypto][mac]") {
  Bytes a = Hex("00112233");
  REQUIRE(ConstantTimeEqual(a, Hex("00112233")));
  REQUIRE_FALSE(ConstantTimeEqual(a, Hex("00112234")));
  REQUIRE_FALSE(ConstantTimeEqual(a, Hex("80112233")));
  REQUIRE_FALSE(ConstantTimeEqual(a, Hex("001122")));
  REQUIRE(ConstantTimeEqual(ByteView{}, ByteView{}));
}

TEST_CASE("HKDF-SHA256 matches RFC 5869 test case 1", "[crypto][mac]") {
  Mac32 okm = HkdfSha256(Repeat(0x0b, 22), Hex("000102030405060708090a0b0c"),
                         Hex("f0f1f2f3f4f5f6f7f8f9"));
  // The first 32 of the RFC's 42 output bytes (HKDF output is a prefix-stable stream).
  REQUIRE(ToHex(okm) == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
}

TEST_CASE("HKDF-SHA256 with an empty salt and info matches RFC 5869 test case 3", "[crypto][mac]") {
  Mac32 okm = HkdfSha256(Repeat(0x0b, 22), {}, {});
  REQUIRE(ToHex(okm) == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d");
}

// Not a timed test: a measurement, hidden from normal runs. Run it with
//   build/tests/citycard_crypto_tests "[.bench]" -s
// and note the figures in docs/crypto.md.
TEST_CASE("Measure: MAC rates over 64 bytes", "[crypto][.bench]") {
  constexpr int kIterations = 1'000'000;
  Bytes message(64, 0x5a);
  Bytes key(32, 0x11);
  auto rate = [](int n, auto&& body) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) body(i);
    std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
    return n / seconds.count();
  };
  uint8_t sink = 0;
  HmacSha256 hmac(key);
  double hmac_reused = rate(kIterations, [&](int i) {
    message[0] = static_cast<uint8_t>(i);
    sink ^= hmac.Compute(message)[0];
  });
  double hmac_fresh = rate(kIterations / 10, [&](int i) {
    message[0] = static_cast<uint8_t>(i);
    sink ^= HmacSha256(key).Compute(message)[0];
  });
  AesCmac cmac(ByteView(key).first(16));
  double cmac_reused = rate(kIterations, [&](int i) {
    message[0] = static_cast<uint8_t>(i);
    sink ^= cmac.Compute(message)[0];
  });
  WARN("HMAC-SHA256 64 B, reused context: " << hmac_reused / 1e6 << " M/s ("
       << 1e9 / hmac_reused << " ns)");
  WARN("HMAC-SHA256 64 B, new keyed object per MAC: " << hmac_fresh / 1e6 << " M/s ("
       << 1e9 / hmac_fresh << " ns)");
  WARN("AES-128-CMAC 64 B, reused context: " << cmac_reused / 1e6 << " M/s ("
       << 1e9 / cmac_reused << " ns)");
  REQUIRE(sink == sink);
}
