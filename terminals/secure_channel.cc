#include "terminals/secure_channel.h"

#include <algorithm>

namespace citycard::terminals {

namespace {

Proof LabelledHmac(ByteView key, std::string_view label, const Hello& hello,
                   const Challenge& challenge) {
  Bytes input(label.begin(), label.end());
  Bytes transcript = HandshakeTranscript(hello, challenge);
  input.insert(input.end(), transcript.begin(), transcript.end());
  return crypto::HmacSha256(key).Compute(input);
}

crypto::Mac32 DeriveOne(ByteView key, std::string_view label, const Hello& hello,
                        const Challenge& challenge) {
  Bytes salt(hello.terminal_nonce.begin(), hello.terminal_nonce.end());
  salt.insert(salt.end(), challenge.server_nonce.begin(), challenge.server_nonce.end());
  Bytes info(label.begin(), label.end());
  ByteWriter w(&info);
  w.FixedText(hello.terminal_id, kTerminalIdBytes);
  w.U8(hello.key_version);
  return crypto::HkdfSha256(key, salt, info);
}

// version || type || sequence || body: what a frame MAC covers.
crypto::Mac32 FrameMac(const crypto::HmacSha256& mac, uint8_t version, FrameType type,
                       uint64_t sequence, ByteView body) {
  Bytes input;
  input.reserve(2 + kSequenceBytes + body.size());
  ByteWriter w(&input);
  w.U8(version);
  w.U8(static_cast<uint8_t>(type));
  w.U64(sequence);
  w.Raw(body);
  return mac.Compute(input);
}

}  // namespace

Bytes HandshakeTranscript(const Hello& hello, const Challenge& challenge) {
  Bytes out;
  ByteWriter w(&out);
  w.FixedText(hello.terminal_id, kTerminalIdBytes);
  w.U8(hello.key_version);
  w.Raw(hello.terminal_nonce);
  w.Raw(challenge.server_nonce);
  return out;
}

Proof ComputeTerminalProof(ByteView terminal_key, const Hello& hello, const Challenge& challenge) {
  return LabelledHmac(terminal_key, kTerminalProofLabel, hello, challenge);
}

Proof ComputeServerProof(ByteView terminal_key, const Hello& hello, const Challenge& challenge) {
  return LabelledHmac(terminal_key, kServerProofLabel, hello, challenge);
}

SessionKeys DeriveSessionKeys(ByteView terminal_key, const Hello& hello, const Challenge& challenge) {
  SessionKeys keys;
  keys.terminal_to_server = DeriveOne(terminal_key, kTerminalToServerLabel, hello, challenge);
  keys.server_to_terminal = DeriveOne(terminal_key, kServerToTerminalLabel, hello, challenge);
  return keys;
}

SecureChannel::SecureChannel(const SessionKeys& keys, ChannelRole role)
    : send_mac_(role == ChannelRole::terminal ? ByteView(keys.terminal_to_server)
                                              : ByteView(keys.server_to_terminal)),
      receive_mac_(role == ChannelRole::terminal ? ByteView(keys.server_to_terminal)
                                                 : ByteView(keys.terminal_to_server)) {}

Bytes SecureChannel::Seal(FrameType type, ByteView body, uint8_t version) {
  CITYCARD_ASSERT(body.size() <= kSecuredBodyBytesMax);
  uint64_t sequence = send_sequence_++;
  crypto::Mac32 mac = FrameMac(send_mac_, version, type, sequence, body);
  Bytes out;
  out.reserve(kSecuredOverheadBytes + body.size());
  ByteWriter w(&out);
  w.U64(sequence);
  w.Raw(body);
  w.Raw(ByteView(mac).first(kFrameMacBytes));
  return out;
}

SecureChannel::Opened SecureChannel::Open(const Frame& frame) {
  Opened out;
  if (frame.payload.size() < kSecuredOverheadBytes) {
    out.code = ResultCode::malformed_frame;
    return out;
  }
  ByteView payload(frame.payload);
  ByteReader in(payload);
  uint64_t sequence = in.U64();
  ByteView body = payload.subspan(kSequenceBytes, payload.size() - kSecuredOverheadBytes);
  ByteView received_mac = payload.last(kFrameMacBytes);
  crypto::Mac32 expected = FrameMac(receive_mac_, frame.version, static_cast<FrameType>(frame.type),
                                    sequence, body);
  // The MAC is checked before the sequence number, so that an altered frame is reported as
  // altered whatever number it claims; a replay carries a valid MAC and an old number.
  if (!crypto::ConstantTimeEqual(ByteView(expected).first(kFrameMacBytes), received_mac)) {
    out.code = ResultCode::bad_frame_mac;
    return out;
  }
  if (sequence != receive_sequence_) {
    out.code = ResultCode::sequence_error;
    return out;
  }
  ++receive_sequence_;
  out.body.assign(body.begin(), body.end());
  return out;
}

}  // namespace citycard::terminals
