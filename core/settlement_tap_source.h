// The settlement's view of the ingest's tap store (core/tap_store.h): SettlementTapSource over
// a TapStore and the registry. Pure logic over the two interfaces.
//
// Per-operator totals come from the totals the ingest keeps per commit (TapStore::DayTotals);
// the taps of the day are also read once (SettlementReads::ForEachDayTap, one pass serving both
// OperatorTotals and ForEachCardDay) to count the taps that moved money, the money of late
// taps and each card's taps for the daily caps, and the two are checked against each other: a
// difference is a "reconciliation_failed".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/huge_pages.h"
#include "core/registry.h"
#include "core/settlement.h"
#include "core/settlement_reads.h"
#include "core/tap_store.h"

namespace citycard {

// Below this many seqs in a day, its taps are read in one part: a second thread and its
// merge cost more than they save on a small day.
inline constexpr int64_t kTapReadSplitMinSeqs = 50'000;

class TapStoreSettlementSource final : public SettlementTapSource {
 public:
  // All must outlive the source. The scan of a day is kept until another day is asked for.
  // `reads`, when given, reads the day's taps (over the tap store's connection, e.g.
  // db::SqliteSettlementReads); nullptr: the tap store's ScanDayTaps pages.
  // `second_reads`, when given with `reads`, reads the second half of a day of more than
  // `split_min_seqs` seqs on a thread of its own while `reads` reads the first (over a
  // connection of its own: db::SqliteSettlementReads on a second Database): the read of the
  // day's taps is the longest step of a large settlement (docs/benchmarks.md).
  TapStoreSettlementSource(TapStore& taps, RegistryStore& registry,
                           SettlementReads* reads = nullptr, SettlementReads* second_reads = nullptr,
                           int64_t split_min_seqs = kTapReadSplitMinSeqs);

  // DayTotals, with paid_taps and late_paid_fen from the scan. Kind::internal
  // "reconciliation_failed" when the kept totals and the scanned taps disagree.
  Result<std::vector<OperatorTapTotals>> OperatorTotals(int64_t day) override;
  // The taps of the day that paid money, are not loads and are not late, per card (the card
  // that tapped, whoever's purse paid), ascending card number; each tap's mode is its
  // operator's (CapModeForOperator); operators without one are left out.
  Status ForEachCardDay(int64_t day,
                        const std::function<Status(const CardDayTaps&)>& visit) override;
  // Two parts: the card taps are split at the card nearest their middle (of the longer run,
  // when the day was read in two halves). Parts read only what
  // the day's scan kept (asserted: the day was scanned before), so two run at once safely.
  size_t CardDayPartsMax() const override { return kCardDayPartsMax; }
  Status ForEachCardDayPart(int64_t day, size_t part, size_t parts,
                            const std::function<Status(const CardDayTaps&)>& visit) override;
  static constexpr size_t kCardDayPartsMax = 2;
  // Reads the day (the tap store's day totals, the registry's operators and every tap of the
  // day) so that the three questions answer from memory. Safe on a second thread
  // (SettlerConfig::tap_source_apart) when the stores and reads given to this source are on a
  // connection of their own.
  Status ReadDay(int64_t day) override { return Scan(day); }
  // Loads booked at counters and kiosks (DayTotals loads/load_fen) as top-ups collected.
  Result<std::vector<OperatorServiceTotals>> ServiceTotals(int64_t day) override;

 private:
  struct Scanned {
    int64_t taps = 0;
    int64_t paid_taps = 0;
    int64_t paid_fen = 0;
    int64_t late_paid_fen = 0;
  };
  // A paid, not late tap of a capped mode, as the scan keeps it for the card-days: compact and
  // without allocation (the operator by its index in operator_ids_), sorted by (card, seq)
  // once the day is read.
  struct CardTap {
    uint64_t card_no = 0;
    int64_t seq = 0;
    int64_t amount_fen = 0;
    int64_t time_s = 0;
    uint32_t operator_index = 0;
    Profile profile = Profile::adult;
    RideMode mode = RideMode::bus;
  };
  // The card-days' order: by card, then seq.
  static bool CardTapBefore(const CardTap& a, const CardTap& b);
  // A day's card taps: hundreds of megabytes, on huge pages (core/huge_pages.h).
  using CardTaps = std::vector<CardTap, HugePageAllocator<CardTap>>;
  // Sorts `taps` by CardTapBefore.
  static void SortCardTaps(CardTaps* taps);
  struct Part;
  using ModeMap = std::map<std::string, std::optional<RideMode>, std::less<>>;
  Status Scan(int64_t day);
  Status ReadParts(int64_t day, const ModeMap& modes, size_t reserve, Part* first);
  Status ReadPart(SettlementReads* reads, int64_t day, std::optional<SeqRange> seqs,
                  const ModeMap& modes, Part* part);
  static void Merge(Part from, Part* into);

  TapStore& taps_;
  RegistryStore& registry_;
  SettlementReads* reads_;
  SettlementReads* second_reads_;
  int64_t split_min_seqs_;
  std::optional<int64_t> scanned_day_;
  std::vector<DayOperatorTotals> day_totals_;
  std::map<std::string, Scanned> by_operator_;
  std::vector<std::string> operator_ids_;
  CardTaps card_taps_;  // ascending card number, then seq
  // When the day was read in two halves: the second half's, in the same order; its seqs all
  // follow card_taps_'s. A card's taps are its taps in card_taps_, then those in here.
  CardTaps later_card_taps_;
};

}  // namespace citycard
