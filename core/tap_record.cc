#include "core/tap_record.h"

#include <algorithm>

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

void WriteTacFields(const TapRecord& r, ByteWriter& w) {
  w.U64(r.card_no);
  w.U32(r.card_counter);
  w.I64(r.balance_before_fen);
  w.I64(r.amount_fen);
  w.U8(static_cast<uint8_t>(r.type));
  w.FixedText(r.terminal_id, kTerminalIdBytes);
  w.U32(r.terminal_counter);
  w.I64(r.time_s);
}

void WriteMacInput(const TapRecord& r, ByteWriter& w) {
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
  Bytes out;
  out.reserve(kTacInputBytes);
  ByteWriter w(&out);
  WriteTacFields(r, w);
  CITYCARD_ASSERT(out.size() == kTacInputBytes);
  return out;
}

Bytes TerminalMacInput(const TapRecord& r) {
  Bytes out;
  out.reserve(kTapMacInputBytes);
  ByteWriter w(&out);
  WriteMacInput(r, w);
  CITYCARD_ASSERT(out.size() == kTapMacInputBytes);
  return out;
}

void AppendTapRecord(const TapRecord& r, Bytes* out) {
  size_t start = out->size();
  ByteWriter w(out);
  WriteMacInput(r, w);
  w.Raw(r.terminal_mac);
  CITYCARD_ASSERT(out->size() - start == kTapRecordBytes);
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
