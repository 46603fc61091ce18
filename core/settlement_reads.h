// The two reads settlement makes of a whole clearing day, behind one interface so that a store
// can answer them with narrow queries: the ledger's posted movements summed per (account,
// code) over a stretch of the transfer sequence, and a summary of every tap booked on the day.
// StoreSettlementReads answers them from the general LedgerStore and TapStore scans (whole
// transfers and whole decoded taps, in pages); db/sqlite_settlement_reads.h answers them in
// SQL reading only the columns and record bytes needed. Both must give the same answers (the
// db tests check it). docs/settlement.md "Reading the day".
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "core/ledger_store.h"
#include "core/profile.h"
#include "core/status.h"
#include "core/tap_record.h"
#include "core/tap_store.h"

namespace citycard {

// What the posted transfers of a stretch of the ledger moved through one account under one
// transfer code.
struct AccountCodeSum {
  uint64_t account_id = 0;
  uint16_t code = 0;
  int64_t transfers = 0;  // transfers that debited or credited the account under the code
  int64_t credits_fen = 0;
  int64_t debits_fen = 0;

  bool operator==(const AccountCodeSum&) const = default;
};

// What settlement reads of a booked tap: a few fields of StoredTap and its record.
struct DayTapSummary {
  int64_t seq = 0;
  uint64_t card_no = 0;  // the card that tapped (record.card_no)
  TapType type = TapType::purchase;
  Profile profile = Profile::adult;
  int64_t amount_fen = 0;
  int64_t time_s = 0;
  std::string_view operator_id;  // valid during the visit only
  bool late = false;
  bool paid = false;  // a ledger transfer moved its money (transfer_id not zero)

  bool operator==(const DayTapSummary&) const = default;
};

// The flags of a transfer that did not move money as posted: a pending reservation, a void, an
// expiry. A plain transfer and the post of a pending one (which carries the posted amount) did.
inline constexpr uint16_t kTransferNotPostedFlags =
    kTransferPending | kTransferVoidPending | kTransferExpiry;

// Pages of the general scans StoreSettlementReads reads.
inline constexpr size_t kSettlementLedgerPageTransfers = 4'096;
inline constexpr size_t kSettlementTapPageTaps = 10'000;

class SettlementReads {
 public:
  virtual ~SettlementReads() = default;
  // The transfers with seq in [first_seq, last_seq] that moved money as posted (no flag of
  // kTransferNotPostedFlags), summed per (account, code), each transfer once on its debit and
  // once on its credit account. Appends one entry per pair that moved to `out`, in no
  // particular order; nothing when first_seq > last_seq. Failures: the store's I/O.
  virtual Status SumPostedMovements(int64_t first_seq, int64_t last_seq,
                                    std::vector<AccountCodeSum>* out) = 0;
  // Calls `visit` once per tap booked on `clearing_day` (loads included), ascending seq;
  // stops at and returns the first failing visit. `visit` must not use the store. Failures:
  // the store's I/O; Kind::internal "tap_store_corrupt" for a stored record that is not one.
  virtual Status ForEachDayTap(int64_t clearing_day,
                               const std::function<Status(const DayTapSummary&)>& visit) = 0;
};

// The same reads over the general store interfaces (any store, the in-memory fakes included):
// whole transfers in ScanTransfers pages, whole decoded taps in ScanDayTaps pages.
Status SumPostedMovementsFromStore(LedgerStore& ledger, int64_t first_seq, int64_t last_seq,
                                   std::vector<AccountCodeSum>* out);
Status ForEachDayTapFromStore(TapStore& taps, int64_t clearing_day,
                              const std::function<Status(const DayTapSummary&)>& visit);

// SettlementReads by the two functions above. Both stores must outlive it.
class StoreSettlementReads final : public SettlementReads {
 public:
  StoreSettlementReads(LedgerStore& ledger, TapStore& taps) : ledger_(ledger), taps_(taps) {}
  Status SumPostedMovements(int64_t first_seq, int64_t last_seq,
                            std::vector<AccountCodeSum>* out) override {
    return SumPostedMovementsFromStore(ledger_, first_seq, last_seq, out);
  }
  Status ForEachDayTap(int64_t clearing_day,
                       const std::function<Status(const DayTapSummary&)>& visit) override {
    return ForEachDayTapFromStore(taps_, clearing_day, visit);
  }

 private:
  LedgerStore& ledger_;
  TapStore& taps_;
};

}  // namespace citycard
