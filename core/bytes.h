// Big-endian byte writing and reading for the wire and file formats (docs/protocol.md).
// Pure: no I/O. A Reader never reads past its end; it remembers the first failure instead.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace citycard {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

class ByteWriter {
 public:
  explicit ByteWriter(Bytes* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(v); }
  void U16(uint16_t v) { Big(v, 2); }
  void U32(uint32_t v) { Big(v, 4); }
  void U64(uint64_t v) { Big(v, 8); }
  void I64(int64_t v) { Big(static_cast<uint64_t>(v), 8); }
  void Raw(ByteView v) { out_->insert(out_->end(), v.begin(), v.end()); }
  // A fixed-width text field: the text's bytes, then NUL padding. The caller has checked
  // that text fits (text.size() <= width); a longer text is a programmer error.
  void FixedText(std::string_view text, size_t width);

 private:
  // Into a small array, then appended once: one capacity check per field, not per byte.
  void Big(uint64_t v, int n) {
    uint8_t b[8];
    for (int i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
    out_->insert(out_->end(), b, b + n);
  }
  Bytes* out_;
};

class ByteReader {
 public:
  explicit ByteReader(ByteView in) : in_(in) {}
  uint8_t U8() { return static_cast<uint8_t>(Big(1)); }
  uint16_t U16() { return static_cast<uint16_t>(Big(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Big(4)); }
  uint64_t U64() { return Big(8); }
  int64_t I64() { return static_cast<int64_t>(Big(8)); }
  // Copies n bytes; on underflow returns zeros and marks the reader failed.
  Bytes Raw(size_t n);
  void RawInto(uint8_t* out, size_t n);
  // A fixed-width text field with its NUL padding removed.
  std::string FixedText(size_t width);

  bool ok() const { return ok_; }
  size_t remaining() const { return in_.size() - pos_; }
  size_t position() const { return pos_; }

 private:
  uint64_t Big(int n);
  ByteView in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

std::string ToHex(ByteView bytes);
// Lower- or upper-case hex, no separators; false on odd length or a non-hex character.
bool FromHex(std::string_view hex, Bytes* out);

}  // namespace citycard
