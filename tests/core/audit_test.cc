#include "core/audit.h"

#include <catch2/catch.hpp>

#include "core/ledger.h"
#include "tests/support/memory_ledger_store_support.h"

using namespace citycard;
using citycard::testing::FakeDigester;
using citycard::testing::MemoryLedgerStore;
using O = TransferOutcome;

namespace {

constexpr uint64_t kPurse = 1;
constexpr uint64_t kOverdraft = 2;
constexpr uint64_t kClearing = 10;
constexpr uint64_t kPayable = 11;

Transfer T(uint64_t id, uint64_t debit, uint64_t credit, int64_t amount, uint16_t flags = 0) {
  Transfer t;
  t.id = Id128{0, id};
  t.debit_account_id = debit;
  t.credit_account_id = credit;
  t.amount_fen = amount;
  t.flags = flags;
  return t;
}

// A small ledger with top-ups, taps, an offline overdraft and a posted and a pending transfer.
struct Books {
  MemoryLedgerStore store;
  ManualClock clock{1'700'000'000'000};
  FakeDigester digester;
  Ledger ledger{store, clock, digester};

  Books() {
    std::vector<Account> accounts(4);
    accounts[0] = Account{kPurse, AccountKind::card_purse, 1, 0, kAccountEnforceFloor, 0, 0, 0, 0};
    accounts[1] = Account{kOverdraft, AccountKind::card_purse, 2, -500, kAccountEnforceFloor, 0, 0, 0, 0};
    accounts[2] = Account{kClearing, AccountKind::topup_clearing, 0, 0, 0, 0, 0, 0, 0};
    accounts[3] = Account{kPayable, AccountKind::operator_payable, 0, 0, 0, 0, 0, 0, 0};
    REQUIRE(ledger.CreateAccounts(accounts).ok());
    Apply({T(1, kClearing, kPurse, 1000), T(2, kPurse, kPayable, 200)});
    Apply({T(3, kOverdraft, kPayable, 400), T(4, kOverdraft, kPayable, 300, kTransferIgnoreFloor)});
    Apply({T(5, kPurse, kPayable, 100, kTransferPending), T(6, kPurse, kPayable, 50, kTransferPending)});
    Transfer post;
    post.id = Id128{0, 7};
    post.pending_id = Id128{0, 5};
    post.flags = kTransferPostPending;
    post.amount_fen = 60;
    Apply({post});
  }
  void Apply(std::vector<Transfer> batch) {
    auto r = ledger.Apply(batch);
    REQUIRE(r.ok());
    for (O o : *r) REQUIRE(o == O::created);
  }
  AuditReport Verify() {
    auto report = VerifyLedger(store, digester);
    REQUIRE(report.ok());
    return *report;
  }
  TransferRecord& Record(int64_t seq) { return store.transfers().at(seq); }
};

bool Mentions(const AuditReport& report, const std::string& text) {
  for (const std::string& p : report.problems) {
    if (p.find(text) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("An empty ledger verifies clean", "[core][audit]") {
  MemoryLedgerStore store;
  FakeDigester digester;
  auto report = VerifyLedger(store, digester);
  REQUIRE(report.ok());
  REQUIRE(report->ok);
  REQUIRE(report->transfers == 0);
  REQUIRE(report->accounts == 0);
}

TEST_CASE("A ledger written by the engine verifies clean, offline overdraft included", "[core][audit]") {
  Books books;
  AuditReport report = books.Verify();
  INFO((report.problems.empty() ? "" : report.problems.front()));
  REQUIRE(report.ok);
  REQUIRE(report.transfers == 7);
  REQUIRE(report.accounts == 4);
  REQUIRE(report.problems.empty());
}

TEST_CASE("An altered amount names the transfer, its batch and its accounts", "[core][audit]") {
  Books books;
  books.Record(2).transfer.amount_fen = 20;  // transfer 2: 200 -> 20
  AuditReport report = books.Verify();
  REQUIRE_FALSE(report.ok);
  std::string id = Id128{0, 2}.ToHex();
  REQUIRE(Mentions(report, "transfer " + id + " (seq 2): stored balances after"));
  REQUIRE(Mentions(report, "batch 1: hash mismatch"));
  REQUIRE(Mentions(report, "account 1: stored"));
}

TEST_CASE("An altered reference field breaks its batch's hash", "[core][audit]") {
  Books books;
  books.Record(4).transfer.user_data_64 = 99;
  AuditReport report = books.Verify();
  REQUIRE_FALSE(report.ok);
  REQUIRE(report.problems.size() == 1);
  REQUIRE(report.problems[0].find("batch 2: hash mismatch") == 0);
  REQUIRE(report.problems[0].find(Id128{0, 4}.ToHex()) != std::string::npos);
}

TEST_CASE("A deleted transfer is found", "[core][audit]") {
  Books books;
  books.store.transfers().erase(3);
  AuditReport report = books.Verify();
  REQUIRE_FALSE(report.ok);
  REQUIRE(Mentions(report, "batch 2: records 2 transfers from seq 3, found 1"));
  REQUIRE(Mentions(report, "expected seq 3; transfers are missing"));
}

TEST_CASE("A broken link in the chain is found", "[core][audit]") {
  Books books;
  books.store.batches().at(3).prev_hash[0] ^= 1;
  AuditReport report = books.Verify();
  REQUIRE_FALSE(report.ok);
  REQUIRE(Mentions(report, "batch 3: prev_hash does not match"));
}

TEST_CASE("An altered account balance is found and the sum is no longer zero", "[core][audit]") {
  Books books;
  books.store.accounts().at(kPurse).account.credits_posted += 500;
  AuditReport report = books.Verify();
  REQUIRE_FALSE(report.ok);
  REQUIRE(Mentions(report, "account 1: stored (debits_posted 260, credits_posted 1500"));
  REQUIRE(Mentions(report, "the stored account balances sum to 500 fen, not zero"));
}

TEST_CASE("A debit below a floor without the offline flag is found", "[core][audit]") {
  Books books;
  books.store.accounts().at(kOverdraft).account.floor_fen = -100;
  AuditReport report = books.Verify();
  REQUIRE_FALSE(report.ok);
  REQUIRE(report.problems.size() == 1);
  REQUIRE(report.problems[0] == "transfer " + Id128{0, 3}.ToHex() +
                                    " (seq 3): takes account 2 to -400 fen available, below its floor -100");
}

TEST_CASE("A pending status that the transfers do not explain is found", "[core][audit]") {
  Books books;
  books.Record(6).pending_status = PendingStatus::voided;
  AuditReport report = books.Verify();
  REQUIRE_FALSE(report.ok);
  REQUIRE(Mentions(report, "transfer " + Id128{0, 6}.ToHex() + " (seq 6): stored pending status 3"));
}
