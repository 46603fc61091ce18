// The MACs that prove a tap and a top-up (docs/crypto.md, "TAC", "Terminal MAC", "Load MACs"):
// - the TAC: the card's AES-CMAC under its diversified key over TacInput(record), truncated
//   to kTacBytes (8);
// - the terminal MAC: HMAC-SHA256 under the terminal's key over TerminalMacInput(record),
//   truncated to kTerminalMacBytes (16);
// - the host's load authorisation and the card's load confirmation: AES-CMAC under the card
//   key over LoadAuthInput / LoadConfirmInput (core/load_record.h), truncated to 8.
// The byte layouts live in core (core/tap_record.h, core/load_record.h); this file only
// computes MACs. Every Verify* compares in constant time. None of these functions is
// thread-safe for a shared key object (see crypto/mac.h).
#pragma once

#include <array>
#include <cstdint>

#include "core/load_record.h"
#include "core/tap_record.h"
#include "crypto/mac.h"

namespace citycard::crypto {

using Tac = std::array<uint8_t, kTacBytes>;
using TerminalMac = std::array<uint8_t, kTerminalMacBytes>;
using LoadMac = std::array<uint8_t, kLoadMacBytes>;

// The TAC a card with `card_key` computes for `record` (record.tac is ignored).
Tac ComputeTac(const AesCmac& card_key, const TapRecord& record);
// True when record.tac is the TAC of `record` under card_key.
bool VerifyTac(const AesCmac& card_key, const TapRecord& record);

// The terminal MAC of `record` (covers every field and the TAC; record.terminal_mac ignored).
TerminalMac ComputeTerminalMac(const HmacSha256& terminal_key, const TapRecord& record);
// Sets record->terminal_mac. Call after the TAC is in place: the MAC covers it.
void SignTapRecord(const HmacSha256& terminal_key, TapRecord* record);
// True when record.terminal_mac is the terminal MAC of `record` under terminal_key.
bool VerifyTerminalMac(const HmacSha256& terminal_key, const TapRecord& record);
// The same check over the record exactly as received (kTapRecordBytes of wire bytes): the MAC
// of the first kTapMacInputBytes against the last kTerminalMacBytes. Prefer it where the wire
// bytes are at hand: it covers every received byte, including text padding that a decoder
// may not look at. False for any other length.
bool VerifyTerminalMacBytes(const HmacSha256& terminal_key, ByteView encoded_record);

// The host's load authorisation: what the core sends for the card to accept a load.
LoadMac ComputeLoadAuthorisation(const AesCmac& card_key, const LoadFields& fields);
bool VerifyLoadAuthorisation(const AesCmac& card_key, const LoadFields& fields, ByteView mac);

// The card's load confirmation: what the card returns once it holds balance_after_fen.
LoadMac ComputeLoadConfirmation(const AesCmac& card_key, const LoadFields& fields,
                                int64_t balance_after_fen);
bool VerifyLoadConfirmation(const AesCmac& card_key, const LoadFields& fields,
                            int64_t balance_after_fen, ByteView mac);

}  // namespace citycard::crypto
