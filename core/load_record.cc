#include "core/load_record.h"

#include "core/status.h"

namespace citycard {

namespace {

void WriteLoadFields(uint8_t tag, const LoadFields& f, ByteWriter& w) {
  w.U8(tag);
  w.U64(f.card_no);
  w.U32(f.card_counter);
  w.I64(f.balance_before_fen);
  w.I64(f.amount_fen);
  w.FixedText(f.terminal_id, kLoadTerminalIdBytes);
  w.U64(f.request_id);
}

}  // namespace

Bytes LoadAuthInput(const LoadFields& fields) {
  Bytes out;
  out.reserve(kLoadAuthInputBytes);
  ByteWriter w(&out);
  WriteLoadFields(kLoadAuthTag, fields, w);
  CITYCARD_ASSERT(out.size() == kLoadAuthInputBytes);
  return out;
}

Bytes LoadConfirmInput(const LoadFields& fields, int64_t balance_after_fen) {
  Bytes out;
  out.reserve(kLoadConfirmInputBytes);
  ByteWriter w(&out);
  WriteLoadFields(kLoadConfirmTag, fields, w);
  w.I64(balance_after_fen);
  CITYCARD_ASSERT(out.size() == kLoadConfirmInputBytes);
  return out;
}

}  // namespace citycard
