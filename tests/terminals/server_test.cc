#include <catch2/catch.hpp>

#include <pty.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "crypto/digest.h"
#include "terminals/crc32.h"
#include "tests/terminals/test_server.h"

using namespace citycard;
using namespace citycard::terminals;
using namespace citycard::terminals::testing;

namespace {

// Waits (up to 5 s) for a condition that another thread makes true.
template <typename Condition>
bool Eventually(Condition condition) {
  for (int i = 0; i < 500; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

// The next thing the server says must be an error frame with this code, and then the end.
void ExpectRefusal(TerminalClient& client, const std::string& code) {
  auto message = client.ReceiveMessage();
  REQUIRE_FALSE(message.ok());
  REQUIRE(message.status().code() == code);
}

void ExpectHeartbeatWorks(TerminalClient& client) {
  auto ack = client.SendHeartbeat(Heartbeat{});
  REQUIRE(ack.ok());
}

Bytes Resealed(const Bytes& frame_bytes, size_t payload_offset_from_end) {
  // Flips one payload byte and writes a fresh CRC, as an attacker on the line would.
  FrameDecoder decoder;
  decoder.Feed(frame_bytes);
  Frame frame;
  DecodeError error;
  CITYCARD_ASSERT(decoder.Next(&frame, &error) == DecodeStatus::complete);
  frame.payload[frame.payload.size() - 1 - payload_offset_from_end] ^= 0x01;
  return EncodeFrame(frame.type, frame.payload, frame.version);
}

}  // namespace

TEST_CASE("A terminal authenticates over TCP, uploads a batch and verifies the signed ack", "[terminals][server]") {
  TestServer t;
  t.Start();
  auto client = t.Authenticated("BUS-0001", TestKey(1));
  REQUIRE(client->authenticated());

  std::vector<TapRecord> records = {MakeRecord("BUS-0001", 1), MakeRecord("BUS-0001", 2)};
  auto ack = client->UploadBatch(7, records);
  REQUIRE(ack.ok());
  REQUIRE(ack->batch_id == 7);
  REQUIRE(ack->terminal_id == "BUS-0001");
  REQUIRE(ack->server_time_ms == 1718000000000);
  REQUIRE(ack->results == std::vector<ResultCode>{ResultCode::accepted, ResultCode::accepted});
  // The signature verifies with the core's public key alone, over the documented bytes.
  REQUIRE(crypto::VerifyEd25519(t.signer.PublicKey(), ack->SignedBytes(), ack->signature));
  Bytes uploaded = BatchUpload::FromRecords(7, records).records;
  REQUIRE(ack->batch_digest == crypto::Sha256Digester().Sha256(uploaded));

  auto batches = t.backend.batches();
  REQUIRE(batches.size() == 1);
  REQUIRE(batches[0].records == records);
  REQUIRE(batches[0].terminal.terminal_id == "BUS-0001");
  REQUIRE(batches[0].terminal.operator_id == "szbus");
  REQUIRE(batches[0].received_ms == 1718000000000);

  // The same batch again: the backend says duplicate, and the ack says so.
  auto again = client->UploadBatch(8, records);
  REQUIRE(again.ok());
  REQUIRE(again->results == std::vector<ResultCode>{ResultCode::duplicate, ResultCode::duplicate});
  // The counters follow the ack's write, which may finish after the client has read it.
  REQUIRE(Eventually([&] { return t.server->stats().batches_acknowledged == 2; }));
  REQUIRE(Eventually([&] { return t.server->stats().records_acknowledged == 4; }));
}

TEST_CASE("Records for another terminal or that do not decode are answered by the server", "[terminals][server]") {
  TestServer t;
  t.Start();
  auto client = t.Authenticated("BUS-0001", TestKey(1));
  BatchUpload upload = BatchUpload::FromRecords(
      3, std::vector<TapRecord>{MakeRecord("BUS-0001", 1), MakeRecord("BUS-0002", 2), MakeRecord("BUS-0001", 3)});
  upload.records[2 * kTapRecordBytes] = 9;  // the third record's format version
  REQUIRE(client->SendMessage(FrameType::batch_upload, upload.Encode()).ok());
  auto message = client->ReceiveMessage();
  REQUIRE(message.ok());
  REQUIRE(message->type == FrameType::batch_ack);
  auto ack = BatchAck::Decode(message->body);
  REQUIRE(ack->results ==
          std::vector<ResultCode>{ResultCode::accepted, ResultCode::wrong_terminal, ResultCode::invalid_record});
  REQUIRE(t.backend.batches()[0].records.size() == 1);
}

TEST_CASE("A heartbeat gives the server time and the current versions", "[terminals][server]") {
  TestServer t;
  t.backend.SetVersions(Versions{12, 3, 4});
  t.Start();
  auto client = t.Authenticated("BUS-0001", TestKey(1));
  t.clock.SetMs(1718000123456);
  auto ack = client->SendHeartbeat(Heartbeat{1718000000000, Versions{11, 3, 4}, 5});
  REQUIRE(ack.ok());
  REQUIRE(ack->server_time_ms == 1718000123456);
  REQUIRE(ack->versions == Versions{12, 3, 4});
  // The local clock is the real one; the server's is a fixed test time in the past.
  REQUIRE(client->clock_offset_ms() < 0);
  // The backend hears what the terminal holds.
  auto heard = t.backend.heartbeats();
  REQUIRE(heard.size() == 1);
  REQUIRE(heard[0].first == "BUS-0001");
  REQUIRE(heard[0].second == Heartbeat{1718000000000, Versions{11, 3, 4}, 5});
}

TEST_CASE("The denylist downloads as a delta from the terminal's version or as a full list", "[terminals][server]") {
  TestServer t;
  std::vector<uint64_t> many;
  for (uint64_t i = 0; i < 5000; ++i) many.push_back(8607550000000000 + i);
  t.backend.ChangeDenylist(many, {});                                       // version 1
  t.backend.ChangeDenylist({8607559999999999}, {8607550000000000, 8607550000000001});  // version 2
  t.Start();
  auto client = t.Authenticated("BUS-0001", TestKey(1));

  auto delta = client->DownloadDenylist(1);
  REQUIRE(delta.ok());
  REQUIRE(delta->kind == DenylistKind::delta);
  REQUIRE(delta->from_version == 1);
  REQUIRE(delta->to_version == 2);
  REQUIRE(delta->added == std::vector<uint64_t>{8607559999999999});
  REQUIRE(delta->removed == std::vector<uint64_t>{8607550000000000, 8607550000000001});

  auto full = client->DownloadDenylist(0);  // two pages
  REQUIRE(full.ok());
  REQUIRE(full->kind == DenylistKind::full);
  REQUIRE(full->to_version == 2);
  REQUIRE(full->added.size() == 4999);

  auto current = client->DownloadDenylist(2);
  REQUIRE(current.ok());
  REQUIRE(current->from_version == 2);
  REQUIRE(current->to_version == 2);
  REQUIRE(current->added.empty());
  ExpectHeartbeatWorks(*client);
}

TEST_CASE("The fare table downloads in chunks unless the terminal has it", "[terminals][server]") {
  TestServer t;
  Document fares{DocumentKind::fare_table, 3, false, {}};
  std::string json = "{\"version\": 3, \"routes\": [" + std::string(70000, ' ') + "]}";
  fares.content.assign(json.begin(), json.end());
  t.backend.SetDocument(fares);
  t.Start();
  auto client = t.Authenticated("BUS-0001", TestKey(1));
  auto got = client->DownloadDocument(DocumentKind::fare_table, 2);
  REQUIRE(got.ok());
  REQUIRE(*got == fares);
  auto current = client->DownloadDocument(DocumentKind::fare_table, 3);
  REQUIRE(current.ok());
  REQUIRE(current->up_to_date);
  REQUIRE(current->content.empty());
  auto none = client->DownloadDocument(DocumentKind::parameters, 0);
  REQUIRE(none.ok());
  REQUIRE(none->version == 0);
}

TEST_CASE("Online requests reach the backend and its answers come back", "[terminals][server]") {
  TestServer t;
  t.backend.online_handler = [](const TerminalIdentity& who, const OnlineRequest& request) -> OnlineResponse {
    if (const auto* topup = std::get_if<TopupRequest>(&request)) {
      TopupAuthorisation auth;
      auth.request_id = topup->request_id;
      auth.authorisation_id = 555;
      auth.amount_fen = topup->amount_fen;
      auth.balance_after_fen = topup->balance_before_fen + topup->amount_fen;
      auth.host_mac = {1, 2, 3, 4, 5, 6, 7, static_cast<uint8_t>(who.terminal_id.size())};
      return auth;
    }
    if (std::holds_alternative<IdentityCheckRequest>(request)) {
      return TopupAuthorisation{};  // a wrong answer: the server must not pass it on
    }
    return RefusalFor(request, ResultCode::unsupported_request);
  };
  t.Start();
  auto client = t.Authenticated("BUS-0001", TestKey(1));
  auto answer = client->SendOnline(TopupRequest{41, 8607550000000018, 3, 1000, 5000, 1718000000, {}});
  REQUIRE(answer.ok());
  auto* auth = std::get_if<TopupAuthorisation>(&*answer);
  REQUIRE(auth != nullptr);
  REQUIRE(auth->request_id == 41);
  REQUIRE(auth->authorisation_id == 555);
  REQUIRE(auth->balance_after_fen == 6000);
  REQUIRE(auth->host_mac[7] == 8);

  auto wrong = client->SendOnline(IdentityCheckRequest{42, 8607550000000018, IdentityPurpose::hospital, 0, {}});
  REQUIRE(wrong.ok());
  REQUIRE(CodeOf(*wrong) == ResultCode::internal_error);
  REQUIRE(std::holds_alternative<IdentityCheckResponse>(*wrong));

  auto bill = client->SendOnline(BillPaymentRequest{43, 8607550000000018, "WATER-1", 100, {}});
  REQUIRE(bill.ok());
  REQUIRE(CodeOf(*bill) == ResultCode::unsupported_request);
}

TEST_CASE("Unknown, disabled and wrong-key terminals are refused with a code and logged", "[terminals][server][refusal]") {
  TestServer t;
  t.Start();
  auto bystander = t.Authenticated("BUS-0003", TestKey(3));

  auto unknown = t.Connect("BUS-9999", TestKey(1));
  Status status = unknown->Handshake();
  REQUIRE(status.code() == "unknown_terminal");
  REQUIRE(status.kind() == Kind::not_found);

  auto disabled = t.Connect("BUS-OFF", TestKey(9));
  REQUIRE(disabled->Handshake().code() == "terminal_disabled");

  auto wrong_key = t.Connect("BUS-0001", TestKey(2));
  REQUIRE(wrong_key->Handshake().code() == "authentication_failed");

  auto options = t.Options("BUS-0001", TestKey(1));
  options.key_version = 4;
  auto old_key = TerminalClient::ConnectTcp("127.0.0.1", t.port, options).value();
  REQUIRE(old_key->Handshake().code() == "unknown_key_version");

  // A refused session is over; the client knows it.
  REQUIRE(wrong_key->SendHeartbeat(Heartbeat{}).status().code() == "not_authenticated");

  auto events = t.backend.events();
  REQUIRE(events.size() == 4);
  REQUIRE(events[0].code == ResultCode::unknown_terminal);
  REQUIRE(events[0].terminal_id == "BUS-9999");
  REQUIRE(events[0].peer.rfind("tcp:127.0.0.1:", 0) == 0);
  REQUIRE(events[1].code == ResultCode::terminal_disabled);
  REQUIRE(events[2].code == ResultCode::authentication_failed);
  REQUIRE(events[3].code == ResultCode::unknown_key_version);

  // The other session was served all along, and the right key still works.
  ExpectHeartbeatWorks(*bystander);
  auto right = t.Authenticated("BUS-0001", TestKey(1));
  ExpectHeartbeatWorks(*right);
}

TEST_CASE("A replayed frame is refused and the session closed", "[terminals][server][refusal]") {
  TestServer t;
  t.Start();
  auto bystander = t.Authenticated("BUS-0003", TestKey(3));
  auto client = t.Authenticated("BUS-0001", TestKey(1));
  ExpectHeartbeatWorks(*client);
  Bytes heartbeat_frame = client->last_sent_frame();
  REQUIRE(client->SendRawBytes(heartbeat_frame).ok());
  ExpectRefusal(*client, "sequence_error");
  REQUIRE(client->SendHeartbeat(Heartbeat{}).status().code() == "connection_closed");
  REQUIRE(t.backend.events().back().code == ResultCode::sequence_error);
  ExpectHeartbeatWorks(*bystander);
}

TEST_CASE("A frame with an altered body or MAC is refused", "[terminals][server][refusal]") {
  TestServer t;
  t.Start();
  auto bystander = t.Authenticated("BUS-0003", TestKey(3));
  auto client = t.Authenticated("BUS-0001", TestKey(1));
  auto sealed = client->SealFrame(FrameType::heartbeat, Heartbeat{}.Encode());
  REQUIRE(sealed.ok());
  size_t from_end = GENERATE(0u, 20u);  // a MAC byte, a body byte
  REQUIRE(client->SendRawBytes(Resealed(*sealed, from_end)).ok());
  ExpectRefusal(*client, "bad_frame_mac");
  REQUIRE(t.backend.events().back().code == ResultCode::bad_frame_mac);
  ExpectHeartbeatWorks(*bystander);
}

TEST_CASE("A gap in the sequence numbers is refused", "[terminals][server][refusal]") {
  TestServer t;
  t.Start();
  auto client = t.Authenticated("BUS-0001", TestKey(1));
  auto skipped = client->SealFrame(FrameType::heartbeat, Heartbeat{}.Encode());
  auto next = client->SealFrame(FrameType::heartbeat, Heartbeat{}.Encode());
  REQUIRE(client->SendRawBytes(*next).ok());
  ExpectRefusal(*client, "sequence_error");
  auto other = t.Authenticated("BUS-0002", TestKey(2));
  ExpectHeartbeatWorks(*other);
}

TEST_CASE("An oversize frame or a bad CRC on TCP ends the session", "[terminals][server][refusal]") {
  TestServer t;
  t.Start();
  auto bystander = t.Authenticated("BUS-0003", TestKey(3));
  auto client = t.Authenticated("BUS-0001", TestKey(1));
  SECTION("oversize") {
    Bytes header = {kFrameMagic0, kFrameMagic1, kProtocolVersion, static_cast<uint8_t>(FrameType::batch_upload)};
    ByteWriter w(&header);
    w.U32(static_cast<uint32_t>(kFramePayloadBytesMax + 1));
    w.U32(Crc32(ByteView(header).first(8)));
    REQUIRE(client->SendRawBytes(header).ok());
    ExpectRefusal(*client, "frame_too_large");
  }
  SECTION("bad CRC") {
    Bytes frame = *client->SealFrame(FrameType::heartbeat, Heartbeat{}.Encode());
    frame.back() ^= 0xff;
    REQUIRE(client->SendRawBytes(frame).ok());
    ExpectRefusal(*client, "malformed_frame");
  }
  ExpectHeartbeatWorks(*bystander);
}

TEST_CASE("Frames out of place are refused", "[terminals][server][refusal]") {
  TestServer t;
  t.Start();
  SECTION("a heartbeat before the handshake") {
    auto client = t.Connect("BUS-0001", TestKey(1));
    REQUIRE(client->SendMessage(FrameType::heartbeat, Heartbeat{}.Encode()).ok());
    ExpectRefusal(*client, "unexpected_message");
  }
  SECTION("a hello with a malformed body") {
    auto client = t.Connect("BUS-0001", TestKey(1));
    REQUIRE(client->SendMessage(FrameType::hello, Bytes{1, 2, 3}).ok());
    ExpectRefusal(*client, "malformed_message");
  }
  SECTION("another protocol version") {
    auto client = t.Connect("BUS-0001", TestKey(1));
    Hello hello{"BUS-0001", 1, {}};
    REQUIRE(client->SendRawBytes(EncodeFrame(static_cast<uint8_t>(FrameType::hello), hello.Encode(), 2)).ok());
    ExpectRefusal(*client, "unsupported_version");
  }
  SECTION("a server message sent by the terminal") {
    auto client = t.Authenticated("BUS-0001", TestKey(1));
    REQUIRE(client->SendMessage(FrameType::batch_ack, Bytes{}).ok());
    ExpectRefusal(*client, "unexpected_message");
  }
  SECTION("a malformed heartbeat") {
    auto client = t.Authenticated("BUS-0001", TestKey(1));
    REQUIRE(client->SendMessage(FrameType::heartbeat, Bytes{1}).ok());
    ExpectRefusal(*client, "malformed_message");
  }
  SECTION("a batch of too many records") {
    auto client = t.Authenticated("BUS-0001", TestKey(1));
    Bytes body = {0, 0, 0, 1, 0x01, 0x01};
    REQUIRE(client->SendMessage(FrameType::batch_upload, body).ok());
    ExpectRefusal(*client, "batch_too_large");
  }
}

TEST_CASE("A failing backend is answered with backend_unavailable", "[terminals][server]") {
  TestServer t;
  t.backend.fail_batches = true;
  t.Start();
  auto client = t.Authenticated("BUS-0001", TestKey(1));
  std::vector<TapRecord> records = {MakeRecord("BUS-0001", 1)};
  REQUIRE(client->UploadBatch(1, records).status().code() == "backend_unavailable");
}

TEST_CASE("A silent or slow client cannot hold a session", "[terminals][server][refusal]") {
  ServerLimits limits;
  limits.handshake_timeout_ms = 400;
  limits.idle_timeout_ms = 300;
  TestServer t(limits);
  t.Start();
  SECTION("silent after the handshake: idle timeout") {
    auto client = t.Authenticated("BUS-0001", TestKey(1));
    ExpectHeartbeatWorks(*client);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ExpectRefusal(*client, "idle_timeout");
  }
  SECTION("silent from the start: handshake timeout") {
    auto client = t.Connect("BUS-0001", TestKey(1));
    ExpectRefusal(*client, "handshake_timeout");
  }
  SECTION("trickling a hello one byte at a time") {
    // Bytes keep coming, but only complete frames count: the deadline does not move.
    auto client = t.Connect("BUS-0001", TestKey(1));
    Bytes hello = EncodeFrame(static_cast<uint8_t>(FrameType::hello), Hello{"BUS-0001", 1, {}}.Encode());
    for (size_t i = 0; i < 10; ++i) {
      REQUIRE(client->SendRawBytes(ByteView(hello).subspan(i, 1)).ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ExpectRefusal(*client, "handshake_timeout");
  }
  REQUIRE(Eventually([&] { return t.server->stats().sessions_active == 0; }));
  auto fresh = t.Authenticated("BUS-0002", TestKey(2));
  ExpectHeartbeatWorks(*fresh);
}

TEST_CASE("Sessions beyond the limit are refused until one ends", "[terminals][server][refusal]") {
  ServerLimits limits;
  limits.sessions_max = 2;
  TestServer t(limits);
  t.Start();
  auto first = t.Authenticated("BUS-0001", TestKey(1));
  auto second = t.Authenticated("BUS-0002", TestKey(2));
  auto third = t.Connect("BUS-0003", TestKey(3));
  REQUIRE(third->Handshake().code() == "too_many_sessions");
  REQUIRE(t.server->stats().sessions_refused == 1);
  first->Close();
  REQUIRE(Eventually([&] { return t.server->stats().sessions_active == 1; }));
  auto fourth = t.Authenticated("BUS-0003", TestKey(3));
  ExpectHeartbeatWorks(*fourth);
  ExpectHeartbeatWorks(*second);
}

TEST_CASE("Stop lets an in-flight batch be acknowledged, then ends every session", "[terminals][server]") {
  TestServer t;
  t.backend.batch_delay_ms = 400;
  t.Start();
  auto idle = t.Authenticated("BUS-0002", TestKey(2));
  auto busy = t.Authenticated("BUS-0001", TestKey(1));
  std::vector<TapRecord> records = {MakeRecord("BUS-0001", 1)};
  auto upload = std::async(std::launch::async, [&] { return busy->UploadBatch(1, records); });
  REQUIRE(Eventually([&] { return t.backend.batches_in_flight.load() == 1; }));
  t.server->Stop();
  ExpectRefusal(*idle, "server_shutting_down");
  auto ack = upload.get();
  REQUIRE(ack.ok());
  REQUIRE(ack->results == std::vector<ResultCode>{ResultCode::accepted});
  ExpectRefusal(*busy, "server_shutting_down");
  t.thread.join();  // run() returned: nothing left
  REQUIRE(t.server->stats().sessions_active == 0);
  REQUIRE_FALSE(TerminalClient::ConnectTcp("127.0.0.1", t.port, t.Options("BUS-0001", TestKey(1), 500)).ok());
}

TEST_CASE("A session runs over a pseudo-terminal pair as over a serial line", "[terminals][server][serial]") {
  int master = -1;
  int slave = -1;
  char name[256] = {};
  REQUIRE(openpty(&master, &slave, name, nullptr, nullptr) == 0);
  TestServer t;
  t.backend.ChangeDenylist({8607550000000018, 8607550000000026}, {});
  t.backend.ChangeDenylist({8607550000000034}, {8607550000000018});
  REQUIRE(t.server->OpenSerial(name, 115200).ok());
  ::close(slave);  // the server opened the line by its name
  t.Start();

  auto client = TerminalClient::AdoptDescriptor(master, t.Options("BUS-0001", TestKey(1))).value();
  // Noise on the line before the first frame is skipped.
  REQUIRE(client->SendRawBytes(Bytes{0x00, 0xff, 0xcc, 0x55}).ok());
  REQUIRE(client->Handshake().ok());
  std::vector<TapRecord> records = {MakeRecord("BUS-0001", 1), MakeRecord("BUS-0001", 2)};
  auto ack = client->UploadBatch(1, records);
  REQUIRE(ack.ok());
  REQUIRE(ack->results == std::vector<ResultCode>{ResultCode::accepted, ResultCode::accepted});
  REQUIRE(crypto::VerifyEd25519(t.signer.PublicKey(), ack->SignedBytes(), ack->signature));

  // A frame damaged by the line is dropped, not fatal; the next one is served.
  Bytes damaged = EncodeFrame(0x10, Bytes(30, 0x11));
  damaged.back() ^= 1;
  REQUIRE(client->SendRawBytes(damaged).ok());
  auto heartbeat = client->SendHeartbeat(Heartbeat{});
  REQUIRE(heartbeat.ok());
  REQUIRE(heartbeat->versions.denylist_version == 2);
  REQUIRE(Eventually([&] { return t.server->stats().frames_dropped == 1; }));

  auto delta = client->DownloadDenylist(1);
  REQUIRE(delta.ok());
  REQUIRE(delta->added == std::vector<uint64_t>{8607550000000034});
  REQUIRE(delta->removed == std::vector<uint64_t>{8607550000000018});
}

TEST_CASE("A serial line serves a terminal again after it rebooted mid-session", "[terminals][server][serial]") {
  int master = -1;
  int slave = -1;
  char name[256] = {};
  REQUIRE(openpty(&master, &slave, name, nullptr, nullptr) == 0);
  TestServer t;
  REQUIRE(t.server->OpenSerial(name, 9600).ok());
  t.Start();
  int second_master = ::dup(master);
  {
    auto before = TerminalClient::AdoptDescriptor(master, t.Options("BUS-0001", TestKey(1))).value();
    REQUIRE(before->Handshake().ok());
    ExpectHeartbeatWorks(*before);
  }
  ::close(slave);
  auto after = TerminalClient::AdoptDescriptor(second_master, t.Options("BUS-0001", TestKey(1))).value();
  REQUIRE(after->Handshake().ok());
  ExpectHeartbeatWorks(*after);
  REQUIRE(t.server->stats().sessions_authenticated == 2);
}

TEST_CASE("A session runs over TLS with a certificate made by the test", "[terminals][server][tls]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("citycard-tls-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string cert = (dir / "cert.pem").string();
  std::string key = (dir / "key.pem").string();
  std::string command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                        "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout " +
                        key + " -out " + cert + " >/dev/null 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);

  TestServer t;
  auto tls_port = t.server->ListenTcp("127.0.0.1", 0, TlsFiles{cert, key});
  REQUIRE(tls_port.ok());
  t.Start();

  ClientTls tls{cert, "localhost", true};
  auto client = TerminalClient::ConnectTcp("127.0.0.1", *tls_port, t.Options("BUS-0001", TestKey(1)), tls);
  REQUIRE(client.ok());
  REQUIRE((*client)->Handshake().ok());
  std::vector<TapRecord> records = {MakeRecord("BUS-0001", 1)};
  auto ack = (*client)->UploadBatch(1, records);
  REQUIRE(ack.ok());
  REQUIRE(ack->results == std::vector<ResultCode>{ResultCode::accepted});

  // A client that expects another name refuses the certificate.
  ClientTls wrong_name{cert, "citycard.example", true};
  auto refused = TerminalClient::ConnectTcp("127.0.0.1", *tls_port, t.Options("BUS-0001", TestKey(1)), wrong_name);
  REQUIRE(refused.status().code() == "tls_handshake_failed");

  // A certificate or key that cannot be read is reported.
  REQUIRE(t.server->ListenTcp("127.0.0.1", 0, TlsFiles{(dir / "none.pem").string(), key}).status().code() ==
          "tls_setup_failed");
  fs::remove_all(dir);
}
