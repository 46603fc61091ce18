// Fuzz target: the holder registry import (core/holder_registry.h,
// docs/registry-format.md, docs/fuzzing.md). The input is the text of a registry file; when
// it does not start with the header, the header is put in front, so that most inputs reach
// the holder lines.
//
// Checked, beyond "does not crash":
// - the file as a whole is refused only for its header (Kind::bad_input
//   "invalid_registry_header");
// - every accepted line has a normalized 18-character national id that no earlier line had,
//   a valid name, at least one scheme, schemes and groups ascending without repeats, and a
//   medical opening balance of 0..kAmountFenMax fen (never negative);
// - problems carry a documented reason code, and no problem's message repeats the national
//   id of its line (ids are personal data that must not reach logs);
// - good and bad lines together are every record after the header.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/csv.h"
#include "core/holder_registry.h"
#include "core/money.h"
#include "core/national_id.h"
#include "core/status.h"

namespace {

using namespace citycard;

const std::set<std::string> kReasonCodes = {
    "invalid_csv",  "wrong_field_count", "invalid_national_id", "duplicate_national_id",
    "invalid_name", "invalid_scheme",    "invalid_group",       "invalid_amount"};

template <typename T>
bool AscendingUnique(const std::vector<T>& values) {
  return std::adjacent_find(values.begin(), values.end(),
                            [](T a, T b) { return !(a < b); }) == values.end();
}

// The fields of each record, by line, as the reader sees them; *records counts the records
// read or refused.
std::map<int64_t, std::vector<std::string>> FieldsByLine(std::string_view text, size_t* records) {
  std::map<int64_t, std::vector<std::string>> fields;
  CsvReader reader(text);
  CsvRecord record;
  *records = 0;
  while (true) {
    Result<bool> read = reader.Next(&record);
    if (read.ok() && !*read) break;
    ++*records;
    if (read.ok()) fields[record.line] = record.fields;
  }
  return fields;
}

// True when the problem's message repeats the valid national id of its line. An id that
// also stands in another field of the line (a fuzzer's copy) may be quoted as that field.
bool LeaksNationalId(const RegistryProblem& problem,
                     const std::map<int64_t, std::vector<std::string>>& fields_by_line) {
  auto fields = fields_by_line.find(problem.line);
  if (fields == fields_by_line.end() || fields->second.empty()) return false;
  const std::vector<std::string>& f = fields->second;
  if (!NormalizeNationalId(f[0]).ok()) return false;
  for (size_t i = 1; i < f.size(); ++i) {
    if (f[i].find(f[0]) != std::string::npos) return false;
  }
  return problem.message.find(f[0]) != std::string::npos;
}

void CheckText(std::string_view text) {
  Result<ParsedRegistry> parsed = ParseHolderRegistry(text);
  if (!parsed.ok()) {
    CITYCARD_ASSERT(parsed.status().kind() == Kind::bad_input);
    CITYCARD_ASSERT(parsed.status().code() == "invalid_registry_header");
    return;
  }
  std::set<std::string> ids;
  for (const RegistryLine& line : parsed->lines) {
    CITYCARD_ASSERT(line.national_id.size() == 18);
    Result<std::string> normalized = NormalizeNationalId(line.national_id);
    CITYCARD_ASSERT(normalized.ok() && *normalized == line.national_id);
    CITYCARD_ASSERT(ids.insert(line.national_id).second);
    CITYCARD_ASSERT(ValidateHolderName(line.name).ok());
    CITYCARD_ASSERT(!line.schemes.empty() && AscendingUnique(line.schemes));
    CITYCARD_ASSERT(AscendingUnique(line.groups));
    CITYCARD_ASSERT(line.medical_opening_fen >= 0 && line.medical_opening_fen <= kAmountFenMax);
  }
  size_t records = 0;
  std::map<int64_t, std::vector<std::string>> fields_by_line = FieldsByLine(text, &records);
  CITYCARD_ASSERT(parsed->lines.size() + parsed->problems.size() + 1 == records);
  for (const RegistryProblem& problem : parsed->problems) {
    CITYCARD_ASSERT(kReasonCodes.count(problem.code) == 1);
    CITYCARD_ASSERT(!LeaksNationalId(problem, fields_by_line));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  CheckText(text);
  if (!text.starts_with(kHolderRegistryHeader)) {
    CheckText(std::string(kHolderRegistryHeader) + "\n" + std::string(text));
  }
  return 0;
}
