#include "core/bytes.h"

#include <catch2/catch.hpp>

using namespace citycard;

TEST_CASE("a byte reader reads big-endian numbers and raw bytes in order", "[core][bytes]") {
  const Bytes in = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
  ByteReader reader(in);
  CHECK(reader.U16() == 0x0102);
  CHECK(reader.Raw(2) == Bytes{0x03, 0x04});
  CHECK(reader.U8() == 0x05);
  CHECK(reader.remaining() == 2);
  CHECK(reader.ok());
}

TEST_CASE("a byte reader that runs past its end returns zeros and stays failed", "[core][bytes]") {
  const Bytes in = {0xAA, 0xBB};
  ByteReader reader(in);
  CHECK(reader.U32() == 0);
  CHECK_FALSE(reader.ok());
  CHECK(reader.Raw(1) == Bytes{0x00});
  CHECK(reader.U8() == 0);
  CHECK_FALSE(reader.ok());
}

// Regression (found by tests/fuzz/messages_fuzz.cc): Raw(0) handed the null data() of an
// empty vector to memcpy, which is undefined behaviour even for 0 bytes; the sanitizer build
// (tools/run.sh sanitize) reports it.
TEST_CASE("a byte reader reads zero bytes at the end, in the middle and of an empty input", "[core][bytes]") {
  const Bytes in = {0x01};
  ByteReader reader(in);
  CHECK(reader.Raw(0).empty());
  CHECK(reader.U8() == 0x01);
  CHECK(reader.Raw(0).empty());
  CHECK(reader.ok());
  CHECK(reader.remaining() == 0);

  ByteReader empty{ByteView()};
  CHECK(empty.Raw(0).empty());
  empty.RawInto(nullptr, 0);
  CHECK(empty.ok());
  CHECK(empty.Raw(1) == Bytes{0x00});
  CHECK_FALSE(empty.ok());
  CHECK(empty.Raw(0).empty());
}
