#include "terminals/frame_codec.h"

#include <algorithm>

#include "core/status.h"
#include "terminals/crc32.h"

namespace citycard::terminals {

namespace {

uint32_t ReadU32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | static_cast<uint32_t>(p[3]);
}

// Compacting moves the unconsumed bytes to the front; doing it only when the consumed part
// is large keeps the cost per byte constant.
constexpr size_t kCompactBytesMin = 4096;

}  // namespace

void AppendFrame(uint8_t type, ByteView payload, Bytes* out, uint8_t version) {
  CITYCARD_ASSERT(payload.size() <= kFramePayloadBytesMax);
  size_t start = out->size();
  ByteWriter w(out);
  w.U8(kFrameMagic0);
  w.U8(kFrameMagic1);
  w.U8(version);
  w.U8(type);
  w.U32(static_cast<uint32_t>(payload.size()));
  w.U32(Crc32(ByteView(out->data() + start, 8)));
  w.Raw(payload);
  w.U32(Crc32(ByteView(out->data() + start, kFrameHeaderBytes + payload.size())));
}

Bytes EncodeFrame(uint8_t type, ByteView payload, uint8_t version) {
  Bytes out;
  out.reserve(kFrameOverheadBytes + payload.size());
  AppendFrame(type, payload, &out, version);
  return out;
}

std::string_view DecodeErrorName(DecodeError error) {
  switch (error) {
    case DecodeError::none: return "none";
    case DecodeError::oversize: return "oversize";
    case DecodeError::bad_crc: return "bad_crc";
    case DecodeError::truncated: return "truncated";
  }
  return "unknown";
}

void FrameDecoder::Feed(ByteView bytes) {
  Compact();
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

void FrameDecoder::Drop(size_t n) {
  CITYCARD_ASSERT(n <= buffered_bytes());
  start_ += n;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
}

void FrameDecoder::Compact() {
  if (start_ >= kCompactBytesMin && start_ * 2 >= buffer_.size()) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
}

bool FrameDecoder::FindHeader() {
  while (buffered_bytes() > 0) {
    const uint8_t* begin = buffer_.data() + start_;
    const uint8_t* end = buffer_.data() + buffer_.size();
    const uint8_t* magic = std::find(begin, end, kFrameMagic0);
    size_t noise = static_cast<size_t>(magic - begin);
    skipped_bytes_ += noise;
    Drop(noise);
    if (magic == end) return false;
    if (buffered_bytes() < 2) return false;
    const uint8_t* p = buffer_.data() + start_;
    if (p[1] != kFrameMagic1) {
      ++skipped_bytes_;
      Drop(1);
      continue;
    }
    if (buffered_bytes() < kFrameHeaderBytes) return false;
    if (Crc32(ByteView(p, 8)) != ReadU32(p + 8)) {
      ++skipped_bytes_;
      Drop(1);
      continue;
    }
    return true;
  }
  return false;
}

DecodeStatus FrameDecoder::Next(Frame* frame, DecodeError* error) {
  if (!FindHeader()) return DecodeStatus::need_more;
  const uint8_t* p = buffer_.data() + start_;
  uint32_t length = ReadU32(p + 4);
  if (length > kFramePayloadBytesMax) {
    // Resume the search one byte on: the frame's bytes are scanned as possible noise.
    Drop(1);
    *error = DecodeError::oversize;
    return DecodeStatus::bad;
  }
  size_t total = kFrameOverheadBytes + length;
  if (buffered_bytes() < total) return DecodeStatus::need_more;
  if (Crc32(ByteView(p, kFrameHeaderBytes + length)) != ReadU32(p + kFrameHeaderBytes + length)) {
    Drop(1);
    *error = DecodeError::bad_crc;
    return DecodeStatus::bad;
  }
  frame->version = p[2];
  frame->type = p[3];
  frame->payload.assign(p + kFrameHeaderBytes, p + kFrameHeaderBytes + length);
  Drop(total);
  return DecodeStatus::complete;
}

bool FrameDecoder::Flush() {
  if (!FindHeader()) return false;
  Drop(1);
  return true;
}

}  // namespace citycard::terminals
