// The Shenzhen Tong (深圳通) transaction file: the open-data CSV of real fare transactions in
// ../shared/data/ (format: docs/szt-format.md). A pure parser: it takes the text, opens no
// file, and turns each line into a typed SztRow or says which line is wrong and why. The
// replay, the demo and the fare tests read real traffic through it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace citycard {

// The header line every file starts with (after an optional UTF-8 byte-order mark).
inline constexpr std::string_view kSztHeader =
    "deal_date,close_date,card_no,deal_value,deal_type,company_name,car_no,station,conn_mark,"
    "deal_money,equ_no";
inline constexpr size_t kSztColumns = 11;
// Limits: a longer line or field is not a Shenzhen Tong record (the longest real line is about
// 130 bytes); more rows than this is not one file of the open data (the largest is 1.3 M rows).
inline constexpr size_t kSztLineBytesMax = 4096;
inline constexpr size_t kSztFieldBytesMax = 256;
inline constexpr size_t kSztRowsMax = 20'000'000;
// A single fare, full or charged, above ¥10,000 is not a transit fare.
inline constexpr int64_t kSztAmountFenMax = 1'000'000;

// deal_type. Stored as these numbers nowhere; the names are the file's.
enum class SztDealType : uint8_t {
  metro_entry = 1,  // 地铁入站: carries no money
  metro_exit = 2,   // 地铁出站: carries the distance fare
  bus = 3,          // 巴士
};
// "metro_entry", "metro_exit", "bus".
std::string_view SztDealTypeName(SztDealType type);

struct SztRow {
  int64_t line = 0;              // 1-based line in the file (the header is line 1)
  int64_t deal_time_s = 0;       // deal_date, Unix seconds (the text is Asia/Shanghai)
  int64_t close_time_s = 0;      // close_date, Unix seconds: the clearing day's start
  std::string card_no;           // anonymised: letters stand for digits
  int64_t deal_value_fen = 0;    // full fare
  SztDealType deal_type = SztDealType::bus;
  std::string company_name;      // the operator owed the money, UTF-8 (地铁五号线)
  std::string car_no;            // gate or vehicle id
  std::string station;           // station (metro) or route (bus), UTF-8; "-" when unknown
  bool conn_mark = false;        // priced as a transfer (联程)
  int64_t deal_money_fen = 0;    // what the card was charged
  uint64_t equ_no = 0;           // device number

  bool operator==(const SztRow&) const = default;
};

// Parses one data line (without its line break) numbered `line`.
// Failure: Kind::bad_input, code "invalid_szt_file", message "line N: COLUMN: why" (or
// "line N: why" for the line as a whole: wrong number of columns, bad quoting, too long).
Result<SztRow> ParseSztLine(std::string_view text, int64_t line);

// Parses a whole file: the header line, then one row per line. LF or CRLF line ends; a final
// line break and empty lines are allowed; a UTF-8 byte-order mark before the header is
// skipped. Fails on the first bad line with the code and message of ParseSztLine ("line 1:
// ..." for a wrong header; "line N: not valid UTF-8" for a line that is not).
Result<std::vector<SztRow>> ParseSztFile(std::string_view text);

}  // namespace citycard
