// Card numbers: 16 decimal digits, PAN-like. Six digits of issuer prefix (this city's card
// office), nine digits of sequence, and a Luhn check digit (ISO/IEC 7812-1) so that a
// mistyped digit or a swap of two neighbours is caught before any lookup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace citycard {

inline constexpr size_t kCardNumberLength = 16;
inline constexpr std::string_view kCardIssuerPrefix = "860755";
inline constexpr size_t kCardSequenceDigits = 9;
inline constexpr uint64_t kCardSequenceMax = 999'999'999;
static_assert(kCardIssuerPrefix.size() + kCardSequenceDigits + 1 == kCardNumberLength);

// The Luhn check digit ('0'-'9') to append to `digits`. The caller has checked that
// `digits` is all ASCII digits; anything else is a programmer error.
char LuhnCheckDigit(std::string_view digits);

// The card number for sequence number `sequence` (1 to kCardSequenceMax; anything else is a
// programmer error): prefix, zero-padded sequence, check digit.
std::string MakeCardNumber(uint64_t sequence);

// Ok when `text` is 16 digits with a correct Luhn check digit. Refuses anything else with
// Kind::bad_input, code "invalid_card_no". Other issuers' prefixes pass: whether the card
// exists is the store's question, not this one's.
Status ValidateCardNumber(std::string_view text);

// The card number as the integer the tap record carries, and back (zero-padded to 16).
uint64_t CardNumberToInt(std::string_view card_no);
std::string CardNumberFromInt(uint64_t card_no);

}  // namespace citycard
