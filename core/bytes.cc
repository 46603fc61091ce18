#include "core/bytes.h"

#include "core/status.h"

namespace citycard {

void ByteWriter::FixedText(std::string_view text, size_t width) {
  CITYCARD_ASSERT(text.size() <= width);
  out_->insert(out_->end(), text.begin(), text.end());
  out_->insert(out_->end(), width - text.size(), 0);
}

uint64_t ByteReader::Big(int n) {
  if (!ok_ || remaining() < static_cast<size_t>(n)) {
    ok_ = false;
    return 0;
  }
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | in_[pos_++];
  return v;
}

Bytes ByteReader::Raw(size_t n) {
  Bytes out(n, 0);
  RawInto(out.data(), n);
  return out;
}

void ByteReader::RawInto(uint8_t* out, size_t n) {
  // Nothing to copy. Returning here also keeps a null `out` (the data() of an empty vector,
  // as Raw(0) passes) away from memset and memcpy, for which null is undefined behaviour
  // even with a length of 0 (found by the messages fuzz target, docs/fuzzing.md).
  if (n == 0) return;
  if (!ok_ || remaining() < n) {
    ok_ = false;
    std::memset(out, 0, n);
    return;
  }
  std::memcpy(out, in_.data() + pos_, n);
  pos_ += n;
}

std::string ByteReader::FixedText(size_t width) {
  Bytes raw = Raw(width);
  size_t len = 0;
  while (len < raw.size() && raw[len] != 0) ++len;
  return std::string(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(len));
}

std::string ToHex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

bool FromHex(std::string_view hex, Bytes* out) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return true;
}

}  // namespace citycard
