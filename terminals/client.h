// A blocking terminal client: what a card reader does, for the tests, `citycard sim`, the
// replay and the demo. It connects over TCP (optionally TLS), a serial device or an open
// descriptor (a pseudo-terminal's master), authenticates with the terminal's id and key,
// and then uploads batches (checking the core's signature on each acknowledgement),
// sends heartbeats, downloads the denylist and documents and sends online requests.
// Protocol: docs/protocol.md.
//
// Every call blocks until it is done or options.timeout_ms has passed. A timeout, a broken
// connection, an error frame from the server, or a reply that fails its MAC or signature
// ends the session: the client closes, and every later call fails with
// "connection_closed". Not thread-safe: one client per thread (or per terminal).
//
// Failures (Status code, kind):
// - transport: "connection_failed", "connection_closed", "timeout",
//   "tls_handshake_failed", "serial_open_failed" (Kind::internal);
// - the server's error frame: the ResultCodeName of its code ("unknown_terminal" is
//   Kind::not_found, every other code Kind::refused), with the server's text;
// - the server misbehaving: "server_authentication_failed" (its proof is wrong: not our
//   server), "bad_ack_signature", "ack_mismatch" (an ack for other records),
//   "bad_frame_mac", "sequence_error", "malformed_message", "unexpected_message"
//   (Kind::bad_input);
// - the caller: "not_authenticated", "batch_too_large", "invalid_tap_record" (Kind::usage
//   or bad_input).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "core/bytes.h"
#include "core/status.h"
#include "core/tap_record.h"
#include "crypto/signer.h"
#include "terminals/frame_codec.h"
#include "terminals/messages.h"

namespace citycard::terminals {

inline constexpr int64_t kClientTimeoutMsDefault = 10'000;

struct ClientOptions {
  std::string terminal_id;
  uint8_t key_version = 1;
  Bytes terminal_key;
  // The core's Ed25519 public key. When set, every batch acknowledgement must carry a valid
  // signature under it; when unset, signatures are not checked (only for tools that measure
  // throughput and keep no records).
  std::optional<crypto::Ed25519PublicKey> core_public_key;
  int64_t timeout_ms = kClientTimeoutMsDefault;  // per call
};

struct ClientTls {
  std::string ca_certificate_path;  // PEM: the certificates to trust
  std::string server_name;          // sent as SNI and matched against the certificate; may be empty
  bool verify_peer = true;          // false: accept any certificate (tests only)
};

// A message received in a session: its type and its body (the MAC and sequence removed).
struct ReceivedMessage {
  FrameType type = FrameType::error;
  Bytes body;
};

class TerminalClient {
 public:
  // Connects, and with `tls` completes the TLS handshake; does not authenticate (Handshake).
  static Result<std::unique_ptr<TerminalClient>> ConnectTcp(const std::string& host, uint16_t port,
                                                            ClientOptions options,
                                                            std::optional<ClientTls> tls = std::nullopt);
  // Opens a serial device in raw mode.
  static Result<std::unique_ptr<TerminalClient>> OpenSerial(const std::string& device, unsigned baud,
                                                            ClientOptions options);
  // Takes ownership of an open descriptor (a pseudo-terminal's master, a pipe); treated as a
  // serial line (bad frames are dropped, not fatal).
  static Result<std::unique_ptr<TerminalClient>> AdoptDescriptor(int fd, ClientOptions options);

  ~TerminalClient();
  TerminalClient(const TerminalClient&) = delete;
  TerminalClient& operator=(const TerminalClient&) = delete;

  // The mutual challenge-response: hello, challenge, proof, server proof. Afterwards every
  // frame is secured. Fails with the server's refusal (unknown_terminal, terminal_disabled,
  // unknown_key_version, authentication_failed) or server_authentication_failed.
  Status Handshake();
  bool authenticated() const;

  // The server's time and current versions. Also measures the round trip, so that
  // clock_offset_ms() = server time - the midpoint of the local send and receive times.
  Result<HeartbeatAck> SendHeartbeat(const Heartbeat& heartbeat);
  int64_t clock_offset_ms() const;

  // Uploads 1..kRecordsPerBatchMax records and returns the verified acknowledgement: same
  // terminal, batch id and record count, the digest of exactly these records' bytes, and
  // (with core_public_key) a valid signature. Only then may the caller delete the records
  // whose result IsFinalRecordResult.
  Result<BatchAck> UploadBatch(uint32_t batch_id, std::span<const TapRecord> records);

  // The denylist since `known_version` (0: the full list), all pages joined.
  Result<DenylistUpdate> DownloadDenylist(uint64_t known_version);

  // The fare table or parameter document, unless `known_version` is current (up_to_date).
  Result<Document> DownloadDocument(DocumentKind kind, uint32_t known_version);

  // An online request and the server's answer, checked to be the matching response type
  // with the same request_id. A business refusal is a response with a code, not a Status.
  Result<OnlineResponse> SendOnline(const OnlineRequest& request);

  // Closes the connection. Idempotent.
  void Close();

  // ---- Lower level: for tests of the protocol's refusals and for tools. ----

  // Sends one message: secured after the handshake, plain before.
  Status SendMessage(FrameType type, ByteView body);
  // The next message; an error frame from the server is returned as its Status.
  Result<ReceivedMessage> ReceiveMessage();
  // The encoded bytes of the next secured frame, without sending it (it consumes a sequence
  // number, so sending a later one first makes a gap).
  Result<Bytes> SealFrame(FrameType type, ByteView body);
  // Writes bytes as they are (replays, garbage, hand-made frames).
  Status SendRawBytes(ByteView bytes);
  // The encoded bytes of the last frame SendMessage sent.
  const Bytes& last_sent_frame() const;
  // The descriptor of a plain TCP connection, so that a tool driving many sessions from one
  // thread (`citycard bench online`) can wait with poll() until an answer arrived before it
  // calls ReceiveMessage; -1 for TLS, serial lines and descriptors, and once closed. Readable
  // means bytes arrived, not that a whole frame did: ReceiveMessage still waits for the rest.
  int descriptor() const;

  struct Impl;

 private:
  explicit TerminalClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace citycard::terminals
