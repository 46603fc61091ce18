// The bills' SQLite store: core's BillStore (core/bills.h) over a db::Database. It shares the
// connection with the registry's and the ledger's stores, so that one Begin/Commit here
// covers their writes too (Ledger::JoinedTransaction): a chunk of an import commits its
// transfers, bill rows, results and progress together. Schema: the "bills" component below
// and docs/bills.md "Storage".
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/bills.h"
#include "db/database.h"

namespace citycard::db {

class SqliteBillStore final : public BillStore {
 public:
  // Brings the "bills" component's schema up to date (Database::Migrate). The Database must
  // outlive the store. Failures: the Database's (Kind::internal "db_error", "schema_too_new").
  static Result<std::unique_ptr<SqliteBillStore>> Open(Database& db);
  ~SqliteBillStore() override;

  Status Begin() override;
  Status Commit() override;
  Status Rollback() override;
  Result<int64_t> ChangesByOthers() override;
  Status InsertMandate(const Mandate& mandate) override;
  Status DeleteMandate(std::string_view card_no, std::string_view utility,
                       std::string_view account_no) override;
  Result<bool> HasMandate(std::string_view card_no, std::string_view utility,
                          std::string_view account_no) override;
  Result<std::vector<Mandate>> ListMandates(const MandateFilter& filter) override;
  Result<std::optional<StoredBill>> FindBill(std::string_view utility,
                                             std::string_view bill_id) override;
  Result<std::vector<StoredBill>> FindBillsById(std::string_view bill_id) override;
  Result<std::vector<StoredBill>> ListBillsByIdRange(std::string_view first_bill_id,
                                                     std::string_view last_bill_id,
                                                     size_t limit) override;
  Status PutBill(const StoredBill& bill) override;
  Result<std::optional<BillImportProgress>> FindImport(std::string_view file_sha256) override;
  Status PutImport(const BillImportProgress& progress) override;
  Status AppendImportResults(std::string_view file_sha256, int64_t chunk,
                             std::span<const BillResult> results) override;
  Status ForEachImportResult(
      std::string_view file_sha256,
      const std::function<Status(std::span<const BillResult>)>& visit) override;

  // Raises the connection's page cache to `bytes` (SQLite's default is 2 MiB). A large
  // import touches the bills, the mandates, the cards and the ledger's tables at random
  // places; with the default cache nearly every lookup becomes a read system call.
  Status SetCacheBytes(int64_t bytes);

  // The schema, one entry per version (Database::Migrate).
  static const std::vector<std::string>& Migrations();

  // A chunk's results as kept (one CSV record per result: bill_id, utility, status number,
  // amount_fen, amount_paid_fen, transfer_id, reason) and back. Decode: Kind::internal
  // "invalid_bill_results" when the text is not such records.
  static std::string EncodeResults(std::span<const BillResult> results);
  static Result<std::vector<BillResult>> DecodeResults(std::string_view text);

 private:
  struct Statements;
  explicit SqliteBillStore(Database& db);
  Status Prepare();

  Database& db_;
  std::unique_ptr<Statements> s_;
  // The last file hash PutBill converted, and its bytes (sha_compact_: stored as bytes).
  std::string sha_hex_;
  Bytes sha_bytes_;
  bool sha_compact_ = false;
};

}  // namespace citycard::db
