// The fares' SQLite store: core's FareStore (core/fare_store.h) over a db::Database, sharing
// the connection with the ledger's and registry's stores, so that a pass sale commits its
// transfer and its pass row together. Schema: the "fares" component (Migrations below) and
// docs/fares.md "Storage".
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/fare_store.h"
#include "db/database.h"

namespace citycard::db {

class SqliteFareStore final : public FareStore {
 public:
  // Brings the "fares" component's schema up to date (Database::Migrate). The Database must
  // outlive the store. Failures: the Database's (Kind::internal "db_error", "schema_too_new").
  static Result<std::unique_ptr<SqliteFareStore>> Open(Database& db);
  ~SqliteFareStore() override;

  Status Begin() override;
  Status Commit() override;
  Status Rollback() override;
  Status InsertTable(const StoredFareTable& table) override;
  Result<std::optional<StoredFareTable>> FindTable(int64_t version) override;
  Result<std::optional<StoredFareTable>> CurrentTable() override;
  Result<std::vector<StoredFareTable>> ListTables() override;
  Status InsertPass(const StoredPass& pass) override;
  Status UpdatePass(const StoredPass& pass) override;
  Result<std::optional<StoredPass>> FindPass(std::string_view card_no,
                                             std::string_view pass_id) override;
  Result<std::vector<StoredPass>> ListPasses(std::string_view card_no) override;

  // The schema, one entry per version (Database::Migrate).
  static const std::vector<std::string>& Migrations();

 private:
  explicit SqliteFareStore(Database& db) : db_(db) {}
  Result<StoredPass> ReadPass(Statement& row);
  Status WriteSpotDays(const StoredPass& pass);

  Database& db_;
};

}  // namespace citycard::db
