// Settlement's SQL reads (db/sqlite_settlement_reads.h) against the same reads made over the
// general store scans (core/settlement_reads.h StoreSettlementReads): same sums, same taps.
#include "db/sqlite_settlement_reads.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/account_plan.h"
#include "core/clock.h"
#include "core/ledger.h"
#include "crypto/digest.h"
#include "db/database.h"
#include "db/sqlite_ledger_store.h"
#include "db/sqlite_registry_store.h"
#include "db/sqlite_tap_store.h"

namespace citycard::db {
namespace {

using O = TransferOutcome;

constexpr int64_t kStartMs = 1'700'000'000'000;

Account MakeAccount(uint64_t id, AccountKind kind, uint32_t flags = 0) {
  Account a;
  a.id = id;
  a.kind = kind;
  a.owner_ref = id;
  a.flags = flags;
  return a;
}

Transfer T(Id128 id, uint64_t debit, uint64_t credit, int64_t amount, uint16_t code,
           uint16_t flags = 0) {
  Transfer t;
  t.id = id;
  t.debit_account_id = debit;
  t.credit_account_id = credit;
  t.amount_fen = amount;
  t.code = code;
  t.flags = flags;
  return t;
}

TapRecord Record(std::string terminal, uint32_t ttc, uint64_t card, uint32_t ctc, int64_t amount,
                 TapType type = TapType::purchase) {
  TapRecord r;
  r.type = type;
  r.card_no = card;
  r.card_counter = ctc;
  r.balance_before_fen = 5000;
  r.amount_fen = amount;
  r.terminal_id = std::move(terminal);
  r.terminal_counter = ttc;
  r.time_s = 1'700'000'000 + ttc;
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
  t.received_ms = kStartMs;
  t.clearing_day = day;
  t.late = late;
  t.outcome = late ? IngestOutcome::accepted_late : IngestOutcome::accepted;
  t.charged_card_no = r.card_no;
  if (r.amount_fen > 0) t.transfer_id = Id128{1, r.terminal_counter};
  return t;
}

// One connection holding the ledger's and the ingest's tables, as `citycard` has.
struct Fixture {
  ManualClock clock{kStartMs};
  crypto::Sha256Digester digester;
  std::unique_ptr<Database> db;
  std::unique_ptr<SqliteLedgerStore> ledger_store;
  std::unique_ptr<SqliteTapStore> tap_store;
  std::unique_ptr<SqliteRegistryStore> registry_store;
  std::unique_ptr<Ledger> ledger;

  Fixture() {
    auto opened = Database::Open(":memory:", true);
    REQUIRE(opened.ok());
    db = std::move(*opened);
    auto ls = SqliteLedgerStore::Open(*db);
    REQUIRE(ls.ok());
    ledger_store = std::move(*ls);
    auto ts = SqliteTapStore::Open(*db);
    REQUIRE(ts.ok());
    tap_store = std::move(*ts);
    auto rs = SqliteRegistryStore::Open(*db);
    REQUIRE(rs.ok());
    registry_store = std::move(*rs);
    ledger = std::make_unique<Ledger>(*ledger_store, clock, digester);
  }
  Status WriteTaps(const IngestWrite& w) {
    CITYCARD_RETURN_IF_ERROR(db->Begin());
    Status s = tap_store->Write(w);
    if (!s.ok()) {
      (void)db->Rollback();
      return s;
    }
    return db->Commit();
  }
};

std::vector<AccountCodeSum> Sorted(std::vector<AccountCodeSum> sums) {
  std::sort(sums.begin(), sums.end(), [](const AccountCodeSum& a, const AccountCodeSum& b) {
    return std::pair(a.account_id, a.code) < std::pair(b.account_id, b.code);
  });
  return sums;
}

std::vector<AccountCodeSum> Sums(SettlementReads& reads, int64_t first, int64_t last,
                                 std::optional<AccountKind> only_kind = std::nullopt) {
  std::vector<AccountCodeSum> out;
  REQUIRE(reads.SumPostedMovements(first, last, only_kind, &out).ok());
  return Sorted(std::move(out));
}

// The first column of the first row of `sql`, as text.
std::string QueryText(Database& db, const char* sql) {
  auto s = db.Prepare(sql);
  REQUIRE(s.ok());
  REQUIRE(*s->Step());
  return s->ColumnText(0);
}

// The summaries of a day, with each operator id kept beside them (the view dies with the visit).
std::vector<std::pair<DayTapSummary, std::string>> Taps(SettlementReads& reads, int64_t day) {
  std::vector<std::pair<DayTapSummary, std::string>> out;
  REQUIRE(reads
              .ForEachDayTap(day,
                             [&](const DayTapSummary& tap) -> Status {
                               out.emplace_back(tap, std::string(tap.operator_id));
                               out.back().first.operator_id = {};
                               return Status::Ok();
                             })
              .ok());
  return out;
}

}  // namespace

TEST_CASE("SQL sums of the ledger's posted movements equal the sums of its transfers read whole",
          "[db][settlement]") {
  Fixture f;
  std::vector<Account> accounts = {MakeAccount(1, AccountKind::card_purse, kAccountEnforceFloor),
                                   MakeAccount(2, AccountKind::topup_clearing),
                                   MakeAccount(3, AccountKind::operator_payable),
                                   MakeAccount(4, AccountKind::card_purse, kAccountEnforceFloor)};
  REQUIRE(f.ledger->CreateAccounts(accounts).ok());
  std::vector<Transfer> first = {
      T({2, 1}, 2, 1, 5000, 3),  T({2, 2}, 2, 4, 700, 3),
      T({2, 3}, 1, 3, 200, 16),  T({2, 4}, 4, 3, 150, 16),
      T({2, 5}, 1, 3, 300, 32, kTransferPending),  // a reservation moves nothing yet
      T({2, 6}, 1, 3, 100, 32, kTransferPending),
  };
  REQUIRE(*f.ledger->Apply(first) == std::vector<O>(6, O::created));
  Transfer post = T({2, 7}, 1, 3, 300, 32, kTransferPostPending);  // the post moves the money
  post.pending_id = Id128{2, 5};
  Transfer cancel = T({2, 8}, 1, 3, 0, 32, kTransferVoidPending);  // the void moves nothing
  cancel.pending_id = Id128{2, 6};
  std::vector<Transfer> second = {post, cancel, T({2, 9}, 1, 3, 250, 16)};
  REQUIRE(*f.ledger->Apply(second) == std::vector<O>(3, O::created));
  REQUIRE(f.ledger_store->LoadHead()->last_transfer_seq == 9);

  SqliteSettlementReads sql(*f.db);
  StoreSettlementReads scanned(*f.ledger_store, *f.tap_store, *f.registry_store);
  CHECK(Sums(sql, 1, 9) == Sums(scanned, 1, 9));
  CHECK(Sums(sql, 1, 9) == std::vector<AccountCodeSum>{
                               {1, 3, 1, 5000, 0},
                               {1, 16, 2, 0, 450},
                               {1, 32, 1, 0, 300},
                               {2, 3, 2, 0, 5700},
                               {3, 16, 3, 600, 0},
                               {3, 32, 1, 300, 0},
                               {4, 3, 1, 700, 0},
                               {4, 16, 1, 0, 150},
                           });
  // A stretch of the sequence: the second batch alone.
  CHECK(Sums(sql, 7, 9) == Sums(scanned, 7, 9));
  CHECK(Sums(sql, 7, 9) == std::vector<AccountCodeSum>{
                               {1, 16, 1, 0, 250},
                               {1, 32, 1, 0, 300},
                               {3, 16, 1, 250, 0},
                               {3, 32, 1, 300, 0},
                           });
  CHECK(Sums(sql, 9, 8).empty());
  CHECK(Sums(sql, 10, 20).empty());
  CHECK(Sums(scanned, 9, 8).empty());
}

TEST_CASE("Sums of one kind of account leave the other side of each transfer out",
          "[db][settlement]") {
  Fixture f;
  const uint64_t clearing = SystemAccountId(AccountKind::topup_clearing);
  const uint64_t purse_a = AccountIdFor(AccountKind::card_purse, 8607550000000011);
  const uint64_t purse_b = AccountIdFor(AccountKind::card_purse, 8607550000000029);
  const uint64_t bus = AccountIdFor(AccountKind::operator_payable, 1);
  const uint64_t metro = AccountIdFor(AccountKind::operator_payable, 2);
  std::vector<Account> accounts = {
      MakeAccount(clearing, AccountKind::topup_clearing),
      MakeAccount(purse_a, AccountKind::card_purse, kAccountEnforceFloor),
      MakeAccount(purse_b, AccountKind::card_purse, kAccountEnforceFloor),
      MakeAccount(bus, AccountKind::operator_payable),
      MakeAccount(metro, AccountKind::operator_payable)};
  REQUIRE(f.ledger->CreateAccounts(accounts).ok());
  std::vector<Transfer> day = {
      T({3, 1}, clearing, purse_a, 5000, 1), T({3, 2}, clearing, purse_b, 800, 1),
      T({3, 3}, purse_a, bus, 200, 16),      T({3, 4}, purse_b, bus, 150, 16),
      T({3, 5}, purse_a, metro, 400, 16),    T({3, 6}, purse_a, bus, 120, 16),
      T({3, 7}, bus, purse_b, 50, 96),       T({3, 8}, purse_a, bus, 90, 32, kTransferPending),
  };
  REQUIRE(*f.ledger->Apply(day) == std::vector<O>(8, O::created));

  SqliteSettlementReads sql(*f.db);
  StoreSettlementReads scanned(*f.ledger_store, *f.tap_store, *f.registry_store);
  const std::vector<AccountCodeSum> payables = {
      {bus, 16, 3, 470, 0},
      {bus, 96, 1, 0, 50},
      {metro, 16, 1, 400, 0},
  };
  CHECK(Sums(sql, 1, 8, AccountKind::operator_payable) == payables);
  CHECK(Sums(scanned, 1, 8, AccountKind::operator_payable) == payables);
  const std::vector<AccountCodeSum> purses = {
      {purse_a, 1, 1, 5000, 0},
      {purse_a, 16, 3, 0, 720},
      {purse_b, 1, 1, 800, 0},
      {purse_b, 16, 1, 0, 150},
      {purse_b, 96, 1, 50, 0},
  };
  CHECK(Sums(sql, 1, 8, AccountKind::card_purse) == purses);
  CHECK(Sums(scanned, 1, 8, AccountKind::card_purse) == purses);
  // Without a kind, every account's sums: the two kinds above and the clearing account.
  std::vector<AccountCodeSum> all = Sums(sql, 1, 8);
  CHECK(all == Sums(scanned, 1, 8));
  CHECK(all.size() == payables.size() + purses.size() + 1);
  CHECK(all[0] == AccountCodeSum{purse_a, 1, 1, 5000, 0});
  CHECK(Sums(sql, 3, 2, AccountKind::operator_payable).empty());
}

TEST_CASE("Payables summed from batch sums equal their transfers read one by one, on any stretch",
          "[db][settlement]") {
  Fixture f;
  const uint64_t clearing = SystemAccountId(AccountKind::topup_clearing);
  const uint64_t refunds = SystemAccountId(AccountKind::refunds);
  std::vector<uint64_t> purses;
  std::vector<uint64_t> payables;
  std::vector<Account> accounts = {MakeAccount(clearing, AccountKind::topup_clearing),
                                   MakeAccount(refunds, AccountKind::refunds)};
  for (uint64_t i = 1; i <= 4; ++i) {
    purses.push_back(AccountIdFor(AccountKind::card_purse, 8607550000000000 + 10 * i));
    accounts.push_back(MakeAccount(purses.back(), AccountKind::card_purse));
    payables.push_back(AccountIdFor(AccountKind::operator_payable, i));
    accounts.push_back(MakeAccount(payables.back(), AccountKind::operator_payable));
  }
  REQUIRE(f.ledger->CreateAccounts(accounts).ok());
  // Batches of 1 to 6 transfers: top-ups, taps, refunds, reservations, posts and voids.
  std::mt19937_64 rng(27);
  uint64_t next_id = 1;
  std::vector<Id128> open_pending;
  for (int batch = 0; batch < 12; ++batch) {
    std::vector<Transfer> transfers;
    const int count = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < count; ++i) {
      const uint64_t purse = purses[rng() % purses.size()];
      const uint64_t payable = payables[rng() % payables.size()];
      const int64_t amount = 1 + static_cast<int64_t>(rng() % 500);
      switch (rng() % 6) {
        case 0: transfers.push_back(T({9, next_id++}, clearing, purse, amount, 1)); break;
        case 1: transfers.push_back(T({9, next_id++}, payable, refunds, amount, 96)); break;
        case 2:
          open_pending.push_back(Id128{9, next_id});
          transfers.push_back(T({9, next_id++}, purse, payable, amount, 32, kTransferPending));
          break;
        case 3:
          if (!open_pending.empty()) {
            Transfer end = T({9, next_id++}, 0, 0, 0, 32,
                             rng() % 2 == 0 ? kTransferPostPending : kTransferVoidPending);
            end.pending_id = open_pending.back();
            open_pending.pop_back();
            transfers.push_back(end);
            break;
          }
          [[fallthrough]];
        default: transfers.push_back(T({9, next_id++}, purse, payable, amount, 16)); break;
      }
    }
    (void)f.ledger->Apply(transfers);  // a declined transfer is simply not stored
  }
  const int64_t last = f.ledger_store->LoadHead()->last_transfer_seq;
  REQUIRE(last >= 20);

  SqliteSettlementReads sql(*f.db);
  StoreSettlementReads scanned(*f.ledger_store, *f.tap_store, *f.registry_store);
  auto every_stretch_agrees = [&] {
    for (int64_t first = 1; first <= last + 1; ++first) {
      for (int64_t end = first - 1; end <= last + 1; ++end) {
        for (AccountKind kind : {AccountKind::operator_payable, AccountKind::topup_clearing,
                                 AccountKind::refunds, AccountKind::card_purse}) {
          INFO("seq " << first << " to " << end << ", kind " << AccountKindName(kind));
          REQUIRE(Sums(sql, first, end, kind) == Sums(scanned, first, end, kind));
        }
      }
    }
  };
  every_stretch_agrees();
  // The payables of the whole ledger are not empty: the comparison above compared something.
  CHECK_FALSE(Sums(sql, 1, last, AccountKind::operator_payable).empty());
  // Batches written before the sums were kept (schema version 1) are read one by one.
  REQUIRE(f.db->Exec("UPDATE ledger_batches SET sums_kept = 0 WHERE seq % 3 = 1").ok());
  REQUIRE(f.db->Exec("DELETE FROM ledger_batch_sums WHERE batch_seq % 3 = 1").ok());
  every_stretch_agrees();
  // The sums are what the reads use: a changed sum changes the answer.
  REQUIRE(f.db->Exec("UPDATE ledger_batch_sums SET credits_fen = credits_fen + 1").ok());
  CHECK(Sums(sql, 1, last, AccountKind::operator_payable) !=
        Sums(scanned, 1, last, AccountKind::operator_payable));
}

TEST_CASE("SQL reads of a day's taps give the summaries of its taps decoded whole",
          "[db][settlement]") {
  Fixture f;
  TapRecord a = Record("T1", 1, 8607550000000011, 1, 200);
  a.profile = Profile::student;
  TapRecord free_ride = Record("T1", 2, 8607550000000029, 1, 0);  // no money moved
  TapRecord other_day = Record("T1", 3, 8607550000000011, 2, 300);
  TapRecord late = Record("T2", 1, 8607550000000029, 2, 150, TapType::metro_exit);
  late.operator_id = "METRO-LINE-0001A";  // all 16 bytes of the field
  TapRecord load = Record("K1", 1, 8607550000000011, 3, 1000, TapType::load);
  IngestWrite w;
  w.taps = {Stored(a, 19000), Stored(free_ride, 19000), Stored(other_day, 19001),
            Stored(late, 19000, true), Stored(load, 19000)};
  REQUIRE(f.WriteTaps(w).ok());
  // A tap of the day booked after another day's: the day's rows need not be contiguous.
  IngestWrite after;
  after.taps = {Stored(Record("T1", 4, 8607550000000029, 3, 120), 19000)};
  REQUIRE(f.WriteTaps(after).ok());

  SqliteSettlementReads sql(*f.db);
  StoreSettlementReads scanned(*f.ledger_store, *f.tap_store, *f.registry_store);
  auto read = Taps(sql, 19000);
  CHECK(read == Taps(scanned, 19000));
  REQUIRE(read.size() == 5);
  const DayTapSummary& first = read[0].first;
  CHECK(first.seq == 1);
  CHECK(first.card_no == 8607550000000011);
  CHECK(first.type == TapType::purchase);
  CHECK(first.profile == Profile::student);
  CHECK(first.amount_fen == 200);
  CHECK(first.time_s == 1'700'000'001);
  CHECK(first.paid);
  CHECK_FALSE(first.late);
  CHECK(read[0].second == "BUS1");
  CHECK_FALSE(read[1].first.paid);
  CHECK(read[2].first.seq == 4);
  CHECK(read[2].first.type == TapType::metro_exit);
  CHECK(read[2].first.late);
  CHECK(read[2].first.paid);
  CHECK(read[2].second == "METRO-LINE-0001A");
  CHECK(read[3].first.type == TapType::load);
  CHECK(read[4].first.seq == 6);
  CHECK(read[4].first.amount_fen == 120);

  auto next = Taps(sql, 19001);
  REQUIRE(next.size() == 1);
  CHECK(next[0].first.seq == 3);
  CHECK(next == Taps(scanned, 19001));
  CHECK(Taps(sql, 18999).empty());
}

// The seqs of the day's taps with seq in `seqs`, as `reads` gives them.
std::vector<int64_t> SeqsIn(SettlementReads& reads, int64_t day, SeqRange seqs) {
  std::vector<int64_t> out;
  REQUIRE(reads
              .ForEachDayTapIn(day, seqs,
                               [&](const DayTapSummary& tap) -> Status {
                                 out.push_back(tap.seq);
                                 return Status::Ok();
                               })
              .ok());
  return out;
}

TEST_CASE("A day's first and last tap and a stretch of its taps read in SQL are those read whole",
          "[db][settlement]") {
  Fixture f;
  IngestWrite w;
  // Seqs 1..6: days 19000, 19000, 19001, 19000, 19001, 19000.
  const int64_t days[] = {19000, 19000, 19001, 19000, 19001, 19000};
  for (uint32_t i = 0; i < 6; ++i) {
    w.taps.push_back(Stored(Record("T1", i + 1, 8607550000000011, i + 1, 100), days[i]));
  }
  REQUIRE(f.WriteTaps(w).ok());
  SqliteSettlementReads sql(*f.db);
  StoreSettlementReads scanned(*f.ledger_store, *f.tap_store, *f.registry_store);
  for (SettlementReads* reads : std::initializer_list<SettlementReads*>{&sql, &scanned}) {
    CHECK(*reads->DayTapSeqs(19000) == std::optional(SeqRange{1, 6}));
    CHECK(*reads->DayTapSeqs(19001) == std::optional(SeqRange{3, 5}));
    CHECK_FALSE(reads->DayTapSeqs(18999)->has_value());
    CHECK(SeqsIn(*reads, 19000, {1, 3}) == std::vector<int64_t>{1, 2});
    CHECK(SeqsIn(*reads, 19000, {4, 6}) == std::vector<int64_t>{4, 6});
    CHECK(SeqsIn(*reads, 19000, {2, 4}) == std::vector<int64_t>{2, 4});
    CHECK(SeqsIn(*reads, 19001, {4, 4}).empty());
    CHECK(SeqsIn(*reads, 19001, {1, 6}) == std::vector<int64_t>{3, 5});
  }
}

TEST_CASE("A day's tap scan stops at the first failing visit and leaves the connection usable",
          "[db][settlement]") {
  Fixture f;
  IngestWrite w;
  for (uint32_t i = 1; i <= 3; ++i) w.taps.push_back(Stored(Record("T1", i, 8607550000000011, i, 10), 19000));
  REQUIRE(f.WriteTaps(w).ok());
  SqliteSettlementReads sql(*f.db);
  int visits = 0;
  Status s = sql.ForEachDayTap(19000, [&](const DayTapSummary&) -> Status {
    ++visits;
    return visits == 2 ? Status::Internal("stop_here", "the second tap") : Status::Ok();
  });
  CHECK(s.code() == "stop_here");
  CHECK(visits == 2);
  CHECK(Taps(sql, 19000).size() == 3);
}

TEST_CASE("A day's tap whose stored record is not a tap record is reported as corrupt",
          "[db][settlement]") {
  Fixture f;
  IngestWrite w;
  w.taps.push_back(Stored(Record("T1", 1, 8607550000000011, 1, 10), 19000));
  REQUIRE(f.WriteTaps(w).ok());
  SqliteSettlementReads sql(*f.db);
  auto read = [&] {
    return sql.ForEachDayTap(19000, [](const DayTapSummary&) { return Status::Ok(); });
  };
  SECTION("in its row, read when the write kept no pack") {
    REQUIRE(f.db->Exec("DELETE FROM ingest_tap_packs").ok());
    REQUIRE(f.db->Exec("UPDATE ingest_taps SET record = x'0102' WHERE seq = 1").ok());
    CHECK(read().code() == "tap_store_corrupt");
  }
  SECTION("in its write's pack") {
    REQUIRE(f.db->Exec("UPDATE ingest_tap_packs SET pack = x'0102'").ok());
    CHECK(read().code() == "tap_store_corrupt");
  }
}

TEST_CASE("Each write of taps keeps one pack of them, and a day reads the same from packs and rows",
          "[db][settlement]") {
  Fixture f;
  // Three writes of four taps, days mixed within each; the cards and amounts vary.
  uint32_t ttc = 0;
  for (int write = 0; write < 3; ++write) {
    IngestWrite w;
    for (int i = 0; i < 4; ++i) {
      ++ttc;
      TapRecord r = Record(ttc % 2 ? "T1" : "T2", ttc, 8607550000000011 + 18 * (ttc % 3), ttc,
                           ttc % 5 == 0 ? 0 : 50 * ttc);
      if (ttc % 3 == 0) r.operator_id = "METRO-1";
      w.taps.push_back(Stored(r, ttc % 4 == 0 ? 19001 : 19000, ttc == 6));
    }
    REQUIRE(f.WriteTaps(w).ok());
  }
  CHECK(QueryText(*f.db, "SELECT count(*) FROM ingest_tap_packs") == "3");
  CHECK(QueryText(*f.db, "SELECT group_concat(first_seq || ':' || taps) FROM ingest_tap_packs") ==
        "1:4,5:4,9:4");

  SqliteSettlementReads sql(*f.db);
  StoreSettlementReads scanned(*f.ledger_store, *f.tap_store, *f.registry_store);
  const auto day = Taps(scanned, 19000);
  const auto next_day = Taps(scanned, 19001);
  REQUIRE(day.size() == 9);
  REQUIRE(next_day.size() == 3);
  auto same_everywhere = [&] {
    CHECK(Taps(sql, 19000) == day);
    CHECK(Taps(sql, 19001) == next_day);
    // Every stretch, so that packs and rows are cut at every place.
    for (int64_t a = 1; a <= 12; ++a) {
      for (int64_t b = a; b <= 12; ++b) {
        INFO("seqs " << a << ".." << b);
        CHECK(SeqsIn(sql, 19000, {a, b}) == SeqsIn(scanned, 19000, {a, b}));
      }
    }
  };
  SECTION("every write packed") { same_everywhere(); }
  SECTION("the first write booked before the packs") {
    REQUIRE(f.db->Exec("DELETE FROM ingest_tap_packs WHERE first_seq = 1").ok());
    same_everywhere();
  }
  SECTION("the middle write booked before the packs") {
    REQUIRE(f.db->Exec("DELETE FROM ingest_tap_packs WHERE first_seq = 5").ok());
    same_everywhere();
  }
  SECTION("the last write booked before the packs") {
    REQUIRE(f.db->Exec("DELETE FROM ingest_tap_packs WHERE first_seq = 9").ok());
    same_everywhere();
  }
  SECTION("no write packed") {
    REQUIRE(f.db->Exec("DELETE FROM ingest_tap_packs").ok());
    same_everywhere();
  }
  SECTION("a pack's rows changed behind it are not what is read") {
    // Proof that the packs, not the rows, are read when they are there (the test above would
    // pass if they were never read).
    REQUIRE(f.db->Exec("UPDATE ingest_taps SET record = x'0102'").ok());
    CHECK(Taps(sql, 19000) == day);
  }
}

TEST_CASE("A write whose taps cannot be packed keeps none and its taps are read from their rows",
          "[db][settlement]") {
  Fixture f;
  IngestWrite w;
  w.taps = {Stored(Record("T1", 1, 8607550000000011, 1, 200), 19000),
            Stored(Record("T1", 2, 8607550000000011, 2, 200), int64_t{1} << 40)};
  REQUIRE(f.WriteTaps(w).ok());
  CHECK(QueryText(*f.db, "SELECT count(*) FROM ingest_tap_packs") == "0");
  SqliteSettlementReads sql(*f.db);
  StoreSettlementReads scanned(*f.ledger_store, *f.tap_store, *f.registry_store);
  CHECK(Taps(sql, 19000).size() == 1);
  CHECK(Taps(sql, 19000) == Taps(scanned, 19000));
  CHECK(Taps(sql, int64_t{1} << 40) == Taps(scanned, int64_t{1} << 40));
}

}  // namespace citycard::db

namespace citycard::db {
namespace {

// Card i of the rebate-card tests: "86075500000" and five digits.
std::string CardNo(int i) { return fmt::format("86075500000{:05d}", i); }

// Registers `count` cards (0 .. count-1) of one holder: card 3 closed, card 5 replaced by card 6
// with its balance moved, card 7 replaced by card 8 with its balance not moved yet.
void RegisterCards(SqliteRegistryStore& registry, int count) {
  Holder holder;
  holder.number = 1;
  holder.id_hash = "hash-1";
  holder.id_masked = "3212**********1234";
  holder.name = "王小明";
  REQUIRE(registry.InsertHolder(holder).ok());
  for (int i = 0; i < count; ++i) {
    Card card;
    card.card_no = CardNo(i);
    card.holder_number = 1;
    card.purse_account_id = AccountIdFor(AccountKind::card_purse, 8607550000000000 + i);
    if (i == 3) card.status = CardStatus::closed;
    if (i == 5 || i == 7) {
      card.status = CardStatus::replaced;
      card.replaced_by = CardNo(i + 1);
    }
    if (i == 5) card.balance_moved_s = 1'700'000'000;
    REQUIRE(registry.InsertCard(card).ok());
  }
}

RebateCardState StateOf(int i) {
  RebateCardState s{CardNo(i), CardStatus::active,
                    AccountIdFor(AccountKind::card_purse, 8607550000000000 + i), "", 0};
  if (i == 3) s.status = CardStatus::closed;
  if (i == 5 || i == 7) {
    s.status = CardStatus::replaced;
    s.replaced_by = CardNo(i + 1);
  }
  if (i == 5) s.balance_moved_s = 1'700'000'000;
  return s;
}

std::vector<RebateCardState> Found(SettlementReads& reads, const std::vector<std::string>& cards) {
  std::vector<RebateCardState> out;
  REQUIRE(reads.FindRebateCards(cards, &out).ok());
  return out;
}

}  // namespace

TEST_CASE("The rebated cards' states are read in one walk of the cards, registered ones only",
          "[db][settlement]") {
  Fixture f;
  RegisterCards(*f.registry_store, 12);
  SqliteSettlementReads sql(*f.db);
  StoreSettlementReads one_by_one(*f.ledger_store, *f.tap_store, *f.registry_store);
  // Cards before, between and after the registered ones are left out.
  const std::vector<std::string> asked = {"8607549999999999", CardNo(0), CardNo(3), CardNo(4),
                                          CardNo(5),          CardNo(7), CardNo(11),
                                          CardNo(40)};
  const std::vector<RebateCardState> expected = {StateOf(0), StateOf(3), StateOf(4),
                                                 StateOf(5), StateOf(7), StateOf(11)};
  CHECK(Found(sql, asked) == expected);
  CHECK(Found(one_by_one, asked) == expected);
  CHECK(Found(sql, {CardNo(40), CardNo(41)}).empty());
  CHECK(Found(sql, {}).empty());
  // Appends to what `out` holds.
  std::vector<RebateCardState> out = {StateOf(1)};
  const std::vector<std::string> two = {CardNo(2)};
  REQUIRE(sql.FindRebateCards(two, &out).ok());
  CHECK(out == std::vector<RebateCardState>{StateOf(1), StateOf(2)});
}

TEST_CASE("Rebated cards far apart in the table are found by seeking past the cards between",
          "[db][settlement]") {
  Fixture f;
  const int count = 400;
  RegisterCards(*f.registry_store, count);
  SqliteSettlementReads sql(*f.db);
  StoreSettlementReads one_by_one(*f.ledger_store, *f.tap_store, *f.registry_store);
  // Gaps of more than kRebateCardRowsSkippedMax rows (a seek each), of fewer (walked through),
  // a missing card at the end of a gap, and the last card of the table.
  static_assert(SqliteSettlementReads::kRebateCardRowsSkippedMax == 32);
  const std::vector<int> wanted = {1, 2, 100, 120, 300, 399};
  std::vector<std::string> asked;
  std::vector<RebateCardState> expected;
  for (int i : wanted) {
    asked.push_back(CardNo(i));
    expected.push_back(StateOf(i));
  }
  asked.insert(asked.begin() + 4, "8607550000000200x");  // between 120 and 300, not a card
  CHECK(Found(sql, asked) == expected);
  CHECK(Found(one_by_one, asked) == expected);
  // Every card: one pass.
  std::vector<std::string> all;
  for (int i = 0; i < count; ++i) all.push_back(CardNo(i));
  std::vector<RebateCardState> every = Found(sql, all);
  REQUIRE(every.size() == static_cast<size_t>(count));
  CHECK(every[5] == StateOf(5));
  CHECK(every[399] == StateOf(399));
}

}  // namespace citycard::db
