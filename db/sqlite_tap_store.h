// Tap ingest's SQLite store: core's TapStore (core/tap_store.h) over a db::Database. It shares
// the connection (and so the transaction) with the registry and the ledger stores, so that a
// group commit books taps, transfers and denylist changes atomically. Schema and the reasons
// for its shape: docs/ingest.md "Storage".
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tap_store.h"
#include "db/database.h"
#include "db/tap_pack.h"

namespace citycard::db {

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

  explicit SqliteTapStore(Database& db) : db_(db) {}
  Status Prepare();
  Result<std::vector<StoredTap>> ReadTaps(Statement& statement, size_t limit);
  Result<std::vector<TopupRecord>> ReadTopups(Statement& statement);

  Database& db_;
  std::optional<Statement> tap_by_terminal_;
  std::optional<Statement> tap_by_card_;
  std::optional<Statement> last_tap_of_card_;
  std::optional<Statement> taps_of_card_after_;
  std::optional<Statement> insert_tap_;
  std::optional<Statement> insert_taps_;  // kRowsPerInsert rows at once
  std::optional<Statement> last_seq_;
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
