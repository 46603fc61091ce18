#include "db/sqlite_tap_store.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <string>

#include "db/id_blob.h"

namespace citycard::db {

namespace {

// The taps are appended under seq (the rowid), so booking writes onto the table's end. Each
// tap adds one entry to three indexes: (terminal_id, ttc) lands on the terminal's few hot
// pages (its counters rise), clearing_day on the index's last page, and (card_no, ctc) on one
// random page per card: the only random page a tap adds here. The record's full encoding is
// kept (docs/protocol.md "Tap record"), with its TAC and MAC, so that every booked tap can be
// verified again by an auditor; the columns beside it are the keys it is found by.
const char* const kSchemaV1 = R"sql(
CREATE TABLE ingest_taps(
  seq INTEGER PRIMARY KEY,
  terminal_id TEXT NOT NULL,
  ttc INTEGER NOT NULL,
  card_no INTEGER NOT NULL,
  ctc INTEGER NOT NULL,
  record BLOB NOT NULL,
  received_ms INTEGER NOT NULL,
  clearing_day INTEGER NOT NULL,
  late INTEGER NOT NULL,
  outcome INTEGER NOT NULL,
  charged_card_no INTEGER NOT NULL,
  transfer_id BLOB
);
CREATE UNIQUE INDEX ingest_taps_terminal ON ingest_taps(terminal_id, ttc);
CREATE UNIQUE INDEX ingest_taps_card ON ingest_taps(card_no, ctc);
CREATE INDEX ingest_taps_day ON ingest_taps(clearing_day);
CREATE TABLE ingest_alerts(
  seq INTEGER PRIMARY KEY,
  kind INTEGER NOT NULL,
  card_no INTEGER NOT NULL,
  terminal_id TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX ingest_alerts_card ON ingest_alerts(card_no);
CREATE INDEX ingest_alerts_terminal ON ingest_alerts(terminal_id);
CREATE INDEX ingest_alerts_kind ON ingest_alerts(kind);
CREATE TABLE ingest_gaps(
  kind INTEGER NOT NULL,
  card_no INTEGER NOT NULL,
  terminal_id TEXT NOT NULL,
  from_counter INTEGER NOT NULL,
  to_counter INTEGER NOT NULL,
  found_ms INTEGER NOT NULL,
  PRIMARY KEY(kind, card_no, terminal_id, from_counter)
) WITHOUT ROWID;
CREATE TABLE ingest_topups(
  terminal_id TEXT NOT NULL,
  request_id INTEGER NOT NULL,
  card_no INTEGER NOT NULL,
  card_counter INTEGER NOT NULL,
  balance_before_fen INTEGER NOT NULL,
  amount_fen INTEGER NOT NULL,
  card_key_version INTEGER NOT NULL,
  pending_id BLOB NOT NULL,
  authorisation_id INTEGER NOT NULL UNIQUE,
  status INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  settled_ms INTEGER NOT NULL,
  settle_transfer_id BLOB NOT NULL,
  PRIMARY KEY(terminal_id, request_id)
) WITHOUT ROWID;
CREATE INDEX ingest_topups_status ON ingest_topups(status);
CREATE TABLE ingest_terminal_denylist(
  terminal_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  terminal_time_ms INTEGER NOT NULL,
  PRIMARY KEY(terminal_id, version)
) WITHOUT ROWID;
CREATE TABLE ingest_day_totals(
  clearing_day INTEGER NOT NULL,
  operator_id TEXT NOT NULL,
  taps INTEGER NOT NULL,
  full_fare_fen INTEGER NOT NULL,
  concession_fen INTEGER NOT NULL,
  transfer_discount_fen INTEGER NOT NULL,
  paid_fen INTEGER NOT NULL,
  late_taps INTEGER NOT NULL,
  loads INTEGER NOT NULL,
  load_fen INTEGER NOT NULL,
  PRIMARY KEY(clearing_day, operator_id)
) WITHOUT ROWID;
)sql";

constexpr const char* kTapColumns =
    "seq, record, received_ms, clearing_day, late, outcome, charged_card_no, transfer_id";

int64_t AsInt(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t AsUint(int64_t v) { return static_cast<uint64_t>(v); }

// Parameters of one row of the tap insert.
constexpr int kTapInsertColumns = 12;

Id128 IdFrom(const Bytes& bytes) {
  if (bytes.size() != 16) return Id128{};
  ByteReader r(bytes);
  Id128 id;
  id.hi = r.U64();
  id.lo = r.U64();
  return id;
}

// A reset on every path out of a read, so that a statement never stays mid-step.
struct ResetOnExit {
  Statement& statement;
  ~ResetOnExit() { statement.Reset(); }
};

Status Corrupt(const std::string& what) {
  return Status::Internal("tap_store_corrupt", what);
}

// The failure of a write that meets a (card, CTC) already booked, from the first of `rows`.
Status CardKeyTaken(const TapRecord& r, size_t rows) {
  return Status::Internal(
      "tap_exists", rows == 1 ? fmt::format("card {} counter {} is already booked", r.card_no,
                                            r.card_counter)
                              : fmt::format("a card counter among {} taps from card {} counter "
                                            "{} on is already booked",
                                            rows, r.card_no, r.card_counter));
}

}  // namespace

// Version 2: the open top-ups (pending or expired) are indexed by the time they were made, and
// only they. ListOpenTopups reads that index in order, without a sort; a new authorisation goes
// to the index's end rather than to a random page among every top-up's keys (one page fewer
// written per top-up in a group commit), and a settled top-up leaves the index.
const char* const kSchemaV2 = R"sql(
DROP INDEX ingest_topups_status;
CREATE INDEX ingest_topups_open ON ingest_topups(created_ms) WHERE status IN (1, 3);
)sql";

// Version 3: each write of taps also keeps a pack of what settlement reads of them
// (db/tap_pack.h, docs/tap-packs.md), keyed by the seq of its first tap: a day is then read as
// a few hundred blobs rather than as millions of rows. Taps booked before it have no pack and
// are read from their rows.
const char* const kSchemaV3 = R"sql(
CREATE TABLE ingest_tap_packs(
  first_seq INTEGER PRIMARY KEY,
  taps INTEGER NOT NULL,
  pack BLOB NOT NULL
);
)sql";

// Version 4: the taps' (card_no, ctc) keys leave the index on ingest_taps for two tables of
// their own, both keyed (card_no, ctc): the recent keys, written with each group, and the
// merged keys, into which the recent ones move in key order once there are
// kRecentCardTapsMergeAt of them. An index on the taps' table put each tap's key on the last
// page of its card's run, one randomly placed page per card per group commit (~10,000 of a
// group's ~13,000 pages at 10,000 cards, docs/benchmarks.md); the recent table is small, so a
// group writes few pages of it, and a merge writes each card's page once for many groups. A
// card's taps are found in both (docs/ingest.md "Storage").
const char* const kSchemaV4 = R"sql(
CREATE TABLE ingest_card_taps(
  card_no INTEGER NOT NULL,
  ctc INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY(card_no, ctc)
) WITHOUT ROWID;
CREATE TABLE ingest_card_taps_recent(
  card_no INTEGER NOT NULL,
  ctc INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY(card_no, ctc)
) WITHOUT ROWID;
INSERT INTO ingest_card_taps(card_no, ctc, seq)
  SELECT card_no, ctc, seq FROM ingest_taps ORDER BY card_no, ctc;
DROP INDEX ingest_taps_card;
)sql";

const std::vector<std::string>& SqliteTapStore::Migrations() {
  static const std::vector<std::string> migrations = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4};
  return migrations;
}

Result<std::unique_ptr<SqliteTapStore>> SqliteTapStore::Open(Database& db) {
  CITYCARD_RETURN_IF_ERROR(db.Migrate("ingest", Migrations()));
  std::unique_ptr<SqliteTapStore> store(new SqliteTapStore(db));
  CITYCARD_RETURN_IF_ERROR(store->Prepare());
  return store;
}

Status SqliteTapStore::SetCacheBytes(int64_t bytes) {
  // A negative cache_size is a size in KiB rather than in pages.
  return db_.Exec("PRAGMA cache_size=-" + std::to_string(bytes / 1024));
}

void SqliteTapStore::SetRecentCardKeysMergeAt(int64_t keys) {
  CITYCARD_ASSERT(keys >= 1);
  recent_merge_at_ = keys;
}

Status SqliteTapStore::Prepare() {
  auto prepare = [&](std::optional<Statement>& slot, const std::string& sql) -> Status {
    auto statement = db_.Prepare(sql);
    if (!statement.ok()) return statement.status();
    slot.emplace(std::move(*statement));
    return Status::Ok();
  };
  std::string cols = kTapColumns;
  CITYCARD_RETURN_IF_ERROR(prepare(
      tap_by_terminal_, "SELECT " + cols + " FROM ingest_taps WHERE terminal_id = ? AND ttc = ?"));
  // A card's taps are keyed in two tables (schema version 4): each lookup by card reads both.
  CITYCARD_RETURN_IF_ERROR(prepare(
      tap_by_card_, "SELECT " + cols + " FROM ingest_taps WHERE seq = coalesce("
                    "(SELECT seq FROM ingest_card_taps_recent WHERE card_no = ?1 AND ctc = ?2), "
                    "(SELECT seq FROM ingest_card_taps WHERE card_no = ?1 AND ctc = ?2))"));
  // The card's highest key, from each table by a statement of its own: as one statement
  // (two subqueries under IN, a sort of their rows) it cost the engine 3.5 µs a card.
  CITYCARD_RETURN_IF_ERROR(prepare(highest_recent_card_key_,
                                   "SELECT ctc, seq FROM ingest_card_taps_recent "
                                   "WHERE card_no = ? ORDER BY ctc DESC LIMIT 1"));
  CITYCARD_RETURN_IF_ERROR(prepare(highest_merged_card_key_,
                                   "SELECT ctc, seq FROM ingest_card_taps "
                                   "WHERE card_no = ? ORDER BY ctc DESC LIMIT 1"));
  CITYCARD_RETURN_IF_ERROR(
      prepare(tap_by_seq_, "SELECT " + cols + " FROM ingest_taps WHERE seq = ?"));
  CITYCARD_RETURN_IF_ERROR(prepare(
      taps_of_card_after_,
      "SELECT " + cols + " FROM ingest_taps WHERE seq IN ("
      "SELECT seq FROM ingest_card_taps_recent WHERE card_no = ?1 AND ctc > ?2 UNION ALL "
      "SELECT seq FROM ingest_card_taps WHERE card_no = ?1 AND ctc > ?2) ORDER BY ctc LIMIT ?3"));
  // OR FAIL: a constraint stops the statement without undoing its earlier rows, so SQLite
  // keeps no statement journal for the multi-row insert; the caller's transaction is rolled
  // back on any failure anyway (Write's contract), so no partial group survives. The seq is
  // given, not left to SQLite, because the card keys written beside the rows name it.
  const std::string insert_taps_head =
      "INSERT OR FAIL INTO ingest_taps(seq, terminal_id, ttc, card_no, ctc, record, received_ms, "
      "clearing_day, late, outcome, charged_card_no, transfer_id) VALUES ";
  CITYCARD_RETURN_IF_ERROR(
      prepare(insert_tap_, insert_taps_head + ValuesPlaceholders(kTapInsertColumns, 1)));
  CITYCARD_RETURN_IF_ERROR(prepare(
      insert_taps_, insert_taps_head + ValuesPlaceholders(kTapInsertColumns, kRowsPerInsert)));
  const std::string insert_card_keys_head =
      "INSERT OR FAIL INTO ingest_card_taps_recent(card_no, ctc, seq) VALUES ";
  CITYCARD_RETURN_IF_ERROR(
      prepare(insert_card_key_, insert_card_keys_head + ValuesPlaceholders(3, 1)));
  CITYCARD_RETURN_IF_ERROR(
      prepare(insert_card_keys_, insert_card_keys_head + ValuesPlaceholders(3, kRowsPerInsert)));
  CITYCARD_RETURN_IF_ERROR(prepare(
      merged_card_key_, "SELECT 1 FROM ingest_card_taps WHERE card_no = ? AND ctc = ?"));
  CITYCARD_RETURN_IF_ERROR(prepare(data_version_query_, "PRAGMA data_version"));
  CITYCARD_RETURN_IF_ERROR(
      prepare(recent_card_keys_, "SELECT count(*) FROM ingest_card_taps_recent"));
  // The recent table is read in its key order, so the merged table is written in key order:
  // each of its pages the merge touches is written once.
  CITYCARD_RETURN_IF_ERROR(prepare(
      merge_card_keys_, "INSERT OR FAIL INTO ingest_card_taps(card_no, ctc, seq) "
                        "SELECT card_no, ctc, seq FROM ingest_card_taps_recent"));
  CITYCARD_RETURN_IF_ERROR(prepare(clear_recent_card_keys_, "DELETE FROM ingest_card_taps_recent"));
  CITYCARD_RETURN_IF_ERROR(prepare(last_seq_, "SELECT max(seq) FROM ingest_taps"));
  CITYCARD_RETURN_IF_ERROR(
      prepare(insert_pack_, "INSERT INTO ingest_tap_packs(first_seq, taps, pack) VALUES (?, ?, ?)"));
  CITYCARD_RETURN_IF_ERROR(prepare(
      insert_alert_,
      "INSERT INTO ingest_alerts(kind, card_no, terminal_id, time_ms, detail) "
      "VALUES (?, ?, ?, ?, ?)"));
  CITYCARD_RETURN_IF_ERROR(prepare(
      insert_gap_,
      "INSERT OR REPLACE INTO ingest_gaps(kind, card_no, terminal_id, from_counter, to_counter, "
      "found_ms) VALUES (?, ?, ?, ?, ?, ?)"));
  CITYCARD_RETURN_IF_ERROR(prepare(
      delete_gap_,
      "DELETE FROM ingest_gaps WHERE kind = ? AND card_no = ? AND terminal_id = ? AND "
      "from_counter = ?"));
  CITYCARD_RETURN_IF_ERROR(prepare(
      upsert_topup_,
      "INSERT OR REPLACE INTO ingest_topups(terminal_id, request_id, card_no, card_counter, "
      "balance_before_fen, amount_fen, card_key_version, pending_id, authorisation_id, status, "
      "created_ms, expires_ms, settled_ms, settle_transfer_id) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  CITYCARD_RETURN_IF_ERROR(prepare(
      upsert_day_,
      "INSERT INTO ingest_day_totals(clearing_day, operator_id, taps, full_fare_fen, "
      "concession_fen, transfer_discount_fen, paid_fen, late_taps, loads, load_fen) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(clearing_day, operator_id) DO UPDATE "
      "SET taps = taps + excluded.taps, full_fare_fen = full_fare_fen + excluded.full_fare_fen, "
      "concession_fen = concession_fen + excluded.concession_fen, "
      "transfer_discount_fen = transfer_discount_fen + excluded.transfer_discount_fen, "
      "paid_fen = paid_fen + excluded.paid_fen, late_taps = late_taps + excluded.late_taps, "
      "loads = loads + excluded.loads, load_fen = load_fen + excluded.load_fen"));
  const std::string topup_cols =
      "SELECT terminal_id, request_id, card_no, card_counter, balance_before_fen, amount_fen, "
      "card_key_version, pending_id, authorisation_id, status, created_ms, expires_ms, "
      "settled_ms, settle_transfer_id FROM ingest_topups ";
  CITYCARD_RETURN_IF_ERROR(
      prepare(topup_by_key_, topup_cols + "WHERE terminal_id = ? AND request_id = ?"));
  CITYCARD_RETURN_IF_ERROR(
      prepare(topup_by_authorisation_, topup_cols + "WHERE authorisation_id = ?"));
  return Status::Ok();
}

Result<std::vector<StoredTap>> SqliteTapStore::ReadTaps(Statement& s, size_t limit) {
  ResetOnExit reset{s};
  std::vector<StoredTap> out;
  while (out.size() < limit) {
    auto row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    StoredTap tap;
    tap.seq = s.ColumnInt(0);
    auto record = DecodeTapRecord(s.ColumnBlob(1));
    if (!record.ok()) return Corrupt("tap " + std::to_string(tap.seq) + ": " + record.status().message());
    tap.record = std::move(*record);
    tap.received_ms = s.ColumnInt(2);
    tap.clearing_day = s.ColumnInt(3);
    tap.late = s.ColumnInt(4) != 0;
    tap.outcome = static_cast<IngestOutcome>(s.ColumnInt(5));
    tap.charged_card_no = AsUint(s.ColumnInt(6));
    if (!s.ColumnIsNull(7)) tap.transfer_id = IdFrom(s.ColumnBlob(7));
    out.push_back(std::move(tap));
  }
  return out;
}

Result<std::optional<StoredTap>> SqliteTapStore::FindByTerminalCounter(std::string_view terminal_id,
                                                                       uint32_t ttc) {
  tap_by_terminal_->Bind(1, terminal_id).Bind(2, int64_t{ttc});
  auto taps = ReadTaps(*tap_by_terminal_, 1);
  if (!taps.ok()) return taps.status();
  if (taps->empty()) return std::optional<StoredTap>();
  return std::optional<StoredTap>(std::move(taps->front()));
}

Result<std::optional<StoredTap>> SqliteTapStore::FindByCardCounter(uint64_t card_no, uint32_t ctc) {
  tap_by_card_->Bind(1, AsInt(card_no)).Bind(2, int64_t{ctc});
  auto taps = ReadTaps(*tap_by_card_, 1);
  if (!taps.ok()) return taps.status();
  if (taps->empty()) return std::optional<StoredTap>();
  return std::optional<StoredTap>(std::move(taps->front()));
}

Result<std::optional<CardCounterState>> SqliteTapStore::LoadCardCounterState(uint64_t card_no) {
  auto key = HighestCardKey(card_no);
  if (!key.ok()) return key.status();
  // The engine asks for each card it has not seen lately, before booking its taps: what it
  // read spares the write a look-up among the merged keys (at 10,000,000 cards, every tap's).
  KnowHighestCardKey(card_no, key->ctc);
  if (key->ctc < 0) return std::optional<CardCounterState>();
  tap_by_seq_->Bind(1, key->seq);
  auto taps = ReadTaps(*tap_by_seq_, 1);
  if (!taps.ok()) return taps.status();
  if (taps->empty()) return Corrupt(fmt::format("card {} counter {} names tap {}, which is not stored",
                                                card_no, key->ctc, key->seq));
  const TapRecord& r = taps->front().record;
  int64_t after = r.type == TapType::load ? r.balance_before_fen + r.amount_fen
                                          : r.balance_before_fen - r.amount_fen;
  return std::optional<CardCounterState>(
      CardCounterState{card_no, r.card_counter, after, r.tac_key_version});
}

Result<int64_t> SqliteTapStore::SumPaidAfter(uint64_t card_no, uint32_t after_counter) {
  // The rare path of a record arriving after later ones: read them (at most a window's worth).
  taps_of_card_after_->Bind(1, AsInt(card_no)).Bind(2, int64_t{after_counter}).Bind(3, int64_t{1} << 20);
  auto taps = ReadTaps(*taps_of_card_after_, size_t{1} << 20);
  if (!taps.ok()) return taps.status();
  int64_t sum = 0;
  for (const StoredTap& t : *taps) {
    if (t.record.type != TapType::load) sum += t.record.amount_fen;
  }
  return sum;
}

Result<std::vector<CounterGap>> SqliteTapStore::LoadGaps(GapKind kind, uint64_t card_no,
                                                         std::string_view terminal_id) {
  auto s = db_.Prepare(
      "SELECT from_counter, to_counter, found_ms FROM ingest_gaps WHERE kind = ? AND "
      "card_no = ? AND terminal_id = ? ORDER BY from_counter");
  if (!s.ok()) return s.status();
  bool card = kind == GapKind::card;
  s->Bind(1, int64_t{static_cast<uint8_t>(kind)})
      .Bind(2, card ? AsInt(card_no) : 0)
      .Bind(3, card ? std::string_view("") : terminal_id);
  std::vector<CounterGap> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    CounterGap g;
    g.kind = kind;
    g.card_no = card ? card_no : 0;
    g.terminal_id = card ? "" : std::string(terminal_id);
    g.from = static_cast<uint32_t>(s->ColumnInt(0));
    g.to = static_cast<uint32_t>(s->ColumnInt(1));
    g.found_ms = s->ColumnInt(2);
    out.push_back(std::move(g));
  }
  return out;
}

namespace {

// Binds tap `t`, to be stored under `seq`, as the row whose first parameter is `base` + 1.
// The statement keeps pointers to `record` and `transfer_id` (unowned binds): they must stay
// unchanged until it runs.
void BindTapRow(Statement& insert, int base, int64_t seq, const StoredTap& t,
                const Bytes& record, const IdBlob& transfer_id) {
  const TapRecord& r = t.record;
  insert.Bind(base + 1, seq)
      .BindUnowned(base + 2, std::string_view(r.terminal_id))
      .Bind(base + 3, int64_t{r.terminal_counter})
      .Bind(base + 4, AsInt(r.card_no))
      .Bind(base + 5, int64_t{r.card_counter})
      .BindUnowned(base + 6, ByteView(record))
      .Bind(base + 7, t.received_ms)
      .Bind(base + 8, t.clearing_day)
      .Bind(base + 9, int64_t{t.late ? 1 : 0})
      .Bind(base + 10, int64_t{static_cast<uint8_t>(t.outcome)})
      .Bind(base + 11, AsInt(t.charged_card_no));
  if (t.transfer_id.IsZero()) {
    insert.BindNull(base + 12);
  } else {
    insert.BindUnowned(base + 12, ByteView(transfer_id));
  }
}

}  // namespace

Result<int64_t> SqliteTapStore::LastTapSeq() {
  ResetOnExit reset{*last_seq_};
  auto row = last_seq_->Step();
  if (!row.ok()) return row.status();
  return *row && !last_seq_->ColumnIsNull(0) ? last_seq_->ColumnInt(0) : int64_t{0};
}

Status SqliteTapStore::InsertPack(int64_t first_seq) {
  // The rows were given seqs max(seq) + 1 on, one after another (SQLite's rowid for a table
  // without AUTOINCREMENT, on the one connection that writes). Should that ever not hold, the
  // write keeps no pack rather than a pack that names other rows: its taps are then read from
  // their rows, which is slower and never wrong.
  const int64_t taps = static_cast<int64_t>(pack_.taps());
  if (!pack_.ok() || taps == 0 || db_.LastInsertRowId() != first_seq + taps - 1) {
    return Status::Ok();
  }
  const Bytes pack = pack_.Finish();
  insert_pack_->Bind(1, first_seq).Bind(2, taps).BindUnowned(3, ByteView(pack));
  return insert_pack_->Run();
}

Status SqliteTapStore::InsertTaps(std::span<const StoredTap> taps) {
  if (taps.empty()) return Status::Ok();
  auto last = LastTapSeq();
  if (!last.ok()) return last.status();
  pack_.Clear();
  // The bytes the statement points at (unowned binds), per row of one statement.
  // Each row's record buffer is refilled in place, so only the first statement allocates.
  std::vector<Bytes> records(kRowsPerInsert);
  std::vector<IdBlob> transfer_ids(kRowsPerInsert);
  auto bind = [&](Statement& insert, int k, size_t row) {
    const StoredTap& t = taps[row];
    records[k].clear();
    AppendTapRecord(t.record, &records[k]);
    transfer_ids[k] = EncodeId(t.transfer_id);
    BindTapRow(insert, k * kTapInsertColumns, *last + 1 + static_cast<int64_t>(row), t,
               records[k], transfer_ids[k]);
    pack_.Add(records[k], t.clearing_day, t.late, !t.transfer_id.IsZero());
  };
  auto on_error = [&](Status s, size_t first, size_t rows) -> Status {
    if (s.code() != "db_constraint") return s;
    const TapRecord& r = taps[first].record;
    return Status::Internal(
        "tap_exists", rows == 1 ? "terminal " + r.terminal_id + " counter " +
                                      std::to_string(r.terminal_counter) +
                                      " or its card counter is already booked"
                                : fmt::format("a terminal counter or card counter among {} taps "
                                              "from terminal {} counter {} on is already booked",
                                              rows, r.terminal_id, r.terminal_counter));
  };
  CITYCARD_RETURN_IF_ERROR(
      InsertInChunks(*insert_tap_, *insert_taps_, taps.size(), bind, on_error));
  // The pack first: it checks the rows' seqs through the last rowid inserted, which the card
  // keys' table (WITHOUT ROWID) leaves alone, but nothing needs to rely on that.
  CITYCARD_RETURN_IF_ERROR(InsertPack(*last + 1));
  CITYCARD_RETURN_IF_ERROR(InsertCardKeys(taps, *last + 1));
  return MergeCardKeysIfDue();
}

Result<SqliteTapStore::CardKey> SqliteTapStore::HighestCardKey(uint64_t card_no) {
  CardKey highest;
  for (Statement* s : {&*highest_recent_card_key_, &*highest_merged_card_key_}) {
    ResetOnExit reset{*s};
    s->Bind(1, AsInt(card_no));
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (*row && s->ColumnInt(0) > highest.ctc) highest = CardKey{s->ColumnInt(0), s->ColumnInt(1)};
  }
  return highest;
}

SqliteTapStore::KnownCard& SqliteTapStore::KnownSlot(uint64_t card_no) {
  if (known_cards_.empty()) known_cards_.resize(kKnownCardsSlots);
  // Fibonacci hashing: card numbers that differ in their low digits spread over the slots.
  const uint64_t slot = (card_no * 0x9E3779B97F4A7C15ull) >> (64 - kKnownCardsSlotBits);
  return known_cards_[slot];
}

void SqliteTapStore::KnowHighestCardKey(uint64_t card_no, int64_t highest) {
  KnownSlot(card_no) = KnownCard{card_no, highest};
}

Result<bool> SqliteTapStore::MergedCardKeyTaken(uint64_t card_no, uint32_t ctc) {
  KnownCard& known = KnownSlot(card_no);
  const bool is_known = known.card_no == card_no && card_no != 0;
  if (is_known && int64_t{ctc} > known.highest) return false;
  if (!is_known) {
    auto key = HighestCardKey(card_no);
    if (!key.ok()) return key.status();
    known = KnownCard{card_no, key->ctc};
    if (int64_t{ctc} > key->ctc) return false;
  }
  ResetOnExit reset{*merged_card_key_};
  merged_card_key_->Bind(1, AsInt(card_no)).Bind(2, int64_t{ctc});
  auto row = merged_card_key_->Step();
  if (!row.ok()) return row.status();
  return *row;
}

Status SqliteTapStore::ForgetCardKeysIfChangedElsewhere() {
  ResetOnExit reset{*data_version_query_};
  auto row = data_version_query_->Step();
  if (!row.ok()) return row.status();
  CITYCARD_ASSERT(*row);
  const int64_t version = data_version_query_->ColumnInt(0);
  if (!data_version_ || *data_version_ != version) {
    std::fill(known_cards_.begin(), known_cards_.end(), KnownCard{});
  }
  data_version_ = version;
  return Status::Ok();
}

Status SqliteTapStore::InsertCardKeys(std::span<const StoredTap> taps, int64_t first_seq) {
  // The recent table's key refuses a (card, CTC) taken there; one taken in the merged table
  // is looked for here, so that the pair stays unique across both as the old index kept it.
  CITYCARD_RETURN_IF_ERROR(ForgetCardKeysIfChangedElsewhere());
  for (const StoredTap& t : taps) {
    const TapRecord& r = t.record;
    auto taken = MergedCardKeyTaken(r.card_no, r.card_counter);
    if (!taken.ok()) return taken.status();
    if (*taken) return CardKeyTaken(r, 1);
    // MergedCardKeyTaken left the card in its slot, unless the card number is 0.
    KnownCard& known = KnownSlot(r.card_no);
    if (known.card_no == r.card_no) known.highest = std::max(known.highest, int64_t{r.card_counter});
  }
  auto bind = [&](Statement& insert, int k, size_t row) {
    const TapRecord& r = taps[row].record;
    insert.Bind(k * 3 + 1, AsInt(r.card_no))
        .Bind(k * 3 + 2, int64_t{r.card_counter})
        .Bind(k * 3 + 3, first_seq + static_cast<int64_t>(row));
  };
  auto on_error = [&](Status s, size_t first, size_t rows) -> Status {
    if (s.code() != "db_constraint") return s;
    return CardKeyTaken(taps[first].record, rows);
  };
  return InsertInChunks(*insert_card_key_, *insert_card_keys_, taps.size(), bind, on_error);
}

Status SqliteTapStore::MergeCardKeysIfDue() {
  int64_t recent = 0;
  {
    ResetOnExit reset{*recent_card_keys_};
    auto row = recent_card_keys_->Step();
    if (!row.ok()) return row.status();
    recent = *row ? recent_card_keys_->ColumnInt(0) : 0;
  }
  if (recent < recent_merge_at_) return Status::Ok();
  Status merged = merge_card_keys_->Run();
  // The recent keys were checked against the merged ones as they were written: a clash here
  // means the file was changed behind the store's back.
  if (!merged.ok() && merged.code() == "db_constraint") {
    return Corrupt("a recent (card, CTC) key is also among the merged ones");
  }
  CITYCARD_RETURN_IF_ERROR(merged);
  return clear_recent_card_keys_->Run();
}

Status SqliteTapStore::Write(const IngestWrite& write) {
  CITYCARD_RETURN_IF_ERROR(InsertTaps(write.taps));
  for (const Alert& a : write.alerts) {
    insert_alert_->Bind(1, int64_t{static_cast<uint8_t>(a.kind)})
        .Bind(2, AsInt(a.card_no))
        .Bind(3, a.terminal_id)
        .Bind(4, a.time_ms)
        .Bind(5, a.detail);
    CITYCARD_RETURN_IF_ERROR(insert_alert_->Run());
  }
  for (const CounterGap& g : write.gaps_removed) {
    delete_gap_->Bind(1, int64_t{static_cast<uint8_t>(g.kind)})
        .Bind(2, AsInt(g.card_no))
        .Bind(3, g.terminal_id)
        .Bind(4, int64_t{g.from});
    CITYCARD_RETURN_IF_ERROR(delete_gap_->Run());
  }
  for (const CounterGap& g : write.gaps_added) {
    insert_gap_->Bind(1, int64_t{static_cast<uint8_t>(g.kind)})
        .Bind(2, AsInt(g.card_no))
        .Bind(3, g.terminal_id)
        .Bind(4, int64_t{g.from})
        .Bind(5, int64_t{g.to})
        .Bind(6, g.found_ms);
    CITYCARD_RETURN_IF_ERROR(insert_gap_->Run());
  }
  for (const TopupRecord& t : write.topups) {
    upsert_topup_->Bind(1, t.terminal_id)
        .Bind(2, AsInt(t.request_id))
        .Bind(3, AsInt(t.card_no))
        .Bind(4, int64_t{t.card_counter})
        .Bind(5, t.balance_before_fen)
        .Bind(6, t.amount_fen)
        .Bind(7, int64_t{t.card_key_version})
        .Bind(8, ByteView(EncodeId(t.pending_id)))
        .Bind(9, AsInt(t.authorisation_id))
        .Bind(10, int64_t{static_cast<uint8_t>(t.status)})
        .Bind(11, t.created_ms)
        .Bind(12, t.expires_ms)
        .Bind(13, t.settled_ms)
        .Bind(14, ByteView(EncodeId(t.settle_transfer_id)));
    CITYCARD_RETURN_IF_ERROR(upsert_topup_->Run());
  }
  for (const DayOperatorTotals& d : write.day_deltas) {
    upsert_day_->Bind(1, d.clearing_day)
        .Bind(2, d.operator_id)
        .Bind(3, d.taps)
        .Bind(4, d.full_fare_fen)
        .Bind(5, d.concession_fen)
        .Bind(6, d.transfer_discount_fen)
        .Bind(7, d.paid_fen)
        .Bind(8, d.late_taps)
        .Bind(9, d.loads)
        .Bind(10, d.load_fen);
    CITYCARD_RETURN_IF_ERROR(upsert_day_->Run());
  }
  return Status::Ok();
}

Result<std::vector<TopupRecord>> SqliteTapStore::ReadTopups(Statement& s) {
  ResetOnExit reset{s};
  std::vector<TopupRecord> out;
  while (true) {
    auto row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    TopupRecord t;
    t.terminal_id = s.ColumnText(0);
    t.request_id = AsUint(s.ColumnInt(1));
    t.card_no = AsUint(s.ColumnInt(2));
    t.card_counter = static_cast<uint32_t>(s.ColumnInt(3));
    t.balance_before_fen = s.ColumnInt(4);
    t.amount_fen = s.ColumnInt(5);
    t.card_key_version = static_cast<uint8_t>(s.ColumnInt(6));
    t.pending_id = IdFrom(s.ColumnBlob(7));
    t.authorisation_id = AsUint(s.ColumnInt(8));
    t.status = static_cast<TopupStatus>(s.ColumnInt(9));
    t.created_ms = s.ColumnInt(10);
    t.expires_ms = s.ColumnInt(11);
    t.settled_ms = s.ColumnInt(12);
    t.settle_transfer_id = IdFrom(s.ColumnBlob(13));
    out.push_back(std::move(t));
  }
  return out;
}

Result<std::optional<TopupRecord>> SqliteTapStore::FindTopup(std::string_view terminal_id,
                                                             uint64_t request_id) {
  topup_by_key_->Bind(1, terminal_id).Bind(2, AsInt(request_id));
  auto found = ReadTopups(*topup_by_key_);
  if (!found.ok()) return found.status();
  if (found->empty()) return std::optional<TopupRecord>();
  return std::optional<TopupRecord>(found->front());
}

Result<std::optional<TopupRecord>> SqliteTapStore::FindTopupByAuthorisation(uint64_t id) {
  topup_by_authorisation_->Bind(1, AsInt(id));
  auto found = ReadTopups(*topup_by_authorisation_);
  if (!found.ok()) return found.status();
  if (found->empty()) return std::optional<TopupRecord>();
  return std::optional<TopupRecord>(found->front());
}

Result<std::vector<TopupRecord>> SqliteTapStore::ListOpenTopups() {
  auto s = db_.Prepare(
      "SELECT terminal_id, request_id, card_no, card_counter, balance_before_fen, amount_fen, "
      "card_key_version, pending_id, authorisation_id, status, created_ms, expires_ms, "
      "settled_ms, settle_transfer_id FROM ingest_topups WHERE status IN (1, 3) "
      "ORDER BY created_ms");
  if (!s.ok()) return s.status();
  return ReadTopups(*s);
}

Status SqliteTapStore::RecordTerminalDenylistVersion(std::string_view terminal_id, int64_t version,
                                                     int64_t terminal_time_ms) {
  auto s = db_.Prepare(
      "INSERT OR IGNORE INTO ingest_terminal_denylist(terminal_id, version, terminal_time_ms) "
      "SELECT ?1, ?2, ?3 WHERE ?2 > COALESCE((SELECT MAX(version) FROM "
      "ingest_terminal_denylist WHERE terminal_id = ?1), -1)");
  if (!s.ok()) return s.status();
  s->Bind(1, terminal_id).Bind(2, version).Bind(3, terminal_time_ms);
  // Outside a transaction SQLite commits this one statement on its own (synchronous=FULL).
  return s->Run();
}

Result<std::vector<TerminalDenylistReport>> SqliteTapStore::LoadTerminalDenylistReports(
    std::string_view terminal_id) {
  auto s = db_.Prepare(
      "SELECT version, terminal_time_ms FROM ingest_terminal_denylist WHERE terminal_id = ? "
      "ORDER BY version");
  if (!s.ok()) return s.status();
  s->Bind(1, terminal_id);
  std::vector<TerminalDenylistReport> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({s->ColumnInt(0), s->ColumnInt(1)});
  }
  return out;
}

Result<std::vector<Alert>> SqliteTapStore::ListAlerts(const AlertFilter& filter) {
  std::string sql =
      "SELECT seq, kind, card_no, terminal_id, time_ms, detail FROM ingest_alerts WHERE 1";
  if (filter.kind) sql += " AND kind = ?1";
  if (filter.card_no) sql += " AND card_no = ?2";
  if (filter.terminal_id) sql += " AND terminal_id = ?3";
  sql += " ORDER BY seq DESC LIMIT ?4";
  auto s = db_.Prepare(sql);
  if (!s.ok()) return s.status();
  if (filter.kind) s->Bind(1, int64_t{static_cast<uint8_t>(*filter.kind)});
  if (filter.card_no) s->Bind(2, AsInt(*filter.card_no));
  if (filter.terminal_id) s->Bind(3, *filter.terminal_id);
  s->Bind(4, static_cast<int64_t>(std::min(filter.limit, kAlertListMax)));
  std::vector<Alert> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    Alert a;
    a.seq = s->ColumnInt(0);
    a.kind = static_cast<AlertKind>(s->ColumnInt(1));
    a.card_no = AsUint(s->ColumnInt(2));
    a.terminal_id = s->ColumnText(3);
    a.time_ms = s->ColumnInt(4);
    a.detail = s->ColumnText(5);
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<CounterGap>> SqliteTapStore::ListGaps(GapKind kind) {
  auto s = db_.Prepare(
      "SELECT card_no, terminal_id, from_counter, to_counter, found_ms FROM ingest_gaps "
      "WHERE kind = ? ORDER BY card_no, terminal_id, from_counter");
  if (!s.ok()) return s.status();
  s->Bind(1, int64_t{static_cast<uint8_t>(kind)});
  std::vector<CounterGap> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    CounterGap g;
    g.kind = kind;
    g.card_no = AsUint(s->ColumnInt(0));
    g.terminal_id = s->ColumnText(1);
    g.from = static_cast<uint32_t>(s->ColumnInt(2));
    g.to = static_cast<uint32_t>(s->ColumnInt(3));
    g.found_ms = s->ColumnInt(4);
    out.push_back(std::move(g));
  }
  return out;
}

Result<std::vector<DayOperatorTotals>> SqliteTapStore::DayTotals(int64_t clearing_day) {
  auto s = db_.Prepare(
      "SELECT operator_id, taps, full_fare_fen, concession_fen, transfer_discount_fen, paid_fen, "
      "late_taps, loads, load_fen FROM ingest_day_totals WHERE clearing_day = ? "
      "ORDER BY operator_id");
  if (!s.ok()) return s.status();
  s->Bind(1, clearing_day);
  std::vector<DayOperatorTotals> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    DayOperatorTotals d;
    d.clearing_day = clearing_day;
    d.operator_id = s->ColumnText(0);
    d.taps = s->ColumnInt(1);
    d.full_fare_fen = s->ColumnInt(2);
    d.concession_fen = s->ColumnInt(3);
    d.transfer_discount_fen = s->ColumnInt(4);
    d.paid_fen = s->ColumnInt(5);
    d.late_taps = s->ColumnInt(6);
    d.loads = s->ColumnInt(7);
    d.load_fen = s->ColumnInt(8);
    out.push_back(std::move(d));
  }
  return out;
}

Status SqliteTapStore::ScanDayTaps(int64_t clearing_day, int64_t after_seq, size_t limit,
                                   std::vector<StoredTap>* out) {
  auto s = db_.Prepare(std::string("SELECT ") + kTapColumns +
                       " FROM ingest_taps WHERE clearing_day = ? AND seq > ? ORDER BY seq "
                       "LIMIT ?");
  if (!s.ok()) return s.status();
  s->Bind(1, clearing_day).Bind(2, after_seq).Bind(3, static_cast<int64_t>(limit));
  auto taps = ReadTaps(*s, limit);
  if (!taps.ok()) return taps.status();
  out->insert(out->end(), taps->begin(), taps->end());
  return Status::Ok();
}

Status SqliteTapStore::CardTaps(uint64_t card_no, size_t limit, std::vector<StoredTap>* out) {
  auto s = db_.Prepare(std::string("SELECT ") + kTapColumns +
                       " FROM ingest_taps WHERE seq IN ("
                       "SELECT seq FROM ingest_card_taps_recent WHERE card_no = ?1 UNION ALL "
                       "SELECT seq FROM ingest_card_taps WHERE card_no = ?1) ORDER BY ctc LIMIT ?2");
  if (!s.ok()) return s.status();
  s->Bind(1, AsInt(card_no)).Bind(2, static_cast<int64_t>(limit));
  auto taps = ReadTaps(*s, limit);
  if (!taps.ok()) return taps.status();
  out->insert(out->end(), taps->begin(), taps->end());
  return Status::Ok();
}

}  // namespace citycard::db
