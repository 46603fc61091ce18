// The byte layouts of the two MACs of an online top-up (load). Pure: crypto/tap_auth.h
// computes the MACs over these bytes. Layouts and worked example: docs/crypto.md, section
// "Load MACs".
//
// 1. The host's load authorisation (core -> card): the core proves to the card that it
//    authorised loading `amount_fen` onto the card whose purse is `balance_before_fen` and
//    whose counter is `card_counter`. The card refuses a load whose authorisation does not
//    verify or whose counter or balance is not its own (so an authorisation cannot be replayed).
// 2. The card's load confirmation (card -> core): the card proves that it applied the load and
//    now holds `balance_after_fen`.
//
// Both MACs are AES-CMAC under the card's key, the same key as the TAC, so every input
// starts with a tag byte that no TAC input can start with (a TAC input starts with the card
// number's top byte, which is 0x00 for every 16-digit card number), and the three inputs
// have different lengths: no MAC of one kind can be passed off as another.
#pragma once

#include <cstdint>
#include <string>

#include "core/bytes.h"

namespace citycard {

inline constexpr uint8_t kLoadAuthTag = 0x41;     // 'A'
inline constexpr uint8_t kLoadConfirmTag = 0x43;  // 'C'
inline constexpr size_t kLoadMacBytes = 8;        // AES-CMAC truncated, as the TAC
inline constexpr size_t kLoadTerminalIdBytes = 16;  // ASCII, NUL-padded, as in the tap record
inline constexpr size_t kLoadAuthInputBytes = 1 + 8 + 4 + 8 + 8 + kLoadTerminalIdBytes + 8;
inline constexpr size_t kLoadConfirmInputBytes = kLoadAuthInputBytes + 8;
static_assert(kLoadAuthInputBytes == 53, "docs/crypto.md: the load authorisation input is 53 bytes");
static_assert(kLoadConfirmInputBytes == 61, "docs/crypto.md: the load confirmation input is 61 bytes");

// What the host authorises and the card confirms.
struct LoadFields {
  uint64_t card_no = 0;
  uint32_t card_counter = 0;       // the card's CTC before the load (as the card reported it)
  int64_t balance_before_fen = 0;  // the card's purse before the load
  int64_t amount_fen = 0;          // what is loaded, > 0
  std::string terminal_id;         // at most kLoadTerminalIdBytes ASCII characters
  uint64_t request_id = 0;         // the terminal's request id of the top-up

  bool operator==(const LoadFields&) const = default;
};

// kLoadAuthInputBytes: tag 'A', card_no, card_counter, balance_before, amount, terminal_id,
// request_id, big-endian. The terminal id must fit (asserted; the protocol validated it).
Bytes LoadAuthInput(const LoadFields& fields);

// kLoadConfirmInputBytes: tag 'C', the same fields as LoadAuthInput, then balance_after.
Bytes LoadConfirmInput(const LoadFields& fields, int64_t balance_after_fen);

}  // namespace citycard
