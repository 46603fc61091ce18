#include "db/wal_checkpointer.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "db/database.h"
#include "tests/support/scratch_db_file_support.h"

using namespace citycard;
using citycard::db::Database;
using citycard::db::WalCheckpointer;

namespace {

using TempFile = citycard::testing::ScratchDbFile;

// One transaction that leaves well over kWalCheckpointPagesMin pages in the WAL (2,048 rows
// of 4,000 bytes: over 8 MB of 4 KiB pages, against a threshold of 1,000 pages).
void CommitEightMegabytes(Database& db, int64_t n) {
  REQUIRE(db.Begin().ok());
  REQUIRE(db.Exec("WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 2048) "
                  "INSERT INTO blobs SELECT " + std::to_string(n) +
                  " * 10000 + v, randomblob(4000) FROM s")
              .ok());
  REQUIRE(db.Commit().ok());
}

int64_t CountRows(Database& db) {
  auto stmt = db.Prepare("SELECT count(*) FROM blobs");
  REQUIRE(stmt.ok());
  auto row = stmt->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  return stmt->ColumnInt(0);
}

bool WaitFor(const std::function<bool()>& done) {
  for (int i = 0; i < 500 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return done();
}

}  // namespace

TEST_CASE("A checkpointer copies the writer's commits into the database file on its own thread",
          "[db][checkpointer]") {
  TempFile file("checkpointer");
  auto db = Database::Open(file.path, true);
  REQUIRE(db.ok());
  REQUIRE((*db)->Exec("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB NOT NULL)").ok());
  const int64_t empty_bytes = file.Bytes();
  {
    auto checkpointer = WalCheckpointer::Start(**db);
    REQUIRE(checkpointer.ok());
    CommitEightMegabytes(**db, 1);
    // The pages reach the file through the checkpointer, which the commit woke.
    REQUIRE(WaitFor([&] { return (*checkpointer)->checkpoints() >= 1; }));
    REQUIRE(WaitFor([&] { return file.Bytes() > empty_bytes + (int64_t{8} << 20); }));
    CommitEightMegabytes(**db, 2);
    REQUIRE(WaitFor([&] { return (*checkpointer)->checkpoints() >= 2; }));
    REQUIRE((*checkpointer)->first_error().ok());
  }
  REQUIRE(CountRows(**db) == 2 * 2048);
  // Another connection sees every committed row.
  auto other = Database::Open(file.path, false);
  REQUIRE(other.ok());
  REQUIRE(CountRows(**other) == 2 * 2048);
}

TEST_CASE("A writer that commits again at once keeps the WAL within its bound",
          "[db][checkpointer]") {
  TempFile file("checkpointer_bound");
  auto db = Database::Open(file.path, true);
  REQUIRE(db.ok());
  REQUIRE((*db)->Exec("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB NOT NULL)").ok());
  // A bound of 3,000 pages (12 MB); each commit adds over 2,048 pages, ten of them 20,000+.
  constexpr int kBoundPages = 3'000;
  int64_t wal_bytes_max = 0;
  {
    auto checkpointer = WalCheckpointer::Start(**db, kBoundPages);
    REQUIRE(checkpointer.ok());
    for (int64_t n = 1; n <= 10; ++n) {
      CommitEightMegabytes(**db, n);
      wal_bytes_max = std::max(wal_bytes_max, file.Bytes("-wal"));
    }
    REQUIRE((*checkpointer)->first_error().ok());
  }
  // Without restarts the WAL would hold all ten commits (over 80 MB). With them it holds at
  // most the bound plus the commit that crossed it, plus one more begun while that one was
  // copied back.
  constexpr int64_t kFrameBytes = 4096 + 24;
  REQUIRE(wal_bytes_max < (kBoundPages + 2 * 2'200) * kFrameBytes);
  REQUIRE(CountRows(**db) == 10 * 2048);
}

TEST_CASE("Without a checkpointer the writer's commit checkpoints by itself, as before",
          "[db][checkpointer]") {
  TempFile file("checkpointer_after");
  auto db = Database::Open(file.path, true);
  REQUIRE(db.ok());
  REQUIRE((*db)->Exec("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB NOT NULL)").ok());
  { REQUIRE(WalCheckpointer::Start(**db).ok()); }  // started and stopped again
  const int64_t before = file.Bytes();
  CommitEightMegabytes(**db, 1);
  // SQLite's automatic checkpoint is back: the commit returned with its pages in the file.
  REQUIRE(file.Bytes() > before + (int64_t{8} << 20));
  REQUIRE(CountRows(**db) == 2048);
}

TEST_CASE("The checkpointer's copies do not look like another connection's commits",
          "[db][checkpointer]") {
  // Caches keyed on data_version (the bill import's cards, the server's writer) must not be
  // dropped by the checkpointer's own connection: it copies pages, it commits nothing.
  TempFile file("checkpointer_version");
  auto db = Database::Open(file.path, true);
  REQUIRE(db.ok());
  REQUIRE((*db)->Exec("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB NOT NULL)").ok());
  auto checkpointer = WalCheckpointer::Start(**db, 3'000);
  REQUIRE(checkpointer.ok());
  auto before = (*db)->DataVersion();
  REQUIRE(before.ok());
  for (int64_t n = 1; n <= 4; ++n) CommitEightMegabytes(**db, n);  // past the bound: restarts
  REQUIRE(WaitFor([&] { return (*checkpointer)->checkpoints() >= 2; }));
  auto after = (*db)->DataVersion();
  REQUIRE(after.ok());
  REQUIRE(*after == *before);
  // A commit by another connection does move it.
  auto other = Database::Open(file.path, false);
  REQUIRE(other.ok());
  REQUIRE((*other)->Exec("INSERT INTO blobs VALUES(1, x'00')").ok());
  auto moved = (*db)->DataVersion();
  REQUIRE(moved.ok());
  REQUIRE(*moved != *before);
}

TEST_CASE("An in-memory database gets no checkpointer", "[db][checkpointer]") {
  auto db = Database::Open(":memory:", true);
  REQUIRE(db.ok());
  auto checkpointer = WalCheckpointer::Start(**db);
  REQUIRE(checkpointer.status().code() == "checkpointer_needs_file");
}

TEST_CASE("A deferred checkpoint leaves the commits in the WAL until it is finished",
          "[db][checkpointer]") {
  TempFile file("deferred_checkpoint");
  auto db = Database::Open(file.path, true);
  REQUIRE(db.ok());
  REQUIRE((*db)->Exec("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB NOT NULL)").ok());
  CommitEightMegabytes(**db, 1);
  // Without it, the commit copied its pages into the file (SQLite's automatic checkpoint).
  const int64_t one_commit_bytes = file.Bytes();
  REQUIRE(one_commit_bytes > (int64_t{8} << 20));
  SECTION("finished") {
    db::DeferredCheckpoint deferred(**db);
    CommitEightMegabytes(**db, 2);
    CommitEightMegabytes(**db, 3);
    CHECK(file.Bytes() == one_commit_bytes);  // nothing copied yet
    CHECK(file.Bytes("-wal") > (int64_t{16} << 20));
    REQUIRE(deferred.Finish().ok());
    CHECK(file.Bytes() > one_commit_bytes + (int64_t{16} << 20));
  }
  SECTION("dropped unfinished: the next commit past the threshold copies") {
    {
      db::DeferredCheckpoint deferred(**db);
      CommitEightMegabytes(**db, 2);
    }
    CHECK(file.Bytes() == one_commit_bytes);
    CommitEightMegabytes(**db, 3);
    CHECK(file.Bytes() > one_commit_bytes + (int64_t{16} << 20));
  }
  REQUIRE(CountRows(**db) == 3 * 2048);
}
