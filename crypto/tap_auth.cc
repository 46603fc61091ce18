#include "crypto/tap_auth.h"

#include <algorithm>

namespace citycard::crypto {

namespace {

template <size_t N, size_t M>
std::array<uint8_t, N> Truncate(const std::array<uint8_t, M>& full) {
  static_assert(N <= M);
  std::array<uint8_t, N> out{};
  std::copy_n(full.begin(), N, out.begin());
  return out;
}

}  // namespace

Tac ComputeTac(const AesCmac& card_key, const TapRecord& record) {
  return Truncate<kTacBytes>(card_key.Compute(TacInput(record)));
}

bool VerifyTac(const AesCmac& card_key, const TapRecord& record) {
  return ConstantTimeEqual(ComputeTac(card_key, record), record.tac);
}

TerminalMac ComputeTerminalMac(const HmacSha256& terminal_key, const TapRecord& record) {
  return Truncate<kTerminalMacBytes>(terminal_key.Compute(TerminalMacInput(record)));
}

void SignTapRecord(const HmacSha256& terminal_key, TapRecord* record) {
  record->terminal_mac = ComputeTerminalMac(terminal_key, *record);
}

bool VerifyTerminalMac(const HmacSha256& terminal_key, const TapRecord& record) {
  return ConstantTimeEqual(ComputeTerminalMac(terminal_key, record), record.terminal_mac);
}

bool VerifyTerminalMacBytes(const HmacSha256& terminal_key, ByteView encoded_record) {
  if (encoded_record.size() != kTapRecordBytes) return false;
  Mac32 full = terminal_key.Compute(encoded_record.first(kTapMacInputBytes));
  return ConstantTimeEqual(ByteView(full).first(kTerminalMacBytes),
                           encoded_record.subspan(kTapMacInputBytes));
}

LoadMac ComputeLoadAuthorisation(const AesCmac& card_key, const LoadFields& fields) {
  return Truncate<kLoadMacBytes>(card_key.Compute(LoadAuthInput(fields)));
}

bool VerifyLoadAuthorisation(const AesCmac& card_key, const LoadFields& fields, ByteView mac) {
  return ConstantTimeEqual(ComputeLoadAuthorisation(card_key, fields), mac);
}

LoadMac ComputeLoadConfirmation(const AesCmac& card_key, const LoadFields& fields,
                                int64_t balance_after_fen) {
  return Truncate<kLoadMacBytes>(card_key.Compute(LoadConfirmInput(fields, balance_after_fen)));
}

bool VerifyLoadConfirmation(const AesCmac& card_key, const LoadFields& fields,
                            int64_t balance_after_fen, ByteView mac) {
  return ConstantTimeEqual(ComputeLoadConfirmation(card_key, fields, balance_after_fen), mac);
}

}  // namespace citycard::crypto
