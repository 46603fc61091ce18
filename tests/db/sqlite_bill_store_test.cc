#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "db/database.h"
#include "db/sqlite_bill_store.h"

using namespace citycard;
using citycard::db::Database;
using citycard::db::SqliteBillStore;

namespace {

struct BillStoreFixture {
  BillStoreFixture() {
    auto opened = Database::Open(":memory:", true);
    REQUIRE(opened.ok());
    db = std::move(*opened);
    auto store_opened = SqliteBillStore::Open(*db);
    REQUIRE(store_opened.ok());
    store = std::move(*store_opened);
  }

  std::unique_ptr<Database> db;
  std::unique_ptr<SqliteBillStore> store;
};

StoredBill MakeBill(const std::string& utility, const std::string& id) {
  StoredBill b;
  b.bill_id = id;
  b.utility = utility;
  b.account_no = "杭州市西湖区文三路 12 号, 张三";
  b.card_no = "8607550000000012";
  b.period = "2026-10";
  b.amount_fen = 12345;
  b.due_day = 20'000;
  b.status = BillStatus::insufficient_funds;
  b.file_sha256 = std::string(64, 'a');
  return b;
}

const std::string kSha(64, 'b');

}  // namespace

TEST_CASE("Mandates are kept once per card, utility and account", "[db][bills]") {
  BillStoreFixture f;
  REQUIRE(f.store->InsertMandate({"8607550000000012", "water-hz", "文三路 12 号", 100}).ok());
  REQUIRE(f.store->InsertMandate({"8607550000000012", "power-hz", "P-1", 101}).ok());
  REQUIRE(f.store->InsertMandate({"8607550000000020", "water-hz", "W-2", 102}).ok());
  auto again = f.store->InsertMandate({"8607550000000012", "water-hz", "文三路 12 号", 200});
  REQUIRE(again.code() == "mandate_exists");
  REQUIRE(again.kind() == Kind::refused);

  REQUIRE(*f.store->HasMandate("8607550000000012", "water-hz", "文三路 12 号"));
  REQUIRE_FALSE(*f.store->HasMandate("8607550000000012", "water-hz", "文三路 13 号"));
  auto all = f.store->ListMandates({});
  REQUIRE(all.ok());
  REQUIRE(*all == std::vector<Mandate>{{"8607550000000012", "power-hz", "P-1", 101},
                                       {"8607550000000012", "water-hz", "文三路 12 号", 100},
                                       {"8607550000000020", "water-hz", "W-2", 102}});
  REQUIRE(*f.store->ListMandates({std::string("8607550000000012"), std::nullopt}) ==
          std::vector<Mandate>{{"8607550000000012", "power-hz", "P-1", 101},
                               {"8607550000000012", "water-hz", "文三路 12 号", 100}});
  REQUIRE(*f.store->ListMandates({std::string("8607550000000012"), std::string("power-hz")}) ==
          std::vector<Mandate>{{"8607550000000012", "power-hz", "P-1", 101}});
  REQUIRE(f.store->ListMandates({std::nullopt, std::string("water-hz")})->size() == 2);
  REQUIRE(f.store->ListMandates({std::string("8607550000000020"), std::string("power-hz")})
              ->empty());

  REQUIRE(f.store->DeleteMandate("8607550000000012", "power-hz", "P-1").ok());
  REQUIRE(f.store->DeleteMandate("8607550000000012", "power-hz", "P-1").code() ==
          "mandate_not_found");
  REQUIRE(f.store->ListMandates({})->size() == 2);
}

TEST_CASE("Bills are kept per utility and bill id, and replaced by a later put", "[db][bills]") {
  BillStoreFixture f;
  StoredBill water = MakeBill("water-hz", "B1");
  StoredBill power = MakeBill("power-hz", "B1");
  REQUIRE(f.store->PutBill(water).ok());
  REQUIRE(f.store->PutBill(power).ok());
  auto found = f.store->FindBill("water-hz", "B1");
  REQUIRE(found.ok());
  REQUIRE(*found == std::optional<StoredBill>(water));
  REQUIRE_FALSE(f.store->FindBill("gas-hz", "B1")->has_value());
  auto both = f.store->FindBillsById("B1");
  REQUIRE(both->size() == 2);
  REQUIRE((*both)[0].utility == "power-hz");

  water.status = BillStatus::paid;
  water.transfer_id = Id128{0x0123456789abcdefULL, 42};
  water.amount_paid_fen = 12345;
  water.paid_ms = 1'700'000'000'123;
  water.paid_by = "counter";
  REQUIRE(f.store->PutBill(water).ok());
  REQUIRE(**f.store->FindBill("water-hz", "B1") == water);
  REQUIRE((*f.store->FindBill("water-hz", "B1"))->paid());
}

TEST_CASE("Bills are listed by a range of bill ids in id order, up to a limit", "[db][bills]") {
  BillStoreFixture f;
  for (const char* id : {"B3", "B1", "B2", "C1"}) REQUIRE(f.store->PutBill(MakeBill("water-hz", id)).ok());
  REQUIRE(f.store->PutBill(MakeBill("power-hz", "B2")).ok());
  auto ids = [](const std::vector<StoredBill>& bills) {
    std::vector<std::string> out;
    for (const StoredBill& b : bills) out.push_back(b.bill_id + "/" + b.utility);
    return out;
  };
  auto all = f.store->ListBillsByIdRange("B1", "B3", 10);
  REQUIRE(all.ok());
  REQUIRE(ids(*all) == std::vector<std::string>{"B1/water-hz", "B2/power-hz", "B2/water-hz",
                                                "B3/water-hz"});
  REQUIRE((*all)[0] == MakeBill("water-hz", "B1"));
  REQUIRE(ids(*f.store->ListBillsByIdRange("B1", "B3", 2)) ==
          std::vector<std::string>{"B1/water-hz", "B2/power-hz"});
  REQUIRE(ids(*f.store->ListBillsByIdRange("B2", "B2", 10)) ==
          std::vector<std::string>{"B2/power-hz", "B2/water-hz"});
  REQUIRE(f.store->ListBillsByIdRange("A", "A9", 10)->empty());
}

TEST_CASE("A bill comes back exactly as put in each of the compact forms and outside them",
          "[db][bills]") {
  BillStoreFixture f;
  StoredBill by_file = MakeBill("water-hz", "F1");
  by_file.status = BillStatus::paid;
  by_file.transfer_id = Id128{0xfedcba9876543210ULL, 7};
  by_file.amount_paid_fen = 12345;
  by_file.paid_ms = 1'700'000'000'123;
  by_file.paid_by = BillPaidByFile(by_file.file_sha256);  // kept as NULL
  StoredBill other_file = by_file;
  other_file.bill_id = "F2";
  other_file.paid_by = BillPaidByFile(kSha);  // another file's: kept as text
  StoredBill odd_sha = MakeBill("water-hz", "F3");
  odd_sha.file_sha256 = std::string(64, 'A');  // not lower-case hex: kept as text
  StoredBill no_file = MakeBill("water-hz", "F4");
  no_file.file_sha256 = "";
  no_file.paid_by = "file:";  // what BillPaidByFile("") gives; kept as text
  for (const StoredBill& bill : {by_file, other_file, odd_sha, no_file}) {
    REQUIRE(f.store->PutBill(bill).ok());
    auto found = f.store->FindBill(bill.utility, bill.bill_id);
    REQUIRE(found.ok());
    REQUIRE(*found == std::optional<StoredBill>(bill));
  }
}

TEST_CASE("Bills kept by schema version 1 read the same after the upgrade to version 2",
          "[db][bills]") {
  auto opened = Database::Open(":memory:", true);
  REQUIRE(opened.ok());
  Database& db = **opened;
  REQUIRE(db.Migrate("bills", {SqliteBillStore::Migrations().at(0)}).ok());
  const std::string sha(64, 'c');
  const std::string transfer = "0123456789abcdef000000000000002a";
  const std::string insert =
      "INSERT INTO bills VALUES('water-hz', '{}', 'W-1', '8607550000000012', '2026-10', 500,"
      " 20000, {}, '{}', {}, {}, '{}', '" + sha + "')";
  REQUIRE(db.Exec(fmt::format(fmt::runtime(insert), "P1", 1, transfer, 500, 1'700'000'000'000, "file:" + sha)).ok());
  REQUIRE(db.Exec(fmt::format(fmt::runtime(insert), "P2", 1, transfer, 500, 1'700'000'000'000, "counter")).ok());
  REQUIRE(db.Exec(fmt::format(fmt::runtime(insert), "U3", 2, "", 0, 0, "")).ok());

  auto store = SqliteBillStore::Open(db);
  REQUIRE(store.ok());
  StoredBill expected;
  expected.bill_id = "P1";
  expected.utility = "water-hz";
  expected.account_no = "W-1";
  expected.card_no = "8607550000000012";
  expected.period = "2026-10";
  expected.amount_fen = 500;
  expected.due_day = 20000;
  expected.status = BillStatus::paid;
  expected.transfer_id = Id128{0x0123456789abcdefULL, 42};
  expected.amount_paid_fen = 500;
  expected.paid_ms = 1'700'000'000'000;
  expected.paid_by = "file:" + sha;
  expected.file_sha256 = sha;
  REQUIRE(**(*store)->FindBill("water-hz", "P1") == expected);
  expected.bill_id = "P2";
  expected.paid_by = "counter";
  REQUIRE(**(*store)->FindBill("water-hz", "P2") == expected);
  expected.bill_id = "U3";
  expected.status = BillStatus::insufficient_funds;
  expected.transfer_id = Id128{};
  expected.amount_paid_fen = 0;
  expected.paid_ms = 0;
  expected.paid_by = "";
  REQUIRE(**(*store)->FindBill("water-hz", "U3") == expected);
  REQUIRE_FALSE((*(*store)->FindBill("water-hz", "U3"))->paid());
}

TEST_CASE("Import progress and results are kept per file, chunk by chunk", "[db][bills]") {
  BillStoreFixture f;
  REQUIRE_FALSE(f.store->FindImport(kSha)->has_value());
  BillImportProgress progress{kSha, 3, 2, 1, false, 1000, 0};
  REQUIRE(f.store->PutImport(progress).ok());
  REQUIRE(**f.store->FindImport(kSha) == progress);
  progress.bills_done = 3;
  progress.complete = true;
  progress.finished_ms = 2000;
  REQUIRE(f.store->PutImport(progress).ok());
  REQUIRE(**f.store->FindImport(kSha) == progress);

  std::vector<BillResult> first = {
      {"B1", "water-hz", BillStatus::paid, 12345, 12345, std::string(32, 'c'), ""},
      {"B2", "water-hz", BillStatus::no_mandate, 100, 0, "",
       "card 8607550000000012 has no mandate for water-hz account \"文三路\", 12"}};
  std::vector<BillResult> second = {
      {"B3,x", "power-hz", BillStatus::insufficient_funds, 5000, 0, "", "balance ¥12.00 is below ¥50.00\nsecond line"}};
  REQUIRE(f.store->AppendImportResults(kSha, 0, first).ok());
  REQUIRE(f.store->AppendImportResults(kSha, 1, second).ok());
  REQUIRE(f.store->AppendImportResults(kSha, 1, second).code() == "chunk_exists");
  REQUIRE(f.store->AppendImportResults(std::string(64, 'e'), 0, second).ok());

  std::vector<std::vector<BillResult>> seen;
  REQUIRE(f.store
              ->ForEachImportResult(kSha,
                                    [&](std::span<const BillResult> chunk) {
                                      seen.emplace_back(chunk.begin(), chunk.end());
                                      return Status::Ok();
                                    })
              .ok());
  REQUIRE(seen == std::vector<std::vector<BillResult>>{first, second});

  auto stopped = f.store->ForEachImportResult(
      kSha, [](std::span<const BillResult>) { return Status::Internal("stop", "stop"); });
  REQUIRE(stopped.code() == "stop");
}

TEST_CASE("Damaged kept results are reported, not guessed", "[db][bills]") {
  REQUIRE(SqliteBillStore::DecodeResults("B1,water,9,1,1,,\n").status().code() ==
          "invalid_bill_results");
  REQUIRE(SqliteBillStore::DecodeResults("B1,water,1,1\n").status().code() ==
          "invalid_bill_results");
  REQUIRE(SqliteBillStore::DecodeResults("B1,water,1,x,1,,\n").status().code() ==
          "invalid_bill_results");
  REQUIRE(SqliteBillStore::DecodeResults("")->empty());
}

TEST_CASE("A rolled-back transaction leaves no bill, result or progress behind", "[db][bills]") {
  BillStoreFixture f;
  REQUIRE(f.store->Begin().ok());
  REQUIRE(f.store->PutBill(MakeBill("water-hz", "B1")).ok());
  REQUIRE(f.store->PutImport({kSha, 1, 1, 1, true, 1, 2}).ok());
  REQUIRE(f.store->AppendImportResults(kSha, 0, std::vector<BillResult>{{"B1", "water-hz", BillStatus::paid, 1, 1, "", ""}}).ok());
  REQUIRE(f.store->Rollback().ok());
  REQUIRE_FALSE(f.store->FindBill("water-hz", "B1")->has_value());
  REQUIRE_FALSE(f.store->FindImport(kSha)->has_value());
  int chunks = 0;
  REQUIRE(f.store->ForEachImportResult(kSha, [&](std::span<const BillResult>) {
                   ++chunks;
                   return Status::Ok();
                 }).ok());
  REQUIRE(chunks == 0);
}

TEST_CASE("The bills schema survives reopening the database", "[db][bills]") {
  std::string path = "/tmp/citycard_bill_store_test_" + std::to_string(::getpid()) + ".db";
  std::filesystem::remove(path);
  {
    auto db = Database::Open(path, true);
    REQUIRE(db.ok());
    auto store = SqliteBillStore::Open(**db);
    REQUIRE(store.ok());
    REQUIRE((*store)->InsertMandate({"8607550000000012", "water-hz", "W", 1}).ok());
  }
  {
    auto db = Database::Open(path, false);
    REQUIRE(db.ok());
    REQUIRE(*(*db)->SchemaVersion("bills") == 2);
    auto store = SqliteBillStore::Open(**db);
    REQUIRE(store.ok());
    REQUIRE(*(*store)->HasMandate("8607550000000012", "water-hz", "W"));
  }
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
}

TEST_CASE("ChangesByOthers moves with another connection's commit and not with the store's own",
          "[db][bills]") {
  std::string path = "/tmp/citycard_bill_store_changes_" + std::to_string(::getpid()) + ".db";
  std::filesystem::remove(path);
  {
    auto mine = Database::Open(path, true);
    REQUIRE(mine.ok());
    auto store = SqliteBillStore::Open(**mine);
    REQUIRE(store.ok());
    auto other = Database::Open(path, false);
    REQUIRE(other.ok());
    auto other_store = SqliteBillStore::Open(**other);
    REQUIRE(other_store.ok());

    auto before = (*store)->ChangesByOthers();
    REQUIRE(before.ok());
    REQUIRE((*store)->Begin().ok());
    REQUIRE((*store)->InsertMandate({"8607550000000012", "water-hz", "W", 1}).ok());
    REQUIRE((*store)->Commit().ok());
    REQUIRE(*(*store)->ChangesByOthers() == *before);

    REQUIRE((*other_store)->InsertMandate({"8607550000000012", "power-hz", "P", 1}).ok());
    REQUIRE(*(*store)->ChangesByOthers() != *before);
  }
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
}
