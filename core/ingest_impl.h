// Internal to core/ingest.cc and core/topup.cc: the engine's state and the per-group working
// set. Not part of the public surface; include core/ingest.h instead.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <memory_resource>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "core/ingest.h"

namespace citycard {

// One record on its way through the checks.
struct IngestCandidate {
  size_t position = 0;  // in the group's list of candidates
  size_t batch = 0;
  size_t index = 0;
  // In the group's batches, which outlive the candidates (IngestEngine::Ingest's span): a
  // record is not copied to be checked.
  const TapRecord* record = nullptr;
  IngestOutcome outcome = IngestOutcome::accepted;
  bool authentic = false;        // passed step 1 (the terminal's MAC): the terminal sent it
  bool passed_proofs = false;    // passed steps 1 and 2
  bool excluded = false;         // refused by a failed posting in an earlier attempt
  IngestCardRef card;  // set once the card was found (step 2)
};

// The gaps of one card or terminal as a group changes them.
struct GapSet {
  bool loaded = false;                 // `original` holds the store's gaps of the key
  std::vector<CounterGap> original;    // as stored, before this group
  std::vector<CounterGap> current;     // after this group (loaded) or only new ones
};
using GapKey = std::tuple<GapKind, uint64_t, std::string>;

// Hash of a (terminal id, TTC) key of IngestGroup::by_terminal.
struct TerminalCounterHash {
  size_t operator()(const std::pair<std::string, uint32_t>& key) const {
    // The TTC spread by the golden-ratio multiplier, so that one terminal's consecutive
    // counters do not fill neighbouring buckets of the same string hash.
    return std::hash<std::string>{}(key.first) ^ (size_t{key.second} * 0x9e3779b97f4a7c15ULL);
  }
};

// The first block of a group's arena (IngestGroup::arena); later blocks grow geometrically.
inline constexpr size_t kGroupArenaInitialBytes = size_t{1} << 16;

// The taps of one card booked in a group, ascending by CTC: (CTC, index into
// IngestGroup::write.taps). A card taps a few times a group, and its counters come in order,
// so this is almost always a short vector appended to; a sorted vector rather than one node
// of an ordered map per tap (a group of 32,768 taps built and freed such a map every commit).
using CardTapsInGroup = std::pmr::vector<std::pair<uint32_t, size_t>>;  // in the group's arena

// A top-up's key: (terminal, request id).
using TopupKey = std::pair<std::string, uint64_t>;

// The open (pending or expired) top-ups, by key and by card. Every booked tap looks up its
// card's open top-ups (a load to match, a later record proving one, the expired amounts a
// balance may include), so that lookup must not walk every open top-up: they grow with the
// kiosks' unconfirmed loads, and expired ones stay until a record recovers them, so a walk per
// tap would make ingest slower the longer the system runs.
class OpenTopups {
 public:
  void Clear();
  // Adds `t`, or replaces the top-up of the same key.
  void Put(TopupRecord t);
  void Erase(const TopupKey& key);
  // The card's open top-ups' keys in key order; empty when it has none.
  const std::vector<TopupKey>& KeysOf(uint64_t card_no) const;
  // The open top-up of `key`, which must be open (asserted).
  const TopupRecord& At(const TopupKey& key) const;
  // Every open top-up in key order.
  const std::map<TopupKey, TopupRecord>& all() const { return by_key_; }
  // The pending top-ups whose expires_ms is at most `ms`, in key order. The housekeeping asks
  // every second; the answer costs what it holds, not the number of open top-ups.
  std::vector<TopupRecord> PendingExpiringBy(int64_t ms) const;

 private:
  std::map<TopupKey, TopupRecord> by_key_;
  // The pending ones (not the expired) by deadline.
  std::set<std::pair<int64_t, TopupKey>> pending_by_expiry_;
  // Each card's keys, sorted; a card has an entry only while it has an open top-up.
  std::unordered_map<uint64_t, std::vector<TopupKey>> keys_by_card_;
};

// What one group commit (one attempt) has decided so far.
struct IngestGroup {
  // The per-tap maps below allocate from this arena, released whole when the group ends:
  // a group of 32,768 taps made and freed ~100,000 map nodes one at a time, ~10 % of the
  // writer at ten thousand cards (docs/benchmarks.md, session of 15:59, 2026-11-28). Declared
  // first, so that it outlives them.
  std::pmr::monotonic_buffer_resource arena{kGroupArenaInitialBytes};
  IngestWrite write;
  std::vector<Transfer> transfers;
  std::vector<size_t> transfer_owner;  // candidate index per transfer (SIZE_MAX: none)
  // The taps booked so far in this group, as indexes into write.taps (which only grows), so
  // that each booked tap is held once.
  // Hashed: looked up once per record, never walked in order.
  std::pmr::unordered_map<std::pair<std::string, uint32_t>, size_t, TerminalCounterHash>
      by_terminal{&arena};
  // By card, each card's taps ordered by CTC: ShadowBound walks a card's later counters.
  std::pmr::unordered_map<uint64_t, CardTapsInGroup> by_card{&arena};
  std::pmr::unordered_map<uint64_t, std::optional<CardCounterState>> counters{&arena};
  // By card (the purse's owner).
  std::pmr::unordered_map<uint64_t, int64_t> purse_delta_fen{&arena};
  std::unordered_map<std::string, Id128> tap_id_bases;    // TapTransferIdBase by terminal
  std::map<std::string, uint32_t> terminal_max;           // highest TTC seen, raised
  std::map<GapKey, GapSet> gaps;
  std::map<std::pair<int64_t, std::string>, DayOperatorTotals> day;
  // Cards whose purse was debited, and credited: with repeats, in booking order, until
  // FinishGroup sorts them and drops the repeats (a vector: pushed once per tap, read once).
  std::vector<uint64_t> purses_touched;
  std::vector<uint64_t> purses_credited;
  std::map<uint64_t, DenyReason> deny_adds;               // fraud
  std::map<TopupKey, TopupRecord> topups;  // changed in this group
};

struct IngestEngine::Impl {
  Impl(RegistryStore& registry, Ledger& ledger, TapStore& taps, TapAuthenticator& authenticator,
       const Digester& digester, const Clock& clock, IngestConfig config)
      : registry(registry), ledger(ledger), taps(taps), auth(authenticator), digester(digester),
        clock(clock), config(config) {}

  RegistryStore& registry;
  Ledger& ledger;
  TapStore& taps;
  TapAuthenticator& auth;
  const Digester& digester;
  const Clock& clock;
  IngestConfig config;
  TapPricer* pricer = nullptr;  // SetTapPricer; nullptr: taps are not re-priced

  // Caches (see core/ingest.h: kept right across commits and registry changes).
  bool opened = false;
  int64_t denylist_version = -1;
  std::unordered_map<uint64_t, IngestCardRef> cards;
  std::unordered_map<uint64_t, std::optional<CardCounterState>> counters;
  std::unordered_map<std::string, Operator> operators;
  std::unordered_map<std::string, std::vector<TerminalDenylistReport>> reports;
  OpenTopups open_topups;

  // ---- ingest.cc ----
  Status Open();
  Status SyncDenylist();
  // The card and its denylist entry; nullptr when the registry has no such card. `ahead`, when
  // not null, is the entry read ahead for it under the stamps current now (CardsAheadCurrent),
  // taken instead of a read of the registry when the cache lacks the card.
  Result<IngestCardRef> LoadCard(uint64_t card_no, IngestCardRef ahead = nullptr);
  Result<std::optional<Operator>> LoadOperator(const std::string& id);
  Result<std::optional<int64_t>> TerminalKnewAt(const std::string& terminal_id, int64_t version);
  Result<std::optional<CardCounterState>> CounterState(IngestGroup& g, uint64_t card_no);
  Result<std::vector<std::vector<IngestOutcome>>> Ingest(std::span<const UploadedBatch> batches,
                                                         std::span<const PrecheckedProofs> proofs);
  // `card_changes`: the registry's card change count read in this group's read scope (-1
  // when no batch has cards read ahead).
  Status Authenticate(std::span<const UploadedBatch> batches,
                      std::span<const PrecheckedProofs> proofs, int64_t card_changes,
                      std::vector<IngestCandidate>* candidates);
  Status RunGroup(std::vector<IngestCandidate>& candidates, IngestGroup& g,
                  std::vector<size_t>* failed_postings);
  Status Process(IngestGroup& g, IngestCandidate& c, const Terminal& terminal);
  Status TerminalCounter(IngestGroup& g, const IngestCandidate& c, const Terminal& terminal);
  Result<std::optional<StoredTap>> BookedByTerminal(IngestGroup& g, const TapRecord& r,
                                                    const Terminal& terminal);
  Result<std::optional<StoredTap>> BookedByCard(IngestGroup& g, uint64_t card_no, uint32_t ctc);
  Result<GapSet*> Gaps(IngestGroup& g, GapKind kind, uint64_t card_no, const std::string& term);
  void AddGap(IngestGroup& g, GapKind kind, uint64_t card_no, const std::string& term,
              uint32_t from, uint32_t to);
  Status FillGap(IngestGroup& g, GapKind kind, uint64_t card_no, const std::string& term,
                 uint32_t counter);
  Result<uint64_t> ChargedCard(const IngestCardEntry& entry);
  Result<int64_t> ShadowBound(IngestGroup& g, uint64_t card_no, uint32_t ctc,
                              const std::optional<CardCounterState>& state);
  Result<bool> Reprice(IngestGroup& g, const TapRecord& r);  // fare_dispute raised
  void RaiseAlert(IngestGroup& g, AlertKind kind, uint64_t card_no, const std::string& terminal,
                  std::string detail);
  Status FinishGroup(IngestGroup& g);
  void MergeCaches(IngestGroup& g);

  // ---- topup.cc ----
  int64_t ExpiredOpenFen(const IngestGroup& g, uint64_t card_no) const;
  // Matches a load record to an open top-up and adds its transfer; false when none matches.
  Result<bool> BookLoad(IngestGroup& g, IngestCandidate& c, uint64_t purse_card);
  Result<std::vector<Result<TopupDecision>>> AuthoriseTopups(
      std::span<const TopupAsk> asks, const std::function<Status()>& in_transaction);
  // Plans the asks of a group (no writes): answers for all, the new top-ups to book in
  // `fresh`; asks in `excluded` are answered with their failure from it.
  struct TopupGroupPlan;
  Status PlanTopups(std::span<const TopupAsk> asks, const std::map<size_t, Status>& excluded,
                    TopupGroupPlan* plan);
  Result<TopupDecision> PlanTopup(const TopupAsk& ask, TopupGroupPlan& plan, bool* fresh);
  Result<TopupConfirmResult> ConfirmTopup(std::string_view terminal_id, uint64_t authorisation_id,
                                          ByteView record);
  Result<size_t> ExpireTopups();
  Transfer TopupTransfer(std::string_view domain, const TopupRecord& topup) const;
};

// Settles every open top-up of the card that the booked purchase `c` proves (topup.cc).
Status ProveLoadsByTap(IngestEngine::Impl& impl, IngestGroup& g, const IngestCandidate& c);


}  // namespace citycard
