// The health service over in-memory stores: identity checks (proof, purpose filter, audit
// trail, registry re-imports) and medical settlement (exact booked amounts, deductible, rate,
// cap, year boundary, assistance, fall-through to the purse, refusals that book nothing,
// provided splits, repeats, reversal exactly once, the voucher).
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/health.h"
#include "tests/support/card_office_fixture_support.h"

namespace citycard {
namespace {

using testing::CardOfficeFixture;

// ---- Fakes ---------------------------------------------------------------------------------

class MemoryHealthStore final : public HealthStore {
 public:
  Result<int64_t> AppendIdentityCheck(const IdentityCheckRecord& record) override {
    checks_.push_back(record);
    checks_.back().id = static_cast<int64_t>(checks_.size());
    return checks_.back().id;
  }
  Result<std::vector<IdentityCheckRecord>> ListIdentityChecks(
      const IdentityCheckFilter& filter) override {
    std::vector<IdentityCheckRecord> out;
    for (const IdentityCheckRecord& r : checks_) {
      if (filter.card_no && r.card_no != *filter.card_no) continue;
      if (filter.terminal_id && r.terminal_id != *filter.terminal_id) continue;
      if (out.size() == filter.limit) break;
      out.push_back(r);
    }
    return out;
  }
  Result<std::optional<MedicalYearToDate>> FindYearToDate(int64_t holder) override {
    auto it = figures_.find(holder);
    if (it == figures_.end()) return std::optional<MedicalYearToDate>();
    return std::optional<MedicalYearToDate>(it->second);
  }
  Status PutYearToDate(int64_t holder, const MedicalYearToDate& figures) override {
    figures_[holder] = figures;
    return Status::Ok();
  }
  Result<std::optional<MedicalSettlementRecord>> FindSettlement(std::string_view hospital,
                                                                std::string_view bill) override {
    auto it = settlements_.find({std::string(hospital), std::string(bill)});
    if (it == settlements_.end()) return std::optional<MedicalSettlementRecord>();
    return std::optional<MedicalSettlementRecord>(it->second);
  }
  Result<std::vector<MedicalSettlementRecord>> FindSettlementsByBill(
      std::string_view bill) override {
    std::vector<MedicalSettlementRecord> out;
    for (const auto& [key, r] : settlements_) {
      if (key.second == bill) out.push_back(r);
    }
    return out;
  }
  Status InsertSettlement(const MedicalSettlementRecord& r) override {
    if (!settlements_.emplace(std::make_pair(r.hospital_id, r.bill_id), r).second) {
      return Status::Refused("settlement_exists", "exists");
    }
    return Status::Ok();
  }
  Status MarkReversed(std::string_view hospital, std::string_view bill, int64_t ms,
                      const Bytes& voucher) override {
    auto it = settlements_.find({std::string(hospital), std::string(bill)});
    if (it == settlements_.end()) return Status::NotFound("settlement_not_found", "none");
    if (it->second.reversed()) return Status::Refused("already_reversed", "again");
    it->second.reversed_ms = ms;
    it->second.reversal_voucher = voucher;
    return Status::Ok();
  }
  Status SaveRules(const StoredMedicalRules& rules) override {
    for (const StoredMedicalRules& r : rules_) {
      if (r.version == rules.version && r.text != rules.text) {
        return Status::Refused("rules_version_exists", "other text");
      }
    }
    rules_.push_back(rules);
    return Status::Ok();
  }
  Result<std::optional<StoredMedicalRules>> CurrentRules() override {
    if (rules_.empty()) return std::optional<StoredMedicalRules>();
    return std::optional<StoredMedicalRules>(rules_.back());
  }
  Result<std::vector<OperatorServiceTotals>> MedicalTotals(int64_t, int64_t) override {
    return std::vector<OperatorServiceTotals>{};
  }

 private:
  std::vector<IdentityCheckRecord> checks_;
  std::map<int64_t, MedicalYearToDate> figures_;
  std::map<std::pair<std::string, std::string>, MedicalSettlementRecord> settlements_;
  std::vector<StoredMedicalRules> rules_;
};

// The card's "proof" is the first 8 bytes of SHA-256(card_no || signed bytes): not a MAC, but
// anything else fails, which is all the service's logic depends on.
std::array<uint8_t, 8> FakeProof(std::string_view card_no, ByteView signed_bytes) {
  Bytes input(card_no.begin(), card_no.end());
  input.insert(input.end(), signed_bytes.begin(), signed_bytes.end());
  Sha256Digest digest = testing::FakeDigester().Sha256(input);
  std::array<uint8_t, 8> proof{};
  std::copy_n(digest.begin(), 8, proof.begin());
  return proof;
}

class FakeProofVerifier final : public CardProofVerifier {
 public:
  bool Verify(std::string_view card_no, ByteView signed_bytes, ByteView proof) override {
    auto expected = FakeProof(card_no, signed_bytes);
    return proof.size() == 8 && std::equal(expected.begin(), expected.end(), proof.begin());
  }
};

class FakeSigner final : public VoucherSigner {
 public:
  std::array<uint8_t, kVoucherSignatureBytes> Sign(ByteView message) const override {
    Sha256Digest digest = testing::FakeDigester().Sha256(message);
    std::array<uint8_t, kVoucherSignatureBytes> signature{};
    std::copy(digest.begin(), digest.end(), signature.begin());
    std::copy(digest.begin(), digest.end(), signature.begin() + 32);
    return signature;
  }
};

// ---- Fixture -------------------------------------------------------------------------------

// Outpatient: ¥100 deductible, 50 %, ¥300 cap. Inpatient: no deductible, 80 %, ¥1,000 cap.
// Assistance for low-income holders: 50 % of their part, ¥200 a year.
constexpr char kRules[] = R"({
  "version": "test-1",
  "schemes": {
    "medical": {
      "outpatient": { "deductible": "100.00", "rate_bp": 5000, "annual_cap": "300.00" },
      "inpatient": { "deductible": "0.00", "rate_bp": 8000, "annual_cap": "1000.00" }
    }
  },
  "assistance": { "groups": ["low_income"], "rate_bp": 5000, "annual_cap": "200.00" }
})";

constexpr char kAdultId[] = "321281199001011234";
constexpr char kLowIncomeId[] = "11010519491231002X";
constexpr char kHospital[] = "hosp-1";
// 2024-12-31 23:59:59 and 2025-01-01 00:00:00, Asia/Shanghai.
constexpr int64_t kLastSecondOf2024 = 1'735'660'799;
constexpr int64_t kFirstSecondOf2025 = 1'735'660'800;

struct HealthFixture : CardOfficeFixture {
  HealthFixture() {
    std::string registry =
        "national_id,name,schemes,groups,medical_account\n"
        "321281199001011234,张三,pension|medical,,50.00\n"
        "11010519491231002X,李四,medical,low_income,0\n";
    auto report = office.ImportHolders(registry, false);
    REQUIRE(report.ok());
    REQUIRE(report->created == 2);
    adult = IssueAdult(kAdultId).card.card_no;
    low_income = IssueAdult(kLowIncomeId).card.card_no;
    REQUIRE(office.Topup(adult, 50000, "t1").ok());
    REQUIRE(office.Topup(low_income, 10000, "t2").ok());
    OperatorRequest op{kHospital, "City Hospital", OperatorKind::hospital, 0};
    auto added = terminals.AddOperator(op);
    REQUIRE(added.ok());
    payable = added->payable_account_id;
    REQUIRE(terminals.AddOperator({"bus-1", "Bus", OperatorKind::bus, 0}).ok());
    REQUIRE(health.LoadRules(kRules).ok());
  }

  uint64_t Purse(const std::string& card_no) {
    return AccountIdFor(AccountKind::card_purse, CardNumberToInt(card_no));
  }
  uint64_t MedicalAccount(const std::string& national_id) {
    auto holder = office.ShowHolder(national_id);
    REQUIRE(holder.ok());
    return AccountIdFor(AccountKind::medical_account, static_cast<uint64_t>(holder->holder.number));
  }
  MedicalSettleRequest Bill(const std::string& card_no, const std::string& bill_id,
                            int64_t amount_fen,
                            MedicalCategory category = MedicalCategory::outpatient) {
    MedicalSettleRequest r;
    r.card_no = card_no;
    r.hospital_id = kHospital;
    r.bill_id = bill_id;
    r.category = category;
    r.amount_fen = amount_fen;
    return r;
  }
  // Every balance the settlement can touch, to compare before and after.
  std::vector<int64_t> Balances() {
    return {Balance(Purse(adult)), Balance(Purse(low_income)), Balance(MedicalAccount(kAdultId)),
            Balance(MedicalAccount(kLowIncomeId)), Balance(payable),
            Balance(SystemAccountId(AccountKind::medical_fund)),
            Balance(SystemAccountId(AccountKind::medical_assistance_fund))};
  }
  size_t PayableTransfers() {
    auto history = ledger.AccountHistory(payable, 100);
    REQUIRE(history.ok());
    return history->size();
  }

  MemoryHealthStore store;
  FakeProofVerifier verifier;
  FakeSigner signer;
  HealthService health{store, registry, ledger, office, verifier, signer, digester, clock};
  std::string adult;
  std::string low_income;
  uint64_t payable = 0;
};

// ---- Medical settlement --------------------------------------------------------------------

TEST_CASE("A bill is split by deductible, rate and cap and booked to the fen",
          "[core][health]") {
  HealthFixture f;
  int64_t fund_before = f.Balance(SystemAccountId(AccountKind::medical_fund));

  // ¥150: ¥100 deductible, 50 % of ¥50 from the fund; the holder's ¥125 is ¥50 from the
  // medical account, then ¥75 from the purse.
  auto first = f.health.Settle(f.Bill(f.adult, "B-1", 15000));
  REQUIRE(first.ok());
  const MedicalSettlementRecord& r = first->record;
  REQUIRE_FALSE(first->repeated);
  REQUIRE(r.deductible_fen == 10000);
  REQUIRE(r.fund_fen == 2500);
  REQUIRE(r.assistance_fen == 0);
  REQUIRE(r.medical_account_fen == 5000);
  REQUIRE(r.purse_fen == 7500);
  REQUIRE(r.medical_account_after_fen == 0);
  REQUIRE(r.purse_after_fen == 42500);
  REQUIRE(r.rules_version == "test-1");
  REQUIRE(f.Balance(f.payable) == 15000);
  REQUIRE(f.Balance(f.Purse(f.adult)) == 42500);
  REQUIRE(f.Balance(f.MedicalAccount(kAdultId)) == 0);
  REQUIRE(f.Balance(SystemAccountId(AccountKind::medical_fund)) == fund_before - 2500);

  // ¥700: the deductible is used up; 50 % is ¥350 but only ¥275 of the ¥300 cap is left.
  auto second = f.health.Settle(f.Bill(f.adult, "B-2", 70000));
  REQUIRE(second.ok());
  REQUIRE(second->record.deductible_fen == 0);
  REQUIRE(second->record.fund_fen == 27500);
  REQUIRE(second->record.medical_account_fen == 0);
  REQUIRE(second->record.purse_fen == 42500);
  REQUIRE(f.Balance(f.Purse(f.adult)) == 0);
  REQUIRE(f.Balance(f.payable) == 85000);
  REQUIRE(f.Balance(SystemAccountId(AccountKind::medical_fund)) == fund_before - 30000);

  // The payable received one transfer per non-zero part, each with its own code.
  auto history = f.ledger.AccountHistory(f.payable, 10);
  REQUIRE(history.ok());
  std::multiset<uint16_t> codes;
  for (const HistoryEntry& e : *history) codes.insert(e.transfer.code);
  REQUIRE(codes == std::multiset<uint16_t>{kTransferCodeMedicalFund, kTransferCodeMedicalAccount,
                                           kTransferCodeMedicalPurse, kTransferCodeMedicalFund,
                                           kTransferCodeMedicalPurse});
  REQUIRE(f.LedgerSum() == 0);
}

TEST_CASE("A medical account that cannot pay the holder's part falls through to the purse",
          "[core][health]") {
  HealthFixture f;
  // Inpatient ¥300: 80 % = ¥240 from the fund; the holder's ¥60 is the medical account's ¥50
  // and ¥10 from the purse.
  auto settled = f.health.Settle(f.Bill(f.adult, "IN-1", 30000, MedicalCategory::inpatient));
  REQUIRE(settled.ok());
  REQUIRE(settled->record.fund_fen == 24000);
  REQUIRE(settled->record.medical_account_fen == 5000);
  REQUIRE(settled->record.purse_fen == 1000);
  REQUIRE(f.Balance(f.MedicalAccount(kAdultId)) == 0);
  REQUIRE(f.Balance(f.Purse(f.adult)) == 49000);
}

TEST_CASE("A bill the accounts cannot pay is refused and books nothing", "[core][health]") {
  HealthFixture f;
  // ¥700 outpatient: deductible ¥100 + half of ¥600 = ¥400 for the holder; the holder has
  // ¥50 + ¥500, so this passes; then a ¥1,000 inpatient bill leaves ¥200 to pay with ¥150.
  REQUIRE(f.health.Settle(f.Bill(f.adult, "OK-1", 70000)).ok());
  std::vector<int64_t> before = f.Balances();
  size_t transfers_before = f.PayableTransfers();
  auto refused = f.health.Settle(f.Bill(f.adult, "NO-1", 100000, MedicalCategory::inpatient));
  REQUIRE_FALSE(refused.ok());
  REQUIRE(refused.status().code() == "insufficient_funds");
  REQUIRE(refused.status().exit_code() == 4);
  REQUIRE(f.Balances() == before);
  REQUIRE(f.PayableTransfers() == transfers_before);
  REQUIRE_FALSE(f.store.FindSettlement(kHospital, "NO-1")->has_value());
  // The refusal left the year-to-date figures alone: the same bill after a top-up splits as
  // it would have.
  REQUIRE(f.office.Topup(f.adult, 10000, "t3").ok());
  auto later = f.health.Settle(f.Bill(f.adult, "NO-1", 100000, MedicalCategory::inpatient));
  REQUIRE(later.ok());
  REQUIRE(later->record.fund_fen == 80000);
  REQUIRE(later->record.purse_fen == 20000);
}

TEST_CASE("Other refusals book nothing either", "[core][health]") {
  HealthFixture f;
  std::vector<int64_t> before = f.Balances();
  auto code = [&](const MedicalSettleRequest& r) { return f.health.Settle(r).status().code(); };
  MedicalSettleRequest bus = f.Bill(f.adult, "X-1", 1000);
  bus.hospital_id = "bus-1";
  REQUIRE(code(bus) == "not_a_hospital");
  MedicalSettleRequest nowhere = f.Bill(f.adult, "X-1", 1000);
  nowhere.hospital_id = "hosp-9";
  REQUIRE(code(nowhere) == "operator_not_found");
  REQUIRE(code(f.Bill(f.adult, "X-1", 0)) == "invalid_amount");
  REQUIRE(code(f.Bill(f.adult, "bad id", 1000)) == "invalid_bill_id");
  REQUIRE(code(f.Bill(f.adult, std::string(33, 'B'), 1000)) == "invalid_bill_id");
  REQUIRE(code(f.Bill(f.adult, "X-1", 1000, MedicalCategory::drugs)) == "not_covered");
  MedicalSettleRequest pension = f.Bill(f.adult, "X-1", 1000);
  pension.scheme = Scheme::maternity;
  REQUIRE(code(pension) == "not_insured");
  REQUIRE(code(f.Bill("123", "X-1", 1000)) == "invalid_card_no");
  REQUIRE(f.office.Block(f.adult, BlockReason::lost).ok());
  REQUIRE(code(f.Bill(f.adult, "X-1", 1000)) == "card_blocked");
  REQUIRE(f.Balances() == before);
}

TEST_CASE("Settling without rules loaded is refused", "[core][health]") {
  CardOfficeFixture f;
  MemoryHealthStore store;
  FakeProofVerifier verifier;
  FakeSigner signer;
  HealthService health(store, f.registry, f.ledger, f.office, verifier, signer, f.digester,
                       f.clock);
  std::string card = f.IssueAdult().card.card_no;
  REQUIRE(f.terminals.AddOperator({kHospital, "H", OperatorKind::hospital, 0}).ok());
  MedicalSettleRequest r;
  r.card_no = card;
  r.hospital_id = kHospital;
  r.bill_id = "B-1";
  r.amount_fen = 100;
  REQUIRE(health.Settle(r).status().code() == "no_medical_rules");
  REQUIRE(health.LoadRules("{}").status().code() == "invalid_medical_rules");
}

TEST_CASE("Loading another text under a kept rules version is refused", "[core][health]") {
  HealthFixture f;
  REQUIRE(f.health.LoadRules(kRules).ok());
  std::string changed = kRules;
  changed.replace(changed.find("5000, \"annual_cap\": \"300.00\""), 4, "6000");
  REQUIRE(f.health.LoadRules(changed).status().code() == "rules_version_exists");
}

TEST_CASE("The year-to-date figures start again at the Shanghai new year", "[core][health]") {
  HealthFixture f;
  f.clock.SetMs(kLastSecondOf2024 * 1000);
  // ¥60 on the last second of 2024: all deductible.
  auto old_year = f.health.Settle(f.Bill(f.adult, "Y-1", 6000));
  REQUIRE(old_year.ok());
  REQUIRE(old_year->record.deductible_fen == 6000);
  REQUIRE(old_year->record.fund_fen == 0);
  // One second later it is 2025 in Shanghai (still 2024 in UTC): the deductible is whole
  // again, so ¥60 is all deductible once more (in 2024 it would have been ¥40 + 50 % of ¥20).
  f.clock.SetMs(kFirstSecondOf2025 * 1000);
  auto new_year = f.health.Settle(f.Bill(f.adult, "Y-2", 6000));
  REQUIRE(new_year.ok());
  REQUIRE(new_year->record.deductible_fen == 6000);
  REQUIRE(new_year->record.fund_fen == 0);
  auto figures = f.store.FindYearToDate(f.office.ShowHolder(kAdultId)->holder.number);
  REQUIRE((*figures)->year == 2025);
  REQUIRE((*figures)->at(Scheme::medical, MedicalCategory::outpatient).deductible_used_fen == 6000);
}

TEST_CASE("A low-income holder's part is shared by the assistance fund", "[core][health]") {
  HealthFixture f;
  // Inpatient ¥100: ¥80 fund; of the holder's ¥20, 50 % (¥10) from assistance; ¥10 from the
  // purse (the medical account is empty).
  auto settled = f.health.Settle(f.Bill(f.low_income, "A-1", 10000, MedicalCategory::inpatient));
  REQUIRE(settled.ok());
  REQUIRE(settled->record.fund_fen == 8000);
  REQUIRE(settled->record.assistance_fen == 1000);
  REQUIRE(settled->record.medical_account_fen == 0);
  REQUIRE(settled->record.purse_fen == 1000);
  REQUIRE(f.Balance(SystemAccountId(AccountKind::medical_assistance_fund)) == -1000);
  REQUIRE(f.Balance(f.Purse(f.low_income)) == 9000);
  REQUIRE(f.Balance(f.payable) == 10000);
}

TEST_CASE("A split computed by the hospital is checked and booked as given", "[core][health]") {
  HealthFixture f;
  MedicalSettleRequest r = f.Bill(f.adult, "P-1", 10000);
  r.provided = ProvidedSplit{0, 6000, 0, 4000, 0};
  auto settled = f.health.Settle(r);
  REQUIRE(settled.ok());
  REQUIRE(settled->record.provided);
  REQUIRE(settled->record.fund_fen == 6000);
  REQUIRE(settled->record.medical_account_fen == 4000);
  REQUIRE(f.Balance(f.MedicalAccount(kAdultId)) == 1000);
  REQUIRE(f.Balance(f.payable) == 10000);

  std::vector<int64_t> before = f.Balances();
  MedicalSettleRequest wrong = f.Bill(f.adult, "P-2", 10000);
  wrong.provided = ProvidedSplit{0, 6000, 0, 1000, 2000};  // adds up to ¥90
  REQUIRE(f.health.Settle(wrong).status().code() == "invalid_split");
  MedicalSettleRequest too_much = f.Bill(f.adult, "P-3", 10000);
  too_much.provided = ProvidedSplit{0, 0, 0, 10000, 0};  // the account has ¥10
  REQUIRE(f.health.Settle(too_much).status().code() == "insufficient_funds");
  REQUIRE(f.Balances() == before);
}

TEST_CASE("The same bill again is answered as before; other content under it is refused",
          "[core][health]") {
  HealthFixture f;
  auto first = f.health.Settle(f.Bill(f.adult, "R-1", 15000));
  REQUIRE(first.ok());
  std::vector<int64_t> before = f.Balances();
  auto again = f.health.Settle(f.Bill(f.adult, "R-1", 15000));
  REQUIRE(again.ok());
  REQUIRE(again->repeated);
  REQUIRE(again->record == first->record);
  REQUIRE(f.Balances() == before);
  auto other = f.health.Settle(f.Bill(f.adult, "R-1", 15001));
  REQUIRE(other.status().code() == "bill_conflict");
  REQUIRE(other.status().exit_code() == 4);
  REQUIRE(f.Balances() == before);
}

TEST_CASE("A settlement is reversed exactly once", "[core][health]") {
  HealthFixture f;
  std::vector<int64_t> before = f.Balances();
  REQUIRE(f.health.Settle(f.Bill(f.adult, "V-1", 15000)).ok());
  REQUIRE(f.Balances() != before);

  auto reversed = f.health.Reverse("", "V-1");
  REQUIRE(reversed.ok());
  REQUIRE(reversed->reversed());
  REQUIRE(f.Balances() == before);
  auto voucher = ParseVoucher(reversed->reversal_voucher);
  REQUIRE(voucher.ok());
  REQUIRE(voucher->fields.kind == VoucherKind::reversal);
  REQUIRE(voucher->fields.purse_after_fen == 50000);
  REQUIRE(voucher->fields.medical_account_after_fen == 5000);
  // The year-to-date figures are given back: the deductible is whole again.
  auto figures = f.store.FindYearToDate(f.office.ShowHolder(kAdultId)->holder.number);
  REQUIRE((*figures)->at(Scheme::medical, MedicalCategory::outpatient).deductible_used_fen == 0);
  REQUIRE((*figures)->at(Scheme::medical, MedicalCategory::outpatient).fund_paid_fen == 0);

  auto second = f.health.Reverse(kHospital, "V-1");
  REQUIRE(second.status().code() == "already_reversed");
  REQUIRE(second.status().exit_code() == 4);
  REQUIRE(f.Balances() == before);
  REQUIRE(f.health.Reverse(kHospital, "V-9").status().code() == "settlement_not_found");

  // Three transfers in (fund, medical account, purse), three back with the reversal codes.
  auto history = f.ledger.AccountHistory(f.payable, 10);
  std::multiset<uint16_t> codes;
  for (const HistoryEntry& e : *history) codes.insert(e.transfer.code);
  REQUIRE(codes.count(kTransferCodeMedicalPurse + kTransferCodeMedicalReversalOffset) == 1);
  REQUIRE(codes.count(kTransferCodeMedicalFund + kTransferCodeMedicalReversalOffset) == 1);
  REQUIRE(codes.size() == 6);
  REQUIRE(f.LedgerSum() == 0);
}

TEST_CASE("The voucher carries the bill, each part and the balances after, signed",
          "[core][health]") {
  HealthFixture f;
  auto settled = f.health.Settle(f.Bill(f.adult, "W-1", 15000));
  REQUIRE(settled.ok());
  auto voucher = ParseVoucher(settled->record.voucher);
  REQUIRE(voucher.ok());
  const VoucherFields& v = voucher->fields;
  REQUIRE(v.kind == VoucherKind::settlement);
  REQUIRE(v.bill_id == "W-1");
  REQUIRE(v.hospital_id == kHospital);
  REQUIRE(v.card_no == CardNumberToInt(f.adult));
  REQUIRE(v.amount_fen == 15000);
  REQUIRE(v.deductible_fen == 10000);
  REQUIRE(v.fund_fen == 2500);
  REQUIRE(v.medical_account_fen == 5000);
  REQUIRE(v.purse_fen == 7500);
  REQUIRE(v.medical_account_after_fen == 0);
  REQUIRE(v.purse_after_fen == 42500);
  REQUIRE(v.rules_version == "test-1");
  REQUIRE(voucher->signature == f.signer.Sign(voucher->signed_bytes));
  REQUIRE(VoucherSignedBytes(v) == voucher->signed_bytes);
  REQUIRE(settled->record.voucher.size() == kVoucherFixedBytes + 3 + 6 + 6 + 64);

  Bytes tampered = settled->record.voucher;
  tampered.pop_back();
  REQUIRE(ParseVoucher(tampered).status().code() == "invalid_voucher");
  tampered = settled->record.voucher;
  tampered[0] = 'X';
  REQUIRE(ParseVoucher(tampered).status().code() == "invalid_voucher");
}

TEST_CASE("A settlement with a forged card proof is refused and books nothing",
          "[core][health]") {
  HealthFixture f;
  std::vector<int64_t> before = f.Balances();
  MedicalSettleRequest r = f.Bill(f.adult, "F-1", 1000);
  Bytes body = {1, 2, 3};
  r.presence = CardPresence{body, FakeProof(f.adult, body)};
  r.presence->proof[0] ^= 1;
  auto refused = f.health.Settle(r);
  REQUIRE(refused.status().code() == "bad_card_proof");
  REQUIRE(refused.status().exit_code() == 5);
  REQUIRE(f.Balances() == before);
  r.presence->proof[0] ^= 1;
  REQUIRE(f.health.Settle(r).ok());
}

// ---- Identity checks -----------------------------------------------------------------------

IdentityQuery Query(const std::string& card_no, IdentityPurpose purpose,
                    const std::string& terminal = "hosp-t1") {
  IdentityQuery q;
  q.card_no = card_no;
  q.purpose = purpose;
  q.terminal_id = terminal;
  q.operator_id = kHospital;
  return q;
}

TEST_CASE("An identity check discloses only what the purpose needs", "[core][health]") {
  HealthFixture f;
  auto pharmacy = f.health.CheckIdentity(Query(f.adult, IdentityPurpose::pharmacy));
  REQUIRE(pharmacy.ok());
  REQUIRE(pharmacy->outcome == IdentityOutcome::valid);
  REQUIRE(pharmacy->disclosed.asked.schemes == std::vector<Scheme>{Scheme::medical});
  REQUIRE(pharmacy->disclosed.schemes == std::vector<Scheme>{Scheme::medical});
  REQUIRE_FALSE(pharmacy->disclosed.HasScheme(Scheme::pension));
  REQUIRE(pharmacy->card_status == CardStatus::active);

  auto pension = f.health.CheckIdentity(Query(f.adult, IdentityPurpose::pension_office));
  REQUIRE(pension->disclosed.schemes == std::vector<Scheme>{Scheme::pension});

  auto concession = f.health.CheckIdentity(Query(f.low_income, IdentityPurpose::transit_concession));
  REQUIRE(concession->disclosed.schemes.empty());
  REQUIRE(concession->disclosed.groups == std::vector<SpecialGroup>{SpecialGroup::low_income});
}

TEST_CASE("An identity check with a forged card proof discloses nothing", "[core][health]") {
  HealthFixture f;
  IdentityQuery q = Query(f.adult, IdentityPurpose::hospital);
  Bytes body = {9, 9, 9};
  q.presence = CardPresence{body, FakeProof(f.adult, body)};
  q.presence->proof[7] ^= 0x80;
  auto forged = f.health.CheckIdentity(q);
  REQUIRE(forged.ok());
  REQUIRE(forged->outcome == IdentityOutcome::bad_card_proof);
  REQUIRE(forged->disclosed == DisclosedFields{});
  REQUIRE_FALSE(forged->card_status.has_value());
  q.presence->proof[7] ^= 0x80;
  REQUIRE(f.health.CheckIdentity(q)->outcome == IdentityOutcome::valid);
}

TEST_CASE("Checks of unknown and blocked cards say so and disclose nothing", "[core][health]") {
  HealthFixture f;
  std::string unknown = MakeCardNumber(999'999);
  auto missing = f.health.CheckIdentity(Query(unknown, IdentityPurpose::hospital));
  REQUIRE(missing->outcome == IdentityOutcome::card_not_found);
  REQUIRE(f.office.Block(f.adult, BlockReason::stolen).ok());
  auto blocked = f.health.CheckIdentity(Query(f.adult, IdentityPurpose::hospital));
  REQUIRE(blocked->outcome == IdentityOutcome::card_not_valid);
  REQUIRE(blocked->card_status == CardStatus::blocked);
  REQUIRE(blocked->disclosed == DisclosedFields{});
  REQUIRE(f.health.CheckIdentity(Query("123", IdentityPurpose::hospital)).status().code() ==
          "invalid_card_no");
}

TEST_CASE("Checks answer with the registry in force after a re-import", "[core][health]") {
  HealthFixture f;
  REQUIRE(f.health.CheckIdentity(Query(f.adult, IdentityPurpose::pension_office))
              ->disclosed.HasScheme(Scheme::pension));
  std::string changed =
      "national_id,name,schemes,groups,medical_account\n"
      "321281199001011234,张三,medical,disabled,50.00\n";
  REQUIRE(f.office.ImportHolders(changed, false)->updated == 1);
  auto after = f.health.CheckIdentity(Query(f.adult, IdentityPurpose::pension_office));
  REQUIRE_FALSE(after->disclosed.HasScheme(Scheme::pension));
  REQUIRE(after->disclosed.groups == std::vector<SpecialGroup>{SpecialGroup::disabled});
  // The earlier check's record keeps what was answered then.
  auto trail = f.health.ListChecks({});
  REQUIRE(trail->size() == 2);
  REQUIRE((*trail)[0].disclosed.HasScheme(Scheme::pension));
}

TEST_CASE("Every check is recorded with terminal, time, purpose and result", "[core][health]") {
  HealthFixture f;
  f.clock.SetMs(kFirstSecondOf2025 * 1000);
  REQUIRE(f.health.CheckIdentity(Query(f.adult, IdentityPurpose::hospital, "t-A")).ok());
  f.clock.AdvanceMs(1000);
  REQUIRE(f.health.CheckIdentity(Query(f.low_income, IdentityPurpose::pharmacy, "t-B")).ok());
  f.clock.AdvanceMs(1000);
  std::string unknown = MakeCardNumber(999'999);
  REQUIRE(f.health.CheckIdentity(Query(unknown, IdentityPurpose::hospital, "t-A")).ok());

  auto all = f.health.ListChecks({});
  REQUIRE(all.ok());
  REQUIRE(all->size() == 3);
  const IdentityCheckRecord& first = (*all)[0];
  REQUIRE(first.id == 1);
  REQUIRE(first.time_ms == kFirstSecondOf2025 * 1000);
  REQUIRE(first.terminal_id == "t-A");
  REQUIRE(first.operator_id == kHospital);
  REQUIRE(first.card_no == f.adult);
  REQUIRE(first.purpose == IdentityPurpose::hospital);
  REQUIRE(first.outcome == IdentityOutcome::valid);
  REQUIRE(first.disclosed.schemes == std::vector<Scheme>{Scheme::medical});

  IdentityCheckFilter by_terminal;
  by_terminal.terminal_id = "t-A";
  auto a = f.health.ListChecks(by_terminal);
  REQUIRE(a->size() == 2);
  REQUIRE((*a)[1].outcome == IdentityOutcome::card_not_found);
  REQUIRE((*a)[1].time_ms == kFirstSecondOf2025 * 1000 + 2000);
  IdentityCheckFilter by_card;
  by_card.card_no = f.low_income;
  auto b = f.health.ListChecks(by_card);
  REQUIRE(b->size() == 1);
  REQUIRE((*b)[0].purpose == IdentityPurpose::pharmacy);
  REQUIRE((*b)[0].disclosed.groups == std::vector<SpecialGroup>{SpecialGroup::low_income});
}

}  // namespace
}  // namespace citycard
