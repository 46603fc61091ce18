// Tap ingest: the group commit and the checks of docs/ingest.md, in their order.
#include "core/ingest.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/ingest_impl.h"
#include "core/tap_pricer.h"
#include "core/time.h"

namespace citycard {

namespace {

// True when some batch of the group has cards read ahead (CardPrefetcher).
bool AnyCardsAhead(std::span<const PrecheckedProofs> proofs) {
  for (const PrecheckedProofs& p : proofs) {
    if (p.cards.denylist_version >= 0) return true;
  }
  return false;
}

// True when the cards read ahead for a batch of `records` may be used: read under the stamps
// the engine reads now (core/ingest.h PrefetchedCards), one per record.
bool CardsAheadCurrent(const PrefetchedCards& ahead, size_t records, int64_t denylist_version,
                       int64_t card_changes) {
  return ahead.denylist_version >= 0 && ahead.denylist_version == denylist_version &&
         ahead.card_changes == card_changes && ahead.cards.size() == records;
}

// Drops from a card cache the cards a denylist delta names: listed or unlisted since, their
// entries may be stale.
void DropListed(const DenylistDelta& delta, std::unordered_map<uint64_t, IngestCardRef>& cache) {
  for (const DenylistEntry& e : delta.added) cache.erase(CardNumberToInt(e.card_no));
  for (const std::string& no : delta.removed) cache.erase(CardNumberToInt(no));
}

// A record's content for duplicate detection: everything but the terminal's signature, so
// that the same transaction re-signed after a key rotation is still the same record.
TapRecord Content(TapRecord record) {
  record.terminal_mac = {};
  record.terminal_key_version = 0;
  return record;
}

bool TacIsZero(const TapRecord& record) {
  return std::all_of(record.tac.begin(), record.tac.end(), [](uint8_t b) { return b == 0; });
}

// True when `incoming` is `booked` uploaded again: the same content, or the same content
// with the TAC still missing (a torn transaction's first upload arriving after the
// recovered one).
bool SameRecord(const TapRecord& booked, const TapRecord& incoming) {
  TapRecord a = Content(booked);
  TapRecord b = Content(incoming);
  if (TacIsZero(incoming)) b.tac = a.tac;
  return a == b;
}

int64_t BalanceAfter(const TapRecord& record) {
  return record.type == TapType::load ? record.balance_before_fen + record.amount_fen
                                      : record.balance_before_fen - record.amount_fen;
}

std::string CardText(uint64_t card_no) { return CardNumberFromInt(card_no); }

// Records tap `index` under counter `ctc` in a card's taps of the group, keeping them ordered
// by CTC; a counter already there is overwritten, as a map's assignment would.
void AddCardTap(CardTapsInGroup& taps, uint32_t ctc, size_t index) {
  if (taps.empty() || taps.back().first < ctc) {
    taps.emplace_back(ctc, index);  // the usual case: a card's counters arrive in order
    return;
  }
  auto it = std::lower_bound(taps.begin(), taps.end(), std::make_pair(ctc, size_t{0}));
  if (it != taps.end() && it->first == ctc) {
    it->second = index;
  } else {
    taps.emplace(it, ctc, index);
  }
}

void SortUnique(std::vector<uint64_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

Id128 TapTransferId(const Digester& digester, std::string_view terminal_id, uint32_t ttc) {
  // The TTC goes into the id in the clear, below the terminal's hash, so that the ids of one
  // terminal are ordered in the ledger's index as its taps are; why: core/ingest.h.
  return TapTransferIdAt(TapTransferIdBase(digester, terminal_id), ttc);
}

Id128 TapTransferIdBase(const Digester& digester, std::string_view terminal_id) {
  return DeriveTransferId(digester, "citycard.tap", terminal_id);
}

Id128 TapTransferIdAt(const Id128& base, uint32_t ttc) {
  return Id128{base.hi, (uint64_t{ttc} << 32) | (base.lo & 0xFFFF'FFFFu)};
}

IngestEngine::IngestEngine(RegistryStore& registry, Ledger& ledger, TapStore& taps,
                           TapAuthenticator& authenticator, const Digester& digester,
                           const Clock& clock, IngestConfig config)
    : impl_(std::make_unique<Impl>(registry, ledger, taps, authenticator, digester, clock,
                                   config)) {}
IngestEngine::~IngestEngine() = default;

Result<std::vector<std::vector<IngestOutcome>>> IngestEngine::Ingest(
    std::span<const UploadedBatch> batches) {
  return impl_->Ingest(batches, {});
}
Result<std::vector<std::vector<IngestOutcome>>> IngestEngine::Ingest(
    std::span<const UploadedBatch> batches, std::span<const PrecheckedProofs> proofs) {
  CITYCARD_ASSERT(proofs.empty() || proofs.size() == batches.size());
  return impl_->Ingest(batches, proofs);
}

PrecheckedProofs PrecheckProofs(TapAuthenticator& authenticator, const Terminal& terminal,
                                std::span<const TapRecord> records) {
  PrecheckedProofs out;
  out.checked = true;
  out.terminal_keys = terminal.keys;
  out.records.resize(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const TapRecord& r = records[i];
    // The same conditions under which Authenticate checks a MAC; an invalid record may not
    // even be encodable, so it is never handed to the authenticator.
    if (r.terminal_id != terminal.id || !ValidateTapRecord(r).ok()) continue;
    RecordProofs& p = out.records[i];
    p.checked = true;
    p.mac = authenticator.VerifyTerminalMac(terminal, r);
    if (p.mac == TerminalMacVerdict::valid) p.tac = authenticator.VerifyTac(r);
  }
  return out;
}
Result<TopupDecision> IngestEngine::AuthoriseTopup(const TopupAsk& ask) {
  auto answers = impl_->AuthoriseTopups(std::span<const TopupAsk>(&ask, 1), {});
  if (!answers.ok()) return answers.status();
  return std::move((*answers)[0]);
}
Result<std::vector<Result<TopupDecision>>> IngestEngine::AuthoriseTopups(
    std::span<const TopupAsk> asks, const std::function<Status()>& in_transaction) {
  return impl_->AuthoriseTopups(asks, in_transaction);
}
Result<TopupConfirmResult> IngestEngine::ConfirmTopup(std::string_view terminal_id,
                                                      uint64_t authorisation_id, ByteView record) {
  return impl_->ConfirmTopup(terminal_id, authorisation_id, record);
}
Result<size_t> IngestEngine::ExpireTopups() { return impl_->ExpireTopups(); }

Status IngestEngine::NoteTerminalDenylistVersion(std::string_view terminal_id, int64_t version,
                                                 int64_t terminal_time_ms) {
  std::string id(terminal_id);
  auto it = impl_->reports.find(id);
  if (it == impl_->reports.end()) {
    auto loaded = impl_->taps.LoadTerminalDenylistReports(id);
    if (!loaded.ok()) return loaded.status();
    it = impl_->reports.emplace(id, std::move(*loaded)).first;
  }
  if (!it->second.empty() && it->second.back().version >= version) return Status::Ok();
  CITYCARD_RETURN_IF_ERROR(impl_->taps.RecordTerminalDenylistVersion(id, version, terminal_time_ms));
  it->second.push_back({version, terminal_time_ms});
  return Status::Ok();
}

void IngestEngine::SetTapPricer(TapPricer* pricer) { impl_->pricer = pricer; }

// Prices a booked tap again, with the card's two previous records (those the core has) for
// the entry of a metro exit and for transfers; a difference raises fare_dispute (true).
Result<bool> IngestEngine::Impl::Reprice(IngestGroup& g, const TapRecord& r) {
  PreviousTaps previous;
  for (uint32_t back = 1; back <= 2 && back <= r.card_counter; ++back) {
    auto before = BookedByCard(g, r.card_no, r.card_counter - back);
    if (!before.ok()) return before.status();
    if (!before->has_value()) break;
    (back == 1 ? previous.last : previous.second_last) = (*before)->record;
  }
  auto priced = pricer->PriceTap(r, previous);
  if (!priced.ok()) return priced.status();
  if (!priced->dispute) return false;
  RaiseAlert(g, AlertKind::fare_dispute, r.card_no, r.terminal_id, priced->detail);
  return true;
}

void IngestEngine::ClearCaches() {
  impl_->cards.clear();
  impl_->counters.clear();
  impl_->operators.clear();
  impl_->reports.clear();
  impl_->opened = false;
}

// ---- Caches ----------------------------------------------------------------------------

Status IngestEngine::Impl::Open() {
  if (opened) return Status::Ok();
  auto full = registry.DenylistFull();
  if (!full.ok()) return full.status();
  denylist_version = full->version;
  auto open = taps.ListOpenTopups();
  if (!open.ok()) return open.status();
  open_topups.Clear();
  for (TopupRecord& t : *open) open_topups.Put(std::move(t));
  cards.clear();
  opened = true;
  return Status::Ok();
}

// Every card status change moves the denylist version (block, unblock, replace, close, a
// negative purse and its top-up), so the cards named by the delta since the last look are
// exactly the cached entries that may be stale.
Status IngestEngine::Impl::SyncDenylist() {
  CITYCARD_RETURN_IF_ERROR(Open());
  auto delta = registry.DenylistSince(denylist_version);
  if (!delta.ok()) return delta.status();
  DropListed(*delta, cards);
  denylist_version = delta->to_version;
  return Status::Ok();
}

namespace {

// The card and its denylist entry as `registry` holds them; nullptr when it has no such card.
Result<IngestCardRef> ReadCardEntry(RegistryStore& registry, uint64_t card_no) {
  std::string text = CardText(card_no);
  auto card = registry.FindCard(text);
  if (!card.ok()) return card.status();
  if (!card->has_value()) return IngestCardRef();
  auto entry = std::make_shared<IngestCardEntry>();
  entry->card = std::move(**card);
  auto deny = registry.DenylistFind(text);
  if (!deny.ok()) return deny.status();
  entry->deny = std::move(*deny);
  return IngestCardRef(std::move(entry));
}

// A replaced card's balance moves after its hold period without a denylist change, so it is
// read afresh every time rather than cached (nor read ahead).
bool Cacheable(const IngestCardEntry& entry) { return entry.card.status != CardStatus::replaced; }

}  // namespace

Result<IngestCardRef> IngestEngine::Impl::LoadCard(uint64_t card_no, IngestCardRef ahead) {
  auto it = cards.find(card_no);
  if (it != cards.end()) return it->second;
  IngestCardRef entry = std::move(ahead);
  if (entry != nullptr) {
    // The prefetcher read it under this record's card number; anything else is a bug.
    CITYCARD_ASSERT(CardNumberToInt(entry->card.card_no) == card_no);
  } else {
    auto read = ReadCardEntry(registry, card_no);
    if (!read.ok()) return read.status();
    entry = std::move(*read);
    if (entry == nullptr) return IngestCardRef();
  }
  if (Cacheable(*entry)) {
    if (cards.size() >= config.card_cache_max) cards.clear();
    cards.emplace(card_no, entry);
  }
  return entry;
}

// ---- Cards read ahead ------------------------------------------------------------------

CardPrefetcher::CardPrefetcher(RegistryStore& registry, size_t cache_max)
    : registry_(registry), cache_max_(cache_max) {
  CITYCARD_ASSERT(cache_max > 0);
}

Status CardPrefetcher::Prefetch(std::span<const TapRecord> records, PrecheckedProofs* proofs) {
  proofs->cards = PrefetchedCards{};
  if (!proofs->checked || proofs->records.size() != records.size()) return Status::Ok();
  PrefetchedCards out;
  std::vector<uint64_t> purse_ids;
  // Before the read transaction begins (Ledger::OfferAccounts says why).
  if (ledger_ != nullptr) out.account_removals = ledger_->CacheRemovals();
  // One read scope: the stamps and the entries are of one snapshot of the registry.
  CITYCARD_RETURN_IF_ERROR(registry_.BeginRead());
  Status read = Refresh();
  if (read.ok()) {
    out.denylist_version = denylist_version_;
    out.card_changes = card_changes_;
    out.cards.resize(records.size());
    for (size_t i = 0; i < records.size() && read.ok(); ++i) {
      const RecordProofs& p = proofs->records[i];
      if (!p.checked || p.mac != TerminalMacVerdict::valid) continue;
      bool fresh = false;
      auto found = Find(records[i].card_no, &fresh);
      if (!found.ok()) {
        read = found.status();
      } else {
        // Only the purses of cards read afresh: a card this prefetcher kept was seen lately,
        // so its purse is most likely in the writer's cache already (at ten thousand cards,
        // all of them), and reading it would cost this thread for nothing.
        if (fresh && *found != nullptr) {
          purse_ids.push_back(AccountIdFor(AccountKind::card_purse, records[i].card_no));
        }
        out.cards[i] = std::move(*found);
      }
    }
  }
  if (read.ok() && ledger_store_ != nullptr) read = ReadPurses(purse_ids, out);
  Status ended = registry_.EndRead();
  if (!read.ok()) {
    // What was read may be half a batch under stamps no longer checked: start afresh.
    denylist_version_ = -1;
    return read;
  }
  CITYCARD_RETURN_IF_ERROR(ended);
  proofs->cards = std::move(out);
  return Status::Ok();
}

void CardPrefetcher::ReadPursesToo(LedgerStore& ledger_store, const Ledger& ledger) {
  ledger_store_ = &ledger_store;
  ledger_ = &ledger;
}

Status CardPrefetcher::ReadPurses(std::vector<uint64_t>& ids, PrefetchedCards& out) {
  // The store reads sorted ids in one walk where they are near.
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  CITYCARD_RETURN_IF_ERROR(ledger_store_->LoadAccounts(ids, &out.purses));
  out.purses_read = true;
  return Status::Ok();
}

Status CardPrefetcher::Refresh() {
  auto changes = registry_.CardChanges();
  if (!changes.ok()) return changes.status();
  if (*changes != card_changes_) cache_.clear();  // some card row changed: which, unknown
  card_changes_ = *changes;
  if (denylist_version_ < 0) {
    auto full = registry_.DenylistFull();
    if (!full.ok()) return full.status();
    cache_.clear();
    denylist_version_ = full->version;
    return Status::Ok();
  }
  auto delta = registry_.DenylistSince(denylist_version_);
  if (!delta.ok()) return delta.status();
  DropListed(*delta, cache_);
  denylist_version_ = delta->to_version;
  return Status::Ok();
}

Result<IngestCardRef> CardPrefetcher::Find(uint64_t card_no, bool* fresh) {
  auto it = cache_.find(card_no);
  if (it != cache_.end()) return it->second;
  *fresh = true;
  auto read = ReadCardEntry(registry_, card_no);
  if (!read.ok()) return read.status();
  if (*read == nullptr || !Cacheable(**read)) return IngestCardRef();
  if (cache_.size() >= cache_max_) cache_.clear();
  cache_.emplace(card_no, *read);
  return std::move(*read);
}

Result<std::optional<Operator>> IngestEngine::Impl::LoadOperator(const std::string& id) {
  auto it = operators.find(id);
  if (it != operators.end()) return std::optional<Operator>(it->second);
  auto op = registry.FindOperator(id);
  if (!op.ok()) return op.status();
  if (op->has_value()) operators.emplace(id, **op);
  return *op;
}

Result<std::optional<int64_t>> IngestEngine::Impl::TerminalKnewAt(const std::string& terminal_id,
                                                                  int64_t version) {
  auto it = reports.find(terminal_id);
  if (it == reports.end()) {
    auto loaded = taps.LoadTerminalDenylistReports(terminal_id);
    if (!loaded.ok()) return loaded.status();
    it = reports.emplace(terminal_id, std::move(*loaded)).first;
  }
  for (const TerminalDenylistReport& r : it->second) {
    if (r.version >= version) return std::optional<int64_t>(r.terminal_time_ms);
  }
  return std::optional<int64_t>();
}

Result<std::optional<CardCounterState>> IngestEngine::Impl::CounterState(IngestGroup& g,
                                                                         uint64_t card_no) {
  auto gi = g.counters.find(card_no);
  if (gi != g.counters.end()) return gi->second;
  auto ci = counters.find(card_no);
  if (ci != counters.end()) return ci->second;
  auto loaded = taps.LoadCardCounterState(card_no);
  if (!loaded.ok()) return loaded.status();
  if (counters.size() >= config.card_cache_max) counters.clear();
  counters.emplace(card_no, *loaded);
  return *loaded;
}

// ---- The group commit ------------------------------------------------------------------

Result<std::vector<std::vector<IngestOutcome>>> IngestEngine::Impl::Ingest(
    std::span<const UploadedBatch> batches, std::span<const PrecheckedProofs> proofs) {
  size_t total = 0;
  for (const UploadedBatch& b : batches) total += b.records.size();
  if (total > kIngestRecordsMax) {
    return Status::BadInput("too_many_records",
                            fmt::format("{} records in one group; at most {}", total,
                                        kIngestRecordsMax));
  }
  std::vector<IngestCandidate> candidates;
  candidates.reserve(total);
  // Steps 1 and 2 only read the registry: one read scope for them all rather than a lock
  // taken and dropped for each card not cached yet (every tap's, at a million cards).
  CITYCARD_RETURN_IF_ERROR(registry.BeginRead());
  Status read = SyncDenylist();
  int64_t card_changes = -1;  // read only when some batch has cards read ahead
  if (read.ok() && AnyCardsAhead(proofs)) {
    auto changes = registry.CardChanges();
    if (changes.ok()) {
      card_changes = *changes;
    } else {
      read = changes.status();
    }
  }
  if (read.ok()) read = Authenticate(batches, proofs, card_changes, &candidates);
  Status ended = registry.EndRead();
  CITYCARD_RETURN_IF_ERROR(read);
  CITYCARD_RETURN_IF_ERROR(ended);
  // The purses read ahead with the cards: the ledger takes those its cache lacks, where the
  // cache has lost nothing since they were read (Ledger::OfferAccounts).
  for (const PrecheckedProofs& p : proofs) {
    if (p.cards.purses_read) ledger.OfferAccounts(p.cards.purses, p.cards.account_removals);
  }

  // A posting the ledger declines (it never should: docs/ingest.md "Posting") takes its
  // record out of the group, which is then run again without it; each attempt excludes at
  // least one record, so this ends.
  for (size_t attempt = 0;; ++attempt) {
    CITYCARD_ASSERT(attempt <= total);
    IngestGroup group;
    std::vector<size_t> failed;
    CITYCARD_RETURN_IF_ERROR(RunGroup(candidates, group, &failed));
    if (failed.empty()) {
      MergeCaches(group);
      break;
    }
    for (size_t i : failed) candidates[i].excluded = true;
  }

  std::vector<std::vector<IngestOutcome>> out(batches.size());
  for (size_t i = 0; i < batches.size(); ++i) out[i].resize(batches[i].records.size());
  for (const IngestCandidate& c : candidates) {
    out[c.batch][c.index] = c.excluded ? IngestOutcome::retry_later : c.outcome;
  }
  return out;
}

// Steps 1 and 2, outside any storage transaction: the terminal and its MAC, the card and its
// TAC. These are the CPU-heavy checks; the store is only read (registry, cached). A verdict
// checked ahead (PrecheckProofs) replaces the authenticator's call only where it is the
// verdict that call would give now (core/ingest.h PrecheckedProofs).
Status IngestEngine::Impl::Authenticate(std::span<const UploadedBatch> batches,
                                        std::span<const PrecheckedProofs> proofs,
                                        int64_t card_changes,
                                        std::vector<IngestCandidate>* candidates) {
  std::map<std::string, std::optional<Terminal>> terminals;
  for (size_t b = 0; b < batches.size(); ++b) {
    const UploadedBatch& batch = batches[b];
    const PrecheckedProofs* ahead = proofs.empty() ? nullptr : &proofs[b];
    if (ahead != nullptr && (!ahead->checked || ahead->records.size() != batch.records.size())) {
      ahead = nullptr;
    }
    const std::vector<IngestCardRef>* cards_ahead =
        ahead != nullptr && CardsAheadCurrent(ahead->cards, batch.records.size(),
                                              denylist_version, card_changes)
            ? &ahead->cards.cards
            : nullptr;
    bool ahead_keys_current = false;  // decided at the batch's first MAC
    bool ahead_keys_compared = false;
    for (size_t i = 0; i < batch.records.size(); ++i) {
      IngestCandidate c;
      c.position = candidates->size();
      c.batch = b;
      c.index = i;
      c.record = &batch.records[i];
      if (!ValidateTapRecord(*c.record).ok()) {
        c.outcome = IngestOutcome::invalid_record;
        candidates->push_back(std::move(c));
        continue;
      }
      const TapRecord& r = *c.record;
      if (r.terminal_id != batch.terminal_id) {
        c.outcome = IngestOutcome::wrong_terminal;
        candidates->push_back(std::move(c));
        continue;
      }
      auto ti = terminals.find(r.terminal_id);
      if (ti == terminals.end()) {
        auto found = registry.FindTerminal(r.terminal_id);
        if (!found.ok()) return found.status();
        ti = terminals.emplace(r.terminal_id, std::move(*found)).first;
      }
      const RecordProofs* checked = nullptr;  // this record's proofs checked ahead, if usable
      if (!ti->second.has_value()) {
        c.outcome = IngestOutcome::unknown_terminal;
      } else if (ti->second->status != TerminalStatus::active) {
        c.outcome = IngestOutcome::terminal_disabled;
      } else if (r.operator_id != ti->second->operator_id) {
        c.outcome = IngestOutcome::wrong_operator;
      } else {
        if (ahead != nullptr && !ahead_keys_compared) {
          // Every record that gets here names the batch's terminal, so one comparison serves
          // the whole batch.
          ahead_keys_current = ahead->terminal_keys == ti->second->keys;
          ahead_keys_compared = true;
        }
        if (ahead != nullptr && ahead_keys_current && ahead->records[i].checked) {
          checked = &ahead->records[i];
        }
        TerminalMacVerdict mac =
            checked != nullptr ? checked->mac : auth.VerifyTerminalMac(*ti->second, r);
        switch (mac) {
          case TerminalMacVerdict::valid: c.authentic = true; break;
          case TerminalMacVerdict::unknown_key_version:
            c.outcome = IngestOutcome::unknown_terminal_key; break;
          case TerminalMacVerdict::key_revoked:
            c.outcome = IngestOutcome::terminal_key_revoked; break;
          case TerminalMacVerdict::mac_mismatch:
            c.outcome = IngestOutcome::bad_terminal_mac; break;
        }
      }
      if (c.authentic) {
        auto card = LoadCard(r.card_no, cards_ahead != nullptr ? (*cards_ahead)[i] : nullptr);
        if (!card.ok()) return card.status();
        if (*card == nullptr) {
          c.outcome = IngestOutcome::unknown_card;
        } else {
          c.card = std::move(*card);
          // A record checked ahead had its TAC checked there, its MAC being valid.
          TacVerdict tac = checked != nullptr ? checked->tac : auth.VerifyTac(r);
          switch (tac) {
            case TacVerdict::valid: c.passed_proofs = true; break;
            case TacVerdict::missing: c.outcome = IngestOutcome::tac_missing; break;
            case TacVerdict::unknown_key_version:
              c.outcome = IngestOutcome::unknown_card_key; break;
            case TacVerdict::mismatch: c.outcome = IngestOutcome::bad_tac; break;
          }
        }
      }
      candidates->push_back(std::move(c));
    }
  }
  return Status::Ok();
}

namespace {

// A tap's transfer id is derived from (terminal, TTC), and a tap gets a transfer only when no
// tap with that key is booked (BookedByTerminal), in the same transaction that books its row
// under the unique key (terminal, TTC). So the ids of a group of tap transfers are new, and
// the ledger need not search for them (Ledger::ApplyNew; docs/ingest.md "Posting"): were the
// promise ever broken, the ledger's unique index refuses the group whole (transfer_id_taken)
// and nothing is booked. Top-up transfers keep the searching Apply.
bool OnlyTapTransfers(const std::vector<Transfer>& transfers) {
  return std::all_of(transfers.begin(), transfers.end(), [](const Transfer& t) {
    return t.code == static_cast<uint16_t>(TransferCode::tap) && t.pending_id.IsZero();
  });
}

}  // namespace

Status IngestEngine::Impl::RunGroup(std::vector<IngestCandidate>& candidates, IngestGroup& g,
                                    std::vector<size_t>* failed_postings) {
  // Terminals are read inside the transaction so that the counters raised are current.
  CITYCARD_RETURN_IF_ERROR(registry.Begin());
  Ledger::JoinedTransaction joined(ledger);
  auto run = [&]() -> Status {
    std::map<std::string, Terminal> terminals;
    for (size_t i = 0; i < candidates.size(); ++i) {
      IngestCandidate& c = candidates[i];
      if (!c.authentic) continue;
      if (c.excluded) continue;
      auto ti = terminals.find(c.record->terminal_id);
      if (ti == terminals.end()) {
        auto found = registry.FindTerminal(c.record->terminal_id);
        if (!found.ok()) return found.status();
        CITYCARD_ASSERT(found->has_value());  // it was found moments ago and is never deleted
        ti = terminals.emplace(c.record->terminal_id, std::move(**found)).first;
      }
      CITYCARD_RETURN_IF_ERROR(TerminalCounter(g, c, ti->second));
      if (c.outcome == IngestOutcome::tac_missing) {
        // The first upload of a torn transaction may arrive after the recovered one was
        // booked: it is that same transaction, answered as a duplicate.
        auto booked = BookedByTerminal(g, *c.record, ti->second);
        if (!booked.ok()) return booked.status();
        if (booked->has_value() && SameRecord((*booked)->record, *c.record)) {
          c.outcome = IngestOutcome::duplicate;
        }
      }
      if (!c.passed_proofs) continue;
      c.outcome = IngestOutcome::accepted;
      CITYCARD_RETURN_IF_ERROR(Process(g, c, ti->second));
    }
    if (!g.transfers.empty()) {
      auto outcomes = OnlyTapTransfers(g.transfers) ? ledger.ApplyNew(g.transfers)
                                                    : ledger.Apply(g.transfers);
      if (!outcomes.ok()) return outcomes.status();
      for (size_t t = 0; t < outcomes->size(); ++t) {
        if (!IsSuccess((*outcomes)[t])) failed_postings->push_back(g.transfer_owner[t]);
      }
      if (!failed_postings->empty()) {
        return Status::Refused("posting_declined", "a tap's transfer was declined");
      }
    }
    CITYCARD_RETURN_IF_ERROR(FinishGroup(g));
    for (const auto& [terminal_id, max] : g.terminal_max) {
      CITYCARD_RETURN_IF_ERROR(registry.RaiseTerminalCounter(terminal_id, max));
    }
    return registry.Commit();
  };
  Status status = run();
  if (!status.ok()) {
    // The failure is what matters; a rollback failing on a broken connection adds nothing.
    (void)registry.Rollback();
    if (!failed_postings->empty()) return Status::Ok();
    return status;
  }
  joined.Committed();
  return Status::Ok();
}

// The terminal's counter (after step 1: the terminal really sent this record, whatever the
// later checks say): a jump records the counters in between as possibly lost uploads; a
// counter below the highest one fills such a gap.
Status IngestEngine::Impl::TerminalCounter(IngestGroup& g, const IngestCandidate& c,
                                           const Terminal& terminal) {
  const std::string& id = terminal.id;
  uint32_t ttc = c.record->terminal_counter;
  auto it = g.terminal_max.find(id);
  int64_t max = it != g.terminal_max.end() ? it->second : terminal.counter;
  if (ttc > max) {
    if (max > 0 && ttc > max + 1) {
      AddGap(g, GapKind::terminal, 0, id, static_cast<uint32_t>(max + 1), ttc - 1);
      RaiseAlert(g, AlertKind::lost_uploads, 0, id,
                 fmt::format("terminal counter jumped from {} to {}: {} uploads possibly lost",
                             max, ttc, ttc - 1 - max));
    }
    g.terminal_max[id] = ttc;
    return Status::Ok();
  }
  return FillGap(g, GapKind::terminal, 0, id, ttc);
}

Result<std::optional<StoredTap>> IngestEngine::Impl::BookedByTerminal(IngestGroup& g,
                                                                      const TapRecord& r,
                                                                      const Terminal& terminal) {
  auto gi = g.by_terminal.find({r.terminal_id, r.terminal_counter});
  if (gi != g.by_terminal.end()) return std::optional<StoredTap>(g.write.taps[gi->second]);
  // Every booked counter is at most the terminal's stored highest one (raised in the same
  // transaction that books), so a counter above it cannot be booked: no lookup needed.
  if (r.terminal_counter > terminal.counter) return std::optional<StoredTap>();
  return taps.FindByTerminalCounter(r.terminal_id, r.terminal_counter);
}

Result<std::optional<StoredTap>> IngestEngine::Impl::BookedByCard(IngestGroup& g,
                                                                  uint64_t card_no,
                                                                  uint32_t ctc) {
  if (auto gi = g.by_card.find(card_no); gi != g.by_card.end()) {
    auto it = std::lower_bound(gi->second.begin(), gi->second.end(), std::make_pair(ctc, size_t{0}));
    if (it != gi->second.end() && it->first == ctc) {
      return std::optional<StoredTap>(g.write.taps[it->second]);
    }
  }
  return taps.FindByCardCounter(card_no, ctc);
}

void IngestEngine::Impl::RaiseAlert(IngestGroup& g, AlertKind kind, uint64_t card_no,
                                    const std::string& terminal, std::string detail) {
  if (detail.size() > kAlertDetailBytesMax) detail.resize(kAlertDetailBytesMax);
  Alert a;
  a.kind = kind;
  a.card_no = card_no;
  a.terminal_id = terminal;
  a.time_ms = clock.NowMs();
  a.detail = std::move(detail);
  g.write.alerts.push_back(std::move(a));
}

// Which purse pays: the card's own, or, once a replaced card's balance has moved, the purse
// its balance moved to (following a replacement of the replacement, if any).
Result<uint64_t> IngestEngine::Impl::ChargedCard(const IngestCardEntry& entry) {
  const Card* card = &entry.card;
  IngestCardRef next;
  for (int depth = 0; depth < kReplacementDepthMax; ++depth) {
    if (card->status != CardStatus::replaced || card->balance_moved_s == 0 ||
        card->replaced_by.empty()) {
      return CardNumberToInt(card->card_no);
    }
    auto loaded = LoadCard(CardNumberToInt(card->replaced_by));
    if (!loaded.ok()) return loaded.status();
    if (*loaded == nullptr) break;
    next = std::move(*loaded);
    card = &next->card;
  }
  return Status::Internal("replacement_chain_broken",
                          fmt::format("card {}: replacement chain too long or broken",
                                      entry.card.card_no));
}

// The most the card can hold before its transaction `ctc`, as the ledger sees it: the
// purse's posted balance and pending credits (loads in flight), loads voided by timeout that
// the card may still hold, what this group already booked, and, for a record arriving after
// later ones, what the card paid after it (docs/ingest.md "Shadow balance").
Result<int64_t> IngestEngine::Impl::ShadowBound(IngestGroup& g, uint64_t card_no, uint32_t ctc,
                                                const std::optional<CardCounterState>& state) {
  auto account = ledger.LookupAccount(AccountIdFor(AccountKind::card_purse, card_no));
  if (!account.ok() && account.status().kind() != Kind::not_found) return account.status();
  // A card without a purse cannot be posted to; the posting will be declined and retried.
  if (!account.ok()) account = Account{};
  int64_t bound = account->balance_fen() + account->credits_pending + ExpiredOpenFen(g, card_no);
  auto di = g.purse_delta_fen.find(card_no);
  if (di != g.purse_delta_fen.end()) bound += di->second;
  if (state.has_value() && ctc < state->last_counter) {
    auto after = taps.SumPaidAfter(card_no, ctc);
    if (!after.ok()) return after.status();
    bound += *after;
    if (auto gi = g.by_card.find(card_no); gi != g.by_card.end()) {
      auto it = std::upper_bound(gi->second.begin(), gi->second.end(),
                                 std::make_pair(ctc, SIZE_MAX));
      for (; it != gi->second.end(); ++it) {
        // Booked in this group, so not yet in the store's sum.
        const TapRecord& later = g.write.taps[it->second].record;
        if (later.type != TapType::load) bound += later.amount_fen;
      }
    }
  }
  return bound;
}

// Steps 3 to 7 for one record that passed its proofs.
Status IngestEngine::Impl::Process(IngestGroup& g, IngestCandidate& c, const Terminal& terminal) {
  const TapRecord& r = *c.record;
  const IngestCardEntry& entry = *c.card;
  const uint64_t card_no = r.card_no;

  // 3. Duplicate or conflict on (terminal, TTC).
  auto booked = BookedByTerminal(g, r, terminal);
  if (!booked.ok()) return booked.status();
  if (booked->has_value()) {
    if (SameRecord((*booked)->record, r)) {
      c.outcome = IngestOutcome::duplicate;
    } else {
      c.outcome = IngestOutcome::conflict;
      RaiseAlert(g, AlertKind::conflict, card_no, r.terminal_id,
                 fmt::format("terminal counter {} already booked for card {} counter {}; "
                             "another record (card {} counter {}) came under it",
                             r.terminal_counter, CardText((*booked)->record.card_no),
                             (*booked)->record.card_counter, CardText(card_no), r.card_counter));
    }
    return Status::Ok();
  }

  // 4. The card's counter.
  auto state = CounterState(g, card_no);
  if (!state.ok()) return state.status();
  bool forward = !state->has_value() || r.card_counter > (*state)->last_counter;
  if (!forward) {
    uint32_t last = (*state)->last_counter;
    if (last - r.card_counter > config.card_counter_window) {
      c.outcome = IngestOutcome::card_counter_too_old;
      return Status::Ok();
    }
    auto same = BookedByCard(g, card_no, r.card_counter);
    if (!same.ok()) return same.status();
    if (same->has_value()) {
      c.outcome = IngestOutcome::cloned_card;
      RaiseAlert(g, AlertKind::cloned_card, card_no, r.terminal_id,
                 fmt::format("card counter {} already booked from terminal {} counter {}; "
                             "another transaction came from terminal {} counter {}",
                             r.card_counter, (*same)->record.terminal_id,
                             (*same)->record.terminal_counter, r.terminal_id,
                             r.terminal_counter));
      return Status::Ok();
    }
  }

  // 5. Shadow balance. The record right after a known one must start from the balance that
  // one left; any other must stay within what the ledger says the card can hold.
  auto charged = ChargedCard(entry);
  if (!charged.ok()) return charged.status();
  std::optional<int64_t> expected;  // the exact balance before, when the predecessor is known
  if (state->has_value() && r.card_counter == (*state)->last_counter + 1) {
    expected = (*state)->last_balance_after_fen;
  } else if (!forward && r.card_counter > 0) {
    auto prev = BookedByCard(g, card_no, r.card_counter - 1);
    if (!prev.ok()) return prev.status();
    if (prev->has_value()) expected = BalanceAfter((*prev)->record);
  }
  bool forged = false;
  std::string why;
  if (expected.has_value() && r.balance_before_fen > *expected) {
    forged = true;
    why = fmt::format("balance before {} fen at counter {}, but the previous record left {} fen",
                      r.balance_before_fen, r.card_counter, *expected);
  } else if (!expected.has_value() && *charged == card_no &&
             entry.card.status != CardStatus::closed) {
    // A closed card's purse was refunded, so the ledger says nothing about its chip; a
    // replaced card's balance moved away: for both only the chain check above applies.
    auto bound = ShadowBound(g, card_no, r.card_counter, *state);
    if (!bound.ok()) return bound.status();
    if (r.balance_before_fen > *bound) {
      forged = true;
      why = fmt::format("balance before {} fen at counter {}, but the card can hold at most {} fen",
                        r.balance_before_fen, r.card_counter, *bound);
    }
  }
  if (forged) {
    c.outcome = IngestOutcome::forged_balance;
    RaiseAlert(g, AlertKind::forged_balance, card_no, r.terminal_id, why);
    if (!entry.deny.has_value() || entry.deny->reason != DenyReason::fraud) {
      g.deny_adds[card_no] = DenyReason::fraud;
    }
    return Status::Ok();
  }
  bool alert = false;
  if (expected.has_value() && r.balance_before_fen < *expected) {
    RaiseAlert(g, AlertKind::balance_mismatch, card_no, r.terminal_id,
               fmt::format("balance before {} fen at counter {}, but the previous record left {} fen",
                           r.balance_before_fen, r.card_counter, *expected));
  }

  // 6. Card status.
  if (entry.card.status == CardStatus::closed) {
    c.outcome = IngestOutcome::card_closed;
    RaiseAlert(g, AlertKind::closed_card_tap, card_no, r.terminal_id,
               fmt::format("closed card tapped at {} for {} fen", FormatLocalTime(r.time_s),
                           r.amount_fen));
    return Status::Ok();
  }
  if (entry.deny.has_value()) {
    auto knew = TerminalKnewAt(r.terminal_id, entry.deny->version);
    if (!knew.ok()) return knew.status();
    if (knew->has_value() && r.time_s * 1000 >= **knew) {
      AlertKind kind = entry.card.status == CardStatus::blocked    ? AlertKind::blocked_card_tap
                       : entry.card.status == CardStatus::replaced ? AlertKind::replaced_card_tap
                                                                   : AlertKind::denylisted_card_tap;
      RaiseAlert(g, kind, card_no, r.terminal_id,
                 fmt::format("tap at {} after the terminal held denylist version {} listing the "
                             "card ({}); honoured",
                             FormatLocalTime(r.time_s), entry.deny->version,
                             DenyReasonName(entry.deny->reason)));
      alert = true;
    }
  }

  // Re-pricing (core/tap_pricer.h): the tap is booked at what the card paid in any case.
  if (pricer != nullptr && r.type != TapType::load) {
    auto disputed = Reprice(g, r);
    if (!disputed.ok()) return disputed.status();
    alert = alert || *disputed;
  }

  // 7. Post.
  Id128 transfer_id;
  if (r.type == TapType::load) {
    size_t before = g.transfers.size();
    auto matched = BookLoad(g, c, *charged);
    if (!matched.ok()) return matched.status();
    if (!*matched) {
      c.outcome = IngestOutcome::unmatched_load;
      RaiseAlert(g, AlertKind::unmatched_load, card_no, r.terminal_id,
                 fmt::format("load of {} fen at counter {} from balance {} fen matches no "
                             "authorised top-up",
                             r.amount_fen, r.card_counter, r.balance_before_fen));
      return Status::Ok();
    }
    if (g.transfers.size() > before) transfer_id = g.transfers.back().id;
  } else if (r.amount_fen > 0) {
    auto op = LoadOperator(r.operator_id);
    if (!op.ok()) return op.status();
    if (!op->has_value()) {
      return Status::Internal("operator_missing",
                              fmt::format("terminal {} belongs to operator {}, which is missing",
                                          r.terminal_id, r.operator_id));
    }
    Transfer t;
    // One digest per terminal and group rather than one per tap.
    auto [base, fresh] = g.tap_id_bases.try_emplace(r.terminal_id);
    if (fresh) base->second = TapTransferIdBase(digester, r.terminal_id);
    t.id = TapTransferIdAt(base->second, r.terminal_counter);
    t.debit_account_id = AccountIdFor(AccountKind::card_purse, *charged);
    t.credit_account_id = (*op)->payable_account_id;
    t.amount_fen = r.amount_fen;
    t.code = static_cast<uint16_t>(TransferCode::tap);
    t.flags = kTransferIgnoreFloor;
    t.user_data_64 = card_no;
    t.user_data_32 = r.card_counter;
    transfer_id = t.id;
    g.transfers.push_back(t);
    g.transfer_owner.push_back(c.position);
    g.purse_delta_fen[*charged] -= r.amount_fen;
    g.purses_touched.push_back(*charged);
  }

  // Booked: remember it for the rest of the group.
  const int64_t now_ms = clock.NowMs();
  StoredTap tap;
  tap.record = r;
  tap.received_ms = now_ms;
  tap.clearing_day = ClearingDay(now_ms / 1000, config.clearing_cutoff_s);
  tap.late = ClearingDay(r.time_s, config.clearing_cutoff_s) < tap.clearing_day;
  tap.outcome = alert ? IngestOutcome::accepted_with_alert
                : tap.late ? IngestOutcome::accepted_late
                           : IngestOutcome::accepted;
  tap.charged_card_no = *charged;
  tap.transfer_id = transfer_id;
  c.outcome = tap.outcome;

  if (forward) {
    if (state->has_value() && r.card_counter > (*state)->last_counter + 1) {
      uint32_t from = (*state)->last_counter + 1;
      AddGap(g, GapKind::card, card_no, "", from, r.card_counter - 1);
      RaiseAlert(g, AlertKind::missing_card_taps, card_no, r.terminal_id,
                 fmt::format("card counter jumped from {} to {}: {} taps not uploaded yet",
                             (*state)->last_counter, r.card_counter,
                             r.card_counter - from));
    }
    g.counters[card_no] = CardCounterState{card_no, r.card_counter, BalanceAfter(r),
                                           r.tac_key_version};
  } else {
    CITYCARD_RETURN_IF_ERROR(FillGap(g, GapKind::card, card_no, "", r.card_counter));
  }
  DayOperatorTotals& day = g.day[{tap.clearing_day, r.operator_id}];
  day.clearing_day = tap.clearing_day;
  day.operator_id = r.operator_id;
  if (r.type == TapType::load) {
    day.loads += 1;
    day.load_fen += r.amount_fen;
  } else {
    day.taps += 1;
    day.full_fare_fen += r.full_fare_fen;
    day.concession_fen += r.concession_fen;
    day.transfer_discount_fen += r.transfer_discount_fen;
    day.paid_fen += r.amount_fen;
    day.late_taps += tap.late ? 1 : 0;
  }
  if (r.type != TapType::load) CITYCARD_RETURN_IF_ERROR(ProveLoadsByTap(*this, g, c));
  g.by_terminal[{r.terminal_id, r.terminal_counter}] = g.write.taps.size();
  AddCardTap(g.by_card[card_no], r.card_counter, g.write.taps.size());
  g.write.taps.push_back(std::move(tap));
  return Status::Ok();
}

// ---- Gaps ------------------------------------------------------------------------------

Result<GapSet*> IngestEngine::Impl::Gaps(IngestGroup& g, GapKind kind, uint64_t card_no,
                                         const std::string& term) {
  GapSet& set = g.gaps[GapKey{kind, card_no, term}];
  if (!set.loaded) {
    auto stored = taps.LoadGaps(kind, card_no, term);
    if (!stored.ok()) return stored.status();
    set.original = *stored;
    // Gaps this group added before the set was loaded stay in `current`.
    set.current.insert(set.current.begin(), stored->begin(), stored->end());
    set.loaded = true;
  }
  return &set;
}

void IngestEngine::Impl::AddGap(IngestGroup& g, GapKind kind, uint64_t card_no,
                                const std::string& term, uint32_t from, uint32_t to) {
  CounterGap gap;
  gap.kind = kind;
  gap.card_no = card_no;
  gap.terminal_id = term;
  gap.from = from;
  gap.to = to;
  gap.found_ms = clock.NowMs();
  g.gaps[GapKey{kind, card_no, term}].current.push_back(gap);
}

Status IngestEngine::Impl::FillGap(IngestGroup& g, GapKind kind, uint64_t card_no,
                                   const std::string& term, uint32_t counter) {
  auto set = Gaps(g, kind, card_no, term);
  if (!set.ok()) return set.status();
  std::vector<CounterGap>& current = (*set)->current;
  for (size_t i = 0; i < current.size(); ++i) {
    CounterGap gap = current[i];
    if (counter < gap.from || counter > gap.to) continue;
    current.erase(current.begin() + static_cast<std::ptrdiff_t>(i));
    if (gap.from < counter) {
      CounterGap left = gap;
      left.to = counter - 1;
      current.push_back(left);
    }
    if (counter < gap.to) {
      CounterGap right = gap;
      right.from = counter + 1;
      current.push_back(right);
    }
    break;
  }
  return Status::Ok();
}

// ---- Finishing a group -----------------------------------------------------------------

Status IngestEngine::Impl::FinishGroup(IngestGroup& g) {
  // A purse the group took below zero goes on the denylist; one a load brought back to zero
  // or more comes off it (when it was listed for that reason).
  SortUnique(g.purses_touched);
  SortUnique(g.purses_credited);
  for (uint64_t card_no : g.purses_touched) {
    auto account = ledger.LookupAccount(AccountIdFor(AccountKind::card_purse, card_no));
    if (!account.ok()) return account.status();
    if (account->balance_fen() >= 0) continue;
    std::string text = CardText(card_no);
    auto listed = registry.DenylistFind(text);
    if (!listed.ok()) return listed.status();
    if (listed->has_value()) continue;
    auto version = registry.DenylistAdd(text, DenyReason::negative_balance);
    if (!version.ok()) return version.status();
    RaiseAlert(g, AlertKind::negative_balance, card_no, "",
               fmt::format("purse at {} fen after offline taps: denylisted (version {}) until "
                           "topped up",
                           account->balance_fen(), *version));
  }
  for (uint64_t card_no : g.purses_credited) {
    auto account = ledger.LookupAccount(AccountIdFor(AccountKind::card_purse, card_no));
    if (!account.ok()) return account.status();
    if (account->balance_fen() < 0) continue;
    std::string text = CardText(card_no);
    auto listed = registry.DenylistFind(text);
    if (!listed.ok()) return listed.status();
    if (listed->has_value() && (*listed)->reason == DenyReason::negative_balance) {
      auto version = registry.DenylistRemove(text);
      if (!version.ok()) return version.status();
    }
  }
  for (const auto& [card_no, reason] : g.deny_adds) {
    auto version = registry.DenylistAdd(CardText(card_no), reason);
    if (!version.ok()) return version.status();
  }
  for (auto& [key, set] : g.gaps) {
    if (set.loaded) {
      for (const CounterGap& gap : set.original) g.write.gaps_removed.push_back(gap);
    }
    for (const CounterGap& gap : set.current) g.write.gaps_added.push_back(gap);
  }
  for (auto& [key, totals] : g.day) g.write.day_deltas.push_back(totals);
  for (auto& [key, topup] : g.topups) g.write.topups.push_back(topup);
  if (g.write.empty()) return Status::Ok();
  return taps.Write(g.write);
}

void IngestEngine::Impl::MergeCaches(IngestGroup& g) {
  for (auto& [card_no, state] : g.counters) {
    if (counters.size() >= config.card_cache_max) counters.clear();
    counters[card_no] = state;
  }
  for (auto& [key, topup] : g.topups) {
    if (topup.status == TopupStatus::pending || topup.status == TopupStatus::expired) {
      open_topups.Put(topup);
    } else {
      open_topups.Erase(key);
    }
  }
}

}  // namespace citycard
