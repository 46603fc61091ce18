#include "db/sqlite_settlement_store.h"

#include <catch2/catch.hpp>

#include "core/time.h"

using namespace citycard;
using citycard::db::Database;
using citycard::db::SqliteSettlementStore;

namespace {

SettlementRecord SampleRecord() {
  SettlementRecord record;
  record.report.day = *ParseDay("2024-03-05");
  record.report.cutoff_s = 0;
  OperatorSettlement line;
  line.operator_id = "bus-1";
  line.name = "深圳巴士集团";
  line.kind = "bus";
  line.fee_bp = 130;
  line.taps = 4;
  line.paid_taps = 4;
  line.gross_fen = 800;
  line.concession_fen = 200;
  line.transfer_discount_fen = 100;
  line.paid_fen = 500;
  line.capping_rebate_fen = 100;
  line.fee_base_fen = 400;
  line.fee_fen = 5;
  line.net_fen = 395;
  record.report.operators.push_back(line);
  record.report.totals = line;
  record.report.totals.operator_id.clear();
  record.report.totals.name.clear();
  record.report.totals.kind.clear();
  record.report.totals.fee_bp = 0;
  record.settled_ms = 1'709'700'000'000;
  record.transfers = 3;
  return record;
}

}  // namespace

TEST_CASE("A kept settlement run reads back as it was saved", "[db][settlement]") {
  auto db = Database::Open(":memory:", true);
  REQUIRE(db.ok());
  auto store = SqliteSettlementStore::Open(**db);
  REQUIRE(store.ok());
  SettlementRecord record = SampleRecord();
  auto none = (*store)->FindRun(record.report.day);
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  REQUIRE((*store)->SaveRun(record).ok());
  auto found = (*store)->FindRun(record.report.day);
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->report == record.report);
  CHECK((*found)->settled_ms == record.settled_ms);
  CHECK((*found)->transfers == 3);
}

TEST_CASE("A day is kept once: saving it again is refused", "[db][settlement]") {
  auto db = Database::Open(":memory:", true);
  auto store = SqliteSettlementStore::Open(**db);
  REQUIRE(store.ok());
  REQUIRE((*store)->SaveRun(SampleRecord()).ok());
  Status again = (*store)->SaveRun(SampleRecord());
  CHECK(again.code() == "settlement_exists");
  CHECK(again.kind() == Kind::refused);
}

TEST_CASE("The clearing cut-off defaults to midnight and is validated", "[db][settlement]") {
  auto db = Database::Open(":memory:", true);
  auto store = SqliteSettlementStore::Open(**db);
  REQUIRE(store.ok());
  CHECK(*(*store)->ClearingCutoff() == 0);
  REQUIRE((*store)->SetClearingCutoff(4 * 3600).ok());
  CHECK(*(*store)->ClearingCutoff() == 4 * 3600);
  REQUIRE((*store)->SetClearingCutoff(30 * 60).ok());
  CHECK(*(*store)->ClearingCutoff() == 30 * 60);
  CHECK((*store)->SetClearingCutoff(86400).code() == "invalid_cutoff");
  CHECK((*store)->SetClearingCutoff(-1).code() == "invalid_cutoff");
  CHECK(*(*store)->ClearingCutoff() == 30 * 60);
}

TEST_CASE("Opening the store twice migrates once", "[db][settlement]") {
  auto db = Database::Open(":memory:", true);
  REQUIRE(SqliteSettlementStore::Open(**db).ok());
  REQUIRE(SqliteSettlementStore::Open(**db).ok());
  CHECK(*(*db)->SchemaVersion("settlement") == 1);
}
