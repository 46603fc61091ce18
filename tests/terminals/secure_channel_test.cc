#include <catch2/catch.hpp>

#include "terminals/secure_channel.h"

using namespace citycard;
using namespace citycard::terminals;

namespace {

Bytes Key(uint8_t seed) {
  Bytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(seed + i);
  return key;
}

struct Pair {
  Hello hello{"BUS-0001", 1, {}};
  Challenge challenge{};
  SessionKeys keys;
  Pair() {
    for (size_t i = 0; i < kNonceBytes; ++i) {
      hello.terminal_nonce[i] = static_cast<uint8_t>(i);
      challenge.server_nonce[i] = static_cast<uint8_t>(0x80 + i);
    }
    keys = DeriveSessionKeys(Key(1), hello, challenge);
  }
};

Frame Sealed(SecureChannel& channel, FrameType type, ByteView body) {
  return Frame{kProtocolVersion, static_cast<uint8_t>(type), channel.Seal(type, body)};
}

}  // namespace

TEST_CASE("The handshake transcript is id, key version and both nonces", "[terminals][secure]") {
  Pair p;
  Bytes transcript = HandshakeTranscript(p.hello, p.challenge);
  REQUIRE(transcript.size() == 16 + 1 + 16 + 16);
  REQUIRE(ToHex(ByteView(transcript).first(17)) == "4255532d30303031000000000000000001");
}

TEST_CASE("The proofs differ by direction and depend on the key and both nonces", "[terminals][secure]") {
  Pair p;
  Proof terminal = ComputeTerminalProof(Key(1), p.hello, p.challenge);
  Proof server = ComputeServerProof(Key(1), p.hello, p.challenge);
  REQUIRE(terminal != server);
  REQUIRE(ComputeTerminalProof(Key(2), p.hello, p.challenge) != terminal);
  Challenge other = p.challenge;
  other.server_nonce[0] ^= 1;
  REQUIRE(ComputeTerminalProof(Key(1), p.hello, other) != terminal);
  REQUIRE(p.keys.terminal_to_server != p.keys.server_to_terminal);
}

TEST_CASE("A sealed frame opens on the other side, in order", "[terminals][secure]") {
  Pair p;
  SecureChannel terminal(p.keys, ChannelRole::terminal);
  SecureChannel server(p.keys, ChannelRole::server);
  Bytes body = {1, 2, 3};
  for (int i = 0; i < 3; ++i) {
    Frame frame = Sealed(terminal, FrameType::heartbeat, body);
    REQUIRE(frame.payload.size() == 8 + 3 + 16);
    auto opened = server.Open(frame);
    REQUIRE(opened.code == ResultCode::ok);
    REQUIRE(opened.body == body);
  }
  REQUIRE(server.next_receive_sequence() == 3);
  Frame answer = Sealed(server, FrameType::heartbeat_ack, body);
  REQUIRE(terminal.Open(answer).code == ResultCode::ok);
}

TEST_CASE("A replayed, reordered or skipped frame is a sequence error", "[terminals][secure]") {
  Pair p;
  SecureChannel terminal(p.keys, ChannelRole::terminal);
  SecureChannel server(p.keys, ChannelRole::server);
  Frame first = Sealed(terminal, FrameType::heartbeat, {});
  Frame second = Sealed(terminal, FrameType::heartbeat, {});
  Frame third = Sealed(terminal, FrameType::heartbeat, {});
  SECTION("replay") {
    REQUIRE(server.Open(first).code == ResultCode::ok);
    REQUIRE(server.Open(first).code == ResultCode::sequence_error);
  }
  SECTION("reorder") {
    REQUIRE(server.Open(second).code == ResultCode::sequence_error);
    REQUIRE(server.Open(first).code == ResultCode::ok);
  }
  SECTION("gap") {
    REQUIRE(server.Open(first).code == ResultCode::ok);
    REQUIRE(server.Open(third).code == ResultCode::sequence_error);
  }
}

TEST_CASE("An altered frame fails its MAC", "[terminals][secure]") {
  Pair p;
  SecureChannel terminal(p.keys, ChannelRole::terminal);
  SecureChannel server(p.keys, ChannelRole::server);
  Frame frame = Sealed(terminal, FrameType::heartbeat, Bytes{1, 2, 3});
  SECTION("body") { frame.payload[9] ^= 1; }
  SECTION("MAC") { frame.payload.back() ^= 1; }
  SECTION("type") { frame.type = static_cast<uint8_t>(FrameType::denylist_request); }
  SECTION("sequence number") { frame.payload[7] = 1; }
  SECTION("direction: the terminal's own frame reflected back to it") {
    REQUIRE(terminal.Open(frame).code == ResultCode::bad_frame_mac);
    return;
  }
  REQUIRE(server.Open(frame).code == ResultCode::bad_frame_mac);
  REQUIRE(server.next_receive_sequence() == 0);
}

TEST_CASE("A secured payload shorter than sequence and MAC is malformed", "[terminals][secure]") {
  Pair p;
  SecureChannel server(p.keys, ChannelRole::server);
  Frame frame{kProtocolVersion, static_cast<uint8_t>(FrameType::heartbeat), Bytes(23, 0)};
  REQUIRE(server.Open(frame).code == ResultCode::malformed_frame);
}
