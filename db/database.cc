#include "db/database.h"

#include <sqlite3.h>

#include <filesystem>

#include "db/wal_write_buffer.h"

namespace citycard::db {

namespace {

Status SqlError(sqlite3* db, std::string_view what) {
  int code = sqlite3_extended_errcode(db);
  std::string message = std::string(what) + ": " + sqlite3_errmsg(db);
  if ((code & 0xff) == SQLITE_CONSTRAINT) return Status::Refused("db_constraint", message);
  return Status::Internal("db_error", message);
}

// Process-wide SQLite settings, made once before the first connection (sqlite3_config is
// refused with SQLITE_MISUSE once the library is initialised, which then changes nothing).
// Memory statistics are off: with them on, every allocation SQLite makes takes a global mutex
// and updates counters nobody reads; they were ~5 % of the ingest writer's instructions.
void ConfigureSqliteOnce() {
  static const bool configured = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return true;
  }();
  (void)configured;
}

}  // namespace

std::string ValuesPlaceholders(int columns, int rows) {
  CITYCARD_ASSERT(columns > 0 && rows > 0);
  std::string row = "(";
  for (int c = 0; c < columns; ++c) row += c == 0 ? "?" : ",?";
  row += ")";
  std::string out;
  out.reserve(static_cast<size_t>(rows) * (row.size() + 1));
  for (int r = 0; r < rows; ++r) {
    if (r > 0) out += ",";
    out += row;
  }
  return out;
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, bool create) {
  ConfigureSqliteOnce();
  CITYCARD_RETURN_IF_ERROR(RegisterWalBufferVfs());
  return Open(path, create, kWalBufferVfsName);
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, bool create,
                                                 const std::string& vfs_name) {
  ConfigureSqliteOnce();
  if (!create && path != ":memory:" && !std::filesystem::exists(path)) {
    return Status::NotFound("db_not_found", "no database at " + path + " (run `citycard init`)");
  }
  sqlite3* handle = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &handle, flags, vfs_name.c_str()) != SQLITE_OK) {
    std::string message = handle ? sqlite3_errmsg(handle) : "out of memory";
    sqlite3_close(handle);
    return Status::Internal("db_open_failed", "cannot open " + path + ": " + message);
  }
  std::unique_ptr<Database> db(new Database(handle, path));
  sqlite3_busy_timeout(handle, kBusyTimeoutMs);
  // WAL with synchronous=FULL: a commit returns only after its WAL frames are fsynced.
  // Set explicitly: the durability of every acknowledgement rests on these two lines.
  CITYCARD_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL"));
  CITYCARD_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL"));
  CITYCARD_RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys=ON"));
  CITYCARD_RETURN_IF_ERROR(db->Exec(
      "CREATE TABLE IF NOT EXISTS schema_versions(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"));
  return db;
}

Database::~Database() { sqlite3_close_v2(db_); }

Status Database::Exec(std::string_view sql) {
  std::string text(sql);
  char* error = nullptr;
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    Status s = SqlError(db_, "exec");
    return s.kind() == Kind::refused ? Status::Refused("db_constraint", message)
                                     : Status::Internal("db_error", message);
  }
  return Status::Ok();
}

Result<Statement> Database::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return SqlError(db_, "prepare '" + std::string(sql.substr(0, 60)) + "'");
  }
  return Statement(db_, stmt);
}

Status Database::Begin() { return Exec("BEGIN IMMEDIATE"); }

Result<int64_t> Database::DataVersion() {
  auto statement = Prepare("PRAGMA data_version");
  if (!statement.ok()) return statement.status();
  auto row = statement->Step();
  if (!row.ok()) return row.status();
  CITYCARD_ASSERT(*row);
  return statement->ColumnInt(0);
}
Status Database::Commit() { return Exec("COMMIT"); }
Status Database::Rollback() { return Exec("ROLLBACK"); }
Status Database::BeginRead() { return Exec("BEGIN DEFERRED"); }

Status Database::EndRead() {
  // A write inside a read scope would be committed here unseen by the caller's own
  // transaction logic; the scopes are for reads only.
  CITYCARD_ASSERT(sqlite3_txn_state(db_, nullptr) != SQLITE_TXN_WRITE);
  return Exec("COMMIT");
}

Result<int64_t> Database::SchemaVersion(std::string_view component) {
  auto stmt = Prepare("SELECT version FROM schema_versions WHERE component = ?");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, component);
  auto row = stmt->Step();
  if (!row.ok()) return row.status();
  return *row ? stmt->ColumnInt(0) : int64_t{0};
}

Status Database::Migrate(std::string_view component, const std::vector<std::string>& migrations) {
  auto version = SchemaVersion(component);
  if (!version.ok()) return version.status();
  int64_t known = static_cast<int64_t>(migrations.size());
  if (*version > known) {
    return Status::Internal("schema_too_new",
                            "the database's " + std::string(component) + " schema is version " +
                                std::to_string(*version) + "; this program knows up to " +
                                std::to_string(known));
  }
  for (int64_t v = *version; v < known; ++v) {
    Transaction txn(*this);
    CITYCARD_RETURN_IF_ERROR(txn.Begin());
    CITYCARD_RETURN_IF_ERROR(Exec(migrations[static_cast<size_t>(v)]));
    auto stmt = Prepare(
        "INSERT INTO schema_versions(component, version) VALUES(?, ?) "
        "ON CONFLICT(component) DO UPDATE SET version = excluded.version");
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, component).Bind(2, v + 1);
    CITYCARD_RETURN_IF_ERROR(stmt->Run());
    CITYCARD_RETURN_IF_ERROR(txn.Commit());
  }
  return Status::Ok();
}

int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
int Database::Changes() const { return sqlite3_changes(db_); }

int64_t Database::PagesWritten() const {
  int current = 0;
  int highest = 0;
  // Only an unknown op fails, and SQLite has known this one since 3.7.12.
  int rc = sqlite3_db_status(db_, SQLITE_DBSTATUS_CACHE_WRITE, &current, &highest, 0);
  CITYCARD_ASSERT(rc == SQLITE_OK);
  return current;
}

Statement::Statement(Statement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) {
  other.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = other.stmt_;
    other.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::Bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::Bind(int index, ByteView blob) {
  sqlite3_bind_blob(stmt_, index, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::BindUnowned(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  return *this;
}

Statement& Statement::BindUnowned(int index, ByteView blob) {
  sqlite3_bind_blob(stmt_, index, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
  return *this;
}

Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqlError(db_, "step");
}

Status Statement::Run() {
  while (true) {
    auto row = Step();
    if (!row.ok()) {
      Reset();
      return row.status();
    }
    if (!*row) break;
  }
  Reset();
  return Status::Ok();
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::ColumnInt(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  return text ? std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(n)) : "";
}

Bytes Statement::ColumnBlob(int column) const {
  const auto* data = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, column));
  int n = sqlite3_column_bytes(stmt_, column);
  return data ? Bytes(data, data + n) : Bytes();
}

ByteView Statement::ColumnBlobView(int column) const {
  const auto* data = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, column));
  int n = sqlite3_column_bytes(stmt_, column);
  return data ? ByteView(data, static_cast<size_t>(n)) : ByteView();
}

bool Statement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

Transaction::~Transaction() {
  if (open_) (void)db_.Rollback();
}

Status Transaction::Begin() {
  CITYCARD_RETURN_IF_ERROR(db_.Begin());
  open_ = true;
  return Status::Ok();
}

Status Transaction::Commit() {
  CITYCARD_ASSERT(open_);
  open_ = false;
  Status s = db_.Commit();
  if (!s.ok()) (void)db_.Rollback();
  return s;
}

}  // namespace citycard::db
