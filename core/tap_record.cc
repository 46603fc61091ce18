#include "core/tap_record.h"

#include <algorithm>
#include <cstring>

namespace citycard {

namespace {

Status Invalid(const std::string& why) { return Status::BadInput("invalid_tap_record", why); }

// Identifiers on the wire are printable ASCII without spaces so that they print and log
// unambiguously; NUL is the padding and may not appear inside.
bool IsIdentifier(const std::string& text, size_t width) {
  if (text.empty() || text.size() > width) return false;
  for (char c : text) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

bool IsKnownType(uint8_t value) { return value >= 1 && value <= 5; }

// Writes a layout's fields into bytes sized beforehand: one store per field, where
// ByteWriter appends (and checks the capacity) byte by byte. Every verified tap has its MAC
// input and its TAC input built, and every booked tap its encoding, so this is on the
// ingest's hot path. Big-endian, as ByteWriter.
class FieldWriter {
 public:
  FieldWriter(uint8_t* out, size_t size) : out_(out), size_(size) {}
  void U8(uint8_t v) { Put(&v, 1); }
  void U32(uint32_t v) { Big<4>(v); }
  void U64(uint64_t v) { Big<8>(v); }
  void I64(int64_t v) { Big<8>(static_cast<uint64_t>(v)); }
  void Raw(ByteView v) { Put(v.data(), v.size()); }
  // The text's bytes, then NUL padding to `width`. A longer text is a programmer error (as in
  // ByteWriter): callers encode records that passed ValidateTapRecord or that they made.
  void FixedText(std::string_view text, size_t width) {
    CITYCARD_ASSERT(text.size() <= width && pos_ + width <= size_);
    std::memcpy(out_ + pos_, text.data(), text.size());
    std::memset(out_ + pos_ + text.size(), 0, width - text.size());
    pos_ += width;
  }
  size_t written() const { return pos_; }

 private:
  template <size_t N>
  void Big(uint64_t v) {
    uint8_t bytes[N];
    for (size_t i = 0; i < N; ++i) bytes[i] = static_cast<uint8_t>(v >> (8 * (N - 1 - i)));
    Put(bytes, N);
  }
  void Put(const uint8_t* data, size_t n) {
    CITYCARD_ASSERT(pos_ + n <= size_);
    std::memcpy(out_ + pos_, data, n);
    pos_ += n;
  }
  uint8_t* out_;
  size_t size_;
  size_t pos_ = 0;
};

void WriteTacFields(const TapRecord& r, FieldWriter& w) {
  w.U64(r.card_no);
  w.U32(r.card_counter);
  w.I64(r.balance_before_fen);
  w.I64(r.amount_fen);
  w.U8(static_cast<uint8_t>(r.type));
  w.FixedText(r.terminal_id, kTerminalIdBytes);
  w.U32(r.terminal_counter);
  w.I64(r.time_s);
}

void WriteMacInput(const TapRecord& r, FieldWriter& w) {
  w.U8(r.format_version);
  w.U8(static_cast<uint8_t>(r.type));
  w.U8(static_cast<uint8_t>(r.profile));
  w.U8(r.flags);
  w.U8(r.tac_key_version);
  w.U8(r.terminal_key_version);
  w.U64(r.card_no);
  w.U32(r.card_counter);
  w.I64(r.balance_before_fen);
  w.I64(r.amount_fen);
  w.FixedText(r.terminal_id, kTerminalIdBytes);
  w.U32(r.terminal_counter);
  w.I64(r.time_s);
  w.FixedText(r.operator_id, kOperatorIdBytes);
  w.U32(r.route_code);
  w.U32(r.station_code);
  w.U32(r.fare_version);
  w.I64(r.full_fare_fen);
  w.I64(r.concession_fen);
  w.I64(r.transfer_discount_fen);
  w.Raw(r.tac);
}

}  // namespace

Status ValidateTapRecord(const TapRecord& r) {
  if (r.format_version != kTapRecordFormatVersion) return Invalid("unknown format version");
  if (!IsKnownType(static_cast<uint8_t>(r.type))) return Invalid("unknown transaction type");
  if (!ProfileFromByte(static_cast<uint8_t>(r.profile))) return Invalid("unknown card profile");
  if (!IsIdentifier(r.terminal_id, kTerminalIdBytes)) return Invalid("bad terminal_id");
  if (!IsIdentifier(r.operator_id, kOperatorIdBytes)) return Invalid("bad operator_id");
  if (r.amount_fen < 0) return Invalid("negative amount");
  return Status::Ok();
}

Bytes TacInput(const TapRecord& r) {
  Bytes out(kTacInputBytes);
  FieldWriter w(out.data(), out.size());
  WriteTacFields(r, w);
  CITYCARD_ASSERT(w.written() == kTacInputBytes);
  return out;
}

Bytes TerminalMacInput(const TapRecord& r) {
  Bytes out(kTapMacInputBytes);
  FieldWriter w(out.data(), out.size());
  WriteMacInput(r, w);
  CITYCARD_ASSERT(w.written() == kTapMacInputBytes);
  return out;
}

void AppendTapRecord(const TapRecord& r, Bytes* out) {
  size_t start = out->size();
  out->resize(start + kTapRecordBytes);
  FieldWriter w(out->data() + start, kTapRecordBytes);
  WriteMacInput(r, w);
  w.Raw(r.terminal_mac);
  CITYCARD_ASSERT(w.written() == kTapRecordBytes);
}

Bytes EncodeTapRecord(const TapRecord& r) {
  Bytes out;
  out.reserve(kTapRecordBytes);
  AppendTapRecord(r, &out);
  return out;
}

Result<TapRecord> DecodeTapRecord(ByteView bytes) {
  if (bytes.size() != kTapRecordBytes) return Invalid("a tap record is 138 bytes");
  ByteReader in(bytes);
  TapRecord r;
  r.format_version = in.U8();
  uint8_t type = in.U8();
  uint8_t profile = in.U8();
  r.flags = in.U8();
  r.tac_key_version = in.U8();
  r.terminal_key_version = in.U8();
  r.card_no = in.U64();
  r.card_counter = in.U32();
  r.balance_before_fen = in.I64();
  r.amount_fen = in.I64();
  r.terminal_id = in.FixedText(kTerminalIdBytes);
  r.terminal_counter = in.U32();
  r.time_s = in.I64();
  r.operator_id = in.FixedText(kOperatorIdBytes);
  r.route_code = in.U32();
  r.station_code = in.U32();
  r.fare_version = in.U32();
  r.full_fare_fen = in.I64();
  r.concession_fen = in.I64();
  r.transfer_discount_fen = in.I64();
  in.RawInto(r.tac.data(), r.tac.size());
  in.RawInto(r.terminal_mac.data(), r.terminal_mac.size());
  CITYCARD_ASSERT(in.ok() && in.remaining() == 0);
  if (!IsKnownType(type)) return Invalid("unknown transaction type");
  r.type = static_cast<TapType>(type);
  auto p = ProfileFromByte(profile);
  if (!p) return Invalid("unknown card profile");
  r.profile = *p;
  CITYCARD_RETURN_IF_ERROR(ValidateTapRecord(r));
  // Only the canonical encoding is accepted: a text field's padding must be all NUL. Without
  // this, bytes after a field's first NUL could be altered without changing the decoded
  // record, and a MAC checked over the decoded record would not cover them.
  Bytes canonical = EncodeTapRecord(r);
  if (!std::equal(canonical.begin(), canonical.end(), bytes.begin())) {
    return Invalid("text field padding is not all NUL");
  }
  return r;
}

std::string_view TapTypeName(TapType type) {
  switch (type) {
    case TapType::purchase: return "purchase";
    case TapType::metro_entry: return "metro_entry";
    case TapType::metro_exit: return "metro_exit";
    case TapType::load: return "load";
    case TapType::gate_entry: return "gate_entry";
  }
  return "unknown";
}

}  // namespace citycard
