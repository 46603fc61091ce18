#include "core/capping.h"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "core/time.h"

namespace citycard {

namespace {

Status Invalid(std::string message) { return Status::BadInput("invalid_cap_input", std::move(message)); }

const DailyCap* CapFor(const std::vector<DailyCap>& caps, Profile profile, RideMode mode) {
  for (const DailyCap& cap : caps) {
    if (cap.profile == profile && std::find(cap.modes.begin(), cap.modes.end(), mode) != cap.modes.end()) {
      return &cap;
    }
  }
  return nullptr;
}

Status Validate(const std::vector<PaidTap>& taps) {
  if (taps.size() > kCapTapsPerDayMax) {
    return Invalid(fmt::format("more than {} taps in one day", kCapTapsPerDayMax));
  }
  const int64_t day = taps.empty() ? 0 : ClearingDay(taps[0].time_s);
  for (size_t i = 0; i < taps.size(); ++i) {
    if (taps[i].amount_fen < 0 || taps[i].amount_fen > kFareFenMax) {
      return Invalid(fmt::format("tap {}: amount {} is outside 0..{}", i, taps[i].amount_fen, kFareFenMax));
    }
    if (taps[i].operator_id.empty()) return Invalid(fmt::format("tap {}: no operator", i));
    if (ClearingDay(taps[i].time_s) != day) {
      return Invalid(fmt::format("tap {} is on {}, tap 0 on {}: one day at a time",
                                 i, FormatDay(ClearingDay(taps[i].time_s)), FormatDay(day)));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<CapRebates> ComputeCapRebates(const std::vector<PaidTap>& taps, Profile profile,
                                     const std::vector<DailyCap>& caps) {
  CITYCARD_RETURN_IF_ERROR(Validate(taps));
  CapRebates result;
  result.rebate_fen_by_tap.assign(taps.size(), 0);

  // Settlement calls this once per card and day, a million times on a city's day, so the
  // few caps and operators of one card's day are kept in small vectors searched in turn
  // rather than in maps (docs/benchmarks.md, "Settlement").
  std::vector<size_t> order(taps.size());
  std::iota(order.begin(), order.end(), 0);
  auto earlier = [&taps](size_t a, size_t b) { return taps[a].time_s < taps[b].time_s; };
  // A card's taps mostly come in time order already.
  if (!std::is_sorted(order.begin(), order.end(), earlier)) {
    std::stable_sort(order.begin(), order.end(), earlier);
  }

  std::vector<std::pair<const DailyCap*, int64_t>> paid_by_cap;
  for (size_t index : order) {
    const PaidTap& tap = taps[index];
    const DailyCap* cap = CapFor(caps, profile, tap.mode);
    if (cap == nullptr) continue;
    auto entry = std::find_if(paid_by_cap.begin(), paid_by_cap.end(),
                              [cap](const auto& e) { return e.first == cap; });
    if (entry == paid_by_cap.end()) entry = paid_by_cap.insert(paid_by_cap.end(), {cap, 0});
    int64_t& paid_fen = entry->second;
    const int64_t room_fen = std::max<int64_t>(0, cap->cap_fen - paid_fen);
    result.rebate_fen_by_tap[index] = std::max<int64_t>(0, tap.amount_fen - room_fen);
    paid_fen += tap.amount_fen;
  }

  for (size_t i = 0; i < taps.size(); ++i) {
    auto entry = std::find_if(result.operators.begin(), result.operators.end(),
                              [&](const OperatorRebate& e) { return e.operator_id == taps[i].operator_id; });
    if (entry == result.operators.end()) {
      entry = result.operators.insert(result.operators.end(), OperatorRebate{taps[i].operator_id, 0, 0});
    }
    entry->paid_fen += taps[i].amount_fen;
    entry->rebate_fen += result.rebate_fen_by_tap[i];
    result.paid_fen += taps[i].amount_fen;
    result.rebate_fen += result.rebate_fen_by_tap[i];
  }
  std::sort(result.operators.begin(), result.operators.end(),
            [](const OperatorRebate& a, const OperatorRebate& b) { return a.operator_id < b.operator_id; });

  // The rebate is exactly the excess over each cap: checked here, since a settlement that
  // refunds a fen too many or too few would not reconcile.
  int64_t excess_fen = 0;
  for (const auto& [cap, paid_fen] : paid_by_cap) excess_fen += std::max<int64_t>(0, paid_fen - cap->cap_fen);
  CITYCARD_ASSERT(excess_fen == result.rebate_fen);
  return result;
}

}  // namespace citycard
