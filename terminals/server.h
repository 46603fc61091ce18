// The terminal server: TCP listeners (optionally TLS) and serial ports, one session per
// connection or line, speaking the protocol of docs/protocol.md to card readers and the
// TerminalBackend (terminals/backend.h) to the core.
//
// Each session is a C++20 coroutine on its own strand, with a watchdog: the handshake must
// finish within handshake_timeout_ms of the connection, and the terminal must send a complete
// frame within idle_timeout_ms of the server's last word, so a slow or silent client cannot
// hold a session (a client that trickles bytes gains nothing: only complete frames count).
// Waiting for the backend does not count against the terminal. At most sessions_max TCP
// sessions run at once; one more is answered with too_many_sessions and closed.
//
// Threads: the server runs on the io_context it is given; any number of threads may run
// that io_context. Stop() may be called from any thread. The Server object, the backend,
// the clock and the signer must outlive every run of the io_context.
#pragma once

#include <asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "crypto/signer.h"
#include "terminals/backend.h"
#include "terminals/server_options.h"

namespace citycard::terminals {

class Server {
 public:
  // Nothing is opened until ListenTcp/OpenSerial. options.clock and options.ack_signer must
  // be set (asserted).
  Server(asio::io_context& io, TerminalBackend& backend, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (port 0: a free port) and starts accepting. Returns the bound port.
  // With `tls`, every connection on this listener must speak TLS first.
  // Kind::internal "listen_failed" when the address cannot be bound; Kind::bad_input
  // "tls_setup_failed" when the certificate or key cannot be loaded.
  Result<uint16_t> ListenTcp(const std::string& host, uint16_t port,
                             std::optional<TlsFiles> tls = std::nullopt);

  // Opens a serial device in raw mode at `baud` and serves it: one terminal at a time, a new
  // handshake whenever a hello arrives, reopened after I/O errors until Stop().
  // Kind::internal "serial_open_failed" when the device cannot be opened or configured.
  Status OpenSerial(const std::string& device, unsigned baud = 115200);

  // Stops accepting, ends idle sessions at once (with server_shutting_down), lets sessions
  // that wait for the backend finish and answer, then ends them too. Sessions still running
  // after shutdown_grace_ms are closed. When everything has ended the io_context runs out
  // of work and run() returns. Thread-safe and idempotent.
  void Stop();

  ServerStats stats() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace citycard::terminals
