#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "core/csv.h"

using namespace citycard;

namespace {

std::vector<std::vector<std::string>> FieldsOf(const std::vector<CsvRecord>& records) {
  std::vector<std::vector<std::string>> out;
  for (const CsvRecord& record : records) out.push_back(record.fields);
  return out;
}

using Rows = std::vector<std::vector<std::string>>;

// Reads a text to its end and returns the problems as (line, name) pairs.
std::vector<std::pair<int64_t, std::string>> ProblemsOf(std::string_view text) {
  CsvReader reader(text);
  CsvRecord record;
  std::vector<std::pair<int64_t, std::string>> problems;
  for (int guard = 0; guard < 100; ++guard) {
    Result<bool> more = reader.Next(&record);
    if (!more.ok()) {
      problems.emplace_back(reader.problem_line(), std::string(CsvProblemName(reader.problem())));
      continue;
    }
    if (!*more) break;
  }
  return problems;
}

}  // namespace

TEST_CASE("Plain records are split at commas and line feeds with their line numbers",
          "[core][csv]") {
  auto records = ParseCsv("a,b,c\n1,2,3\n");
  REQUIRE(records.ok());
  REQUIRE(FieldsOf(*records) == Rows{{"a", "b", "c"}, {"1", "2", "3"}});
  REQUIRE((*records)[0].line == 1);
  REQUIRE((*records)[1].line == 2);
}

TEST_CASE("The last record may end without a line break and CRLF ends records too",
          "[core][csv]") {
  auto records = ParseCsv("a,b\r\n1,2");
  REQUIRE(records.ok());
  REQUIRE(FieldsOf(*records) == Rows{{"a", "b"}, {"1", "2"}});
  REQUIRE((*records)[1].line == 2);
}

TEST_CASE("Empty fields are kept, empty lines are skipped but counted", "[core][csv]") {
  auto records = ParseCsv(",a,,\n\n\r\nx\n\n");
  REQUIRE(records.ok());
  REQUIRE(FieldsOf(*records) == Rows{{"", "a", "", ""}, {"x"}});
  REQUIRE((*records)[1].line == 4);
}

TEST_CASE("An empty text has no records", "[core][csv]") {
  REQUIRE(ParseCsv("")->empty());
  REQUIRE(ParseCsv("\n\n")->empty());
  REQUIRE(ParseCsv("\xEF\xBB\xBF")->empty());
}

TEST_CASE("Quoted fields keep commas, doubled quotes and line breaks", "[core][csv]") {
  auto records = ParseCsv("\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"crlf\r\nkept\",\"\"\nnext,1\n");
  REQUIRE(records.ok());
  REQUIRE(FieldsOf(*records) ==
          Rows{{"a,b", "say \"hi\"", "two\nlines", "crlf\r\nkept", ""}, {"next", "1"}});
  // The first record spans lines 1 to 3, so the next one starts on line 4.
  REQUIRE((*records)[1].line == 4);
}

TEST_CASE("A byte-order mark at the start is not part of the first field", "[core][csv]") {
  auto records = ParseCsv("\xEF\xBB\xBF" "bill_id,x\n");
  REQUIRE(records.ok());
  REQUIRE((*records)[0].fields[0] == "bill_id");
  // Anywhere else it is ordinary text.
  records = ParseCsv("a,\xEF\xBB\xBF" "b\n");
  REQUIRE((*records)[0].fields[1] == "\xEF\xBB\xBF" "b");
}

TEST_CASE("Chinese text passes through unchanged", "[core][csv]") {
  auto records = ParseCsv("杭州市西湖区文三路 12 号,\"张三,李四\"\n");
  REQUIRE(records.ok());
  REQUIRE(FieldsOf(*records) == Rows{{"杭州市西湖区文三路 12 号", "张三,李四"}});
}

TEST_CASE("Spaces around fields are kept, not trimmed", "[core][csv]") {
  auto records = ParseCsv(" a , b \n");
  REQUIRE(FieldsOf(*records) == Rows{{" a ", " b "}});
}

TEST_CASE("An unterminated quote is reported on the line where it opens", "[core][csv]") {
  auto records = ParseCsv("a,b\nc,\"open\nmore\nstill open\n");
  REQUIRE_FALSE(records.ok());
  REQUIRE(records.status().code() == "invalid_csv");
  REQUIRE(records.status().exit_code() == 5);
  REQUIRE(records.status().message() ==
          "line 2: a quoted field is not closed before the end of the file");
  REQUIRE(ProblemsOf("a,b\nc,\"open\nmore\nstill open\n") ==
          std::vector<std::pair<int64_t, std::string>>{{2, "unterminated_quote"}});
}

TEST_CASE("Stray quotes and carriage returns are refused with their line", "[core][csv]") {
  REQUIRE(ProblemsOf("ok\nab\"c,d\nok\n") ==
          std::vector<std::pair<int64_t, std::string>>{{2, "quote_in_unquoted_field"}});
  REQUIRE(ProblemsOf("ok\nok\n\"ab\"c,d\n") ==
          std::vector<std::pair<int64_t, std::string>>{{3, "text_after_closing_quote"}});
  REQUIRE(ProblemsOf("a\rb\nok\n") ==
          std::vector<std::pair<int64_t, std::string>>{{1, "bare_carriage_return"}});
  REQUIRE(ProblemsOf("\"a\"\rb\nok\n") ==
          std::vector<std::pair<int64_t, std::string>>{{1, "bare_carriage_return"}});
}

TEST_CASE("The reader goes on after a bad record with the next line", "[core][csv]") {
  CsvReader reader("a,b\nx\"y,z\nc,d\n");
  CsvRecord record;
  REQUIRE(*reader.Next(&record));
  REQUIRE(record.fields == std::vector<std::string>{"a", "b"});
  Result<bool> bad = reader.Next(&record);
  REQUIRE_FALSE(bad.ok());
  REQUIRE(bad.status().message() == "line 2: a quote inside a field that is not quoted");
  REQUIRE(record.line == 2);
  REQUIRE(*reader.Next(&record));
  REQUIRE(record.fields == std::vector<std::string>{"c", "d"});
  REQUIRE(record.line == 3);
  REQUIRE_FALSE(*reader.Next(&record));
  REQUIRE_FALSE(*reader.Next(&record));
}

TEST_CASE("Bytes that are not UTF-8 are refused on the line of the first bad byte",
          "[core][csv]") {
  // "张三" in GBK, as a spreadsheet on a Chinese Windows would save it.
  std::string gbk = "\xD5\xC5\xC8\xFD";
  REQUIRE(ProblemsOf("a,b\n1," + gbk + "\n2,ok\n") ==
          std::vector<std::pair<int64_t, std::string>>{{2, "not_utf8"}});
  // Inside a quoted field that spans lines, the line of the byte itself.
  REQUIRE(ProblemsOf("\"one\ntwo\xFF\",x\nok\n") ==
          std::vector<std::pair<int64_t, std::string>>{{2, "not_utf8"}});
  auto records = ParseCsv("ok\n\xC3\n");
  REQUIRE(records.status().message() == "line 2: the text is not valid UTF-8");
}

TEST_CASE("A bad UTF-8 record is skipped whole and reading goes on", "[core][csv]") {
  CsvReader reader("\"a\xFF\nb\",c\nd,e\n");
  CsvRecord record;
  REQUIRE_FALSE(reader.Next(&record).ok());
  REQUIRE(reader.problem() == CsvProblem::not_utf8);
  REQUIRE(reader.problem_line() == 1);
  REQUIRE(*reader.Next(&record));
  REQUIRE(record.fields == std::vector<std::string>{"d", "e"});
  REQUIRE(record.line == 3);
}

TEST_CASE("UTF-8 validation is strict", "[core][csv]") {
  REQUIRE(IsValidUtf8(""));
  REQUIRE(IsValidUtf8("plain ascii that is longer than eight bytes"));
  REQUIRE(IsValidUtf8("\xC2\x80"));                 // U+0080
  REQUIRE(IsValidUtf8("\xE4\xB8\xAD"));             // 中
  REQUIRE(IsValidUtf8("\xED\x9F\xBF"));             // U+D7FF
  REQUIRE(IsValidUtf8("\xEE\x80\x80"));             // U+E000
  REQUIRE(IsValidUtf8("\xF0\x9F\x98\x80"));         // U+1F600
  REQUIRE(IsValidUtf8("\xF4\x8F\xBF\xBF"));         // U+10FFFF
  REQUIRE(FindInvalidUtf8("ab\xC0\xAF") == 2);      // overlong '/'
  REQUIRE(FindInvalidUtf8("\xC1\xBF") == 0);        // overlong
  REQUIRE(FindInvalidUtf8("\xE0\x80\xAF") == 0);    // overlong three-byte form
  REQUIRE(FindInvalidUtf8("\xED\xA0\x80") == 0);    // surrogate U+D800
  REQUIRE(FindInvalidUtf8("\xF0\x8F\xBF\xBF") == 0);  // overlong four-byte form
  REQUIRE(FindInvalidUtf8("\xF4\x90\x80\x80") == 0);  // above U+10FFFF
  REQUIRE(FindInvalidUtf8("\xF5\x80\x80\x80") == 0);
  REQUIRE(FindInvalidUtf8("\xFF") == 0);
  REQUIRE(FindInvalidUtf8("\x80") == 0);            // lone continuation
  REQUIRE(FindInvalidUtf8("12345678\xE4\xB8") == 8);  // truncated at the end
  REQUIRE(FindInvalidUtf8("\xE4\x41\xAD") == 0);    // continuation missing
}

TEST_CASE("Too many fields are refused and the reader goes on", "[core][csv]") {
  std::string wide(kCsvFieldsMax, ',');  // kCsvFieldsMax + 1 fields
  std::string text = wide + "\nok\n";  // the reader does not own its text
  CsvReader reader(text);
  CsvRecord record;
  Result<bool> bad = reader.Next(&record);
  REQUIRE_FALSE(bad.ok());
  REQUIRE(reader.problem() == CsvProblem::too_many_fields);
  REQUIRE(bad.status().message() == "line 1: more fields than the limit of 1024");
  REQUIRE(*reader.Next(&record));
  REQUIRE(record.fields == std::vector<std::string>{"ok"});
  // Exactly the limit is fine.
  std::string full(kCsvFieldsMax - 1, ',');
  REQUIRE((*ParseCsv(full))[0].fields.size() == kCsvFieldsMax);
}

TEST_CASE("A record longer than the limit ends reading", "[core][csv]") {
  std::string text = "a\n\"" + std::string(kCsvRecordBytesMax + 10, 'x') + "\"\nb\n";
  CsvReader reader(text);
  CsvRecord record;
  REQUIRE(*reader.Next(&record));
  REQUIRE_FALSE(reader.Next(&record).ok());
  REQUIRE(reader.problem() == CsvProblem::record_too_long);
  REQUIRE(reader.problem_line() == 2);
  REQUIRE_FALSE(*reader.Next(&record));
  std::string unquoted(kCsvRecordBytesMax + 1, 'y');
  REQUIRE(ProblemsOf(unquoted) ==
          std::vector<std::pair<int64_t, std::string>>{{1, "record_too_long"}});
}

TEST_CASE("The writer quotes only what needs quoting and reads back the same",
          "[core][csv]") {
  std::string out;
  AppendCsvRecord(&out, {"plain", "a,b", "say \"hi\"", "two\nlines", "", "水费"});
  REQUIRE(out == "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",,水费\n");
  auto records = ParseCsv(out);
  REQUIRE(FieldsOf(*records) ==
          Rows{{"plain", "a,b", "say \"hi\"", "two\nlines", "", "水费"}});
}

// Regression (found by tests/fuzz/csv_fuzz.cc): the record was written as an empty line, which
// the reader skips, so writing and reading again lost it.
TEST_CASE("A record of one empty field is written quoted and reads back", "[core][csv]") {
  std::string out;
  AppendCsvRecord(&out, {"a"});
  AppendCsvRecord(&out, {""});
  AppendCsvRecord(&out, {"", ""});
  REQUIRE(out == "a\n\"\"\n,\n");
  auto records = ParseCsv(out);
  REQUIRE(records.ok());
  REQUIRE(FieldsOf(*records) == Rows{{"a"}, {""}, {"", ""}});
}

TEST_CASE("The problem names are stable", "[core][csv]") {
  REQUIRE(CsvProblemName(CsvProblem::none) == "none");
  REQUIRE(CsvProblemName(CsvProblem::not_utf8) == "not_utf8");
  REQUIRE(CsvProblemName(CsvProblem::unterminated_quote) == "unterminated_quote");
  REQUIRE(CsvProblemName(CsvProblem::record_too_long) == "record_too_long");
}

TEST_CASE("A million-line file of 80 MB is read in well under two seconds", "[core][csv][.slow]") {
  std::string text = "bill_id,utility,account_no,card_no,period,amount,due_date\n";
  text.reserve(82'000'000);
  for (int i = 0; i < 1'000'000; ++i) {
    text += "WB2026100000";
    text += std::to_string(1'000'000 + i);
    text += ",water-hz,\"杭州市西湖区文三路 ";
    text += std::to_string(i % 500);
    text += " 号\",6222020000000000,2026-10,123.45,2026-11-15\n";
  }
  auto start = std::chrono::steady_clock::now();
  CsvReader reader(text);
  CsvRecord record;
  int64_t records = 0;
  while (*reader.Next(&record)) ++records;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start).count();
  WARN("read " << records << " records, " << text.size() / 1'000'000 << " MB in " << ms << " ms");
  REQUIRE(records == 1'000'001);
  REQUIRE(record.line == 1'000'001);
  REQUIRE(ms < 2000);
}
