// Chinese resident identity numbers (GB 11643-1999): 18 characters, 6 digits of region, 8 of
// birth date (YYYYMMDD), 3 of sequence, and a check character computed by ISO 7064 MOD 11-2
// over the first 17 (0-9 or X). citycard never stores or prints the plain number: the
// database keeps a keyed hash of it (crypto/national_id_hash.h) and the masked form that
// MaskNationalId returns.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace citycard {

inline constexpr size_t kNationalIdLength = 18;
// How many characters stay visible at each end of a masked id: "3212**********1234".
inline constexpr size_t kNationalIdMaskKeepHead = 4;
inline constexpr size_t kNationalIdMaskKeepTail = 4;
// The earliest birth year accepted; older dates are typing mistakes, not people.
inline constexpr int kNationalIdBirthYearMin = 1900;

// The ISO 7064 MOD 11-2 check character ('0'-'9' or 'X') of 17 digits. The caller has
// checked that `first17` is 17 ASCII digits; anything else is a programmer error.
char NationalIdCheckChar(std::string_view first17);

// Returns the id in canonical form (a lower-case 'x' check character upper-cased) when it is
// 18 characters, 17 digits then a digit or X, with a real birth date (year from
// kNationalIdBirthYearMin, not after the year 9999 limit of the calendar code) and the right
// check character. Refuses anything else with Kind::bad_input, code "invalid_national_id";
// the message never repeats the id itself, because ids are personal data that must not
// reach logs.
Result<std::string> NormalizeNationalId(std::string_view text);

// "321281199001011234" -> "3212**********1234": the first and last four characters, and a
// star for each of the ten between. The caller passes a normalized id.
std::string MaskNationalId(std::string_view id);

}  // namespace citycard
