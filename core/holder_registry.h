// The holder registry file from the social-security bureau (docs/registry-format.md): a CSV
// file with the header `national_id,name,schemes,groups,medical_account`. This is the pure
// reading and checking of it; CardOffice::ImportHolders applies it.
//
// Every line is checked before anything is applied, and each bad line is reported by number
// and reason. Messages never contain a national id (personal data); they name the line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/registry.h"
#include "core/status.h"

namespace citycard {

inline constexpr std::string_view kHolderRegistryHeader =
    "national_id,name,schemes,groups,medical_account";
inline constexpr size_t kHolderRegistryFields = 5;
// The largest registry file read (a city of ten million holders at ~80 bytes a line).
inline constexpr size_t kHolderRegistryBytesMax = size_t{2} << 30;

struct RegistryLine {
  int64_t line = 0;          // 1-based line number in the file
  std::string national_id;   // normalized (core/national_id.h)
  std::string name;
  std::vector<Scheme> schemes;       // ascending, at least one
  std::vector<SpecialGroup> groups;  // ascending, possibly none
  int64_t medical_opening_fen = 0;
};

struct RegistryProblem {
  int64_t line = 0;
  std::string code;     // stable snake_case reason, see docs/registry-format.md
  std::string message;  // for people; never contains the national id
};

struct ParsedRegistry {
  std::vector<RegistryLine> lines;        // the good lines, in file order
  std::vector<RegistryProblem> problems;  // the bad lines, in file order
};

// Ok when `name` is 1 to kHolderNameBytesMax bytes without control characters; Kind::bad_input
// "invalid_name" otherwise. (UTF-8 validity is checked where text enters: the CSV reader, the
// command line.)
Status ValidateHolderName(std::string_view name);

// Reads and checks a whole registry file. Per-line problems are collected, not returned as a
// failure: invalid_csv, wrong_field_count, invalid_national_id, duplicate_national_id (the
// same person on two lines: the second and later are bad), invalid_name, invalid_scheme,
// invalid_group, invalid_amount. The file as a whole fails only when it has no header or a
// wrong one: Kind::bad_input "invalid_registry_header".
Result<ParsedRegistry> ParseHolderRegistry(std::string_view text);

}  // namespace citycard
