#include "db/sqlite_fare_store.h"

#include <fmt/format.h>

namespace citycard::db {

namespace {

StoredFareTable ReadTable(Statement& row) {
  StoredFareTable t;
  t.version = row.ColumnInt(0);
  t.name = row.ColumnText(1);
  t.json = row.ColumnText(2);
  t.loaded_ms = row.ColumnInt(3);
  return t;
}

constexpr char kSelectTable[] = "SELECT version, name, json, loaded_ms FROM fare_tables";
constexpr char kSelectPass[] =
    "SELECT card_no, pass_id, fare_version, price_fen, operator_id, transfer_id, sold_ms,"
    " sold_day, visits_used FROM fare_passes";

Result<std::optional<StoredFareTable>> OneTable(Result<Statement> stmt) {
  if (!stmt.ok()) return stmt.status();
  auto row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<StoredFareTable>();
  return std::optional<StoredFareTable>(ReadTable(*stmt));
}

}  // namespace

const std::vector<std::string>& SqliteFareStore::Migrations() {
  static const std::vector<std::string> kMigrations = {
      // Every loaded version with its text as loaded, so a reader downloads exactly it.
      "CREATE TABLE fare_tables(version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
      " json TEXT NOT NULL, loaded_ms INTEGER NOT NULL);"
      // One row per (card, pass product); a renewed pass replaces its row.
      "CREATE TABLE fare_passes(card_no TEXT NOT NULL, pass_id TEXT NOT NULL,"
      " fare_version INTEGER NOT NULL, price_fen INTEGER NOT NULL, operator_id TEXT NOT NULL,"
      " transfer_id TEXT NOT NULL, sold_ms INTEGER NOT NULL, sold_day INTEGER NOT NULL,"
      " visits_used INTEGER NOT NULL, PRIMARY KEY(card_no, pass_id)) WITHOUT ROWID;"
      // The last entry day per spot (one entry per spot per day).
      "CREATE TABLE fare_pass_spot_days(card_no TEXT NOT NULL, pass_id TEXT NOT NULL,"
      " spot TEXT NOT NULL, last_day INTEGER NOT NULL,"
      " PRIMARY KEY(card_no, pass_id, spot)) WITHOUT ROWID;",
  };
  return kMigrations;
}

Result<std::unique_ptr<SqliteFareStore>> SqliteFareStore::Open(Database& db) {
  CITYCARD_RETURN_IF_ERROR(db.Migrate("fares", Migrations()));
  return std::unique_ptr<SqliteFareStore>(new SqliteFareStore(db));
}

SqliteFareStore::~SqliteFareStore() = default;

Status SqliteFareStore::Begin() { return db_.Begin(); }
Status SqliteFareStore::Commit() { return db_.Commit(); }
Status SqliteFareStore::Rollback() { return db_.Rollback(); }

Status SqliteFareStore::InsertTable(const StoredFareTable& table) {
  auto found = FindTable(table.version);
  if (!found.ok()) return found.status();
  if (found->has_value()) {
    return Status::Refused("fare_version_exists",
                           fmt::format("fare table version {} is stored", table.version));
  }
  auto stmt = db_.Prepare(
      "INSERT INTO fare_tables(version, name, json, loaded_ms) VALUES(?1, ?2, ?3, ?4)");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, table.version).Bind(2, table.name).Bind(3, table.json).Bind(4, table.loaded_ms);
  return stmt->Run();
}

Result<std::optional<StoredFareTable>> SqliteFareStore::FindTable(int64_t version) {
  auto stmt = db_.Prepare(std::string(kSelectTable) + " WHERE version = ?1");
  if (stmt.ok()) stmt->Bind(1, version);
  return OneTable(std::move(stmt));
}

Result<std::optional<StoredFareTable>> SqliteFareStore::CurrentTable() {
  return OneTable(db_.Prepare(std::string(kSelectTable) + " ORDER BY version DESC LIMIT 1"));
}

Result<std::vector<StoredFareTable>> SqliteFareStore::ListTables() {
  auto stmt = db_.Prepare(std::string(kSelectTable) + " ORDER BY version");
  if (!stmt.ok()) return stmt.status();
  std::vector<StoredFareTable> out;
  for (;;) {
    auto row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(ReadTable(*stmt));
  }
  return out;
}

Status SqliteFareStore::WriteSpotDays(const StoredPass& pass) {
  auto del = db_.Prepare("DELETE FROM fare_pass_spot_days WHERE card_no = ?1 AND pass_id = ?2");
  if (!del.ok()) return del.status();
  del->Bind(1, pass.card_no).Bind(2, pass.pass_id);
  CITYCARD_RETURN_IF_ERROR(del->Run());
  auto ins = db_.Prepare(
      "INSERT INTO fare_pass_spot_days(card_no, pass_id, spot, last_day) VALUES(?1, ?2, ?3, ?4)");
  if (!ins.ok()) return ins.status();
  for (const auto& [spot, day] : pass.holding.last_entry_day_by_spot) {
    ins->Reset();
    ins->Bind(1, pass.card_no).Bind(2, pass.pass_id).Bind(3, spot).Bind(4, day);
    CITYCARD_RETURN_IF_ERROR(ins->Run());
  }
  return Status::Ok();
}

Status SqliteFareStore::InsertPass(const StoredPass& pass) {
  auto found = FindPass(pass.card_no, pass.pass_id);
  if (!found.ok()) return found.status();
  if (found->has_value()) {
    return Status::Refused("pass_exists", fmt::format("card {} holds pass {}", pass.card_no,
                                                      pass.pass_id));
  }
  auto stmt = db_.Prepare(
      "INSERT INTO fare_passes(card_no, pass_id, fare_version, price_fen, operator_id,"
      " transfer_id, sold_ms, sold_day, visits_used) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, pass.card_no).Bind(2, pass.pass_id).Bind(3, pass.fare_version)
      .Bind(4, pass.price_fen).Bind(5, pass.operator_id).Bind(6, pass.transfer_id.ToHex())
      .Bind(7, pass.sold_ms).Bind(8, pass.holding.sold_day).Bind(9, pass.holding.visits_used);
  CITYCARD_RETURN_IF_ERROR(stmt->Run());
  return WriteSpotDays(pass);
}

Status SqliteFareStore::UpdatePass(const StoredPass& pass) {
  auto stmt = db_.Prepare(
      "UPDATE fare_passes SET fare_version = ?3, price_fen = ?4, operator_id = ?5,"
      " transfer_id = ?6, sold_ms = ?7, sold_day = ?8, visits_used = ?9"
      " WHERE card_no = ?1 AND pass_id = ?2");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, pass.card_no).Bind(2, pass.pass_id).Bind(3, pass.fare_version)
      .Bind(4, pass.price_fen).Bind(5, pass.operator_id).Bind(6, pass.transfer_id.ToHex())
      .Bind(7, pass.sold_ms).Bind(8, pass.holding.sold_day).Bind(9, pass.holding.visits_used);
  CITYCARD_RETURN_IF_ERROR(stmt->Run());
  if (db_.Changes() == 0) {
    return Status::NotFound("pass_not_found", fmt::format("card {} holds no pass {}",
                                                          pass.card_no, pass.pass_id));
  }
  return WriteSpotDays(pass);
}

Result<StoredPass> SqliteFareStore::ReadPass(Statement& row) {
  StoredPass p;
  p.card_no = row.ColumnText(0);
  p.pass_id = row.ColumnText(1);
  p.fare_version = row.ColumnInt(2);
  p.price_fen = row.ColumnInt(3);
  p.operator_id = row.ColumnText(4);
  auto id = Id128::FromHex(row.ColumnText(5));
  if (!id.ok()) return Status::Internal("db_error", "a pass's transfer id is not hex");
  p.transfer_id = *id;
  p.sold_ms = row.ColumnInt(6);
  p.holding.sold_day = row.ColumnInt(7);
  p.holding.visits_used = row.ColumnInt(8);
  auto days = db_.Prepare(
      "SELECT spot, last_day FROM fare_pass_spot_days WHERE card_no = ?1 AND pass_id = ?2");
  if (!days.ok()) return days.status();
  days->Bind(1, p.card_no).Bind(2, p.pass_id);
  for (;;) {
    auto more = days->Step();
    if (!more.ok()) return more.status();
    if (!*more) break;
    p.holding.last_entry_day_by_spot[days->ColumnText(0)] = days->ColumnInt(1);
  }
  return p;
}

Result<std::optional<StoredPass>> SqliteFareStore::FindPass(std::string_view card_no,
                                                            std::string_view pass_id) {
  auto stmt = db_.Prepare(std::string(kSelectPass) + " WHERE card_no = ?1 AND pass_id = ?2");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, card_no).Bind(2, pass_id);
  auto row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<StoredPass>();
  auto pass = ReadPass(*stmt);
  if (!pass.ok()) return pass.status();
  return std::optional<StoredPass>(std::move(*pass));
}

Result<std::vector<StoredPass>> SqliteFareStore::ListPasses(std::string_view card_no) {
  auto stmt = db_.Prepare(std::string(kSelectPass) + " WHERE card_no = ?1 ORDER BY pass_id");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, card_no);
  std::vector<StoredPass> out;
  for (;;) {
    auto row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    auto pass = ReadPass(*stmt);
    if (!pass.ok()) return pass.status();
    out.push_back(std::move(*pass));
  }
  return out;
}

}  // namespace citycard::db
