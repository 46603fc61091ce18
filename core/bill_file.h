// Utility bill files and their results files (docs/bills.md; ../shared/design/CLI.md "File
// formats"). Pure: reading and checking a bill file, writing a results file and summing the
// results per utility. Paying the bills (mandates, the ledger, idempotency) is the importer's
// business; this is the part of it that needs no storage.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/csv.h"
#include "core/status.h"

namespace citycard {

inline constexpr std::string_view kBillFileHeader =
    "bill_id,utility,account_no,card_no,period,amount,due_date";
inline constexpr size_t kBillFileFields = 7;
inline constexpr std::string_view kBillResultsHeader =
    "bill_id,status,amount_paid,transfer_id,reason";
// The longest bill id and account number accepted, in bytes of UTF-8.
inline constexpr size_t kBillIdBytesMax = 64;
inline constexpr size_t kBillAccountNoBytesMax = 64;
// The most bill lines one file may hold (a city of ten million households bills monthly
// per utility, so one file per utility and month stays far below this).
inline constexpr int64_t kBillFileLinesMax = 10'000'000;
// Billing periods from this year to that one are accepted.
inline constexpr int kBillPeriodYearMin = 2000;
inline constexpr int kBillPeriodYearMax = 2099;

// One good line of a bill file.
struct Bill {
  int64_t line = 0;        // 1-based line number in the file
  std::string bill_id;     // the utility's id, unique inside the file
  std::string utility;     // an operator id of kind utility
  std::string account_no;  // the holder's account with the utility (UTF-8, may be Chinese)
  std::string card_no;     // 16 digits, Luhn-valid
  std::string period;      // normalized to "YYYY-MM"
  int64_t amount_fen = 0;  // > 0
  int64_t due_day = 0;     // civil day number (core/time.h)

  friend bool operator==(const Bill&, const Bill&) = default;
};

// One bad line. reason_code is one of (docs/bills.md "Line errors"):
//   invalid_csv, not_utf8, wrong_field_count, invalid_bill_id, duplicate_bill_id,
//   unknown_utility, invalid_account_no, invalid_card_no, invalid_period, invalid_amount,
//   invalid_date.
// A line gets one error: the first problem found, reading its fields left to right.
struct LineError {
  int64_t line = 0;
  std::string reason_code;
  std::string message;  // for people, in English; names the field and the value

  friend bool operator==(const LineError&, const LineError&) = default;
};

// Reads a bill file one line at a time, for importers that would rather not hold a million
// bills in memory. Holds a view of the text (which must outlive it) and the set of bill ids
// seen so far, for the duplicate check; `known_utilities` must outlive it too.
class BillFileReader {
 public:
  enum class Step { bill, bad_line, end };

  BillFileReader(std::string_view text, const std::unordered_set<std::string>& known_utilities);

  // Reads and checks the header. Call once, first. Fails with Kind::bad_input
  // "invalid_bill_header" when the file is empty or its first record is not exactly
  // kBillFileHeader (a UTF-8 byte-order mark before it is fine).
  Status ReadHeader();

  // Reads the next line: Step::bill with *bill filled, Step::bad_line with *error filled, or
  // Step::end. Fails only with Kind::bad_input "bill_file_too_large" after kBillFileLinesMax
  // lines. Line errors are listed at LineError.
  Result<Step> Next(Bill* bill, LineError* error);

  // Bill lines read so far (good and bad, the header excluded).
  int64_t lines() const { return lines_; }

 private:
  Status CheckLine(const CsvRecord& record, Bill* bill);

  CsvReader csv_;
  CsvRecord record_;
  const std::unordered_set<std::string>& known_utilities_;
  std::unordered_map<std::string, int64_t> first_line_of_bill_;
  int64_t lines_ = 0;
};

struct BillFileCheck {
  std::vector<Bill> bills;         // the good lines, in file order
  std::vector<LineError> errors;   // the bad lines, in file order
  int64_t lines = 0;               // bill lines read (good and bad, header excluded)
};

// Reads and checks a whole bill file. `known_utilities` are the operator ids of kind utility;
// a bill for anything else is a line error (unknown_utility). Every line is checked; bad
// lines are collected, not returned as a failure. A bill id that appears on several lines
// is kept on its first line and reported as duplicate_bill_id on each later one.
// Fails as a whole only when:
// - the file is empty or its first record is not exactly kBillFileHeader:
//   Kind::bad_input "invalid_bill_header";
// - it has more than kBillFileLinesMax bill lines: Kind::bad_input "bill_file_too_large".
Result<BillFileCheck> CheckBillFile(std::string_view text,
                                   const std::unordered_set<std::string>& known_utilities);

// A billing period: "2026-10" or "202610" (months 01-12, years kBillPeriodYearMin to
// kBillPeriodYearMax) -> "2026-10". Refuses anything else: Kind::bad_input "invalid_period".
Result<std::string> ParseBillPeriod(std::string_view text);

// ---- Results ---------------------------------------------------------------------------

// What became of one bill. Stored numbers; never renumber.
enum class BillStatus : uint8_t {
  paid = 1,                // paid now, or earlier by this same file (an import run again)
  insufficient_funds = 2,  // the purse cannot pay the whole amount; nothing was taken
  card_blocked = 3,        // the card is blocked, replaced, closed or expired
  unknown_card = 4,        // no card with that number
  no_mandate = 5,          // no mandate for this card, utility and account
  already_paid = 6,        // the bill id was paid earlier by another file or at a counter
};
inline constexpr size_t kBillStatusCount = 6;

// "paid", "insufficient_funds", "card_blocked", "unknown_card", "no_mandate", "already_paid".
std::string_view BillStatusName(BillStatus status);
std::optional<BillStatus> ParseBillStatus(std::string_view name);

struct BillResult {
  std::string bill_id;
  std::string utility;          // for the summary; not written to the results file
  BillStatus status = BillStatus::paid;
  int64_t amount_fen = 0;       // the bill's amount
  // For paid and already_paid: the amount and the ledger transfer that paid the bill (for
  // already_paid the earlier payment's). For the other statuses 0 and empty.
  int64_t amount_paid_fen = 0;
  std::string transfer_id;
  std::string reason;           // for people; may be empty for paid bills

  friend bool operator==(const BillResult&, const BillResult&) = default;
};

// The results file: kBillResultsHeader, then one line per result in the given order:
// bill_id, status name, amount_paid in yuan with two decimals, transfer_id, reason.
// Fields are quoted as RFC 4180 needs; lines end with LF.
std::string FormatBillResults(std::span<const BillResult> results);

// Totals for one utility, from the results.
struct UtilitySummary {
  std::string utility;
  int64_t bills = 0;
  int64_t billed_fen = 0;   // sum of amount_fen
  int64_t paid_fen = 0;     // sum of amount_paid_fen of the `paid` bills
  int64_t unpaid_fen = 0;   // billed_fen of the bills that are neither paid nor already_paid
  std::array<int64_t, kBillStatusCount> by_status{};  // index: status number - 1

  int64_t count(BillStatus status) const {
    return by_status[static_cast<size_t>(status) - 1];
  }
  friend bool operator==(const UtilitySummary&, const UtilitySummary&) = default;
};

// One summary per utility, ordered by utility id.
std::vector<UtilitySummary> SummarizeBillResults(std::span<const BillResult> results);

}  // namespace citycard
