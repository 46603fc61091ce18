#include "core/csv.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace citycard {

namespace {

constexpr std::string_view kUtf8ByteOrderMark = "\xEF\xBB\xBF";

std::string_view Describe(CsvProblem problem) {
  switch (problem) {
    case CsvProblem::none: return "no problem";
    case CsvProblem::unterminated_quote: return "a quoted field is not closed before the end of the file";
    case CsvProblem::quote_in_unquoted_field: return "a quote inside a field that is not quoted";
    case CsvProblem::text_after_closing_quote: return "text after the closing quote of a field";
    case CsvProblem::bare_carriage_return: return "a carriage return not followed by a line feed";
    case CsvProblem::not_utf8: return "the text is not valid UTF-8";
    case CsvProblem::record_too_long: return "a record longer than the limit (an unclosed quote?)";
    case CsvProblem::too_many_fields: return "more fields than the limit";
  }
  return "unknown problem";
}

int64_t CountLineFeeds(std::string_view text) {
  return static_cast<int64_t>(std::count(text.begin(), text.end(), '\n'));
}

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// True when the byte is one of the bytes that end an unquoted field or make it invalid.
bool IsSpecial(char c) { return c == ',' || c == '\n' || c == '\r' || c == '"'; }

}  // namespace

std::string_view CsvProblemName(CsvProblem problem) {
  switch (problem) {
    case CsvProblem::none: return "none";
    case CsvProblem::unterminated_quote: return "unterminated_quote";
    case CsvProblem::quote_in_unquoted_field: return "quote_in_unquoted_field";
    case CsvProblem::text_after_closing_quote: return "text_after_closing_quote";
    case CsvProblem::bare_carriage_return: return "bare_carriage_return";
    case CsvProblem::not_utf8: return "not_utf8";
    case CsvProblem::record_too_long: return "record_too_long";
    case CsvProblem::too_many_fields: return "too_many_fields";
  }
  return "unknown";
}

size_t FindInvalidUtf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // Most of every file is ASCII: skip it eight bytes at a time.
    while (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, s + i, 8);
      if ((word & 0x8080808080808080ull) != 0) break;
      i += 8;
    }
    if (i >= n) break;
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // The well-formed sequences of the Unicode standard (Table 3-7): the first continuation
    // byte's range depends on the lead byte, which rules out overlong forms, surrogates and
    // code points above U+10FFFF.
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;
      if (c == 0xED) high = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;
      if (c == 0xF4) high = 0x8F;
    } else {
      return i;
    }
    if (i + length > n) return i;
    if (s[i + 1] < low || s[i + 1] > high) return i;
    for (size_t k = 2; k < length; ++k) {
      if (!IsContinuation(s[i + k])) return i;
    }
    i += length;
  }
  return n;
}

CsvReader::CsvReader(std::string_view text) : text_(text) {
  if (text_.substr(0, kUtf8ByteOrderMark.size()) == kUtf8ByteOrderMark) {
    pos_ = kUtf8ByteOrderMark.size();
  }
}

Status CsvReader::Fail(CsvProblem problem, int64_t line, size_t resume_at) {
  problem_ = problem;
  problem_line_ = line;
  pos_ = resume_at;
  std::string limit;
  if (problem == CsvProblem::record_too_long) limit = fmt::format(" of {} bytes", kCsvRecordBytesMax);
  if (problem == CsvProblem::too_many_fields) limit = fmt::format(" of {}", kCsvFieldsMax);
  return Status::BadInput("invalid_csv",
                          fmt::format("line {}: {}{}", line, Describe(problem), limit));
}

// Reads one field starting at pos_. On success pos_ is at the byte that ended the field
// (a comma, LF, CRLF or the end of the text). On a problem, sets field_problem_* and returns
// false; line_ then counts every line feed up to the resume point.
bool CsvReader::ReadField(std::string* field, size_t record_start) {
  field->clear();
  const size_t n = text_.size();
  auto problem_at = [&](CsvProblem problem, int64_t line, size_t resume_at) {
    field_problem_ = problem;
    field_problem_line_ = line;
    field_resume_at_ = resume_at;
    return false;
  };
  // Resuming at the next line is the best guess of where the next record starts.
  auto next_line = [&](size_t from) {
    size_t feed = text_.find('\n', from);
    if (feed == std::string_view::npos) return n;
    ++line_;
    return feed + 1;
  };
  if (pos_ < n && text_[pos_] == '"') {
    const int64_t open_line = line_;
    ++pos_;
    while (true) {
      size_t quote = text_.find('"', pos_);
      size_t segment_end = quote == std::string_view::npos ? n : quote;
      if (segment_end - record_start > kCsvRecordBytesMax) {
        return problem_at(CsvProblem::record_too_long, open_line, n);
      }
      std::string_view segment = text_.substr(pos_, segment_end - pos_);
      line_ += CountLineFeeds(segment);
      if (quote == std::string_view::npos) {
        return problem_at(CsvProblem::unterminated_quote, open_line, n);
      }
      field->append(segment);
      if (quote + 1 < n && text_[quote + 1] == '"') {
        field->push_back('"');
        pos_ = quote + 2;
        continue;
      }
      pos_ = quote + 1;
      break;
    }
    if (pos_ == n || text_[pos_] == ',' || text_[pos_] == '\n') return true;
    if (text_[pos_] == '\r' && pos_ + 1 < n && text_[pos_ + 1] == '\n') return true;
    CsvProblem problem = text_[pos_] == '\r' ? CsvProblem::bare_carriage_return
                                             : CsvProblem::text_after_closing_quote;
    int64_t line = line_;
    return problem_at(problem, line, next_line(pos_));
  }
  const size_t start = pos_;
  while (pos_ < n && !IsSpecial(text_[pos_])) ++pos_;
  if (pos_ - record_start > kCsvRecordBytesMax) {
    return problem_at(CsvProblem::record_too_long, line_, n);
  }
  if (pos_ < n && text_[pos_] == '"') {
    int64_t line = line_;
    return problem_at(CsvProblem::quote_in_unquoted_field, line, next_line(pos_));
  }
  if (pos_ < n && text_[pos_] == '\r' && !(pos_ + 1 < n && text_[pos_ + 1] == '\n')) {
    int64_t line = line_;
    return problem_at(CsvProblem::bare_carriage_return, line, next_line(pos_));
  }
  field->assign(text_.data() + start, pos_ - start);
  return true;
}

Result<bool> CsvReader::Next(CsvRecord* record) {
  problem_ = CsvProblem::none;
  problem_line_ = 0;
  const size_t n = text_.size();
  // Skip empty lines.
  while (pos_ < n) {
    if (text_[pos_] == '\n') {
      ++pos_;
    } else if (text_[pos_] == '\r' && pos_ + 1 < n && text_[pos_ + 1] == '\n') {
      pos_ += 2;
    } else {
      break;
    }
    ++line_;
  }
  if (pos_ >= n) return false;

  const size_t record_start = pos_;
  record->line = line_;
  std::vector<std::string>& fields = record->fields;
  size_t count = 0;
  std::string overflow;  // fields beyond kCsvFieldsMax are read here and dropped
  while (true) {
    std::string* field = &overflow;
    if (count < kCsvFieldsMax) {
      if (count == fields.size()) fields.emplace_back();
      field = &fields[count];
    }
    ++count;
    if (!ReadField(field, record_start)) {
      fields.resize(std::min(count, kCsvFieldsMax));
      return Fail(field_problem_, field_problem_line_, field_resume_at_);
    }
    if (pos_ == n) break;
    if (text_[pos_] == ',') {
      ++pos_;
      continue;
    }
    // LF or CRLF: ReadField stops on nothing else.
    pos_ += text_[pos_] == '\r' ? 2 : 1;
    ++line_;
    break;
  }
  fields.resize(std::min(count, kCsvFieldsMax));

  std::string_view raw = text_.substr(record_start, pos_ - record_start);
  size_t bad = FindInvalidUtf8(raw);
  if (bad != raw.size()) {
    return Fail(CsvProblem::not_utf8, record->line + CountLineFeeds(raw.substr(0, bad)), pos_);
  }
  if (count > kCsvFieldsMax) return Fail(CsvProblem::too_many_fields, record->line, pos_);
  return true;
}

Result<std::vector<CsvRecord>> ParseCsv(std::string_view text) {
  CsvReader reader(text);
  std::vector<CsvRecord> records;
  while (true) {
    CsvRecord record;
    Result<bool> more = reader.Next(&record);
    if (!more.ok()) return more.status();
    if (!*more) break;
    records.push_back(std::move(record));
  }
  return records;
}

void AppendCsvField(std::string* out, std::string_view field) {
  if (std::none_of(field.begin(), field.end(), IsSpecial)) {
    out->append(field);
    return;
  }
  out->push_back('"');
  for (char c : field) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendCsvRecord(std::string* out, const std::vector<std::string_view>& fields) {
  // Found by tests/fuzz/csv_fuzz.cc: written bare, this record was an empty line.
  if (fields.size() == 1 && fields[0].empty()) {
    out->append("\"\"\n");
    return;
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendCsvField(out, fields[i]);
  }
  out->push_back('\n');
}

}  // namespace citycard
