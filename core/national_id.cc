#include "core/national_id.h"

#include "core/time.h"

namespace citycard {

namespace {

Status InvalidNationalId(std::string_view why) {
  return Status::BadInput("invalid_national_id", "not a valid national id: " + std::string(why));
}

bool AllDigits(std::string_view text) {
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int DigitsValue(std::string_view text) {
  int value = 0;
  for (char c : text) value = value * 10 + (c - '0');
  return value;
}

bool BirthDateValid(std::string_view id) {
  int year = DigitsValue(id.substr(6, 4));
  int month = DigitsValue(id.substr(10, 2));
  int day = DigitsValue(id.substr(12, 2));
  return year >= kNationalIdBirthYearMin &&
         IsValidDate(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
}

}  // namespace

char NationalIdCheckChar(std::string_view first17) {
  CITYCARD_ASSERT(first17.size() == kNationalIdLength - 1 && AllDigits(first17));
  // ISO 7064 MOD 11-2: weight of position i (counted from the right, the check character
  // being position 1) is 2^(i-1) mod 11; the check value makes the weighted sum 1 mod 11.
  int sum = 0;
  int weight = 2;  // position 2, the last of the 17 digits
  for (size_t i = first17.size(); i-- > 0;) {
    sum += (first17[i] - '0') * weight;
    weight = (weight * 2) % 11;
  }
  int check = (12 - sum % 11) % 11;
  return check == 10 ? 'X' : static_cast<char>('0' + check);
}

Result<std::string> NormalizeNationalId(std::string_view text) {
  if (text.size() != kNationalIdLength) return InvalidNationalId("it must be 18 characters");
  std::string id(text);
  if (id.back() == 'x') id.back() = 'X';
  std::string_view first17 = std::string_view(id).substr(0, kNationalIdLength - 1);
  if (!AllDigits(first17)) return InvalidNationalId("the first 17 characters must be digits");
  if (!BirthDateValid(id)) return InvalidNationalId("the birth date part is not a real date");
  if (NationalIdCheckChar(first17) != id.back()) {
    return InvalidNationalId("the check character is wrong");
  }
  return id;
}

std::string MaskNationalId(std::string_view id) {
  CITYCARD_ASSERT(id.size() == kNationalIdLength);
  std::string masked(id.substr(0, kNationalIdMaskKeepHead));
  masked.append(kNationalIdLength - kNationalIdMaskKeepHead - kNationalIdMaskKeepTail, '*');
  masked.append(id.substr(kNationalIdLength - kNationalIdMaskKeepTail));
  return masked;
}

}  // namespace citycard
