#include "db/sqlite_ledger_store.h"

#include <algorithm>
#include <map>
#include <utility>
#include <string>

#include "core/account_plan.h"
#include "core/settlement_reads.h"
#include "db/id_blob.h"

namespace citycard::db {

namespace {

// Transfers are appended in commit order under their seq (the rowid), so a commit writes its
// transfer rows onto the end of the table; the only random pages a transfer adds are its id's
// entry in the unique index and its two accounts' rows, which are written once per batch.
// History needs no index: each transfer row links to the previous transfer of its debit and
// of its credit account (debit_prev_seq, credit_prev_seq), and an account row holds the head.
const char* const kSchemaV1 = R"sql(
CREATE TABLE ledger_accounts(
  id INTEGER PRIMARY KEY,
  kind INTEGER NOT NULL,
  owner_ref INTEGER NOT NULL,
  floor_fen INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  debits_posted INTEGER NOT NULL,
  credits_posted INTEGER NOT NULL,
  debits_pending INTEGER NOT NULL,
  credits_pending INTEGER NOT NULL,
  last_transfer_seq INTEGER NOT NULL
);
CREATE TABLE ledger_batches(
  seq INTEGER PRIMARY KEY,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL,
  first_transfer_seq INTEGER NOT NULL,
  transfer_count INTEGER NOT NULL,
  timestamp_ms INTEGER NOT NULL
);
CREATE TABLE ledger_transfers(
  seq INTEGER PRIMARY KEY,
  id BLOB NOT NULL UNIQUE,
  debit_account_id INTEGER NOT NULL,
  credit_account_id INTEGER NOT NULL,
  amount_fen INTEGER NOT NULL,
  pending_id BLOB,
  timeout_s INTEGER NOT NULL,
  code INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  user_data_128 BLOB,
  user_data_64 INTEGER NOT NULL,
  user_data_32 INTEGER NOT NULL,
  timestamp_ms INTEGER NOT NULL,
  batch_seq INTEGER NOT NULL,
  debit_balance_after_fen INTEGER NOT NULL,
  credit_balance_after_fen INTEGER NOT NULL,
  debit_prev_seq INTEGER NOT NULL,
  credit_prev_seq INTEGER NOT NULL
);
CREATE TABLE ledger_pending(
  seq INTEGER PRIMARY KEY,
  expires_at_ms INTEGER,
  status INTEGER NOT NULL
);
CREATE INDEX ledger_pending_expiry ON ledger_pending(expires_at_ms)
  WHERE status = 1 AND expires_at_ms IS NOT NULL;
CREATE TABLE ledger_failed(
  id BLOB PRIMARY KEY,
  outcome INTEGER NOT NULL,
  timestamp_ms INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// Version 2: the posted movements of each batch summed per (account, code) for the accounts
// that are few (KeepsBatchSums), so that settlement sums a day's payables from a few rows per
// batch instead of from every transfer of the day (docs/ledger.md "Batch sums"). A batch
// written before it has sums_kept = 0 and is summed from its transfers.
const char* const kSchemaV2 = R"sql(
CREATE TABLE ledger_batch_sums(
  batch_seq INTEGER NOT NULL,
  account_id INTEGER NOT NULL,
  code INTEGER NOT NULL,
  transfers INTEGER NOT NULL,
  debits_fen INTEGER NOT NULL,
  credits_fen INTEGER NOT NULL,
  PRIMARY KEY(batch_seq, account_id, code)
) WITHOUT ROWID;
ALTER TABLE ledger_batches ADD COLUMN sums_kept INTEGER NOT NULL DEFAULT 0;
)sql";

constexpr size_t kIdBytes = kIdBlobBytes;
// Parameters of one row of the transfer insert.
constexpr int kTransferInsertColumns = 18;

constexpr int kAccountColumnCount = 10;
constexpr std::string_view kAccountColumns =
    "id, kind, owner_ref, floor_fen, flags, debits_posted, credits_posted, debits_pending, "
    "credits_pending, last_transfer_seq";

constexpr std::string_view kTransferSelect =
    "SELECT t.seq, t.id, t.debit_account_id, t.credit_account_id, t.amount_fen, t.pending_id, "
    "t.timeout_s, t.code, t.flags, t.user_data_128, t.user_data_64, t.user_data_32, "
    "t.timestamp_ms, t.batch_seq, t.debit_balance_after_fen, t.credit_balance_after_fen, "
    "t.debit_prev_seq, t.credit_prev_seq, p.status, p.expires_at_ms "
    "FROM ledger_transfers t LEFT JOIN ledger_pending p ON p.seq = t.seq ";

constexpr std::string_view kBatchColumns =
    "seq, prev_hash, hash, first_transfer_seq, transfer_count, timestamp_ms";

// A stored id must be exactly 16 bytes; NULL (or empty) stands for the zero id.
Result<Id128> DecodeId(const Bytes& bytes) {
  if (bytes.empty()) return Id128{};
  if (bytes.size() != kIdBytes) {
    return Status::Internal("ledger_corrupt", "a stored id has " + std::to_string(bytes.size()) +
                                                  " bytes, not 16");
  }
  ByteReader r(bytes);
  Id128 id;
  id.hi = r.U64();
  id.lo = r.U64();
  return id;
}

void BindId(Statement& s, int index, const Id128& id) {
  auto bytes = EncodeId(id);
  s.Bind(index, ByteView(bytes));
}

// Zero ids (most pending_id and user_data_128 fields) are stored as NULL to save space.
void BindOptionalId(Statement& s, int index, const Id128& id) {
  if (id.IsZero()) {
    s.BindNull(index);
  } else {
    BindId(s, index, id);
  }
}

int64_t AsInt(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t AsUint(int64_t v) { return static_cast<uint64_t>(v); }

Result<Sha256Digest> DecodeDigest(const Bytes& bytes) {
  if (bytes.size() != kSha256Bytes) {
    return Status::Internal("ledger_corrupt", "a stored hash has " + std::to_string(bytes.size()) +
                                                  " bytes, not 32");
  }
  Sha256Digest d{};
  std::copy(bytes.begin(), bytes.end(), d.begin());
  return d;
}

AccountRecord ReadAccount(const Statement& s) {
  AccountRecord r;
  r.account.id = AsUint(s.ColumnInt(0));
  r.account.kind = static_cast<AccountKind>(s.ColumnInt(1));
  r.account.owner_ref = AsUint(s.ColumnInt(2));
  r.account.floor_fen = s.ColumnInt(3);
  r.account.flags = static_cast<uint32_t>(s.ColumnInt(4));
  r.account.debits_posted = s.ColumnInt(5);
  r.account.credits_posted = s.ColumnInt(6);
  r.account.debits_pending = s.ColumnInt(7);
  r.account.credits_pending = s.ColumnInt(8);
  r.last_transfer_seq = s.ColumnInt(9);
  return r;
}

Result<TransferRecord> ReadTransfer(const Statement& s) {
  TransferRecord r;
  r.seq = s.ColumnInt(0);
  auto id = DecodeId(s.ColumnBlob(1));
  auto pending_id = DecodeId(s.ColumnBlob(5));
  auto user_data = DecodeId(s.ColumnBlob(9));
  if (!id.ok()) return id.status();
  if (!pending_id.ok()) return pending_id.status();
  if (!user_data.ok()) return user_data.status();
  Transfer& t = r.transfer;
  t.id = *id;
  t.debit_account_id = AsUint(s.ColumnInt(2));
  t.credit_account_id = AsUint(s.ColumnInt(3));
  t.amount_fen = s.ColumnInt(4);
  t.pending_id = *pending_id;
  t.timeout_s = static_cast<uint32_t>(s.ColumnInt(6));
  t.code = static_cast<uint16_t>(s.ColumnInt(7));
  t.flags = static_cast<uint16_t>(s.ColumnInt(8));
  t.user_data_128 = *user_data;
  t.user_data_64 = AsUint(s.ColumnInt(10));
  t.user_data_32 = static_cast<uint32_t>(s.ColumnInt(11));
  t.timestamp_ms = s.ColumnInt(12);
  r.batch_seq = s.ColumnInt(13);
  r.debit_balance_after_fen = s.ColumnInt(14);
  r.credit_balance_after_fen = s.ColumnInt(15);
  r.debit_prev_seq = s.ColumnInt(16);
  r.credit_prev_seq = s.ColumnInt(17);
  r.pending_status =
      s.ColumnIsNull(18) ? PendingStatus::none : static_cast<PendingStatus>(s.ColumnInt(18));
  r.expires_at_ms = s.ColumnIsNull(19) ? 0 : s.ColumnInt(19);
  return r;
}

Result<BatchRecord> ReadBatch(const Statement& s) {
  BatchRecord b;
  b.seq = s.ColumnInt(0);
  auto prev = DecodeDigest(s.ColumnBlob(1));
  auto hash = DecodeDigest(s.ColumnBlob(2));
  if (!prev.ok()) return prev.status();
  if (!hash.ok()) return hash.status();
  b.prev_hash = *prev;
  b.hash = *hash;
  b.first_transfer_seq = s.ColumnInt(3);
  b.transfer_count = s.ColumnInt(4);
  b.timestamp_ms = s.ColumnInt(5);
  return b;
}

// Steps a statement whose parameters are bound and appends each row read by `read`.
template <typename Record, typename Read>
Status Collect(Statement& s, Read read, std::vector<Record>* out) {
  while (true) {
    auto row = s.Step();
    if (!row.ok()) {
      s.Reset();
      return row.status();
    }
    if (!*row) break;
    auto record = read(s);
    if constexpr (std::is_same_v<decltype(record), Record>) {
      out->push_back(std::move(record));
    } else {
      if (!record.ok()) {
        s.Reset();
        return record.status();
      }
      out->push_back(std::move(record).value());
    }
  }
  s.Reset();
  return Status::Ok();
}

// The ids of a batch in ascending order. Transfer ids are hashes, so a batch's lookups land at
// random places of the id index; in the index's order, neighbouring lookups share the upper
// levels and often the leaf page, which keeps a large batch's existence checks in the CPU's
// caches (the result order is the callers' "any order"). The ids are big-endian in the index,
// so ascending Id128 (hi, lo) is the index's order.
std::vector<Id128> SortedIds(std::span<const Id128> ids) {
  std::vector<Id128> sorted(ids.begin(), ids.end());
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

Status Prepared(Database& db, std::string_view sql, std::optional<Statement>* out) {
  auto stmt = db.Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  out->emplace(std::move(stmt).value());
  return Status::Ok();
}

// How far `hi` lies above `lo` (hi >= lo), in unsigned arithmetic: ids above 2^63 are
// negative rowids, and the signed difference of two ids far apart would overflow.
uint64_t Distance(int64_t lo, int64_t hi) {
  return static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
}

}  // namespace

const std::vector<std::string>& SqliteLedgerStore::Migrations() {
  static const std::vector<std::string> migrations = {kSchemaV1, kSchemaV2};
  return migrations;
}

Result<std::unique_ptr<SqliteLedgerStore>> SqliteLedgerStore::Open(Database& db) {
  CITYCARD_RETURN_IF_ERROR(db.Migrate("ledger", Migrations()));
  std::unique_ptr<SqliteLedgerStore> store(new SqliteLedgerStore(db));
  CITYCARD_RETURN_IF_ERROR(store->Prepare());
  return store;
}

Status SqliteLedgerStore::Prepare() {
  std::string columns(kAccountColumns);
  std::string select(kTransferSelect);
  CITYCARD_RETURN_IF_ERROR(
      Prepared(db_, "SELECT " + columns + " FROM ledger_accounts WHERE id = ?", &account_by_id_));
  CITYCARD_RETURN_IF_ERROR(Prepared(
      db_, "SELECT " + columns + " FROM ledger_accounts WHERE id >= ? ORDER BY id",
      &accounts_from_id_));
  CITYCARD_RETURN_IF_ERROR(Prepared(db_, select + "WHERE t.id = ?", &transfer_by_id_));
  CITYCARD_RETURN_IF_ERROR(Prepared(db_, select + "WHERE t.seq = ?", &transfer_by_seq_));
  CITYCARD_RETURN_IF_ERROR(Prepared(
      db_, "SELECT id, outcome, timestamp_ms FROM ledger_failed WHERE id = ?", &failed_by_id_));
  CITYCARD_RETURN_IF_ERROR(Prepared(
      db_, "INSERT INTO ledger_accounts(" + columns + ") VALUES(?,?,?,?,?,?,?,?,?,?)",
      &insert_account_));
  // The ledger writes back only accounts it read in the same transaction, whole: a row per
  // account in REPLACE statements of kRowsPerInsert rows costs a statement per 32 accounts
  // where an UPDATE per account cost one each (docs/benchmarks.md, session of 13:21). The
  // table has no index but its INTEGER PRIMARY KEY, so the REPLACE overwrites the row.
  const std::string replace_accounts_head =
      "INSERT OR REPLACE INTO ledger_accounts(" + columns + ") VALUES ";
  CITYCARD_RETURN_IF_ERROR(Prepared(
      db_, replace_accounts_head + ValuesPlaceholders(kAccountColumnCount, 1), &replace_account_));
  CITYCARD_RETURN_IF_ERROR(Prepared(
      db_, replace_accounts_head + ValuesPlaceholders(kAccountColumnCount, kRowsPerInsert),
      &replace_accounts_));
  // OR FAIL: a taken id stops the statement without undoing its earlier rows, so SQLite
  // keeps no statement journal for the multi-row insert; a failed Write is always rolled back
  // by its caller (LedgerStore's contract), so no partial batch survives.
  const std::string insert_transfers_head =
      "INSERT OR FAIL INTO ledger_transfers(seq, id, debit_account_id, credit_account_id, "
      "amount_fen, pending_id, timeout_s, code, flags, user_data_128, user_data_64, "
      "user_data_32, timestamp_ms, batch_seq, debit_balance_after_fen, "
      "credit_balance_after_fen, debit_prev_seq, credit_prev_seq) VALUES ";
  CITYCARD_RETURN_IF_ERROR(Prepared(
      db_, insert_transfers_head + ValuesPlaceholders(kTransferInsertColumns, 1),
      &insert_transfer_));
  CITYCARD_RETURN_IF_ERROR(Prepared(
      db_, insert_transfers_head + ValuesPlaceholders(kTransferInsertColumns, kRowsPerInsert),
      &insert_transfers_));
  CITYCARD_RETURN_IF_ERROR(Prepared(
      db_, "INSERT INTO ledger_pending(seq, expires_at_ms, status) VALUES(?,?,?)", &insert_pending_));
  CITYCARD_RETURN_IF_ERROR(
      Prepared(db_, "UPDATE ledger_pending SET status = ? WHERE seq = ?", &update_pending_));
  CITYCARD_RETURN_IF_ERROR(Prepared(db_, "PRAGMA data_version", &data_version_query_));
  CITYCARD_RETURN_IF_ERROR(Prepared(
      db_, "INSERT INTO ledger_failed(id, outcome, timestamp_ms) VALUES(?,?,?)", &insert_failed_));
  CITYCARD_RETURN_IF_ERROR(Prepared(
      db_,
      "INSERT INTO ledger_batches(" + std::string(kBatchColumns) +
          ", sums_kept) VALUES(?,?,?,?,?,?,1)",
      &insert_batch_));
  CITYCARD_RETURN_IF_ERROR(Prepared(
      db_,
      "INSERT INTO ledger_batch_sums(batch_seq, account_id, code, transfers, debits_fen, "
      "credits_fen) VALUES(?,?,?,?,?,?)",
      &insert_batch_sum_));
  return Status::Ok();
}

Status SqliteLedgerStore::Begin() { return db_.Begin(); }
Status SqliteLedgerStore::Commit() { return db_.Commit(); }
Status SqliteLedgerStore::Rollback() { return db_.Rollback(); }

// The accounts are read in the table's (signed rowid) order. Where the asked ids lie close
// together, as when a settlement credits every capped card's purse or a batch of taps touches
// most of a small city's cards, one cursor walks from each asked row to the next instead of
// seeking it from the root: a step to the next row costs a fraction of a seek
// (docs/benchmarks.md). Where they lie far apart the walk stops and seeks the next id, so a
// sparse read costs at most kAccountWalkStepsMax wasted steps more per id than point lookups.
Status SqliteLedgerStore::LoadAccounts(std::span<const uint64_t> ids,
                                       std::vector<AccountRecord>* out) {
  std::vector<int64_t> keys;
  keys.reserve(ids.size());
  for (uint64_t id : ids) keys.push_back(AsInt(id));
  // The ledger asks in order (it sorts what it asks); checking is one pass.
  if (!std::is_sorted(keys.begin(), keys.end())) std::sort(keys.begin(), keys.end());
  // An id asked twice is read once: the walk passes each row once.
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  size_t next = 0;
  while (next < keys.size()) {
    if (keys.size() - next == 1 || Distance(keys[next], keys[next + 1]) > kAccountWalkGapMax) {
      account_by_id_->Bind(1, keys[next++]);
      CITYCARD_RETURN_IF_ERROR(Collect(*account_by_id_, ReadAccount, out));
      continue;
    }
    CITYCARD_RETURN_IF_ERROR(WalkAccounts(keys, &next, out));
  }
  return Status::Ok();
}

// Reads keys[*next] and the asked ids after it with one cursor, for as long as each is within
// kAccountWalkGapMax of the row before and is reached in kAccountWalkStepsMax steps; leaves
// *next at the first id not read (past the ids that do not exist).
Status SqliteLedgerStore::WalkAccounts(const std::vector<int64_t>& keys, size_t* next,
                                       std::vector<AccountRecord>* out) {
  Statement& walk = *accounts_from_id_;
  walk.Bind(1, keys[*next]);
  int wasted = 0;
  for (;;) {
    auto row = walk.Step();
    if (!row.ok()) {
      walk.Reset();
      return row.status();
    }
    if (!*row) {
      // No row at or after the asked id: none of the ids left exists.
      *next = keys.size();
      break;
    }
    const int64_t id = walk.ColumnInt(0);
    while (*next < keys.size() && keys[*next] < id) ++*next;  // ids with no row
    if (*next == keys.size()) break;
    if (keys[*next] == id) {
      out->push_back(ReadAccount(walk));
      ++*next;
      wasted = 0;
      if (*next == keys.size() || Distance(id, keys[*next]) > kAccountWalkGapMax) break;
      continue;
    }
    if (++wasted > kAccountWalkStepsMax) break;
  }
  walk.Reset();
  return Status::Ok();
}

Status SqliteLedgerStore::LoadTransfers(std::span<const Id128> ids, std::vector<TransferRecord>* out) {
  for (const Id128& id : SortedIds(ids)) {
    BindId(*transfer_by_id_, 1, id);
    CITYCARD_RETURN_IF_ERROR(Collect(*transfer_by_id_, ReadTransfer, out));
  }
  return Status::Ok();
}

Status SqliteLedgerStore::LoadFailed(std::span<const Id128> ids, std::vector<FailedTransfer>* out) {
  auto read = [](const Statement& s) -> Result<FailedTransfer> {
    auto id = DecodeId(s.ColumnBlob(0));
    if (!id.ok()) return id.status();
    return FailedTransfer{*id, static_cast<TransferOutcome>(s.ColumnInt(1)), s.ColumnInt(2)};
  };
  for (const Id128& id : SortedIds(ids)) {
    BindId(*failed_by_id_, 1, id);
    CITYCARD_RETURN_IF_ERROR(Collect(*failed_by_id_, read, out));
  }
  return Status::Ok();
}

Status SqliteLedgerStore::LoadTransfersBySeq(std::span<const int64_t> seqs,
                                             std::vector<TransferRecord>* out) {
  for (int64_t seq : seqs) {
    transfer_by_seq_->Bind(1, seq);
    CITYCARD_RETURN_IF_ERROR(Collect(*transfer_by_seq_, ReadTransfer, out));
  }
  return Status::Ok();
}

Status SqliteLedgerStore::LoadExpiredPending(int64_t now_ms, size_t limit,
                                             std::vector<TransferRecord>* out) {
  auto stmt = db_.Prepare(std::string(kTransferSelect) +
                          "WHERE p.status = 1 AND p.expires_at_ms IS NOT NULL AND "
                          "p.expires_at_ms <= ? ORDER BY p.expires_at_ms, t.seq LIMIT ?");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, now_ms).Bind(2, static_cast<int64_t>(limit));
  return Collect(*stmt, ReadTransfer, out);
}

Result<LedgerHead> SqliteLedgerStore::LoadHead() {
  LedgerHead head;
  auto max_seq = db_.Prepare("SELECT coalesce(max(seq), 0) FROM ledger_transfers");
  if (!max_seq.ok()) return max_seq.status();
  auto row = max_seq->Step();
  if (!row.ok()) return row.status();
  head.last_transfer_seq = max_seq->ColumnInt(0);
  auto last = db_.Prepare("SELECT " + std::string(kBatchColumns) +
                          " FROM ledger_batches ORDER BY seq DESC LIMIT 1");
  if (!last.ok()) return last.status();
  std::vector<BatchRecord> batches;
  CITYCARD_RETURN_IF_ERROR(Collect(*last, ReadBatch, &batches));
  if (!batches.empty()) head.last_batch = batches.front();
  return head;
}

Result<bool> SqliteLedgerStore::ChangedElsewhere() {
  // Prepared once: the engine asks inside every write and before every account lookup.
  auto row = data_version_query_->Step();
  if (!row.ok()) {
    data_version_query_->Reset();
    return row.status();
  }
  CITYCARD_ASSERT(*row);
  const int64_t version = data_version_query_->ColumnInt(0);
  data_version_query_->Reset();
  bool changed = !data_version_ || *data_version_ != version;
  data_version_ = version;
  return changed;
}

namespace {
// A transfer or declined id that is already stored can only reach the write when a caller of
// Ledger::ApplyNew broke its promise that the ids are new (Apply searches them first): that is
// a fault to stop on, not a refusal to show to a user.
Status TakenIdAsInternal(Status written, const Id128& id) {
  if (written.ok() || written.code() != "db_constraint") return written;
  return Status::Internal("transfer_id_taken",
                          "transfer id " + id.ToHex() + " is already stored: " + written.message());
}

// Binds transfer `r` as the row whose first parameter is `base` + 1; `id` holds its id's
// bytes, which the statement points at (an unowned bind) until it runs.
void BindTransferRow(Statement& insert, int base, const TransferRecord& r,
                     const std::array<uint8_t, kIdBytes>& id) {
  const Transfer& t = r.transfer;
  insert.Bind(base + 1, r.seq).BindUnowned(base + 2, ByteView(id.data(), id.size()));
  insert.Bind(base + 3, AsInt(t.debit_account_id))
      .Bind(base + 4, AsInt(t.credit_account_id))
      .Bind(base + 5, t.amount_fen);
  BindOptionalId(insert, base + 6, t.pending_id);
  insert.Bind(base + 7, int64_t{t.timeout_s})
      .Bind(base + 8, int64_t{t.code})
      .Bind(base + 9, int64_t{t.flags});
  BindOptionalId(insert, base + 10, t.user_data_128);
  insert.Bind(base + 11, AsInt(t.user_data_64))
      .Bind(base + 12, int64_t{t.user_data_32})
      .Bind(base + 13, t.timestamp_ms)
      .Bind(base + 14, r.batch_seq)
      .Bind(base + 15, r.debit_balance_after_fen)
      .Bind(base + 16, r.credit_balance_after_fen)
      .Bind(base + 17, r.debit_prev_seq)
      .Bind(base + 18, r.credit_prev_seq);
}

// The batch's posted movements on the accounts that keep batch sums, per (account, code), as
// SettlementReads::SumPostedMovements counts them: each posted transfer once on its debit
// and once on its credit side.
std::vector<AccountCodeSum> BatchSums(std::span<const TransferRecord> transfers) {
  std::map<std::pair<uint64_t, uint16_t>, AccountCodeSum> sums;
  // The entry last added to: a batch's taps credit one payable after another.
  AccountCodeSum* last = nullptr;
  auto at = [&](uint64_t account, uint16_t code) -> AccountCodeSum& {
    if (last != nullptr && last->account_id == account && last->code == code) return *last;
    AccountCodeSum& sum = sums[{account, code}];
    sum.account_id = account;
    sum.code = code;
    last = &sum;
    return sum;
  };
  for (const TransferRecord& r : transfers) {
    const Transfer& t = r.transfer;
    if ((t.flags & kTransferNotPostedFlags) != 0) continue;
    if (KeepsBatchSums(AccountIdKind(t.debit_account_id))) {
      AccountCodeSum& d = at(t.debit_account_id, t.code);
      d.transfers += 1;
      d.debits_fen += t.amount_fen;
    }
    if (KeepsBatchSums(AccountIdKind(t.credit_account_id))) {
      AccountCodeSum& c = at(t.credit_account_id, t.code);
      c.transfers += 1;
      c.credits_fen += t.amount_fen;
    }
  }
  std::vector<AccountCodeSum> out;
  out.reserve(sums.size());
  for (const auto& [key, sum] : sums) out.push_back(sum);
  return out;
}

// Compares the sums kept for `batch` (read by `kept_sums`, a prepared select of one batch's
// rows in stored order) with `computed`; a problem when they differ.
Status CompareBatchSums(Statement& kept_sums, int64_t batch, std::vector<AccountCodeSum> computed,
                        size_t problems_max, std::vector<std::string>* problems) {
  kept_sums.Bind(1, batch);
  std::vector<AccountCodeSum> kept;
  CITYCARD_RETURN_IF_ERROR(Collect(kept_sums,
                                   [](const Statement& s) {
                                     return AccountCodeSum{AsUint(s.ColumnInt(0)),
                                                           static_cast<uint16_t>(s.ColumnInt(1)),
                                                           s.ColumnInt(2), s.ColumnInt(4),
                                                           s.ColumnInt(3)};
                                   },
                                   &kept));
  // Both in (account as stored, code) order: the stored order is the signed id's.
  std::sort(computed.begin(), computed.end(), [](const AccountCodeSum& a, const AccountCodeSum& b) {
    return std::pair(AsInt(a.account_id), a.code) < std::pair(AsInt(b.account_id), b.code);
  });
  if (kept != computed && problems->size() < problems_max) {
    problems->push_back("batch " + std::to_string(batch) + ": its kept sums (" +
                        std::to_string(kept.size()) + " rows) differ from its transfers' (" +
                        std::to_string(computed.size()) + " rows)");
  }
  return Status::Ok();
}

// A transfer row as VerifyBatchSums reads it: the fields BatchSums looks at.
TransferRecord ReadSummedTransfer(const Statement& s) {
  TransferRecord r;
  r.transfer.debit_account_id = AsUint(s.ColumnInt(0));
  r.transfer.credit_account_id = AsUint(s.ColumnInt(1));
  r.transfer.amount_fen = s.ColumnInt(2);
  r.transfer.code = static_cast<uint16_t>(s.ColumnInt(3));
  r.transfer.flags = static_cast<uint16_t>(s.ColumnInt(4));
  return r;
}

}  // namespace

Status VerifyBatchSums(Database& db, size_t problems_max, std::vector<std::string>* problems) {
  auto kept = db.Prepare(
      "SELECT seq, first_transfer_seq, transfer_count FROM ledger_batches WHERE sums_kept = 1 "
      "ORDER BY seq");
  if (!kept.ok()) return kept.status();
  auto rows = db.Prepare(
      "SELECT debit_account_id, credit_account_id, amount_fen, code, flags FROM ledger_transfers "
      "WHERE seq BETWEEN ? AND ? ORDER BY seq");
  if (!rows.ok()) return rows.status();
  auto kept_sums = db.Prepare(
      "SELECT account_id, code, transfers, debits_fen, credits_fen FROM ledger_batch_sums "
      "WHERE batch_seq = ? ORDER BY account_id, code");
  if (!kept_sums.ok()) return kept_sums.status();
  std::vector<TransferRecord> transfers;
  for (;;) {
    auto batch = kept->Step();
    if (!batch.ok()) return batch.status();
    if (!*batch) return Status::Ok();
    const int64_t first = kept->ColumnInt(1);
    rows->Bind(1, first).Bind(2, first + kept->ColumnInt(2) - 1);
    transfers.clear();
    CITYCARD_RETURN_IF_ERROR(Collect(*rows, ReadSummedTransfer, &transfers));
    CITYCARD_RETURN_IF_ERROR(CompareBatchSums(*kept_sums, kept->ColumnInt(0), BatchSums(transfers),
                                              problems_max, problems));
  }
}

bool KeepsBatchSums(AccountKind kind) {
  return kind != AccountKind::card_purse && kind != AccountKind::medical_account;
}

Status SqliteLedgerStore::InsertTransfers(std::span<const TransferRecord> transfers) {
  // The id bytes the statement points at (unowned binds), per row of one statement.
  std::array<std::array<uint8_t, kIdBytes>, kRowsPerInsert> ids;
  auto bind = [&](Statement& insert, int k, size_t row) {
    ids[k] = EncodeId(transfers[row].transfer.id);
    BindTransferRow(insert, k * kTransferInsertColumns, transfers[row], ids[k]);
  };
  // Which of a statement's ids was taken SQLite does not say; the first names the batch.
  auto on_error = [&](Status s, size_t first, size_t) {
    return TakenIdAsInternal(std::move(s), transfers[first].transfer.id);
  };
  return InsertInChunks(*insert_transfer_, *insert_transfers_, transfers.size(), bind, on_error);
}

Status SqliteLedgerStore::WriteBackAccounts(std::span<const AccountRecord> accounts) {
  auto bind = [&](Statement& replace, int k, size_t row) {
    const Account& a = accounts[row].account;
    const int base = k * kAccountColumnCount;
    replace.Bind(base + 1, AsInt(a.id))
        .Bind(base + 2, int64_t{static_cast<uint8_t>(a.kind)})
        .Bind(base + 3, AsInt(a.owner_ref))
        .Bind(base + 4, a.floor_fen)
        .Bind(base + 5, int64_t{a.flags})
        .Bind(base + 6, a.debits_posted)
        .Bind(base + 7, a.credits_posted)
        .Bind(base + 8, a.debits_pending)
        .Bind(base + 9, a.credits_pending)
        .Bind(base + 10, accounts[row].last_transfer_seq);
  };
  auto on_error = [&](Status s, size_t, size_t) { return s; };
  return InsertInChunks(*replace_account_, *replace_accounts_, accounts.size(), bind, on_error);
}

Status SqliteLedgerStore::Write(const LedgerWrite& write) {
  for (const Account& a : write.new_accounts) {
    insert_account_->Bind(1, AsInt(a.id))
        .Bind(2, int64_t{static_cast<uint8_t>(a.kind)})
        .Bind(3, AsInt(a.owner_ref))
        .Bind(4, a.floor_fen)
        .Bind(5, int64_t{a.flags})
        .Bind(6, a.debits_posted)
        .Bind(7, a.credits_posted)
        .Bind(8, a.debits_pending)
        .Bind(9, a.credits_pending)
        .Bind(10, int64_t{0});
    CITYCARD_RETURN_IF_ERROR(insert_account_->Run());
  }
  CITYCARD_RETURN_IF_ERROR(WriteBackAccounts(write.accounts));
  CITYCARD_RETURN_IF_ERROR(InsertTransfers(write.transfers));
  for (const TransferRecord& r : write.transfers) {
    if (r.pending_status != PendingStatus::none) {
      insert_pending_->Bind(1, r.seq);
      if (r.expires_at_ms == 0) {
        insert_pending_->BindNull(2);
      } else {
        insert_pending_->Bind(2, r.expires_at_ms);
      }
      insert_pending_->Bind(3, int64_t{static_cast<uint8_t>(r.pending_status)});
      CITYCARD_RETURN_IF_ERROR(insert_pending_->Run());
    }
  }
  for (const FailedTransfer& f : write.failed) {
    BindId(*insert_failed_, 1, f.id);
    insert_failed_->Bind(2, int64_t{static_cast<uint8_t>(f.outcome)}).Bind(3, f.timestamp_ms);
    CITYCARD_RETURN_IF_ERROR(TakenIdAsInternal(insert_failed_->Run(), f.id));
  }
  for (const auto& [seq, status] : write.pending_updates) {
    update_pending_->Bind(1, int64_t{static_cast<uint8_t>(status)}).Bind(2, seq);
    CITYCARD_RETURN_IF_ERROR(update_pending_->Run());
    if (db_.Changes() != 1) {
      return Status::Internal("ledger_write_failed",
                              "pending transfer seq " + std::to_string(seq) + " is not stored");
    }
  }
  if (write.batch) {
    const BatchRecord& b = *write.batch;
    insert_batch_->Bind(1, b.seq)
        .Bind(2, ByteView(b.prev_hash))
        .Bind(3, ByteView(b.hash))
        .Bind(4, b.first_transfer_seq)
        .Bind(5, b.transfer_count)
        .Bind(6, b.timestamp_ms);
    CITYCARD_RETURN_IF_ERROR(insert_batch_->Run());
    for (const AccountCodeSum& sum : BatchSums(write.transfers)) {
      insert_batch_sum_->Bind(1, b.seq)
          .Bind(2, AsInt(sum.account_id))
          .Bind(3, int64_t{sum.code})
          .Bind(4, sum.transfers)
          .Bind(5, sum.debits_fen)
          .Bind(6, sum.credits_fen);
      CITYCARD_RETURN_IF_ERROR(insert_batch_sum_->Run());
    }
  }
  return Status::Ok();
}

Status SqliteLedgerStore::ScanAccounts(const std::function<Status(const AccountRecord&)>& visit) {
  auto stmt = db_.Prepare("SELECT " + std::string(kAccountColumns) + " FROM ledger_accounts");
  if (!stmt.ok()) return stmt.status();
  while (true) {
    auto row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
    CITYCARD_RETURN_IF_ERROR(visit(ReadAccount(*stmt)));
  }
}

Status SqliteLedgerStore::ScanTransfers(int64_t after_seq, size_t limit,
                                        std::vector<TransferRecord>* out) {
  auto stmt = db_.Prepare(std::string(kTransferSelect) + "WHERE t.seq > ? ORDER BY t.seq LIMIT ?");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, after_seq).Bind(2, static_cast<int64_t>(limit));
  return Collect(*stmt, ReadTransfer, out);
}

Status SqliteLedgerStore::ScanBatches(int64_t after_seq, size_t limit, std::vector<BatchRecord>* out) {
  auto stmt = db_.Prepare("SELECT " + std::string(kBatchColumns) +
                          " FROM ledger_batches WHERE seq > ? ORDER BY seq LIMIT ?");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, after_seq).Bind(2, static_cast<int64_t>(limit));
  return Collect(*stmt, ReadBatch, out);
}

}  // namespace citycard::db
