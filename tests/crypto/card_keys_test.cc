#include <catch2/catch.hpp>

#include <chrono>

#include "crypto/card_keys.h"

using namespace citycard;
using namespace citycard::crypto;

namespace {
Bytes Hex(std::string_view hex) {
  Bytes out;
  REQUIRE(FromHex(hex, &out));
  return out;
}
const char* const kMaster = "00112233445566778899aabbccddeeff";
}  // namespace

TEST_CASE("AN10922 AES-128 diversification matches the published example", "[crypto][card_keys]") {
  // UID 04782E21801D80, AID 3042F5, system identifier 4E585020416275 ("NXP Abu").
  Bytes m = Hex("04782E21801D803042F54E585020416275");
  REQUIRE(ToHex(DiversifyAn10922(Hex(kMaster), m)) == "a8dd63a3b89d54b37ca802473fda9175");
}

TEST_CASE("AN10922 diversification of a full 31-byte input uses no padding and equals a plain CMAC",
          "[crypto][card_keys]") {
  Bytes m(31, 0x5a);
  Bytes d = {0x01};
  d.insert(d.end(), m.begin(), m.end());
  AesCmac cmac(Hex(kMaster));
  REQUIRE(DiversifyAn10922(Hex(kMaster), m) == cmac.Compute(d));
}

TEST_CASE("AN10922 diversification equals a plain CMAC only when 0x01 || M exceeds one block",
          "[crypto][card_keys]") {
  AesCmac cmac(Hex(kMaster));
  for (size_t n = kDiversificationInputBytesMin; n <= kDiversificationInputBytesMax; ++n) {
    Bytes m(n, 0x33);
    Bytes d = {0x01};
    d.insert(d.end(), m.begin(), m.end());
    // A plain CMAC pads a message of one block or less to one block only; AN10922 always
    // pads to two blocks, so the two agree exactly when 0x01 || M is 17 to 32 bytes long.
    bool same = DiversifyAn10922(Hex(kMaster), m) == cmac.Compute(d);
    REQUIRE(same == (d.size() > 16));
  }
}

TEST_CASE("Card keys differ per card number and per master key", "[crypto][card_keys]") {
  Bytes master = Hex(kMaster);
  Mac16 a = DeriveCardKey(master, 6201000000000018);
  Mac16 b = DeriveCardKey(master, 6201000000000026);
  REQUIRE(a != b);
  REQUIRE(DeriveCardKey(master, 6201000000000018) == a);
  REQUIRE(DeriveCardKey(Hex("ffeeddccbbaa99887766554433221100"), 6201000000000018) != a);
}

TEST_CASE("A card key is the AN10922 diversification of the documented input",
          "[crypto][card_keys]") {
  // docs/crypto.md "Card keys": card number big-endian, then CC0101, then "CITYCRD".
  Bytes input = Hex("001607c6d2409012" "cc0101" "43495459435244");
  REQUIRE(DeriveCardKey(Hex(kMaster), 6201000000000018) == DiversifyAn10922(Hex(kMaster), input));
}

// A measurement, hidden from normal runs: citycard_crypto_tests "[.bench]" -s
TEST_CASE("Measure: card key derivation rate", "[crypto][.bench]") {
  constexpr int kIterations = 200'000;
  Bytes master = Hex(kMaster);
  uint8_t sink = 0;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kIterations; ++i) sink ^= DeriveCardKey(master, 6201000000000000 + i)[0];
  std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
  WARN("DeriveCardKey: " << kIterations / seconds.count() / 1e6 << " M/s");
  REQUIRE(sink == sink);
}
