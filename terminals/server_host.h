// A terminal server (terminals/server.h) with its own I/O threads, behind a header without
// asio: code outside terminals/ (tools/server/) starts, watches and stops servers through it,
// so that only terminals/ includes asio.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "terminals/backend.h"
#include "terminals/server_options.h"

namespace citycard::terminals {

class ServerHost {
 public:
  // A server on its own io_context; nothing is opened until ListenTcp/OpenSerial, nothing
  // runs until Start. The backend, and options' clock and signer, must outlive the host.
  ServerHost(TerminalBackend& backend, ServerOptions options);
  // Stops and joins (Stop).
  ~ServerHost();
  ServerHost(const ServerHost&) = delete;
  ServerHost& operator=(const ServerHost&) = delete;

  // As Server::ListenTcp and Server::OpenSerial (their failures). Before Start.
  Result<uint16_t> ListenTcp(const std::string& host, uint16_t port,
                             std::optional<TlsFiles> tls = std::nullopt);
  Status OpenSerial(const std::string& device, unsigned baud);

  // Runs the server on `threads` I/O threads (at least one).
  void Start(size_t threads);
  // Server::Stop, then waits for the I/O threads to end. Idempotent.
  void Stop();

  ServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace citycard::terminals
