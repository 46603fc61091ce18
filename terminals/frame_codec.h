// The frame codec of the terminal protocol (docs/protocol.md, "Frames"): how one message is
// wrapped for a byte stream, and the incremental decoder that finds frames again in the
// bytes read from a TCP connection or a serial line. Pure: no I/O, no clock, no crypto.
//
// A frame is
//
//   offset  size  field
//   0       2     magic 0xCC 0xA7 (the sync marker)
//   2       1     protocol version (kProtocolVersion)
//   3       1     frame type (FrameType, terminals/messages.h)
//   4       4     payload length N, big-endian, at most kFramePayloadBytesMax
//   8       4     header CRC-32 over bytes 0..7
//   12      N     payload
//   12+N    4     frame CRC-32 over bytes 0..11+N (header and payload)
//
// The header has its own CRC so that a decoder hunting for the magic in line noise does not
// believe a random length and wait for bytes that will never come: a candidate header is
// accepted only when its CRC matches, which random bytes do once in 2^32 tries. The CRCs
// catch line noise; they are not a defence against an attacker (the MACs of the secure
// channel are, terminals/secure_channel.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/bytes.h"

namespace citycard::terminals {

inline constexpr uint8_t kFrameMagic0 = 0xCC;
inline constexpr uint8_t kFrameMagic1 = 0xA7;
inline constexpr uint8_t kProtocolVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 12;
inline constexpr size_t kFrameTrailerBytes = 4;
inline constexpr size_t kFrameOverheadBytes = kFrameHeaderBytes + kFrameTrailerBytes;
// The largest frame, header and trailer included. Bounds every buffer of a session: a
// decoder never holds more than one frame's worth of unconsumed bytes plus one read.
inline constexpr size_t kFrameBytesMax = 65536;
inline constexpr size_t kFramePayloadBytesMax = kFrameBytesMax - kFrameOverheadBytes;
static_assert(kFramePayloadBytesMax == 65520);

// One frame as the decoder delivers it. `version` is passed through unchecked: refusing an
// unknown version is the session's business (it answers with an error frame).
struct Frame {
  uint8_t version = kProtocolVersion;
  uint8_t type = 0;
  Bytes payload;

  bool operator==(const Frame&) const = default;
};

// Appends the encoded frame to `out`. The payload must fit (payload.size() <=
// kFramePayloadBytesMax); a larger one is a programmer error (asserted), because every
// message encoder checks its own limits first.
void AppendFrame(uint8_t type, ByteView payload, Bytes* out, uint8_t version = kProtocolVersion);
Bytes EncodeFrame(uint8_t type, ByteView payload, uint8_t version = kProtocolVersion);

// What one call of FrameDecoder::Next found.
enum class DecodeStatus {
  complete,   // a frame was taken out
  need_more,  // no complete frame in the buffered bytes yet: feed more
  bad,        // a frame was found and refused (see DecodeError); the decoder has resynchronised
};

enum class DecodeError {
  none,
  oversize,   // a valid header announced a payload above kFramePayloadBytesMax
  bad_crc,    // the header was valid but the frame CRC was not: the frame is dropped
  truncated,  // Flush() found the beginning of a frame whose end never came
};

std::string_view DecodeErrorName(DecodeError error);

// The incremental decoder: bytes in (any split, down to one byte at a time), frames out.
//
// Bytes before a magic, and candidate headers whose CRC does not match, are skipped silently
// and counted (skipped_bytes()); that is how it resynchronises after noise on a serial line.
// A refused frame (oversize, bad CRC) is reported once as `bad`, and the decoder then
// resumes the search one byte after that frame's magic, so a real frame hidden inside the
// bytes of a broken one is still found. What to do about `bad` is the caller's choice: a
// TCP session closes, a serial session drops the frame and goes on.
//
// Memory: the decoder buffers at most one partial frame plus what one Feed() added;
// callers feed what one read returned (bounded by their read buffer).
class FrameDecoder {
 public:
  // Appends bytes read from the stream.
  void Feed(ByteView bytes);

  // Takes the next frame out of the buffered bytes. On `complete` *frame holds it; on `bad`
  // *error says why (and *frame is untouched); on `need_more` nothing happened.
  DecodeStatus Next(Frame* frame, DecodeError* error);

  // Gives up on a partial frame: when the stream has ended, or a serial line has been quiet
  // too long in the middle of a frame. Returns true (a truncated frame) when a frame had
  // begun (a valid header was buffered); the decoder then rescans the bytes after that
  // header's magic, so call Next() again afterwards. False when there was no partial frame;
  // leftover bytes that are not a header stay buffered either way.
  bool Flush();

  // Bytes buffered and not yet part of a delivered or refused frame.
  size_t buffered_bytes() const { return buffer_.size() - start_; }
  // Bytes dropped as noise so far (not counting the bytes of refused frames).
  uint64_t skipped_bytes() const { return skipped_bytes_; }

 private:
  // Drops bytes until the buffer starts with a plausible header (or holds too few bytes to
  // tell). Returns true when a header with a valid CRC is at start_.
  bool FindHeader();
  void Drop(size_t n);
  void Compact();

  Bytes buffer_;
  size_t start_ = 0;  // the first unconsumed byte of buffer_
  uint64_t skipped_bytes_ = 0;
};

}  // namespace citycard::terminals
