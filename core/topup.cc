// Online top-up, two-phase (docs/ingest.md "Online top-up"): a pending transfer top-up
// clearing -> purse when the kiosk asks, posted when the card's load record arrives (online or
// in a later batch), voided on timeout unless a later record proves the card holds the money.
#include <fmt/format.h>

#include <algorithm>
#include <tuple>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/ingest.h"
#include "core/ingest_impl.h"
#include "core/time.h"

namespace citycard {

namespace {

// A top-up is treated as timed out this long after its own deadline, so that the ledger's
// deadline (a few milliseconds later: the ledger stamps the pending transfer itself) has
// surely passed and Ledger::ExpirePending has voided it.
constexpr int64_t kTopupExpiryMarginMs = 1'000;

// The text a top-up's transfer ids are derived from: "<terminal>/<request id>".
std::string TopupIdKey(const TopupRecord& t) {
  return fmt::format("{}/{}", t.terminal_id, t.request_id);
}

bool SameAsk(const TopupRecord& t, const TopupAsk& ask) {
  return t.card_no == ask.card_no && t.card_counter == ask.card_counter &&
         t.balance_before_fen == ask.balance_before_fen && t.amount_fen == ask.amount_fen;
}

LoadFields FieldsOf(const TopupRecord& t) {
  LoadFields f;
  f.card_no = t.card_no;
  f.card_counter = t.card_counter;
  f.balance_before_fen = t.balance_before_fen;
  f.amount_fen = t.amount_fen;
  f.terminal_id = t.terminal_id;
  f.request_id = t.request_id;
  return f;
}

// True when `tap`, the card's record right after the load's counter, started from the
// balance the load would have left: the card holds the money.
bool ProvesLoad(const TopupRecord& t, const TapRecord& tap) {
  return tap.card_no == t.card_no && tap.card_counter == t.card_counter + 2 &&
         tap.balance_before_fen == t.balance_before_fen + t.amount_fen;
}

}  // namespace

Transfer IngestEngine::Impl::TopupTransfer(std::string_view domain, const TopupRecord& t) const {
  Transfer x;
  x.id = DeriveTransferId(digester, domain, TopupIdKey(t));
  x.debit_account_id = SystemAccountId(AccountKind::topup_clearing);
  x.credit_account_id = AccountIdFor(AccountKind::card_purse, t.card_no);
  x.amount_fen = t.amount_fen;
  x.code = static_cast<uint16_t>(TransferCode::topup);
  x.user_data_64 = t.card_no;
  x.user_data_32 = t.card_counter;
  return x;
}

void OpenTopups::Clear() {
  by_key_.clear();
  keys_by_card_.clear();
  pending_by_expiry_.clear();
}

void OpenTopups::Put(TopupRecord t) {
  TopupKey key{t.terminal_id, t.request_id};
  auto existing = by_key_.find(key);
  if (existing != by_key_.end()) {
    pending_by_expiry_.erase({existing->second.expires_ms, key});
    // A top-up keeps its card; should a record under the same key name another, it moves.
    if (existing->second.card_no != t.card_no) Erase(key);
  }
  if (t.status == TopupStatus::pending) pending_by_expiry_.emplace(t.expires_ms, key);
  std::vector<TopupKey>& keys = keys_by_card_[t.card_no];
  auto at = std::lower_bound(keys.begin(), keys.end(), key);
  if (at == keys.end() || *at != key) keys.insert(at, key);
  by_key_.insert_or_assign(std::move(key), std::move(t));
}

void OpenTopups::Erase(const TopupKey& key) {
  auto found = by_key_.find(key);
  if (found == by_key_.end()) return;
  auto card = keys_by_card_.find(found->second.card_no);
  CITYCARD_ASSERT(card != keys_by_card_.end());
  std::vector<TopupKey>& keys = card->second;
  auto at = std::lower_bound(keys.begin(), keys.end(), key);
  CITYCARD_ASSERT(at != keys.end() && *at == key);
  keys.erase(at);
  if (keys.empty()) keys_by_card_.erase(card);
  pending_by_expiry_.erase({found->second.expires_ms, key});
  by_key_.erase(found);
}

std::vector<TopupRecord> OpenTopups::PendingExpiringBy(int64_t ms) const {
  std::vector<TopupRecord> due;
  for (const auto& [expires_ms, key] : pending_by_expiry_) {
    if (expires_ms > ms) break;
    due.push_back(At(key));
  }
  // In key order, as the walk over every open top-up gave them.
  std::sort(due.begin(), due.end(), [](const TopupRecord& a, const TopupRecord& b) {
    return std::tie(a.terminal_id, a.request_id) < std::tie(b.terminal_id, b.request_id);
  });
  return due;
}

const std::vector<TopupKey>& OpenTopups::KeysOf(uint64_t card_no) const {
  static const std::vector<TopupKey> kNone;
  auto found = keys_by_card_.find(card_no);
  return found == keys_by_card_.end() ? kNone : found->second;
}

const TopupRecord& OpenTopups::At(const TopupKey& key) const {
  auto found = by_key_.find(key);
  CITYCARD_ASSERT(found != by_key_.end());
  return found->second;
}

int64_t IngestEngine::Impl::ExpiredOpenFen(const IngestGroup& g, uint64_t card_no) const {
  int64_t sum = 0;
  for (const TopupKey& key : open_topups.KeysOf(card_no)) {
    const TopupRecord& t = open_topups.At(key);
    if (t.status != TopupStatus::expired) continue;
    auto gi = g.topups.find(key);
    if (gi != g.topups.end() && gi->second.status != TopupStatus::expired) continue;
    sum += t.amount_fen;
  }
  return sum;
}

namespace {

// Settles top-up `t` (as the group sees it) because the card's records show it holds the
// money: posts the pending transfer while it may still be posted, otherwise books a recovery
// transfer (the pending one was or will be voided by its timeout). Returns the transfer.
Transfer SettleTopup(IngestEngine::Impl& impl, IngestGroup& g, TopupRecord t, size_t owner,
                     int64_t now_ms, const std::string& terminal_id) {
  Transfer x;
  if (t.status == TopupStatus::pending && now_ms < t.expires_ms) {
    x = impl.TopupTransfer("citycard.topup.post", t);
    x.pending_id = t.pending_id;
    x.flags = kTransferPostPending;
    t.status = TopupStatus::posted;
  } else {
    x = impl.TopupTransfer("citycard.topup.recovered", t);
    t.status = TopupStatus::recovered;
    g.purse_delta_fen[t.card_no] += t.amount_fen;
    impl.RaiseAlert(g, AlertKind::topup_recovered, t.card_no, terminal_id,
                    fmt::format("top-up {} of {} fen (terminal {}) timed out unconfirmed; the "
                                "card's records prove it holds the money: booked",
                                t.request_id, t.amount_fen, t.terminal_id));
  }
  t.settled_ms = now_ms;
  t.settle_transfer_id = x.id;
  g.transfers.push_back(x);
  g.transfer_owner.push_back(owner);
  g.purses_credited.push_back(t.card_no);
  g.topups[{t.terminal_id, t.request_id}] = t;
  return x;
}

}  // namespace

Result<bool> IngestEngine::Impl::BookLoad(IngestGroup& g, IngestCandidate& c, uint64_t) {
  const TapRecord& r = *c.record;
  for (const TopupKey& key : open_topups.KeysOf(r.card_no)) {
    const TopupRecord& stored = open_topups.At(key);
    auto gi = g.topups.find(key);
    const TopupRecord& t = gi != g.topups.end() ? gi->second : stored;
    if (t.status != TopupStatus::pending && t.status != TopupStatus::expired) continue;
    if (t.card_no != r.card_no || t.card_counter + 1 != r.card_counter ||
        t.balance_before_fen != r.balance_before_fen || t.amount_fen != r.amount_fen) {
      continue;
    }
    SettleTopup(*this, g, t, c.position, clock.NowMs(), r.terminal_id);
    return true;
  }
  return false;
}

// Called for every booked purchase: a record right after an open top-up's load that starts
// from the loaded balance proves the load.
Status ProveLoadsByTap(IngestEngine::Impl& impl, IngestGroup& g, const IngestCandidate& c) {
  const TapRecord& r = *c.record;
  for (const TopupKey& key : impl.open_topups.KeysOf(r.card_no)) {
    const TopupRecord& stored = impl.open_topups.At(key);
    auto gi = g.topups.find(key);
    const TopupRecord& t = gi != g.topups.end() ? gi->second : stored;
    if (t.status != TopupStatus::pending && t.status != TopupStatus::expired) continue;
    if (!ProvesLoad(t, r)) continue;
    SettleTopup(impl, g, t, c.position, impl.clock.NowMs(), r.terminal_id);
  }
  return Status::Ok();
}

// The working set of one attempt at a group of top-up asks.
struct IngestEngine::Impl::TopupGroupPlan {
  std::vector<Result<TopupDecision>> answers;  // one per ask
  std::vector<TopupRecord> fresh;              // the new top-ups to book, in ask order
  std::vector<Transfer> pending;               // their pending transfers, same order
  std::vector<size_t> fresh_owner;             // the ask of each, same order
  // The new top-ups of the group by (terminal, request id), as indexes into `fresh`.
  std::map<std::pair<std::string, uint64_t>, size_t> by_key;
  // Per card, what the group's new top-ups credit its purse (pending).
  std::unordered_map<uint64_t, int64_t> credits_fen;
};

namespace {

// The answer to an ask that repeats the top-up `t` (stored, or booked earlier in the group).
Result<TopupDecision> RepeatedAnswer(TapAuthenticator& auth, const TopupRecord& t,
                                     const TopupAsk& ask) {
  TopupDecision d;
  d.amount_fen = ask.amount_fen;
  if (!SameAsk(t, ask)) {
    d.outcome = TopupOutcome::duplicate_request;
    return d;
  }
  d.authorisation_id = t.authorisation_id;
  d.balance_after_fen = t.balance_before_fen + t.amount_fen;
  if (!auth.LoadAuthorisation(t.card_key_version, FieldsOf(t), &d.host_mac)) {
    return Status::Internal("card_key_missing", "the card key of a stored top-up is gone");
  }
  return d;
}

}  // namespace

// Decides one ask against the store and the group's earlier asks. *fresh is set when the
// answer is a new authorisation, added to the plan to be booked.
Result<TopupDecision> IngestEngine::Impl::PlanTopup(const TopupAsk& ask, TopupGroupPlan& plan,
                                                    bool* fresh) {
  *fresh = false;
  TopupDecision d;
  d.amount_fen = ask.amount_fen;
  auto in_group = plan.by_key.find({ask.terminal_id, ask.request_id});
  if (in_group != plan.by_key.end()) {
    return RepeatedAnswer(auth, plan.fresh[in_group->second], ask);
  }
  auto existing = taps.FindTopup(ask.terminal_id, ask.request_id);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    return RepeatedAnswer(auth, **existing, ask);
  }
  auto card = LoadCard(ask.card_no);
  if (!card.ok()) return card.status();
  if (*card == nullptr) {
    d.outcome = TopupOutcome::card_not_found;
    return d;
  }
  const IngestCardEntry& entry = **card;
  bool listed = entry.deny.has_value() && entry.deny->reason != DenyReason::negative_balance;
  if (entry.card.status != CardStatus::active || listed) {
    d.outcome = TopupOutcome::card_blocked;
    return d;
  }
  if (entry.card.expires_day < ClearingDay(clock.NowSeconds())) {
    d.outcome = TopupOutcome::card_expired;
    return d;
  }
  if (ask.amount_fen <= 0 || ask.amount_fen > kTransferAmountFenMax) {
    d.outcome = TopupOutcome::amount_out_of_range;
    return d;
  }
  uint64_t purse = AccountIdFor(AccountKind::card_purse, ask.card_no);
  auto account = ledger.LookupAccount(purse);
  if (!account.ok()) return account.status();
  // The group's earlier authorisations of this purse are pending credits as well.
  int64_t group_fen = plan.credits_fen[ask.card_no];
  if (account->balance_fen() + account->credits_pending + group_fen + ask.amount_fen >
      config.purse_balance_max_fen) {
    d.outcome = TopupOutcome::amount_out_of_range;
    return d;
  }

  TopupRecord t;
  t.terminal_id = ask.terminal_id;
  t.request_id = ask.request_id;
  t.card_no = ask.card_no;
  t.card_counter = ask.card_counter;
  t.balance_before_fen = ask.balance_before_fen;
  t.amount_fen = ask.amount_fen;
  IngestGroup scratch;
  auto state = CounterState(scratch, ask.card_no);
  if (!state.ok()) return state.status();
  t.card_key_version =
      state->has_value() ? (*state)->last_tac_key_version : auth.CurrentCardKeyVersion();
  Transfer pending = TopupTransfer("citycard.topup.pending", t);
  pending.flags = kTransferPending;
  pending.timeout_s = static_cast<uint32_t>(config.topup_timeout_s);
  t.pending_id = pending.id;
  // Never zero: zero means "no authorisation" on the wire.
  t.authorisation_id = (pending.id.lo & 0x7FFF'FFFF'FFFF'FFFFULL) | 1;
  t.status = TopupStatus::pending;
  t.created_ms = clock.NowMs();
  t.expires_ms = t.created_ms + config.topup_timeout_s * 1000;
  if (!auth.LoadAuthorisation(t.card_key_version, FieldsOf(t), &d.host_mac)) {
    return Status::Internal("card_key_missing",
                            fmt::format("no card key version {}", t.card_key_version));
  }
  d.authorisation_id = t.authorisation_id;
  d.balance_after_fen = t.balance_before_fen + t.amount_fen;
  plan.credits_fen[ask.card_no] += ask.amount_fen;
  plan.by_key[{t.terminal_id, t.request_id}] = plan.fresh.size();
  plan.fresh.push_back(std::move(t));
  plan.pending.push_back(pending);
  *fresh = true;
  return d;
}

Status IngestEngine::Impl::PlanTopups(std::span<const TopupAsk> asks,
                                      const std::map<size_t, Status>& excluded,
                                      TopupGroupPlan* plan) {
  plan->answers.reserve(asks.size());
  for (size_t i = 0; i < asks.size(); ++i) {
    auto failed = excluded.find(i);
    if (failed != excluded.end()) {
      plan->answers.push_back(failed->second);
      continue;
    }
    bool fresh = false;
    plan->answers.push_back(PlanTopup(asks[i], *plan, &fresh));
    if (fresh) plan->fresh_owner.push_back(i);
  }
  CITYCARD_ASSERT(plan->fresh_owner.size() == plan->fresh.size());
  return Status::Ok();
}

Result<std::vector<Result<TopupDecision>>> IngestEngine::Impl::AuthoriseTopups(
    std::span<const TopupAsk> asks, const std::function<Status()>& in_transaction) {
  if (asks.size() > kTopupGroupMax) {
    return Status::BadInput("too_many_topups",
                            fmt::format("{} top-up asks in one group; at most {}", asks.size(),
                                        kTopupGroupMax));
  }
  CITYCARD_RETURN_IF_ERROR(SyncDenylist());
  // Asks whose pending transfer the ledger declined: each attempt books the group again
  // without them, so at most asks.size() + 1 attempts.
  std::map<size_t, Status> excluded;
  while (true) {
    // The group's reads are made inside its transaction as well: one snapshot, and no lock
    // taken and released by each read of its own.
    CITYCARD_RETURN_IF_ERROR(registry.Begin());
    TopupGroupPlan plan;
    Status planned = PlanTopups(asks, excluded, &plan);
    if (!planned.ok() || (plan.fresh.empty() && !in_transaction)) {
      (void)registry.Rollback();  // nothing was written
      if (!planned.ok()) return planned;
      return std::move(plan.answers);
    }
    Ledger::JoinedTransaction joined(ledger);
    size_t declined_before = excluded.size();
    auto run = [&]() -> Status {
      if (in_transaction) CITYCARD_RETURN_IF_ERROR(in_transaction());
      if (!plan.pending.empty()) {
        auto outcomes = ledger.Apply(plan.pending);
        if (!outcomes.ok()) return outcomes.status();
        for (size_t k = 0; k < outcomes->size(); ++k) {
          if (IsSuccess((*outcomes)[k])) continue;
          excluded.emplace(plan.fresh_owner[k],
                           Status::Internal("topup_declined",
                                            fmt::format("the pending top-up was declined: {}",
                                                        TransferOutcomeName((*outcomes)[k]))));
        }
        if (excluded.size() != declined_before) return Status::Ok();  // rolled back below
      }
      IngestWrite write;
      write.topups = plan.fresh;
      CITYCARD_RETURN_IF_ERROR(taps.Write(write));
      return registry.Commit();
    };
    Status status = run();
    if (!status.ok() || excluded.size() != declined_before) {
      (void)registry.Rollback();  // the failure above is what the caller needs
      if (!status.ok()) return status;
      continue;  // book the group again without the declined asks
    }
    joined.Committed();
    for (TopupRecord& t : plan.fresh) open_topups.Put(std::move(t));
    return std::move(plan.answers);
  }
}

Result<TopupConfirmResult> IngestEngine::Impl::ConfirmTopup(std::string_view terminal_id,
                                                           uint64_t authorisation_id,
                                                           ByteView record) {
  TopupConfirmResult result;
  auto topup = taps.FindTopupByAuthorisation(authorisation_id);
  if (!topup.ok()) return topup.status();
  if (!topup->has_value()) {
    result.outcome = TopupOutcome::authorisation_not_found;
    return result;
  }
  auto decoded = DecodeTapRecord(record);
  if (!decoded.ok()) {
    result.outcome = TopupOutcome::bad_record;
    result.record_outcome = IngestOutcome::invalid_record;
    return result;
  }
  const TopupRecord& t = **topup;
  const TapRecord& r = *decoded;
  if (r.type != TapType::load || r.card_no != t.card_no || r.amount_fen != t.amount_fen ||
      r.balance_before_fen != t.balance_before_fen || r.card_counter != t.card_counter + 1) {
    result.outcome = TopupOutcome::amount_mismatch;
    return result;
  }
  UploadedBatch batch;
  batch.terminal_id = std::string(terminal_id);
  batch.records.push_back(r);
  auto outcomes = Ingest(std::span<const UploadedBatch>(&batch, 1), {});
  if (!outcomes.ok()) return outcomes.status();
  IngestOutcome o = (*outcomes)[0][0];
  result.record_outcome = o;
  if (IsBooked(o) || o == IngestOutcome::duplicate) {
    result.outcome = TopupOutcome::confirmed;
  } else if (o == IngestOutcome::unmatched_load) {
    result.outcome = TopupOutcome::authorisation_not_found;
  } else {
    result.outcome = TopupOutcome::bad_record;
  }
  return result;
}

Result<size_t> IngestEngine::Impl::ExpireTopups() {
  CITYCARD_RETURN_IF_ERROR(SyncDenylist());
  const int64_t now_ms = clock.NowMs();
  std::vector<TopupRecord> due = open_topups.PendingExpiringBy(now_ms - kTopupExpiryMarginMs);
  if (due.empty()) {
    // No top-up to close: the ledger voids on its own what has passed its deadline (a top-up's
    // pending transfer is voided up to kTopupExpiryMarginMs before the top-up is due), and
    // takes the write lock only when there is something to void.
    auto voided = ledger.ExpirePending();
    if (!voided.ok()) return voided.status();
    return size_t{0};
  }
  // The voids of the expired pending transfers and the top-ups they end are one storage
  // transaction: an expiry that fails (or is cut short) leaves both as they were, and the next
  // call does it whole (tests/db/io_faults_test.cc abandons a failed expiry and requires that
  // nothing of it remain).
  IngestGroup g;
  CITYCARD_RETURN_IF_ERROR(registry.Begin());
  Ledger::JoinedTransaction joined(ledger);
  auto run = [&]() -> Status {
    auto voided = ledger.ExpirePending();
    if (!voided.ok()) return voided.status();
    for (TopupRecord t : due) {
      auto next = taps.FindByCardCounter(t.card_no, t.card_counter + 2);
      if (!next.ok()) return next.status();
      if (next->has_value() && ProvesLoad(t, (*next)->record)) {
        SettleTopup(*this, g, t, SIZE_MAX, now_ms, t.terminal_id);
        continue;
      }
      t.status = TopupStatus::expired;
      t.settled_ms = now_ms;
      g.topups[{t.terminal_id, t.request_id}] = t;
    }
    if (!g.transfers.empty()) {
      auto outcomes = ledger.Apply(g.transfers);
      if (!outcomes.ok()) return outcomes.status();
      for (TransferOutcome o : *outcomes) {
        if (!IsSuccess(o)) {
          return Status::Internal("topup_declined",
                                  fmt::format("a recovered top-up was declined: {}",
                                              TransferOutcomeName(o)));
        }
      }
    }
    CITYCARD_RETURN_IF_ERROR(FinishGroup(g));
    return registry.Commit();
  };
  Status status = run();
  if (!status.ok()) {
    (void)registry.Rollback();  // the failure above is what the caller needs
    return status;
  }
  joined.Committed();
  MergeCaches(g);
  return due.size();
}

}  // namespace citycard
