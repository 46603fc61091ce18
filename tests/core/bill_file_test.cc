#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/bill_file.h"
#include "core/card_number.h"
#include "core/time.h"

using namespace citycard;

namespace {

const std::unordered_set<std::string> kUtilities = {"water-hz", "power-hz", "gas-hz", "电信"};

std::string Header() { return std::string(kBillFileHeader) + "\n"; }

// A good line for bill `id` paid by card number `sequence`.
std::string Line(const std::string& id, uint64_t sequence = 1,
                 const std::string& amount = "123.45") {
  return id + ",water-hz,ACC-" + id + "," + MakeCardNumber(sequence) + ",2026-10," + amount +
         ",2026-11-15\n";
}

std::vector<std::pair<int64_t, std::string>> Reasons(const BillFileCheck& check) {
  std::vector<std::pair<int64_t, std::string>> out;
  for (const LineError& error : check.errors) out.emplace_back(error.line, error.reason_code);
  return out;
}

using Reasons_t = std::vector<std::pair<int64_t, std::string>>;

}  // namespace

TEST_CASE("A good bill file gives every bill with exact amounts and dates", "[core][bills]") {
  std::string text = Header() + Line("B1", 1, "123.45") +
                     "B2,power-hz,0571-8888,"  + MakeCardNumber(2) + ",202609,0.01,2026-10-01\r\n";
  auto check = CheckBillFile(text, kUtilities);
  REQUIRE(check.ok());
  REQUIRE(check->errors.empty());
  REQUIRE(check->lines == 2);
  REQUIRE(check->bills.size() == 2);
  const Bill& first = check->bills[0];
  REQUIRE(first.line == 2);
  REQUIRE(first.bill_id == "B1");
  REQUIRE(first.utility == "water-hz");
  REQUIRE(first.account_no == "ACC-B1");
  REQUIRE(first.card_no == MakeCardNumber(1));
  REQUIRE(first.period == "2026-10");
  REQUIRE(first.amount_fen == 12345);
  REQUIRE(first.due_day == DaysFromCivil(2026, 11, 15));
  const Bill& second = check->bills[1];
  REQUIRE(second.line == 3);
  REQUIRE(second.period == "2026-09");  // 202609 is normalized
  REQUIRE(second.amount_fen == 1);
}

TEST_CASE("Every kind of bad line is reported with its line number and reason",
          "[core][bills]") {
  std::string card = MakeCardNumber(7);
  std::string bad_luhn = card.substr(0, 15) + static_cast<char>('0' + (card[15] - '0' + 1) % 10);
  std::string text = Header() +                                                       // 1
                     Line("OK1") +                                                    // 2
                     "B3,water-hz,A3," + card + ",2026-10,12.505,2026-11-15\n" +      // 3
                     "B4,sewage,A4," + card + ",2026-10,1.00,2026-11-15\n" +          // 4
                     "B5,water-hz,A5," + card + ",2026-10,1.00,2026-02-30\n" +        // 5
                     Line("OK1") +                                                    // 6
                     "B7,water-hz,A7," + card + ",2026-10,1.00\n" +                   // 7
                     "B8,water-hz,\xD5\xC5\xC8\xFD," + card + ",2026-10,1.00,2026-11-15\n" +  // 8
                     "B9,water-hz,A9," + bad_luhn + ",2026-10,1.00,2026-11-15\n" +    // 9
                     "B10,water-hz,A10,12345,2026-10,1.00,2026-11-15\n" +             // 10
                     "B11,water-hz,A11," + card + ",2026-13,1.00,2026-11-15\n" +      // 11
                     "B12,water-hz,A12," + card + ",2026-10,0.00,2026-11-15\n" +      // 12
                     ",water-hz,A13," + card + ",2026-10,1.00,2026-11-15\n" +         // 13
                     "B14,water-hz,," + card + ",2026-10,1.00,2026-11-15\n" +         // 14
                     "B15,water-hz,A\"15," + card + ",2026-10,1.00,2026-11-15\n" +    // 15
                     "B16,water-hz,A16," + card + ",2026-10,-1.00,2026-11-15\n" +     // 16
                     "B17,water-hz,A17," + card + ",2026-10,1.00,2026-11-15,extra\n" +  // 17
                     Line("OK18");                                                    // 18
  auto check = CheckBillFile(text, kUtilities);
  REQUIRE(check.ok());
  REQUIRE(Reasons(*check) == Reasons_t{
                                 {3, "invalid_amount"},
                                 {4, "unknown_utility"},
                                 {5, "invalid_date"},
                                 {6, "duplicate_bill_id"},
                                 {7, "wrong_field_count"},
                                 {8, "not_utf8"},
                                 {9, "invalid_card_no"},
                                 {10, "invalid_card_no"},
                                 {11, "invalid_period"},
                                 {12, "invalid_amount"},
                                 {13, "invalid_bill_id"},
                                 {14, "invalid_account_no"},
                                 {15, "invalid_csv"},
                                 {16, "invalid_amount"},
                                 {17, "wrong_field_count"},
                             });
  REQUIRE(check->lines == 17);
  REQUIRE(check->bills.size() == 2);
  REQUIRE(check->bills[0].line == 2);
  REQUIRE(check->bills[1].line == 18);
  // The messages say what is wrong, without the line (which the error carries).
  REQUIRE(check->errors[0].message == "'12.505' is not an amount in yuan with at most two decimals");
  REQUIRE(check->errors[1].message == "unknown utility 'sewage'");
  REQUIRE(check->errors[2].message == "'2026-02-30' is not a due date like 2026-11-15");
  REQUIRE(check->errors[3].message == "bill id 'OK1' is already on line 2");
  REQUIRE(check->errors[4].message == "expected 7 fields, found 6");
  REQUIRE(check->errors[5].message == "the text is not valid UTF-8");
  REQUIRE(check->errors[9].message == "a bill of 0.00 yuan is nothing to pay");
  REQUIRE(check->errors[10].message == "the bill id is empty");
  REQUIRE(check->errors[11].message == "the account number is empty");
  REQUIRE(check->errors[12].message == "a quote inside a field that is not quoted");
}

TEST_CASE("A duplicate bill id is bad on every later line even when the first is bad",
          "[core][bills]") {
  std::string text = Header() + Line("D", 1, "abc") + Line("D") + Line("D");
  auto check = CheckBillFile(text, kUtilities);
  REQUIRE(Reasons(*check) ==
          Reasons_t{{2, "invalid_amount"}, {3, "duplicate_bill_id"}, {4, "duplicate_bill_id"}});
  REQUIRE(check->errors[2].message == "bill id 'D' is already on line 2");
  REQUIRE(check->bills.empty());
}

TEST_CASE("Line numbers count the lines of quoted fields that span lines", "[core][bills]") {
  std::string card = MakeCardNumber(3);
  std::string text = Header() +
                     "Q1,water-hz,\"two\nlines\"," + card + ",2026-10,1.00,2026-11-15\n" +
                     "Q2,water-hz,A2," + card + ",2026-10,x,2026-11-15\n";
  auto check = CheckBillFile(text, kUtilities);
  // A line break is a control character, which no field of a bill may hold; the record
  // still ends on line 3, so the next one is line 4.
  REQUIRE(check->bills.empty());
  REQUIRE(Reasons(*check) == Reasons_t{{2, "invalid_account_no"}, {4, "invalid_amount"}});
}

TEST_CASE("Chinese account names, utilities and a byte-order mark are read as they are",
          "[core][bills]") {
  std::string card = MakeCardNumber(88);
  std::string text = "\xEF\xBB\xBF" + Header() +
                     "水2026-0001,water-hz,\"杭州市西湖区文三路 12 号, 张三\"," + card +
                     ",2026-10,88.00,2026-11-15\r\n" +
                     "电2026-0002,电信,李四," + card + ",2026-10,十二元,2026-11-15\r\n";
  auto check = CheckBillFile(text, kUtilities);
  REQUIRE(check.ok());
  REQUIRE(check->bills.size() == 1);
  REQUIRE(check->bills[0].bill_id == "水2026-0001");
  REQUIRE(check->bills[0].account_no == "杭州市西湖区文三路 12 号, 张三");
  REQUIRE(check->bills[0].amount_fen == 8800);
  REQUIRE(Reasons(*check) == Reasons_t{{3, "invalid_amount"}});
  REQUIRE(check->errors[0].message == "'十二元' is not an amount in yuan with at most two decimals");
}

TEST_CASE("Identifiers that are too long or hold control characters are refused",
          "[core][bills]") {
  std::string card = MakeCardNumber(4);
  std::string long_id(kBillIdBytesMax + 1, 'x');
  std::string max_id(kBillIdBytesMax, 'y');
  std::string text = Header() + long_id + ",water-hz,A," + card + ",2026-10,1.00,2026-11-15\n" +
                     max_id + ",water-hz,A," + card + ",2026-10,1.00,2026-11-15\n" +
                     "T3,water-hz,\"A\tB\"," + card + ",2026-10,1.00,2026-11-15\n";
  auto check = CheckBillFile(text, kUtilities);
  REQUIRE(Reasons(*check) == Reasons_t{{2, "invalid_bill_id"}, {4, "invalid_account_no"}});
  REQUIRE(check->errors[0].message == "the bill id is longer than 64 bytes");
  REQUIRE(check->errors[1].message == "the account number has a control character");
  REQUIRE(check->bills.size() == 1);
}

TEST_CASE("A file without the exact header is refused as a whole", "[core][bills]") {
  for (std::string text : {std::string(""), std::string("\n"),
                           std::string("bill_id,utility,account_no,card_no,period,amount\n"),
                           std::string("Bill_id,utility,account_no,card_no,period,amount,due_date\n"),
                           Line("B1")}) {
    INFO(text);
    auto check = CheckBillFile(text, kUtilities);
    REQUIRE_FALSE(check.ok());
    REQUIRE(check.status().code() == "invalid_bill_header");
    REQUIRE(check.status().exit_code() == 5);
  }
  auto empty = CheckBillFile(Header(), kUtilities);
  REQUIRE(empty.ok());
  REQUIRE(empty->lines == 0);
}

TEST_CASE("Billing periods take two spellings and real months only", "[core][bills]") {
  REQUIRE(*ParseBillPeriod("2026-10") == "2026-10");
  REQUIRE(*ParseBillPeriod("202610") == "2026-10");
  REQUIRE(*ParseBillPeriod("2000-01") == "2000-01");
  REQUIRE(*ParseBillPeriod("2099-12") == "2099-12");
  for (const char* bad : {"2026-13", "2026-00", "202613", "1999-12", "2100-01", "2026-1",
                          "26-10", "2026/10", "2026-10-01", "", "20261", "２０２６-10"}) {
    INFO(bad);
    REQUIRE(ParseBillPeriod(bad).status().code() == "invalid_period");
  }
}

TEST_CASE("The streaming reader gives the same lines one at a time", "[core][bills]") {
  std::string text = Header() + Line("S1") + Line("S2", 2, "x");
  BillFileReader reader(text, kUtilities);
  REQUIRE(reader.ReadHeader().ok());
  Bill bill;
  LineError error;
  REQUIRE(*reader.Next(&bill, &error) == BillFileReader::Step::bill);
  REQUIRE(bill.bill_id == "S1");
  REQUIRE(*reader.Next(&bill, &error) == BillFileReader::Step::bad_line);
  REQUIRE(error == LineError{3, "invalid_amount",
                             "'x' is not an amount in yuan with at most two decimals"});
  REQUIRE(*reader.Next(&bill, &error) == BillFileReader::Step::end);
  REQUIRE(reader.lines() == 2);
}

TEST_CASE("Bill statuses have stable names", "[core][bills]") {
  REQUIRE(BillStatusName(BillStatus::paid) == "paid");
  REQUIRE(BillStatusName(BillStatus::insufficient_funds) == "insufficient_funds");
  REQUIRE(BillStatusName(BillStatus::card_blocked) == "card_blocked");
  REQUIRE(BillStatusName(BillStatus::unknown_card) == "unknown_card");
  REQUIRE(BillStatusName(BillStatus::no_mandate) == "no_mandate");
  REQUIRE(BillStatusName(BillStatus::already_paid) == "already_paid");
  for (size_t number = 1; number <= kBillStatusCount; ++number) {
    auto status = static_cast<BillStatus>(number);
    REQUIRE(ParseBillStatus(BillStatusName(status)) == status);
  }
  REQUIRE_FALSE(ParseBillStatus("Paid").has_value());
}

namespace {

std::vector<BillResult> SampleResults() {
  return {
      {"W1", "water-hz", BillStatus::paid, 12345, 12345, "T000101", ""},
      {"W2", "water-hz", BillStatus::insufficient_funds, 5000, 0, "", "balance ¥12.00 is below ¥50.00"},
      {"P1", "power-hz", BillStatus::card_blocked, 800, 0, "", "card is blocked (lost)"},
      {"P2", "power-hz", BillStatus::unknown_card, 900, 0, "", "no such card"},
      {"W3", "water-hz", BillStatus::no_mandate, 100, 0, "", "no mandate for water-hz, account \"A,3\""},
      {"W4", "water-hz", BillStatus::already_paid, 700, 700, "T000042", "paid on 2026-10-02"},
      {"P3", "power-hz", BillStatus::paid, 1, 1, "T000102", ""},
  };
}

}  // namespace

TEST_CASE("The results file has one line per bill with yuan amounts and quoted reasons",
          "[core][bills]") {
  REQUIRE(FormatBillResults(SampleResults()) ==
          "bill_id,status,amount_paid,transfer_id,reason\n"
          "W1,paid,123.45,T000101,\n"
          "W2,insufficient_funds,0.00,,balance ¥12.00 is below ¥50.00\n"
          "P1,card_blocked,0.00,,card is blocked (lost)\n"
          "P2,unknown_card,0.00,,no such card\n"
          "W3,no_mandate,0.00,,\"no mandate for water-hz, account \"\"A,3\"\"\"\n"
          "W4,already_paid,7.00,T000042,paid on 2026-10-02\n"
          "P3,paid,0.01,T000102,\n");
  REQUIRE(FormatBillResults({}) == "bill_id,status,amount_paid,transfer_id,reason\n");
}

TEST_CASE("The results file reads back with the CSV reader", "[core][bills]") {
  auto records = ParseCsv(FormatBillResults(SampleResults()));
  REQUIRE(records.ok());
  REQUIRE(records->size() == 8);
  REQUIRE((*records)[5].fields ==
          std::vector<std::string>{"W3", "no_mandate", "0.00", "", "no mandate for water-hz, account \"A,3\""});
}

TEST_CASE("The summary per utility counts every status and sums to the fen", "[core][bills]") {
  auto summaries = SummarizeBillResults(SampleResults());
  REQUIRE(summaries.size() == 2);
  const UtilitySummary& power = summaries[0];
  REQUIRE(power.utility == "power-hz");
  REQUIRE(power.bills == 3);
  REQUIRE(power.billed_fen == 1701);
  REQUIRE(power.paid_fen == 1);
  REQUIRE(power.unpaid_fen == 1700);
  REQUIRE(power.count(BillStatus::paid) == 1);
  REQUIRE(power.count(BillStatus::card_blocked) == 1);
  REQUIRE(power.count(BillStatus::unknown_card) == 1);
  const UtilitySummary& water = summaries[1];
  REQUIRE(water.utility == "water-hz");
  REQUIRE(water.bills == 4);
  REQUIRE(water.billed_fen == 18145);
  REQUIRE(water.paid_fen == 12345);  // already_paid was paid by someone else
  REQUIRE(water.unpaid_fen == 5100);
  REQUIRE(water.count(BillStatus::paid) == 1);
  REQUIRE(water.count(BillStatus::insufficient_funds) == 1);
  REQUIRE(water.count(BillStatus::no_mandate) == 1);
  REQUIRE(water.count(BillStatus::already_paid) == 1);
  REQUIRE(SummarizeBillResults({}).empty());
}

TEST_CASE("A million-line bill file is checked in a few seconds", "[core][bills][.slow]") {
  std::string card = MakeCardNumber(12345);
  std::string text = Header();
  text.reserve(90'000'000);
  for (int i = 0; i < 1'000'000; ++i) {
    text += "WB202610" + std::to_string(10'000'000 + i) + ",water-hz,\"杭州市西湖区文三路 " +
            std::to_string(i % 500) + " 号\"," + card + ",2026-10,123.45,2026-11-15\n";
  }
  auto start = std::chrono::steady_clock::now();
  auto check = CheckBillFile(text, kUtilities);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start).count();
  WARN("checked 1,000,000 bills, " << text.size() / 1'000'000 << " MB in " << ms << " ms");
  REQUIRE(check->bills.size() == 1'000'000);
  REQUIRE(check->errors.empty());
}
