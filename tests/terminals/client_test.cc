#include <catch2/catch.hpp>

#include <asio.hpp>

#include <thread>

#include "tests/terminals/test_server.h"

using namespace citycard;
using namespace citycard::terminals;
using namespace citycard::terminals::testing;

namespace {

// A hand-written impostor: answers a hello with a challenge and the terminal's proof with
// a server proof made without the terminal's key. Blocking, one connection.
class Impostor {
 public:
  Impostor() : acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
  }
  ~Impostor() { thread_.join(); }
  uint16_t port() const { return port_; }

  bool silent = false;  // accept, then say nothing

 private:
  Frame ReadFrame(asio::ip::tcp::socket& socket, FrameDecoder& decoder) {
    Frame frame;
    DecodeError error;
    std::array<uint8_t, 256> buffer;
    while (decoder.Next(&frame, &error) != DecodeStatus::complete) {
      std::error_code ec;
      size_t n = socket.read_some(asio::buffer(buffer), ec);
      if (ec) return Frame{};
      decoder.Feed(ByteView(buffer.data(), n));
    }
    return frame;
  }

  void Serve() {
    asio::ip::tcp::socket socket(io_);
    acceptor_.accept(socket);
    FrameDecoder decoder;
    if (silent) {
      std::array<uint8_t, 256> buffer;
      std::error_code ec;
      while (!ec) socket.read_some(asio::buffer(buffer), ec);  // until the client gives up
      return;
    }
    ReadFrame(socket, decoder);  // hello
    Challenge challenge{};
    asio::write(socket, asio::buffer(EncodeFrame(static_cast<uint8_t>(FrameType::challenge), challenge.Encode())));
    ReadFrame(socket, decoder);  // the terminal's proof
    ServerProof wrong{};
    asio::write(socket, asio::buffer(EncodeFrame(static_cast<uint8_t>(FrameType::server_proof), wrong.Encode())));
    ReadFrame(socket, decoder);  // until closed
  }

  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("The client refuses a server that does not know the terminal's key", "[terminals][client]") {
  Impostor impostor;
  ClientOptions options;
  options.terminal_id = "BUS-0001";
  options.terminal_key = TestKey(1);
  auto client = TerminalClient::ConnectTcp("127.0.0.1", impostor.port(), options).value();
  Status status = client->Handshake();
  REQUIRE(status.code() == "server_authentication_failed");
  REQUIRE(status.kind() == Kind::bad_input);
  REQUIRE_FALSE(client->authenticated());
}

TEST_CASE("The client gives up on a silent server after its timeout and stays closed", "[terminals][client]") {
  Impostor impostor;
  impostor.silent = true;
  ClientOptions options;
  options.terminal_id = "BUS-0001";
  options.terminal_key = TestKey(1);
  options.timeout_ms = 200;
  auto client = TerminalClient::ConnectTcp("127.0.0.1", impostor.port(), options).value();
  REQUIRE(client->Handshake().code() == "timeout");
  REQUIRE(client->ReceiveMessage().status().code() == "connection_closed");
}

TEST_CASE("The client refuses an acknowledgement not signed by the core's key", "[terminals][client]") {
  TestServer t;
  t.Start();
  auto options = t.Options("BUS-0001", TestKey(1));
  options.core_public_key = crypto::Ed25519Signer::Generate().PublicKey();
  auto client = TerminalClient::ConnectTcp("127.0.0.1", t.port, options).value();
  REQUIRE(client->Handshake().ok());
  std::vector<TapRecord> records = {MakeRecord("BUS-0001", 1)};
  auto ack = client->UploadBatch(1, records);
  REQUIRE(ack.status().code() == "bad_ack_signature");
  REQUIRE(client->SendHeartbeat(Heartbeat{}).status().code() == "connection_closed");
}

TEST_CASE("The client checks a batch before sending it and the session goes on", "[terminals][client]") {
  TestServer t;
  t.Start();
  auto client = t.Authenticated("BUS-0001", TestKey(1));
  REQUIRE(client->UploadBatch(1, {}).status().code() == "batch_too_large");
  std::vector<TapRecord> too_many(kRecordsPerBatchMax + 1, MakeRecord("BUS-0001", 1));
  REQUIRE(client->UploadBatch(1, too_many).status().code() == "batch_too_large");
  std::vector<TapRecord> bad = {MakeRecord("BUS-0001", 1)};
  bad[0].operator_id = "has space";
  REQUIRE(client->UploadBatch(1, bad).status().code() == "invalid_tap_record");
  std::vector<TapRecord> full;
  for (uint32_t i = 1; i <= kRecordsPerBatchMax; ++i) full.push_back(MakeRecord("BUS-0001", i));
  auto ack = client->UploadBatch(2, full);
  REQUIRE(ack.ok());
  REQUIRE(ack->results.size() == kRecordsPerBatchMax);
}

TEST_CASE("The client reports a refused connection and calls before the handshake", "[terminals][client]") {
  uint16_t closed_port = 0;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor probe(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    closed_port = probe.local_endpoint().port();
  }
  ClientOptions options;
  options.terminal_id = "BUS-0001";
  options.terminal_key = TestKey(1);
  REQUIRE(TerminalClient::ConnectTcp("127.0.0.1", closed_port, options).status().code() == "connection_failed");

  TestServer t;
  t.Start();
  auto client = t.Connect("BUS-0001", TestKey(1));
  REQUIRE(client->SendHeartbeat(Heartbeat{}).status().code() == "not_authenticated");
  REQUIRE(client->DownloadDenylist(0).status().code() == "not_authenticated");
  REQUIRE(client->Handshake().ok());
  REQUIRE(client->Handshake().code() == "already_authenticated");
}
