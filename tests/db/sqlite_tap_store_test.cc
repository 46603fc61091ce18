// The SQLite tap store (db/sqlite_tap_store.h) against the TapStore contract.
#include "db/sqlite_tap_store.h"

#include <catch2/catch.hpp>

#include "core/tap_record.h"
#include "db/database.h"
#include "tests/support/scratch_db_file_support.h"

namespace citycard::db {
namespace {

TapRecord Record(std::string terminal, uint32_t ttc, uint64_t card, uint32_t ctc, int64_t before,
                 int64_t amount, TapType type = TapType::purchase) {
  TapRecord r;
  r.type = type;
  r.card_no = card;
  r.card_counter = ctc;
  r.balance_before_fen = before;
  r.amount_fen = amount;
  r.terminal_id = std::move(terminal);
  r.terminal_counter = ttc;
  r.time_s = 1'700'000'000;
  r.operator_id = "BUS1";
  r.full_fare_fen = amount + 10;
  r.concession_fen = 10;
  r.tac[0] = 0xAB;
  r.terminal_mac[15] = 0xCD;
  return r;
}

StoredTap Stored(const TapRecord& r, int64_t day, bool late = false) {
  StoredTap t;
  t.record = r;
  t.received_ms = 1'700'000'123'000;
  t.clearing_day = day;
  t.late = late;
  t.outcome = late ? IngestOutcome::accepted_late : IngestOutcome::accepted;
  t.charged_card_no = r.card_no;
  if (r.amount_fen > 0) t.transfer_id = Id128{1, r.terminal_counter};
  return t;
}

// A store over its own connection to `path`, its recent card keys merged once `merge_at`.
struct Fixture {
  explicit Fixture(const std::string& path = ":memory:",
                   int64_t merge_at = kRecentCardTapsMergeAt) {
    auto opened = Database::Open(path, true);
    REQUIRE(opened.ok());
    db = std::move(*opened);
    auto s = SqliteTapStore::Open(*db);
    REQUIRE(s.ok());
    store = std::move(*s);
    store->SetRecentCardKeysMergeAt(merge_at);
  }
  // Writes `taps`, each stored on day 19000, in one transaction.
  Status WriteTaps(const std::vector<TapRecord>& taps) {
    IngestWrite w;
    for (const TapRecord& r : taps) w.taps.push_back(Stored(r, 19000));
    return Write(w);
  }
  Status Write(const IngestWrite& w) {
    CITYCARD_RETURN_IF_ERROR(db->Begin());
    Status s = store->Write(w);
    if (!s.ok()) {
      (void)db->Rollback();
      return s;
    }
    return db->Commit();
  }
  std::unique_ptr<Database> db;
  std::unique_ptr<SqliteTapStore> store;
};

TEST_CASE("sqlite tap store finds booked taps by terminal and card counter", "[db][tap_store]") {
  Fixture f;
  IngestWrite w;
  TapRecord a = Record("T1", 1, 8607550000000011, 1, 500, 200);
  TapRecord b = Record("T1", 2, 8607550000000011, 3, 300, 100);
  TapRecord load = Record("K1", 1, 8607550000000011, 2, 300, 1000, TapType::load);
  w.taps = {Stored(a, 19000), Stored(b, 19000, true), Stored(load, 19000)};
  REQUIRE(f.Write(w).ok());

  auto found = f.store->FindByTerminalCounter("T1", 2);
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->record == b);
  CHECK((*found)->seq == 2);
  CHECK((*found)->late);
  CHECK((*found)->outcome == IngestOutcome::accepted_late);
  CHECK((*found)->transfer_id == Id128{1, 2});
  CHECK_FALSE(f.store->FindByTerminalCounter("T1", 3)->has_value());
  auto by_card = f.store->FindByCardCounter(8607550000000011, 1);
  REQUIRE(by_card->has_value());
  CHECK((*by_card)->record == a);

  auto state = f.store->LoadCardCounterState(8607550000000011);
  REQUIRE(state->has_value());
  CHECK((*state)->last_counter == 3);
  CHECK((*state)->last_balance_after_fen == 200);
  CHECK_FALSE(f.store->LoadCardCounterState(8607550000000029)->has_value());
  CHECK(*f.store->SumPaidAfter(8607550000000011, 0) == 300);  // the load is not paid
  CHECK(*f.store->SumPaidAfter(8607550000000011, 1) == 100);

  std::vector<StoredTap> taps;
  REQUIRE(f.store->CardTaps(8607550000000011, 10, &taps).ok());
  REQUIRE(taps.size() == 3);
  CHECK(taps[1].record == load);
}

TEST_CASE("sqlite tap store refuses a second tap under a booked counter", "[db][tap_store]") {
  Fixture f;
  IngestWrite w;
  w.taps = {Stored(Record("T1", 1, 8607550000000011, 1, 500, 200), 19000)};
  REQUIRE(f.Write(w).ok());
  IngestWrite again;
  again.taps = {Stored(Record("T1", 1, 8607550000000029, 1, 500, 200), 19000)};
  Status s = f.Write(again);
  CHECK(s.code() == "tap_exists");
  IngestWrite clone;
  clone.taps = {Stored(Record("T2", 1, 8607550000000011, 1, 500, 200), 19000)};
  CHECK(f.Write(clone).code() == "tap_exists");
}

int64_t CountRows(Database& db, const std::string& table) {
  auto s = db.Prepare("SELECT count(*) FROM " + table);
  REQUIRE(s.ok());
  auto row = s->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  return s->ColumnInt(0);
}

TEST_CASE("sqlite tap store finds a card's taps whether their keys are recent or merged",
          "[db][tap_store]") {
  Fixture f;
  f.store->SetRecentCardKeysMergeAt(4);
  const uint64_t card = 8607550000000011;
  // Five writes of two taps each (the card's CTCs 1..10 from two terminals, 100 fen each):
  // the keys are merged after the second and the fourth write, the fifth's stay recent.
  std::vector<TapRecord> taps;
  for (uint32_t w = 0; w < 5; ++w) {
    IngestWrite write;
    for (uint32_t k = 0; k < 2; ++k) {
      const uint32_t ctc = 2 * w + k + 1;
      taps.push_back(Record("T" + std::to_string(k), w + 1, card, ctc, 2000 - 100 * (ctc - 1), 100));
      write.taps.push_back(Stored(taps.back(), 19000));
    }
    REQUIRE(f.Write(write).ok());
    CHECK(CountRows(*f.db, "ingest_card_taps_recent") == (w % 2 == 1 ? 0 : 2));
  }
  CHECK(CountRows(*f.db, "ingest_card_taps") == 8);
  for (uint32_t ctc = 1; ctc <= 10; ++ctc) {
    auto found = f.store->FindByCardCounter(card, ctc);
    REQUIRE(found.ok());
    REQUIRE(found->has_value());
    CHECK((*found)->record == taps[ctc - 1]);
    CHECK((*found)->seq == ctc);
  }
  CHECK_FALSE(f.store->FindByCardCounter(card, 11)->has_value());
  auto state = f.store->LoadCardCounterState(card);
  REQUIRE(state->has_value());
  CHECK((*state)->last_counter == 10);  // a recent key, above the merged ones
  CHECK((*state)->last_balance_after_fen == 1000);
  CHECK(*f.store->SumPaidAfter(card, 3) == 700);  // CTCs 4..8 merged, 9 and 10 recent
  std::vector<StoredTap> all;
  REQUIRE(f.store->CardTaps(card, 100, &all).ok());
  REQUIRE(all.size() == 10);
  for (uint32_t i = 0; i < 10; ++i) CHECK(all[i].record.card_counter == i + 1);
  std::vector<StoredTap> first;
  REQUIRE(f.store->CardTaps(card, 3, &first).ok());
  REQUIRE(first.size() == 3);
  CHECK(first[2].record.card_counter == 3);

  // A sixth write brings the recent keys to four: merged, the card's newest key comes from
  // the merged table alone.
  IngestWrite sixth;
  sixth.taps = {Stored(Record("T0", 6, card, 11, 1000, 100), 19000),
                Stored(Record("T1", 6, card, 12, 900, 100), 19000)};
  REQUIRE(f.Write(sixth).ok());
  CHECK(CountRows(*f.db, "ingest_card_taps_recent") == 0);
  CHECK(CountRows(*f.db, "ingest_card_taps") == 12);
  CHECK((*f.store->LoadCardCounterState(card))->last_counter == 12);
}

TEST_CASE("sqlite tap store refuses a card counter booked before the last merge, whole",
          "[db][tap_store]") {
  Fixture f;
  f.store->SetRecentCardKeysMergeAt(1);
  const uint64_t card = 8607550000000011;
  IngestWrite w;
  w.taps = {Stored(Record("T1", 1, card, 1, 500, 200), 19000)};
  REQUIRE(f.Write(w).ok());
  REQUIRE(CountRows(*f.db, "ingest_card_taps") == 1);
  // A clone of the card on another terminal, beside a tap of another card: the group fails
  // whole, with the merged key named.
  IngestWrite clone;
  clone.taps = {Stored(Record("T2", 1, 8607550000000029, 1, 500, 200), 19000),
                Stored(Record("T2", 2, card, 1, 500, 200), 19000)};
  Status s = f.Write(clone);
  CHECK(s.code() == "tap_exists");
  CHECK_THAT(s.message(), Catch::Contains("card 8607550000000011 counter 1"));
  CHECK_FALSE(f.store->FindByTerminalCounter("T2", 1)->has_value());
  CHECK(CountRows(*f.db, "ingest_taps") == 1);
  CHECK(CountRows(*f.db, "ingest_card_taps_recent") == 0);
  CHECK(CountRows(*f.db, "ingest_card_taps") == 1);
}

TEST_CASE("sqlite tap store refuses a card counter that another connection booked and merged",
          "[db][tap_store]") {
  testing::ScratchDbFile file("tap_store_other_connection");
  const uint64_t card = 8607550000000011;
  Fixture a(file.path, 1);
  REQUIRE(a.WriteTaps({Record("T1", 1, card, 1, 500, 100)}).ok());  // a knows the card's CTC 1
  Fixture b(file.path, 1);
  REQUIRE(b.WriteTaps({Record("T2", 1, card, 2, 400, 100)}).ok());  // merged at once
  // To a, CTC 2 is above the highest it wrote; b's commit is what makes it look.
  Status s = a.WriteTaps({Record("T3", 1, card, 2, 400, 100)});
  CHECK(s.code() == "tap_exists");
  CHECK(CountRows(*a.db, "ingest_card_taps") == 2);
  CHECK(CountRows(*a.db, "ingest_taps") == 2);
}

TEST_CASE("sqlite tap store reopened refuses a card counter that was recent when it last looked",
          "[db][tap_store]") {
  testing::ScratchDbFile file("tap_store_reopened");
  const uint64_t card = 8607550000000011;
  {
    Fixture first(file.path, 3);
    REQUIRE(first.WriteTaps({Record("T1", 1, card, 10, 500, 100)}).ok());  // recent
  }
  Fixture again(file.path, 3);
  // A late tap below the recent key: the store learns the card's highest key from both
  // tables, not from the merged one alone, which is still empty.
  REQUIRE(again.WriteTaps({Record("T1", 2, card, 5, 600, 100)}).ok());
  REQUIRE(again.WriteTaps({Record("T1", 3, 8607550000000029, 1, 600, 100)}).ok());  // the merge
  REQUIRE(CountRows(*again.db, "ingest_card_taps") == 3);
  CHECK(again.WriteTaps({Record("T2", 1, card, 10, 500, 100)}).code() == "tap_exists");
  CHECK(again.WriteTaps({Record("T2", 1, card, 5, 600, 100)}).code() == "tap_exists");
  CHECK(again.WriteTaps({Record("T2", 1, card, 11, 400, 100)}).ok());
}

TEST_CASE("sqlite tap store moves a version 3 database's card keys to the merged table",
          "[db][tap_store]") {
  auto opened = Database::Open(":memory:", true);
  REQUIRE(opened.ok());
  Database& db = **opened;
  const auto& migrations = SqliteTapStore::Migrations();
  REQUIRE(db.Migrate("ingest", {migrations[0], migrations[1], migrations[2]}).ok());
  // Two taps of one card as version 3 stored them: rows only, found through the old index.
  const uint64_t card = 8607550000000011;
  std::vector<TapRecord> taps = {Record("T1", 1, card, 5, 500, 200),
                                 Record("T1", 2, card, 6, 300, 100)};
  for (const TapRecord& r : taps) {
    auto insert = db.Prepare(
        "INSERT INTO ingest_taps(terminal_id, ttc, card_no, ctc, record, received_ms, "
        "clearing_day, late, outcome, charged_card_no, transfer_id) "
        "VALUES (?, ?, ?, ?, ?, 0, 19000, 0, 0, ?, NULL)");
    REQUIRE(insert.ok());
    Bytes encoded = EncodeTapRecord(r);
    insert->Bind(1, r.terminal_id)
        .Bind(2, int64_t{r.terminal_counter})
        .Bind(3, static_cast<int64_t>(card))
        .Bind(4, int64_t{r.card_counter})
        .Bind(5, ByteView(encoded))
        .Bind(6, static_cast<int64_t>(card));
    REQUIRE(insert->Run().ok());
  }
  auto store = SqliteTapStore::Open(db);
  REQUIRE(store.ok());
  CHECK(*db.SchemaVersion("ingest") == 4);
  CHECK(CountRows(db, "ingest_card_taps") == 2);
  CHECK((*(*store)->FindByCardCounter(card, 5))->record == taps[0]);
  CHECK((*(*store)->LoadCardCounterState(card))->last_counter == 6);
  // The old index is gone, and the moved keys still refuse their counter.
  CHECK(CountRows(db, "sqlite_schema WHERE name = 'ingest_taps_card'") == 0);
  REQUIRE(db.Begin().ok());
  IngestWrite again;
  again.taps = {Stored(Record("T2", 1, card, 6, 300, 100), 19000)};
  CHECK((*store)->Write(again).code() == "tap_exists");
  REQUIRE(db.Rollback().ok());
}

TEST_CASE("sqlite tap store writes a group larger than one multi-row insert, every tap whole",
          "[db][tap_store]") {
  Fixture f;
  // Two statements of kRowsPerInsert rows and the rest one by one; a zero-amount tap (no
  // transfer id, a NULL) inside the first statement.
  const uint32_t n = 2 * kRowsPerInsert + 5;
  IngestWrite w;
  for (uint32_t i = 1; i <= n; ++i) {
    TapRecord r = Record("T" + std::to_string(i % 3), i, 8607550000000011 + i, i, 500,
                         i == 7 ? 0 : 100 + i);
    w.taps.push_back(Stored(r, 19000 + i % 2));
  }
  REQUIRE(f.Write(w).ok());
  for (uint32_t i = 1; i <= n; ++i) {
    auto found = f.store->FindByTerminalCounter("T" + std::to_string(i % 3), i);
    REQUIRE(found.ok());
    REQUIRE(found->has_value());
    CHECK((*found)->seq == i);
    CHECK((*found)->record == w.taps[i - 1].record);
    CHECK((*found)->clearing_day == 19000 + i % 2);
    CHECK((*found)->transfer_id == w.taps[i - 1].transfer_id);
  }
  CHECK((*f.store->FindByTerminalCounter("T1", 7))->transfer_id.IsZero());
}

TEST_CASE("sqlite tap store refuses a group whose multi-row insert meets a booked counter, whole",
          "[db][tap_store]") {
  Fixture f;
  IngestWrite first;
  first.taps = {Stored(Record("T1", 40, 8607550000000011, 1, 500, 200), 19000)};
  REQUIRE(f.Write(first).ok());
  // The taken (terminal, TTC) is the 20th row of the group's first multi-row statement.
  IngestWrite group;
  for (uint32_t i = 21; i < 21 + 2 * kRowsPerInsert; ++i) {
    group.taps.push_back(Stored(Record("T1", i, 8607550000000029 + i, 1, 500, 100), 19000));
  }
  Status s = f.Write(group);
  CHECK(s.kind() == Kind::internal);
  CHECK(s.code() == "tap_exists");
  CHECK_FALSE(f.store->FindByTerminalCounter("T1", 21)->has_value());
  CHECK_FALSE(f.store->FindByTerminalCounter("T1", 39)->has_value());
  CHECK((*f.store->FindByTerminalCounter("T1", 40))->record.card_no == 8607550000000011);
}

TEST_CASE("sqlite tap store adds up day totals per operator across commits", "[db][tap_store]") {
  Fixture f;
  for (int i = 0; i < 2; ++i) {
    IngestWrite w;
    DayOperatorTotals d;
    d.clearing_day = 19000;
    d.operator_id = "BUS1";
    d.taps = 3;
    d.full_fare_fen = 600;
    d.concession_fen = 50;
    d.transfer_discount_fen = 20;
    d.paid_fen = 530;
    d.late_taps = 1;
    w.day_deltas.push_back(d);
    d.operator_id = "ABUS";
    d.taps = 1;
    d.loads = 2;
    d.load_fen = 5000;
    w.day_deltas.push_back(d);
    REQUIRE(f.Write(w).ok());
  }
  auto totals = f.store->DayTotals(19000);
  REQUIRE(totals.ok());
  REQUIRE(totals->size() == 2);
  CHECK((*totals)[0].operator_id == "ABUS");
  CHECK((*totals)[0].loads == 4);
  CHECK((*totals)[0].load_fen == 10000);
  CHECK((*totals)[1].operator_id == "BUS1");
  CHECK((*totals)[1].taps == 6);
  CHECK((*totals)[1].full_fare_fen == 1200);
  CHECK((*totals)[1].concession_fen == 100);
  CHECK((*totals)[1].transfer_discount_fen == 40);
  CHECK((*totals)[1].paid_fen == 1060);
  CHECK((*totals)[1].late_taps == 2);
  CHECK(f.store->DayTotals(19001)->empty());
}

TEST_CASE("sqlite tap store scans a day's taps in pages", "[db][tap_store]") {
  Fixture f;
  IngestWrite w;
  for (uint32_t i = 1; i <= 5; ++i) {
    w.taps.push_back(Stored(Record("T1", i, 8607550000000011, i, 1000, 10), i <= 3 ? 19000 : 19001));
  }
  REQUIRE(f.Write(w).ok());
  std::vector<StoredTap> page;
  REQUIRE(f.store->ScanDayTaps(19000, 0, 2, &page).ok());
  REQUIRE(page.size() == 2);
  REQUIRE(f.store->ScanDayTaps(19000, page.back().seq, 2, &page).ok());
  REQUIRE(page.size() == 3);
  CHECK(page[2].record.terminal_counter == 3);
}

TEST_CASE("sqlite tap store keeps gaps, alerts, top-ups and terminal denylist reports",
          "[db][tap_store]") {
  Fixture f;
  IngestWrite w;
  CounterGap g{GapKind::card, 8607550000000011, "", 4, 9, 77};
  CounterGap t{GapKind::terminal, 0, "T1", 10, 12, 78};
  w.gaps_added = {g, t};
  Alert a{0, AlertKind::cloned_card, 8607550000000011, "T1", 1000, "cloned"};
  Alert b{0, AlertKind::lost_uploads, 0, "T2", 2000, "lost"};
  w.alerts = {a, b};
  TopupRecord topup;
  topup.terminal_id = "K1";
  topup.request_id = 0xFFFF'FFFF'FFFF'FFF0ULL;
  topup.card_no = 8607550000000011;
  topup.card_counter = 7;
  topup.balance_before_fen = 100;
  topup.amount_fen = 500;
  topup.pending_id = Id128{5, 6};
  topup.authorisation_id = 12345;
  topup.created_ms = 1;
  topup.expires_ms = 2;
  w.topups = {topup};
  REQUIRE(f.Write(w).ok());

  auto gaps = f.store->LoadGaps(GapKind::card, 8607550000000011, "");
  REQUIRE(gaps->size() == 1);
  CHECK((*gaps)[0] == g);
  CHECK(*f.store->LoadGaps(GapKind::terminal, 0, "T1") == std::vector{t});
  IngestWrite fill;
  fill.gaps_removed = {g};
  CounterGap left = g;
  left.to = 5;
  CounterGap right = g;
  right.from = 7;
  fill.gaps_added = {left, right};
  REQUIRE(f.Write(fill).ok());
  CHECK(*f.store->LoadGaps(GapKind::card, 8607550000000011, "") == std::vector{left, right});
  CHECK(f.store->ListGaps(GapKind::terminal)->size() == 1);

  auto all = f.store->ListAlerts({});
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].kind == AlertKind::lost_uploads);  // newest first
  CHECK((*all)[1].seq == 1);
  CHECK((*all)[1].detail == "cloned");
  AlertFilter by_card;
  by_card.card_no = 8607550000000011;
  CHECK(f.store->ListAlerts(by_card)->size() == 1);
  AlertFilter by_kind;
  by_kind.kind = AlertKind::lost_uploads;
  by_kind.terminal_id = "T2";
  CHECK(f.store->ListAlerts(by_kind)->size() == 1);
  by_kind.terminal_id = "T1";
  CHECK(f.store->ListAlerts(by_kind)->empty());

  auto found = f.store->FindTopup("K1", topup.request_id);
  REQUIRE(found->has_value());
  CHECK(**found == topup);
  CHECK(**f.store->FindTopupByAuthorisation(12345) == topup);
  CHECK(f.store->ListOpenTopups()->size() == 1);
  topup.status = TopupStatus::posted;
  IngestWrite post;
  post.topups = {topup};
  REQUIRE(f.Write(post).ok());
  CHECK(f.store->ListOpenTopups()->empty());

  REQUIRE(f.store->RecordTerminalDenylistVersion("T1", 3, 100).ok());
  REQUIRE(f.store->RecordTerminalDenylistVersion("T1", 2, 200).ok());  // not above: ignored
  REQUIRE(f.store->RecordTerminalDenylistVersion("T1", 5, 300).ok());
  auto reports = f.store->LoadTerminalDenylistReports("T1");
  REQUIRE(reports->size() == 2);
  CHECK((*reports)[1].version == 5);
  CHECK((*reports)[1].terminal_time_ms == 300);
}

TopupRecord Topup(std::string terminal, uint64_t request_id, int64_t created_ms,
                  TopupStatus status) {
  TopupRecord t;
  t.terminal_id = std::move(terminal);
  t.request_id = request_id;
  t.card_no = 8607550000000011;
  t.card_counter = 7;
  t.balance_before_fen = 100;
  t.amount_fen = 500;
  t.pending_id = Id128{5, request_id};
  t.authorisation_id = 1000 + request_id;
  t.status = status;
  t.created_ms = created_ms;
  t.expires_ms = created_ms + 60'000;
  return t;
}

// The plan SQLite makes for the open top-ups' query (ListOpenTopups), one line per step.
std::string OpenTopupsPlan(Database& db) {
  auto plan = db.Prepare(
      "EXPLAIN QUERY PLAN SELECT request_id FROM ingest_topups WHERE status IN (1, 3) "
      "ORDER BY created_ms");
  REQUIRE(plan.ok());
  std::string out;
  while (*plan->Step()) out += plan->ColumnText(3) + "\n";
  return out;
}

TEST_CASE("sqlite tap store lists the open top-ups oldest first from an index of them alone",
          "[db][tap_store]") {
  Fixture f;
  IngestWrite w;
  w.topups = {Topup("K1", 1, 30, TopupStatus::pending), Topup("K2", 2, 10, TopupStatus::pending),
              Topup("K1", 3, 20, TopupStatus::expired), Topup("K2", 4, 5, TopupStatus::posted),
              Topup("K1", 5, 1, TopupStatus::recovered)};
  REQUIRE(f.Write(w).ok());
  auto open = f.store->ListOpenTopups();
  REQUIRE(open.ok());
  REQUIRE(open->size() == 3);
  CHECK((*open)[0].request_id == 2);
  CHECK((*open)[1].request_id == 3);
  CHECK((*open)[1].status == TopupStatus::expired);
  CHECK((*open)[2].request_id == 1);

  // Confirming the oldest takes it off the list.
  IngestWrite post;
  post.topups = {Topup("K2", 2, 10, TopupStatus::posted)};
  REQUIRE(f.Write(post).ok());
  open = f.store->ListOpenTopups();
  REQUIRE(open->size() == 2);
  CHECK((*open)[0].request_id == 3);

  std::string plan = OpenTopupsPlan(*f.db);
  CHECK_THAT(plan, Catch::Contains("ingest_topups_open"));
  CHECK_THAT(plan, !Catch::Contains("TEMP B-TREE"));  // no sort
}

TEST_CASE("sqlite tap store brings a version 1 database's top-up index up to date, rows kept",
          "[db][tap_store]") {
  auto opened = Database::Open(":memory:", true);
  REQUIRE(opened.ok());
  Database& db = **opened;
  REQUIRE(db.Migrate("ingest", {SqliteTapStore::Migrations()[0]}).ok());
  REQUIRE(db.Exec("INSERT INTO ingest_topups VALUES('K1', 1, 8607550000000011, 7, 100, 500, 1, "
                  "x'05', 1001, 1, 10, 70000, 0, x'')")
              .ok());
  auto store = SqliteTapStore::Open(db);
  REQUIRE(store.ok());
  // Version 3 adds the tap packs, version 4 the card keys' tables (no rows to move).
  CHECK(*db.SchemaVersion("ingest") == 4);
  auto open = (*store)->ListOpenTopups();
  REQUIRE(open.ok());
  REQUIRE(open->size() == 1);
  CHECK((*open)[0].authorisation_id == 1001);
  CHECK_THAT(OpenTopupsPlan(db), Catch::Contains("ingest_topups_open"));
}

}  // namespace
}  // namespace citycard::db
