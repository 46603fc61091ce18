#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "db/database.h"
#include "tests/support/scratch_db_file_support.h"

using namespace citycard;
using citycard::db::Database;

TEST_CASE("Migrations run once and in order per component", "[db]") {
  auto db = Database::Open(":memory:", true);
  REQUIRE(db.ok());
  std::vector<std::string> migrations = {"CREATE TABLE a(x INTEGER)", "ALTER TABLE a ADD COLUMN y"};
  REQUIRE((*db)->Migrate("test", migrations).ok());
  REQUIRE(*(*db)->SchemaVersion("test") == 2);
  REQUIRE((*db)->Migrate("test", migrations).ok());  // again: nothing to do
  auto status = (*db)->Migrate("test", {"CREATE TABLE a(x INTEGER)"});
  REQUIRE(status.code() == "schema_too_new");
}

TEST_CASE("A transaction that is not committed is rolled back", "[db]") {
  auto db = Database::Open(":memory:", true);
  REQUIRE((*db)->Exec("CREATE TABLE t(x INTEGER)").ok());
  {
    db::Transaction txn(**db);
    REQUIRE(txn.Begin().ok());
    REQUIRE((*db)->Exec("INSERT INTO t VALUES(1)").ok());
  }
  auto stmt = (*db)->Prepare("SELECT count(*) FROM t");
  REQUIRE(*stmt->Step());
  REQUIRE(stmt->ColumnInt(0) == 0);
}

TEST_CASE("A missing database file is not found unless created", "[db]") {
  auto db = Database::Open("/nonexistent/dir/x.db", false);
  REQUIRE(db.status().code() == "db_not_found");
  REQUIRE(db.status().exit_code() == 3);
}

TEST_CASE("A constraint violation is a refusal", "[db]") {
  auto db = Database::Open(":memory:", true);
  REQUIRE((*db)->Exec("CREATE TABLE t(x INTEGER PRIMARY KEY)").ok());
  REQUIRE((*db)->Exec("INSERT INTO t VALUES(1)").ok());
  auto stmt = (*db)->Prepare("INSERT INTO t VALUES(1)");
  REQUIRE(stmt->Run().code() == "db_constraint");
}

TEST_CASE("A blob column's view holds the row's bytes, and is empty for NULL and for no bytes",
          "[db]") {
  auto db = Database::Open(":memory:", true);
  REQUIRE((*db)->Exec("CREATE TABLE b(k INTEGER PRIMARY KEY, v BLOB)").ok());
  REQUIRE((*db)->Exec("INSERT INTO b VALUES(1, x'00ff10'), (2, NULL), (3, x'')").ok());
  auto stmt = (*db)->Prepare("SELECT k, v FROM b ORDER BY k");
  REQUIRE(stmt.ok());
  std::vector<Bytes> seen;
  for (;;) {
    auto row = stmt->Step();
    REQUIRE(row.ok());
    if (!*row) break;
    ByteView view = stmt->ColumnBlobView(1);
    seen.emplace_back(view.begin(), view.end());
    CHECK(seen.back() == stmt->ColumnBlob(1));
  }
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == Bytes{0x00, 0xff, 0x10});
  CHECK(seen[1].empty());
  CHECK(seen[2].empty());
}

namespace {

int64_t CountRows(Database& db) {
  auto stmt = db.Prepare("SELECT count(*) FROM t");
  REQUIRE(stmt.ok());
  auto row = stmt->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  return stmt->ColumnInt(0);
}

// A database file of the test's own in the temporary folder, removed (with its WAL and shared
// memory files) before the test and after it.
using ScratchDatabaseFile = citycard::testing::ScratchDbFile;

}  // namespace

TEST_CASE("Reads inside a read scope see one snapshot, and the next scope sees later commits",
          "[db]") {
  ScratchDatabaseFile file("read_scope");
  {
    auto reader = Database::Open(file.path, true);
    REQUIRE(reader.ok());
    REQUIRE((*reader)->Exec("CREATE TABLE t(x INTEGER)").ok());
    auto writer = Database::Open(file.path, false);
    REQUIRE(writer.ok());

    REQUIRE((*reader)->BeginRead().ok());
    CHECK(CountRows(**reader) == 0);
    REQUIRE((*writer)->Exec("INSERT INTO t VALUES(1)").ok());  // committed meanwhile
    CHECK(CountRows(**reader) == 0);                           // still the scope's snapshot
    REQUIRE((*reader)->EndRead().ok());

    CHECK(CountRows(**reader) == 1);
    // The scope is closed: the reader's connection can write again.
    REQUIRE((*reader)->Exec("INSERT INTO t VALUES(2)").ok());
    CHECK(CountRows(**writer) == 2);
  }
}

TEST_CASE("Pages written count the frames each commit appends to the WAL, and reads write none",
          "[db]") {
  ScratchDatabaseFile file("pages_written");
  {
    auto db = Database::Open(file.path, true);
    REQUIRE(db.ok());
    REQUIRE((*db)->Exec("CREATE TABLE t(x INTEGER PRIMARY KEY, pad TEXT)").ok());
    const int64_t before = (*db)->PagesWritten();
    // One small row: the table's one leaf page.
    REQUIRE((*db)->Exec("INSERT INTO t VALUES(1, 'a')").ok());
    const int64_t one_row = (*db)->PagesWritten() - before;
    CHECK(one_row == 1);
    CountRows(**db);
    CHECK((*db)->PagesWritten() - before == one_row);  // a read writes nothing
    // 1,000 rows of 1,000 bytes need at least 250 pages of 4 KiB.
    REQUIRE((*db)->Exec("WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n "
                        "WHERE i < 1001) INSERT INTO t SELECT i, printf('%1000s', i) FROM n")
                .ok());
    CHECK((*db)->PagesWritten() - before >= one_row + 250);
  }
}
