// The terminal server's options, limits and counters (terminals/server.h), apart from the
// server itself so that code outside terminals/ can configure and watch a server without
// seeing asio (terminals/server_host.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/clock.h"
#include "crypto/signer.h"

namespace citycard::terminals {

// Defaults of the limits (docs/protocol.md, "Limits").
inline constexpr int64_t kHandshakeTimeoutMsDefault = 10'000;
inline constexpr int64_t kIdleTimeoutMsDefault = 300'000;
inline constexpr size_t kSessionsMaxDefault = 4096;
inline constexpr int64_t kShutdownGraceMsDefault = 30'000;
// After a timeout the session gets this long to send its error frame before it is closed.
inline constexpr int64_t kErrorWriteGraceMs = 1'000;

struct ServerLimits {
  int64_t handshake_timeout_ms = kHandshakeTimeoutMsDefault;
  int64_t idle_timeout_ms = kIdleTimeoutMsDefault;
  size_t sessions_max = kSessionsMaxDefault;  // TCP and TLS sessions; serial lines not counted
  // How long Stop() lets in-flight requests finish before it closes every session.
  int64_t shutdown_grace_ms = kShutdownGraceMsDefault;
};

// PEM files for TLS on a listener.
struct TlsFiles {
  std::string certificate_chain_path;
  std::string private_key_path;
};

struct ServerOptions {
  ServerLimits limits;
  const Clock* clock = nullptr;                       // required: heartbeat time, received_ms
  const crypto::Ed25519Signer* ack_signer = nullptr;  // required: the core's key, signs acks
};

// Counters since the server was made; read at any time from any thread.
struct ServerStats {
  uint64_t sessions_active = 0;
  uint64_t sessions_started = 0;   // TCP, TLS and serial sessions that began a handshake
  uint64_t sessions_refused = 0;   // turned away by sessions_max
  uint64_t sessions_authenticated = 0;
  uint64_t batches_acknowledged = 0;
  uint64_t records_acknowledged = 0;
  uint64_t security_events = 0;
  uint64_t frames_dropped = 0;     // bad CRC or oversize frames dropped on serial lines
};

}  // namespace citycard::terminals
