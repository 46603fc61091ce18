#include "db/sqlite_settlement_store.h"

#include <fmt/format.h>

#include "core/time.h"

namespace citycard::db {

const std::vector<std::string>& SqliteSettlementStore::Migrations() {
  static const std::vector<std::string> migrations = {
      R"sql(
CREATE TABLE settlement_runs(
  day INTEGER PRIMARY KEY,          -- civil day number (core/time.h)
  settled_ms INTEGER NOT NULL,
  transfers INTEGER NOT NULL,
  report TEXT NOT NULL              -- SettlementReportToJson
);
CREATE TABLE settlement_settings(
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
)sql",
  };
  return migrations;
}

Result<std::unique_ptr<SqliteSettlementStore>> SqliteSettlementStore::Open(Database& db) {
  CITYCARD_RETURN_IF_ERROR(db.Migrate("settlement", Migrations()));
  return std::unique_ptr<SqliteSettlementStore>(new SqliteSettlementStore(db));
}

Result<std::optional<SettlementRecord>> SqliteSettlementStore::FindRun(int64_t day) {
  auto statement =
      db_.Prepare("SELECT settled_ms, transfers, report FROM settlement_runs WHERE day = ?");
  if (!statement.ok()) return statement.status();
  statement->Bind(1, day);
  auto row = statement->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<SettlementRecord>();
  SettlementRecord record;
  record.settled_ms = statement->ColumnInt(0);
  record.transfers = statement->ColumnInt(1);
  nlohmann::json json = nlohmann::json::parse(statement->ColumnText(2), nullptr, false);
  if (json.is_discarded()) {
    return Status::Internal("invalid_settlement_record",
                            fmt::format("the kept report of {} is not JSON", FormatDay(day)));
  }
  auto report = SettlementReportFromJson(json);
  if (!report.ok()) return report.status();
  if (report->day != day) {
    return Status::Internal("invalid_settlement_record",
                            fmt::format("the kept report of {} is of {}", FormatDay(day),
                                        FormatDay(report->day)));
  }
  record.report = std::move(*report);
  return std::optional<SettlementRecord>(std::move(record));
}

Status SqliteSettlementStore::SaveRun(const SettlementRecord& record) {
  auto statement = db_.Prepare(
      "INSERT INTO settlement_runs(day, settled_ms, transfers, report) VALUES (?, ?, ?, ?)");
  if (!statement.ok()) return statement.status();
  std::string report = SettlementReportToJson(record.report).dump();
  statement->Bind(1, record.report.day).Bind(2, record.settled_ms).Bind(3, record.transfers);
  statement->Bind(4, std::string_view(report));
  Status status = statement->Run();
  if (status.code() == "db_constraint") {
    return Status::Refused("settlement_exists",
                           fmt::format("{} was settled before", FormatDay(record.report.day)));
  }
  return status;
}

Result<int64_t> SqliteSettlementStore::ClearingCutoff() {
  auto statement =
      db_.Prepare("SELECT value FROM settlement_settings WHERE name = 'clearing_cutoff_s'");
  if (!statement.ok()) return statement.status();
  auto row = statement->Step();
  if (!row.ok()) return row.status();
  if (!*row) return int64_t{0};
  return statement->ColumnInt(0);
}

Status SqliteSettlementStore::SetClearingCutoff(int64_t cutoff_s) {
  if (cutoff_s < 0 || cutoff_s > kClearingCutoffSecondsMax) {
    return Status::BadInput("invalid_cutoff",
                            fmt::format("a cut-off is 0 to {} seconds after local midnight",
                                        kClearingCutoffSecondsMax));
  }
  auto statement = db_.Prepare(
      "INSERT INTO settlement_settings(name, value) VALUES ('clearing_cutoff_s', ?) "
      "ON CONFLICT(name) DO UPDATE SET value = excluded.value");
  if (!statement.ok()) return statement.status();
  statement->Bind(1, cutoff_s);
  return statement->Run();
}

}  // namespace citycard::db
