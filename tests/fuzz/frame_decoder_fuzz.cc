// Fuzz target: the incremental frame decoder (terminals/frame_codec.h, docs/fuzzing.md).
//
// The input is a byte stream as a TCP connection or a serial line would deliver it. It is fed
// to three decoders: all at once, one byte at a time, and in chunks whose sizes come from the
// input itself. Checked, beyond "does not crash":
// - the three decoders report exactly the same events (frames, refusals, truncations): how
//   the bytes were split must never change what is found;
// - every delivered frame, encoded again, occurs in the input byte for byte (the decoder
//   invents nothing) and respects kFramePayloadBytesMax;
// - after need_more, the decoder holds less than one frame's worth of bytes (its memory bound);
// - the input wrapped as the payload of a frame, behind noise, decodes back to that frame.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "terminals/frame_codec.h"

namespace {

using citycard::ByteView;
using citycard::Bytes;
using namespace citycard::terminals;

struct Event {
  DecodeStatus status = DecodeStatus::need_more;
  DecodeError error = DecodeError::none;
  Frame frame;
  bool operator==(const Event&) const = default;
};

// Takes every frame out of the decoder until it needs more bytes.
void Drain(FrameDecoder* decoder, std::vector<Event>* events) {
  while (true) {
    Event event;
    event.status = decoder->Next(&event.frame, &event.error);
    if (event.status == DecodeStatus::need_more) break;
    if (event.status == DecodeStatus::bad) event.frame = Frame{};
    events->push_back(std::move(event));
  }
  // The memory bound: what is left is the beginning of at most one frame.
  CITYCARD_ASSERT(decoder->buffered_bytes() < kFrameBytesMax);
}

// The end of the stream: give up on partial frames until none is left.
void Finish(FrameDecoder* decoder, std::vector<Event>* events) {
  Drain(decoder, events);
  while (decoder->Flush()) {
    Event event;
    event.status = DecodeStatus::bad;
    event.error = DecodeError::truncated;
    events->push_back(event);
    Drain(decoder, events);
  }
}

bool Contains(ByteView haystack, const Bytes& needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

std::vector<Event> DecodeInChunks(ByteView input, const std::vector<size_t>& chunk_sizes) {
  FrameDecoder decoder;
  std::vector<Event> events;
  size_t pos = 0;
  size_t next_chunk = 0;
  while (pos < input.size()) {
    size_t n = chunk_sizes.empty() ? input.size() : chunk_sizes[next_chunk++ % chunk_sizes.size()];
    n = std::min(n, input.size() - pos);
    decoder.Feed(input.subspan(pos, n));
    pos += n;
    Drain(&decoder, &events);
  }
  Finish(&decoder, &events);
  CITYCARD_ASSERT(decoder.skipped_bytes() <= input.size());
  return events;
}

void CheckSplitsAgree(ByteView input) {
  std::vector<Event> whole = DecodeInChunks(input, {});
  std::vector<Event> bytewise = DecodeInChunks(input, {1});
  // Chunk sizes 1..16 taken from the input's own bytes, so the fuzzer explores splits too.
  std::vector<size_t> sizes;
  for (size_t i = 0; i < std::min<size_t>(input.size(), 8); ++i) sizes.push_back(1 + input[i] % 16);
  std::vector<Event> chunked = DecodeInChunks(input, sizes);
  CITYCARD_ASSERT(whole == bytewise);
  CITYCARD_ASSERT(whole == chunked);
  for (const Event& event : whole) {
    if (event.status != DecodeStatus::complete) continue;
    CITYCARD_ASSERT(event.frame.payload.size() <= kFramePayloadBytesMax);
    Bytes again = EncodeFrame(event.frame.type, event.frame.payload, event.frame.version);
    CITYCARD_ASSERT(Contains(input, again));
  }
}

// The input as a payload, after a little noise that holds a false magic: exactly that frame
// comes out, and nothing else is reported.
void CheckRoundTrip(ByteView input) {
  if (input.empty()) return;
  uint8_t type = input[0];
  ByteView payload = input.subspan(1, std::min(input.size() - 1, kFramePayloadBytesMax));
  Bytes stream = {0x00, kFrameMagic0, 0x11, kFrameMagic0};
  AppendFrame(type, payload, &stream);
  FrameDecoder decoder;
  decoder.Feed(stream);
  Frame frame;
  DecodeError error = DecodeError::none;
  CITYCARD_ASSERT(decoder.Next(&frame, &error) == DecodeStatus::complete);
  CITYCARD_ASSERT(frame.type == type && frame.version == kProtocolVersion);
  CITYCARD_ASSERT(std::equal(frame.payload.begin(), frame.payload.end(), payload.begin(),
                             payload.end()));
  CITYCARD_ASSERT(decoder.skipped_bytes() == 4);
  CITYCARD_ASSERT(decoder.Next(&frame, &error) == DecodeStatus::need_more);
  CITYCARD_ASSERT(decoder.buffered_bytes() == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(data, size);
  CheckSplitsAgree(input);
  CheckRoundTrip(input);
  return 0;
}
