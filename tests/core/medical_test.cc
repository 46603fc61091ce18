#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "core/medical.h"
#include "core/time.h"

using namespace citycard;

namespace {

// Medical outpatient: deductible ¥800, 50 %, cap ¥3,000. Assistance 50 % up to ¥100.
constexpr std::string_view kRulesJson = R"({
  "version": "test-1",
  "schemes": {
    "medical": {
      "outpatient": {"deductible": "800.00", "rate_bp": 5000, "annual_cap": "3000.00"},
      "inpatient": {"deductible": "1000.00", "rate_bp": 8500, "annual_cap": "300000.00"}
    },
    "maternity": {
      "inpatient": {"deductible": "0.00", "rate_bp": 9000, "annual_cap": "20000.00"}
    }
  },
  "assistance": {"groups": ["social_assistance", "low_income"], "rate_bp": 5000,
                 "annual_cap": "100.00"}
})";

const MedicalRules& Rules() {
  static const MedicalRules rules = *ParseMedicalRules(kRulesJson);
  return rules;
}

int64_t At(const char* local_time) { return *ParseLocalTime(local_time); }

HolderMedicalState Insured(int32_t year = 2026) {
  HolderMedicalState holder;
  holder.schemes = {Scheme::pension, Scheme::medical, Scheme::maternity};
  holder.year_to_date.year = year;
  return holder;
}

MedicalBill Outpatient(int64_t amount_fen, const char* when = "2026-06-15 10:00:00") {
  return MedicalBill{"H-1", Scheme::medical, MedicalCategory::outpatient, amount_fen, At(when)};
}

// A holder who has already paid the whole outpatient deductible this year.
HolderMedicalState PastDeductible() {
  HolderMedicalState holder = Insured();
  holder.year_to_date.at(Scheme::medical, MedicalCategory::outpatient).deductible_used_fen = 80000;
  return holder;
}

constexpr int64_t kPlenty = 1'000'000'00;

}  // namespace

TEST_CASE("A bill under the deductible is all the holder's, and the deductible is counted",
          "[core][medical]") {
  auto split = SplitBill(Rules(), Insured(), Outpatient(50000), kPlenty, kPlenty);
  REQUIRE(split.ok());
  REQUIRE(split->amount_fen == 50000);
  REQUIRE(split->deductible_fen == 50000);
  REQUIRE(split->fund_fen == 0);
  REQUIRE(split->assistance_fen == 0);
  REQUIRE(split->medical_account_fen == 50000);
  REQUIRE(split->purse_fen == 0);
  const auto& after = split->year_to_date_after;
  REQUIRE(after.year == 2026);
  REQUIRE(after.at(Scheme::medical, MedicalCategory::outpatient) == CategoryYearToDate{50000, 0});
  REQUIRE(after.at(Scheme::medical, MedicalCategory::inpatient) == CategoryYearToDate{0, 0});
}

TEST_CASE("The rest of the deductible comes first, then the rate applies to what lies above",
          "[core][medical]") {
  HolderMedicalState holder = Insured();
  holder.year_to_date.at(Scheme::medical, MedicalCategory::outpatient).deductible_used_fen = 50000;
  auto split = SplitBill(Rules(), holder, Outpatient(100000), kPlenty, kPlenty);
  REQUIRE(split.ok());
  REQUIRE(split->deductible_fen == 30000);  // ¥300 of the ¥800 left
  REQUIRE(split->fund_fen == 35000);        // 50 % of ¥700
  REQUIRE(split->medical_account_fen == 65000);
  REQUIRE(split->purse_fen == 0);
  REQUIRE(split->year_to_date_after.at(Scheme::medical, MedicalCategory::outpatient) ==
          CategoryYearToDate{80000, 35000});
}

TEST_CASE("The fund's share is rounded down so the fund never overpays", "[core][medical]") {
  auto split = SplitBill(Rules(), PastDeductible(), Outpatient(3), kPlenty, kPlenty);
  REQUIRE(split->fund_fen == 1);  // 50 % of 3 fen is 1.5 fen
  REQUIRE(split->medical_account_fen == 2);
  // Inpatient 85 % of ¥0.99 is 84.15 fen.
  MedicalBill bill{"H-2", Scheme::medical, MedicalCategory::inpatient, 100099,
                   At("2026-06-15 10:00:00")};
  split = SplitBill(Rules(), Insured(), bill, kPlenty, kPlenty);
  REQUIRE(split->deductible_fen == 100000);
  REQUIRE(split->fund_fen == 84);
  REQUIRE(split->medical_account_fen == 100015);
}

TEST_CASE("The fund pays no more than its annual cap", "[core][medical]") {
  HolderMedicalState holder = PastDeductible();
  holder.year_to_date.at(Scheme::medical, MedicalCategory::outpatient).fund_paid_fen = 299000;
  auto split = SplitBill(Rules(), holder, Outpatient(10000), kPlenty, kPlenty);
  REQUIRE(split->fund_fen == 1000);  // ¥50 by the rate, ¥10 left under the cap
  REQUIRE(split->medical_account_fen == 9000);
  REQUIRE(split->year_to_date_after.at(Scheme::medical, MedicalCategory::outpatient)
              .fund_paid_fen == 300000);
  // Once the cap is reached the holder pays everything.
  holder.year_to_date = split->year_to_date_after;
  split = SplitBill(Rules(), holder, Outpatient(10000), kPlenty, kPlenty);
  REQUIRE(split->fund_fen == 0);
  REQUIRE(split->medical_account_fen == 10000);
}

TEST_CASE("Year-to-date figures start again in a new calendar year in Shanghai",
          "[core][medical]") {
  HolderMedicalState holder = PastDeductible();
  holder.year_to_date.at(Scheme::medical, MedicalCategory::outpatient).fund_paid_fen = 300000;
  holder.year_to_date.assistance_paid_fen = 10000;
  // The last second of 2026 in Shanghai still counts against 2026: cap reached.
  auto split = SplitBill(Rules(), holder, Outpatient(100000, "2026-12-31 23:59:59"), kPlenty, kPlenty);
  REQUIRE(split->fund_fen == 0);
  REQUIRE(split->deductible_fen == 0);
  // One second later it is 2027 in Shanghai (still 2026 in UTC): deductible and cap anew.
  split = SplitBill(Rules(), holder, Outpatient(100000, "2027-01-01 00:00:00"), kPlenty, kPlenty);
  REQUIRE(split->deductible_fen == 80000);
  REQUIRE(split->fund_fen == 10000);
  REQUIRE(split->medical_account_fen == 90000);
  MedicalYearToDate expected;
  expected.year = 2027;
  expected.at(Scheme::medical, MedicalCategory::outpatient) = {80000, 10000};
  REQUIRE(split->year_to_date_after == expected);
}

TEST_CASE("A first settlement starts the figures of its year", "[core][medical]") {
  HolderMedicalState holder = Insured(0);
  auto split = SplitBill(Rules(), holder, Outpatient(100), kPlenty, kPlenty);
  REQUIRE(split->year_to_date_after.year == 2026);
}

TEST_CASE("A bill of a year before the figures' year is refused", "[core][medical]") {
  auto split = SplitBill(Rules(), Insured(2027), Outpatient(100, "2026-12-31 23:59:59"),
                         kPlenty, kPlenty);
  REQUIRE(split.status().code() == "medical_year_closed");
  REQUIRE(split.status().exit_code() == 4);
}

TEST_CASE("A medical account that cannot pay it all falls through to the purse",
          "[core][medical]") {
  auto split = SplitBill(Rules(), PastDeductible(), Outpatient(20000), 3000, 50000);
  REQUIRE(split.ok());
  REQUIRE(split->fund_fen == 10000);
  REQUIRE(split->medical_account_fen == 3000);
  REQUIRE(split->purse_fen == 7000);
  // An empty medical account: the purse pays the whole share, to the last fen.
  split = SplitBill(Rules(), PastDeductible(), Outpatient(20000), 0, 10000);
  REQUIRE(split->medical_account_fen == 0);
  REQUIRE(split->purse_fen == 10000);
}

TEST_CASE("When medical account and purse together cannot pay, the split is refused",
          "[core][medical]") {
  auto split = SplitBill(Rules(), PastDeductible(), Outpatient(20000), 3000, 6999);
  REQUIRE_FALSE(split.ok());
  REQUIRE(split.status().code() == "insufficient_funds");
  REQUIRE(split.status().exit_code() == 4);
  REQUIRE(split.status().message() ==
          "the holder's share ¥100.00 is more than the medical account ¥30.00 and the purse "
          "¥69.99 together");
  // An overdrawn purse counts as empty.
  split = SplitBill(Rules(), PastDeductible(), Outpatient(20000), 3000, -500);
  REQUIRE(split.status().message() ==
          "the holder's share ¥100.00 is more than the medical account ¥30.00 and the purse "
          "¥0.00 together");
}

TEST_CASE("Low-income and social-assistance holders get the assistance share up to its cap",
          "[core][medical]") {
  HolderMedicalState holder = PastDeductible();
  holder.groups = {SpecialGroup::low_income};
  auto split = SplitBill(Rules(), holder, Outpatient(20000), kPlenty, kPlenty);
  REQUIRE(split->fund_fen == 10000);
  REQUIRE(split->assistance_fen == 5000);  // 50 % of the holder's ¥100
  REQUIRE(split->medical_account_fen == 5000);
  REQUIRE(split->year_to_date_after.assistance_paid_fen == 5000);
  // Rounding: 7 fen -> fund 3 (of 3.5), holder 4, assistance 2, holder pays 2.
  split = SplitBill(Rules(), holder, Outpatient(7), kPlenty, kPlenty);
  REQUIRE(split->fund_fen == 3);
  REQUIRE(split->assistance_fen == 2);
  REQUIRE(split->medical_account_fen == 2);
  // The cap of ¥100 a year: ¥95 paid already leaves ¥5.
  holder.groups = {SpecialGroup::social_assistance};
  holder.year_to_date.assistance_paid_fen = 9500;
  split = SplitBill(Rules(), holder, Outpatient(20000), kPlenty, kPlenty);
  REQUIRE(split->assistance_fen == 500);
  REQUIRE(split->medical_account_fen == 9500);
  REQUIRE(split->year_to_date_after.assistance_paid_fen == 10000);
  // Other groups get none.
  holder.groups = {SpecialGroup::disabled, SpecialGroup::elderly};
  split = SplitBill(Rules(), holder, Outpatient(20000), kPlenty, kPlenty);
  REQUIRE(split->assistance_fen == 0);
}

TEST_CASE("A holder without the bill's scheme, or a category without a rule, is refused",
          "[core][medical]") {
  HolderMedicalState holder = Insured();
  holder.schemes = {Scheme::pension};
  auto split = SplitBill(Rules(), holder, Outpatient(100), kPlenty, kPlenty);
  REQUIRE(split.status().code() == "not_insured");
  REQUIRE(split.status().message() == "the holder is not insured under the medical scheme");
  MedicalBill bill{"H-3", Scheme::maternity, MedicalCategory::drugs, 100, At("2026-06-15 10:00:00")};
  split = SplitBill(Rules(), Insured(), bill, kPlenty, kPlenty);
  REQUIRE(split.status().code() == "not_covered");
  REQUIRE(split.status().message() == "the maternity scheme has no rule for drugs");
}

TEST_CASE("Bills of nothing or of more than the largest amount are refused", "[core][medical]") {
  for (int64_t amount : {int64_t{0}, int64_t{-1}, kAmountFenMax + 1}) {
    auto split = SplitBill(Rules(), Insured(), Outpatient(amount), kPlenty, kPlenty);
    REQUIRE(split.status().code() == "invalid_amount");
    REQUIRE(split.status().exit_code() == 5);
  }
  auto split = SplitBill(Rules(), Insured(), Outpatient(kAmountFenMax), kAmountFenMax, 0);
  REQUIRE(split.ok());
}

TEST_CASE("Another scheme's figures are kept apart", "[core][medical]") {
  MedicalBill bill{"H-4", Scheme::maternity, MedicalCategory::inpatient, 1000000,
                   At("2026-06-15 10:00:00")};
  auto split = SplitBill(Rules(), PastDeductible(), bill, kPlenty, kPlenty);
  REQUIRE(split->fund_fen == 900000);
  REQUIRE(split->year_to_date_after.at(Scheme::maternity, MedicalCategory::inpatient) ==
          CategoryYearToDate{0, 900000});
  REQUIRE(split->year_to_date_after.at(Scheme::medical, MedicalCategory::outpatient) ==
          CategoryYearToDate{80000, 0});
}

// ---- Splits computed by the hospital ------------------------------------------------------

TEST_CASE("A provided split that adds up and can be paid is accepted as given",
          "[core][medical]") {
  HolderMedicalState holder = PastDeductible();
  holder.groups = {SpecialGroup::low_income};
  ProvidedSplit provided{100, 12000, 3000, 4000, 1000};
  auto split = CheckProvidedSplit(Rules(), holder, Outpatient(20000), provided, 4000, 1000);
  REQUIRE(split.ok());
  REQUIRE(split->fund_fen == 12000);
  REQUIRE(split->assistance_fen == 3000);
  REQUIRE(split->medical_account_fen == 4000);
  REQUIRE(split->purse_fen == 1000);
  REQUIRE(split->year_to_date_after.at(Scheme::medical, MedicalCategory::outpatient) ==
          CategoryYearToDate{80100, 12000});
  REQUIRE(split->year_to_date_after.assistance_paid_fen == 3000);
}

TEST_CASE("A provided split that does not add up or has a negative part is refused",
          "[core][medical]") {
  auto check = [](ProvidedSplit provided) {
    return CheckProvidedSplit(Rules(), PastDeductible(), Outpatient(20000), provided, kPlenty,
                              kPlenty);
  };
  auto split = check({0, 10000, 0, 9999, 0});
  REQUIRE(split.status().code() == "invalid_split");
  REQUIRE(split.status().message() == "the parts add up to ¥199.99, the bill is ¥200.00");
  split = check({0, 20001, 0, -1, 0});
  REQUIRE(split.status().message() == "every part must be 0 or more");
  split = check({20001, 10000, 0, 10000, 0});
  REQUIRE(split.status().message() == "the deductible part is more than the bill");
  split = check({0, 10000, 5000, 5000, 0});
  REQUIRE(split.status().message() == "assistance for a holder who is in no assistance group");
  split = check({0, 10000, 0, 5000, 5000});
  REQUIRE(split.status().message() == "the purse pays while the medical account could pay more");
  REQUIRE(split.status().exit_code() == 5);
}

TEST_CASE("A provided split the accounts cannot pay is refused", "[core][medical]") {
  auto split = CheckProvidedSplit(Rules(), PastDeductible(), Outpatient(20000),
                                  {0, 10000, 0, 6000, 4000}, 5000, 10000);
  REQUIRE(split.status().code() == "insufficient_funds");
  REQUIRE(split.status().message() ==
          "the medical account has ¥50.00 for a part of ¥60.00, the purse ¥100.00 for a part of ¥40.00");
  split = CheckProvidedSplit(Rules(), PastDeductible(), Outpatient(20000),
                             {0, 10000, 0, 5000, 5000}, 5000, 4999);
  REQUIRE(split.status().code() == "insufficient_funds");
}

TEST_CASE("A provided split is refused for the uninsured and for a closed year",
          "[core][medical]") {
  HolderMedicalState holder = Insured();
  holder.schemes = {};
  auto split = CheckProvidedSplit(Rules(), holder, Outpatient(100), {0, 0, 0, 100, 0}, kPlenty, 0);
  REQUIRE(split.status().code() == "not_insured");
  split = CheckProvidedSplit(Rules(), Insured(2027), Outpatient(100), {0, 0, 0, 100, 0}, kPlenty, 0);
  REQUIRE(split.status().code() == "medical_year_closed");
  // A new year starts the figures over for a provided split too.
  split = CheckProvidedSplit(Rules(), PastDeductible(), Outpatient(100, "2027-03-01 08:00:00"),
                             {100, 0, 0, 100, 0}, kPlenty, 0);
  REQUIRE(split->year_to_date_after.year == 2027);
  REQUIRE(split->year_to_date_after.at(Scheme::medical, MedicalCategory::outpatient) ==
          CategoryYearToDate{100, 0});
}

// ---- Rules file -----------------------------------------------------------------------------

TEST_CASE("The rules file gives exact amounts and rates per scheme and category",
          "[core][medical]") {
  const MedicalRules& rules = Rules();
  REQUIRE(rules.version == "test-1");
  REQUIRE(rules.rule(Scheme::medical, MedicalCategory::outpatient) ==
          CategoryRule{true, 80000, 5000, 300000});
  REQUIRE(rules.rule(Scheme::medical, MedicalCategory::inpatient) ==
          CategoryRule{true, 100000, 8500, 30000000});
  REQUIRE_FALSE(rules.rule(Scheme::medical, MedicalCategory::drugs).covered);
  REQUIRE_FALSE(rules.rule(Scheme::pension, MedicalCategory::outpatient).covered);
  REQUIRE(rules.assistance ==
          AssistanceRule{{SpecialGroup::low_income, SpecialGroup::social_assistance}, 5000, 10000});
}

TEST_CASE("The example rules file in docs is valid", "[core][medical]") {
  std::ifstream in(std::string(CITYCARD_SOURCE_DIR) + "/docs/examples/medical-schemes.json");
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  auto rules = ParseMedicalRules(text.str());
  REQUIRE(rules.ok());
  REQUIRE(rules->version == "hz-2026-01");
  REQUIRE(rules->rule(Scheme::medical, MedicalCategory::drugs) == CategoryRule{true, 0, 7000, 500000});
  REQUIRE(rules->rule(Scheme::work_injury, MedicalCategory::inpatient) ==
          CategoryRule{true, 0, 10000, 100000000});
  REQUIRE_FALSE(rules->rule(Scheme::maternity, MedicalCategory::drugs).covered);
}

TEST_CASE("A rules file with mistakes is refused with the place of the mistake",
          "[core][medical]") {
  auto message = [](std::string json) {
    auto rules = ParseMedicalRules(json);
    REQUIRE_FALSE(rules.ok());
    REQUIRE(rules.status().code() == "invalid_medical_rules");
    REQUIRE(rules.status().exit_code() == 5);
    return rules.status().message();
  };
  const std::string assistance =
      R"("assistance": {"groups": [], "rate_bp": 0, "annual_cap": "0.00"})";
  auto with_rule = [&](std::string rule) {
    return R"({"version": "v", "schemes": {"medical": {"drugs": )" + rule + "}}, " + assistance + "}";
  };
  REQUIRE(message("{") == "file: not valid JSON");
  REQUIRE(message("[]") == "file: must be a JSON object");
  REQUIRE(message(R"({"schemes": {}, )" + assistance + "}") == "file: missing key 'version'");
  REQUIRE(message(R"({"version": "v", "scheme": {}, "schemes": {}, )" + assistance + "}") ==
          "file: unknown key 'scheme'");
  REQUIRE(message(R"({"version": "", "schemes": {}, )" + assistance + "}") ==
          "version: must be a string of 1 to 64 bytes");
  REQUIRE(message(R"({"version": "v", "schemes": {"dental": {}}, )" + assistance + "}") ==
          "schemes.dental: unknown scheme");
  REQUIRE(message(R"({"version": "v", "schemes": {"medical": {"surgery": {}}}, )" + assistance + "}") ==
          "schemes.medical.surgery: unknown category");
  REQUIRE(message(with_rule(R"({"deductible": "0.00", "rate_bp": 10001, "annual_cap": "1.00"})")) ==
          "schemes.medical.drugs.rate_bp: must be an integer from 0 to 10000 (basis points)");
  REQUIRE(message(with_rule(R"({"deductible": "0.00", "rate_bp": 50.5, "annual_cap": "1.00"})")) ==
          "schemes.medical.drugs.rate_bp: must be an integer from 0 to 10000 (basis points)");
  REQUIRE(message(with_rule(R"({"deductible": "12.505", "rate_bp": 1, "annual_cap": "1.00"})")) ==
          "schemes.medical.drugs.deductible: '12.505' is not an amount in yuan with at most two decimals");
  REQUIRE(message(with_rule(R"({"deductible": 800, "rate_bp": 1, "annual_cap": "1.00"})")) ==
          "schemes.medical.drugs.deductible: must be an amount in yuan as a string, like \"800.00\"");
  REQUIRE(message(with_rule(R"({"deductible": "0.00", "rate_bp": 1})")) ==
          "schemes.medical.drugs: missing key 'annual_cap'");
  REQUIRE(message(R"({"version": "v", "schemes": {}, "assistance": {"groups": ["poor"], "rate_bp": 0, "annual_cap": "0.00"}})") ==
          "assistance.groups: unknown group \"poor\"");
  REQUIRE(message(R"({"version": "v", "schemes": {}, "assistance": {"groups": ["elderly", "elderly"], "rate_bp": 0, "annual_cap": "0.00"}})") ==
          "assistance.groups: group \"elderly\" given twice");
  REQUIRE(message(std::string(kMedicalRulesBytesMax + 1, ' ')) ==
          "file: longer than 1048576 bytes");
}

TEST_CASE("Category names are stable", "[core][medical]") {
  REQUIRE(MedicalCategoryName(MedicalCategory::outpatient) == "outpatient");
  REQUIRE(MedicalCategoryName(MedicalCategory::inpatient) == "inpatient");
  REQUIRE(MedicalCategoryName(MedicalCategory::drugs) == "drugs");
  REQUIRE(ParseMedicalCategory("drugs") == MedicalCategory::drugs);
  REQUIRE_FALSE(ParseMedicalCategory("Drugs").has_value());
}

TEST_CASE("The Shanghai year of a moment changes at local midnight", "[core][medical]") {
  REQUIRE(ShanghaiYear(0) == 1970);
  REQUIRE(ShanghaiYear(At("2026-12-31 23:59:59")) == 2026);
  REQUIRE(ShanghaiYear(At("2027-01-01 00:00:00")) == 2027);
  REQUIRE(ShanghaiYear(At("2024-12-31 12:00:00")) == 2024);  // a leap year's last day
  REQUIRE(ShanghaiYear(At("2100-03-01 00:00:00")) == 2100);
  REQUIRE(ShanghaiYear(-8 * 3600 - 1) == 1969);
}

TEST_CASE("The worked example of docs/medical.md comes out to the fen", "[core][medical]") {
  std::ifstream in(std::string(CITYCARD_SOURCE_DIR) + "/docs/examples/medical-schemes.json");
  std::stringstream text;
  text << in.rdbuf();
  MedicalRules rules = *ParseMedicalRules(text.str());
  HolderMedicalState holder = Insured();
  holder.year_to_date.at(Scheme::medical, MedicalCategory::outpatient).deductible_used_fen = 50000;
  auto split = SplitBill(rules, holder, Outpatient(100000), 30000, 100000);
  REQUIRE(split.ok());
  REQUIRE(split->deductible_fen == 30000);
  REQUIRE(split->fund_fen == 35000);
  REQUIRE(split->assistance_fen == 0);
  REQUIRE(split->medical_account_fen == 30000);
  REQUIRE(split->purse_fen == 35000);
  REQUIRE(split->year_to_date_after.at(Scheme::medical, MedicalCategory::outpatient) ==
          CategoryYearToDate{80000, 35000});
}
