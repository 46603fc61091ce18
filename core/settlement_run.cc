// Settler: the settlement of one clearing day over the storage interfaces (core/settlement.h).
#include <algorithm>
#include <future>
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

}  // namespace

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
      config_(std::move(config)) {}

Result<std::vector<CardRebate>> Settler::ComputeRebates(int64_t day,
                                                        const std::vector<Operator>& operators) {
  std::vector<CardRebate> rebates;
  if (config_.daily_caps.empty()) return rebates;
  std::map<std::string_view, const Operator*> registry;
  for (const Operator& op : operators) registry.emplace(op.id, &op);
  // The cap applies per clearing day. The capping engine works on one local day, so the
  // card's times are shifted back by the cut-off: that maps the clearing day onto a local day
  // and keeps the order of the taps, which is all the engine uses the times for.
  // One vector for every card's shifted taps, reused: a new one per card was a tenth of the
  // caps' time.
  std::vector<PaidTap> capped;
  Status status = taps_.ForEachCardDay(day, [&](const CardDayTaps& card) -> Status {
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
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return rebates;
}

Result<uint64_t> Settler::RebateAccounts::Find(std::string_view card_no) const {
  auto found = std::lower_bound(card_nos.begin(), card_nos.end(), card_no);
  CITYCARD_ASSERT(found != card_nos.end() && *found == card_no);
  return accounts[static_cast<size_t>(found - card_nos.begin())];
}

// The day's rebated cards are read in one bulk read (SettlementReads::FindRebateCards): one
// registry read per rebated card was an eighth of settlement's time (docs/benchmarks.md). Each
// card's outcome, failures included, is kept and given when PlanSettlementTransfers asks for
// it, so that the first failure met is the same as when each card was read as it was asked.
Result<Settler::RebateAccounts> Settler::ResolveRebateAccounts(
    const std::vector<CardRebate>& rebates) {
  RebateAccounts resolved;
  resolved.card_nos.reserve(rebates.size());
  for (const CardRebate& r : rebates) resolved.card_nos.push_back(r.card_no);
  // The rebates come from the card-days in card order: sorted already, as a rule.
  if (!std::is_sorted(resolved.card_nos.begin(), resolved.card_nos.end())) {
    std::sort(resolved.card_nos.begin(), resolved.card_nos.end());
  }
  resolved.card_nos.erase(std::unique(resolved.card_nos.begin(), resolved.card_nos.end()),
                          resolved.card_nos.end());
  std::vector<RebateCardState> states;
  if (!resolved.card_nos.empty()) {
    CITYCARD_RETURN_IF_ERROR(
        config_.reads != nullptr
            ? config_.reads->FindRebateCards(resolved.card_nos, &states)
            : FindRebateCardsFromRegistry(registry_, resolved.card_nos, &states));
  }
  resolved.accounts.reserve(resolved.card_nos.size());
  for (const std::string& card_no : resolved.card_nos) {
    resolved.accounts.push_back(FollowRebateCard(card_no, resolved, states));
  }
  return resolved;
}

// The state of `card_no`: from the bulk read when it was asked there (absent: not
// registered), else from the registry (a card that replaced a rebated one: rare).
Result<std::optional<RebateCardState>> Settler::RebateCard(
    const std::string& card_no, const RebateAccounts& asked,
    const std::vector<RebateCardState>& states) {
  auto found = std::lower_bound(
      states.begin(), states.end(), card_no,
      [](const RebateCardState& state, const std::string& no) { return state.card_no < no; });
  if (found != states.end() && found->card_no == card_no) return std::optional(*found);
  if (std::binary_search(asked.card_nos.begin(), asked.card_nos.end(), card_no)) {
    return std::optional<RebateCardState>();
  }
  auto card = registry_.FindCard(card_no);
  if (!card.ok()) return card.status();
  if (!card->has_value()) return std::optional<RebateCardState>();
  const Card& c = **card;
  return std::optional(
      RebateCardState{c.card_no, c.status, c.purse_account_id, c.replaced_by, c.balance_moved_s});
}

Result<uint64_t> Settler::FollowRebateCard(const std::string& card_no,
                                           const RebateAccounts& asked,
                                           const std::vector<RebateCardState>& states) {
  std::string current = card_no;
  for (int i = 0; i < kReplacementChainMax; ++i) {
    auto card = RebateCard(current, asked, states);
    if (!card.ok()) return card.status();
    if (!card->has_value()) {
      return Status::Internal("card_not_found",
                              fmt::format("card {} paid taps but is not in the registry", current));
    }
    const RebateCardState& c = **card;
    // A closed card's purse takes no more transfers: the card office owes the holder the
    // rebate, which waits on the refunds account like the rest of a closed card's money.
    if (c.status == CardStatus::closed) return SystemAccountId(AccountKind::refunds);
    // A replaced card whose balance has moved would strand the rebate on a purse nobody
    // reads: it follows the balance to the card that replaced it.
    if (c.status == CardStatus::replaced && c.balance_moved_s != 0 && !c.replaced_by.empty()) {
      current = c.replaced_by;
      continue;
    }
    return c.purse_account_id;
  }
  return Status::Internal("replacement_chain_too_long",
                          fmt::format("card {} has more than {} replacements", card_no,
                                      kReplacementChainMax));
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
Status Settler::Book(const std::vector<Transfer>& transfers, const SettlementRecord& record) {
  Status booked = BookOnce(transfers, record, SettlementIds::known_new);
  if (booked.ok() || booked.code() != "transfer_id_taken") return booked;
  return BookOnce(transfers, record, SettlementIds::search);
}

Status Settler::BookOnce(const std::vector<Transfer>& transfers, const SettlementRecord& record,
                         SettlementIds ids) {
  return RunUnitOfWork(registry_, ledger_, [&]() -> Status {
    for (size_t start = 0; start < transfers.size(); start += kTransferBatchMax) {
      size_t count = std::min(kTransferBatchMax, transfers.size() - start);
      std::span<const Transfer> batch(transfers.data() + start, count);
      auto outcomes =
          ids == SettlementIds::known_new ? ledger_.ApplyNew(batch) : ledger_.Apply(batch);
      if (!outcomes.ok()) return outcomes.status();
      for (size_t i = 0; i < count; ++i) {
        if (IsSuccess((*outcomes)[i])) continue;
        return Status::Internal(
            "settlement_transfer_failed",
            fmt::format("transfer {} of the settlement of {} was declined: {}",
                        batch[i].id.ToHex(), FormatDay(record.report.day),
                        TransferOutcomeName((*outcomes)[i])));
      }
    }
    return store_.SaveRun(record);
  });
}

void Settler::StepDone(std::string_view step) const {
  if (config_.on_step) config_.on_step(step);
}

Result<SettlementOutcome> Settler::Settle(int64_t day) {
  auto cutoff = store_.ClearingCutoff();
  if (!cutoff.ok()) return cutoff.status();
  cutoff_s_ = *cutoff;
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
  auto rebates = ComputeRebates(day, *operators);
  if (!rebates.ok()) return rebates.status();
  StepDone("rebates");
  auto report = BuildSettlementReport(day, cutoff_s_, *operators, *totals, *services, *rebates);
  if (!report.ok()) return report.status();
  CITYCARD_RETURN_IF_ERROR(Reconcile(*report, *operators, *movements, config_.codes));
  StepDone("report");

  auto accounts = ResolveRebateAccounts(*rebates);
  if (!accounts.ok()) return accounts.status();
  StepDone("accounts");
  auto transfers = PlanSettlementTransfers(
      *report, *operators, *rebates, digester_,
      [&accounts](std::string_view card_no) { return accounts->Find(card_no); });
  if (!transfers.ok()) return transfers.status();
  StepDone("plan");
  SettlementRecord record{std::move(*report), clock_.NowMs(),
                          static_cast<int64_t>(transfers->size())};
  CITYCARD_RETURN_IF_ERROR(Book(*transfers, record));
  StepDone("book");
  return SettlementOutcome{std::move(record), false};
}

}  // namespace citycard
