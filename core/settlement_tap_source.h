// The settlement's view of the ingest's tap store (core/tap_store.h): SettlementTapSource over
// a TapStore and the registry. Pure logic over the two interfaces.
//
// Per-operator totals come from the totals the ingest keeps per commit (TapStore::DayTotals);
// the taps of the day are also read once (TapStore::ScanDayTaps) to count the taps that moved
// money, the money of late taps and each card's taps for the daily caps, and the two are
// checked against each other: a difference is a "reconciliation_failed".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/registry.h"
#include "core/settlement.h"
#include "core/tap_store.h"

namespace citycard {

// Taps read per ScanDayTaps call.
inline constexpr size_t kSettlementScanPageTaps = 10'000;

class TapStoreSettlementSource final : public SettlementTapSource {
 public:
  // Both must outlive the source. The scan of a day is kept until another day is asked for.
  TapStoreSettlementSource(TapStore& taps, RegistryStore& registry);

  // DayTotals, with paid_taps and late_paid_fen from the scan. Kind::internal
  // "reconciliation_failed" when the kept totals and the scanned taps disagree.
  Result<std::vector<OperatorTapTotals>> OperatorTotals(int64_t day) override;
  // The taps of the day that paid money, are not loads and are not late, per card (the card
  // that tapped, whoever's purse paid), ascending card number; each tap's mode is its
  // operator's (CapModeForOperator); operators without one are left out.
  Status ForEachCardDay(int64_t day,
                        const std::function<Status(const CardDayTaps&)>& visit) override;
  // Loads booked at counters and kiosks (DayTotals loads/load_fen) as top-ups collected.
  Result<std::vector<OperatorServiceTotals>> ServiceTotals(int64_t day) override;

 private:
  struct Scanned {
    int64_t taps = 0;
    int64_t paid_taps = 0;
    int64_t paid_fen = 0;
    int64_t late_paid_fen = 0;
  };
  Status Scan(int64_t day);

  TapStore& taps_;
  RegistryStore& registry_;
  std::optional<int64_t> scanned_day_;
  std::vector<DayOperatorTotals> day_totals_;
  std::map<std::string, Scanned> by_operator_;
  std::map<uint64_t, CardDayTaps> by_card_;
};

}  // namespace citycard
