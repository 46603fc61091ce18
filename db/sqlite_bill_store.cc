#include "db/sqlite_bill_store.h"

#include <array>
#include <optional>

#include "core/bytes.h"
#include "core/csv.h"

namespace citycard::db {

namespace {

constexpr char kBillColumns[] =
    "bill_id, utility, account_no, card_no, period, amount_fen, due_day, status, transfer_id, "
    "amount_paid_fen, paid_ms, paid_by, file_sha256";
// What ReadBill reads: the columns, then the storage classes of the two columns that rows of
// schema version 1 keep as hex text and later rows as bytes.
constexpr char kBillSelect[] =
    "SELECT bill_id, utility, account_no, card_no, period, amount_fen, due_day, status, "
    "transfer_id, amount_paid_fen, paid_ms, paid_by, file_sha256, typeof(transfer_id), "
    "typeof(file_sha256) FROM bills ";
constexpr size_t kTransferIdBytes = 16;
constexpr size_t kFileShaBytes = 32;
constexpr char kImportColumns[] =
    "file_sha256, bills_total, bills_done, chunks_done, complete, started_ms, finished_ms";
constexpr size_t kEncodedResultFields = 7;

// Resets the statement when the scope ends, so that none is left mid-way holding a read
// snapshot open.
class Using {
 public:
  explicit Using(Statement& statement) : statement_(statement) { statement_.Reset(); }
  ~Using() { statement_.Reset(); }
  Using(const Using&) = delete;
  Using& operator=(const Using&) = delete;
  Statement* operator->() const { return &statement_; }
  Statement& operator*() const { return statement_; }

 private:
  Statement& statement_;
};

// Whether b.paid_by is BillPaidByFile(b.file_sha256), without building that string.
bool IsPaidByOwnFile(const StoredBill& b) {
  const std::string_view paid_by = b.paid_by;
  const std::string own = BillPaidByFile("");
  return !b.file_sha256.empty() && paid_by.size() == own.size() + b.file_sha256.size() &&
         paid_by.starts_with(own) && paid_by.substr(own.size()) == b.file_sha256;
}

bool IsLowerHex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A transfer id as kept: 16 bytes big-endian (hi first); schema version 1 kept 32 hex digits
// and '' for none.
Id128 ReadTransferId(const Statement& s, int column, const std::string& storage) {
  Id128 id;
  if (storage == "blob") {
    Bytes bytes = s.ColumnBlob(column);
    // The store writes only 16-byte ids; anything else is a damaged database.
    CITYCARD_ASSERT(bytes.size() == kTransferIdBytes);
    ByteReader r(bytes);
    id.hi = r.U64();
    id.lo = r.U64();
  } else if (storage == "text") {
    std::string hex = s.ColumnText(column);
    if (!hex.empty()) {
      auto parsed = Id128::FromHex(hex);
      CITYCARD_ASSERT(parsed.ok());
      id = *parsed;
    }
  }
  return id;
}

StoredBill ReadBill(const Statement& s) {
  StoredBill b;
  b.bill_id = s.ColumnText(0);
  b.utility = s.ColumnText(1);
  b.account_no = s.ColumnText(2);
  b.card_no = s.ColumnText(3);
  b.period = s.ColumnText(4);
  b.amount_fen = s.ColumnInt(5);
  b.due_day = s.ColumnInt(6);
  b.status = static_cast<BillStatus>(s.ColumnInt(7));
  b.transfer_id = ReadTransferId(s, 8, s.ColumnText(13));
  b.amount_paid_fen = s.ColumnInt(9);
  b.paid_ms = s.ColumnInt(10);
  // A file's SHA-256 is kept as its 32 bytes (see PutBill), anything else as text.
  b.file_sha256 = s.ColumnText(14) == "blob" ? ToHex(s.ColumnBlob(12)) : s.ColumnText(12);
  // NULL paid_by stands for "paid by the file that last carried the bill".
  b.paid_by = s.ColumnIsNull(11) ? BillPaidByFile(b.file_sha256) : s.ColumnText(11);
  return b;
}

// Every row the bound statement gives, as bills.
Result<std::vector<StoredBill>> ReadBills(Statement& s) {
  std::vector<StoredBill> bills;
  while (true) {
    auto row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) return bills;
    bills.push_back(ReadBill(s));
  }
}

BillImportProgress ReadImport(const Statement& s) {
  BillImportProgress p;
  p.file_sha256 = s.ColumnText(0);
  p.bills_total = s.ColumnInt(1);
  p.bills_done = s.ColumnInt(2);
  p.chunks_done = s.ColumnInt(3);
  p.complete = s.ColumnInt(4) != 0;
  p.started_ms = s.ColumnInt(5);
  p.finished_ms = s.ColumnInt(6);
  return p;
}

Status InvalidResults(std::string why) {
  return Status::Internal("invalid_bill_results", "kept bill results are damaged: " + why);
}

Result<int64_t> ParseInt(const std::string& text) {
  if (text.empty() || text.size() > 18) return InvalidResults("bad number '" + text + "'");
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return InvalidResults("bad number '" + text + "'");
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace

struct SqliteBillStore::Statements {
  Statement insert_mandate;
  Statement delete_mandate;
  Statement has_mandate;
  Statement list_mandates;
  Statement list_card_mandates;
  Statement find_bill;
  Statement find_bills_by_id;
  Statement list_bills_by_id_range;
  Statement put_bill;
  Statement find_import;
  Statement put_import;
  Statement append_results;
  Statement list_results;
};

const std::vector<std::string>& SqliteBillStore::Migrations() {
  static const std::vector<std::string> kMigrations = {
      "CREATE TABLE bill_mandates(card_no TEXT NOT NULL, utility TEXT NOT NULL,"
      " account_no TEXT NOT NULL, created_s INTEGER NOT NULL,"
      " PRIMARY KEY(card_no, utility, account_no)) WITHOUT ROWID;"
      "CREATE TABLE bills(utility TEXT NOT NULL, bill_id TEXT NOT NULL,"
      " account_no TEXT NOT NULL, card_no TEXT NOT NULL, period TEXT NOT NULL,"
      " amount_fen INTEGER NOT NULL, due_day INTEGER NOT NULL, status INTEGER NOT NULL,"
      " transfer_id TEXT NOT NULL, amount_paid_fen INTEGER NOT NULL, paid_ms INTEGER NOT NULL,"
      " paid_by TEXT NOT NULL, file_sha256 TEXT NOT NULL,"
      // The bill id leads the key, so that a counter's lookup by bill id alone needs no
      // second index (one B-tree insert per bill instead of two).
      " PRIMARY KEY(bill_id, utility)) WITHOUT ROWID;"
      "CREATE TABLE bill_imports(file_sha256 TEXT PRIMARY KEY, bills_total INTEGER NOT NULL,"
      " bills_done INTEGER NOT NULL, chunks_done INTEGER NOT NULL, complete INTEGER NOT NULL,"
      " started_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL) WITHOUT ROWID;"
      "CREATE TABLE bill_import_chunks(file_sha256 TEXT NOT NULL, chunk INTEGER NOT NULL,"
      " results TEXT NOT NULL, PRIMARY KEY(file_sha256, chunk)) WITHOUT ROWID;",
      // Version 2: a bill row about half as large (a million-bill import writes a million of
      // them): the transfer id as 16 bytes instead of 32 hex digits, the file's SHA-256 as 32
      // bytes instead of 64 hex digits, and paid_by NULL instead of "file:<sha256>" when the
      // file that last carried the bill paid it. Rows kept before stay as they were (hex
      // text), which ReadBill also reads.
      "ALTER TABLE bills RENAME TO bills_v1;"
      "CREATE TABLE bills(utility TEXT NOT NULL, bill_id TEXT NOT NULL,"
      " account_no TEXT NOT NULL, card_no TEXT NOT NULL, period TEXT NOT NULL,"
      " amount_fen INTEGER NOT NULL, due_day INTEGER NOT NULL, status INTEGER NOT NULL,"
      " transfer_id BLOB, amount_paid_fen INTEGER NOT NULL, paid_ms INTEGER NOT NULL,"
      " paid_by TEXT, file_sha256 BLOB NOT NULL,"
      " PRIMARY KEY(bill_id, utility)) WITHOUT ROWID;"
      "INSERT INTO bills SELECT utility, bill_id, account_no, card_no, period, amount_fen,"
      " due_day, status, NULLIF(transfer_id, ''), amount_paid_fen, paid_ms,"
      " CASE WHEN file_sha256 <> '' AND paid_by = 'file:' || file_sha256 THEN NULL"
      " ELSE paid_by END, file_sha256 FROM bills_v1;"
      "DROP TABLE bills_v1;",
  };
  return kMigrations;
}

SqliteBillStore::SqliteBillStore(Database& db) : db_(db) {}
SqliteBillStore::~SqliteBillStore() = default;

Result<std::unique_ptr<SqliteBillStore>> SqliteBillStore::Open(Database& db) {
  CITYCARD_RETURN_IF_ERROR(db.Migrate("bills", Migrations()));
  std::unique_ptr<SqliteBillStore> store(new SqliteBillStore(db));
  CITYCARD_RETURN_IF_ERROR(store->Prepare());
  return store;
}

Status SqliteBillStore::Prepare() {
  std::vector<std::string> sql = {
      "INSERT INTO bill_mandates(card_no, utility, account_no, created_s) VALUES(?, ?, ?, ?)",
      "DELETE FROM bill_mandates WHERE card_no = ? AND utility = ? AND account_no = ?",
      "SELECT 1 FROM bill_mandates WHERE card_no = ? AND utility = ? AND account_no = ?",
      // A NULL parameter means "any".
      "SELECT card_no, utility, account_no, created_s FROM bill_mandates"
      " WHERE (?1 IS NULL OR card_no = ?1) AND (?2 IS NULL OR utility = ?2)"
      " ORDER BY card_no, utility, account_no LIMIT ?3",
      // The same for one card, written so that SQLite seeks the card in the key (an import
      // asks for every card it pays from; the form above scans the whole table).
      "SELECT card_no, utility, account_no, created_s FROM bill_mandates"
      " WHERE card_no = ?1 AND (?2 IS NULL OR utility = ?2)"
      " ORDER BY card_no, utility, account_no LIMIT ?3",
      std::string(kBillSelect) + "WHERE utility = ? AND bill_id = ?",
      std::string(kBillSelect) + "WHERE bill_id = ? ORDER BY utility",
      std::string(kBillSelect) +
          "WHERE bill_id >= ? AND bill_id <= ? ORDER BY bill_id, utility LIMIT ?",
      std::string("INSERT OR REPLACE INTO bills(") + kBillColumns +
          ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      std::string("SELECT ") + kImportColumns + " FROM bill_imports WHERE file_sha256 = ?",
      std::string("INSERT OR REPLACE INTO bill_imports(") + kImportColumns +
          ") VALUES(?, ?, ?, ?, ?, ?, ?)",
      "INSERT INTO bill_import_chunks(file_sha256, chunk, results) VALUES(?, ?, ?)",
      "SELECT results FROM bill_import_chunks WHERE file_sha256 = ? ORDER BY chunk",
  };
  std::vector<Statement> prepared;
  for (const std::string& text : sql) {
    auto statement = db_.Prepare(text);
    if (!statement.ok()) return statement.status();
    prepared.push_back(std::move(*statement));
  }
  s_.reset(new Statements{std::move(prepared[0]), std::move(prepared[1]),
                          std::move(prepared[2]), std::move(prepared[3]),
                          std::move(prepared[4]), std::move(prepared[5]),
                          std::move(prepared[6]), std::move(prepared[7]),
                          std::move(prepared[8]), std::move(prepared[9]),
                          std::move(prepared[10]), std::move(prepared[11]),
                          std::move(prepared[12])});
  return Status::Ok();
}

Status SqliteBillStore::SetCacheBytes(int64_t bytes) {
  // A negative cache_size is a size in KiB rather than in pages.
  return db_.Exec("PRAGMA cache_size=-" + std::to_string(bytes / 1024));
}

Status SqliteBillStore::Begin() { return db_.Begin(); }
Status SqliteBillStore::Commit() { return db_.Commit(); }
Status SqliteBillStore::Rollback() { return db_.Rollback(); }
Result<int64_t> SqliteBillStore::ChangesByOthers() { return db_.DataVersion(); }

// ---- Mandates ----------------------------------------------------------------------------

Status SqliteBillStore::InsertMandate(const Mandate& m) {
  Using s(s_->insert_mandate);
  s->Bind(1, m.card_no).Bind(2, m.utility).Bind(3, m.account_no).Bind(4, m.created_s);
  Status status = s->Run();
  if (status.code() == "db_constraint") {
    return Status::Refused("mandate_exists",
                           "card " + m.card_no + " already has a mandate for " + m.utility +
                               " account " + m.account_no);
  }
  return status;
}

Status SqliteBillStore::DeleteMandate(std::string_view card_no, std::string_view utility,
                                      std::string_view account_no) {
  Using s(s_->delete_mandate);
  s->Bind(1, card_no).Bind(2, utility).Bind(3, account_no);
  CITYCARD_RETURN_IF_ERROR(s->Run());
  if (db_.Changes() == 1) return Status::Ok();
  return Status::NotFound("mandate_not_found",
                          "card " + std::string(card_no) + " has no mandate for " +
                              std::string(utility) + " account " + std::string(account_no));
}

Result<bool> SqliteBillStore::HasMandate(std::string_view card_no, std::string_view utility,
                                         std::string_view account_no) {
  Using s(s_->has_mandate);
  s->Bind(1, card_no).Bind(2, utility).Bind(3, account_no);
  return s->Step();
}

Result<std::vector<Mandate>> SqliteBillStore::ListMandates(const MandateFilter& filter) {
  Using s(filter.card_no ? s_->list_card_mandates : s_->list_mandates);
  if (filter.card_no) s->Bind(1, *filter.card_no);
  if (filter.utility) s->Bind(2, *filter.utility);
  s->Bind(3, static_cast<int64_t>(kMandateListMax));
  std::vector<Mandate> mandates;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    mandates.push_back(Mandate{s->ColumnText(0), s->ColumnText(1), s->ColumnText(2),
                               s->ColumnInt(3)});
  }
  return mandates;
}

// ---- Bills -------------------------------------------------------------------------------

Result<std::optional<StoredBill>> SqliteBillStore::FindBill(std::string_view utility,
                                                            std::string_view bill_id) {
  Using s(s_->find_bill);
  s->Bind(1, utility).Bind(2, bill_id);
  auto row = s->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<StoredBill>();
  return std::optional<StoredBill>(ReadBill(*s));
}

Result<std::vector<StoredBill>> SqliteBillStore::FindBillsById(std::string_view bill_id) {
  Using s(s_->find_bills_by_id);
  s->Bind(1, bill_id);
  return ReadBills(*s);
}

Result<std::vector<StoredBill>> SqliteBillStore::ListBillsByIdRange(
    std::string_view first_bill_id, std::string_view last_bill_id, size_t limit) {
  Using s(s_->list_bills_by_id_range);
  s->Bind(1, first_bill_id).Bind(2, last_bill_id).Bind(3, static_cast<int64_t>(limit));
  return ReadBills(*s);
}

Status SqliteBillStore::PutBill(const StoredBill& b) {
  Using s(s_->put_bill);
  // Every value is bound without a copy: b and the locals below outlive Run.
  s->BindUnowned(1, b.bill_id).BindUnowned(2, b.utility).BindUnowned(3, b.account_no);
  s->BindUnowned(4, b.card_no).BindUnowned(5, b.period);
  s->Bind(6, b.amount_fen).Bind(7, b.due_day);
  s->Bind(8, int64_t{static_cast<uint8_t>(b.status)});
  std::array<uint8_t, 16> transfer_id;
  if (b.paid()) {
    for (int k = 0; k < 8; ++k) {
      transfer_id[k] = static_cast<uint8_t>(b.transfer_id.hi >> (56 - 8 * k));
      transfer_id[8 + k] = static_cast<uint8_t>(b.transfer_id.lo >> (56 - 8 * k));
    }
    s->BindUnowned(9, ByteView(transfer_id.data(), transfer_id.size()));
  } else {
    s->BindNull(9);
  }
  s->Bind(10, b.amount_paid_fen).Bind(11, b.paid_ms);
  // The compact forms of schema version 2 (see Migrations), each taken only where ReadBill
  // gives back exactly what was put.
  if (IsPaidByOwnFile(b)) {
    s->BindNull(12);
  } else {
    s->BindUnowned(12, b.paid_by);
  }
  // An import puts a million bills of one file: its hash is converted once, not per bill.
  if (b.file_sha256 != sha_hex_) {
    sha_hex_ = b.file_sha256;
    sha_bytes_.clear();
    sha_compact_ = b.file_sha256.size() == 2 * kFileShaBytes && IsLowerHex(b.file_sha256) &&
                   FromHex(b.file_sha256, &sha_bytes_);
  }
  if (sha_compact_) {
    s->BindUnowned(13, ByteView(sha_bytes_));
  } else {
    s->BindUnowned(13, b.file_sha256);
  }
  return s->Run();
}

// ---- Imports -----------------------------------------------------------------------------

Result<std::optional<BillImportProgress>> SqliteBillStore::FindImport(
    std::string_view file_sha256) {
  Using s(s_->find_import);
  s->Bind(1, file_sha256);
  auto row = s->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<BillImportProgress>();
  return std::optional<BillImportProgress>(ReadImport(*s));
}

Status SqliteBillStore::PutImport(const BillImportProgress& p) {
  Using s(s_->put_import);
  s->Bind(1, p.file_sha256).Bind(2, p.bills_total).Bind(3, p.bills_done).Bind(4, p.chunks_done);
  s->Bind(5, int64_t{p.complete ? 1 : 0}).Bind(6, p.started_ms).Bind(7, p.finished_ms);
  return s->Run();
}

std::string SqliteBillStore::EncodeResults(std::span<const BillResult> results) {
  std::string text;
  text.reserve(results.size() * 96);
  for (const BillResult& r : results) {
    std::string status = std::to_string(static_cast<int>(r.status));
    std::string amount = std::to_string(r.amount_fen);
    std::string paid = std::to_string(r.amount_paid_fen);
    AppendCsvRecord(&text, {r.bill_id, r.utility, status, amount, paid, r.transfer_id, r.reason});
  }
  return text;
}

Result<std::vector<BillResult>> SqliteBillStore::DecodeResults(std::string_view text) {
  std::vector<BillResult> results;
  CsvReader reader(text);
  CsvRecord record;
  while (true) {
    auto more = reader.Next(&record);
    if (!more.ok()) return InvalidResults(more.status().message());
    if (!*more) break;
    if (record.fields.size() != kEncodedResultFields) return InvalidResults("wrong field count");
    BillResult r;
    r.bill_id = std::move(record.fields[0]);
    r.utility = std::move(record.fields[1]);
    auto status = ParseInt(record.fields[2]);
    if (!status.ok()) return status.status();
    if (*status < 1 || *status > static_cast<int64_t>(kBillStatusCount)) {
      return InvalidResults("unknown status " + record.fields[2]);
    }
    r.status = static_cast<BillStatus>(*status);
    auto amount = ParseInt(record.fields[3]);
    if (!amount.ok()) return amount.status();
    auto paid = ParseInt(record.fields[4]);
    if (!paid.ok()) return paid.status();
    r.amount_fen = *amount;
    r.amount_paid_fen = *paid;
    r.transfer_id = std::move(record.fields[5]);
    r.reason = std::move(record.fields[6]);
    results.push_back(std::move(r));
  }
  return results;
}

Status SqliteBillStore::AppendImportResults(std::string_view file_sha256, int64_t chunk,
                                            std::span<const BillResult> results) {
  Using s(s_->append_results);
  s->Bind(1, file_sha256).Bind(2, chunk).Bind(3, EncodeResults(results));
  Status status = s->Run();
  if (status.code() == "db_constraint") {
    return Status::Internal("chunk_exists", "chunk " + std::to_string(chunk) + " of file " +
                                                std::string(file_sha256) + " is kept already");
  }
  return status;
}

Status SqliteBillStore::ForEachImportResult(
    std::string_view file_sha256,
    const std::function<Status(std::span<const BillResult>)>& visit) {
  // The kept texts are read out first (so that `visit` may use the store), then decoded and
  // handed on one chunk at a time, so that a million results are never all decoded at once.
  std::vector<std::string> chunks;
  {
    Using s(s_->list_results);
    s->Bind(1, file_sha256);
    while (true) {
      auto row = s->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      chunks.push_back(s->ColumnText(0));
    }
  }
  for (std::string& text : chunks) {
    auto results = DecodeResults(text);
    if (!results.ok()) return results.status();
    std::string().swap(text);
    CITYCARD_RETURN_IF_ERROR(visit(*results));
  }
  return Status::Ok();
}

}  // namespace citycard::db
