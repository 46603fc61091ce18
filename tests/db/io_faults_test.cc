// I/O errors under everything that moves money on SQLite: a script of uploads, counter
// top-ups, online top-ups, a bill file, a bill paid at a counter, a pass sold and used at a
// gate, a hospital bill settled and reversed, a card replaced and one closed, the day's
// settlement and the top-ups' expiry (docs/storage.md "I/O errors") is run once without
// faults and then once per I/O operation it makes, with that operation failing (the read,
// write, sync or truncation of the database or its WAL, through
// tests/support/db_fault_vfs_support.h, under the WAL write buffer). A step that fails is
// retried as a reader, a counter, a kiosk or an operator would retry it.
// Whatever failed, the run must end exactly as the run without faults did: the same outcome
// for every record (so a failed attempt left nothing behind that makes its retry a
// duplicate), the same answers, bill results and settlement report, the same balances in the
// engine's ledger and in the file read afresh, a clean audit and a sound file. With the disk
// gone from the N-th operation on (every operation fails until the step gives up), the retry
// after it comes back must do the same. A step that fails and is never retried must leave no
// trace: the run ends as the script without that step.
//
// The default cases fail each write and each sync in turn (retried, then abandoned), and make
// the disk go away at every kOpsStride-th operation; the [.slow] one fails every operation,
// once and for good.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/account_plan.h"
#include "core/audit.h"
#include "core/bills.h"
#include "core/card_number.h"
#include "core/card_office.h"
#include "core/fare_office.h"
#include "core/health.h"
#include "core/ingest.h"
#include "core/ledger.h"
#include "core/settlement.h"
#include "core/settlement_tap_source.h"
#include "core/time.h"
#include "core/terminal_office.h"
#include "db/database.h"
#include "db/sqlite_bill_store.h"
#include "db/sqlite_fare_store.h"
#include "db/sqlite_health_store.h"
#include "db/sqlite_ledger_store.h"
#include "db/sqlite_registry_store.h"
#include "db/sqlite_settlement_reads.h"
#include "db/sqlite_settlement_store.h"
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
// The taps' recent (card, CTC) keys are merged once this many are recent (kRecentCardTapsMergeAt
// in a server): a few uploads' worth, so that the script's merges meet the faults too.
constexpr int64_t kCardKeysMergeAt = 5;
// A step is tried at most this often; with one failed operation the second try must succeed.
constexpr int kAttemptsMax = 3;
constexpr uint64_t kOpsStride = 7;
constexpr int64_t kOnlineTopupFen = 800;
// A daily cap on bus and metro together that most cards pass (a card rides ~5 times a day
// for 150 or 300 fen), so that settlement books capping rebates.
constexpr int64_t kDailyCapFen = 600;
// A hospital bill of card kMedicalCard is settled after this round's upload, and reversed
// four rounds later.
constexpr int kMedicalRound = 3;
constexpr size_t kMedicalCard = 7;
// After this round's upload card kPassCard buys the spot's pass and enters its gate twice
// (the second refused: one entry a day).
constexpr int kPassRound = 4;
constexpr size_t kPassCard = 2;
// After the last round one card is replaced and another closed.
constexpr size_t kReplacedCard = 10;
constexpr size_t kClosedCard = 11;
// The bill file comes after this round's upload; kBillMandates cards pay bills by mandate;
// the import commits kBillChunk bills at a time.
constexpr int kBillRound = 6;
constexpr int kBillMandates = 5;
constexpr size_t kBillChunk = 3;
// When the settlement step settles the day of the taps: the next morning.
constexpr int64_t kSettleAtMs = kFixtureStartMs + 86'400'000;
// When the last step expires the top-ups never confirmed: two days after the start, past
// every top-up's timeout (IngestConfig::topup_timeout_s, a day).
constexpr int64_t kExpiryAtMs = kFixtureStartMs + 2 * 86'400'000;

// Neither is asked for here: no settlement of the script comes with a card's proof, and the
// voucher's signature is not what the script checks.
class NoProofVerifier final : public CardProofVerifier {
 public:
  bool Verify(std::string_view, ByteView, ByteView) override { return false; }
};
class ZeroVoucherSigner final : public VoucherSigner {
 public:
  std::array<uint8_t, kVoucherSignatureBytes> Sign(ByteView) const override { return {}; }
};

// Outpatient care only: ¥20 deductible, the fund pays 60 % up to ¥500 a year; no assistance.
constexpr char kMedicalRules[] =
    R"({"version": "faults-1", "schemes": {"medical": {"outpatient": )"
    R"({"deductible": "20.00", "rate_bp": 6000, "annual_cap": "500.00"}}}, )"
    R"("assistance": {"groups": [], "rate_bp": 0, "annual_cap": "0.00"}})";

constexpr char kSpot[] = "SPOT";
constexpr char kPassId[] = "annual";
// A fare table with the scenic spot's annual pass: ¥10, three visits in a year.
constexpr char kFareTable[] =
    R"({"format": "citycard-fares", "format_version": 1, "version": 1, "name": "faults", )"
    R"("operators": [{"id": "SPOT", "mode": "scenic", "pricing": {"kind": "flat", )"
    R"("fare_fen": 3000}}], "passes": [{"id": "annual", "price_fen": 1000, )"
    R"("validity_days": 365, "visits": 3, "spots": ["SPOT"]}]})";

constexpr char kHospital[] = "HOSPITAL";
constexpr char kMedicalBillId[] = "H-1";
constexpr int64_t kMedicalBillFen = 6'000;

MedicalSettleRequest MedicalBill(uint64_t card_no) {
  MedicalSettleRequest request;
  request.card_no = CardNumberFromInt(card_no);
  request.hospital_id = kHospital;
  request.bill_id = kMedicalBillId;
  request.amount_fen = kMedicalBillFen;
  return request;
}

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
    // The recent (card, CTC) keys merged every few taps, so that merges, too, meet each fault.
    taps->SetRecentCardKeysMergeAt(kCardKeysMergeAt);
    ledger = std::make_unique<Ledger>(*ledger_store, clock, digester);
    office = std::make_unique<CardOffice>(*registry, *ledger, hasher, digester, clock,
                                          CardOfficeConfig{});
    terminals = std::make_unique<TerminalOffice>(*registry, *ledger, key_maker, clock);
    engine = std::make_unique<IngestEngine>(*registry, *ledger, *taps, auth, digester, clock,
                                            IngestConfig{});
    auto ss = db::SqliteSettlementStore::Open(*db);
    REQUIRE(ss.ok());
    settlement_store = std::move(*ss);
    settlement_reads = std::make_unique<db::SqliteSettlementReads>(*db);
    tap_source = std::make_unique<TapStoreSettlementSource>(*taps, *registry,
                                                            settlement_reads.get());
    SettlerConfig config;
    config.reads = settlement_reads.get();
    config.daily_caps = {DailyCap{Profile::adult, {RideMode::bus, RideMode::metro},
                                  kDailyCapFen}};
    settler = std::make_unique<Settler>(*registry, *ledger, *ledger_store, *settlement_store,
                                        *tap_source, digester, clock, std::move(config));
    auto bs = db::SqliteBillStore::Open(*db);
    REQUIRE(bs.ok());
    bill_store = std::move(*bs);
    bills = std::make_unique<BillService>(*bill_store, *registry, *ledger, digester, clock);
    auto fs = db::SqliteFareStore::Open(*db);
    REQUIRE(fs.ok());
    fare_store = std::move(*fs);
    fares = std::make_unique<FareOffice>(*fare_store, *registry, *ledger, *office, digester, clock);
    auto hs = db::SqliteHealthStore::Open(*db);
    REQUIRE(hs.ok());
    health_store = std::move(*hs);
    health = std::make_unique<HealthService>(*health_store, *registry, *ledger, *office,
                                             verifier, signer, digester, clock);
  }

  Terminal GetTerminal(const std::string& id) {
    auto t = registry->FindTerminal(id);
    REQUIRE(t.ok());
    REQUIRE(t->has_value());
    return **t;
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
  std::unique_ptr<db::SqliteSettlementStore> settlement_store;
  std::unique_ptr<db::SqliteSettlementReads> settlement_reads;
  std::unique_ptr<TapStoreSettlementSource> tap_source;
  std::unique_ptr<Settler> settler;
  std::unique_ptr<db::SqliteBillStore> bill_store;
  std::unique_ptr<BillService> bills;
  std::unique_ptr<db::SqliteFareStore> fare_store;
  std::unique_ptr<FareOffice> fares;
  NoProofVerifier verifier;
  ZeroVoucherSigner signer;
  std::unique_ptr<db::SqliteHealthStore> health_store;
  std::unique_ptr<HealthService> health;
};

// One step of the script: an upload of batches, a counter top-up, a kiosk's online top-up
// asks (one group), the load record that confirms the first ask of the step before, a
// utility's bill file (paid from the purses in chunks), a bill the file could not pay paid at
// a counter, a hospital's bill settled (fund and purse) and later reversed, a card replaced
// (its balance moved at once) and one closed (purse and deposit refunded), a scenic spot's
// pass sold to a card and used at the spot's gate twice, the next
// morning the settlement of the day (capping rebates, payouts), or, two days later, the
// expiry of the top-ups never confirmed.
struct Step {
  enum class Kind : uint8_t {
    upload, counter_topup, online_asks, online_confirm, bill_file, bill_at_counter,
    medical_bill, medical_reversal, card_replace, card_close, pass_sale, gate_entry, settle,
    expire
  };
  // An import goes on from the chunks an earlier run committed: it is retried, never
  // abandoned (an operator runs the file again).
  bool resumable() const { return kind == Kind::bill_file; }
  Kind kind = Kind::upload;
  std::vector<UploadedBatch> batches;
  uint64_t card_no = 0;  // the card a counter top-up, pass, hospital bill or card step is for
  int64_t topup_fen = 0;
  std::string topup_ref;
  std::vector<TopupAsk> asks;
  TapRecord load;
  std::string bill_text;
  std::string bill_id;
  int holder = 0;  // the card's holder number (a pass sale names the holder)
};

struct Script {
  std::vector<FakeCard> cards;
  std::vector<uint64_t> accounts;  // every purse, then the payables of BUS1 and METRO
  std::vector<Step> steps;
};

// Two online top-up asks at the kiosk (request ids 2 * round and one more, two cards), then
// the first card's load record confirming its ask; the second stays pending.
void AddOnlineTopup(Script& s, const Terminal& kiosk, int round, int64_t time_s) {
  Step asks;
  asks.kind = Step::Kind::online_asks;
  FakeCard* cards[2] = {&s.cards[static_cast<size_t>((round + 4) % kCards)],
                        &s.cards[static_cast<size_t>((round + 9) % kCards)]};
  for (size_t i = 0; i < 2; ++i) {
    TopupAsk ask;
    ask.terminal_id = kiosk.id;
    ask.request_id = static_cast<uint64_t>(2 * round) + i;
    ask.card_no = cards[i]->card_no;
    ask.card_counter = cards[i]->counter;
    ask.balance_before_fen = cards[i]->balance_fen;
    ask.amount_fen = kOnlineTopupFen;
    asks.asks.push_back(ask);
  }
  Step confirm;
  confirm.kind = Step::Kind::online_confirm;
  confirm.load = MakeFixtureTap(kiosk, *cards[0], static_cast<uint32_t>(round), time_s,
                                kOnlineTopupFen, TapType::load);
  s.steps.push_back(std::move(asks));
  s.steps.push_back(std::move(confirm));
}

// The water utility's file: a bill for each card with a mandate (the last one more than its
// purse holds), one for a card without, one for a card that does not exist.
Step BillFileStep(const Script& s) {
  Step step;
  step.kind = Step::Kind::bill_file;
  step.bill_text = "bill_id,utility,account_no,card_no,period,amount,due_date\n";
  auto line = [&](int id, int account, const std::string& card_no, const char* amount) {
    step.bill_text += fmt::format("B{},WATER,W-{},{},2024-02,{},2024-03-15\n", id, account,
                                  card_no, amount);
  };
  for (int i = 0; i < kBillMandates; ++i) {
    line(i, i, CardNumberFromInt(s.cards[static_cast<size_t>(i)].card_no),
         i + 1 < kBillMandates ? "12.30" : "95.00");
  }
  line(kBillMandates, kBillMandates, CardNumberFromInt(s.cards[kBillMandates].card_no), "7.00");
  line(kBillMandates + 1, 99, MakeCardNumber(9'999), "7.00");
  return step;
}

// Issues and funds the cards (without faults), then writes the steps: per round an upload of
// a bus and a metro batch, every third round with the round before's first bus record again
// (a duplicate), every fourth a counter top-up. The records depend only on the set-up, which
// is the same in every run.
Script MakeScript(World& w) {
  REQUIRE(w.office->CreateSystemAccounts().ok());
  AddFixtureOperatorsAndTerminals(*w.terminals);
  // The holders are insured (the medical scheme) before their cards are issued.
  std::string holders = "national_id,name,schemes,groups,medical_account\n";
  for (int i = 0; i < kCards; ++i) holders += FixtureNationalId(i + 1) + ",张三,medical,,0\n";
  auto imported = w.office->ImportHolders(holders, false);
  REQUIRE(imported.ok());
  REQUIRE(imported->created == kCards);
  REQUIRE(w.health->LoadRules(kMedicalRules).ok());
  REQUIRE(w.terminals->AddOperator({kHospital, "Hospital", OperatorKind::hospital, 0}).ok());
  REQUIRE(w.terminals->AddOperator({kSpot, "Scenic spot", OperatorKind::scenic, 0}).ok());
  REQUIRE(w.fares->LoadTable(kFareTable).ok());
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
  REQUIRE(w.terminals->AddOperator({"WATER", "Water", OperatorKind::utility, 0}).ok());
  for (int i = 0; i < kBillMandates; ++i) {
    REQUIRE(w.bills->AddMandate(CardNumberFromInt(s.cards[static_cast<size_t>(i)].card_no),
                                "WATER", fmt::format("W-{}", i))
                .ok());
  }
  s.accounts.push_back(SystemAccountId(AccountKind::medical_fund));
  s.accounts.push_back(SystemAccountId(AccountKind::refunds));
  s.accounts.push_back(SystemAccountId(AccountKind::card_deposits));
  for (const char* op : {"BUS1", "METRO", "WATER", kHospital, kSpot}) {
    auto found = w.registry->FindOperator(op);
    REQUIRE((found.ok() && found->has_value()));
    s.accounts.push_back((*found)->payable_account_id);
  }
  Terminal bus = w.GetTerminal("T1");
  Terminal metro = w.GetTerminal("M1");
  Terminal kiosk = w.GetTerminal("K1");
  uint32_t bus_ttc = 0, metro_ttc = 0;
  int64_t time_s = w.clock.NowSeconds();
  TapRecord previous_first_bus;
  for (int round = 0; round < kRounds; ++round) {
    time_s += 60;
    Step upload;
    upload.kind = Step::Kind::upload;
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
    if (round % 4 == 1) AddOnlineTopup(s, kiosk, round, time_s);
    if (round == kMedicalRound || round == kMedicalRound + 4) {
      Step medical;
      medical.kind = round == kMedicalRound ? Step::Kind::medical_bill
                                            : Step::Kind::medical_reversal;
      medical.card_no = s.cards[kMedicalCard].card_no;
      s.steps.push_back(std::move(medical));
    }
    if (round == kPassRound) {
      for (auto kind : {Step::Kind::pass_sale, Step::Kind::gate_entry, Step::Kind::gate_entry}) {
        Step step;
        step.kind = kind;
        step.card_no = s.cards[kPassCard].card_no;
        step.holder = static_cast<int>(kPassCard) + 1;
        s.steps.push_back(std::move(step));
      }
    }
    if (round == kBillRound) {
      s.steps.push_back(BillFileStep(s));
      // The holder of the bill the purse could not pay tops up at a counter and pays it there.
      Step topup;
      topup.kind = Step::Kind::counter_topup;
      topup.card_no = s.cards[kBillMandates - 1].card_no;
      topup.topup_fen = 10'000;
      topup.topup_ref = "for-the-water-bill";
      s.steps.push_back(std::move(topup));
      Step pay;
      pay.kind = Step::Kind::bill_at_counter;
      pay.bill_id = fmt::format("B{}", kBillMandates - 1);
      s.steps.push_back(std::move(pay));
    }
    if (round % 4 == 3) {
      Step topup;
      topup.kind = Step::Kind::counter_topup;
      topup.card_no = s.cards[static_cast<size_t>(round % kCards)].card_no;
      topup.topup_fen = 1'000;
      topup.topup_ref = fmt::format("counter{}", round);
      s.steps.push_back(std::move(topup));
    }
  }
  for (auto [kind, card] : {std::pair{Step::Kind::card_replace, kReplacedCard},
                            {Step::Kind::card_close, kClosedCard}}) {
    Step step;
    step.kind = kind;
    step.card_no = s.cards[card].card_no;
    s.steps.push_back(std::move(step));
  }
  Step settle;
  settle.kind = Step::Kind::settle;
  s.steps.push_back(std::move(settle));
  Step expire;
  expire.kind = Step::Kind::expire;
  s.steps.push_back(std::move(expire));
  return s;
}

// Each of the script's accounts' posted balance and pending credits.
std::vector<int64_t> Balances(Ledger& ledger, const Script& s) {
  std::vector<int64_t> balances;
  for (uint64_t id : s.accounts) {
    auto account = ledger.LookupAccount(id);
    REQUIRE(account.ok());
    balances.push_back(account->balance_fen());
    balances.push_back(account->credits_pending);
  }
  return balances;
}

struct RunResult {
  std::vector<IngestOutcome> outcomes;  // every record's, in script order
  // Each answer but the uploads' and the bill file's, in order, with its step's kind: a top-up
  // ask group's (outcome, amount, balance after per ask), a confirmation's (outcome, record
  // outcome), a counter bill payment's (status, balance after), the settlement's transfers,
  // the expiry's count.
  std::vector<std::pair<Step::Kind, std::vector<int64_t>>> answers;
  uint64_t last_authorisation_id = 0;
  std::optional<SettlementReport> settlement;
  std::vector<BillResult> bill_results;
  size_t abandoned_step = static_cast<size_t>(-1);  // OnFailure::abandon: the step that failed
  std::vector<int64_t> balances;        // Script::accounts' posted and pending, from the engine
  int failed_attempts = 0;
  uint64_t ops = 0;       // I/O operations counted (in a run without faults)
  uint64_t injected = 0;  // of which failed
  FaultOp last_fault = FaultOp::read;
};

// For a step that did not succeed: a refusal (after an abandoned step a purse may hold less,
// a card may be in another state) is kept as the step's answer (true); a storage failure
// fails the step (false).
bool Refused(const Step& step, const Status& status, RunResult* r) {
  if (status.kind() == Kind::internal) return false;
  r->answers.push_back({step.kind, {static_cast<int64_t>(status.kind())}});
  return true;
}

// Keeps a hospital bill's settlement or reversal as the step's answer (Refused when it was not
// made).
bool Answer(const Step& step, const Result<MedicalSettlementRecord>& record, RunResult* r) {
  if (!record.ok()) return Refused(step, record.status(), r);
  r->answers.push_back({step.kind, {record->amount_fen, record->deductible_fen, record->fund_fen,
                               record->purse_fen, record->purse_after_fen,
                               record->reversed() ? 1 : 0}});
  return true;
}

// Runs one step once; false when it failed (nothing of it may then be acknowledged).
// Acknowledged results go to `r`: each record's outcome, and each top-up answer's figures.
bool TryStep(World& w, const Step& step, RunResult* r) {
  switch (step.kind) {
    case Step::Kind::upload: {
      auto out = w.engine->Ingest(step.batches);
      if (!out.ok()) return false;
      for (const auto& batch : *out) {
        r->outcomes.insert(r->outcomes.end(), batch.begin(), batch.end());
      }
      return true;
    }
    case Step::Kind::counter_topup:
      return w.office
          ->Topup(CardNumberFromInt(step.card_no), step.topup_fen, step.topup_ref)
          .ok();
    case Step::Kind::online_asks: {
      auto out = w.engine->AuthoriseTopups(step.asks);
      if (!out.ok()) return false;
      std::vector<int64_t> figures;
      for (const auto& decision : *out) {
        REQUIRE(decision.ok());
        figures.push_back(static_cast<int64_t>(decision->outcome));
        figures.push_back(decision->amount_fen);
        figures.push_back(decision->balance_after_fen);
      }
      r->answers.push_back({step.kind, std::move(figures)});
      // The authorisation the next step confirms: the one of this run, whatever its number.
      r->last_authorisation_id = (*out)[0]->authorisation_id;
      return true;
    }
    case Step::Kind::bill_file: {
      std::vector<BillResult> results;
      BillImportOptions options;
      options.chunk_bills = kBillChunk;
      options.on_results = [&results](std::span<const BillResult> chunk) {
        results.insert(results.end(), chunk.begin(), chunk.end());
        return Status::Ok();
      };
      auto report = w.bills->ImportBills(step.bill_text, options);
      if (!report.ok()) return false;
      INFO((report->errors.empty() ? "" : report->errors[0].message));
      REQUIRE(report->applied);
      // Every bill's result, those of chunks an earlier attempt committed first.
      r->bill_results = std::move(results);
      return true;
    }
    case Step::Kind::bill_at_counter: {
      BillPayRequest request;
      request.bill_id = step.bill_id;
      auto paid = w.bills->PayBill(request);
      if (!paid.ok()) return Refused(step, paid.status(), r);
      r->answers.push_back(
          {step.kind, {static_cast<int64_t>(paid->status), paid->balance_after_fen}});
      return true;
    }
    case Step::Kind::medical_bill: {
      auto settled = w.health->Settle(MedicalBill(step.card_no));
      return Answer(step, settled.ok() ? Result<MedicalSettlementRecord>(settled->record)
                                       : Result<MedicalSettlementRecord>(settled.status()),
                    r);
    }
    case Step::Kind::medical_reversal:
      return Answer(step, w.health->Reverse(kHospital, kMedicalBillId), r);
    case Step::Kind::card_replace: {
      auto replaced = w.office->Replace(CardNumberFromInt(step.card_no), /*move_now=*/true);
      if (!replaced.ok()) return Refused(step, replaced.status(), r);
      const auto new_card_no =
          static_cast<int64_t>(CardNumberToInt(replaced->new_card.card.card_no));
      r->answers.push_back(
          {step.kind, {new_card_no, replaced->moved_fen, replaced->new_card.balance_fen}});
      return true;
    }
    case Step::Kind::card_close: {
      auto closed = w.office->Close(CardNumberFromInt(step.card_no));
      if (!closed.ok()) return Refused(step, closed.status(), r);
      r->answers.push_back({step.kind, {closed->purse_refund_fen, closed->deposit_refund_fen}});
      return true;
    }
    case Step::Kind::pass_sale: {
      auto sold = w.fares->SellPass(CardNumberFromInt(step.card_no), kPassId,
                                    FixtureNationalId(step.holder));
      if (!sold.ok()) return Refused(step, sold.status(), r);
      r->answers.push_back({step.kind, {sold->balance_after_fen, sold->repeated ? 1 : 0}});
      return true;
    }
    case Step::Kind::gate_entry: {
      auto entry = w.fares->EnterGate(CardNumberFromInt(step.card_no), kSpot,
                                      w.clock.NowSeconds());
      if (!entry.ok()) return false;
      r->answers.push_back(
          {step.kind, {static_cast<int64_t>(entry->outcome), entry->visits_left}});
      return true;
    }
    case Step::Kind::settle: {
      w.clock.SetMs(kSettleAtMs);
      auto settled = w.settler->Settle(ClearingDay(kFixtureStartMs / 1000));
      if (!settled.ok()) return false;
      const SettlementRecord& record = settled->record;
      r->settlement = record.report;
      r->answers.push_back({step.kind, {record.transfers}});
      return true;
    }
    case Step::Kind::expire: {
      w.clock.SetMs(kExpiryAtMs);
      auto expired = w.engine->ExpireTopups();
      if (!expired.ok()) return false;
      r->answers.push_back({step.kind, {static_cast<int64_t>(*expired)}});
      return true;
    }
    case Step::Kind::online_confirm: {
      auto out = w.engine->ConfirmTopup(step.load.terminal_id, r->last_authorisation_id,
                                        EncodeTapRecord(step.load));
      if (!out.ok()) return false;
      r->answers.push_back({step.kind, {static_cast<int64_t>(out->outcome),
                                        static_cast<int64_t>(out->record_outcome)}});
      return true;
    }
  }
  return false;
}

// What RunScript does with a step whose storage failed.
enum class OnFailure : uint8_t { retry, abandon };
constexpr size_t kNoStep = static_cast<size_t>(-1);

// Runs the script's steps (all but `skip_step`) under `plan`. A failed step is retried, or
// abandoned (RunResult::abandoned_step; the script goes on with the next).
RunResult RunScript(World& w, const Script& s, FaultPlan plan,
                    OnFailure on_failure = OnFailure::retry, size_t skip_step = kNoStep) {
  RunResult r;
  ArmFault(plan);
  for (size_t k = 0; k < s.steps.size(); ++k) {
    if (k == skip_step) continue;
    int attempts = 0;
    while (!TryStep(w, s.steps[k], &r)) {
      ++r.failed_attempts;
      if (on_failure == OnFailure::abandon && !s.steps[k].resumable()) {
        REQUIRE(r.abandoned_step == kNoStep);  // one fault, one failed step at most
        r.abandoned_step = k;
        break;
      }
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
  r.balances = Balances(*w.ledger, s);
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
  state.balances = Balances(ledger, s);
  state.taps = CountTaps(**db);
  return state;
}

struct Reference {
  RunResult run;
  FileState file;
  uint64_t ops = 0;  // operations the script makes without faults
};

// The script run without faults (all but `skip_step`), counting operations of kind `only`.
Reference RunWithoutFaults(const std::string& vfs, std::optional<FaultOp> only,
                           size_t skip_step = kNoStep) {
  ScratchDbFile file("io_faults_reference");
  Reference ref;
  {
    World w(file.path, vfs);
    Script s = MakeScript(w);
    ref.run = RunScript(w, s, FaultPlan{0, only}, OnFailure::retry, skip_step);
    ref.ops = ref.run.ops;
    REQUIRE(ref.run.failed_attempts == 0);
    ref.file = ReadFile(file.path, s);
  }
  return ref;
}

// The answers as text, for a failure's message: "kind:figure,figure kind:figure …".
std::string AnswersText(const RunResult& run) {
  std::string text;
  for (const auto& [kind, figures] : run.answers) {
    text += fmt::format("{}:{} ", static_cast<int>(kind), fmt::join(figures, ","));
  }
  return text;
}

// Requires that a run (and its file, read afresh) ended as the reference did.
void RequireSameEnd(const RunResult& run, const std::string& path, const Script& s,
                    const Reference& ref) {
  REQUIRE(run.outcomes == ref.run.outcomes);
  INFO("answers " << AnswersText(run) << "\nreference " << AnswersText(ref.run));
  REQUIRE(run.answers == ref.run.answers);
  REQUIRE(run.settlement == ref.run.settlement);
  REQUIRE(run.bill_results == ref.run.bill_results);
  REQUIRE(run.balances == ref.run.balances);
  FileState state = ReadFile(path, s);
  REQUIRE(state.balances == ref.file.balances);
  REQUIRE(state.taps == ref.file.taps);
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
  // The bill import checks its file on a second thread while it pays the first chunks, so a
  // run may make an operation or two fewer than the reference: a fault past its last one is
  // never met.
  REQUIRE((run.injected > 0 || run.ops < plan.fail_at));
  RequireSameEnd(run, file.path, s, ref);
  return run.failed_attempts > 0;
}

// Fails each operation of kind `only` once, in a run of its own, and abandons the step that
// fails: the run must end as the script without that step ever tried (nothing of a failed
// step may linger, in the file or in the engine's memory, to change what comes after).
void AbandonEachFailedStep(FaultOp only) {
  const std::string vfs = FaultVfsName();
  const Reference ref = RunWithoutFaults(vfs, only);
  std::map<size_t, Reference> without;  // the reference without each step, as needed
  for (uint64_t n = 1; n <= ref.ops; ++n) {
    ScratchDbFile file("io_faults");
    World w(file.path, vfs);
    Script s = MakeScript(w);
    RunResult run = RunScript(w, s, FaultPlan{n, only}, OnFailure::abandon);
    INFO(FaultOpName(only) << " " << n << " failed; step " << run.abandoned_step
                           << " abandoned");
    if (run.abandoned_step == kNoStep) {
      RequireSameEnd(run, file.path, s, ref);
      continue;
    }
    auto it = without.find(run.abandoned_step);
    if (it == without.end()) {
      it = without.emplace(run.abandoned_step, RunWithoutFaults(vfs, only, run.abandoned_step))
               .first;
    }
    RequireSameEnd(run, file.path, s, it->second);
  }
  WARN(fmt::format("{} {} operations; {} different steps abandoned", ref.ops, FaultOpName(only),
                   without.size()));
  REQUIRE(without.size() > 1);
}

// Fails operations offset + 1, offset + 1 + stride, ... of the script (those of kind `only`,
// when set), each in a run of its own.
void FailEachOperation(std::optional<FaultOp> only, uint64_t stride, uint64_t offset,
                       bool sticky) {
  const std::string vfs = FaultVfsName();
  Reference ref = RunWithoutFaults(vfs, only);
  // The script must do real work for this to show anything: uploads booked, duplicates named.
  REQUIRE(ref.ops > 0);
  const int online_topups = (kRounds + 2) / 4;  // rounds 1, 5, 9
  REQUIRE(ref.file.taps == kRounds * 5 + online_topups);  // the load records are taps too
  // Each ask authorised and each confirmation booked: outcome, amount, balance after per ask,
  // then outcome and record outcome per confirmation.
  // Each ask authorised and each confirmation booked; the bill the file could not pay paid
  // at the counter; the settlement booked more transfers than it capped cards (rebates and
  // payouts); the second ask of each round expired.
  std::map<Step::Kind, std::vector<std::vector<int64_t>>> by_kind;
  for (const auto& [kind, figures] : ref.run.answers) by_kind[kind].push_back(figures);
  REQUIRE(by_kind[Step::Kind::online_asks].size() == static_cast<size_t>(online_topups));
  for (const auto& asks : by_kind[Step::Kind::online_asks]) {
    REQUIRE(asks.size() == 6);
    REQUIRE(asks[0] == static_cast<int64_t>(TopupOutcome::authorised));
    REQUIRE(asks[3] == static_cast<int64_t>(TopupOutcome::authorised));
  }
  REQUIRE(by_kind[Step::Kind::online_confirm] ==
          std::vector<std::vector<int64_t>>(
              static_cast<size_t>(online_topups),
              {static_cast<int64_t>(TopupOutcome::confirmed),
               static_cast<int64_t>(IngestOutcome::accepted)}));
  // The hospital bill of ¥60: ¥20 deductible, 60 % of the ¥40 above it from the fund, the
  // holder's ¥36 from the purse (no medical account money); then reversed.
  const std::vector<int64_t> settled = {kMedicalBillFen, 2'000, 2'400, 3'600};
  REQUIRE(by_kind[Step::Kind::medical_bill].size() == 1);
  REQUIRE(std::vector<int64_t>(by_kind[Step::Kind::medical_bill][0].begin(),
                               by_kind[Step::Kind::medical_bill][0].begin() + 4) == settled);
  REQUIRE(by_kind[Step::Kind::medical_reversal].at(0).back() == 1);
  // The replaced card's balance moved to the new one; the closed card's purse refunded.
  REQUIRE(by_kind[Step::Kind::card_replace].at(0).size() == 3);
  REQUIRE(by_kind[Step::Kind::card_replace][0][1] > 0);
  REQUIRE(by_kind[Step::Kind::card_replace][0][2] == by_kind[Step::Kind::card_replace][0][1]);
  REQUIRE(by_kind[Step::Kind::card_close].at(0).size() == 2);
  REQUIRE(by_kind[Step::Kind::card_close][0][0] > 0);
  // The pass sold (¥10 from the purse), one entry admitted, the second refused that day.
  REQUIRE(by_kind[Step::Kind::pass_sale].at(0).at(1) == 0);
  REQUIRE(by_kind[Step::Kind::gate_entry] ==
          std::vector<std::vector<int64_t>>{
              {static_cast<int64_t>(PassEntryOutcome::admitted), 2},
              {static_cast<int64_t>(PassEntryOutcome::already_entered_today), 2}});
  REQUIRE(by_kind[Step::Kind::bill_at_counter].size() == 1);
  REQUIRE(by_kind[Step::Kind::bill_at_counter][0].at(0) == static_cast<int64_t>(BillStatus::paid));
  REQUIRE(ref.run.settlement.has_value());
  REQUIRE(ref.run.settlement->totals.capped_cards > 0);
  REQUIRE(ref.run.settlement->totals.capping_rebate_fen > 0);
  REQUIRE(by_kind[Step::Kind::settle].at(0).at(0) > ref.run.settlement->totals.capped_cards);
  REQUIRE(by_kind[Step::Kind::expire].at(0).at(0) == online_topups);
  // The bill file: paid by mandate but the last (insufficient_funds), no_mandate, unknown_card.
  REQUIRE(ref.run.bill_results.size() == static_cast<size_t>(kBillMandates + 2));
  for (int i = 0; i + 1 < kBillMandates; ++i) {
    REQUIRE(ref.run.bill_results[static_cast<size_t>(i)].status == BillStatus::paid);
  }
  REQUIRE(ref.run.bill_results[kBillMandates - 1].status == BillStatus::insufficient_funds);
  REQUIRE(ref.run.bill_results[kBillMandates].status == BillStatus::no_mandate);
  REQUIRE(ref.run.bill_results[kBillMandates + 1].status == BillStatus::unknown_card);
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

TEST_CASE("A step whose write or sync failed and that is never retried leaves no trace: what "
          "follows runs as if it had not been tried",
          "[db][faults]") {
  AbandonEachFailedStep(FaultOp::write);
  AbandonEachFailedStep(FaultOp::sync);
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
