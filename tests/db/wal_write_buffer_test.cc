#include "db/wal_write_buffer.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "db/database.h"
#include "tests/support/scratch_db_file_support.h"

using namespace citycard;
using citycard::db::Database;
using citycard::db::WalBufferCountersNow;

namespace {

using ScratchFile = citycard::testing::ScratchDbFile;

std::unique_ptr<Database> OpenOrFail(const std::string& path, bool create) {
  auto db = Database::Open(path, create);
  REQUIRE(db.ok());
  return std::move(db).value();
}

int64_t QueryInt(Database& db, const std::string& sql) {
  auto stmt = db.Prepare(sql);
  REQUIRE(stmt.ok());
  auto row = stmt->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  return stmt->ColumnInt(0);
}

std::string IntegrityCheck(Database& db) {
  auto stmt = db.Prepare("PRAGMA integrity_check");
  REQUIRE(stmt.ok());
  auto row = stmt->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  return stmt->ColumnText(0);
}

// Rows first..last of 1,000 bytes each: a quarter of a 4 KiB page per row.
std::string InsertRows(int64_t first, int64_t last) {
  return "WITH RECURSIVE n(i) AS (SELECT " + std::to_string(first) +
         " UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(last) +
         ") INSERT INTO t SELECT i, printf('%1000d', i) FROM n";
}

}  // namespace

TEST_CASE("A transaction's WAL frames reach the file in a few large writes, not two per page",
          "[db]") {
  ScratchFile file("few_writes");
  auto db = OpenOrFail(file.path, true);
  REQUIRE(db->Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, pad TEXT)").ok());
  const auto before = WalBufferCountersNow();
  const int64_t pages_before = db->PagesWritten();
  REQUIRE(db->Begin().ok());
  REQUIRE(db->Exec(InsertRows(1, 4000)).ok());  // ~1,000 pages
  REQUIRE(db->Commit().ok());
  const auto after = WalBufferCountersNow();
  const int64_t frames = db->PagesWritten() - pages_before;
  REQUIRE(frames >= 1000);
  // SQLite wrote each frame as a header and a page.
  CHECK(after.writes_in - before.writes_in >= static_cast<uint64_t>(2 * frames));
  // They left in writes of up to 31 pages: 1,000 frames of 4,120 bytes in ~133.
  const uint64_t frame_bytes = static_cast<uint64_t>(frames) * (4096 + db::kWalFrameHeaderBytes);
  const uint64_t fewest = frame_bytes / db::kWalWriteBufferBytes;
  CHECK(after.writes_out - before.writes_out >= fewest);
  CHECK(after.writes_out - before.writes_out <= fewest + 3);
  CHECK(after.commit_flushes - before.commit_flushes == 1);
  CHECK(static_cast<uint64_t>(std::filesystem::file_size(file.path + "-wal")) >= frame_bytes);
}

TEST_CASE("Another connection sees each commit at once, whatever the writer's synchronous setting",
          "[db]") {
  // Below FULL, SQLite publishes a commit without a sync before: only the commit frame's own
  // flush puts the frames in the file by then.
  const char* setting = GENERATE("FULL", "NORMAL", "OFF");
  ScratchFile file(std::string("visible_") + setting);
  auto writer = OpenOrFail(file.path, true);
  REQUIRE(writer->Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, pad TEXT)").ok());
  REQUIRE(writer->Exec(std::string("PRAGMA synchronous=") + setting).ok());
  auto reader = OpenOrFail(file.path, false);
  int64_t rows = 0;
  for (int64_t round = 1; round <= 30; ++round) {
    const int64_t count = round * 3;  // from one page to ~23
    REQUIRE(writer->Begin().ok());
    REQUIRE(writer->Exec(InsertRows(rows + 1, rows + count)).ok());
    REQUIRE(writer->Commit().ok());
    rows += count;
    INFO("round " << round);
    REQUIRE(QueryInt(*reader, "SELECT count(*) FROM t") == rows);
    REQUIRE(QueryInt(*reader, "SELECT sum(length(pad)) FROM t") == rows * 1000);
    REQUIRE(QueryInt(*reader, "SELECT max(id) FROM t") == rows);
  }
  CHECK(IntegrityCheck(*reader) == "ok");
}

TEST_CASE("A transaction larger than the page cache reads back its spilled frames intact, "
          "and a rolled-back one leaves nothing",
          "[db]") {
  ScratchFile file("spill");
  auto writer = OpenOrFail(file.path, true);
  REQUIRE(writer->Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, pad TEXT)").ok());
  REQUIRE(writer->Exec(InsertRows(1, 2000)).ok());
  // Ten pages of cache: the transaction below spills its dirty pages to the WAL, reads them
  // back, changes them again and writes them over their own frames.
  REQUIRE(writer->Exec("PRAGMA cache_size=10").ok());
  REQUIRE(writer->Begin().ok());
  REQUIRE(writer->Exec(InsertRows(2001, 6000)).ok());
  REQUIRE(writer->Exec("UPDATE t SET pad = printf('%1000d', id * 7) WHERE id % 3 = 0").ok());
  REQUIRE(writer->Exec("DELETE FROM t WHERE id % 5 = 0").ok());
  REQUIRE(writer->Commit().ok());
  auto reader = OpenOrFail(file.path, false);
  const int64_t expected_rows = 6000 - 6000 / 5;
  CHECK(QueryInt(*reader, "SELECT count(*) FROM t") == expected_rows);
  CHECK(QueryInt(*reader, "SELECT count(*) FROM t WHERE pad = printf('%1000d', "
                          "CASE WHEN id % 3 = 0 THEN id * 7 ELSE id END)") == expected_rows);

  REQUIRE(writer->Begin().ok());
  REQUIRE(writer->Exec(InsertRows(6001, 9000)).ok());
  REQUIRE(writer->Exec("DELETE FROM t WHERE id < 3000").ok());
  REQUIRE(writer->Rollback().ok());
  CHECK(QueryInt(*reader, "SELECT count(*) FROM t") == expected_rows);
  CHECK(QueryInt(*writer, "SELECT count(*) FROM t") == expected_rows);
  REQUIRE(writer->Exec(InsertRows(9001, 9010)).ok());
  CHECK(QueryInt(*reader, "SELECT count(*) FROM t") == expected_rows + 10);
  CHECK(IntegrityCheck(*reader) == "ok");
}

TEST_CASE("Every commit acknowledged before the process is killed is in the database, intact",
          "[db][crash]") {
  ScratchFile file("killed");
  {
    auto db = OpenOrFail(file.path, true);
    REQUIRE(db->Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, pad TEXT)").ok());
  }
  int acks[2];
  REQUIRE(::pipe(acks) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child commits transactions of 1 to ~60 pages (some longer than the buffer) and
    // reports each last id once its commit has returned, until it is killed.
    ::close(acks[0]);
    auto db = Database::Open(file.path, false);
    if (!db.ok()) ::_exit(2);
    int64_t last = 0;
    for (int64_t round = 1;; ++round) {
      const int64_t count = 1 + (round * 37) % 240;
      if (!(*db)->Begin().ok() || !(*db)->Exec(InsertRows(last + 1, last + count)).ok() ||
          !(*db)->Commit().ok()) {
        ::_exit(3);
      }
      last += count;
      if (::write(acks[1], &last, sizeof last) != sizeof last) ::_exit(4);
    }
  }
  ::close(acks[1]);
  int64_t acked = 0;
  int64_t received = 0;
  while (received < 150) {
    int64_t id = 0;
    REQUIRE(::read(acks[0], &id, sizeof id) == sizeof id);
    acked = id;
    ++received;
  }
  ::kill(child, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  // Acknowledgements written before the kill and not yet read count as well.
  int64_t id = 0;
  while (::read(acks[0], &id, sizeof id) == sizeof id) acked = id;
  ::close(acks[0]);

  auto db = OpenOrFail(file.path, false);
  const int64_t rows = QueryInt(*db, "SELECT count(*) FROM t");
  INFO("acknowledged up to id " << acked << ", rows " << rows);
  CHECK(rows >= acked);
  // Ids are consecutive from 1: nothing acknowledged is missing, nothing is half there.
  CHECK(QueryInt(*db, "SELECT max(id) FROM t") == rows);
  CHECK(QueryInt(*db, "SELECT count(*) FROM t WHERE pad = printf('%1000d', id)") == rows);
  CHECK(IntegrityCheck(*db) == "ok");
}

TEST_CASE("The buffer registers over another VFS by name once, and refuses a missing base or a "
          "taken name",
          "[db]") {
  REQUIRE(db::RegisterWalBufferVfs().ok());
  // Over the unix VFS under a second name: the second call with the same names does nothing.
  REQUIRE(db::RegisterWalBufferVfsOver("unix", "citycard-walbuf-test").ok());
  REQUIRE(db::RegisterWalBufferVfsOver("unix", "citycard-walbuf-test").ok());
  ScratchFile file("walbuf_over_unix");
  auto opened = Database::Open(file.path, true, "citycard-walbuf-test");
  REQUIRE(opened.ok());
  REQUIRE((*opened)->Exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)").ok());

  auto missing = db::RegisterWalBufferVfsOver("no-such-vfs", "citycard-walbuf-test2");
  REQUIRE(missing.code() == "vfs_register_failed");
  // The name of another VFS (the unix one itself), or the same name over another base.
  REQUIRE(db::RegisterWalBufferVfsOver("unix", "unix-none").code() == "vfs_register_failed");
  REQUIRE(db::RegisterWalBufferVfsOver("unix-none", "citycard-walbuf-test").code() ==
          "vfs_register_failed");
}

TEST_CASE("A connection through a VFS that is not registered is not opened", "[db]") {
  ScratchFile file("walbuf_no_vfs");
  auto opened = Database::Open(file.path, true, "no-such-vfs");
  REQUIRE(opened.status().code() == "db_open_failed");
  REQUIRE_FALSE(std::filesystem::exists(file.path));
}
