#include "core/settlement_tap_source.h"

#include <fmt/format.h>

#include <unordered_map>

#include "core/card_number.h"
#include "core/time.h"

namespace citycard {

TapStoreSettlementSource::TapStoreSettlementSource(TapStore& taps, RegistryStore& registry)
    : taps_(taps), registry_(registry) {}

Status TapStoreSettlementSource::Scan(int64_t day) {
  if (scanned_day_ == day) return Status::Ok();
  scanned_day_.reset();
  by_operator_.clear();
  by_card_.clear();
  auto totals = taps_.DayTotals(day);
  if (!totals.ok()) return totals.status();
  day_totals_ = std::move(*totals);
  auto operators = registry_.ListOperators();
  if (!operators.ok()) return operators.status();
  std::map<std::string, std::optional<RideMode>> modes;
  for (const Operator& op : *operators) modes[op.id] = CapModeForOperator(op.kind);

  // Card-days are gathered in a hash map and ordered once at the end (by_card_ is visited in
  // card order, which keeps the rebates' order stable): a tap's search in the ordered map
  // was an eighth of settlement's time (docs/benchmarks.md).
  std::unordered_map<uint64_t, CardDayTaps> cards;
  std::vector<StoredTap> page;
  int64_t after = 0;
  for (;;) {
    page.clear();
    CITYCARD_RETURN_IF_ERROR(taps_.ScanDayTaps(day, after, kSettlementScanPageTaps, &page));
    for (const StoredTap& tap : page) {
      after = tap.seq;
      const TapRecord& r = tap.record;
      if (r.type == TapType::load) continue;
      Scanned& s = by_operator_[r.operator_id];
      s.taps += 1;
      s.paid_fen += r.amount_fen;
      if (tap.transfer_id.IsZero()) continue;
      s.paid_taps += 1;
      if (tap.late) {
        s.late_paid_fen += r.amount_fen;
        continue;
      }
      auto mode = modes.find(r.operator_id);
      if (mode == modes.end() || !mode->second.has_value()) continue;
      CardDayTaps& card = cards[r.card_no];
      card.card_no = CardNumberFromInt(r.card_no);
      card.profile = r.profile;
      card.taps.push_back(PaidTap{r.operator_id, *mode->second, r.amount_fen, r.time_s});
    }
    if (page.size() < kSettlementScanPageTaps) break;
  }
  for (auto& [card_no, taps] : cards) by_card_.emplace(card_no, std::move(taps));
  scanned_day_ = day;
  return Status::Ok();
}

Result<std::vector<OperatorTapTotals>> TapStoreSettlementSource::OperatorTotals(int64_t day) {
  CITYCARD_RETURN_IF_ERROR(Scan(day));
  std::vector<OperatorTapTotals> result;
  size_t matched = 0;
  for (const DayOperatorTotals& kept : day_totals_) {
    if (kept.taps == 0 && kept.paid_fen == 0) continue;  // a row of loads only
    auto found = by_operator_.find(kept.operator_id);
    Scanned scanned = found == by_operator_.end() ? Scanned{} : found->second;
    if (found != by_operator_.end()) ++matched;
    if (scanned.taps != kept.taps || scanned.paid_fen != kept.paid_fen) {
      return Status::Internal(
          "reconciliation_failed",
          fmt::format("operator {} on {}: the tap store's totals say {} taps paying {} fen, its "
                      "taps {} paying {} fen",
                      kept.operator_id, FormatDay(day), kept.taps, kept.paid_fen, scanned.taps,
                      scanned.paid_fen));
    }
    OperatorTapTotals t;
    t.operator_id = kept.operator_id;
    t.taps = kept.taps;
    t.paid_taps = scanned.paid_taps;
    t.gross_fen = kept.full_fare_fen;
    t.concession_fen = kept.concession_fen;
    t.transfer_discount_fen = kept.transfer_discount_fen;
    t.paid_fen = kept.paid_fen;
    t.late_taps = kept.late_taps;
    t.late_paid_fen = scanned.late_paid_fen;
    result.push_back(std::move(t));
  }
  if (matched != by_operator_.size()) {
    return Status::Internal("reconciliation_failed",
                            fmt::format("on {} the tap store holds taps of operators its totals "
                                        "do not list",
                                        FormatDay(day)));
  }
  return result;
}

Status TapStoreSettlementSource::ForEachCardDay(
    int64_t day, const std::function<Status(const CardDayTaps&)>& visit) {
  CITYCARD_RETURN_IF_ERROR(Scan(day));
  for (const auto& [card_no, card] : by_card_) CITYCARD_RETURN_IF_ERROR(visit(card));
  return Status::Ok();
}

Result<std::vector<OperatorServiceTotals>> TapStoreSettlementSource::ServiceTotals(int64_t day) {
  CITYCARD_RETURN_IF_ERROR(Scan(day));
  std::vector<OperatorServiceTotals> result;
  for (const DayOperatorTotals& kept : day_totals_) {
    if (kept.loads == 0) continue;
    OperatorServiceTotals s;
    s.operator_id = kept.operator_id;
    s.topups = kept.loads;
    s.topup_fen = kept.load_fen;
    result.push_back(std::move(s));
  }
  return result;
}

}  // namespace citycard
