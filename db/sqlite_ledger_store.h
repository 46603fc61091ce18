// The ledger's SQLite store: core's LedgerStore (core/ledger_store.h) over a db::Database.
// Schema and record layouts: docs/ledger.md "SQLite schema". The store shares its connection
// and file with the other components' tables, so that a caller can make ledger changes
// atomic with its own rows (Ledger::JoinedTransaction); durability comes from the Database
// (WAL, synchronous=FULL).
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/ledger_store.h"
#include "db/database.h"

namespace citycard::db {

// How LoadAccounts reads asked ids that lie close together with one cursor (see
// sqlite_ledger_store.cc): the walk goes on to the next asked id while it is at most
// kAccountWalkGapMax above the row just read (card purses' ids, card numbers, lie about 10
// apart) and stops, to seek the next id afresh, after kAccountWalkStepsMax rows nobody asked
// for in a row.
inline constexpr uint64_t kAccountWalkGapMax = 64;
inline constexpr int kAccountWalkStepsMax = 8;

// Whether the store keeps sums per batch (ledger_batch_sums, docs/ledger.md "Batch sums") of
// the posted movements of accounts of `kind`: every kind but the per-person ones (card purses,
// medical accounts), whose accounts are as many as the city's people; a batch then adds a row
// per payable or system account it moved, not one per card.
bool KeepsBatchSums(AccountKind kind);

// Recomputes the sums of every batch that kept them from its stored transfers and adds a
// problem (naming the batch) to `problems` for each batch whose kept sums differ, up to
// `problems_max` problems in all: the sums are not under the hash chain, so `audit verify`
// checks them this way (docs/ledger.md "Batch sums"). Failures: the Database's.
Status VerifyBatchSums(Database& db, size_t problems_max, std::vector<std::string>* problems);

class SqliteLedgerStore final : public LedgerStore {
 public:
  // Brings the "ledger" component's schema up to date (Database::Migrate) and prepares the
  // statements. The Database must outlive the store. Failures: the Database's (Kind::internal
  // "db_error", "schema_too_new").
  static Result<std::unique_ptr<SqliteLedgerStore>> Open(Database& db);

  Status Begin() override;
  Status Commit() override;
  Status Rollback() override;
  Status LoadAccounts(std::span<const uint64_t> ids, std::vector<AccountRecord>* out) override;
  Status LoadTransfers(std::span<const Id128> ids, std::vector<TransferRecord>* out) override;
  Status LoadFailed(std::span<const Id128> ids, std::vector<FailedTransfer>* out) override;
  Status LoadTransfersBySeq(std::span<const int64_t> seqs, std::vector<TransferRecord>* out) override;
  Status LoadExpiredPending(int64_t now_ms, size_t limit, std::vector<TransferRecord>* out) override;
  Result<LedgerHead> LoadHead() override;
  // Compares the connection's data_version with the one seen at the previous call.
  Result<bool> ChangedElsewhere() override;
  // Writes each part with one prepared statement; a row that does not fit (a duplicate id, an
  // update of a missing account) fails the whole write with Kind::internal "ledger_write_failed"
  // or the Database's "db_constraint", and the engine rolls back.
  Status Write(const LedgerWrite& write) override;
  Status ScanAccounts(const std::function<Status(const AccountRecord&)>& visit) override;
  Status ScanTransfers(int64_t after_seq, size_t limit, std::vector<TransferRecord>* out) override;
  Status ScanBatches(int64_t after_seq, size_t limit, std::vector<BatchRecord>* out) override;

  // The schema, one entry per version (Database::Migrate).
  static const std::vector<std::string>& Migrations();

 private:
  explicit SqliteLedgerStore(Database& db) : db_(db) {}
  Status Prepare();
  // Inserts the transfers' rows, kRowsPerInsert to a statement. Kind::internal
  // "transfer_id_taken" when an id is already stored; the caller rolls back.
  Status InsertTransfers(std::span<const TransferRecord> transfers);
  Status WriteBackAccounts(std::span<const AccountRecord> accounts);
  // Reads the asked accounts from keys[*next] on with one cursor (LoadAccounts).
  Status WalkAccounts(const std::vector<int64_t>& keys, size_t* next,
                      std::vector<AccountRecord>* out);

  Database& db_;
  std::optional<int64_t> data_version_;  // as seen by the last ChangedElsewhere()
  std::optional<Statement> account_by_id_;
  std::optional<Statement> accounts_from_id_;  // the accounts from an id on, in id order
  std::optional<Statement> transfer_by_id_;
  std::optional<Statement> transfer_by_seq_;
  std::optional<Statement> failed_by_id_;
  std::optional<Statement> insert_account_;
  // The accounts written back whole, one row and kRowsPerInsert rows to a statement.
  std::optional<Statement> replace_account_;
  std::optional<Statement> replace_accounts_;
  std::optional<Statement> insert_transfer_;
  std::optional<Statement> insert_transfers_;  // kRowsPerInsert rows at once
  std::optional<Statement> insert_pending_;
  std::optional<Statement> update_pending_;
  std::optional<Statement> data_version_query_;  // PRAGMA data_version, for ChangedElsewhere
  std::optional<Statement> insert_failed_;
  std::optional<Statement> insert_batch_;
  std::optional<Statement> insert_batch_sum_;
};

}  // namespace citycard::db
