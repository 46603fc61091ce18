#include "db/sqlite_health_store.h"

#include <catch2/catch.hpp>

#include <filesystem>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/terminal_office.h"
#include "crypto/digest.h"
#include "crypto/signer.h"
#include "db/sqlite_ledger_store.h"
#include "db/sqlite_registry_store.h"
#include "tests/support/card_office_fixture_support.h"

using namespace citycard;
using citycard::db::Database;
using citycard::db::SqliteHealthStore;

namespace {

std::unique_ptr<Database> MemoryDb() {
  auto db = Database::Open(":memory:", true);
  REQUIRE(db.ok());
  return std::move(*db);
}

MedicalSettlementRecord SampleSettlement(std::string hospital, std::string bill, int64_t ms) {
  MedicalSettlementRecord r;
  r.hospital_id = std::move(hospital);
  r.bill_id = std::move(bill);
  r.card_no = "6200000000000018";
  r.holder_number = 7;
  r.scheme = Scheme::medical;
  r.category = MedicalCategory::inpatient;
  r.provided = true;
  r.rules_version = "v1";
  r.terminal_id = "t-1";
  r.settled_ms = ms;
  r.amount_fen = 10000;
  r.deductible_fen = 1000;
  r.fund_fen = 7000;
  r.assistance_fen = 500;
  r.medical_account_fen = 1500;
  r.purse_fen = 1000;
  r.medical_account_after_fen = 0;
  r.purse_after_fen = 4200;
  r.voucher = {1, 2, 3, 4};
  return r;
}

}  // namespace

TEST_CASE("The health store keeps identity checks and lists them by card and terminal",
          "[db][health]") {
  auto db = MemoryDb();
  auto store = SqliteHealthStore::Open(*db);
  REQUIRE(store.ok());
  IdentityCheckRecord a;
  a.time_ms = 1000;
  a.terminal_id = "t-1";
  a.operator_id = "hosp-1";
  a.card_no = "6200000000000018";
  a.purpose = IdentityPurpose::pharmacy;
  a.outcome = IdentityOutcome::valid;
  a.card_status = CardStatus::active;
  a.profile = Profile::elderly;
  a.disclosed = Filter(IdentityPurpose::pharmacy, {Scheme::pension, Scheme::medical},
                       {SpecialGroup::social_assistance, SpecialGroup::elderly});
  IdentityCheckRecord b;
  b.time_ms = 2000;
  b.terminal_id = "t-2";
  b.card_no = "6200000000000026";
  b.purpose = IdentityPurpose::hospital;
  b.outcome = IdentityOutcome::bad_card_proof;
  REQUIRE(*(*store)->AppendIdentityCheck(a) == 1);
  REQUIRE(*(*store)->AppendIdentityCheck(b) == 2);

  auto all = (*store)->ListIdentityChecks({});
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  a.id = 1;
  b.id = 2;
  REQUIRE((*all)[0] == a);
  REQUIRE((*all)[1] == b);
  REQUIRE((*all)[0].disclosed.schemes == std::vector<Scheme>{Scheme::medical});
  REQUIRE((*all)[0].disclosed.groups == std::vector<SpecialGroup>{SpecialGroup::social_assistance});

  IdentityCheckFilter by_terminal;
  by_terminal.terminal_id = "t-2";
  REQUIRE((*store)->ListIdentityChecks(by_terminal)->size() == 1);
  IdentityCheckFilter by_card;
  by_card.card_no = "6200000000000018";
  REQUIRE((*store)->ListIdentityChecks(by_card)->front().terminal_id == "t-1");
  IdentityCheckFilter limited;
  limited.limit = 1;
  REQUIRE((*store)->ListIdentityChecks(limited)->size() == 1);
}

TEST_CASE("The health store keeps year-to-date figures per holder", "[db][health]") {
  auto db = MemoryDb();
  auto store = SqliteHealthStore::Open(*db);
  REQUIRE_FALSE((*store)->FindYearToDate(7)->has_value());
  MedicalYearToDate f;
  f.year = 2025;
  f.assistance_paid_fen = 300;
  f.at(Scheme::medical, MedicalCategory::outpatient) = {8000, 1200};
  f.at(Scheme::maternity, MedicalCategory::drugs) = {1, 2};
  REQUIRE((*store)->PutYearToDate(7, f).ok());
  REQUIRE(**(*store)->FindYearToDate(7) == f);
  f.year = 2026;
  REQUIRE((*store)->PutYearToDate(7, f).ok());
  REQUIRE((**(*store)->FindYearToDate(7)).year == 2026);
  REQUIRE_FALSE((*store)->FindYearToDate(8)->has_value());
}

TEST_CASE("The health store keeps settlements once and reversals once", "[db][health]") {
  auto db = MemoryDb();
  auto store = SqliteHealthStore::Open(*db);
  MedicalSettlementRecord r = SampleSettlement("hosp-1", "B-1", 5000);
  REQUIRE((*store)->InsertSettlement(r).ok());
  REQUIRE((*store)->InsertSettlement(r).code() == "settlement_exists");
  REQUIRE((*store)->InsertSettlement(SampleSettlement("hosp-2", "B-1", 6000)).ok());
  REQUIRE(**(*store)->FindSettlement("hosp-1", "B-1") == r);
  REQUIRE_FALSE((*store)->FindSettlement("hosp-3", "B-1")->has_value());
  REQUIRE((*store)->FindSettlementsByBill("B-1")->size() == 2);

  REQUIRE((*store)->MarkReversed("hosp-1", "B-1", 9000, Bytes{9, 9}).ok());
  auto reversed = (*store)->FindSettlement("hosp-1", "B-1");
  REQUIRE((*reversed)->reversed_ms == 9000);
  REQUIRE((*reversed)->reversal_voucher == Bytes{9, 9});
  REQUIRE((*store)->MarkReversed("hosp-1", "B-1", 9500, Bytes{8}).code() == "already_reversed");
  REQUIRE((*store)->MarkReversed("hosp-1", "B-9", 9500, Bytes{8}).code() ==
          "settlement_not_found");
  REQUIRE_FALSE((**(*store)->FindSettlement("hosp-2", "B-1")).reversed());
}

TEST_CASE("The health store keeps rule versions and refuses another text under one",
          "[db][health]") {
  auto db = MemoryDb();
  auto store = SqliteHealthStore::Open(*db);
  REQUIRE_FALSE((*store)->CurrentRules()->has_value());
  REQUIRE((*store)->SaveRules({"v1", "{1}", 10}).ok());
  REQUIRE((*store)->SaveRules({"v2", "{2}", 20}).ok());
  REQUIRE((**(*store)->CurrentRules()).version == "v2");
  REQUIRE((*store)->SaveRules({"v1", "{1}", 30}).ok());  // back to v1
  auto current = (*store)->CurrentRules();
  REQUIRE((*current)->version == "v1");
  REQUIRE((*current)->text == "{1}");
  REQUIRE((*current)->loaded_ms == 30);
  REQUIRE((*store)->SaveRules({"v1", "{other}", 40}).code() == "rules_version_exists");
}

TEST_CASE("The health store adds up each hospital's settlements of a window", "[db][health]") {
  auto db = MemoryDb();
  auto store = SqliteHealthStore::Open(*db);
  REQUIRE((*store)->InsertSettlement(SampleSettlement("hosp-1", "B-1", 1000)).ok());
  REQUIRE((*store)->InsertSettlement(SampleSettlement("hosp-1", "B-2", 1999)).ok());
  REQUIRE((*store)->InsertSettlement(SampleSettlement("hosp-2", "B-3", 1500)).ok());
  REQUIRE((*store)->InsertSettlement(SampleSettlement("hosp-2", "B-4", 2000)).ok());
  auto totals = (*store)->MedicalTotals(1000, 2000);
  REQUIRE(totals.ok());
  REQUIRE(totals->size() == 2);
  REQUIRE((*totals)[0].operator_id == "hosp-1");
  REQUIRE((*totals)[0].medical_bills == 2);
  REQUIRE((*totals)[0].medical_fund_fen == 2 * 7500);
  REQUIRE((*totals)[0].medical_holder_fen == 2 * 2500);
  REQUIRE((*totals)[1].medical_bills == 1);
}

TEST_CASE("Opening the health store twice keeps its schema and rows", "[db][health]") {
  auto db = MemoryDb();
  {
    auto store = SqliteHealthStore::Open(*db);
    REQUIRE((*store)->SaveRules({"v1", "{1}", 10}).ok());
  }
  auto again = SqliteHealthStore::Open(*db);
  REQUIRE(again.ok());
  REQUIRE(*db->SchemaVersion("health") == 1);
  REQUIRE((**(*again)->CurrentRules()).version == "v1");
}

// ---- The service over SQLite, with the core's real Ed25519 key ----------------------------

namespace {

class EdSigner final : public VoucherSigner {
 public:
  explicit EdSigner(const crypto::Ed25519Signer& key) : key_(key) {}
  std::array<uint8_t, kVoucherSignatureBytes> Sign(ByteView message) const override {
    return key_.Sign(message);
  }

 private:
  const crypto::Ed25519Signer& key_;
};

class AcceptAll final : public CardProofVerifier {
 public:
  bool Verify(std::string_view, ByteView, ByteView) override { return true; }
};

constexpr char kRules[] = R"({"version": "db-1",
  "schemes": {"medical": {"outpatient": {"deductible": "10.00", "rate_bp": 5000,
                                         "annual_cap": "100.00"}}},
  "assistance": {"groups": [], "rate_bp": 0, "annual_cap": "0.00"}})";

}  // namespace

TEST_CASE("A settlement over SQLite commits with its figures and its voucher verifies",
          "[db][health]") {
  auto dir = std::filesystem::temp_directory_path() / "citycard_health_store_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string path = (dir / "h.db").string();
  crypto::Ed25519Signer key = crypto::Ed25519Signer::Generate();
  EdSigner signer(key);
  AcceptAll verifier;
  crypto::Sha256Digester digester;
  ManualClock clock(1'735'700'000'000);
  testing::FakeNationalIdHasher hasher;
  testing::FakeTerminalKeyMaker key_maker;
  std::string card_no;
  int64_t holder_number = 0;
  {
    auto db = Database::Open(path, true);
    REQUIRE(db.ok());
    auto ledger_store = db::SqliteLedgerStore::Open(**db);
    auto registry = db::SqliteRegistryStore::Open(**db);
    auto store = SqliteHealthStore::Open(**db);
    REQUIRE((ledger_store.ok() && registry.ok() && store.ok()));
    Ledger ledger(**ledger_store, clock, digester);
    CardOffice office(**registry, ledger, hasher, digester, clock, CardOfficeConfig{});
    REQUIRE(office.CreateSystemAccounts().ok());
    TerminalOffice terminals(**registry, ledger, key_maker, clock);
    REQUIRE(terminals.AddOperator({"hosp-1", "H", OperatorKind::hospital, 0}).ok());
    REQUIRE(office
                .ImportHolders("national_id,name,schemes,groups,medical_account\n"
                               "321281199001011234,张三,medical,,20.00\n",
                               false)
                .ok());
    IssueRequest issue;
    issue.national_id = "321281199001011234";
    issue.name = "张三";
    auto card = office.IssueCard(issue);
    REQUIRE(card.ok());
    card_no = card->card.card_no;
    holder_number = card->card.holder_number;
    REQUIRE(office.Topup(card_no, 10000, "t").ok());
    HealthService health(**store, **registry, ledger, office, verifier, signer, digester, clock);
    REQUIRE(health.LoadRules(kRules).ok());
    MedicalSettleRequest request;
    request.card_no = card_no;
    request.hospital_id = "hosp-1";
    request.bill_id = "DB-1";
    request.amount_fen = 5000;  // ¥10 deductible + 50 % of ¥40 = ¥30 holder: ¥20 + ¥10 purse
    auto settled = health.Settle(request);
    REQUIRE(settled.ok());
    REQUIRE(settled->record.fund_fen == 2000);
    REQUIRE(settled->record.medical_account_fen == 2000);
    REQUIRE(settled->record.purse_fen == 1000);
    auto voucher = ParseVoucher(settled->record.voucher);
    REQUIRE(voucher.ok());
    auto public_key = key.PublicKey();
    REQUIRE(crypto::VerifyEd25519(public_key, voucher->signed_bytes, voucher->signature));
    Bytes forged = voucher->signed_bytes;
    forged[30] ^= 1;  // a fen more in the bill
    REQUIRE_FALSE(crypto::VerifyEd25519(public_key, forged, voucher->signature));
  }
  // Reopened: the settlement, the figures and the money are all there.
  auto db = Database::Open(path, false);
  REQUIRE(db.ok());
  auto ledger_store = db::SqliteLedgerStore::Open(**db);
  auto store = SqliteHealthStore::Open(**db);
  Ledger ledger(**ledger_store, clock, digester);
  auto kept = (*store)->FindSettlement("hosp-1", "DB-1");
  REQUIRE(kept->has_value());
  REQUIRE((*kept)->purse_after_fen == 9000);
  auto figures = (*store)->FindYearToDate(holder_number);
  REQUIRE((*figures)->year == 2025);
  REQUIRE((*figures)->at(Scheme::medical, MedicalCategory::outpatient).deductible_used_fen == 1000);
  REQUIRE((*figures)->at(Scheme::medical, MedicalCategory::outpatient).fund_paid_fen == 2000);
  auto purse = ledger.LookupAccount(AccountIdFor(AccountKind::card_purse, CardNumberToInt(card_no)));
  REQUIRE(purse->balance_fen() == 9000);
  std::filesystem::remove_all(dir);
}

TEST_CASE("Identity checks are listed through the card's or the terminal's index, not a scan",
          "[db][health]") {
  auto db = MemoryDb();
  auto store = SqliteHealthStore::Open(*db);
  REQUIRE(store.ok());
  auto plan = [&](const IdentityCheckFilter& filter) {
    auto s = db->Prepare("EXPLAIN QUERY PLAN " + db::IdentityCheckListSql(filter));
    REQUIRE(s.ok());
    std::string out;
    while (*s->Step()) out += s->ColumnText(3) + "; ";
    return out;
  };
  IdentityCheckFilter by_card;
  by_card.card_no = "6200000000000018";
  CHECK_THAT(plan(by_card), Catch::Contains("INDEX health_identity_checks_card (card_no=?)"));
  IdentityCheckFilter by_terminal;
  by_terminal.terminal_id = "t-1";
  CHECK_THAT(plan(by_terminal),
             Catch::Contains("INDEX health_identity_checks_terminal (terminal_id=?)"));
  IdentityCheckFilter both = by_card;
  both.terminal_id = "t-1";
  CHECK_THAT(plan(both), Catch::Contains("INDEX health_identity_checks_"));

  // And the lists: each filter alone and both together.
  for (int i = 0; i < 6; ++i) {
    IdentityCheckRecord r;
    r.time_ms = 1000 + i;
    r.terminal_id = i % 2 == 0 ? "t-1" : "t-2";
    r.operator_id = "hosp-1";
    r.card_no = i < 3 ? "6200000000000018" : "6200000000000026";
    r.purpose = IdentityPurpose::hospital;
    r.outcome = IdentityOutcome::valid;
    REQUIRE((*store)->AppendIdentityCheck(r).ok());
  }
  auto ids = [&](const IdentityCheckFilter& filter) {
    auto listed = (*store)->ListIdentityChecks(filter);
    REQUIRE(listed.ok());
    std::vector<int64_t> out;
    for (const auto& r : *listed) out.push_back(r.id);
    return out;
  };
  CHECK(ids(by_card) == std::vector<int64_t>{1, 2, 3});
  CHECK(ids(by_terminal) == std::vector<int64_t>{1, 3, 5});
  CHECK(ids(both) == std::vector<int64_t>{1, 3});
  IdentityCheckFilter limited = by_terminal;
  limited.limit = 2;
  CHECK(ids(limited) == std::vector<int64_t>{1, 3});
  CHECK(ids(IdentityCheckFilter{}).size() == 6);
}
