#include <catch2/catch.hpp>

#include "crypto/national_id_hash.h"

using namespace citycard;
using namespace citycard::crypto;

namespace {
Bytes Key() {
  Bytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i);
  return key;
}
}  // namespace

TEST_CASE("A national id hashes to the hex HMAC-SHA256 of its characters", "[crypto][national_id]") {
  // Computed independently (Python's hmac module) for key 00..1f.
  REQUIRE(HashNationalId(Key(), "11010519491231002X") ==
          "a66755453b106dcea0cfa264214ae59ff1e8b067f3e5f3aa8085e1d8757880eb");
}

TEST_CASE("National id hashes depend on the key and on every character", "[crypto][national_id]") {
  std::string h = HashNationalId(Key(), "11010519491231002X");
  REQUIRE(h.size() == 64);
  REQUIRE(HashNationalId(Key(), "11010519491231002X") == h);
  REQUIRE(HashNationalId(Key(), "110105194912310021") != h);
  REQUIRE(HashNationalId(Bytes(32, 0xee), "11010519491231002X") != h);
}
