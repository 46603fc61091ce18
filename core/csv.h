// A small, strict, pure CSV reader and writer (RFC 4180) for the files citycard takes in and
// hands back: the holder registry, utility bill files and their results (docs/bills.md,
// ../shared/design/CLI.md "File formats").
//
// What the reader accepts (and nothing else):
// - Records end with LF or CRLF; the last record may end without one. A line with no bytes
//   at all (an empty line) is skipped, so a trailing blank line is harmless.
// - A field is either unquoted (any bytes but `,` `"` CR LF) or quoted: `"` ... `"`, where a
//   doubled quote `""` stands for one quote and commas, CR and LF are kept as they are.
// - The text is strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF). A
//   UTF-8 byte-order mark at the very start of the text is skipped: spreadsheet programs write
//   one, and it is not part of the first field.
// - No trimming: " 12.50" is a field with a leading space; the caller decides what that means.
//
// Line numbers are 1-based and count LF bytes, so a quoted field that spans lines moves the
// following records' numbers on, as an editor would show them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace citycard {

// Limits. A record longer than kCsvRecordBytesMax is almost always an unterminated quote that
// swallows the rest of the file; stopping early gives a useful line number and bounds memory.
inline constexpr size_t kCsvRecordBytesMax = 1 << 20;  // 1 MiB
inline constexpr size_t kCsvFieldsMax = 1024;

// Why a record could not be read. Stable names (CsvProblemName) appear in messages and in
// the reason codes of file importers.
enum class CsvProblem : uint8_t {
  none = 0,
  unterminated_quote,        // a quoted field runs to the end of the text
  quote_in_unquoted_field,   // `ab"c`: a quote inside a field that did not start with one
  text_after_closing_quote,  // `"ab"c`: something other than , CR LF after a closing quote
  bare_carriage_return,      // a CR not followed by LF outside quotes
  not_utf8,                  // a byte sequence that is not strict UTF-8
  record_too_long,           // more than kCsvRecordBytesMax bytes
  too_many_fields,           // more than kCsvFieldsMax fields
};

// "unterminated_quote", "not_utf8", ... ("none" for none).
std::string_view CsvProblemName(CsvProblem problem);

struct CsvRecord {
  int64_t line = 0;  // 1-based line on which the record starts
  std::vector<std::string> fields;
};

// Reads records one at a time from a text it does not own (the text must outlive the
// reader). Reuses the caller's CsvRecord storage, so reading a million-line file costs no
// allocation per record once the field strings have grown.
class CsvReader {
 public:
  explicit CsvReader(std::string_view text);

  // Reads the next record into *record (its previous contents are replaced).
  // - true: a record was read.
  // - false: the end of the text; every later call returns false again.
  // - Kind::bad_input, code "invalid_csv", message "line N: <why>": the record could not be
  //   read; problem() and problem_line() say why and where (for not_utf8, the line of the
  //   first bad byte). *record then holds the start line and whatever fields were read.
  //   The reader has moved on: for not_utf8 and too_many_fields past the whole record; for
  //   the quote and carriage-return problems to the start of the next line (a best effort:
  //   a broken quote can leave the reader inside a field, so later records may be reported
  //   too); after unterminated_quote and record_too_long it is at the end of the text.
  Result<bool> Next(CsvRecord* record);

  CsvProblem problem() const { return problem_; }
  int64_t problem_line() const { return problem_line_; }
  // The line the reader will read next (1-based); after the end, one past the last line.
  int64_t line() const { return line_; }

 private:
  Status Fail(CsvProblem problem, int64_t line, size_t resume_at);
  bool ReadField(std::string* field, size_t record_start);

  std::string_view text_;
  size_t pos_ = 0;
  int64_t line_ = 1;
  CsvProblem problem_ = CsvProblem::none;
  int64_t problem_line_ = 0;
  // Set by ReadField when it stops on a problem.
  CsvProblem field_problem_ = CsvProblem::none;
  int64_t field_problem_line_ = 0;
  size_t field_resume_at_ = 0;
};

// Reads a whole text. Fails on the first record that cannot be read, with the code and
// message of CsvReader::Next. Convenient for small files; importers of large files should use
// CsvReader, which keeps one record in memory instead of all of them.
Result<std::vector<CsvRecord>> ParseCsv(std::string_view text);

// The offset of the first byte that breaks strict UTF-8 in text, or text.size() when the
// whole text is valid.
size_t FindInvalidUtf8(std::string_view text);
inline bool IsValidUtf8(std::string_view text) { return FindInvalidUtf8(text) == text.size(); }

// Appends one field, quoted only when it holds a comma, a quote, CR or LF (quotes doubled).
void AppendCsvField(std::string* out, std::string_view field);

// Appends fields separated by commas and ended by LF. A record of one empty field is written
// as `""`, because an empty line would be skipped by the reader and the record lost.
void AppendCsvRecord(std::string* out, const std::vector<std::string_view>& fields);

}  // namespace citycard
