// Tap ingest's SQLite store: core's TapStore (core/tap_store.h) over a db::Database. It shares
// the connection (and so the transaction) with the registry and the ledger stores, so that a
// group commit books taps, transfers and denylist changes atomically. Schema and the reasons
// for its shape: docs/ingest.md "Storage".
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tap_store.h"
#include "db/database.h"
#include "db/tap_pack.h"

namespace citycard::db {

// The (card, CTC) keys of recent taps are merged into the large table of them once there are
// this many (schema version 4 in sqlite_tap_store.cc; docs/ingest.md "Storage"): about eight
// groups of 32,768 taps. A group writes most pages of the recent table (~200 more for each
// group's worth of keys in it) and a merge writes each card's last page of the merged table
// once (~10,000 pages at 10,000 cards); the pages per group, the first cost growing with the
// groups between merges and the second shrinking, are fewest near eight. An estimate from
// the tables' sizes, not a tuned figure.
inline constexpr int64_t kRecentCardTapsMergeAt = 262'144;
// The store keeps the highest (card, CTC) key of up to 2^kKnownCardsSlotBits cards in memory,
// one card to a slot (16 bytes; 4 MiB in all, allocated when first used), a card taking
// the slot of another whose number hashes alike.
inline constexpr int kKnownCardsSlotBits = 18;
inline constexpr size_t kKnownCardsSlots = size_t{1} << kKnownCardsSlotBits;

class SqliteTapStore final : public TapStore {
 public:
  // Brings the "ingest" component's schema up to date (Database::Migrate) and prepares the
  // statements. The Database must outlive the store. Failures: the Database's
  // (Kind::internal "db_error", "schema_too_new").
  static Result<std::unique_ptr<SqliteTapStore>> Open(Database& db);

  // Sets the connection's page cache (shared by the registry, the ledger and this store on
  // that connection) to about `bytes`: the ingest's random lookups (cards, purses, counter
  // states) then stay in memory instead of each being a read from the file. Kind::internal
  // "db_error".
  Status SetCacheBytes(int64_t bytes);

  // Merges the recent (card, CTC) keys once `keys` (>= 1) are recent, instead of
  // kRecentCardTapsMergeAt: for tests, which make a merge happen with a few taps.
  void SetRecentCardKeysMergeAt(int64_t keys);

  Result<std::optional<StoredTap>> FindByTerminalCounter(std::string_view terminal_id,
                                                         uint32_t terminal_counter) override;
  Result<std::optional<StoredTap>> FindByCardCounter(uint64_t card_no,
                                                     uint32_t card_counter) override;
  Result<std::optional<CardCounterState>> LoadCardCounterState(uint64_t card_no) override;
  Result<int64_t> SumPaidAfter(uint64_t card_no, uint32_t after_counter) override;
  Result<std::vector<CounterGap>> LoadGaps(GapKind kind, uint64_t card_no,
                                           std::string_view terminal_id) override;
  // A (terminal, TTC) or (card, CTC) already stored fails the write with Kind::internal
  // "tap_exists"; the caller rolls back.
  Status Write(const IngestWrite& write) override;
  Result<std::optional<TopupRecord>> FindTopup(std::string_view terminal_id,
                                               uint64_t request_id) override;
  Result<std::optional<TopupRecord>> FindTopupByAuthorisation(uint64_t authorisation_id) override;
  Result<std::vector<TopupRecord>> ListOpenTopups() override;
  Status RecordTerminalDenylistVersion(std::string_view terminal_id, int64_t version,
                                       int64_t terminal_time_ms) override;
  Result<std::vector<TerminalDenylistReport>> LoadTerminalDenylistReports(
      std::string_view terminal_id) override;
  Result<std::vector<Alert>> ListAlerts(const AlertFilter& filter) override;
  Result<std::vector<CounterGap>> ListGaps(GapKind kind) override;
  Result<std::vector<DayOperatorTotals>> DayTotals(int64_t clearing_day) override;
  Status ScanDayTaps(int64_t clearing_day, int64_t after_seq, size_t limit,
                     std::vector<StoredTap>* out) override;
  Status CardTaps(uint64_t card_no, size_t limit, std::vector<StoredTap>* out) override;

  static const std::vector<std::string>& Migrations();

 private:
  // Inserts the taps' rows, kRowsPerInsert to a statement. Kind::internal "tap_exists" when
  // a (terminal, TTC) or (card, CTC) key is taken; the caller rolls back.
  // Also keeps the taps' pack (db/tap_pack.h) in ingest_tap_packs.
  Status InsertTaps(std::span<const StoredTap> taps);
  // The highest seq of ingest_taps (0 when empty).
  Result<int64_t> LastTapSeq();
  // Inserts pack_ as the pack of the taps from `first_seq` on, just inserted; none when they
  // did not get consecutive seqs from first_seq or pack_ could not pack them.
  Status InsertPack(int64_t first_seq);
  // Writes the taps' (card, CTC) keys, the first under `first_seq`, to the recent table;
  // Kind::internal "tap_exists" when one is taken in either table.
  Status InsertCardKeys(std::span<const StoredTap> taps, int64_t first_seq);
  // Moves the recent keys into the merged table when there are recent_merge_at_ of them.
  Status MergeCardKeysIfDue();
  // Whether (card_no, ctc) is among the merged keys, looked up only when known_cards_ does
  // not rule it out; leaves the card known.
  Result<bool> MergedCardKeyTaken(uint64_t card_no, uint32_t ctc);
  // The highest (card, CTC) key of `card_no` in either table; ctc -1 when it has none.
  struct CardKey {
    int64_t ctc = -1;
    int64_t seq = 0;
  };
  Result<CardKey> HighestCardKey(uint64_t card_no);
  struct KnownCard {
    uint64_t card_no = 0;  // 0: an empty slot (no card has number 0 to be known by)
    int64_t highest = -1;
  };
  // The slot of known_cards_ that `card_no` would be known in.
  KnownCard& KnownSlot(uint64_t card_no);
  // Records that no key of `card_no` above `highest` (-1: none at all) is stored, as read
  // just now by this connection.
  void KnowHighestCardKey(uint64_t card_no, int64_t highest);
  // Empties known_cards_ when another connection has committed since the last call.
  Status ForgetCardKeysIfChangedElsewhere();

  explicit SqliteTapStore(Database& db) : db_(db) {}
  Status Prepare();
  Result<std::vector<StoredTap>> ReadTaps(Statement& statement, size_t limit);
  Result<std::vector<TopupRecord>> ReadTopups(Statement& statement);

  Database& db_;
  std::optional<Statement> tap_by_terminal_;
  std::optional<Statement> tap_by_card_;
  std::optional<Statement> highest_recent_card_key_;
  std::optional<Statement> highest_merged_card_key_;
  std::optional<Statement> tap_by_seq_;
  std::optional<Statement> taps_of_card_after_;
  std::optional<Statement> insert_tap_;
  std::optional<Statement> insert_taps_;  // kRowsPerInsert rows at once
  std::optional<Statement> last_seq_;
  std::optional<Statement> insert_card_key_;
  std::optional<Statement> insert_card_keys_;  // kRowsPerInsert rows at once
  std::optional<Statement> merged_card_key_;
  std::optional<Statement> recent_card_keys_;
  std::optional<Statement> merge_card_keys_;
  std::optional<Statement> clear_recent_card_keys_;
  std::optional<Statement> data_version_query_;
  int64_t recent_merge_at_ = kRecentCardTapsMergeAt;
  // For each card known here, no (card, CTC) key above `highest` (-1: no key) is stored in
  // either table, so a tap above it needs no look-up among the merged keys: at 10,000 cards
  // that look-up was 0.6 µs of the writer's ~5.5 µs a tap (docs/benchmarks.md). Learnt from
  // the look-ups themselves and from LoadCardCounterState, which reads the same highest key.
  // Kept true because every key enters the tables through this store's writes, which raise
  // the value, or through another connection, whose commit empties the slots at the next
  // write (data_version); a merge moves keys between the tables, and a rolled-back write
  // leaves a value only higher than needed, which costs a look-up, never a missed key; so
  // does a card pushed out of its slot by another. (A hash map of nodes cost 3 % of the
  // writer at 1,000,000 cards, in cache misses and clearing.)
  std::vector<KnownCard> known_cards_;
  std::optional<int64_t> data_version_;  // PRAGMA data_version at the last write
  std::optional<Statement> insert_pack_;
  TapPackBuilder pack_;  // the pack of the write being made, kept for its memory
  std::optional<Statement> insert_alert_;
  std::optional<Statement> insert_gap_;
  std::optional<Statement> delete_gap_;
  std::optional<Statement> upsert_topup_;
  std::optional<Statement> upsert_day_;
  std::optional<Statement> topup_by_key_;
  std::optional<Statement> topup_by_authorisation_;
};

}  // namespace citycard::db
