// Fuzz target: the Shenzhen Tong transaction file parser (core/szt_file.h,
// docs/szt-format.md, docs/fuzzing.md). The input is the text of a file; when it does not
// start with the header, the header is put in front, so that most inputs reach the lines.
//
// Checked, beyond "does not crash":
// - a refusal is Kind::bad_input "invalid_szt_file" with a message naming a line;
// - every row accepted has both amounts within 0..kSztAmountFenMax, a known deal type, no
//   empty text columns, and line numbers that go up;
// - ParseSztFile and ParseSztLine agree: a file of the header and one line is accepted
//   exactly when that line is, with the same row;
// - the line parser calls "not valid UTF-8" exactly what the CSV reader's strict UTF-8 check
//   (core/csv.h) calls invalid: the two implementations of the same rule must agree.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/csv.h"
#include "core/status.h"
#include "core/szt_file.h"

namespace {

using namespace citycard;

void CheckRow(const SztRow& row) {
  CITYCARD_ASSERT(row.deal_value_fen >= 0 && row.deal_value_fen <= kSztAmountFenMax);
  CITYCARD_ASSERT(row.deal_money_fen >= 0 && row.deal_money_fen <= kSztAmountFenMax);
  CITYCARD_ASSERT(SztDealTypeName(row.deal_type) != "unknown");
  CITYCARD_ASSERT(!row.card_no.empty() && !row.company_name.empty());
  CITYCARD_ASSERT(!row.car_no.empty() && !row.station.empty());
}

void CheckRefusal(const Status& status) {
  CITYCARD_ASSERT(status.kind() == Kind::bad_input);
  CITYCARD_ASSERT(status.code() == "invalid_szt_file");
  CITYCARD_ASSERT(status.message().starts_with("line "));
}

void CheckFile(std::string_view text) {
  Result<std::vector<SztRow>> rows = ParseSztFile(text);
  if (!rows.ok()) {
    CheckRefusal(rows.status());
    return;
  }
  int64_t last_line = 1;  // the header
  for (const SztRow& row : *rows) {
    CITYCARD_ASSERT(row.line > last_line);
    last_line = row.line;
    CheckRow(row);
  }
}

// The first line of the input on its own.
void CheckLine(std::string_view text) {
  std::string_view line = text.substr(0, text.find('\n'));
  if (line.empty() || line.back() == '\r') return;
  Result<SztRow> row = ParseSztLine(line, 2);
  const bool not_utf8 = !row.ok() && row.status().message() == "line 2: not valid UTF-8";
  if (line.size() <= kSztLineBytesMax) CITYCARD_ASSERT(not_utf8 == !IsValidUtf8(line));

  std::string file = std::string(kSztHeader) + "\n" + std::string(line);
  Result<std::vector<SztRow>> rows = ParseSztFile(file);
  CITYCARD_ASSERT(rows.ok() == row.ok());
  if (!row.ok()) {
    CheckRefusal(row.status());
    CITYCARD_ASSERT(rows.status().message() == row.status().message());
    return;
  }
  CheckRow(*row);
  CITYCARD_ASSERT(rows->size() == 1 && (*rows)[0] == *row);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  CheckFile(text);
  if (!text.starts_with(kSztHeader)) {
    CheckFile(std::string(kSztHeader) + "\n" + std::string(text));
    CheckLine(text);
  } else {
    size_t feed = text.find('\n');
    if (feed != std::string_view::npos) CheckLine(text.substr(feed + 1));
  }
  return 0;
}
