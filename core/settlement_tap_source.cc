#include "core/settlement_tap_source.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/card_number.h"
#include "core/settlement_reads.h"
#include "core/time.h"

namespace citycard {

namespace {

// The most card-day taps room is made for ahead of a scan (about 400 MB): above it the vector
// grows as it is filled.
constexpr int64_t kCardTapsReservedMax = 10'000'000;

}  // namespace

TapStoreSettlementSource::TapStoreSettlementSource(TapStore& taps, RegistryStore& registry,
                                                   SettlementReads* reads)
    : taps_(taps), registry_(registry), reads_(reads) {}

Status TapStoreSettlementSource::Scan(int64_t day) {
  if (scanned_day_ == day) return Status::Ok();
  scanned_day_.reset();
  by_operator_.clear();
  operator_ids_.clear();
  card_taps_.clear();
  auto totals = taps_.DayTotals(day);
  if (!totals.ok()) return totals.status();
  day_totals_ = std::move(*totals);
  // The kept totals count the day's taps: room for all of them is made once, where growing
  // the vector by doubling copied it over and over (docs/benchmarks.md). Only a hint: the
  // scan checks the counts.
  int64_t day_taps = 0;
  for (const DayOperatorTotals& kept : day_totals_) day_taps += std::max<int64_t>(kept.taps, 0);
  card_taps_.reserve(static_cast<size_t>(std::min(day_taps, kCardTapsReservedMax)));
  auto operators = registry_.ListOperators();
  if (!operators.ok()) return operators.status();
  std::map<std::string, std::optional<RideMode>, std::less<>> modes;
  for (const Operator& op : *operators) modes[op.id] = CapModeForOperator(op.kind);

  // One pass over the day serves both the operator totals and the card-days. The card-days'
  // taps are kept in one flat vector and sorted by card once at the end: a search per tap in a
  // map of cards (ordered, then hashed) was the largest part of settlement's time
  // (docs/benchmarks.md). The day's taps come in runs of one operator, so the operator's
  // entries are looked up only when it changes.
  std::map<std::string, uint32_t, std::less<>> operator_index;
  Scanned* op_sums = nullptr;
  std::optional<RideMode> op_mode;
  uint32_t op_index = 0;
  auto visit = [&](const DayTapSummary& tap) -> Status {
    if (tap.type == TapType::load) return Status::Ok();
    if (op_sums == nullptr || tap.operator_id != operator_ids_[op_index]) {
      auto [found, added] = operator_index.try_emplace(
          std::string(tap.operator_id), static_cast<uint32_t>(operator_ids_.size()));
      if (added) operator_ids_.push_back(found->first);
      op_index = found->second;
      op_sums = &by_operator_[found->first];
      auto mode = modes.find(found->first);
      op_mode = mode == modes.end() ? std::nullopt : mode->second;
    }
    op_sums->taps += 1;
    op_sums->paid_fen += tap.amount_fen;
    if (!tap.paid) return Status::Ok();
    op_sums->paid_taps += 1;
    if (tap.late) {
      op_sums->late_paid_fen += tap.amount_fen;
      return Status::Ok();
    }
    if (!op_mode.has_value()) return Status::Ok();
    card_taps_.push_back(
        CardTap{tap.card_no, tap.seq, tap.amount_fen, tap.time_s, op_index, tap.profile, *op_mode});
    return Status::Ok();
  };
  Status read = reads_ != nullptr ? reads_->ForEachDayTap(day, visit)
                                  : ForEachDayTapFromStore(taps_, day, visit);
  if (!read.ok()) {
    by_operator_.clear();
    operator_ids_.clear();
    card_taps_.clear();
    return read;
  }
  std::sort(card_taps_.begin(), card_taps_.end(), [](const CardTap& a, const CardTap& b) {
    return a.card_no != b.card_no ? a.card_no < b.card_no : a.seq < b.seq;
  });
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
  // One card-day at a time, in one reused value: the card's taps in booking order, and the
  // profile its last tap carried.
  CardDayTaps card;
  size_t i = 0;
  while (i < card_taps_.size()) {
    const uint64_t card_no = card_taps_[i].card_no;
    card.card_no = CardNumberFromInt(card_no);
    card.taps.clear();
    for (; i < card_taps_.size() && card_taps_[i].card_no == card_no; ++i) {
      const CardTap& tap = card_taps_[i];
      card.profile = tap.profile;
      card.taps.push_back(
          PaidTap{operator_ids_[tap.operator_index], tap.mode, tap.amount_fen, tap.time_s});
    }
    CITYCARD_RETURN_IF_ERROR(visit(card));
  }
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
