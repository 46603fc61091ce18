// The cryptography of a terminal session (docs/protocol.md, "Handshake" and "Secured
// frames"): the two handshake proofs, the session keys, and the sequence numbers and MACs
// that every frame carries once the handshake is done. No I/O; the server and the client
// both use this, so the two sides cannot disagree.
//
// Handshake (terminal T, server S, K = the terminal's key of the version named in Hello):
//   T -> S  Hello          terminal_id, key_version, Nt
//   S -> T  Challenge      Ns
//   T -> S  TerminalProof  HMAC-SHA256(K, "citycard terminal proof v1" || transcript)
//   S -> T  ServerProof    HMAC-SHA256(K, "citycard server proof v1" || transcript)
// where transcript = terminal_id (16 bytes, NUL-padded) || key_version || Nt || Ns.
// Session keys, one per direction:
//   Kts = HKDF-SHA256(ikm K, salt Nt || Ns, info "citycard session v1 terminal->server" || id16 || key_version)
//   Kst = HKDF-SHA256(ikm K, salt Nt || Ns, info "citycard session v1 server->terminal" || id16 || key_version)
// Secured frame payload: sequence (u64, from 0 per direction) || body || MAC, where
//   MAC = first 16 bytes of HMAC-SHA256(Kdir, version || type || sequence || body).
#pragma once

#include <array>
#include <cstdint>

#include "core/bytes.h"
#include "crypto/mac.h"
#include "terminals/codes.h"
#include "terminals/frame_codec.h"
#include "terminals/messages.h"

namespace citycard::terminals {

inline constexpr size_t kSequenceBytes = 8;
inline constexpr size_t kFrameMacBytes = 16;
inline constexpr size_t kSecuredOverheadBytes = kSequenceBytes + kFrameMacBytes;
// The largest body a secured frame can carry.
inline constexpr size_t kSecuredBodyBytesMax = kFramePayloadBytesMax - kSecuredOverheadBytes;
static_assert(6 + kRecordsPerBatchMax * kTapRecordBytes <= kSecuredBodyBytesMax,
              "a full batch fits in one frame");
static_assert(25 + kDenylistEntriesPerPageMax * 8 <= kSecuredBodyBytesMax,
              "a full denylist page fits in one frame");
static_assert(22 + kDocumentChunkBytesMax <= kSecuredBodyBytesMax,
              "a full document page fits in one frame");

inline constexpr std::string_view kTerminalProofLabel = "citycard terminal proof v1";
inline constexpr std::string_view kServerProofLabel = "citycard server proof v1";
inline constexpr std::string_view kTerminalToServerLabel = "citycard session v1 terminal->server";
inline constexpr std::string_view kServerToTerminalLabel = "citycard session v1 server->terminal";

// terminal_id (16, NUL-padded) || key_version || terminal nonce || server nonce.
Bytes HandshakeTranscript(const Hello& hello, const Challenge& challenge);

Proof ComputeTerminalProof(ByteView terminal_key, const Hello& hello, const Challenge& challenge);
Proof ComputeServerProof(ByteView terminal_key, const Hello& hello, const Challenge& challenge);

struct SessionKeys {
  crypto::Mac32 terminal_to_server{};
  crypto::Mac32 server_to_terminal{};
};

SessionKeys DeriveSessionKeys(ByteView terminal_key, const Hello& hello, const Challenge& challenge);

enum class ChannelRole { terminal, server };

// One side's view of a secured session: it numbers and MACs what it sends, and checks the
// numbers and MACs of what it receives. Not thread-safe (one per session, used on the
// session's strand).
class SecureChannel {
 public:
  SecureChannel(const SessionKeys& keys, ChannelRole role);

  // The payload of the next frame to send: sequence || body || MAC. Consumes a sequence
  // number. body.size() <= kSecuredBodyBytesMax (asserted).
  Bytes Seal(FrameType type, ByteView body, uint8_t version = kProtocolVersion);

  struct Opened {
    ResultCode code = ResultCode::ok;  // ok, malformed_frame, bad_frame_mac or sequence_error
    Bytes body;
  };
  // Checks a received frame: payload long enough (malformed_frame), MAC valid under the
  // peer's key (bad_frame_mac: altered or forged), sequence equal to the next expected one
  // (sequence_error: replayed, reordered or a frame missing). On ok the expected sequence
  // moves on; on any refusal nothing changes, and the session must be closed.
  Opened Open(const Frame& frame);

  uint64_t next_send_sequence() const { return send_sequence_; }
  uint64_t next_receive_sequence() const { return receive_sequence_; }

 private:
  crypto::HmacSha256 send_mac_;
  crypto::HmacSha256 receive_mac_;
  uint64_t send_sequence_ = 0;
  uint64_t receive_sequence_ = 0;
};

}  // namespace citycard::terminals
