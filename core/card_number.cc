#include "core/card_number.h"

#include <fmt/format.h>

namespace citycard {

namespace {

bool AllDigits(std::string_view text) {
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return !text.empty();
}

}  // namespace

char LuhnCheckDigit(std::string_view digits) {
  CITYCARD_ASSERT(AllDigits(digits));
  // Doubling starts at the rightmost digit of the payload, because the check digit will
  // stand to its right.
  int sum = 0;
  bool doubled = true;
  for (size_t i = digits.size(); i-- > 0;) {
    int d = digits[i] - '0';
    if (doubled) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
    doubled = !doubled;
  }
  return static_cast<char>('0' + (10 - sum % 10) % 10);
}

std::string MakeCardNumber(uint64_t sequence) {
  CITYCARD_ASSERT(sequence >= 1 && sequence <= kCardSequenceMax);
  std::string payload = fmt::format("{}{:0{}}", kCardIssuerPrefix, sequence, kCardSequenceDigits);
  return payload + LuhnCheckDigit(payload);
}

Status ValidateCardNumber(std::string_view text) {
  if (text.size() != kCardNumberLength || !AllDigits(text)) {
    return Status::BadInput("invalid_card_no",
                            "'" + std::string(text) + "' is not a card number of 16 digits");
  }
  if (LuhnCheckDigit(text.substr(0, kCardNumberLength - 1)) != text.back()) {
    return Status::BadInput("invalid_card_no",
                            "'" + std::string(text) + "' has a wrong check digit (mistyped?)");
  }
  return Status::Ok();
}

uint64_t CardNumberToInt(std::string_view card_no) {
  uint64_t value = 0;
  for (char c : card_no) value = value * 10 + static_cast<uint64_t>(c - '0');
  return value;
}

std::string CardNumberFromInt(uint64_t card_no) { return fmt::format("{:016}", card_no); }

}  // namespace citycard
