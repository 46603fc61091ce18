#include "terminals/worked_examples.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/card_number.h"
#include "core/tap_record.h"
#include "crypto/digest.h"
#include "crypto/mac.h"
#include "crypto/signer.h"
#include "terminals/frame_codec.h"
#include "terminals/messages.h"
#include "terminals/secure_channel.h"

namespace citycard::terminals {

namespace {

// The fixed inputs of the examples. Never use such keys for anything else.
Bytes Sequence(uint8_t first, size_t n) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(first + i);
  return out;
}

template <size_t N>
std::array<uint8_t, N> SequenceArray(uint8_t first) {
  std::array<uint8_t, N> out{};
  for (size_t i = 0; i < N; ++i) out[i] = static_cast<uint8_t>(first + i);
  return out;
}

const char* kTerminalId = "BUS-0001";
constexpr int64_t kServerTimeMs = 1718000000000;    // 2024-06-10 14:13:20 in Shanghai
constexpr int64_t kTerminalTimeMs = 1717999999250;

// Everything a side of the example session needs.
struct ExampleSession {
  Bytes terminal_key = Sequence(0x00, 32);
  Hello hello{kTerminalId, 1, SequenceArray<kNonceBytes>(0xa0)};
  Challenge challenge{SequenceArray<kNonceBytes>(0xb0)};
  SessionKeys keys = DeriveSessionKeys(terminal_key, hello, challenge);
  SecureChannel terminal{keys, ChannelRole::terminal};
  SecureChannel server{keys, ChannelRole::server};
  crypto::Ed25519Signer core = crypto::Ed25519Signer::FromPrivateKey(Sequence(0xc0, 32)).value();
};

class Writer {
 public:
  // Up to 32 bytes on the label's line; longer values as a hex dump under it.
  void Value(std::string_view label, ByteView bytes) {
    if (bytes.size() <= 32) {
      text_ += fmt::format("{:<20}{}\n", label, ToHex(bytes));
    } else {
      text_ += fmt::format("{} ({} bytes)\n", label, bytes.size());
      text_ += HexDump(bytes);
    }
  }
  void Line(std::string_view line) {
    text_ += line;
    text_ += '\n';
  }
  // A frame as it travels, with a title line.
  void FrameBytes(std::string_view direction, FrameType type, std::string_view kind, ByteView frame) {
    text_ += fmt::format("{}  {} (0x{:02x}), {}, {} bytes\n", direction, FrameTypeName(type),
                         static_cast<int>(type), kind, frame.size());
    text_ += HexDump(frame);
  }
  void Plain(std::string_view direction, FrameType type, ByteView body) {
    FrameBytes(direction, type, "plain", EncodeFrame(static_cast<uint8_t>(type), body));
  }
  void Secured(std::string_view direction, SecureChannel& channel, FrameType type, ByteView body) {
    uint64_t sequence = channel.next_send_sequence();
    Bytes frame = EncodeFrame(static_cast<uint8_t>(type), channel.Seal(type, body));
    FrameBytes(direction, type, fmt::format("secured, sequence {}", sequence), frame);
  }
  void Blank() { text_ += '\n'; }
  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
};

std::string HandshakeExample(ExampleSession& s) {
  Writer w;
  w.Value("terminal key", s.terminal_key);
  w.Value("terminal nonce Nt", s.hello.terminal_nonce);
  w.Value("server nonce Ns", s.challenge.server_nonce);
  w.Blank();
  w.Plain("T -> S", FrameType::hello, s.hello.Encode());
  w.Blank();
  w.Plain("S -> T", FrameType::challenge, s.challenge.Encode());
  w.Blank();
  w.Value("transcript", HandshakeTranscript(s.hello, s.challenge));
  TerminalProof proof{ComputeTerminalProof(s.terminal_key, s.hello, s.challenge)};
  w.Plain("T -> S", FrameType::terminal_proof, proof.Encode());
  w.Blank();
  ServerProof server_proof{ComputeServerProof(s.terminal_key, s.hello, s.challenge)};
  w.Plain("S -> T", FrameType::server_proof, server_proof.Encode());
  w.Blank();
  w.Value("Kts", s.keys.terminal_to_server);
  w.Value("Kst", s.keys.server_to_terminal);
  w.Blank();
  Heartbeat heartbeat{kTerminalTimeMs, Versions{41, 3, 1}, 2};
  w.Secured("T -> S", s.terminal, FrameType::heartbeat, heartbeat.Encode());
  w.Blank();
  HeartbeatAck ack{kServerTimeMs, Versions{42, 3, 1}};
  w.Secured("S -> T", s.server, FrameType::heartbeat_ack, ack.Encode());
  return w.Take();
}

TapRecord ExampleRecord(uint64_t card_sequence, uint32_t ttc) {
  TapRecord r;
  r.type = TapType::purchase;
  r.card_no = CardNumberToInt(MakeCardNumber(card_sequence));
  r.terminal_id = kTerminalId;
  r.terminal_counter = ttc;
  r.time_s = 1717999000 + ttc;
  r.operator_id = "szbus";
  r.route_code = 5;
  r.station_code = 12;
  r.fare_version = 3;
  r.full_fare_fen = 200;
  return r;
}

std::string BatchExample(ExampleSession& s) {
  TapRecord first = ExampleRecord(1, 41);
  first.card_counter = 7;
  first.balance_before_fen = 5000;
  first.amount_fen = 200;
  TapRecord second = ExampleRecord(2, 42);
  second.profile = Profile::student;
  second.card_counter = 3;
  second.balance_before_fen = 1200;
  second.amount_fen = 100;
  second.concession_fen = 100;
  // The TAC and terminal MAC as docs/crypto.md defines them, under example keys.
  crypto::AesCmac card_key(Sequence(0x40, 16));
  crypto::HmacSha256 terminal_mac(s.terminal_key);
  for (TapRecord* r : {&first, &second}) {
    crypto::Mac16 tac = card_key.Compute(TacInput(*r));
    std::copy_n(tac.begin(), kTacBytes, r->tac.begin());
    crypto::Mac32 mac = terminal_mac.Compute(TerminalMacInput(*r));
    std::copy_n(mac.begin(), kTerminalMacBytes, r->terminal_mac.begin());
  }
  std::vector<TapRecord> records = {first, second};
  BatchUpload upload = BatchUpload::FromRecords(17, records);

  Writer w;
  w.Value("card key (example)", Sequence(0x40, 16));
  w.Value("record 1", upload.record(0));
  w.Value("record 2", upload.record(1));
  w.Blank();
  w.Secured("T -> S", s.terminal, FrameType::batch_upload, upload.Encode());
  w.Blank();
  BatchAck ack;
  ack.terminal_id = kTerminalId;
  ack.batch_id = upload.batch_id;
  ack.batch_digest = crypto::Sha256Digester().Sha256(upload.records);
  ack.server_time_ms = kServerTimeMs;
  ack.results = {ResultCode::accepted, ResultCode::duplicate};
  Bytes signed_bytes = ack.SignedBytes();
  ack.signature = s.core.Sign(signed_bytes);
  w.Value("core private seed", s.core.PrivateKey());
  w.Value("core public key", s.core.PublicKey());
  w.Value("batch digest", ack.batch_digest);
  w.Value("signed bytes: \"citycard batch ack v1\" + ack body without the signature", signed_bytes);
  w.Value("signature", ack.signature);
  w.Blank();
  w.Secured("S -> T", s.server, FrameType::batch_ack, ack.Encode());
  return w.Take();
}

std::string DenylistExample(ExampleSession& s) {
  Writer w;
  DenylistRequest request{41};
  w.Secured("T -> S", s.terminal, FrameType::denylist_request, request.Encode());
  w.Blank();
  DenylistPage page;
  page.kind = DenylistKind::delta;
  page.from_version = 41;
  page.to_version = 42;
  page.removed = {CardNumberToInt(MakeCardNumber(3))};
  page.added = {CardNumberToInt(MakeCardNumber(4)), CardNumberToInt(MakeCardNumber(5))};
  w.Line("removed " + MakeCardNumber(3) + "; added " + MakeCardNumber(4) + ", " + MakeCardNumber(5));
  w.Secured("S -> T", s.server, FrameType::denylist_page, page.Encode());
  return w.Take();
}

std::string ErrorExample() {
  Writer w;
  Hello hello{"BUS-0999", 1, SequenceArray<kNonceBytes>(0xa0)};
  w.Plain("T -> S", FrameType::hello, hello.Encode());
  w.Blank();
  ErrorMessage error{ResultCode::unknown_terminal, "unknown terminal BUS-0999"};
  w.Plain("S -> T", FrameType::error, error.Encode());
  return w.Take();
}

std::string Fenced(const std::string& text) { return "```text\n" + text + "```\n"; }

std::string Open(const std::string& name) { return "<!-- example:" + name + " -->\n"; }
std::string Close(const std::string& name) { return "<!-- /example:" + name + " -->"; }

}  // namespace

std::string HexDump(ByteView bytes) {
  std::string out;
  for (size_t line = 0; line < bytes.size(); line += 16) {
    out += fmt::format("{:04x} ", line);
    for (size_t i = line; i < std::min(bytes.size(), line + 16); ++i) {
      out += (i - line == 8) ? "  " : " ";
      out += fmt::format("{:02x}", bytes[i]);
    }
    out += '\n';
  }
  return out;
}

std::vector<WorkedExample> GenerateWorkedExamples() {
  ExampleSession session;
  std::vector<WorkedExample> out;
  out.push_back({"handshake", HandshakeExample(session)});
  out.push_back({"batch", BatchExample(session)});
  out.push_back({"denylist_delta", DenylistExample(session)});
  out.push_back({"error", ErrorExample()});
  return out;
}

std::string ExtractExampleBlock(const std::string& document, const std::string& name) {
  size_t open = document.find(Open(name));
  size_t close = document.find(Close(name));
  if (open == std::string::npos || close == std::string::npos || close < open) return "";
  std::string block = document.substr(open + Open(name).size(), close - open - Open(name).size());
  const std::string fence_open = "```text\n";
  const std::string fence_close = "```\n";
  if (block.rfind(fence_open, 0) != 0 || block.size() < fence_open.size() + fence_close.size() ||
      block.compare(block.size() - fence_close.size(), fence_close.size(), fence_close) != 0) {
    return "";
  }
  return block.substr(fence_open.size(), block.size() - fence_open.size() - fence_close.size());
}

bool ReplaceExampleBlocks(const std::vector<WorkedExample>& examples, std::string* document) {
  std::string result = *document;
  for (const WorkedExample& example : examples) {
    size_t open = result.find(Open(example.name));
    size_t close = result.find(Close(example.name));
    if (open == std::string::npos || close == std::string::npos || close < open) return false;
    size_t start = open + Open(example.name).size();
    result.replace(start, close - start, Fenced(example.text));
  }
  *document = std::move(result);
  return true;
}

}  // namespace citycard::terminals
