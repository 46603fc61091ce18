// Fuzz target: the tap record decoder (core/tap_record.h, docs/protocol.md "Tap record",
// docs/fuzzing.md). The input is decoded as it is (any size but 138 must be refused), and
// also cut or padded with NULs to exactly kTapRecordBytes so that most inputs reach the field
// checks.
//
// Checked, beyond "does not crash":
// - a refusal is Kind::bad_input "invalid_tap_record";
// - an accepted record passes ValidateTapRecord, has a non-negative amount, and is canonical:
//   EncodeTapRecord gives back exactly the input bytes (the terminal MAC and the card's TAC
//   are checked over the decoded record, so bytes it does not cover must not exist);
// - TerminalMacInput is the encoding without the MAC, and TacInput has its documented size.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "core/tap_record.h"

namespace {

using citycard::ByteView;
using citycard::Bytes;
using namespace citycard;

void Check(ByteView bytes) {
  Result<TapRecord> decoded = DecodeTapRecord(bytes);
  if (!decoded.ok()) {
    CITYCARD_ASSERT(decoded.status().kind() == Kind::bad_input);
    CITYCARD_ASSERT(decoded.status().code() == "invalid_tap_record");
    return;
  }
  const TapRecord& record = *decoded;
  CITYCARD_ASSERT(bytes.size() == kTapRecordBytes);
  CITYCARD_ASSERT(ValidateTapRecord(record).ok());
  CITYCARD_ASSERT(record.amount_fen >= 0);
  CITYCARD_ASSERT(!record.terminal_id.empty() && record.terminal_id.size() <= kTerminalIdBytes);
  CITYCARD_ASSERT(!record.operator_id.empty() && record.operator_id.size() <= kOperatorIdBytes);
  Bytes encoded = EncodeTapRecord(record);
  CITYCARD_ASSERT(std::equal(encoded.begin(), encoded.end(), bytes.begin(), bytes.end()));
  Bytes mac_input = TerminalMacInput(record);
  CITYCARD_ASSERT(mac_input.size() == kTapMacInputBytes);
  CITYCARD_ASSERT(std::equal(mac_input.begin(), mac_input.end(), bytes.begin()));
  CITYCARD_ASSERT(TacInput(record).size() == kTacInputBytes);
  CITYCARD_ASSERT(TapTypeName(record.type) != "unknown");
  Result<TapRecord> again = DecodeTapRecord(encoded);
  CITYCARD_ASSERT(again.ok() && *again == record);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(data, size);
  Check(input);
  if (size != kTapRecordBytes) {
    Bytes fitted(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(std::min(size, kTapRecordBytes)));
    fitted.resize(kTapRecordBytes, 0);
    Check(fitted);
  }
  return 0;
}
