// Tap ingest: what happens to every record a reader uploads, and to online top-ups. Pure logic
// over the registry (core/registry.h), the ledger (core/ledger.h), the tap store
// (core/tap_store.h) and a tap authenticator (core/tap_authenticator.h). The checks, their
// order, the shadow balance, gaps, late taps, replacement and top-ups are specified in
// docs/ingest.md; this header is the contract.
//
// Group commit: Ingest takes the batches of many sessions at once. It verifies every MAC and
// TAC before any storage transaction, then books the whole group in ONE storage transaction
// (registry + ledger + tap store on one connection) with ONE Ledger::Apply, and returns only
// when that transaction is durable. Nothing of a group is visible or acknowledged before.
//
// Not thread-safe: one engine per store connection, used from one thread (the server's writer
// thread). It must be the only writer of the tap tables; it caches per-card and per-terminal
// state in memory and keeps those caches right across its own commits and across registry
// changes made elsewhere (it follows the denylist version, which every card status change
// moves).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/ingest_outcome.h"
#include "core/ledger.h"
#include "core/ledger_store.h"
#include "core/registry.h"
#include "core/status.h"
#include "core/tap_authenticator.h"
#include "core/tap_store.h"

namespace citycard {

class TapPricer;  // core/tap_pricer.h

// How far back (in card counters) below the highest booked counter a record may still come;
// anything older is refused (card_counter_too_old).
inline constexpr uint32_t kCardCounterWindowDefault = 1'000;
// How long an online top-up stays pending before it is voided (unless proven).
inline constexpr int64_t kTopupTimeoutSecondsDefault = 86'400;
// How many cards' registry and counter state the engine keeps in memory; beyond it the cache
// is emptied and refilled (correct, only slower).
inline constexpr size_t kCardCacheMaxDefault = 1u << 20;
// The most records one Ingest call takes (one storage transaction, one ledger Apply).
inline constexpr size_t kIngestRecordsMax = kTransferBatchMax / 2;
// The most top-up asks one AuthoriseTopups call takes (one pending transfer each, one Apply).
inline constexpr size_t kTopupGroupMax = 4'096;
// How many times a replaced card's chain of replacements is followed to find the purse.
inline constexpr int kReplacementDepthMax = 8;
// The purse limit of an online top-up, as the card office's (core/card_office.h).
inline constexpr int64_t kTopupPurseBalanceFenMaxDefault = 100'000;

struct IngestConfig {
  int64_t clearing_cutoff_s = 0;  // clearing days start this long after local midnight
  uint32_t card_counter_window = kCardCounterWindowDefault;
  int64_t topup_timeout_s = kTopupTimeoutSecondsDefault;
  int64_t purse_balance_max_fen = kTopupPurseBalanceFenMaxDefault;
  size_t card_cache_max = kCardCacheMaxDefault;
};

// One uploaded batch: the authenticated session's terminal and its decoded records (the
// server decodes them; a record that fails ValidateTapRecord is still refused here).
struct UploadedBatch {
  std::string terminal_id;
  std::vector<TapRecord> records;
};

// The proofs of one batch checked ahead of its group (PrecheckProofs), on another thread than
// the engine's, so that the writer need not spend its time on MACs and TACs. Ingest uses a
// verdict only where it is exactly the one it would reach itself: a TAC verdict always (it
// depends on the record and the issuer's card keys alone), a terminal MAC verdict only while
// the terminal's keys are still those the check used (a key rotated or revoked since, and
// anything not checked, is checked again by the engine).
struct RecordProofs {
  bool checked = false;  // false: not checked ahead (an invalid record, another terminal's)
  TerminalMacVerdict mac = TerminalMacVerdict::mac_mismatch;
  TacVerdict tac = TacVerdict::mismatch;  // checked only when mac is valid
};
// A card as ingest needs it: the registry record and its denylist entry, if any.
struct IngestCardEntry {
  Card card;
  std::optional<DenylistEntry> deny;
};
// Shared between the engine's card cache, the candidates of a group and the cards read ahead
// (CardPrefetcher), and never changed once made: a card tapping many times costs no copy of
// its record per tap (a change is a new entry read from the registry).
using IngestCardRef = std::shared_ptr<const IngestCardEntry>;

// A batch's cards read ahead (CardPrefetcher), stamped with the registry state they were read
// in. Ingest takes a card from here, instead of reading the registry itself, only when both
// stamps are still the registry's at its own read: then no card row and no denylist entry
// has changed since (every UPDATE or DELETE of a card moves RegistryStore::CardChanges, every
// denylist change the denylist version), so the entry is the one it would read.
struct PrefetchedCards {
  int64_t denylist_version = -1;  // -1: nothing was read ahead
  int64_t card_changes = -1;
  // One per record of the batch; nullptr where no entry was read (an unauthentic record, a
  // card the registry lacks, a replaced card, a failed read): Ingest reads those itself.
  std::vector<IngestCardRef> cards;
  // The purse accounts of those cards (CardPrefetcher::ReadPursesToo), as committed, read in
  // the read transaction of the cards, which began after the ledger's CacheRemovals() gave
  // `account_removals`: Ingest offers them to its ledger (Ledger::OfferAccounts).
  bool purses_read = false;
  uint64_t account_removals = 0;
  std::vector<AccountRecord> purses;
};

struct PrecheckedProofs {
  bool checked = false;                    // false: nothing was checked ahead
  std::vector<TerminalKey> terminal_keys;  // the terminal's keys the MACs were checked under
  std::vector<RecordProofs> records;       // one per record of the batch
  PrefetchedCards cards;                   // empty unless a CardPrefetcher read them
};

// Checks the terminal MAC of every record of a batch under `terminal`'s keys (the terminal
// of the batch's session as the registry held it) and the TAC of each whose MAC is valid,
// the way Ingest would. Reads nothing from the store: it may run on any thread, with an
// authenticator of the same keys that this thread alone uses. Records that fail
// ValidateTapRecord or name another terminal are left unchecked (Ingest refuses them).
PrecheckedProofs PrecheckProofs(TapAuthenticator& authenticator, const Terminal& terminal,
                                std::span<const TapRecord> records);

// Reads ahead, for the group commit, the cards of the records whose terminal MAC was found
// valid ahead (the records Ingest would look their card up for), on a thread and a registry
// connection of its own, so that the writer need not: at millions of cards nearly every tap's
// card is cold, and its registry reads were a fifth of the writer's time (docs/benchmarks.md,
// session of 06:22, 2026-11-28). It keeps the entries it read (at most `cache_max`) for as long
// as the registry's stamps stay the same, so that a small city's cards are read once.
// Not thread-safe: one prefetcher per thread, with a store used by that thread alone.
class CardPrefetcher {
 public:
  CardPrefetcher(RegistryStore& registry, size_t cache_max = kCardCacheMaxDefault);

  // Fills proofs->cards for `records` (the batch PrecheckProofs checked into `proofs`). On a
  // failed read it leaves proofs->cards empty and returns the failure: Ingest then reads the
  // cards itself, so a failure here costs time, never a wrong answer.
  Status Prefetch(std::span<const TapRecord> records, PrecheckedProofs* proofs);

  // From now on Prefetch also reads the purse account of each card it reads from the
  // registry (the ledger's row, never kept here: a purse changes with every tap; a card it
  // kept was seen lately, and its purse is most likely cached by the writer) over
  // `ledger_store`, a store on the registry's connection, under `ledger`'s CacheRemovals()
  // read before the read transaction begins. `ledger` is the writer's engine, of which only
  // that count is read here (it is safe from any thread); both must outlive the prefetcher.
  // At millions of cards the writer read nearly every tap's purse from the file
  // (docs/benchmarks.md, session of 15:59, 2026-11-28).
  void ReadPursesToo(LedgerStore& ledger_store, const Ledger& ledger);

 private:
  Status Refresh();  // reads the stamps, dropping the entries they make stale
  // The kept entry, or one read from the registry (then *fresh is set).
  Result<IngestCardRef> Find(uint64_t card_no, bool* fresh);
  // Reads the purse accounts `ids` (sorted here) into `out`.
  Status ReadPurses(std::vector<uint64_t>& ids, PrefetchedCards& out);

  RegistryStore& registry_;
  LedgerStore* ledger_store_ = nullptr;  // ReadPursesToo's, or none
  const Ledger* ledger_ = nullptr;
  size_t cache_max_;
  int64_t denylist_version_ = -1;  // -1: not read yet
  int64_t card_changes_ = -1;
  std::unordered_map<uint64_t, IngestCardRef> cache_;
};

// ---- Online top-up ----

// What a kiosk asks (terminals/messages.h TopupRequest, after the card proof was checked).
struct TopupAsk {
  std::string terminal_id;
  uint64_t request_id = 0;
  uint64_t card_no = 0;
  uint32_t card_counter = 0;  // the card's CTC before the load
  int64_t balance_before_fen = 0;
  int64_t amount_fen = 0;
};

enum class TopupOutcome : uint8_t {
  authorised = 0,
  card_not_found = 1,
  card_blocked = 2,         // blocked, replaced, closed or denylisted
  card_expired = 3,
  amount_out_of_range = 4,  // zero, negative, above a transfer's maximum or the purse limit
  duplicate_request = 5,    // the request id was used for another top-up
  // Confirmations.
  confirmed = 6,            // the pending transfer is posted (or was before: idempotent)
  authorisation_not_found = 7,
  authorisation_expired = 8,  // voided before the confirmation (and not proven since)
  amount_mismatch = 9,      // the load record is not the authorised load
  bad_record = 10,          // the load record failed its checks (MAC, TAC, …); see record_outcome
};
std::string_view TopupOutcomeName(TopupOutcome outcome);

struct TopupDecision {
  TopupOutcome outcome = TopupOutcome::authorised;
  uint64_t authorisation_id = 0;
  int64_t amount_fen = 0;
  int64_t balance_after_fen = 0;  // what the card will hold after the load
  LoadMacBytes host_mac{};
};

struct TopupConfirmResult {
  TopupOutcome outcome = TopupOutcome::confirmed;
  IngestOutcome record_outcome = IngestOutcome::accepted;
};

// The id of a tap's transfer, from the tap's identity (terminal, TTC): with
// t = DeriveTransferId(digester, "citycard.tap", "<terminal>") (core/account_plan.h), hi is
// t.hi and lo is the TTC in the upper 32 bits and the lower 32 bits of t.lo. So a terminal's
// ids sort by TTC, and a group's new ids land next to each other in the ledger's unique index
// (a few pages per terminal) instead of on a random page each (docs/ingest.md "Posting").
// Two terminals' ids can only meet if 96 bits of their hashes do.
Id128 TapTransferId(const Digester& digester, std::string_view terminal_id, uint32_t ttc);
// The two halves of TapTransferId, for a caller making many ids of one terminal: the
// terminal's hash (one digest), then each TTC's id from it (no digest).
// TapTransferIdAt(TapTransferIdBase(d, t), ttc) == TapTransferId(d, t, ttc).
Id128 TapTransferIdBase(const Digester& digester, std::string_view terminal_id);
Id128 TapTransferIdAt(const Id128& base, uint32_t ttc);

class IngestEngine {
 public:
  // Everything passed must outlive the engine. registry, ledger and taps share one storage
  // transaction (RegistryStore::Begin).
  IngestEngine(RegistryStore& registry, Ledger& ledger, TapStore& taps,
               TapAuthenticator& authenticator, const Digester& digester, const Clock& clock,
               IngestConfig config);
  ~IngestEngine();
  IngestEngine(const IngestEngine&) = delete;
  IngestEngine& operator=(const IngestEngine&) = delete;

  // Ingests a group of batches: one outcome per record, per batch, in order. Ok means every
  // booked record, its transfer, alerts and denylist changes are durable. Failures (then
  // nothing of the group is stored; the caller answers retry_later): Kind::bad_input
  // "too_many_records" (more than kIngestRecordsMax); store failures (Kind::internal).
  Result<std::vector<std::vector<IngestOutcome>>> Ingest(std::span<const UploadedBatch> batches);
  // The same with the proofs of each batch checked ahead (PrecheckProofs): `proofs` is empty
  // or holds one entry per batch, in order (anything else is a programmer error). Outcomes
  // are exactly those of Ingest(batches).
  Result<std::vector<std::vector<IngestOutcome>>> Ingest(std::span<const UploadedBatch> batches,
                                                         std::span<const PrecheckedProofs> proofs);

  // Online top-up, phase one: checks the card and amount, books a pending transfer top-up
  // clearing -> purse (timeout IngestConfig::topup_timeout_s) and returns the host's load
  // authorisation. The same request again returns the same authorisation; another request
  // under the same (terminal, request id) is duplicate_request. Failures: store (internal).
  Result<TopupDecision> AuthoriseTopup(const TopupAsk& ask);

  // Online top-up, phase one, for a group of asks at once (the server's group commit,
  // docs/ingest.md "Grouped top-up authorisations"): every new authorisation of the group is
  // booked in ONE storage transaction, durable when this returns. Each ask gets exactly what
  // AuthoriseTopup would have given it had the asks come one by one in this order: the same
  // request twice in the group gets the same authorisation twice, another top-up under a
  // request id used earlier in the group is duplicate_request, and the purse limit counts the
  // group's earlier authorisations. One answer per ask, in order; an ask's own failure (its
  // pending transfer declined by the ledger: Kind::internal "topup_declined"; its card key
  // missing: "card_key_missing"; a failed read) books nothing for it and leaves the others.
  // `in_transaction` (may be empty) is called inside the group's transaction, before the
  // ledger's changes, for the caller's writes that must be durable with the group (the
  // server's identity-check records); it may be called again after a rollback (when the
  // ledger declined an ask, the group is booked again without it): only the writes of its
  // last call are committed. Failures (then nothing of the group is stored or booked and no
  // ask may be answered as authorised): Kind::bad_input "too_many_topups" (more than
  // kTopupGroupMax asks); `in_transaction`'s failure; the commit's (Kind::internal).
  Result<std::vector<Result<TopupDecision>>> AuthoriseTopups(
      std::span<const TopupAsk> asks, const std::function<Status()>& in_transaction = {});

  // Online top-up, phase two: the card's load record (type load) as the kiosk received it,
  // for the authorisation `authorisation_id`. The record goes through every check of a tap;
  // booked, it posts the pending transfer. A confirmation repeated is confirmed again
  // (nothing moves). Failures: store (internal).
  Result<TopupConfirmResult> ConfirmTopup(std::string_view terminal_id, uint64_t authorisation_id,
                                         ByteView record);

  // Voids the pending transfers of top-ups whose timeout passed (Ledger::ExpirePending), then
  // marks each such top-up expired, or, when a booked record already proves the card holds
  // the money, books it as recovered, all in one storage transaction. Returns how many
  // top-ups changed. Failures (then nothing is voided or marked): store (internal),
  // "topup_declined" when the ledger declines a recovered top-up's transfer.
  Result<size_t> ExpireTopups();

  // A terminal said (heartbeat) that it holds denylist `version` at its own time
  // terminal_time_ms: from then on, a tap of a card listed at or before that version is one
  // the terminal should have refused (docs/ingest.md, "Card status").
  Status NoteTerminalDenylistVersion(std::string_view terminal_id, int64_t version,
                                     int64_t terminal_time_ms);

  // Drops every in-memory cache (tests; after an outside change the engine cannot see).
  void ClearCaches();

  // Re-prices every tap booked from now on with `pricer` (core/tap_pricer.h), inside the
  // group's storage transaction: a difference from what the card paid raises a fare_dispute
  // alert (outcome accepted_with_alert) and the tap stays booked at what the card paid.
  // nullptr (the default): taps are not re-priced. The pricer must outlive its use here.
  void SetTapPricer(TapPricer* pricer);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace citycard
