// A terminal server on loopback with a fake backend, run on its own thread, and helpers to
// make clients and records for it. For the protocol tests.
#pragma once

#include <asio/io_context.hpp>

#include <memory>
#include <thread>

#include "core/clock.h"
#include "crypto/signer.h"
#include "tests/terminals/fake_backend.h"
#include "terminals/client.h"
#include "terminals/server.h"

namespace citycard::terminals::testing {

inline TapRecord MakeRecord(const std::string& terminal_id, uint32_t terminal_counter) {
  TapRecord r;
  r.type = TapType::purchase;
  r.card_no = 8607550000000018;
  r.card_counter = terminal_counter;
  r.balance_before_fen = 5000;
  r.amount_fen = 200;
  r.terminal_id = terminal_id;
  r.terminal_counter = terminal_counter;
  r.time_s = 1718000000 + terminal_counter;
  r.operator_id = "szbus";
  r.route_code = 5;
  r.station_code = 12;
  r.fare_version = 3;
  r.full_fare_fen = 200;
  return r;
}

struct TestServer {
  explicit TestServer(ServerLimits limits = {}) : clock(1718000000000) {
    ServerOptions options;
    options.limits = limits;
    options.clock = &clock;
    options.ack_signer = &signer;
    server = std::make_unique<Server>(io, backend, options);
    port = server->ListenTcp("127.0.0.1", 0).value();
  }

  // Starts the I/O thread (after every listener is set up).
  void Start() {
    thread = std::thread([this] { io.run(); });
  }

  ~TestServer() { Shutdown(); }

  void Shutdown() {
    if (!thread.joinable()) return;
    server->Stop();
    thread.join();
  }

  ClientOptions Options(const std::string& terminal_id, Bytes key, int64_t timeout_ms = 5000) {
    ClientOptions options;
    options.terminal_id = terminal_id;
    options.terminal_key = std::move(key);
    options.core_public_key = signer.PublicKey();
    options.timeout_ms = timeout_ms;
    return options;
  }

  std::unique_ptr<TerminalClient> Connect(const std::string& terminal_id, Bytes key, int64_t timeout_ms = 5000) {
    auto client = TerminalClient::ConnectTcp("127.0.0.1", port, Options(terminal_id, std::move(key), timeout_ms));
    CITYCARD_ASSERT(client.ok());
    return std::move(client).value();
  }

  // A connected and authenticated client of a registered terminal.
  std::unique_ptr<TerminalClient> Authenticated(const std::string& terminal_id, Bytes key) {
    auto client = Connect(terminal_id, std::move(key));
    Status status = client->Handshake();
    CITYCARD_ASSERT(status.ok());
    return client;
  }

  ManualClock clock;
  crypto::Ed25519Signer signer = crypto::Ed25519Signer::Generate();
  FakeBackend backend;
  asio::io_context io;
  std::unique_ptr<Server> server;
  uint16_t port = 0;
  std::thread thread;
};

}  // namespace citycard::terminals::testing
