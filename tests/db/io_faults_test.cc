// I/O errors under the tap ingest and the card office on SQLite: the same script of uploads
// and counter top-ups is run once without faults and then once per I/O operation it makes,
// with that operation failing (the read, write, sync or truncation of the database or its
// WAL, through tests/support/db_fault_vfs_support.h, under the WAL write buffer). A step
// that fails is retried as a reader or a counter would retry it. Whatever failed, the run
// must end exactly as the run without faults did: the same outcome for every record (so a
// failed attempt left nothing behind that makes its retry a duplicate), the same balances in
// the engine's caches and in the file read afresh, a clean audit and a sound file. With the
// disk gone from the N-th operation on (every operation fails until the step gives up), the
// retry after it comes back must do the same.
//
// The default cases fail each write and each sync in turn, and make the disk go away at every
// kOpsStride-th operation; the [.slow] one fails every operation, once and for good.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/account_plan.h"
#include "core/audit.h"
#include "core/card_number.h"
#include "core/card_office.h"
#include "core/ingest.h"
#include "core/ledger.h"
#include "core/terminal_office.h"
#include "db/database.h"
#include "db/sqlite_ledger_store.h"
#include "db/sqlite_registry_store.h"
#include "db/sqlite_tap_store.h"
#include "tests/support/db_fault_vfs_support.h"
#include "tests/support/ingest_fixture_support.h"
#include "tests/support/scratch_db_file_support.h"

using namespace citycard;
using namespace citycard::testing;

namespace {

constexpr int kCards = 12;
constexpr int64_t kOpeningBalanceFen = 5'000;
constexpr int kRounds = 12;
// Checkpoints every few pages, so that the script's operations include the database file's
// writes and syncs and the WAL's restarts, not only its appends.
constexpr int kAutoCheckpointPages = 16;
// A step is tried at most this often; with one failed operation the second try must succeed.
constexpr int kAttemptsMax = 3;
constexpr uint64_t kOpsStride = 7;

// A connection and everything the script runs on it.
struct World {
  World(const std::string& path, const std::string& vfs) {
    auto opened = db::Database::Open(path, true, vfs);
    REQUIRE(opened.ok());
    db = std::move(*opened);
    REQUIRE(db->Exec(fmt::format("PRAGMA wal_autocheckpoint={}", kAutoCheckpointPages)).ok());
    auto ls = db::SqliteLedgerStore::Open(*db);
    auto rs = db::SqliteRegistryStore::Open(*db);
    auto ts = db::SqliteTapStore::Open(*db);
    REQUIRE((ls.ok() && rs.ok() && ts.ok()));
    ledger_store = std::move(*ls);
    registry = std::move(*rs);
    taps = std::move(*ts);
    ledger = std::make_unique<Ledger>(*ledger_store, clock, digester);
    office = std::make_unique<CardOffice>(*registry, *ledger, hasher, digester, clock,
                                          CardOfficeConfig{});
    terminals = std::make_unique<TerminalOffice>(*registry, *ledger, key_maker, clock);
    engine = std::make_unique<IngestEngine>(*registry, *ledger, *taps, auth, digester, clock,
                                            IngestConfig{});
  }

  Terminal GetTerminal(const std::string& id) {
    auto t = registry->FindTerminal(id);
    REQUIRE(t.ok());
    REQUIRE(t->has_value());
    return **t;
  }

  int64_t Balance(uint64_t account_id) {
    auto account = ledger->LookupAccount(account_id);
    REQUIRE(account.ok());
    return account->balance_fen();
  }

  FakeDigester digester;
  ManualClock clock{kFixtureStartMs};
  FakeNationalIdHasher hasher;
  FakeTerminalKeyMaker key_maker;
  FakeTapAuthenticator auth;
  std::unique_ptr<db::Database> db;
  std::unique_ptr<db::SqliteLedgerStore> ledger_store;
  std::unique_ptr<db::SqliteRegistryStore> registry;
  std::unique_ptr<db::SqliteTapStore> taps;
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<CardOffice> office;
  std::unique_ptr<TerminalOffice> terminals;
  std::unique_ptr<IngestEngine> engine;
};

// One step of the script: an upload of batches, or a counter top-up.
struct Step {
  std::vector<UploadedBatch> batches;
  uint64_t topup_card_no = 0;
  int64_t topup_fen = 0;
  std::string topup_ref;
};

struct Script {
  std::vector<FakeCard> cards;
  std::vector<uint64_t> accounts;  // every purse, then the payables of BUS1 and METRO
  std::vector<Step> steps;
};

// Issues and funds the cards (without faults), then writes the steps: per round an upload of
// a bus and a metro batch, every third round with the round before's first bus record again
// (a duplicate), every fourth a counter top-up. The records depend only on the set-up, which
// is the same in every run.
Script MakeScript(World& w) {
  REQUIRE(w.office->CreateSystemAccounts().ok());
  AddFixtureOperatorsAndTerminals(*w.terminals);
  Script s;
  for (int i = 0; i < kCards; ++i) {
    FakeCard card = IssueFixtureCard(*w.office, i + 1);
    REQUIRE(w.office->Topup(CardNumberFromInt(card.card_no), kOpeningBalanceFen,
                            fmt::format("open{}", i))
                .ok());
    card.balance_fen = kOpeningBalanceFen;
    s.cards.push_back(card);
    s.accounts.push_back(AccountIdFor(AccountKind::card_purse, card.card_no));
  }
  for (const char* op : {"BUS1", "METRO"}) {
    auto found = w.registry->FindOperator(op);
    REQUIRE((found.ok() && found->has_value()));
    s.accounts.push_back((*found)->payable_account_id);
  }
  Terminal bus = w.GetTerminal("T1");
  Terminal metro = w.GetTerminal("M1");
  uint32_t bus_ttc = 0, metro_ttc = 0;
  int64_t time_s = w.clock.NowSeconds();
  TapRecord previous_first_bus;
  for (int round = 0; round < kRounds; ++round) {
    time_s += 60;
    Step upload;
    upload.batches.push_back(UploadedBatch{"T1", {}});
    upload.batches.push_back(UploadedBatch{"M1", {}});
    for (int i = 0; i < 3; ++i) {
      FakeCard& card = s.cards[static_cast<size_t>((round * 3 + i) % kCards)];
      upload.batches[0].records.push_back(MakeFixtureTap(bus, card, ++bus_ttc, time_s, 150));
    }
    for (int i = 0; i < 2; ++i) {
      FakeCard& card = s.cards[static_cast<size_t>((round * 5 + i + 1) % kCards)];
      upload.batches[1].records.push_back(MakeFixtureTap(metro, card, ++metro_ttc, time_s, 300));
    }
    if (round % 3 == 2) upload.batches[0].records.push_back(previous_first_bus);
    previous_first_bus = upload.batches[0].records[0];
    s.steps.push_back(std::move(upload));
    if (round % 4 == 3) {
      Step topup;
      topup.topup_card_no = s.cards[static_cast<size_t>(round % kCards)].card_no;
      topup.topup_fen = 1'000;
      topup.topup_ref = fmt::format("counter{}", round);
      s.steps.push_back(std::move(topup));
    }
  }
  return s;
}

struct RunResult {
  std::vector<IngestOutcome> outcomes;  // every record's, in script order
  std::vector<int64_t> balances;        // Script::accounts', from the engine's ledger
  int failed_attempts = 0;
  uint64_t ops = 0;       // I/O operations counted (in a run without faults)
  uint64_t injected = 0;  // of which failed
  FaultOp last_fault = FaultOp::read;
};

// Runs one step once; false when it failed (nothing of it may then be acknowledged).
bool TryStep(World& w, const Step& step, std::vector<IngestOutcome>* outcomes) {
  if (step.topup_fen > 0) {
    return w.office->Topup(CardNumberFromInt(step.topup_card_no), step.topup_fen, step.topup_ref)
        .ok();
  }
  auto out = w.engine->Ingest(step.batches);
  if (!out.ok()) return false;
  for (const auto& batch : *out) outcomes->insert(outcomes->end(), batch.begin(), batch.end());
  return true;
}

RunResult RunScript(World& w, const Script& s, FaultPlan plan) {
  RunResult r;
  ArmFault(plan);
  for (const Step& step : s.steps) {
    int attempts = 0;
    while (!TryStep(w, step, &r.outcomes)) {
      ++r.failed_attempts;
      REQUIRE(++attempts < kAttemptsMax);
      // The disk is back (a sticky fault only lasts until the step gives up).
      if (plan.sticky) {
        r.injected += FaultsInjected();
        r.last_fault = LastFaultOp();
        ArmFault({});
      }
    }
  }
  r.ops = FaultOpsCounted();
  if (FaultsInjected() > 0) {
    r.injected += FaultsInjected();
    r.last_fault = LastFaultOp();
  }
  ArmFault({});
  for (uint64_t id : s.accounts) r.balances.push_back(w.Balance(id));
  return r;
}

int64_t CountTaps(db::Database& db) {
  auto s = db.Prepare("SELECT count(*) FROM ingest_taps");
  REQUIRE(s.ok());
  auto row = s->Step();
  REQUIRE((row.ok() && *row));
  return s->ColumnInt(0);
}

// What the file holds, read on a fresh connection without faults.
struct FileState {
  std::vector<int64_t> balances;
  int64_t taps = 0;
};

FileState ReadFile(const std::string& path, const Script& s) {
  auto db = db::Database::Open(path, false);
  REQUIRE(db.ok());
  auto integrity = (*db)->Prepare("PRAGMA integrity_check");
  REQUIRE(integrity.ok());
  auto row = integrity->Step();
  REQUIRE((row.ok() && *row));
  REQUIRE(integrity->ColumnText(0) == "ok");
  auto store = db::SqliteLedgerStore::Open(**db);
  REQUIRE(store.ok());
  FakeDigester digester;
  auto audit = VerifyLedger(**store, digester);
  REQUIRE(audit.ok());
  INFO((audit->problems.empty() ? std::string() : audit->problems.front()));
  REQUIRE(audit->ok);
  ManualClock clock{kFixtureStartMs};
  Ledger ledger(**store, clock, digester);
  FileState state;
  for (uint64_t id : s.accounts) {
    auto account = ledger.LookupAccount(id);
    REQUIRE(account.ok());
    state.balances.push_back(account->balance_fen());
  }
  state.taps = CountTaps(**db);
  return state;
}

struct Reference {
  RunResult run;
  FileState file;
  uint64_t ops = 0;  // operations the script makes without faults
};

Reference RunWithoutFaults(const std::string& vfs, std::optional<FaultOp> only) {
  ScratchDbFile file("io_faults_reference");
  Reference ref;
  {
    World w(file.path, vfs);
    Script s = MakeScript(w);
    ref.run = RunScript(w, s, FaultPlan{0, only});
    ref.ops = ref.run.ops;
    REQUIRE(ref.run.failed_attempts == 0);
    ref.file = ReadFile(file.path, s);
  }
  return ref;
}

// Runs the script failing operation `plan.fail_at` (and what the plan says with it) and checks
// that it ends as the reference did. Returns whether a step failed and was retried.
bool RunWithFault(const std::string& vfs, const Reference& ref, FaultPlan plan) {
  ScratchDbFile file("io_faults");
  World w(file.path, vfs);
  Script s = MakeScript(w);
  RunResult run = RunScript(w, s, plan);
  INFO("operation " << plan.fail_at << (plan.only ? " of its kind" : "")
                    << (plan.sticky ? " and every one after" : "") << " failed ("
                    << FaultOpName(run.last_fault) << "), " << run.failed_attempts
                    << " attempts failed");
  REQUIRE(run.injected > 0);
  REQUIRE(run.outcomes == ref.run.outcomes);
  REQUIRE(run.balances == ref.run.balances);
  FileState state = ReadFile(file.path, s);
  REQUIRE(state.balances == ref.file.balances);
  REQUIRE(state.taps == ref.file.taps);
  return run.failed_attempts > 0;
}

// Fails operations offset + 1, offset + 1 + stride, ... of the script (those of kind `only`,
// when set), each in a run of its own.
void FailEachOperation(std::optional<FaultOp> only, uint64_t stride, uint64_t offset,
                       bool sticky) {
  const std::string vfs = FaultVfsName();
  Reference ref = RunWithoutFaults(vfs, only);
  // The script must do real work for this to show anything: uploads booked, duplicates named.
  REQUIRE(ref.ops > 0);
  REQUIRE(ref.file.taps == kRounds * 5);
  REQUIRE(std::count(ref.run.outcomes.begin(), ref.run.outcomes.end(), IngestOutcome::duplicate) ==
          kRounds / 3);
  int retried = 0;
  for (uint64_t n = 1 + offset; n <= ref.ops; n += stride) {
    if (RunWithFault(vfs, ref, FaultPlan{n, only, sticky})) ++retried;
  }
  WARN(fmt::format("{} {} operations; {} runs with a step retried", ref.ops,
                   only ? FaultOpName(*only) : "I/O", retried));
  REQUIRE(retried > 0);
}

}  // namespace

TEST_CASE("A failed write or sync of the database or its WAL leaves every upload and top-up "
          "applied once after its retry",
          "[db][faults]") {
  FailEachOperation(FaultOp::write, 1, 0, /*sticky=*/false);
  FailEachOperation(FaultOp::sync, 1, 0, /*sticky=*/false);
}

TEST_CASE("After the disk fails and comes back, retried uploads and top-ups end as without "
          "the failure",
          "[db][faults]") {
  FailEachOperation(std::nullopt, kOpsStride, 3, /*sticky=*/true);
}

TEST_CASE("Every single I/O operation of the script fails once in turn, and nothing is lost "
          "or doubled",
          "[db][faults][.slow]") {
  FailEachOperation(std::nullopt, 1, 0, /*sticky=*/false);
  FailEachOperation(std::nullopt, 1, 0, /*sticky=*/true);
}
