// The bulk reads settlement makes, behind one interface so that a store can answer them with
// narrow queries: the ledger's posted movements summed per (account, code) over a stretch of
// the transfer sequence, a summary of every tap booked on the day, and where the day's rebated
// cards take their money. StoreSettlementReads answers them from the general LedgerStore,
// TapStore and RegistryStore calls (whole transfers and whole decoded taps in pages, one
// FindCard per card); db/sqlite_settlement_reads.h answers them in SQL reading only the
// columns and record bytes needed. Both must give the same answers (the db tests check it).
// docs/settlement.md "Reading the day".
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/ledger_store.h"
#include "core/profile.h"
#include "core/registry.h"
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

// A stretch of a sequence, both ends included.
struct SeqRange {
  int64_t first = 0;
  int64_t last = 0;
  bool operator==(const SeqRange&) const = default;
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

// What the booking of a capping rebate reads of a registered card (core/registry.h Card): where
// its money goes (its purse; the refunds account when closed; the replacing card's purse when
// its balance moved there).
struct RebateCardState {
  std::string card_no;
  CardStatus status = CardStatus::active;
  uint64_t purse_account_id = 0;
  std::string replaced_by;      // the card that replaced it, or empty
  int64_t balance_moved_s = 0;  // 0: its balance has not moved to replaced_by

  bool operator==(const RebateCardState&) const = default;
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
  // particular order; nothing when first_seq > last_seq. With `only_kind`, only the pairs
  // whose account is of that kind (core/account_plan.h AccountIdKind): settlement needs the
  // operator payables' alone, and a day's card purses would be a sum per card. Failures: the
  // store's I/O.
  virtual Status SumPostedMovements(int64_t first_seq, int64_t last_seq,
                                    std::optional<AccountKind> only_kind,
                                    std::vector<AccountCodeSum>* out) = 0;
  // Calls `visit` once per tap booked on `clearing_day` (loads included), ascending seq;
  // stops at and returns the first failing visit. `visit` must not use the store. Failures:
  // the store's I/O; Kind::internal "tap_store_corrupt" for a stored record that is not one.
  virtual Status ForEachDayTap(int64_t clearing_day,
                               const std::function<Status(const DayTapSummary&)>& visit) = 0;
  // The seqs of the first and the last tap booked on `clearing_day`; nullopt when it has none.
  // Failures: the store's I/O.
  virtual Result<std::optional<SeqRange>> DayTapSeqs(int64_t clearing_day) = 0;
  // ForEachDayTap for the day's taps with seq in [seqs.first, seqs.last] only, so that two
  // connections can read the two halves of a day at once (TapStoreSettlementSource).
  virtual Status ForEachDayTapIn(int64_t clearing_day, SeqRange seqs,
                                 const std::function<Status(const DayTapSummary&)>& visit) = 0;
  // The registered cards among `card_nos`, which must be ascending (as std::string compares)
  // and without repeats (CITYCARD_ASSERT): appends one state per registered card to `out`,
  // ascending card number; a card not registered is left out. Failures: the store's I/O.
  virtual Status FindRebateCards(std::span<const std::string> card_nos,
                                 std::vector<RebateCardState>* out) = 0;
  // RegistryStore::CardChanges over this connection. Failures: the store's I/O.
  virtual Result<int64_t> CardChanges() = 0;
};

// The same reads over the general store interfaces (any store, the in-memory fakes included):
// whole transfers in ScanTransfers pages, whole decoded taps in ScanDayTaps pages.
Status SumPostedMovementsFromStore(LedgerStore& ledger, int64_t first_seq, int64_t last_seq,
                                   std::optional<AccountKind> only_kind,
                                   std::vector<AccountCodeSum>* out);
// The day's taps from seq `seqs.first` on up to `seqs.last` (nullopt: every tap of the day).
Status ForEachDayTapFromStore(TapStore& taps, int64_t clearing_day, std::optional<SeqRange> seqs,
                              const std::function<Status(const DayTapSummary&)>& visit);
// A pass over the whole day (the general interface has no cheaper way to find its ends).
Result<std::optional<SeqRange>> DayTapSeqsFromStore(TapStore& taps, int64_t clearing_day);
// One RegistryStore::FindCard per card.
Status FindRebateCardsFromRegistry(RegistryStore& registry, std::span<const std::string> card_nos,
                                   std::vector<RebateCardState>* out);

// SettlementReads by the three functions above. The stores must outlive it.
class StoreSettlementReads final : public SettlementReads {
 public:
  StoreSettlementReads(LedgerStore& ledger, TapStore& taps, RegistryStore& registry)
      : ledger_(ledger), taps_(taps), registry_(registry) {}
  Status SumPostedMovements(int64_t first_seq, int64_t last_seq,
                            std::optional<AccountKind> only_kind,
                            std::vector<AccountCodeSum>* out) override {
    return SumPostedMovementsFromStore(ledger_, first_seq, last_seq, only_kind, out);
  }
  Status ForEachDayTap(int64_t clearing_day,
                       const std::function<Status(const DayTapSummary&)>& visit) override {
    return ForEachDayTapFromStore(taps_, clearing_day, std::nullopt, visit);
  }
  Result<std::optional<SeqRange>> DayTapSeqs(int64_t clearing_day) override {
    return DayTapSeqsFromStore(taps_, clearing_day);
  }
  Status ForEachDayTapIn(int64_t clearing_day, SeqRange seqs,
                         const std::function<Status(const DayTapSummary&)>& visit) override {
    return ForEachDayTapFromStore(taps_, clearing_day, seqs, visit);
  }
  Status FindRebateCards(std::span<const std::string> card_nos,
                         std::vector<RebateCardState>* out) override {
    return FindRebateCardsFromRegistry(registry_, card_nos, out);
  }
  Result<int64_t> CardChanges() override { return registry_.CardChanges(); }

 private:
  LedgerStore& ledger_;
  TapStore& taps_;
  RegistryStore& registry_;
};

}  // namespace citycard
