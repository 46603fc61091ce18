#include <catch2/catch.hpp>

#include "crypto/key_wrap.h"

using namespace citycard;
using namespace citycard::crypto;

namespace {
Bytes Hex(std::string_view hex) {
  Bytes out;
  REQUIRE(FromHex(hex, &out));
  return out;
}
const char* const kKek = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
}  // namespace

TEST_CASE("AES key wrap matches the RFC 3394 vectors with a 256-bit KEK", "[crypto][key_wrap]") {
  struct Case {
    const char* key;
    const char* wrapped;
  };
  const Case cases[] = {
      // RFC 3394 4.3: 128 bits of key data with a 256-bit KEK.
      {"00112233445566778899aabbccddeeff", "64e8c3f9ce0f5ba263e9777905818a2a93c8191e7d6e8ae7"},
      // 4.5: 192 bits.
      {"00112233445566778899aabbccddeeff0001020304050607",
       "a8f9bc1612c68b3ff6e6f4fbe30e71e4769c8b80a32cb8958cd5d17d6b254da1"},
      // 4.6: 256 bits.
      {"00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f",
       "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21"},
  };
  for (const Case& c : cases) {
    auto wrapped = WrapKey(Hex(kKek), Hex(c.key));
    REQUIRE(wrapped.ok());
    REQUIRE(ToHex(*wrapped) == c.wrapped);
    auto unwrapped = UnwrapKey(Hex(kKek), Hex(c.wrapped));
    REQUIRE(unwrapped.ok());
    REQUIRE(ToHex(*unwrapped) == c.key);
  }
}

TEST_CASE("A changed byte in a wrapped key is refused with key_unwrap_failed", "[crypto][key_wrap]") {
  Bytes wrapped = *WrapKey(Hex(kKek), Bytes(32, 0x77));
  for (size_t i = 0; i < wrapped.size(); ++i) {
    Bytes bad = wrapped;
    bad[i] ^= 0x01;
    auto result = UnwrapKey(Hex(kKek), bad);
    REQUIRE_FALSE(result.ok());
    REQUIRE(result.status().code() == "key_unwrap_failed");
    REQUIRE(result.status().kind() == Kind::bad_input);
  }
}

TEST_CASE("A key wrapped under another wrapping key does not unwrap", "[crypto][key_wrap]") {
  Bytes wrapped = *WrapKey(Hex(kKek), Bytes(32, 0x77));
  auto result = UnwrapKey(Bytes(32, 0x01), wrapped);
  REQUIRE(result.status().code() == "key_unwrap_failed");
}

TEST_CASE("Key wrap refuses wrong sizes", "[crypto][key_wrap]") {
  REQUIRE(WrapKey(Bytes(16, 0), Bytes(32, 0)).status().code() == "invalid_wrap_key");
  REQUIRE(UnwrapKey(Bytes(31, 0), Bytes(40, 0)).status().code() == "invalid_wrap_key");
  REQUIRE(WrapKey(Hex(kKek), Bytes(8, 0)).status().code() == "invalid_key_length");
  REQUIRE(WrapKey(Hex(kKek), Bytes(20, 0)).status().code() == "invalid_key_length");
  REQUIRE(WrapKey(Hex(kKek), Bytes(72, 0)).status().code() == "invalid_key_length");
  REQUIRE(UnwrapKey(Hex(kKek), Bytes(39, 0)).status().code() == "key_unwrap_failed");
  REQUIRE(UnwrapKey(Hex(kKek), Bytes(16, 0)).status().code() == "key_unwrap_failed");
  REQUIRE(UnwrapKey(Hex(kKek), {}).status().code() == "key_unwrap_failed");
}
