#include <catch2/catch.hpp>

#include <string>

#include "terminals/crc32.h"

using citycard::ByteView;
using citycard::terminals::Crc32;

TEST_CASE("CRC-32 gives the standard check value", "[terminals][crc]") {
  std::string text = "123456789";
  ByteView bytes(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  REQUIRE(Crc32(bytes) == 0xCBF43926u);
  REQUIRE(Crc32(bytes.subspan(4), Crc32(bytes.first(4))) == 0xCBF43926u);
  REQUIRE(Crc32(ByteView()) == 0u);
}
