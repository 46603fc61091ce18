#include "core/bill_file.h"

#include <fmt/format.h>

#include <map>

#include "core/card_number.h"
#include "core/money.h"
#include "core/time.h"

namespace citycard {

namespace {

enum BillField : size_t {
  kBillId = 0,
  kUtility = 1,
  kAccountNo = 2,
  kCardNo = 3,
  kPeriod = 4,
  kAmount = 5,
  kDueDate = 6,
};

bool HasControlCharacter(std::string_view text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// A bill id or an account number: 1 to max_bytes bytes of text without control characters.
// (The CSV reader has already checked that it is UTF-8.)
Status CheckIdentifier(std::string_view text, size_t max_bytes, std::string_view code,
                       std::string_view what) {
  if (text.empty()) return Status::BadInput(std::string(code), fmt::format("the {} is empty", what));
  if (text.size() > max_bytes) {
    return Status::BadInput(std::string(code),
                            fmt::format("the {} is longer than {} bytes", what, max_bytes));
  }
  if (HasControlCharacter(text)) {
    return Status::BadInput(std::string(code),
                            fmt::format("the {} has a control character", what));
  }
  return Status::Ok();
}

bool AllDigits(std::string_view text) {
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return !text.empty();
}

int ToInt(std::string_view digits) {
  int value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  return value;
}

bool IsHeader(const std::vector<std::string>& fields) {
  std::string joined;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) joined += ',';
    joined += fields[i];
  }
  return fields.size() == kBillFileFields && joined == kBillFileHeader;
}

// The CSV reader's message starts with "line N: "; a LineError carries the line apart.
std::string WithoutLinePrefix(const std::string& message) {
  size_t colon = message.find(": ");
  return colon == std::string::npos ? message : message.substr(colon + 2);
}

}  // namespace

Result<std::string> ParseBillPeriod(std::string_view text) {
  std::string_view year, month;
  if (text.size() == 7 && text[4] == '-') {
    year = text.substr(0, 4);
    month = text.substr(5, 2);
  } else if (text.size() == 6) {
    year = text.substr(0, 4);
    month = text.substr(4, 2);
  }
  if (!AllDigits(year) || !AllDigits(month) || ToInt(month) < 1 || ToInt(month) > 12 ||
      ToInt(year) < kBillPeriodYearMin || ToInt(year) > kBillPeriodYearMax) {
    return Status::BadInput("invalid_period",
                            fmt::format("'{}' is not a billing period like 2026-10 or 202610 "
                                        "(years {} to {})",
                                        text, kBillPeriodYearMin, kBillPeriodYearMax));
  }
  return fmt::format("{}-{}", year, month);
}

BillFileReader::BillFileReader(std::string_view text,
                               const std::unordered_set<std::string>& known_utilities)
    : csv_(text), known_utilities_(known_utilities) {
  // A guess at the number of lines (about 80 bytes each) saves rehashing a big set.
  first_line_of_bill_.reserve(text.size() / 80 + 16);
}

Status BillFileReader::ReadHeader() {
  Result<bool> read = csv_.Next(&record_);
  if (!read.ok() || !*read || !IsHeader(record_.fields)) {
    return Status::BadInput("invalid_bill_header",
                            fmt::format("the first line must be exactly '{}'", kBillFileHeader));
  }
  return Status::Ok();
}

Status BillFileReader::CheckLine(const CsvRecord& record, Bill* bill) {
  const std::vector<std::string>& f = record.fields;
  if (f.size() != kBillFileFields) {
    return Status::BadInput("wrong_field_count", fmt::format("expected {} fields, found {}",
                                                             kBillFileFields, f.size()));
  }
  CITYCARD_RETURN_IF_ERROR(
      CheckIdentifier(f[kBillId], kBillIdBytesMax, "invalid_bill_id", "bill id"));
  auto [first, inserted] = first_line_of_bill_.try_emplace(f[kBillId], record.line);
  if (!inserted) {
    return Status::BadInput("duplicate_bill_id",
                            fmt::format("bill id '{}' is already on line {}", f[kBillId],
                                        first->second));
  }
  if (known_utilities_.count(f[kUtility]) == 0) {
    return Status::BadInput("unknown_utility", fmt::format("unknown utility '{}'", f[kUtility]));
  }
  CITYCARD_RETURN_IF_ERROR(CheckIdentifier(f[kAccountNo], kBillAccountNoBytesMax,
                                           "invalid_account_no", "account number"));
  CITYCARD_RETURN_IF_ERROR(ValidateCardNumber(f[kCardNo]));
  Result<std::string> period = ParseBillPeriod(f[kPeriod]);
  if (!period.ok()) return period.status();
  Result<int64_t> amount = ParseYuan(f[kAmount]);
  if (!amount.ok()) return amount.status();
  if (*amount == 0) {
    return Status::BadInput("invalid_amount", "a bill of 0.00 yuan is nothing to pay");
  }
  Result<int64_t> due = ParseDay(f[kDueDate]);
  if (!due.ok()) {
    return Status::BadInput("invalid_date",
                            fmt::format("'{}' is not a due date like 2026-11-15", f[kDueDate]));
  }
  bill->line = record.line;
  bill->bill_id = f[kBillId];
  bill->utility = f[kUtility];
  bill->account_no = f[kAccountNo];
  bill->card_no = f[kCardNo];
  bill->period = std::move(period).value();
  bill->amount_fen = *amount;
  bill->due_day = *due;
  return Status::Ok();
}

Result<BillFileReader::Step> BillFileReader::Next(Bill* bill, LineError* error) {
  Result<bool> read = csv_.Next(&record_);
  if (read.ok() && !*read) return Step::end;
  if (++lines_ > kBillFileLinesMax) {
    return Status::BadInput("bill_file_too_large",
                            fmt::format("more than {} bill lines", kBillFileLinesMax));
  }
  if (!read.ok()) {
    error->line = csv_.problem_line();
    error->reason_code = csv_.problem() == CsvProblem::not_utf8 ? "not_utf8" : "invalid_csv";
    error->message = WithoutLinePrefix(read.status().message());
    return Step::bad_line;
  }
  Status checked = CheckLine(record_, bill);
  if (!checked.ok()) {
    error->line = record_.line;
    error->reason_code = checked.code();
    error->message = checked.message();
    return Step::bad_line;
  }
  return Step::bill;
}

Result<BillFileCheck> CheckBillFile(std::string_view text,
                                    const std::unordered_set<std::string>& known_utilities) {
  BillFileReader reader(text, known_utilities);
  CITYCARD_RETURN_IF_ERROR(reader.ReadHeader());
  BillFileCheck check;
  Bill bill;
  LineError error;
  while (true) {
    Result<BillFileReader::Step> step = reader.Next(&bill, &error);
    if (!step.ok()) return step.status();
    if (*step == BillFileReader::Step::end) break;
    if (*step == BillFileReader::Step::bill) {
      check.bills.push_back(std::move(bill));
    } else {
      check.errors.push_back(std::move(error));
    }
  }
  check.lines = reader.lines();
  return check;
}

// ---- Results ---------------------------------------------------------------------------

std::string_view BillStatusName(BillStatus status) {
  switch (status) {
    case BillStatus::paid: return "paid";
    case BillStatus::insufficient_funds: return "insufficient_funds";
    case BillStatus::card_blocked: return "card_blocked";
    case BillStatus::unknown_card: return "unknown_card";
    case BillStatus::no_mandate: return "no_mandate";
    case BillStatus::already_paid: return "already_paid";
  }
  return "unknown";
}

std::optional<BillStatus> ParseBillStatus(std::string_view name) {
  for (size_t number = 1; number <= kBillStatusCount; ++number) {
    auto status = static_cast<BillStatus>(number);
    if (BillStatusName(status) == name) return status;
  }
  return std::nullopt;
}

std::string FormatBillResults(std::span<const BillResult> results) {
  std::string out(kBillResultsHeader);
  out += '\n';
  out.reserve(results.size() * 64 + out.size());
  for (const BillResult& result : results) {
    std::string amount = FormatYuan(result.amount_paid_fen);
    AppendCsvRecord(&out, {result.bill_id, BillStatusName(result.status), amount,
                           result.transfer_id, result.reason});
  }
  return out;
}

std::vector<UtilitySummary> SummarizeBillResults(std::span<const BillResult> results) {
  std::map<std::string, UtilitySummary> by_utility;
  for (const BillResult& result : results) {
    size_t number = static_cast<size_t>(result.status);
    CITYCARD_ASSERT(number >= 1 && number <= kBillStatusCount);
    UtilitySummary& summary = by_utility[result.utility];
    summary.utility = result.utility;
    summary.bills += 1;
    summary.billed_fen += result.amount_fen;
    // A bill paid earlier elsewhere (already_paid) names that payment, but this file did not
    // pay it: only `paid` counts as paid here.
    if (result.status == BillStatus::paid) summary.paid_fen += result.amount_paid_fen;
    if (result.status != BillStatus::paid && result.status != BillStatus::already_paid) {
      summary.unpaid_fen += result.amount_fen;
    }
    summary.by_status[number - 1] += 1;
  }
  std::vector<UtilitySummary> out;
  out.reserve(by_utility.size());
  for (auto& [utility, summary] : by_utility) out.push_back(std::move(summary));
  return out;
}

}  // namespace citycard
