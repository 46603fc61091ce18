#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "core/szt_file.h"
#include "core/time.h"

using namespace citycard;

namespace {

constexpr std::string_view kExitLine =
    R"("2018-08-31 23:11:06","2018-09-01 00:00:00",FFHEDIBCC,700,地铁出站,地铁五号线,OGT-101,长龙,0,665,263031101)";

std::string File(std::string_view body) { return std::string(kSztHeader) + "\n" + std::string(body); }

std::string ErrorOf(std::string_view text) {
  Result<std::vector<SztRow>> rows = ParseSztFile(text);
  REQUIRE_FALSE(rows.ok());
  REQUIRE(rows.status().code() == "invalid_szt_file");
  REQUIRE(rows.status().kind() == Kind::bad_input);
  return rows.status().message();
}

// kExitLine with column `column` (0-based) replaced by `value`.
std::string WithColumn(size_t column, std::string_view value) {
  std::string line(kExitLine);
  size_t start = 0;
  for (size_t i = 0; i < column; ++i) start = line.find(',', start) + 1;
  size_t end = line.find(',', start);
  if (end == std::string::npos) end = line.size();
  line.replace(start, end - start, value);
  return line;
}

}  // namespace

TEST_CASE("A Shenzhen Tong line becomes a row with every column typed", "[core][szt]") {
  Result<SztRow> row = ParseSztLine(kExitLine, 4);
  REQUIRE(row.ok());
  REQUIRE(row->line == 4);
  REQUIRE(row->deal_time_s == *ParseLocalTime("2018-08-31 23:11:06"));
  REQUIRE(row->close_time_s == *ParseLocalTime("2018-09-01 00:00:00"));
  REQUIRE(row->card_no == "FFHEDIBCC");
  REQUIRE(row->deal_value_fen == 700);
  REQUIRE(row->deal_type == SztDealType::metro_exit);
  REQUIRE(row->company_name == "地铁五号线");
  REQUIRE(row->car_no == "OGT-101");
  REQUIRE(row->station == "长龙");
  REQUIRE_FALSE(row->conn_mark);
  REQUIRE(row->deal_money_fen == 665);
  REQUIRE(row->equ_no == 263031101u);
  REQUIRE(SztDealTypeName(row->deal_type) == "metro_exit");
}

TEST_CASE("Every deal type and a transfer mark are read", "[core][szt]") {
  REQUIRE(ParseSztLine(WithColumn(4, "地铁入站"), 2)->deal_type == SztDealType::metro_entry);
  REQUIRE(ParseSztLine(WithColumn(4, "巴士"), 2)->deal_type == SztDealType::bus);
  REQUIRE(ParseSztLine(WithColumn(8, "1"), 2)->conn_mark);
}

TEST_CASE("Quoted fields may hold commas and doubled quotes", "[core][szt]") {
  Result<SztRow> row = ParseSztLine(WithColumn(7, R"("长龙, ""北""")"), 2);
  REQUIRE(row.ok());
  REQUIRE(row->station == "长龙, \"北\"");
  REQUIRE(ParseSztLine(WithColumn(3, "\"700\""), 2)->deal_value_fen == 700);
}

TEST_CASE("A file is read with its header, CRLF or LF, a byte-order mark and blank lines", "[core][szt]") {
  const std::string text = "\xEF\xBB\xBF" + std::string(kSztHeader) + "\r\n" + std::string(kExitLine) +
                           "\r\n\n" + WithColumn(4, "巴士") + "\n";
  Result<std::vector<SztRow>> rows = ParseSztFile(text);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 2);
  REQUIRE((*rows)[0].line == 2);
  REQUIRE((*rows)[0].deal_money_fen == 665);
  REQUIRE((*rows)[1].line == 4);
  REQUIRE((*rows)[1].deal_type == SztDealType::bus);
  REQUIRE(ParseSztFile(File(""))->empty());
  REQUIRE(ParseSztFile(File(kExitLine))->size() == 1);  // no final line break
}

TEST_CASE("A wrong or missing header is refused on line 1", "[core][szt]") {
  REQUIRE(ErrorOf("") == "line 1: the file is empty: no header line");
  REQUIRE(ErrorOf(std::string(kExitLine) + "\n").rfind("line 1: the header must be deal_date,", 0) == 0);
}

TEST_CASE("A bad line is refused with its number, its column and why", "[core][szt]") {
  REQUIRE(ErrorOf(File(WithColumn(0, "\"2018-08-31 25:00:00\""))) ==
          "line 2: deal_date: must be a local time YYYY-MM-DD HH:MM:SS");
  REQUIRE(ErrorOf(File(WithColumn(1, "2018-09-01"))) ==
          "line 2: close_date: must be a local time YYYY-MM-DD HH:MM:SS");
  REQUIRE(ErrorOf(File(WithColumn(2, ""))) == "line 2: card_no: must not be empty");
  REQUIRE(ErrorOf(File(WithColumn(3, "-5"))) == "line 2: deal_value: must be a whole number of fen from 0 to 1000000");
  REQUIRE(ErrorOf(File(WithColumn(3, "7.5"))) == "line 2: deal_value: must be a whole number of fen from 0 to 1000000");
  REQUIRE(ErrorOf(File(WithColumn(3, "+7"))) == "line 2: deal_value: must be a whole number of fen from 0 to 1000000");
  REQUIRE(ErrorOf(File(WithColumn(3, "1000001"))) == "line 2: deal_value: must be a whole number of fen from 0 to 1000000");
  REQUIRE(ErrorOf(File(WithColumn(4, "地铁"))) == "line 2: deal_type: must be 地铁入站, 地铁出站 or 巴士");
  REQUIRE(ErrorOf(File(WithColumn(5, ""))) == "line 2: company_name: must not be empty");
  REQUIRE(ErrorOf(File(WithColumn(7, "\"a\tb\""))) == "line 2: station: holds a control character");
  REQUIRE(ErrorOf(File(WithColumn(8, "2"))) == "line 2: conn_mark: must be 0 or 1");
  REQUIRE(ErrorOf(File(WithColumn(9, ""))) == "line 2: deal_money: must be a whole number of fen from 0 to 1000000");
  REQUIRE(ErrorOf(File(WithColumn(10, "26303A"))) == "line 2: equ_no: must be a device number (digits)");
  REQUIRE(ErrorOf(File(std::string(kExitLine) + "\n" + std::string(kExitLine) + ",x")) ==
          "line 3: expected 11 columns");
  REQUIRE(ErrorOf(File("a,b")) == "line 2: expected 11 columns");
  REQUIRE(ErrorOf(File(std::string(kExitLine) + ",")) == "line 2: expected 11 columns");
}

TEST_CASE("Broken quoting, bad UTF-8 and overlong lines are refused", "[core][szt]") {
  REQUIRE(ErrorOf(File(WithColumn(7, "\"长龙"))) == "line 2: a quoted field is not closed");
  REQUIRE(ErrorOf(File(WithColumn(7, "\"长龙\"x"))) == "line 2: text after the closing quote of a field");
  REQUIRE(ErrorOf(File(WithColumn(7, "长\"龙"))) == "line 2: a quote inside an unquoted field");
  REQUIRE(ErrorOf(File(WithColumn(7, "\xE9\x95"))) == "line 2: not valid UTF-8");      // cut short
  REQUIRE(ErrorOf(File(WithColumn(7, "\xC0\xAF"))) == "line 2: not valid UTF-8");      // overlong
  REQUIRE(ErrorOf(File(WithColumn(7, "\xED\xA0\x80"))) == "line 2: not valid UTF-8");  // surrogate
  REQUIRE(ErrorOf(File(WithColumn(7, "\xFF"))) == "line 2: not valid UTF-8");
  REQUIRE(ErrorOf(File(WithColumn(7, std::string(300, 'x')))) == "line 2: a field is longer than 256 bytes");
  REQUIRE(ErrorOf(File(std::string(5000, 'x'))) == "line 2: longer than 4096 bytes");
  REQUIRE(ParseSztLine(WithColumn(7, "\xF0\x9F\x9A\x87"), 2).ok());  // U+1F687, four bytes
}

TEST_CASE("The real evening file parses into 10,000 rows whose sums are the file's", "[core][szt]") {
  std::ifstream in(CITYCARD_SOURCE_DIR "/../shared/data/szt-2018-08-31-evening.csv", std::ios::binary);
  if (!in) {
    WARN("../shared/data/szt-2018-08-31-evening.csv is absent: not checked");
    return;
  }
  std::ostringstream text;
  text << in.rdbuf();
  Result<std::vector<SztRow>> rows = ParseSztFile(text.str());
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 10000);
  int64_t money_fen = 0;
  int64_t value_fen = 0;
  int64_t transfers = 0;
  std::map<SztDealType, int64_t> by_type;
  std::map<std::string, int64_t> money_by_company;
  for (const SztRow& row : *rows) {
    money_fen += row.deal_money_fen;
    value_fen += row.deal_value_fen;
    transfers += row.conn_mark;
    ++by_type[row.deal_type];
    money_by_company[row.company_name] += row.deal_money_fen;
  }
  REQUIRE(money_fen == 97960);
  REQUIRE(value_fen == 160000);
  REQUIRE(transfers == 10);
  REQUIRE(by_type[SztDealType::metro_entry] == 9360);
  REQUIRE(by_type[SztDealType::metro_exit] == 435);
  REQUIRE(by_type[SztDealType::bus] == 205);
  REQUIRE(money_by_company.size() == 11);
  REQUIRE(money_by_company["金华南巴士"] == 32910);
  REQUIRE(money_by_company["地铁五号线"] == 17185);
  REQUIRE((*rows)[0].line == 2);
  REQUIRE((*rows)[0].card_no == "CBEHFCFCG");
  REQUIRE((*rows)[0].station == "布吉");
  REQUIRE(rows->back().line == 10001);
  REQUIRE(rows->back().deal_time_s == *ParseLocalTime("2018-09-01 06:44:44"));
  REQUIRE(rows->back().equ_no == 261020103u);
}
