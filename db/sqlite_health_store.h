// The health component's SQLite store: core's HealthStore (core/health.h) over a
// db::Database. It keeps the audit trail of identity checks, the holders' medical
// year-to-date figures, the medical settlements with their signed vouchers, the reversals and
// the loaded scheme rules. Schema: docs/medical.md "Storage". It shares the connection with
// the registry and the ledger, so that a settlement's row, the holder's figures and the
// transfers commit in one transaction.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/health.h"
#include "db/database.h"

namespace citycard::db {

// The statement SqliteHealthStore::ListIdentityChecks runs for `filter` (?1 the card, ?2 the
// terminal, each only when filtered; ?3 the limit): one statement per combination, so that the
// checks of a card (a holder asking who looked at their record) or of a terminal are found
// through their index. One statement with "(?1 IS NULL OR card_no = ?1)" was planned as a scan
// of every check ever made.
std::string IdentityCheckListSql(const IdentityCheckFilter& filter);

class SqliteHealthStore final : public HealthStore {
 public:
  // Brings the "health" component's schema up to date (Database::Migrate). The Database must
  // outlive the store. Failures: the Database's (Kind::internal "db_error", "schema_too_new").
  static Result<std::unique_ptr<SqliteHealthStore>> Open(Database& db);

  Result<int64_t> AppendIdentityCheck(const IdentityCheckRecord& record) override;
  Result<std::vector<IdentityCheckRecord>> ListIdentityChecks(
      const IdentityCheckFilter& filter) override;
  // Kept figures that no longer parse: Kind::internal "invalid_year_to_date".
  Result<std::optional<MedicalYearToDate>> FindYearToDate(int64_t holder_number) override;
  Status PutYearToDate(int64_t holder_number, const MedicalYearToDate& figures) override;
  Result<std::optional<MedicalSettlementRecord>> FindSettlement(std::string_view hospital_id,
                                                                std::string_view bill_id) override;
  Result<std::vector<MedicalSettlementRecord>> FindSettlementsByBill(
      std::string_view bill_id) override;
  Status InsertSettlement(const MedicalSettlementRecord& record) override;
  Status MarkReversed(std::string_view hospital_id, std::string_view bill_id, int64_t reversed_ms,
                      const Bytes& reversal_voucher) override;
  Status SaveRules(const StoredMedicalRules& rules) override;
  Result<std::optional<StoredMedicalRules>> CurrentRules() override;
  Result<std::vector<OperatorServiceTotals>> MedicalTotals(int64_t from_ms, int64_t to_ms) override;

  // The schema, one entry per version (Database::Migrate).
  static const std::vector<std::string>& Migrations();

 private:
  explicit SqliteHealthStore(Database& db) : db_(db) {}
  Result<std::vector<MedicalSettlementRecord>> QuerySettlements(std::string_view where,
                                                                std::string_view a,
                                                                std::string_view b);
  Database& db_;
  // Prepared at the first identity check and kept: every check is recorded (an online request
  // on the server's writer), and parsing the INSERT each time was a fifth of that writer's
  // instructions in `bench online`.
  std::optional<Statement> insert_identity_check_;
};

}  // namespace citycard::db
