// Fuzz target: the utility bill file reader (core/bill_file.h, docs/bills.md,
// docs/fuzzing.md). The input is the text of a bill file; when it does not start with the
// header, the header is put in front, so that most inputs reach the bill lines. Two utilities
// are known: water-hz and power-hz.
//
// Checked, beyond "does not crash":
// - the file as a whole is refused only for its header (Kind::bad_input
//   "invalid_bill_header");
// - every accepted bill has an amount of 1..kAmountFenMax fen (a bill never pays 0 or a
//   negative amount), a known utility, a 16-digit card number, a "YYYY-MM" period, a bill id
//   not seen on an earlier line, and fields within their byte limits;
// - every line is either a bill or an error with a documented reason code, the counts add up,
//   and line numbers go up;
// - the streaming BillFileReader finds exactly what CheckBillFile finds.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>

#include "core/bill_file.h"
#include "core/money.h"
#include "core/status.h"

namespace {

using namespace citycard;

const std::unordered_set<std::string> kUtilities = {"water-hz", "power-hz"};

const std::set<std::string> kReasonCodes = {
    "invalid_csv",     "not_utf8",       "wrong_field_count", "invalid_bill_id",
    "duplicate_bill_id", "unknown_utility", "invalid_account_no", "invalid_card_no",
    "invalid_period",  "invalid_amount", "invalid_date"};

bool AllDigits(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

void CheckBill(const Bill& bill, std::set<std::string>* bill_ids) {
  CITYCARD_ASSERT(bill.amount_fen > 0 && bill.amount_fen <= kAmountFenMax);
  CITYCARD_ASSERT(kUtilities.count(bill.utility) == 1);
  CITYCARD_ASSERT(!bill.bill_id.empty() && bill.bill_id.size() <= kBillIdBytesMax);
  CITYCARD_ASSERT(!bill.account_no.empty() && bill.account_no.size() <= kBillAccountNoBytesMax);
  CITYCARD_ASSERT(bill.card_no.size() == 16 && AllDigits(bill.card_no));
  CITYCARD_ASSERT(bill.period.size() == 7 && bill.period[4] == '-');
  CITYCARD_ASSERT(AllDigits(bill.period.substr(0, 4)) && AllDigits(bill.period.substr(5)));
  CITYCARD_ASSERT(bill_ids->insert(bill.bill_id).second);
}

void CheckText(std::string_view text) {
  Result<BillFileCheck> check = CheckBillFile(text, kUtilities);
  if (!check.ok()) {
    CITYCARD_ASSERT(check.status().kind() == Kind::bad_input);
    CITYCARD_ASSERT(check.status().code() == "invalid_bill_header");
    return;
  }
  std::set<std::string> bill_ids;
  for (const Bill& bill : check->bills) CheckBill(bill, &bill_ids);
  for (const LineError& error : check->errors) {
    CITYCARD_ASSERT(kReasonCodes.count(error.reason_code) == 1);
    CITYCARD_ASSERT(error.line >= 2);
  }
  CITYCARD_ASSERT(static_cast<int64_t>(check->bills.size() + check->errors.size()) == check->lines);

  // The same file through the streaming reader.
  BillFileReader reader(text, kUtilities);
  CITYCARD_ASSERT(reader.ReadHeader().ok());
  size_t bills = 0, errors = 0;
  int64_t last_line = 1;
  while (true) {
    Bill bill;
    LineError error;
    Result<BillFileReader::Step> step = reader.Next(&bill, &error);
    CITYCARD_ASSERT(step.ok());
    if (*step == BillFileReader::Step::end) break;
    if (*step == BillFileReader::Step::bill) {
      CITYCARD_ASSERT(bills < check->bills.size() && bill == check->bills[bills]);
      CITYCARD_ASSERT(bill.line > last_line);
      last_line = bill.line;
      ++bills;
    } else {
      CITYCARD_ASSERT(errors < check->errors.size() && error == check->errors[errors]);
      ++errors;
    }
  }
  CITYCARD_ASSERT(bills == check->bills.size() && errors == check->errors.size());
  CITYCARD_ASSERT(reader.lines() == check->lines);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  CheckText(text);
  if (!text.starts_with(kBillFileHeader)) {
    CheckText(std::string(kBillFileHeader) + "\n" + std::string(text));
  }
  // The period parser on its own: whatever it accepts is normalized to "YYYY-MM".
  Result<std::string> period = ParseBillPeriod(text);
  if (period.ok()) CITYCARD_ASSERT(period->size() == 7 && (*period)[4] == '-');
  // The yuan parser: never a negative amount, never above the limit.
  Result<int64_t> yuan = ParseYuan(text);
  if (yuan.ok()) CITYCARD_ASSERT(*yuan >= 0 && *yuan <= kAmountFenMax);
  return 0;
}
