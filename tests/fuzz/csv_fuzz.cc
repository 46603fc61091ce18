// Fuzz target: the CSV reader and writer (core/csv.h, docs/fuzzing.md). The input is the
// text of a file.
//
// Checked, beyond "does not crash":
// - FindInvalidUtf8 (which skips ASCII eight bytes at a time) agrees with a plain
//   one-code-point-at-a-time reference of the same rules;
// - the reader always ends (it moves on after every record and every refusal), its refusals
//   are Kind::bad_input "invalid_csv" with a problem and a line inside the text, line numbers
//   never go back, and no record has more than kCsvFieldsMax fields;
// - every record read is valid UTF-8 and, written back with AppendCsvRecord, reads again as
//   the same fields (the writer quotes whatever the reader would split on);
// - ParseCsv succeeds exactly when the reader reads the whole text without a refusal.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/csv.h"
#include "core/status.h"

namespace {

using namespace citycard;

// The offset of the first invalid sequence, decoding one code point at a time: the lead
// byte gives the length, the continuation bytes the value, and the value must be the
// shortest form, not a surrogate and at most U+10FFFF.
size_t ReferenceInvalidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    size_t length = lead < 0x80 ? 1 : lead >> 5 == 0x6 ? 2 : lead >> 4 == 0xE ? 3 : lead >> 3 == 0x1E ? 4 : 0;
    if (length == 0 || i + length > text.size()) return i;
    uint32_t code = length == 1 ? lead : lead & (0x7F >> length);
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return i;
      code = code << 6 | (next & 0x3F);
    }
    const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < smallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return i;
    i += length;
  }
  return text.size();
}

int64_t CountLines(std::string_view text) {
  int64_t lines = 1;
  for (char c : text) lines += c == '\n';
  return lines;
}

// Writes the record and reads it back. A byte-order mark goes first so that a first field
// that itself starts with one is not taken for the file's mark.
void CheckRewrite(const CsvRecord& record) {
  std::vector<std::string_view> fields(record.fields.begin(), record.fields.end());
  std::string text = "\xEF\xBB\xBF";
  AppendCsvRecord(&text, fields);
  CsvReader reader(text);
  CsvRecord again;
  Result<bool> read = reader.Next(&again);
  CITYCARD_ASSERT(read.ok() && *read);
  CITYCARD_ASSERT(again.fields == record.fields);
  Result<bool> end = reader.Next(&again);
  CITYCARD_ASSERT(end.ok() && !*end);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  CITYCARD_ASSERT(FindInvalidUtf8(text) == ReferenceInvalidUtf8(text));

  const int64_t lines = CountLines(text);
  CsvReader reader(text);
  CsvRecord record;
  bool refused = false;
  int64_t last_line = 0;
  // Every call consumes at least one byte or ends the text, so size + 1 calls suffice.
  size_t calls = 0;
  while (true) {
    CITYCARD_ASSERT(++calls <= size + 1);
    Result<bool> read = reader.Next(&record);
    if (!read.ok()) {
      refused = true;
      CITYCARD_ASSERT(read.status().kind() == Kind::bad_input);
      CITYCARD_ASSERT(read.status().code() == "invalid_csv");
      CITYCARD_ASSERT(reader.problem() != CsvProblem::none);
      CITYCARD_ASSERT(reader.problem_line() >= 1 && reader.problem_line() <= lines);
      CITYCARD_ASSERT(record.fields.size() <= kCsvFieldsMax);
      continue;
    }
    if (!*read) break;
    CITYCARD_ASSERT(reader.problem() == CsvProblem::none);
    CITYCARD_ASSERT(record.line > last_line && record.line <= lines);
    last_line = record.line;
    CITYCARD_ASSERT(!record.fields.empty() && record.fields.size() <= kCsvFieldsMax);
    for (const std::string& field : record.fields) CITYCARD_ASSERT(IsValidUtf8(field));
    CheckRewrite(record);
  }
  CITYCARD_ASSERT(reader.line() <= lines + 1);
  // After the end the reader stays at the end.
  Result<bool> again = reader.Next(&record);
  CITYCARD_ASSERT(again.ok() && !*again);

  Result<std::vector<CsvRecord>> parsed = ParseCsv(text);
  CITYCARD_ASSERT(parsed.ok() == !refused);
  return 0;
}
