#include <catch2/catch.hpp>

#include <vector>

#include "terminals/crc32.h"
#include "terminals/frame_codec.h"

using namespace citycard;
using namespace citycard::terminals;

namespace {

Bytes Payload(size_t n, uint8_t seed) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(seed + i * 7);
  return out;
}

// Feeds everything, then collects what Next() reports until it needs more.
struct Collected {
  std::vector<Frame> frames;
  std::vector<DecodeError> errors;
};

void Drain(FrameDecoder& decoder, Collected* out) {
  for (;;) {
    Frame frame;
    DecodeError error = DecodeError::none;
    DecodeStatus status = decoder.Next(&frame, &error);
    if (status == DecodeStatus::need_more) return;
    if (status == DecodeStatus::complete) out->frames.push_back(frame);
    if (status == DecodeStatus::bad) out->errors.push_back(error);
  }
}

Collected DecodeAll(ByteView bytes, size_t step) {
  FrameDecoder decoder;
  Collected out;
  for (size_t i = 0; i < bytes.size(); i += step) {
    decoder.Feed(bytes.subspan(i, std::min(step, bytes.size() - i)));
    Drain(decoder, &out);
  }
  return out;
}

}  // namespace

TEST_CASE("A frame has the documented header, payload and CRCs", "[terminals][frame]") {
  Bytes payload = {0x01, 0x02, 0x03};
  Bytes frame = EncodeFrame(0x10, payload);
  REQUIRE(frame.size() == kFrameOverheadBytes + 3);
  REQUIRE(ToHex(ByteView(frame).first(8)) == "cca7011000000003");
  uint32_t header_crc = Crc32(ByteView(frame).first(8));
  REQUIRE(frame[8] == (header_crc >> 24));
  REQUIRE(frame[11] == (header_crc & 0xff));
  uint32_t crc = Crc32(ByteView(frame).first(kFrameHeaderBytes + 3));
  REQUIRE(frame[15] == (crc >> 24));
  REQUIRE(frame[18] == (crc & 0xff));
}

TEST_CASE("The decoder takes frames fed one byte at a time", "[terminals][frame]") {
  Bytes stream;
  AppendFrame(0x10, Payload(0, 1), &stream);
  AppendFrame(0x20, Payload(500, 2), &stream);
  AppendFrame(0x7f, Payload(17, 3), &stream);
  Collected out = DecodeAll(stream, 1);
  REQUIRE(out.errors.empty());
  REQUIRE(out.frames.size() == 3);
  REQUIRE(out.frames[0] == Frame{kProtocolVersion, 0x10, {}});
  REQUIRE(out.frames[1].type == 0x20);
  REQUIRE(out.frames[1].payload == Payload(500, 2));
  REQUIRE(out.frames[2].payload == Payload(17, 3));
}

TEST_CASE("The decoder takes frames whatever the split of the reads", "[terminals][frame]") {
  Bytes stream;
  for (int i = 0; i < 20; ++i) AppendFrame(0x20, Payload(static_cast<size_t>(i * 13), static_cast<uint8_t>(i)), &stream);
  for (size_t step : {2u, 3u, 7u, 64u, 1000u, 100000u}) {
    Collected out = DecodeAll(stream, step);
    REQUIRE(out.errors.empty());
    REQUIRE(out.frames.size() == 20);
    REQUIRE(out.frames[19].payload == Payload(19 * 13, 19));
  }
}

TEST_CASE("The decoder skips garbage between frames and counts it", "[terminals][frame]") {
  Bytes stream = {0x00, 0xff, 0xcc, 0x13, 0xcc};  // noise, including a lone magic byte
  AppendFrame(0x10, Payload(4, 1), &stream);
  // A fake header: magic and version but a header CRC that does not match.
  Bytes noise = {0xcc, 0xa7, 0x01, 0x10, 0x00, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, 0x55};
  stream.insert(stream.end(), noise.begin(), noise.end());
  AppendFrame(0x11, Payload(9, 2), &stream);
  stream.push_back(0xcc);  // a trailing magic byte waits for more

  for (size_t step : {1u, 5u, 4096u}) {
    FrameDecoder decoder;
    Collected out;
    for (size_t i = 0; i < stream.size(); i += step) {
      decoder.Feed(ByteView(stream).subspan(i, std::min(step, stream.size() - i)));
      Drain(decoder, &out);
    }
    REQUIRE(out.errors.empty());
    REQUIRE(out.frames.size() == 2);
    REQUIRE(out.frames[0].type == 0x10);
    REQUIRE(out.frames[1].type == 0x11);
    REQUIRE(out.frames[1].payload == Payload(9, 2));
    REQUIRE(decoder.skipped_bytes() == 5 + noise.size());
    REQUIRE(decoder.buffered_bytes() == 1);
  }
}

TEST_CASE("A frame with a bad CRC is reported and the next frame still decodes", "[terminals][frame]") {
  Bytes stream = EncodeFrame(0x20, Payload(40, 1));
  stream[kFrameHeaderBytes + 5] ^= 0x01;  // one flipped bit in the payload
  AppendFrame(0x21, Payload(8, 2), &stream);
  for (size_t step : {1u, 4096u}) {
    Collected out = DecodeAll(stream, step);
    REQUIRE(out.errors == std::vector<DecodeError>{DecodeError::bad_crc});
    REQUIRE(out.frames.size() == 1);
    REQUIRE(out.frames[0].type == 0x21);
  }
}

TEST_CASE("An oversize frame is refused from its header alone", "[terminals][frame]") {
  // A header with a valid header CRC that announces one byte more than the limit.
  Bytes header = {kFrameMagic0, kFrameMagic1, kProtocolVersion, 0x20};
  ByteWriter w(&header);
  w.U32(static_cast<uint32_t>(kFramePayloadBytesMax + 1));
  w.U32(Crc32(ByteView(header).first(8)));
  FrameDecoder decoder;
  decoder.Feed(header);
  Frame frame;
  DecodeError error = DecodeError::none;
  REQUIRE(decoder.Next(&frame, &error) == DecodeStatus::bad);
  REQUIRE(error == DecodeError::oversize);
  REQUIRE(decoder.Next(&frame, &error) == DecodeStatus::need_more);

  // The largest allowed frame decodes.
  Bytes largest = EncodeFrame(0x20, Payload(kFramePayloadBytesMax, 9));
  REQUIRE(largest.size() == kFrameBytesMax);
  Collected out = DecodeAll(largest, 1000);
  REQUIRE(out.errors.empty());
  REQUIRE(out.frames.size() == 1);
}

TEST_CASE("A truncated frame is reported by Flush and a frame after it is recovered", "[terminals][frame]") {
  Bytes whole = EncodeFrame(0x20, Payload(100, 1));
  SECTION("the stream ends in the middle of a frame") {
    FrameDecoder decoder;
    decoder.Feed(ByteView(whole).first(50));
    Collected out;
    Drain(decoder, &out);
    REQUIRE(out.frames.empty());
    REQUIRE(decoder.Flush());
    REQUIRE_FALSE(decoder.Flush());
    Drain(decoder, &out);
    REQUIRE(out.frames.empty());
  }
  SECTION("a frame cut short on a serial line is followed by a complete one") {
    Bytes stream(whole.begin(), whole.begin() + 40);
    Bytes next = EncodeFrame(0x11, Payload(3, 2));
    stream.insert(stream.end(), next.begin(), next.end());
    FrameDecoder decoder;
    decoder.Feed(stream);
    Collected out;
    Drain(decoder, &out);
    // The cut frame still waits for its announced length; the line goes quiet.
    REQUIRE(out.frames.empty());
    REQUIRE(decoder.Flush());
    Drain(decoder, &out);
    REQUIRE(out.frames.size() == 1);
    REQUIRE(out.frames[0].type == 0x11);
  }
  SECTION("without Flush, the bytes that complete the cut frame's length expose its bad CRC") {
    Bytes stream(whole.begin(), whole.begin() + 40);
    Bytes next = EncodeFrame(0x11, Payload(3, 2));
    stream.insert(stream.end(), next.begin(), next.end());
    stream.resize(stream.size() + 100, 0x00);  // later line noise fills the announced length
    Collected out = DecodeAll(stream, 1);
    REQUIRE(out.errors == std::vector<DecodeError>{DecodeError::bad_crc});
    REQUIRE(out.frames.size() == 1);
    REQUIRE(out.frames[0].type == 0x11);
  }
}

TEST_CASE("Decode error names are stable", "[terminals][frame]") {
  REQUIRE(DecodeErrorName(DecodeError::oversize) == "oversize");
  REQUIRE(DecodeErrorName(DecodeError::bad_crc) == "bad_crc");
  REQUIRE(DecodeErrorName(DecodeError::truncated) == "truncated");
}
