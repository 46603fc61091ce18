// Moves the WAL checkpoints of one database connection off its writing thread.
//
// In WAL mode every commit appends the changed pages to the -wal file, and a checkpoint copies
// them back into the database file (and fsyncs it). SQLite's automatic checkpoint runs inside
// the commit that crosses its threshold, on the committing thread: for a bulk writer (a bill
// import committing 50,000 bills at a time) that is a copy of tens of megabytes and a second
// fsync inside every commit. A WalCheckpointer turns the writer connection's automatic
// checkpoint off and runs the same PASSIVE checkpoint on a thread and a connection of its own,
// woken by the writer's commits, so that the writer goes on with its next transaction while
// the last one is copied back. Durability does not change: a commit is durable once its WAL
// frames are synced, before any checkpoint; a checkpoint interrupted by a crash is redone by
// SQLite on the next open. docs/bills.md "Checkpoints off the writer's thread" says why and
// what it gave.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "core/status.h"

struct sqlite3;

namespace citycard::db {

class Database;

// SQLite's own default threshold: a checkpoint is asked for once a commit leaves at least
// this many pages in the WAL.
inline constexpr int kWalCheckpointPagesMin = 1000;
// The WAL's bound, in pages (256 MiB of 4 KiB pages). SQLite starts writing the WAL from its
// beginning again only when a transaction begins after a checkpoint has copied every frame;
// a writer that begins its next transaction at once, while the last one is being copied,
// would otherwise grow the file without end (644 MB for a million bills). A commit that
// leaves at least this many pages waits for a checkpoint of them, so that the next
// transaction starts the WAL over.
inline constexpr int kWalPagesMax = 65'536;

class WalCheckpointer {
 public:
  // Opens a second connection to `writer`'s file and takes over `writer`'s checkpoints until
  // destroyed. `writer` must be a file database (not ":memory:"), must outlive this object,
  // and must not be given another WAL hook or automatic checkpoint meanwhile.
  // Failures: Kind::usage "checkpointer_needs_file" for an in-memory database; the open's
  // ("db_open_failed").
  // `wal_pages_max` is kWalPagesMax but for tests.
  static Result<std::unique_ptr<WalCheckpointer>> Start(Database& writer,
                                                        int wal_pages_max = kWalPagesMax);

  // Stops and joins the thread (a checkpoint under way finishes first) and gives `writer` back
  // SQLite's automatic checkpoint.
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Checkpoints run so far (each copies what the WAL held when it started).
  int64_t checkpoints() const;
  // The first checkpoint failure other than "busy" (a checkpoint that finds the file busy is
  // simply tried again after the next commit); Ok while there is none. A failed checkpoint
  // loses nothing: the pages stay in the WAL.
  Status first_error() const;

 private:
  WalCheckpointer(Database& writer, std::unique_ptr<Database> own, int wal_pages_max);
  static int OnCommit(void* self, ::sqlite3* db, const char* name, int pages);
  void Run();

  Database& writer_;
  std::unique_ptr<Database> own_;  // used by the thread only
  const int wal_pages_max_;
  mutable std::mutex mu_;
  std::condition_variable wake_;      // the thread waits for a request
  std::condition_variable finished_;  // a writer past wal_pages_max_ waits for a checkpoint
  int64_t asked_ = 0;       // checkpoints asked for by commits (guarded by mu_)
  int64_t served_ = 0;      // the last request a finished checkpoint began after (mu_)
  bool stop_ = false;       // (guarded by mu_)
  int64_t checkpoints_ = 0;  // (guarded by mu_)
  Status first_error_;       // (guarded by mu_)
  std::thread thread_;
};

// Holds `db`'s automatic checkpoint back while it lives, for a one-off bulk transaction (a
// day's settlement booking a million rebates): its commit then returns once its WAL frames are
// synced, and the copy of those pages back into the database file (which took ~1.1 s of the
// 10,000,000-tap settlement, docs/benchmarks.md) is made by Finish() after the work is
// acknowledged, or by the next commit past SQLite's threshold. Durability does not change: a
// commit is durable once its WAL frames are synced, before any checkpoint.
// Not for a connection that has a WalCheckpointer.
class DeferredCheckpoint {
 public:
  // Turns `db`'s automatic checkpoint off; `db` must outlive this.
  explicit DeferredCheckpoint(Database& db);
  // Gives `db` SQLite's automatic checkpoint back (kWalCheckpointPagesMin) without copying.
  ~DeferredCheckpoint();
  DeferredCheckpoint(const DeferredCheckpoint&) = delete;
  DeferredCheckpoint& operator=(const DeferredCheckpoint&) = delete;

  // A PASSIVE checkpoint of `db` now (what the automatic one would have done at the commit),
  // then the automatic checkpoint back. Failures: Kind::internal "db_error"; a failed
  // checkpoint loses nothing (the pages stay in the WAL, and the next checkpoint copies them).
  Status Finish();

 private:
  Database& db_;
};

}  // namespace citycard::db
