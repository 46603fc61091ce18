#include "core/settlement_tap_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <iterator>
#include <system_error>

#include "core/card_number.h"
#include "core/radix_sort.h"
#include "core/settlement_reads.h"
#include "core/time.h"

namespace citycard {

namespace {

// The most card-day taps room is made for ahead of a scan (about 400 MB): above it the vector
// grows as it is filled.
constexpr int64_t kCardTapsReservedMax = 10'000'000;

}  // namespace

TapStoreSettlementSource::TapStoreSettlementSource(TapStore& taps, RegistryStore& registry,
                                                   SettlementReads* reads,
                                                   SettlementReads* second_reads,
                                                   int64_t split_min_seqs)
    : taps_(taps),
      registry_(registry),
      reads_(reads),
      second_reads_(second_reads),
      split_min_seqs_(split_min_seqs) {}

// What one reader of (a stretch of) the day gathers: the operators in the order it met them,
// their sums, and the card-days' taps, unsorted.
struct TapStoreSettlementSource::Part {
  std::map<std::string, uint32_t, std::less<>> operator_index;
  std::vector<std::string> operator_ids;
  std::vector<Scanned> sums;  // per operator_ids
  CardTaps card_taps;
  // The second half's card taps, sorted, when the day was read in two halves: every seq in it
  // follows every seq of card_taps.
  CardTaps later_card_taps;
  bool card_taps_sorted = false;  // by CardTapBefore, and later_card_taps too

  // The index of `operator_id`, added when met first.
  uint32_t Index(std::string_view operator_id) {
    auto [found, added] = operator_index.try_emplace(std::string(operator_id),
                                                     static_cast<uint32_t>(operator_ids.size()));
    if (added) {
      operator_ids.push_back(found->first);
      sums.emplace_back();
    }
    return found->second;
  }
};

bool TapStoreSettlementSource::CardTapBefore(const CardTap& a, const CardTap& b) {
  return a.card_no != b.card_no ? a.card_no < b.card_no : a.seq < b.seq;
}

// A part's taps come in seq order from the day's read, so a stable sort by card alone puts
// them in (card, seq) order: a radix sort, where std::sort through the comparator was about a
// sixth of the read's time (docs/benchmarks.md, session of 16:52, 2026-11-27). Taps in any
// other order (a tap store that does not read by seq) are sorted by both keys.
void TapStoreSettlementSource::SortCardTaps(CardTaps* taps) {
  const bool by_seq = std::is_sorted(taps->begin(), taps->end(),
                                     [](const CardTap& a, const CardTap& b) { return a.seq < b.seq; });
  if (by_seq) {
    StableRadixSort(taps, [](const CardTap& tap) { return tap.card_no; });
  } else {
    std::sort(taps->begin(), taps->end(),
              [](const CardTap& a, const CardTap& b) { return CardTapBefore(a, b); });
  }
}

// One pass over the day serves both the operator totals and the card-days. The card-days'
// taps are kept in one flat vector and sorted by card once at the end: a search per tap in a
// map of cards (ordered, then hashed) was the largest part of settlement's time
// (docs/benchmarks.md). The day's taps come in runs of one operator, so the operator's
// entries are looked up only when it changes.
Status TapStoreSettlementSource::ReadPart(SettlementReads* reads, int64_t day,
                                          std::optional<SeqRange> seqs, const ModeMap& modes,
                                          Part* part) {
  Scanned* op_sums = nullptr;
  std::optional<RideMode> op_mode;
  uint32_t op_index = 0;
  auto visit = [&](const DayTapSummary& tap) -> Status {
    if (tap.type == TapType::load) return Status::Ok();
    if (op_sums == nullptr || tap.operator_id != part->operator_ids[op_index]) {
      op_index = part->Index(tap.operator_id);
      op_sums = &part->sums[op_index];
      auto mode = modes.find(tap.operator_id);
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
    part->card_taps.push_back(
        CardTap{tap.card_no, tap.seq, tap.amount_fen, tap.time_s, op_index, tap.profile, *op_mode});
    return Status::Ok();
  };
  if (reads == nullptr) return ForEachDayTapFromStore(taps_, day, std::nullopt, visit);
  if (!seqs.has_value()) return reads->ForEachDayTap(day, visit);
  return reads->ForEachDayTapIn(day, *seqs, visit);
}

// Reads the day in one part, or, with a second connection and a day long enough, in two
// halves at once (the first on the calling thread).
Status TapStoreSettlementSource::ReadParts(int64_t day, const ModeMap& modes, size_t reserve,
                                          Part* first) {
  first->card_taps.reserve(reserve);
  if (reads_ == nullptr || second_reads_ == nullptr) {
    return ReadPart(reads_, day, std::nullopt, modes, first);
  }
  auto seqs = reads_->DayTapSeqs(day);
  if (!seqs.ok()) return seqs.status();
  if (!seqs->has_value()) return Status::Ok();
  const SeqRange whole = **seqs;
  if (whole.last - whole.first < split_min_seqs_) return ReadPart(reads_, day, whole, modes, first);
  const int64_t middle = whole.first + (whole.last - whole.first) / 2;
  Part second;
  second.card_taps.reserve(reserve / 2);
  std::future<Status> second_read;
  try {
      // Each half sorts its own card taps on its own thread, and the two sorted halves are
    // merged: sorting the whole day's taps on one thread after the read was a second of a
    // 10,000,000-tap day (docs/benchmarks.md, session of 13:21).
    second_read = std::async(std::launch::async, [&] {
      Status read = ReadPart(second_reads_, day, SeqRange{middle + 1, whole.last}, modes, &second);
      if (read.ok()) SortCardTaps(&second.card_taps);
      return read;
    });
  } catch (const std::system_error&) {
    // No thread to be had: the day is read in one part, as without a second connection.
    return ReadPart(reads_, day, whole, modes, first);
  }
  Status first_status = ReadPart(reads_, day, SeqRange{whole.first, middle}, modes, first);
  if (first_status.ok()) SortCardTaps(&first->card_taps);
  Status second_status = second_read.get();
  if (!first_status.ok()) return first_status;
  if (!second_status.ok()) return second_status;
  Merge(std::move(second), first);
  return Status::Ok();
}

// Adds `from`'s operators to `into`, its operator indexes renumbered, and keeps its card-day
// taps as `into`'s later run. Both parts' card taps are sorted, and `from`'s seqs all follow
// `into`'s (the second half of the day), so the card-days are read from the two runs side by
// side (ForEachCardDayPart): merging them into one vector was a copy of the day's card taps on
// one thread after the read (0.8 s of a 10,000,000-tap day, docs/benchmarks.md).
void TapStoreSettlementSource::Merge(Part from, Part* into) {
  std::vector<uint32_t> renumbered(from.operator_ids.size());
  for (size_t i = 0; i < from.operator_ids.size(); ++i) {
    renumbered[i] = into->Index(from.operator_ids[i]);
    Scanned& sums = into->sums[renumbered[i]];
    sums.taps += from.sums[i].taps;
    sums.paid_taps += from.sums[i].paid_taps;
    sums.paid_fen += from.sums[i].paid_fen;
    sums.late_paid_fen += from.sums[i].late_paid_fen;
  }
  for (CardTap& tap : from.card_taps) tap.operator_index = renumbered[tap.operator_index];
  into->later_card_taps = std::move(from.card_taps);
  into->card_taps_sorted = true;
}

Status TapStoreSettlementSource::Scan(int64_t day) {
  if (scanned_day_ == day) return Status::Ok();
  scanned_day_.reset();
  by_operator_.clear();
  operator_ids_.clear();
  card_taps_.clear();
  later_card_taps_ = CardTaps();
  auto totals = taps_.DayTotals(day);
  if (!totals.ok()) return totals.status();
  day_totals_ = std::move(*totals);
  // The kept totals count the day's taps: room for all of them is made once, where growing
  // the vector by doubling copied it over and over (docs/benchmarks.md). Only a hint: the
  // scan checks the counts.
  int64_t day_taps = 0;
  for (const DayOperatorTotals& kept : day_totals_) day_taps += std::max<int64_t>(kept.taps, 0);
  auto operators = registry_.ListOperators();
  if (!operators.ok()) return operators.status();
  ModeMap modes;
  for (const Operator& op : *operators) modes[op.id] = CapModeForOperator(op.kind);

  Part part;
  // The part's vector is given to card_taps_ whole, so that the memory it holds is reused.
  part.card_taps = std::move(card_taps_);
  card_taps_.clear();
  Status read = ReadParts(
      day, modes, static_cast<size_t>(std::min(day_taps, kCardTapsReservedMax)), &part);
  if (!read.ok()) return read;
  for (size_t i = 0; i < part.operator_ids.size(); ++i) {
    by_operator_[part.operator_ids[i]] = part.sums[i];
  }
  operator_ids_ = std::move(part.operator_ids);
  card_taps_ = std::move(part.card_taps);
  later_card_taps_ = std::move(part.later_card_taps);
  if (!part.card_taps_sorted) SortCardTaps(&card_taps_);
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
  return ForEachCardDayPart(day, 0, 1, visit);
}

Status TapStoreSettlementSource::ForEachCardDayPart(
    int64_t day, size_t part, size_t parts,
    const std::function<Status(const CardDayTaps&)>& visit) {
  CITYCARD_ASSERT(parts >= 1 && parts <= kCardDayPartsMax && part < parts);
  // Parts may run at once: none may scan, so the day must have been scanned before.
  CITYCARD_ASSERT(scanned_day_ == day);
  // Part k is the cards from the k-th cut on, up to the next: a cut is the card at the share's
  // place in the longer of the two runs, so that the parts are about even, no card is cut and
  // every tap is in one part.
  const CardTaps& longer =
      card_taps_.size() >= later_card_taps_.size() ? card_taps_ : later_card_taps_;
  auto position = [&](const CardTaps& run, size_t k) -> size_t {
    if (k == 0) return 0;
    const size_t at = longer.size() * k / parts;
    if (at >= longer.size()) return run.size();
    const uint64_t cut = longer[at].card_no;
    return static_cast<size_t>(
        std::lower_bound(run.begin(), run.end(), cut,
                         [](const CardTap& tap, uint64_t card) { return tap.card_no < card; }) -
        run.begin());
  };
  size_t i = position(card_taps_, part);
  const size_t i_end = position(card_taps_, part + 1);
  size_t j = position(later_card_taps_, part);
  const size_t j_end = position(later_card_taps_, part + 1);
  // One card-day at a time, in one reused value: the card's taps in booking order, and the
  // profile its last tap carried.
  CardDayTaps card;
  auto add = [&](const CardTap& tap) {
    card.profile = tap.profile;
    card.taps.push_back(
        PaidTap{operator_ids_[tap.operator_index], tap.mode, tap.amount_fen, tap.time_s});
  };
  while (i < i_end || j < j_end) {
    const bool earlier = j == j_end ||
                         (i < i_end && card_taps_[i].card_no <= later_card_taps_[j].card_no);
    const uint64_t card_no = earlier ? card_taps_[i].card_no : later_card_taps_[j].card_no;
    card.card_no = CardNumberFromInt(card_no);
    card.taps.clear();
    // The earlier run's taps of the card first: their seqs precede the later run's.
    for (; i < i_end && card_taps_[i].card_no == card_no; ++i) add(card_taps_[i]);
    for (; j < j_end && later_card_taps_[j].card_no == card_no; ++j) add(later_card_taps_[j]);
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
