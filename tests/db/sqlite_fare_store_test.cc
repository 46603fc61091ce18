#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "db/database.h"
#include "db/sqlite_fare_store.h"

using namespace citycard;
using citycard::db::Database;
using citycard::db::SqliteFareStore;

namespace {

struct FareStoreFixture {
  FareStoreFixture() {
    auto opened = Database::Open(":memory:", true);
    REQUIRE(opened.ok());
    db = std::move(*opened);
    auto store_opened = SqliteFareStore::Open(*db);
    REQUIRE(store_opened.ok());
    store = std::move(*store_opened);
  }

  std::unique_ptr<Database> db;
  std::unique_ptr<SqliteFareStore> store;
};

StoredFareTable Table(int64_t version) {
  return StoredFareTable{version, "v" + std::to_string(version),
                         "{\"version\": " + std::to_string(version) + ", \"name\": \"深圳\"}",
                         1'709'258'400'000 + version};
}

StoredPass Pass() {
  StoredPass p;
  p.card_no = "8607550000000012";
  p.pass_id = "annual";
  p.fare_version = 7;
  p.price_fen = 12000;
  p.operator_id = "spot1";
  p.transfer_id = Id128{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  p.sold_ms = 1'709'258'400'000;
  p.holding.sold_day = 19'783;
  p.holding.visits_used = 2;
  p.holding.last_entry_day_by_spot = {{"spot1", 19'783}, {"spot2", 19'784}};
  return p;
}

void CheckSamePass(const StoredPass& a, const StoredPass& b) {
  CHECK(a.card_no == b.card_no);
  CHECK(a.pass_id == b.pass_id);
  CHECK(a.fare_version == b.fare_version);
  CHECK(a.price_fen == b.price_fen);
  CHECK(a.operator_id == b.operator_id);
  CHECK(a.transfer_id == b.transfer_id);
  CHECK(a.sold_ms == b.sold_ms);
  CHECK(a.holding.sold_day == b.holding.sold_day);
  CHECK(a.holding.visits_used == b.holding.visits_used);
  CHECK(a.holding.last_entry_day_by_spot == b.holding.last_entry_day_by_spot);
}

}  // namespace

TEST_CASE("The fare store keeps every version with its text and answers the highest as current",
          "[db][fares]") {
  FareStoreFixture f;
  CHECK_FALSE(f.store->CurrentTable()->has_value());
  CHECK(f.db->SchemaVersion("fares").value() == 1);
  REQUIRE(f.store->InsertTable(Table(20180831)).ok());
  REQUIRE(f.store->InsertTable(Table(7)).ok());
  auto current = f.store->CurrentTable();
  REQUIRE(current.ok());
  REQUIRE(current->has_value());
  CHECK(**current == Table(20180831));
  CHECK(f.store->FindTable(7).value().value() == Table(7));
  CHECK_FALSE(f.store->FindTable(8)->has_value());
  auto all = f.store->ListTables();
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].version == 7);
  CHECK((*all)[1].version == 20180831);
  auto blob = CurrentFareTable(*f.store);
  REQUIRE(blob.ok());
  CHECK(blob->version == 20180831u);
  CHECK(blob->json == Table(20180831).json);
}

TEST_CASE("The fare store refuses a stored version with fare_version_exists", "[db][fares]") {
  FareStoreFixture f;
  REQUIRE(f.store->InsertTable(Table(7)).ok());
  StoredFareTable other = Table(7);
  other.json = "{}";
  Status s = f.store->InsertTable(other);
  CHECK(s.kind() == Kind::refused);
  CHECK(s.code() == "fare_version_exists");
  CHECK(f.store->FindTable(7).value().value() == Table(7));
}

TEST_CASE("The fare store keeps a pass with its visits and entry days", "[db][fares]") {
  FareStoreFixture f;
  REQUIRE(f.store->InsertPass(Pass()).ok());
  auto found = f.store->FindPass("8607550000000012", "annual");
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CheckSamePass(**found, Pass());
  CHECK(f.store->InsertPass(Pass()).code() == "pass_exists");

  StoredPass visited = Pass();
  visited.holding.visits_used = 3;
  visited.holding.last_entry_day_by_spot = {{"spot1", 19'790}};
  REQUIRE(f.store->UpdatePass(visited).ok());
  CheckSamePass(f.store->FindPass("8607550000000012", "annual").value().value(), visited);
  auto list = f.store->ListPasses("8607550000000012");
  REQUIRE(list->size() == 1);
  CHECK(f.store->ListPasses("8607550000000020")->empty());
  StoredPass missing = Pass();
  missing.pass_id = "weekly";
  CHECK(f.store->UpdatePass(missing).code() == "pass_not_found");
}

TEST_CASE("The fare store's rows survive reopening the database file", "[db][fares]") {
  auto path = std::filesystem::temp_directory_path() /
              ("citycard-fare-store-" + std::to_string(::getpid()) + ".db");
  std::filesystem::remove(path);
  {
    auto db = Database::Open(path.string(), true);
    REQUIRE(db.ok());
    auto store = SqliteFareStore::Open(**db);
    REQUIRE(store.ok());
    REQUIRE((*store)->Begin().ok());
    REQUIRE((*store)->InsertTable(Table(3)).ok());
    REQUIRE((*store)->InsertPass(Pass()).ok());
    REQUIRE((*store)->Commit().ok());
    REQUIRE((*store)->Begin().ok());
    REQUIRE((*store)->InsertTable(Table(4)).ok());
    REQUIRE((*store)->Rollback().ok());
  }
  {
    auto db = Database::Open(path.string(), false);
    REQUIRE(db.ok());
    auto store = SqliteFareStore::Open(**db);
    REQUIRE(store.ok());
    CHECK((*store)->CurrentTable().value().value() == Table(3));
    CheckSamePass((*store)->FindPass("8607550000000012", "annual").value().value(), Pass());
  }
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + "-wal");
  std::filesystem::remove(path.string() + "-shm");
}
