#include "core/holder_registry.h"

#include <algorithm>
#include <unordered_set>

#include "core/csv.h"
#include "core/money.h"
#include "core/national_id.h"

namespace citycard {

namespace {

std::vector<std::string_view> SplitBar(std::string_view text) {
  std::vector<std::string_view> parts;
  if (text.empty()) return parts;
  size_t start = 0;
  while (true) {
    size_t bar = text.find('|', start);
    parts.push_back(text.substr(start, bar - start));
    if (bar == std::string_view::npos) return parts;
    start = bar + 1;
  }
}

// Parses a |-separated set of names into an ascending list without duplicates.
template <typename Enum, typename ParseFn>
Status ParseSet(std::string_view text, ParseFn parse, std::string_view code,
                std::string_view what, std::vector<Enum>* out) {
  for (std::string_view part : SplitBar(text)) {
    std::optional<Enum> value = parse(part);
    if (!value) {
      return Status::BadInput(std::string(code),
                              "unknown " + std::string(what) + " '" + std::string(part) + "'");
    }
    if (std::find(out->begin(), out->end(), *value) != out->end()) {
      return Status::BadInput(std::string(code),
                              std::string(what) + " '" + std::string(part) + "' given twice");
    }
    out->push_back(*value);
  }
  std::sort(out->begin(), out->end());
  return Status::Ok();
}

}  // namespace

Status ValidateHolderName(std::string_view name) {
  if (name.empty() || name.size() > kHolderNameBytesMax) {
    return Status::BadInput("invalid_name", "the name must be 1 to " +
                                                std::to_string(kHolderNameBytesMax) + " bytes");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return Status::BadInput("invalid_name", "the name has a control character");
  }
  return Status::Ok();
}

namespace {

Result<RegistryLine> ParseLine(const CsvRecord& record) {
  const auto& f = record.fields;
  if (f.size() != kHolderRegistryFields) {
    return Status::BadInput("wrong_field_count", "expected 5 fields, found " +
                                                     std::to_string(f.size()));
  }
  RegistryLine line;
  line.line = record.line;
  auto id = NormalizeNationalId(f[0]);
  if (!id.ok()) return id.status();
  line.national_id = std::move(*id);
  CITYCARD_RETURN_IF_ERROR(ValidateHolderName(f[1]));
  line.name = f[1];
  CITYCARD_RETURN_IF_ERROR(ParseSet(f[2], ParseScheme, "invalid_scheme", "scheme", &line.schemes));
  if (line.schemes.empty()) return Status::BadInput("invalid_scheme", "no scheme given");
  CITYCARD_RETURN_IF_ERROR(
      ParseSet(f[3], ParseSpecialGroup, "invalid_group", "group", &line.groups));
  auto amount = ParseYuan(f[4]);
  if (!amount.ok()) {
    return Status::BadInput("invalid_amount", "medical_account '" + f[4] +
                                                  "' is not yuan with at most two decimals");
  }
  line.medical_opening_fen = *amount;
  return line;
}

void AddProblem(ParsedRegistry* parsed, int64_t line, const Status& status) {
  parsed->problems.push_back({line, status.code(), status.message()});
}

}  // namespace

Result<ParsedRegistry> ParseHolderRegistry(std::string_view text) {
  CsvReader reader(text);
  CsvRecord record;
  auto first = reader.Next(&record);
  std::string header;
  if (first.ok() && *first) {
    for (size_t i = 0; i < record.fields.size(); ++i) header += (i ? "," : "") + record.fields[i];
  }
  if (header != kHolderRegistryHeader) {
    return Status::BadInput("invalid_registry_header",
                            "line 1 must be the header " + std::string(kHolderRegistryHeader));
  }
  ParsedRegistry parsed;
  std::unordered_set<std::string> seen;
  while (true) {
    auto next = reader.Next(&record);
    if (!next.ok()) {
      // The reader always moves on past a bad record, so this loop ends; the bound on the
      // problems is a second guard that holds even if it did not.
      AddProblem(&parsed, reader.problem_line(), next.status());
      if (parsed.problems.size() > text.size()) break;
      continue;
    }
    if (!*next) break;
    auto line = ParseLine(record);
    if (!line.ok()) {
      AddProblem(&parsed, record.line, line.status());
    } else if (!seen.insert(line->national_id).second) {
      AddProblem(&parsed, record.line,
                 Status::BadInput("duplicate_national_id",
                                  "the same national id is on an earlier line"));
    } else {
      parsed.lines.push_back(std::move(*line));
    }
  }
  return parsed;
}

}  // namespace citycard
