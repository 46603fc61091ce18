// A thin RAII layer over one SQLite connection: open with the durability settings the
// ledger relies on, prepared statements, transactions, and per-component schema migrations.
// Only db/ includes this header's implementation details; nothing above db/ sees SQL.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace citycard::db {

// How long a connection waits on a lock held by another connection before giving up.
inline constexpr int kBusyTimeoutMs = 10'000;

// How many rows one multi-row INSERT of the hot write paths (taps, ledger transfers) carries.
// One statement per row costs SQLite a statement's setup and teardown per row (cursors opened
// and closed, the VM halted and reset, the bindings cleared), which was about a fifth of the
// ingest writer's instructions; 32 rows of at most 18 columns stay far below SQLite's limit
// of bound parameters (32,766 since 3.32).
inline constexpr int kRowsPerInsert = 32;

// The VALUES list of a multi-row INSERT: `rows` groups of `columns` parameters,
// "(?,?),(?,?)" for 2 and 2. Both must be positive.
std::string ValuesPlaceholders(int columns, int rows);

class Statement;

class Database {
 public:
  // Opens (creating when `create` is true) the SQLite file at `path` in WAL mode with
  // synchronous=FULL, so that a committed transaction survives a crash or power loss, and
  // foreign keys on. ":memory:" opens a private in-memory database (tests). The connection
  // writes its WAL through the WAL write buffer (db/wal_write_buffer.h).
  // Failures: Kind::internal "db_open_failed", "vfs_register_failed"; Kind::not_found "db_not_found" when the file
  // does not exist and `create` is false.
  static Result<std::unique_ptr<Database>> Open(const std::string& path, bool create);
  // The same through the SQLite VFS registered as `vfs_name` (tests: the WAL write buffer over
  // a fault-injecting VFS, db::RegisterWalBufferVfsOver). Failures as above, and
  // Kind::internal "db_open_failed" when no VFS has that name.
  static Result<std::unique_ptr<Database>> Open(const std::string& path, bool create,
                                                const std::string& vfs_name);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more SQL statements without results.
  Status Exec(std::string_view sql);
  // Prepares a statement; the Database must outlive it.
  Result<Statement> Prepare(std::string_view sql);

  // BEGIN IMMEDIATE / COMMIT / ROLLBACK. Commit returns only after the transaction is
  // durable (synchronous=FULL).
  Status Begin();
  Status Commit();
  Status Rollback();
  // BEGIN DEFERRED / COMMIT around reads only: one snapshot and one read lock for all the
  // statements in between instead of one each (RegistryStore::BeginRead). EndRead asserts
  // that nothing was written since BeginRead.
  Status BeginRead();
  Status EndRead();

  // Applies, in order, each migration of `component` newer than its recorded schema version,
  // each in its own transaction, and records the new version. migrations[i] takes the
  // component from version i to version i + 1. Refuses (Kind::internal,
  // "schema_too_new") a database whose recorded version is newer than this program knows.
  Status Migrate(std::string_view component, const std::vector<std::string>& migrations);
  // The recorded schema version of a component (0 when it has none yet).
  Result<int64_t> SchemaVersion(std::string_view component);

  // SQLite's PRAGMA data_version: a number that changes when another connection (this
  // process's or another's) commits to the database, and never for this connection's own
  // commits. Callers that cache rows compare it to know when their cache went stale.
  Result<int64_t> DataVersion();

  int64_t LastInsertRowId() const;
  int Changes() const;
  // Pages this connection has written to the database or its WAL since it was opened (SQLite's
  // SQLITE_DBSTATUS_CACHE_WRITE): in WAL mode, the frames its commits appended. Benchmarks
  // report it per request, a figure that the machine's noise does not move.
  int64_t PagesWritten() const;
  sqlite3* handle() { return db_; }
  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

// A prepared statement. Bind parameters are 1-based, columns 0-based (SQLite's convention).
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, ByteView blob);
  Statement& BindNull(int index);
  // The same as Bind for text and blobs, without SQLite's copy of the bytes: the caller keeps
  // them valid and unchanged until the statement is next reset (Run and Reset both reset).
  // For the hot inserts of bulk imports, where the copy is a malloc and a free per value.
  Statement& BindUnowned(int index, std::string_view text);
  Statement& BindUnowned(int index, ByteView blob);

  // Steps once: true when a row is available, false when done. Errors: Kind::internal
  // "db_error", or Kind::refused "db_constraint" for a constraint violation.
  Result<bool> Step();
  // Steps to completion, ignoring rows.
  Status Run();
  // Resets for another execution and clears the bindings.
  void Reset();

  int64_t ColumnInt(int column) const;
  std::string ColumnText(int column) const;
  Bytes ColumnBlob(int column) const;
  // The column's bytes without a copy: valid only until the statement next steps or is reset,
  // and until no other accessor of this column is called (SQLite may convert it in place). For
  // scans that look at each row's bytes once (a day of taps), where ColumnBlob's copy is a malloc
  // and a free per row. An empty view for NULL or an empty blob.
  ByteView ColumnBlobView(int column) const;
  bool ColumnIsNull(int column) const;

 private:
  friend class Database;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// Rolls back on destruction unless Commit() was called: a transaction is never left open
// and never half applied when a function returns early on an error.
class Transaction {
 public:
  explicit Transaction(Database& db) : db_(db) {}
  ~Transaction();
  Status Begin();
  Status Commit();

 private:
  Database& db_;
  bool open_ = false;
};

// Runs `count` rows through two prepared INSERTs of the same columns: `many` (kRowsPerInsert
// rows) while that many are left, then `one` (one row) for the rest. bind_row(statement, k,
// row) binds `row` as the statement's k-th row; a failed statement returns
// on_error(status, its first row, its row count). Both statements are reset either way.
template <typename BindRow, typename OnError>
Status InsertInChunks(Statement& one, Statement& many, size_t count, BindRow bind_row,
                      OnError on_error) {
  constexpr size_t kMany = kRowsPerInsert;
  size_t i = 0;
  while (i < count) {
    const size_t rows = count - i >= kMany ? kMany : 1;
    Statement& insert = rows == 1 ? one : many;
    for (size_t k = 0; k < rows; ++k) bind_row(insert, static_cast<int>(k), i + k);
    Status s = insert.Run();
    if (!s.ok()) return on_error(std::move(s), i, rows);
    i += rows;
  }
  return Status::Ok();
}

}  // namespace citycard::db
