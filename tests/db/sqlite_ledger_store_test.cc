#include "db/sqlite_ledger_store.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "core/account_plan.h"
#include "core/audit.h"
#include "core/ledger.h"
#include "crypto/digest.h"
#include "tests/support/scratch_db_file_support.h"

using namespace citycard;
using citycard::db::Database;
using citycard::db::SqliteLedgerStore;
using O = TransferOutcome;

namespace {

constexpr int64_t kStartMs = 1'700'000'000'000;

Account MakeAccount(uint64_t id, AccountKind kind, int64_t floor_fen, uint32_t flags) {
  Account a;
  a.id = id;
  a.kind = kind;
  a.owner_ref = id;
  a.floor_fen = floor_fen;
  a.flags = flags;
  return a;
}

Transfer T(Id128 id, uint64_t debit, uint64_t credit, int64_t amount, uint16_t flags = 0) {
  Transfer t;
  t.id = id;
  t.debit_account_id = debit;
  t.credit_account_id = credit;
  t.amount_fen = amount;
  t.flags = flags;
  return t;
}

using TempDb = citycard::testing::ScratchDbFile;

// The database, store and ledger of one process, opened together.
struct Books {
  std::unique_ptr<Database> db;
  std::unique_ptr<SqliteLedgerStore> store;
  std::unique_ptr<Ledger> ledger;

  Books(const std::string& path, const Clock& clock, const Digester& digester) {
    auto opened = Database::Open(path, true);
    REQUIRE(opened.ok());
    db = std::move(opened).value();
    auto s = SqliteLedgerStore::Open(*db);
    REQUIRE(s.ok());
    store = std::move(s).value();
    ledger = std::make_unique<Ledger>(*store, clock, digester);
  }
};

std::string testing_join(const std::vector<std::string>& lines) {
  std::string all;
  for (const std::string& line : lines) all += line + "\n";
  return all;
}

AuditReport Audit(LedgerStore& store, const Digester& digester) {
  auto report = VerifyLedger(store, digester);
  REQUIRE(report.ok());
  return *report;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The store itself.

TEST_CASE("The SQLite ledger keeps accounts, transfers and failures across a reopen", "[db][ledger]") {
  TempDb file("ledger_reopen");
  ManualClock clock(kStartMs);
  crypto::Sha256Digester digester;
  {
    Books b(file.path, clock, digester);
    REQUIRE(*b.db->SchemaVersion("ledger") == 2);
    std::vector<Account> accounts = {MakeAccount(1, AccountKind::card_purse, 0, kAccountEnforceFloor),
                                     MakeAccount(2, AccountKind::topup_clearing, 0, 0),
                                     MakeAccount(3, AccountKind::operator_payable, 0, 0)};
    REQUIRE(b.ledger->CreateAccounts(accounts).ok());
    Transfer topup = T({1, 1}, 2, 1, 1000);
    topup.user_data_128 = Id128{0xabc, 0xdef};
    topup.code = 3;
    topup.user_data_32 = 0xffffffffu;
    topup.user_data_64 = ~uint64_t{0};
    Transfer pending = T({1, 2}, 1, 3, 300, kTransferPending);
    pending.timeout_s = 30;
    auto r = b.ledger->Apply(std::vector<Transfer>{topup, pending, T({1, 3}, 1, 3, 800)});
    REQUIRE(*r == std::vector<O>{O::created, O::created, O::insufficient_funds});
  }
  Books b(file.path, clock, digester);
  Account purse = *b.ledger->LookupAccount(1);
  REQUIRE(purse.balance_fen() == 1000);
  REQUIRE(purse.debits_pending == 300);
  REQUIRE(purse.flags == kAccountEnforceFloor);
  auto topup = *b.ledger->LookupTransfer(Id128{1, 1});
  REQUIRE(topup.has_value());
  REQUIRE(topup->user_data_128 == Id128{0xabc, 0xdef});
  REQUIRE(topup->user_data_64 == ~uint64_t{0});
  REQUIRE(topup->user_data_32 == 0xffffffffu);
  REQUIRE(topup->code == 3);
  REQUIRE(topup->timestamp_ms == kStartMs);
  REQUIRE(*b.ledger->LookupFailure(Id128{1, 3}) == O::insufficient_funds);
  auto again = b.ledger->Apply(std::vector<Transfer>{T({1, 3}, 1, 3, 10)});
  REQUIRE(*again == std::vector<O>{O::id_already_failed});
  clock.AdvanceMs(30'000);
  REQUIRE(*b.ledger->ExpirePending() == 1);
  REQUIRE(b.ledger->LookupAccount(1)->debits_pending == 0);
  auto history = b.ledger->AccountHistory(1, 10);
  REQUIRE(history->size() == 3);
  REQUIRE((*history)[0].transfer.flags == (kTransferVoidPending | kTransferExpiry));
  REQUIRE((*history)[2].transfer.id == Id128{1, 1});
  REQUIRE((*history)[2].balance_after_fen == 1000);
  REQUIRE(Audit(*b.store, digester).ok);
}

TEST_CASE("Two ledgers writing one database in turn keep every posting and one clean chain",
          "[db][ledger]") {
  // As when an operator tops up a card with the CLI while `serve` runs: each side caches
  // accounts and the chain's head, and neither may overwrite what the other committed.
  TempDb file("ledger_two_writers");
  ManualClock clock(kStartMs);
  crypto::Sha256Digester digester;
  Books server(file.path, clock, digester);
  REQUIRE(server.ledger->CreateAccounts(std::vector<Account>{
                                            MakeAccount(1, AccountKind::card_purse, 0, kAccountEnforceFloor),
                                            MakeAccount(2, AccountKind::topup_clearing, 0, 0),
                                            MakeAccount(3, AccountKind::operator_payable, 0, 0)})
              .ok());
  REQUIRE(*server.ledger->Apply(std::vector<Transfer>{T({2, 1}, 2, 1, 1000)}) ==
          std::vector<O>{O::created});
  REQUIRE(server.ledger->LookupAccount(1)->balance_fen() == 1000);  // now cached by the server

  Books counter(file.path, clock, digester);
  clock.AdvanceMs(1000);
  REQUIRE(*counter.ledger->Apply(std::vector<Transfer>{T({2, 2}, 2, 1, 500)}) ==
          std::vector<O>{O::created});
  // The server sees the counter's top-up at once and spends from the whole balance.
  REQUIRE(server.ledger->LookupAccount(1)->balance_fen() == 1500);
  clock.AdvanceMs(1000);
  REQUIRE(*server.ledger->Apply(std::vector<Transfer>{T({2, 3}, 1, 3, 1200)}) ==
          std::vector<O>{O::created});
  clock.AdvanceMs(1000);
  REQUIRE(*counter.ledger->Apply(std::vector<Transfer>{T({2, 4}, 1, 3, 400)}) ==
          std::vector<O>{O::insufficient_funds});
  REQUIRE(*counter.ledger->Apply(std::vector<Transfer>{T({2, 5}, 1, 3, 300)}) ==
          std::vector<O>{O::created});
  REQUIRE(server.ledger->SetAccountClosed(3).ok());
  clock.AdvanceMs(1000);
  REQUIRE(*server.ledger->Apply(std::vector<Transfer>{T({2, 6}, 2, 1, 100)}) ==
          std::vector<O>{O::created});

  Books fresh(file.path, clock, digester);
  Account purse = *fresh.ledger->LookupAccount(1);
  CHECK(purse.balance_fen() == 100);
  CHECK(purse.credits_posted == 1600);
  CHECK(purse.debits_posted == 1500);
  CHECK(fresh.ledger->LookupAccount(3)->closed());
  CHECK(fresh.ledger->LookupAccount(3)->credits_posted == 1500);
  AuditReport report = Audit(*fresh.store, digester);
  INFO(testing_join(report.problems));
  CHECK(report.ok);
  CHECK(report.transfers == 5);
}

TEST_CASE("Account ids above 2^63 survive the round trip through SQLite", "[db][ledger]") {
  ManualClock clock(kStartMs);
  crypto::Sha256Digester digester;
  Books b(":memory:", clock, digester);
  uint64_t big = (uint64_t{1} << 63) + 5;
  std::vector<Account> accounts = {MakeAccount(big, AccountKind::settlement, 0, 0),
                                   MakeAccount(7, AccountKind::refunds, 0, 0)};
  REQUIRE(b.ledger->CreateAccounts(accounts).ok());
  REQUIRE(*b.ledger->Apply(std::vector<Transfer>{T({0, 1}, big, 7, 5)}) == std::vector<O>{O::created});
  Ledger cold(*b.store, clock, digester);
  REQUIRE(cold.LookupAccount(big)->balance_fen() == -5);
  REQUIRE(Audit(*b.store, digester).ok);
}

TEST_CASE("LoadAccounts returns each asked account that exists once, whether the ids lie close or far",
          "[db][ledger]") {
  ManualClock clock(kStartMs);
  crypto::Sha256Digester digester;
  Books b(":memory:", clock, digester);
  // Purse-like ids 10 apart (walked), a run 1 apart (walked, with steps to spare), ids far
  // apart (sought), and one above 2^63 (negative as a rowid).
  std::vector<uint64_t> stored;
  for (uint64_t k = 0; k < 300; ++k) stored.push_back(1'000 + 10 * k);
  for (uint64_t k = 0; k < 40; ++k) stored.push_back(9'000 + k);
  for (uint64_t k = 1; k <= 5; ++k) stored.push_back(k * 1'000'000);
  stored.push_back((uint64_t{1} << 63) + 5);
  std::vector<Account> accounts;
  for (uint64_t id : stored) {
    accounts.push_back(MakeAccount(id, AccountKind::card_purse, -static_cast<int64_t>(id % 997), 0));
  }
  REQUIRE(b.ledger->CreateAccounts(accounts).ok());
  const std::set<uint64_t> exists(stored.begin(), stored.end());

  std::mt19937_64 rng(20261127);
  for (int round = 0; round < 200; ++round) {
    // From a few of the ids to all of them, with missing ids between and beyond and repeats.
    const double share = (round % 10 + 1) / 10.0;
    std::vector<uint64_t> asked;
    for (uint64_t id : stored) {
      if (std::uniform_real_distribution<double>(0, 1)(rng) < share) asked.push_back(id);
      if (rng() % 7 == 0) asked.push_back(id + 1 + rng() % 12);  // mostly absent
      if (rng() % 11 == 0) asked.push_back(id);                  // asked twice
    }
    // Half the rounds ask for ids at both ends too; the others go from above 2^63 (a negative
    // rowid) straight to the small ids, a gap wider than int64 can hold.
    if (round % 2 == 0) {
      asked.push_back(0);
      asked.push_back(std::numeric_limits<uint64_t>::max());
    }
    std::shuffle(asked.begin(), asked.end(), rng);
    std::vector<AccountRecord> out;
    REQUIRE(b.store->LoadAccounts(asked, &out).ok());
    std::set<uint64_t> expected;
    for (uint64_t id : asked) {
      if (exists.contains(id)) expected.insert(id);
    }
    std::multiset<uint64_t> got;
    for (const AccountRecord& r : out) {
      got.insert(r.account.id);
      // The row read is the asked id's own, not its neighbour's.
      REQUIRE(r.account.owner_ref == r.account.id);
      REQUIRE(r.account.floor_fen == -static_cast<int64_t>(r.account.id % 997));
    }
    REQUIRE(got == std::multiset<uint64_t>(expected.begin(), expected.end()));
  }
  std::vector<AccountRecord> none;
  REQUIRE(b.store->LoadAccounts(std::vector<uint64_t>{1'001, 1'002, 99'999'999}, &none).ok());
  REQUIRE(none.empty());
}

TEST_CASE("Each batch keeps its payables' posted sums, and a changed sum is named by the check",
          "[db][ledger]") {
  ManualClock clock(kStartMs);
  crypto::Sha256Digester digester;
  Books b(":memory:", clock, digester);
  const uint64_t clearing = AccountIdFor(AccountKind::topup_clearing, 0);
  const uint64_t purse = AccountIdFor(AccountKind::card_purse, 8607550000000012);
  const uint64_t bus = AccountIdFor(AccountKind::operator_payable, 1);
  REQUIRE(b.ledger->CreateAccounts(std::vector<Account>{
                                       MakeAccount(clearing, AccountKind::topup_clearing, 0, 0),
                                       MakeAccount(purse, AccountKind::card_purse, 0, 0),
                                       MakeAccount(bus, AccountKind::operator_payable, 0, 0)})
              .ok());
  REQUIRE(*b.ledger->Apply(std::vector<Transfer>{T({0, 1}, clearing, purse, 1000)}) ==
          std::vector<O>{O::created});
  std::vector<Transfer> rides = {T({0, 2}, purse, bus, 200), T({0, 3}, purse, bus, 150),
                                 T({0, 4}, purse, bus, 90, kTransferPending)};
  for (Transfer& t : rides) t.code = 16;
  REQUIRE(*b.ledger->Apply(rides) == std::vector<O>(3, O::created));

  // The purse keeps no sums (a row per card would be as many rows as taps); the pending
  // transfer moved nothing yet.
  auto stmt = b.db->Prepare(
      "SELECT batch_seq, account_id, code, transfers, debits_fen, credits_fen FROM "
      "ledger_batch_sums ORDER BY batch_seq, account_id");
  REQUIRE(stmt.ok());
  std::vector<std::vector<int64_t>> rows;
  while (*stmt->Step()) {
    rows.push_back({stmt->ColumnInt(0), stmt->ColumnInt(1), stmt->ColumnInt(2),
                    stmt->ColumnInt(3), stmt->ColumnInt(4), stmt->ColumnInt(5)});
  }
  stmt->Reset();
  CHECK(rows == std::vector<std::vector<int64_t>>{
                    {1, static_cast<int64_t>(clearing), 0, 1, 1000, 0},
                    {2, static_cast<int64_t>(bus), 16, 2, 0, 350},
                });
  std::vector<std::string> problems;
  REQUIRE(db::VerifyBatchSums(*b.db, 10, &problems).ok());
  CHECK(problems.empty());

  REQUIRE(b.db->Exec("UPDATE ledger_batch_sums SET transfers = 3 WHERE batch_seq = 2").ok());
  REQUIRE(db::VerifyBatchSums(*b.db, 10, &problems).ok());
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("batch 2") == 0);
  // A batch written before sums were kept is not checked (nor read) by its sums.
  problems.clear();
  REQUIRE(b.db->Exec("UPDATE ledger_batches SET sums_kept = 0 WHERE seq = 2").ok());
  REQUIRE(db::VerifyBatchSums(*b.db, 10, &problems).ok());
  CHECK(problems.empty());
}

TEST_CASE("ApplyNew with an id SQLite already holds fails with transfer_id_taken and keeps nothing",
          "[db][ledger]") {
  ManualClock clock(kStartMs);
  crypto::Sha256Digester digester;
  Books b(":memory:", clock, digester);
  std::vector<Account> accounts = {MakeAccount(1, AccountKind::topup_clearing, 0, 0),
                                   MakeAccount(2, AccountKind::operator_payable, 0, 0)};
  REQUIRE(b.ledger->CreateAccounts(accounts).ok());
  REQUIRE(*b.ledger->ApplyNew(std::vector<Transfer>{T({0, 1}, 1, 2, 5)}) == std::vector<O>{O::created});
  auto taken = b.ledger->ApplyNew(std::vector<Transfer>{T({0, 2}, 1, 2, 7), T({0, 1}, 1, 2, 5)});
  REQUIRE(taken.status().code() == "transfer_id_taken");
  REQUIRE(taken.status().kind() == Kind::internal);
  Ledger cold(*b.store, clock, digester);
  REQUIRE(cold.LookupAccount(2)->balance_fen() == 5);
  REQUIRE_FALSE(cold.LookupTransfer(Id128{0, 2})->has_value());
  REQUIRE(*b.ledger->Apply(std::vector<Transfer>{T({0, 2}, 1, 2, 7)}) == std::vector<O>{O::created});
  REQUIRE(b.ledger->LookupAccount(2)->balance_fen() == 12);
  REQUIRE(Audit(*b.store, digester).ok);
}

TEST_CASE("A batch larger than one multi-row insert is stored whole, or not at all",
          "[db][ledger]") {
  ManualClock clock(kStartMs);
  crypto::Sha256Digester digester;
  Books b(":memory:", clock, digester);
  std::vector<Account> accounts = {MakeAccount(1, AccountKind::topup_clearing, 0, 0),
                                   MakeAccount(2, AccountKind::operator_payable, 0, 0)};
  REQUIRE(b.ledger->CreateAccounts(accounts).ok());
  // Two statements of kRowsPerInsert rows and three one by one.
  const uint64_t n = 2 * db::kRowsPerInsert + 3;
  std::vector<Transfer> batch;
  for (uint64_t i = 1; i <= n; ++i) batch.push_back(T({7, i}, 1, 2, static_cast<int64_t>(i)));
  REQUIRE(*b.ledger->ApplyNew(batch) == std::vector<O>(n, O::created));
  Ledger cold(*b.store, clock, digester);
  REQUIRE(cold.LookupAccount(2)->balance_fen() == static_cast<int64_t>(n * (n + 1) / 2));
  for (uint64_t i = 1; i <= n; ++i) {
    auto found = cold.LookupTransfer(Id128{7, i});
    REQUIRE(found.ok());
    REQUIRE(found->has_value());
    CHECK((*found)->amount_fen == static_cast<int64_t>(i));
  }
  // A taken id in the middle of a full statement fails the batch; nothing of it is kept.
  std::vector<Transfer> second;
  for (uint64_t i = 1; i <= n; ++i) second.push_back(T({8, i}, 1, 2, 1));
  second[10].id = Id128{7, 5};
  auto taken = b.ledger->ApplyNew(second);
  REQUIRE(taken.status().code() == "transfer_id_taken");
  Ledger after(*b.store, clock, digester);
  CHECK(after.LookupAccount(2)->balance_fen() == static_cast<int64_t>(n * (n + 1) / 2));
  CHECK_FALSE(after.LookupTransfer(Id128{8, 1})->has_value());
  CHECK(Audit(*b.store, digester).ok);
}

TEST_CASE("A joined transaction commits the ledger with the caller's own rows, or neither",
          "[db][ledger]") {
  ManualClock clock(kStartMs);
  crypto::Sha256Digester digester;
  Books b(":memory:", clock, digester);
  REQUIRE(b.db->Exec("CREATE TABLE cards(card_no TEXT PRIMARY KEY, account_id INTEGER)").ok());
  Account clearing = MakeAccount(2, AccountKind::topup_clearing, 0, 0);
  REQUIRE(b.ledger->CreateAccounts({&clearing, 1}).ok());
  auto issue = [&](const std::string& card_no, uint64_t account_id, bool commit) {
    db::Transaction txn(*b.db);
    REQUIRE(txn.Begin().ok());
    Ledger::JoinedTransaction joined(*b.ledger);
    Account purse = MakeAccount(account_id, AccountKind::card_purse, 0, kAccountEnforceFloor);
    REQUIRE(b.ledger->CreateAccounts({&purse, 1}).ok());
    Transfer deposit = T({9, account_id}, 2, account_id, 500);
    REQUIRE(*b.ledger->Apply({&deposit, 1}) == std::vector<O>{O::created});
    auto row = b.db->Prepare("INSERT INTO cards VALUES(?, ?)");
    REQUIRE(row->Bind(1, card_no).Bind(2, static_cast<int64_t>(account_id)).Run().ok());
    if (!commit) return;  // the caller's transaction rolls back
    REQUIRE(txn.Commit().ok());
    joined.Committed();
  };
  issue("A", 10, false);
  REQUIRE(b.ledger->LookupAccount(10).status().code() == "account_not_found");
  REQUIRE(b.ledger->LookupAccount(2)->balance_fen() == 0);
  issue("A", 10, true);
  REQUIRE(b.ledger->LookupAccount(10)->balance_fen() == 500);
  Ledger cold(*b.store, clock, digester);
  REQUIRE(cold.LookupAccount(10)->balance_fen() == 500);
  auto count = b.db->Prepare("SELECT count(*) FROM cards");
  REQUIRE(*count->Step());
  REQUIRE(count->ColumnInt(0) == 1);
  REQUIRE(Audit(*b.store, digester).ok);
}

// ---------------------------------------------------------------------------------------------
// The randomized model test.

namespace {

// The rules of docs/ledger.md, written out again as plainly as possible and independently of
// core/ledger.cc: std::map state, and a linked chain restores a copy of the whole model.
struct Model {
  struct Pending {
    PendingStatus status = PendingStatus::pending;
    int64_t expires_at_ms = 0;
  };
  std::map<uint64_t, Account> accounts;
  std::map<Id128, Transfer> transfers;
  std::map<Id128, Pending> pending;
  std::set<Id128> failed;

  O Check(const Transfer& t, int64_t now, bool internal) {
    if (t.id.IsZero()) return O::id_must_not_be_zero;
    if (transfers.contains(t.id)) return Compare(t, transfers.at(t.id));
    if (failed.contains(t.id)) return O::id_already_failed;
    uint16_t allowed = internal ? (kTransferVoidPending | kTransferExpiry) : kTransferFlagsCaller;
    if (t.flags & ~allowed) return O::reserved_flag;
    int phases = !!(t.flags & kTransferPending) + !!(t.flags & kTransferPostPending) +
                 !!(t.flags & kTransferVoidPending);
    if (phases > 1) return O::flags_are_mutually_exclusive;
    bool post = t.flags & kTransferPostPending;
    bool resolve = post || (t.flags & kTransferVoidPending);
    if (!resolve) {
      if (!t.pending_id.IsZero()) return O::pending_id_must_be_zero;
      if (t.timeout_s && !(t.flags & kTransferPending)) return O::timeout_reserved_for_pending_transfer;
      if (t.debit_account_id == t.credit_account_id) return O::accounts_must_be_different;
      if (t.amount_fen == 0) return O::amount_must_not_be_zero;
      if (t.amount_fen < 0 || t.amount_fen > kTransferAmountFenMax) return O::amount_out_of_range;
      if (!accounts.contains(t.debit_account_id) || !accounts.contains(t.credit_account_id)) {
        return O::account_not_found;
      }
      Account& d = accounts[t.debit_account_id];
      Account& c = accounts[t.credit_account_id];
      if (d.closed() || c.closed()) return O::account_closed;
      if (d.enforces_floor() && !(t.flags & kTransferIgnoreFloor) &&
          d.available_fen() - t.amount_fen < d.floor_fen) {
        return O::insufficient_funds;
      }
      Transfer stored = t;
      stored.timestamp_ms = now;
      if (t.flags & kTransferPending) {
        d.debits_pending += t.amount_fen;
        c.credits_pending += t.amount_fen;
        pending[t.id] = Pending{PendingStatus::pending, t.timeout_s ? now + t.timeout_s * 1000LL : 0};
      } else {
        d.debits_posted += t.amount_fen;
        c.credits_posted += t.amount_fen;
      }
      transfers[t.id] = stored;
      return O::created;
    }
    if (t.pending_id.IsZero()) return O::pending_id_must_not_be_zero;
    if (t.pending_id == t.id) return O::pending_id_must_be_different;
    if (t.timeout_s) return O::timeout_reserved_for_pending_transfer;
    if (!transfers.contains(t.pending_id)) return O::pending_transfer_not_found;
    const Transfer p = transfers.at(t.pending_id);
    if (!(p.flags & kTransferPending)) return O::pending_transfer_not_pending;
    if (t.debit_account_id && t.debit_account_id != p.debit_account_id) {
      return O::pending_transfer_has_different_debit_account_id;
    }
    if (t.credit_account_id && t.credit_account_id != p.credit_account_id) {
      return O::pending_transfer_has_different_credit_account_id;
    }
    if (t.amount_fen < 0) return O::amount_out_of_range;
    if (post && t.amount_fen > p.amount_fen) return O::exceeds_pending_transfer_amount;
    if (!post && t.amount_fen && t.amount_fen != p.amount_fen) {
      return O::pending_transfer_has_different_amount;
    }
    Pending& state = pending.at(p.id);
    if (state.status == PendingStatus::posted) return O::pending_transfer_already_posted;
    if (state.status == PendingStatus::voided) return O::pending_transfer_already_voided;
    if (state.status == PendingStatus::expired) return O::pending_transfer_expired;
    if (!internal && state.expires_at_ms && now >= state.expires_at_ms) return O::pending_transfer_expired;
    Account& d = accounts[p.debit_account_id];
    Account& c = accounts[p.credit_account_id];
    if (post && (d.closed() || c.closed())) return O::account_closed;
    int64_t amount = post && t.amount_fen ? t.amount_fen : p.amount_fen;
    d.debits_pending -= p.amount_fen;
    c.credits_pending -= p.amount_fen;
    if (post) {
      d.debits_posted += amount;
      c.credits_posted += amount;
    }
    state.status = post ? PendingStatus::posted
                        : (t.flags & kTransferExpiry ? PendingStatus::expired : PendingStatus::voided);
    Transfer stored = t;
    stored.debit_account_id = p.debit_account_id;
    stored.credit_account_id = p.credit_account_id;
    stored.amount_fen = amount;
    stored.timestamp_ms = now;
    transfers[t.id] = stored;
    return O::created;
  }

  static O Compare(const Transfer& t, const Transfer& s) {
    bool inherit = t.flags & (kTransferPostPending | kTransferVoidPending);
    if (t.flags != s.flags) return O::exists_with_different_flags;
    if (t.debit_account_id != s.debit_account_id && !(inherit && !t.debit_account_id)) {
      return O::exists_with_different_debit_account_id;
    }
    if (t.credit_account_id != s.credit_account_id && !(inherit && !t.credit_account_id)) {
      return O::exists_with_different_credit_account_id;
    }
    if (t.amount_fen != s.amount_fen && !(inherit && !t.amount_fen)) return O::exists_with_different_amount;
    if (t.pending_id != s.pending_id) return O::exists_with_different_pending_id;
    if (t.timeout_s != s.timeout_s) return O::exists_with_different_timeout;
    if (t.code != s.code) return O::exists_with_different_code;
    if (t.user_data_128 != s.user_data_128 || t.user_data_64 != s.user_data_64 ||
        t.user_data_32 != s.user_data_32) {
      return O::exists_with_different_user_data;
    }
    return O::exists;
  }

  static bool Remembered(O o) {
    switch (o) {
      case O::created: case O::exists: case O::id_already_failed: case O::linked_event_failed:
      case O::linked_event_chain_open: case O::id_must_not_be_zero:
        return false;
      default:
        return static_cast<int>(o) > static_cast<int>(O::exists_with_different_user_data);
    }
  }

  std::vector<O> Apply(const std::vector<Transfer>& batch, int64_t now, bool internal = false) {
    std::vector<O> out(batch.size());
    size_t i = 0;
    while (i < batch.size()) {
      size_t end = i;
      while (end < batch.size() && (batch[end].flags & kTransferLinked)) ++end;
      if (end == batch.size()) {
        for (size_t k = i; k < end; ++k) out[k] = O::linked_event_failed;
        out.back() = O::linked_event_chain_open;
        break;
      }
      // A single transfer changes nothing when it fails; only a chain needs the copy.
      std::optional<Model> before;
      if (end > i) before = *this;
      for (size_t k = i; k <= end; ++k) {
        out[k] = Check(batch[k], now, internal);
        if (IsSuccess(out[k])) continue;
        if (before) *this = std::move(*before);
        for (size_t m = i; m <= end; ++m) {
          if (m != k) out[m] = O::linked_event_failed;
        }
        if (Remembered(out[k])) failed.insert(batch[k].id);
        break;
      }
      i = end + 1;
    }
    return out;
  }

  // Voids every expired pending transfer as Ledger::ExpirePending does; returns how many.
  size_t Expire(const Ledger& ledger, int64_t now) {
    std::vector<Transfer> voids;
    for (const auto& [id, p] : pending) {
      if (p.status == PendingStatus::pending && p.expires_at_ms && p.expires_at_ms <= now) {
        Transfer v;
        v.id = ledger.ExpiryTransferId(id);
        v.pending_id = id;
        v.flags = kTransferVoidPending | kTransferExpiry;
        v.code = transfers.at(id).code;
        voids.push_back(v);
      }
    }
    auto outcomes = Apply(voids, now, true);
    return static_cast<size_t>(std::count(outcomes.begin(), outcomes.end(), O::created));
  }
};

// Random operations over a small set of accounts, so that they collide often.
class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  std::vector<uint64_t> account_ids = {1, 2, 3, 4, 5, 6, 20, 21, 22, 23, 99 /*never created*/};

  std::vector<Transfer> Batch() {
    std::vector<Transfer> batch;
    size_t n = Pick(1, 24);
    while (batch.size() < n) {
      size_t chain = Chance(15) ? Pick(2, 4) : 1;
      for (size_t k = 0; k < chain; ++k) {
        Transfer t = One();
        if (k + 1 < chain || Chance(1)) t.flags |= kTransferLinked;  // now and then left open
        batch.push_back(t);
      }
    }
    return batch;
  }

  Transfer One() {
    int kind = static_cast<int>(Pick(0, 99));
    if (kind < 12 && !sent_.empty()) return Resend();
    if (kind < 30 && !pending_ids_.empty()) return Resolve();
    Transfer t;
    t.id = NewId();
    t.debit_account_id = Account();
    t.credit_account_id = Chance(3) ? t.debit_account_id : Account();
    t.amount_fen = Chance(2) ? 0 : (Chance(1) ? -7 : static_cast<int64_t>(Pick(1, 400)));
    t.code = static_cast<uint16_t>(Pick(1, 3));
    t.user_data_64 = Pick(0, 5);
    if (kind < 50) {
      t.flags |= kTransferPending;
      if (Chance(60)) t.timeout_s = static_cast<uint32_t>(Pick(1, 4));
      pending_ids_.push_back(t.id);
    } else if (Chance(4)) {
      t.flags |= kTransferIgnoreFloor;
    }
    if (Chance(1)) t.timeout_s = 3;  // on a transfer that is not pending
    if (Chance(1)) t.flags |= 1u << 13;
    sent_.push_back(t);
    return t;
  }

  size_t Pick(size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(rng_); }
  bool Chance(int percent) { return static_cast<int>(Pick(0, 99)) < percent; }

 private:
  Id128 NewId() { return Id128{Pick(0, 1), ++next_id_}; }
  uint64_t Account() { return account_ids[Pick(0, account_ids.size() - 1)]; }

  Transfer Resend() {
    Transfer t = sent_[Pick(0, sent_.size() - 1)];
    t.flags &= static_cast<uint16_t>(~kTransferLinked);
    switch (Pick(0, 5)) {
      case 0: t.amount_fen += 1; break;
      case 1: t.code += 1; break;
      case 2: t.user_data_64 += 1; break;
      case 3: t.timeout_s += 1; break;
      default: break;  // an exact duplicate
    }
    return t;
  }

  Transfer Resolve() {
    Transfer t;
    t.id = NewId();
    t.pending_id = Chance(3) ? Id128{7, 7} : pending_ids_[Pick(0, pending_ids_.size() - 1)];
    t.flags = Chance(55) ? kTransferPostPending : kTransferVoidPending;
    t.amount_fen = Chance(60) ? 0 : static_cast<int64_t>(Pick(1, 300));
    if (Chance(5)) t.debit_account_id = Account();
    t.code = 2;
    sent_.push_back(t);
    return t;
  }

  std::mt19937 rng_;
  uint64_t next_id_ = 0;
  std::vector<Transfer> sent_;
  std::vector<Id128> pending_ids_;
};

}  // namespace

TEST_CASE("Random batches give the same outcomes and balances in SQLite as in a plain model",
          "[db][ledger]") {
  constexpr int kBatches = 600;
  uint32_t seed = std::random_device{}();
  INFO("seed " << seed);
  TempDb file("ledger_model");
  ManualClock clock(kStartMs);
  crypto::Sha256Digester digester;
  auto books = std::make_unique<Books>(file.path, clock, digester);
  Model model;
  std::vector<Account> accounts = {
      MakeAccount(1, AccountKind::card_purse, 0, kAccountEnforceFloor),
      MakeAccount(2, AccountKind::card_purse, 0, kAccountEnforceFloor),
      MakeAccount(3, AccountKind::card_purse, -300, kAccountEnforceFloor),
      MakeAccount(4, AccountKind::card_purse, -300, kAccountEnforceFloor),
      MakeAccount(5, AccountKind::medical_account, 0, kAccountEnforceFloor),
      MakeAccount(6, AccountKind::medical_account, 0, kAccountEnforceFloor),
      MakeAccount(20, AccountKind::topup_clearing, 0, 0),
      MakeAccount(21, AccountKind::operator_payable, 0, 0),
      MakeAccount(22, AccountKind::medical_fund, 0, 0),
      MakeAccount(23, AccountKind::fee_income, 0, 0),
  };
  REQUIRE(books->ledger->CreateAccounts(accounts).ok());
  for (const Account& a : accounts) model.accounts[a.id] = a;
  Generator gen(seed);
  size_t transfers_sent = 0;
  std::map<O, int> seen;
  for (int b = 0; b < kBatches; ++b) {
    INFO("batch " << b);
    std::vector<Transfer> batch = gen.Batch();
    transfers_sent += batch.size();
    auto outcomes = books->ledger->Apply(batch);
    INFO(outcomes.status().ToString());
    REQUIRE(outcomes.ok());
    std::vector<O> expected = model.Apply(batch, clock.NowMs());
    for (size_t i = 0; i < batch.size(); ++i) {
      INFO("transfer " << i << " " << batch[i].id.ToHex() << " model "
                       << TransferOutcomeName(expected[i]) << " ledger "
                       << TransferOutcomeName((*outcomes)[i]));
      REQUIRE((*outcomes)[i] == expected[i]);
      ++seen[expected[i]];
    }
    int64_t sum = 0;
    for (const auto& [id, m] : model.accounts) {
      Account a = *books->ledger->LookupAccount(id);
      REQUIRE(a == m);
      sum += a.balance_fen();
    }
    REQUIRE(sum == 0);
    clock.AdvanceMs(static_cast<int64_t>(gen.Pick(0, 700)));
    if (gen.Chance(10)) {
      size_t expired = model.Expire(*books->ledger, clock.NowMs());
      REQUIRE(*books->ledger->ExpirePending() == expired);
    }
    if (b == kBatches / 2) {  // close a purse half way
      REQUIRE(books->ledger->SetAccountClosed(2).ok());
      model.accounts[2].flags |= kAccountClosed;
    }
    if (gen.Chance(3)) books = std::make_unique<Books>(file.path, clock, digester);  // cold cache
  }
  for (const auto& [id, t] : model.transfers) {
    auto stored = books->ledger->LookupTransfer(id);
    REQUIRE(stored->has_value());
    REQUIRE(**stored == t);
  }
  AuditReport report = Audit(*books->store, digester);
  INFO((report.problems.empty() ? "" : report.problems.front()));
  REQUIRE(report.ok);
  REQUIRE(report.transfers == static_cast<int64_t>(model.transfers.size()));
  REQUIRE(transfers_sent > 5'000);
  // The mix really exercised the rules.
  for (O o : {O::created, O::exists, O::exists_with_different_amount, O::id_already_failed,
              O::linked_event_failed, O::insufficient_funds, O::account_not_found,
              O::pending_transfer_already_posted, O::pending_transfer_already_voided,
              O::exceeds_pending_transfer_amount, O::pending_transfer_not_found}) {
    INFO(TransferOutcomeName(o));
    REQUIRE(seen[o] > 0);
  }
}

// ---------------------------------------------------------------------------------------------
// The crash test.

namespace {

constexpr uint64_t kCrashClearing = 1000;
constexpr uint64_t kCrashPayable = 1001;
constexpr uint64_t kCrashPurses = 20;
constexpr size_t kCrashPairsPerBatch = 25;
constexpr int64_t kCrashTopupFen = 100;
constexpr int64_t kCrashTapFen = 60;

// Batch k of round r: per purse a top-up linked with a tap, so every transfer is created.
std::vector<Transfer> CrashBatch(uint64_t round, uint64_t k) {
  std::vector<Transfer> batch;
  for (uint64_t i = 0; i < kCrashPairsPerBatch; ++i) {
    uint64_t purse = 1 + (k * kCrashPairsPerBatch + i) % kCrashPurses;
    Id128 base{round + 1, (k << 16) | (i << 1)};
    batch.push_back(T(base, kCrashClearing, purse, kCrashTopupFen, kTransferLinked));
    batch.push_back(T(Id128{base.hi, base.lo | 1}, purse, kCrashPayable, kCrashTapFen));
  }
  return batch;
}

// The child: applies batches until it is killed, writing each acknowledged batch number.
[[noreturn]] void CrashChild(const std::string& path, uint64_t round, int fd) {
  SystemClock clock;
  crypto::Sha256Digester digester;
  auto db = Database::Open(path, false);
  if (!db.ok()) _exit(2);
  auto store = SqliteLedgerStore::Open(**db);
  if (!store.ok()) _exit(3);
  Ledger ledger(**store, clock, digester);
  for (uint64_t k = 0; k < 1'000'000; ++k) {
    auto outcomes = ledger.Apply(CrashBatch(round, k));
    if (!outcomes.ok()) _exit(4);
    for (O o : *outcomes) {
      if (o != O::created) _exit(5);
    }
    if (::write(fd, &k, sizeof k) != static_cast<ssize_t>(sizeof k)) _exit(6);
  }
  _exit(0);
}

}  // namespace

TEST_CASE("Every acknowledged batch survives SIGKILL, and nothing is half applied", "[db][ledger]") {
  constexpr int kRounds = 32;
  TempDb file("ledger_crash");
  crypto::Sha256Digester digester;
  SystemClock clock;
  {
    Books b(file.path, clock, digester);
    std::vector<Account> accounts = {MakeAccount(kCrashClearing, AccountKind::topup_clearing, 0, 0),
                                     MakeAccount(kCrashPayable, AccountKind::operator_payable, 0, 0)};
    for (uint64_t p = 1; p <= kCrashPurses; ++p) {
      accounts.push_back(MakeAccount(p, AccountKind::card_purse, 0, kAccountEnforceFloor));
    }
    REQUIRE(b.ledger->CreateAccounts(accounts).ok());
  }
  std::mt19937 rng(std::random_device{}());
  int64_t batches_total = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(25);
  int rounds = 0;
  for (uint64_t round = 0; round < kRounds; ++round, ++rounds) {
    INFO("round " << round);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(fds[0]);
      CrashChild(file.path, round, fds[1]);
    }
    ::close(fds[1]);
    std::vector<uint64_t> acked;
    uint64_t k = 0;
    // On a starved machine (the child gets no CPU within the random delay) no round would
    // commit anything and the test would prove nothing: from the second half on, while no
    // batch has been seen yet, the kill waits for the child's first acknowledgement.
    if (batches_total == 0 && round >= kRounds / 2 &&
        ::read(fds[0], &k, sizeof k) == static_cast<ssize_t>(sizeof k)) {
      acked.push_back(k);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::uniform_int_distribution<int>(10, 250)(rng)));
    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));  // killed, not failed
    while (::read(fds[0], &k, sizeof k) == static_cast<ssize_t>(sizeof k)) acked.push_back(k);
    ::close(fds[0]);
    for (size_t i = 0; i < acked.size(); ++i) REQUIRE(acked[i] == i);

    Books b(file.path, clock, digester);
    // Batches are applied in order, so those present are 0..m-1, with m the acknowledged count,
    // or one more when the child died between the commit and its report.
    uint64_t present = 0;
    while (true) {
      std::vector<Transfer> batch = CrashBatch(round, present);
      size_t found = 0;
      for (const Transfer& t : batch) {
        auto stored = b.ledger->LookupTransfer(t.id);
        REQUIRE(stored.ok());
        if (stored->has_value()) {
          ++found;
          REQUIRE((*stored)->amount_fen == t.amount_fen);
          REQUIRE((*stored)->debit_account_id == t.debit_account_id);
        }
      }
      REQUIRE((found == 0 || found == batch.size()));  // never half applied
      if (found == 0) break;
      ++present;
    }
    REQUIRE(present >= acked.size());
    REQUIRE(present <= acked.size() + 1);
    batches_total += static_cast<int64_t>(present);
    // Every transfer exactly once: the counts and balances follow from the batches present.
    int64_t pairs = batches_total * static_cast<int64_t>(kCrashPairsPerBatch);
    AuditReport report = Audit(*b.store, digester);
    INFO((report.problems.empty() ? "" : report.problems.front()));
    REQUIRE(report.ok);
    REQUIRE(report.transfers == 2 * pairs);
    REQUIRE(b.ledger->LookupAccount(kCrashPayable)->balance_fen() == pairs * kCrashTapFen);
    REQUIRE(b.ledger->LookupAccount(kCrashClearing)->balance_fen() == -pairs * kCrashTopupFen);
    if (present > 0) {  // an acknowledged batch sent again moves nothing
      auto again = b.ledger->Apply(CrashBatch(round, 0));
      REQUIRE(again.ok());
      for (O o : *again) REQUIRE(o == O::exists);
    }
    if (std::chrono::steady_clock::now() > deadline && rounds >= 30) break;
  }
  REQUIRE(rounds >= 30);
  REQUIRE(batches_total > 0);
}

// ---------------------------------------------------------------------------------------------
// Tampering.

TEST_CASE("Editing a stored transfer with SQL makes the audit fail and name the transfer",
          "[db][ledger]") {
  TempDb file("ledger_tamper");
  ManualClock clock(kStartMs);
  crypto::Sha256Digester digester;
  Books b(file.path, clock, digester);
  std::vector<Account> accounts = {MakeAccount(1, AccountKind::card_purse, 0, kAccountEnforceFloor),
                                   MakeAccount(2, AccountKind::topup_clearing, 0, 0),
                                   MakeAccount(3, AccountKind::operator_payable, 0, 0)};
  REQUIRE(b.ledger->CreateAccounts(accounts).ok());
  for (uint64_t k = 0; k < 4; ++k) {
    std::vector<Transfer> batch = {T({k, 1}, 2, 1, 500), T({k, 2}, 1, 3, 120)};
    REQUIRE(*b.ledger->Apply(batch) == std::vector<O>{O::created, O::created});
  }
  REQUIRE(Audit(*b.store, digester).ok);
  Id128 victim{2, 2};  // seq 6, in batch 3

  SECTION("an altered amount") {
    REQUIRE(b.db->Exec("UPDATE ledger_transfers SET amount_fen = 12 WHERE seq = 6").ok());
    AuditReport report = Audit(*b.store, digester);
    REQUIRE_FALSE(report.ok);
    bool named = false;
    bool batch = false;
    for (const std::string& p : report.problems) {
      named = named || p.find("transfer " + victim.ToHex() + " (seq 6): stored balances after") == 0;
      batch = batch || p.find("batch 3: hash mismatch") == 0;
    }
    REQUIRE(named);
    REQUIRE(batch);
  }
  SECTION("an altered reference") {
    REQUIRE(b.db->Exec("UPDATE ledger_transfers SET user_data_64 = 1 WHERE seq = 6").ok());
    AuditReport report = Audit(*b.store, digester);
    REQUIRE_FALSE(report.ok);
    REQUIRE(report.problems.size() == 1);
    REQUIRE(report.problems[0].find(victim.ToHex()) != std::string::npos);
  }
  SECTION("a deleted transfer") {
    REQUIRE(b.db->Exec("DELETE FROM ledger_transfers WHERE seq = 6").ok());
    AuditReport report = Audit(*b.store, digester);
    REQUIRE_FALSE(report.ok);
    REQUIRE(report.problems.front().find("batch 3") == 0);
  }
  SECTION("a rewritten account balance") {
    REQUIRE(b.db->Exec("UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE id = 1").ok());
    AuditReport report = Audit(*b.store, digester);
    REQUIRE_FALSE(report.ok);
    REQUIRE(report.problems.size() == 2);
    REQUIRE(report.problems[0].find("account 1: stored") == 0);
    REQUIRE(report.problems[1] == "the stored account balances sum to 1 fen, not zero");
  }
}
