// Settlement's SQLite store: core's SettlementStore (core/settlement.h) over a db::Database.
// It keeps one row per settled clearing day (the report as JSON, when it was booked and how
// many transfers it booked) and the clearing cut-off. Schema: docs/settlement.md "Storage".
// It shares the connection with the registry and the ledger, so that a run is kept in the
// same transaction as the transfers it books.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/settlement.h"
#include "db/database.h"

namespace citycard::db {

class SqliteSettlementStore final : public SettlementStore {
 public:
  // Brings the "settlement" component's schema up to date (Database::Migrate). The Database
  // must outlive the store. Failures: the Database's (Kind::internal "db_error",
  // "schema_too_new").
  static Result<std::unique_ptr<SqliteSettlementStore>> Open(Database& db);

  // A kept report that no longer parses: Kind::internal "invalid_settlement_record".
  Result<std::optional<SettlementRecord>> FindRun(int64_t day) override;
  Status SaveRun(const SettlementRecord& record) override;
  Result<int64_t> ClearingCutoff() override;
  Status SetClearingCutoff(int64_t cutoff_s) override;

  // The schema, one entry per version (Database::Migrate).
  static const std::vector<std::string>& Migrations();

 private:
  explicit SqliteSettlementStore(Database& db) : db_(db) {}
  Database& db_;
};

}  // namespace citycard::db
