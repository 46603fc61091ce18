// Settler: the settlement of one clearing day over the storage interfaces (core/settlement.h).
#include <algorithm>
#include <condition_variable>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <system_error>

#include <fmt/format.h>

#include "core/account_plan.h"
#include "core/settlement.h"
#include "core/time.h"
#include "core/unit_of_work.h"

namespace citycard {

namespace {

// How many cards a replacement chain may pass through before a rebate gives up: a card is
// replaced a handful of times in its life; a longer chain is a registry loop.
constexpr int kReplacementChainMax = 64;

// The registry's operators by id, for the caps' lookups of each tap's operator.
std::map<std::string_view, const Operator*> OperatorsById(const std::vector<Operator>& operators) {
  std::map<std::string_view, const Operator*> by_id;
  for (const Operator& op : operators) by_id.emplace(op.id, &op);
  return by_id;
}

}  // namespace

// The planned transfers, shared by the planning thread (Publish, Finish) and the booking
// (Next). Each published stretch is kept as it came, never moved (the planner's day may be
// any length: nothing is sized before the caps are known); the booking reads only what was
// published, and the mutex orders the two.
class Settler::TransferFeed {
 public:
  // A feed to be published.
  TransferFeed() = default;
  // A feed of `transfers`, all published and finished.
  explicit TransferFeed(std::vector<Transfer> transfers) : finished_(true) {
    Publish(&transfers);
  }

  // Planner: appends `planned` to what is published; `planned` is left empty.
  void Publish(std::vector<Transfer>* planned) {
    if (planned->empty()) return;
    std::lock_guard lock(mutex_);
    starts_.push_back(published_);
    published_ += planned->size();
    stretches_.push_back(std::move(*planned));
    planned->clear();
    ready_.notify_all();
  }
  // Planner: no more transfers; `status` is the planning's outcome.
  void Finish(Status status) {
    std::lock_guard lock(mutex_);
    finished_ = true;
    status_ = std::move(status);
    ready_.notify_all();
  }
  // Booking: the next `max` transfers from `start`, or fewer when the planning has finished
  // with fewer; empty when all are taken. Waits for the planner. A failed planning gives its
  // failure (what was published before it is never booked alone: the unit of work fails).
  // The view is valid until the next call (a batch that spans two stretches is copied).
  Result<std::span<const Transfer>> Next(size_t start, size_t max) {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return finished_ || published_ - start >= max; });
    if (!status_.ok()) return status_;
    const size_t count = std::min(max, published_ - start);
    if (count == 0) return std::span<const Transfer>();
    // The stretch that holds `start`: the last one that begins at or before it.
    const size_t k = static_cast<size_t>(
        std::upper_bound(starts_.begin(), starts_.end(), start) - starts_.begin() - 1);
    const std::vector<Transfer>& first = stretches_[k];
    const size_t offset = start - starts_[k];
    if (offset + count <= first.size()) return std::span<const Transfer>(first.data() + offset, count);
    joined_.clear();
    for (size_t i = k; joined_.size() < count; ++i) {
      const size_t from = i == k ? offset : 0;
      const size_t take = std::min(stretches_[i].size() - from, count - joined_.size());
      joined_.insert(joined_.end(), stretches_[i].begin() + static_cast<ptrdiff_t>(from),
                     stretches_[i].begin() + static_cast<ptrdiff_t>(from + take));
    }
    return std::span<const Transfer>(joined_);
  }
  // Booking: waits for the planning to finish and gives its outcome.
  Status Finished() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return finished_; });
    return status_;
  }
  // After Finished: how many transfers were planned.
  size_t Count() {
    std::lock_guard lock(mutex_);
    CITYCARD_ASSERT(finished_);
    return published_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<std::vector<Transfer>> stretches_;  // as published
  std::vector<size_t> starts_;                    // the index of each stretch's first transfer
  std::vector<Transfer> joined_;                  // the booking's view of a batch across stretches
  size_t published_ = 0;
  bool finished_ = false;
  Status status_ = Status::Ok();
};

std::optional<RideMode> CapModeForOperator(OperatorKind kind) {
  switch (kind) {
    case OperatorKind::bus: return RideMode::bus;
    case OperatorKind::metro: return RideMode::metro;
    case OperatorKind::taxi: return RideMode::taxi;
    case OperatorKind::parking: return RideMode::parking;
    case OperatorKind::scenic: return RideMode::scenic;
    case OperatorKind::utility:
    case OperatorKind::hospital:
    case OperatorKind::counter: return std::nullopt;
  }
  return std::nullopt;
}

Settler::Settler(RegistryStore& registry, Ledger& ledger, LedgerStore& ledger_store,
                 SettlementStore& settlement_store, SettlementTapSource& taps,
                 const Digester& digester, const Clock& clock, SettlerConfig config)
    : registry_(registry),
      ledger_(ledger),
      ledger_store_(ledger_store),
      store_(settlement_store),
      taps_(taps),
      digester_(digester),
      clock_(clock),
      config_(std::move(config)) {
  CITYCARD_ASSERT(config_.plan_stretch >= 1);
  CITYCARD_ASSERT(config_.book_batch >= 1 && config_.book_batch <= kTransferBatchMax);
}

// The caps of the day's card-days, in two parts on two threads when the source splits them
// (SettlementTapSource::CardDayPartsMax): the caps were a second of a 10,000,000-tap day on one
// thread (docs/benchmarks.md, session of 13:21). The parts run in card order, so the rebates,
// and the first failure met, are those of one pass.
Result<std::vector<CardRebate>> Settler::ComputeRebates(int64_t day,
                                                        const std::vector<Operator>& operators) {
  std::vector<CardRebate> rebates;
  if (config_.daily_caps.empty()) return rebates;
  const auto registry = OperatorsById(operators);
  if (taps_.CardDayPartsMax() < 2) {
    CITYCARD_RETURN_IF_ERROR(RebatesOfPart(day, registry, 0, 1, &rebates));
    return rebates;
  }
  std::vector<CardRebate> second;
  std::future<Status> second_part;
  try {
    second_part = std::async(std::launch::async,
                             [&] { return RebatesOfPart(day, registry, 1, 2, &second); });
  } catch (const std::system_error&) {
    // No thread to be had: one pass on this thread.
    CITYCARD_RETURN_IF_ERROR(RebatesOfPart(day, registry, 0, 1, &rebates));
    return rebates;
  }
  Status first = RebatesOfPart(day, registry, 0, 2, &rebates);
  Status second_status = second_part.get();
  if (!first.ok()) return first;
  if (!second_status.ok()) return second_status;
  rebates.insert(rebates.end(), std::make_move_iterator(second.begin()),
                 std::make_move_iterator(second.end()));
  return rebates;
}

// The rebates of one part of the card-days, appended to *out. Reads only what is shared
// read-only between the parts (the operators, the caps, the cut-off).
Status Settler::RebatesOfPart(int64_t day,
                              const std::map<std::string_view, const Operator*>& registry,
                              size_t part, size_t parts, std::vector<CardRebate>* out,
                              const std::function<Status()>& after_card) {
  std::vector<CardRebate>& rebates = *out;
  // The cap applies per clearing day. The capping engine works on one local day, so the
  // card's times are shifted back by the cut-off: that maps the clearing day onto a local day
  // and keeps the order of the taps, which is all the engine uses the times for.
  // One vector for every card's shifted taps, reused: a new one per card was a tenth of the
  // caps' time.
  std::vector<PaidTap> capped;
  return taps_.ForEachCardDayPart(day, part, parts, [&](const CardDayTaps& card) -> Status {
    capped.clear();
    // The operator last found, a key of `registry`: a card's taps of a day are mostly with one.
    std::string_view known;
    for (const PaidTap& tap : card.taps) {
      if (tap.operator_id != known || known.empty()) {
        auto op = registry.find(tap.operator_id);
        if (op == registry.end()) {
          return Status::Internal("unknown_operator", fmt::format("operator {} is not in the registry",
                                                                  tap.operator_id));
        }
        known = op->first;
      }
      capped.push_back(tap);
      capped.back().time_s -= cutoff_s_;
    }
    auto result = ComputeCapRebates(capped, card.profile, config_.daily_caps);
    if (!result.ok()) return result.status();
    for (const OperatorRebate& r : result->operators) {
      if (r.rebate_fen > 0) rebates.push_back({card.card_no, r.operator_id, r.rebate_fen});
    }
    return after_card ? after_card() : Status::Ok();
  });
}

// A card's rebates are planned one after the other, and the cards in card order: the card
// asked for is the one found before or the next. A binary search per rebate over a million
// 16-digit strings was 1.1 % of a 10,000,000-tap settlement's CPU (docs/benchmarks.md).
Result<uint64_t> Settler::RebateAccounts::Find(std::string_view card_no) const {
  for (size_t at = last_found; at < card_nos.size() && at <= last_found + 1; ++at) {
    if (card_nos[at] == card_no) {
      last_found = at;
      return accounts[at];
    }
  }
  auto found = std::lower_bound(card_nos.begin(), card_nos.end(), card_no);
  CITYCARD_ASSERT(found != card_nos.end() && *found == card_no);
  last_found = static_cast<size_t>(found - card_nos.begin());
  return accounts[last_found];
}

// The day's rebated cards are read in one bulk read (SettlementReads::FindRebateCards): one
// registry read per rebated card was an eighth of settlement's time (docs/benchmarks.md). Each
// card's outcome, failures included, is kept and given when PlanRebateTransfers asks for
// it, so that the first failure met is the same as when each card was read as it was asked.
Result<Settler::RebateAccounts> Settler::ResolveRebateAccounts(
    std::span<const CardRebate* const> rebates, SettlementReads* reads) {
  RebateAccounts resolved;
  resolved.card_nos.reserve(rebates.size());
  for (const CardRebate* r : rebates) resolved.card_nos.push_back(r->card_no);
  // The rebates come from the card-days in card order: sorted already, as a rule.
  if (!std::is_sorted(resolved.card_nos.begin(), resolved.card_nos.end())) {
    std::sort(resolved.card_nos.begin(), resolved.card_nos.end());
  }
  resolved.card_nos.erase(std::unique(resolved.card_nos.begin(), resolved.card_nos.end()),
                          resolved.card_nos.end());
  std::vector<RebateCardState> states;
  if (!resolved.card_nos.empty()) {
    CITYCARD_RETURN_IF_ERROR(NoteCardChanges(reads));
    CITYCARD_RETURN_IF_ERROR(
        reads != nullptr ? reads->FindRebateCards(resolved.card_nos, &states)
                         : FindRebateCardsFromRegistry(registry_, resolved.card_nos, &states));
  }
  resolved.accounts.reserve(resolved.card_nos.size());
  // The states come ascending as the cards asked for do, so one walk finds each card's own:
  // a binary search of a million states per card was most of this function's time.
  size_t next_state = 0;
  for (const std::string& card_no : resolved.card_nos) {
    while (next_state < states.size() && states[next_state].card_no < card_no) ++next_state;
    const RebateCardState* first =
        next_state < states.size() && states[next_state].card_no == card_no ? &states[next_state]
                                                                            : nullptr;
    resolved.accounts.push_back(FollowRebateCard(card_no, first, resolved, states, reads));
  }
  return resolved;
}

// The state of `card_no`: from the bulk read when it was asked there (absent: not
// registered), else read alone (a card that replaced a rebated one: rare), over `reads` when
// given (on the planning thread the registry's connection is the booking's).
Result<const RebateCardState*> Settler::RebateCard(std::string_view card_no,
                                                  const RebateAccounts& asked,
                                                  const std::vector<RebateCardState>& states,
                                                  SettlementReads* reads,
                                                  std::optional<RebateCardState>* alone) {
  auto found = std::lower_bound(
      states.begin(), states.end(), card_no,
      [](const RebateCardState& state, std::string_view no) { return state.card_no < no; });
  if (found != states.end() && found->card_no == card_no) return &*found;
  if (std::binary_search(asked.card_nos.begin(), asked.card_nos.end(), card_no,
                         std::less<>())) {
    return nullptr;
  }
  alone->reset();
  if (reads != nullptr) {
    std::vector<RebateCardState> read;
    const std::string no(card_no);
    CITYCARD_RETURN_IF_ERROR(reads->FindRebateCards(std::span<const std::string>(&no, 1), &read));
    if (read.empty()) return nullptr;
    alone->emplace(std::move(read.front()));
    return &**alone;
  }
  auto card = registry_.FindCard(card_no);
  if (!card.ok()) return card.status();
  if (!card->has_value()) return nullptr;
  const Card& c = **card;
  alone->emplace(
      RebateCardState{c.card_no, c.status, c.purse_account_id, c.replaced_by, c.balance_moved_s});
  return &**alone;
}

Result<uint64_t> Settler::FollowRebateCard(const std::string& card_no,
                                           const RebateCardState* first,
                                           const RebateAccounts& asked,
                                           const std::vector<RebateCardState>& states,
                                           SettlementReads* reads) {
  // The card being followed: the one asked for, then each that replaced it. Views into
  // `states` or into `alone` (a card read alone), so that no state is copied.
  std::optional<RebateCardState> alone;
  std::string current_no;  // the card to look up next, once `first` is passed
  for (int i = 0; i < kReplacementChainMax; ++i) {
    const RebateCardState* c = nullptr;
    if (i == 0 && first != nullptr) {
      c = first;
    } else {
      auto card = RebateCard(i == 0 ? std::string_view(card_no) : std::string_view(current_no),
                             asked, states, reads, &alone);
      if (!card.ok()) return card.status();
      c = *card;
    }
    if (c == nullptr) {
      // Its own code, not the card office's card_not_found (exit 3, a mistyped number): here
      // the registry lost a card that taps were booked for, which no operator input causes.
      return Status::Internal("settlement_card_missing",
                              fmt::format("card {} paid taps but is not in the registry",
                                          i == 0 ? card_no : current_no));
    }
    // A closed card's purse takes no more transfers: the card office owes the holder the
    // rebate, which waits on the refunds account like the rest of a closed card's money.
    if (c->status == CardStatus::closed) return SystemAccountId(AccountKind::refunds);
    // A replaced card whose balance has moved would strand the rebate on a purse nobody
    // reads: it follows the balance to the card that replaced it.
    if (c->status == CardStatus::replaced && c->balance_moved_s != 0 && !c->replaced_by.empty()) {
      current_no = c->replaced_by;  // copied before `alone` may be read over
      continue;
    }
    return c->purse_account_id;
  }
  return Status::Internal("replacement_chain_too_long",
                          fmt::format("card {} has more than {} replacements", card_no,
                                      kReplacementChainMax));
}

// A card read for the plan may not be the card the booking's transaction sees: the plan reads
// over another connection, or before the transaction begins, and a card office in another
// process may close or replace a card in between, which would send its rebate to a purse
// nobody reads. The count is read once, before the plan's first read of cards, so every card
// read after it is at least as new; when the booking finds the same count inside its
// transaction (which holds the write lock, so no card changes until it commits), no card
// changed from that read to the transaction, and the plan's cards are the transaction's
// (docs/settlement.md "Booking").
Status Settler::NoteCardChanges(SettlementReads* reads) {
  if (planned_card_changes_) return Status::Ok();
  auto changes = reads != nullptr ? reads->CardChanges() : registry_.CardChanges();
  if (!changes.ok()) return changes.status();
  planned_card_changes_ = *changes;
  return Status::Ok();
}

Status Settler::CheckCardsUnchanged(int64_t at_begin) const {
  if (!planned_card_changes_ || *planned_card_changes_ == at_begin) return Status::Ok();
  return Status::Refused(
      "settlement_cards_changed",
      fmt::format("a card changed between the settlement of {}'s plan and its booking",
                  FormatDay(day_)));
}

Result<LedgerMovements> Settler::DayMovements(int64_t day, int64_t cutoff_s) {
  int64_t from_ms = ClearingDayStart(day, cutoff_s) * 1000;
  int64_t to_ms = ClearingDayStart(day + 1, cutoff_s) * 1000;
  // Only the payables' movements: the reconciliation and the services look at nothing else,
  // and a sum per card purse was a third of the ledger read's time (docs/benchmarks.md).
  return CollectLedgerMovements(ledger_store_, from_ms, to_ms, config_.reads,
                                AccountKind::operator_payable);
}

// The ledger's day, and (with tap_source_apart) the tap source's day read at the same time on
// a second thread: the two reads are about equal and each holds one core
// (docs/benchmarks.md). A failure of the ledger's read is given before one of the taps'.
Result<LedgerMovements> Settler::ReadDay(int64_t day) {
  if (!config_.tap_source_apart) return DayMovements(day, cutoff_s_);
  std::future<Status> taps_read;
  try {
    taps_read = std::async(std::launch::async, [this, day] { return taps_.ReadDay(day); });
  } catch (const std::system_error&) {
    // No thread to be had: the taps are read when they are first asked for, as without it.
    return DayMovements(day, cutoff_s_);
  }
  auto movements = DayMovements(day, cutoff_s_);
  Status taps_status = taps_read.get();
  if (!movements.ok()) return movements.status();
  if (!taps_status.ok()) return taps_status;
  return movements;
}

// The settlement's transfer ids are derived from (day, operator, card) and all of them commit
// in one unit of work with the kept run, so when no run is kept none of them is stored: they are
// booked as new (Ledger::ApplyNew), which spares one search of the ledger's id index and of its
// declined ids per transfer, the largest part of the booking after the writes themselves
// (docs/benchmarks.md). Should an id be stored after all (a second database reading the same
// ledger, or a payout id booked by hand), the store's unique index refuses it, the unit of work
// is rolled back whole, and the day is booked again with every id searched, which answers
// `exists` or `exists_with_different_*` per transfer as it always did (docs/settlement.md).
//
// A failure of the planning is given before one of the booking, as when the planning came
// first: the booking's failure may be met first on its own thread, so it waits for the planning
// to end before it answers (the unit of work is rolled back either way).
Status Settler::Book(TransferFeed& feed, SettlementRecord& record) {
  Status booked = BookOnce(feed, record, SettlementIds::known_new);
  if (booked.ok()) return booked;
  Status planned = feed.Finished();
  if (!planned.ok()) return planned;
  if (booked.code() != "transfer_id_taken") return booked;
  return BookOnce(feed, record, SettlementIds::search);
}

Status Settler::BookOnce(TransferFeed& feed, SettlementRecord& record, SettlementIds ids) {
  return RunUnitOfWork(registry_, ledger_, [&]() -> Status {
    // Read first: the transaction holds the write lock, so the count stays until it commits.
    auto cards_at_begin = registry_.CardChanges();
    if (!cards_at_begin.ok()) return cards_at_begin.status();
    // Batches of book_batch from the start whatever the planner's pace: the same batches, and
    // so the same ledger, as when the transfers were planned first.
    size_t start = 0;
    auto next = [&]() -> Result<std::span<const Transfer>> {
      auto batch = feed.Next(start, config_.book_batch);
      if (batch.ok()) start += batch->size();
      return batch;
    };
    auto check = [&](std::span<const Transfer> batch,
                     std::span<const TransferOutcome> outcomes) -> Status {
      return AllBooked(batch, outcomes);
    };
    if (ids == SettlementIds::known_new) {
      // The rules of each batch beside the writes of the one before (Ledger::ApplyNewStream).
      CITYCARD_RETURN_IF_ERROR(ledger_.ApplyNewStream(next, check));
    } else {
      for (;;) {
        auto batch = next();
        if (!batch.ok()) return batch.status();
        if (batch->empty()) break;
        auto outcomes = ledger_.Apply(*batch);
        if (!outcomes.ok()) return outcomes.status();
        CITYCARD_RETURN_IF_ERROR(check(*batch, *outcomes));
      }
    }
    CITYCARD_RETURN_IF_ERROR(feed.Finished());
    CITYCARD_RETURN_IF_ERROR(CheckCardsUnchanged(*cards_at_begin));
    record.transfers = static_cast<int64_t>(feed.Count());
    return store_.SaveRun(record);
  });
}

// Every transfer of a settlement must be booked (created, or there already with the same
// content); any other outcome fails the settlement.
Status Settler::AllBooked(std::span<const Transfer> batch,
                          std::span<const TransferOutcome> outcomes) const {
  for (size_t i = 0; i < batch.size(); ++i) {
    if (IsSuccess(outcomes[i])) continue;
    return Status::Internal("settlement_transfer_failed",
                            fmt::format("transfer {} of the settlement of {} was declined: {}",
                                        batch[i].id.ToHex(), FormatDay(day_),
                                        TransferOutcomeName(outcomes[i])));
  }
  return Status::Ok();
}

// On the planning thread: the caps card by card, their transfers planned and published a
// stretch of config_.plan_stretch rebates at a time (their cards read in one bulk read over
// plan_reads); then the report, reconciled with the ledger's day, and the fees and payouts.
// The report is put in `record` before the last publication, so that the booking, which
// reads it only once the feed is finished, finds it there. The first failure ends the
// planning.
Status Settler::PlanInto(const DayFigures& figures, const std::vector<Operator>& operators,
                         SettlementRecord& record, TransferFeed& feed) {
  std::vector<CardRebate> rebates;
  size_t planned_upto = 0;
  std::vector<Transfer> planned;
  // Plans the rebates found since the last stretch. The stretch's pointers are taken only
  // now: `rebates` grows while the caps go on.
  auto plan_found = [&]() -> Status {
    std::vector<const CardRebate*> stretch;
    stretch.reserve(rebates.size() - planned_upto);
    for (size_t i = planned_upto; i < rebates.size(); ++i) stretch.push_back(&rebates[i]);
    planned_upto = rebates.size();
    if (stretch.empty()) return Status::Ok();
    auto accounts = ResolveRebateAccounts(stretch, config_.plan_reads);
    if (!accounts.ok()) return accounts.status();
    CITYCARD_RETURN_IF_ERROR(PlanRebateTransfers(
        day_, operators, stretch, digester_,
        [&accounts](std::string_view card_no) { return accounts->Find(card_no); }, &planned));
    feed.Publish(&planned);
    return Status::Ok();
  };
  if (!config_.daily_caps.empty()) {
    const auto registry = OperatorsById(operators);
    CITYCARD_RETURN_IF_ERROR(RebatesOfPart(day_, registry, 0, 1, &rebates, [&]() -> Status {
      return rebates.size() - planned_upto >= config_.plan_stretch ? plan_found() : Status::Ok();
    }));
    CITYCARD_RETURN_IF_ERROR(plan_found());
  }
  auto report = BuildSettlementReport(day_, cutoff_s_, operators, figures.taps,
                                      figures.services, rebates);
  if (!report.ok()) return report.status();
  CITYCARD_RETURN_IF_ERROR(Reconcile(*report, operators, figures.movements, config_.codes));
  record.report = std::move(*report);
  CITYCARD_RETURN_IF_ERROR(PlanOperatorTransfers(record.report, operators, digester_, &planned));
  feed.Publish(&planned);
  return Status::Ok();
}

void Settler::StepDone(std::string_view step) const {
  if (config_.on_step) config_.on_step(step);
}

Result<SettlementOutcome> Settler::Settle(int64_t day) {
  auto cutoff = store_.ClearingCutoff();
  if (!cutoff.ok()) return cutoff.status();
  cutoff_s_ = *cutoff;
  day_ = day;
  int64_t end_ms = ClearingDayStart(day + 1, cutoff_s_) * 1000;
  if (clock_.NowMs() < end_ms) {
    return Status::Refused("day_not_over",
                           fmt::format("clearing day {} ends at {}; taps may still arrive",
                                       FormatDay(day), FormatLocalTime(end_ms / 1000)));
  }
  auto operators = registry_.ListOperators();
  if (!operators.ok()) return operators.status();

  auto kept = store_.FindRun(day);
  if (!kept.ok()) return kept.status();
  if (kept->has_value()) {
    const SettlementReport& report = (*kept)->report;
    auto movements = DayMovements(report.day, report.cutoff_s);
    if (!movements.ok()) return movements.status();
    CITYCARD_RETURN_IF_ERROR(Reconcile(report, *operators, *movements, config_.codes));
    return SettlementOutcome{std::move(**kept), true};
  }

  auto movements = ReadDay(day);
  if (!movements.ok()) return movements.status();
  StepDone("read_day");
  auto totals = taps_.OperatorTotals(day);
  if (!totals.ok()) return totals.status();
  auto services = taps_.ServiceTotals(day);
  if (!services.ok()) return services.status();
  // Bills, pass sales and medical settlements pass through the payables: the ledger's movements
  // of the day are what is paid out (their own stores keep the item-by-item records).
  auto booked = ServiceTotalsFromLedger(*operators, *movements, config_.codes);
  if (!booked.ok()) return booked.status();
  services->insert(services->end(), booked->begin(), booked->end());
  StepDone("totals");
  // A card changed under the plan (NoteCardChanges) is met by planning again: the day's
  // figures do not depend on the cards, only where the rebates go does.
  for (int tries = 1;; ++tries) {
    auto record = PlanAndBook(DayFigures{*totals, *services, *movements}, *operators);
    if (record.ok()) return SettlementOutcome{std::move(*record), false};
    if (record.status().code() != "settlement_cards_changed") return record.status();
    if (tries == kSettlementCardChangeTriesMax) {
      return Status::Refused(
          "settlement_cards_changed",
          fmt::format("cards changed while the settlement of {} was planned, {} times in a row; "
                      "nothing was booked; settle the day again",
                      FormatDay(day), tries));
    }
  }
}

Result<SettlementRecord> Settler::PlanAndBook(const DayFigures& figures,
                                              const std::vector<Operator>& operators) {
  planned_card_changes_.reset();
  if (config_.plan_reads != nullptr) {
    SettlementRecord record{SettlementReport{}, clock_.NowMs(), 0};
    CITYCARD_RETURN_IF_ERROR(PlanAndBookApart(figures, operators, record));
    StepDone("book");
    return record;
  }
  auto rebates = ComputeRebates(day_, operators);
  if (!rebates.ok()) return rebates.status();
  StepDone("rebates");
  auto report = BuildSettlementReport(day_, cutoff_s_, operators, figures.taps, figures.services,
                                      *rebates);
  if (!report.ok()) return report.status();
  CITYCARD_RETURN_IF_ERROR(Reconcile(*report, operators, figures.movements, config_.codes));
  StepDone("report");

  SettlementRecord record{std::move(*report), clock_.NowMs(), 0};
  // The rebates in the card-days' order, as the planning thread plans them.
  std::vector<const CardRebate*> in_order;
  in_order.reserve(rebates->size());
  for (const CardRebate& r : *rebates) in_order.push_back(&r);
  auto accounts = ResolveRebateAccounts(in_order, config_.reads);
  if (!accounts.ok()) return accounts.status();
  StepDone("accounts");
  std::vector<Transfer> transfers;
  transfers.reserve(rebates->size() + 2 * record.report.operators.size());
  CITYCARD_RETURN_IF_ERROR(PlanRebateTransfers(
      record.report.day, operators, in_order, digester_,
      [&accounts](std::string_view card_no) { return accounts->Find(card_no); }, &transfers));
  CITYCARD_RETURN_IF_ERROR(PlanOperatorTransfers(record.report, operators, digester_, &transfers));
  StepDone("plan");
  TransferFeed feed(std::move(transfers));
  CITYCARD_RETURN_IF_ERROR(Book(feed, record));
  StepDone("book");
  return record;
}

// The caps, the report and the plan on a second thread while the booking takes the planned
// stretches on this one (see SettlerConfig::plan_reads); `record` gets the report from the
// planner and its transfer count from the booking.
Status Settler::PlanAndBookApart(const DayFigures& figures, const std::vector<Operator>& operators,
                                 SettlementRecord& record) {
  TransferFeed feed;
  auto plan = [&]() {
    // The booking waits on the feed: whatever ends the planning must finish it, or the
    // booking would wait for ever. An exception (out of memory) becomes a failure here.
    Status planned = Status::Ok();
    try {
      planned = PlanInto(figures, operators, record, feed);
    } catch (const std::exception& e) {
      planned = Status::Internal("settlement_plan_failed", e.what());
    }
    feed.Finish(planned);
  };
  std::future<void> planning;
  try {
    planning = std::async(std::launch::async, plan);
  } catch (const std::system_error&) {
    // No thread to be had: planned first, on this thread.
    plan();
  }
  Status booked = Book(feed, record);
  // The planner may still run after a failed booking; it is waited for here (and by the
  // future's destructor on any other way out) before the feed goes.
  if (planning.valid()) planning.get();
  return booked;
}

}  // namespace citycard
