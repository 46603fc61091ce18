// Medical settlement, the pure part: the scheme rules file (docs/medical.md, example in
// docs/examples/medical-schemes.json) and how a hospital bill is split between the insurance
// fund, the medical assistance fund, the holder's medical account and the purse.
//
// Nothing here books anything. A split is what the settlement books as one linked group of
// transfers (all or nothing), together with the holder's new year-to-date figures; a refusal
// means nothing is to be booked.
//
// Rounding (integer fen, never a floating-point number): the fund's share and the assistance
// share are rounded down (floor), so neither fund ever pays a fen more than its rate says;
// the fen left over is the holder's. Every figure is exact and the parts always add up to the
// bill.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/money.h"
#include "core/registry.h"
#include "core/status.h"

namespace citycard {

// Treatment categories. Stored numbers; never renumber.
enum class MedicalCategory : uint8_t {
  outpatient = 1,
  inpatient = 2,
  drugs = 3,
};
inline constexpr size_t kMedicalCategoryCount = 3;
// Scheme numbers run from 1 to this (core/registry.h).
inline constexpr size_t kSchemeCount = 5;
static_assert(static_cast<size_t>(Scheme::maternity) == kSchemeCount);

// "outpatient", "inpatient", "drugs".
std::string_view MedicalCategoryName(MedicalCategory category);
std::optional<MedicalCategory> ParseMedicalCategory(std::string_view name);

// 10,000 basis points are 100 %.
inline constexpr int32_t kBasisPointsMax = 10'000;
// The largest rules file read.
inline constexpr size_t kMedicalRulesBytesMax = 1 << 20;
// The longest rules version string.
inline constexpr size_t kMedicalRulesVersionBytesMax = 64;

// What one scheme pays in one category.
struct CategoryRule {
  bool covered = false;         // false: the scheme pays nothing in this category (no rule)
  int64_t deductible_fen = 0;   // per holder and calendar year, paid by the holder first
  int32_t rate_bp = 0;          // the fund's share of what lies above the deductible
  int64_t annual_cap_fen = 0;   // the most the fund pays per holder and calendar year

  friend bool operator==(const CategoryRule&, const CategoryRule&) = default;
};

// The medical assistance fund: for holders in one of `groups`, a further share of what the
// insurance fund leaves to the holder (deductible included).
struct AssistanceRule {
  std::vector<SpecialGroup> groups;  // ascending, no duplicates
  int32_t rate_bp = 0;
  int64_t annual_cap_fen = 0;        // per holder and calendar year, all schemes together

  friend bool operator==(const AssistanceRule&, const AssistanceRule&) = default;
};

struct MedicalRules {
  std::string version;  // the file's "version", recorded with every settlement
  // [scheme number - 1][category number - 1]; uncovered where the file has no rule.
  std::array<std::array<CategoryRule, kMedicalCategoryCount>, kSchemeCount> rules{};
  AssistanceRule assistance;

  const CategoryRule& rule(Scheme scheme, MedicalCategory category) const;
  CategoryRule& rule(Scheme scheme, MedicalCategory category);
  friend bool operator==(const MedicalRules&, const MedicalRules&) = default;
};

// Reads a rules file (docs/medical.md). Refuses, with Kind::bad_input
// "invalid_medical_rules" and a message naming the place (such as
// "schemes.medical.drugs.rate_bp: ..."): text that is not JSON or longer than
// kMedicalRulesBytesMax, unknown or missing keys, unknown scheme, category or group names,
// amounts that ParseYuan refuses, rates outside 0..kBasisPointsMax.
Result<MedicalRules> ParseMedicalRules(std::string_view json);

// The holder's figures for one calendar year (Asia/Shanghai).
struct CategoryYearToDate {
  int64_t deductible_used_fen = 0;  // how much of the deductible the holder has paid
  int64_t fund_paid_fen = 0;        // how much the fund has paid (against the cap)

  friend bool operator==(const CategoryYearToDate&, const CategoryYearToDate&) = default;
};

struct MedicalYearToDate {
  int32_t year = 0;  // the calendar year of the figures; 0 before the first settlement
  std::array<std::array<CategoryYearToDate, kMedicalCategoryCount>, kSchemeCount> by_category{};
  int64_t assistance_paid_fen = 0;

  const CategoryYearToDate& at(Scheme scheme, MedicalCategory category) const;
  CategoryYearToDate& at(Scheme scheme, MedicalCategory category);
  friend bool operator==(const MedicalYearToDate&, const MedicalYearToDate&) = default;
};

// What the split needs to know about the holder: the schemes and groups in force (from the
// registry) and the year-to-date figures as stored.
struct HolderMedicalState {
  std::vector<Scheme> schemes;
  std::vector<SpecialGroup> groups;
  MedicalYearToDate year_to_date;
};

struct MedicalBill {
  std::string bill_id;  // the hospital's id
  Scheme scheme = Scheme::medical;
  MedicalCategory category = MedicalCategory::outpatient;
  int64_t amount_fen = 0;       // 1 to kAmountFenMax
  int64_t settled_at_unix = 0;  // when it is settled (the core's clock): picks the year
};

struct MedicalSplit {
  int64_t amount_fen = 0;           // the bill
  int64_t deductible_fen = 0;       // the part under the deductible (inside the holder's share)
  int64_t fund_fen = 0;             // paid by the insurance fund
  int64_t assistance_fen = 0;       // paid by the medical assistance fund
  int64_t medical_account_fen = 0;  // paid from the holder's medical account
  int64_t purse_fen = 0;            // paid from the card's purse
  MedicalYearToDate year_to_date_after;  // to store when the split is booked

  friend bool operator==(const MedicalSplit&, const MedicalSplit&) = default;
};

// The calendar year (Asia/Shanghai) that a moment falls in.
int32_t ShanghaiYear(int64_t unix_seconds);

// Splits a bill by the rules:
//   deductible = min(amount, deductible left this year)
//   fund       = min(floor((amount - deductible) * rate_bp / 10000), cap left this year)
//   assistance = min(floor((amount - fund) * assistance rate_bp / 10000), its cap left),
//                only for holders in an assistance group
//   the rest from the medical account as far as it goes, then from the purse.
// The year-to-date figures start again from zero when the bill's year is later than theirs.
// Negative available amounts (an overdrawn purse) count as zero.
// Refusals (nothing is to be booked):
// - Kind::bad_input "invalid_amount": amount not in 1..kAmountFenMax.
// - Kind::refused "not_insured": the holder does not have the bill's scheme.
// - Kind::refused "not_covered": the rules have no rule for the scheme and category.
// - Kind::refused "medical_year_closed": the bill's year is before the figures' year.
// - Kind::refused "insufficient_funds": the medical account and the purse together cannot
//   pay the holder's share; the message gives the share and what is available.
Result<MedicalSplit> SplitBill(const MedicalRules& rules, const HolderMedicalState& holder,
                               const MedicalBill& bill, int64_t medical_account_available_fen,
                               int64_t purse_available_fen);

// A split computed by the hospital's own insurance system.
struct ProvidedSplit {
  int64_t deductible_fen = 0;
  int64_t fund_fen = 0;
  int64_t assistance_fen = 0;
  int64_t medical_account_fen = 0;
  int64_t purse_fen = 0;
};

// Checks a provided split and turns it into a MedicalSplit with the new year-to-date figures
// (deductible, fund and assistance added as given). The rates and caps are the hospital's
// system's business and are not recomputed. Refusals:
// - Kind::bad_input "invalid_amount": as SplitBill.
// - Kind::bad_input "invalid_split": a negative part; fund + assistance + medical account +
//   purse is not the amount; the deductible is more than the amount; assistance for a holder
//   in no assistance group; the purse used while the medical account could pay more.
// - Kind::refused "not_insured", "medical_year_closed": as SplitBill.
// - Kind::refused "insufficient_funds": the medical account or the purse cannot pay its part.
Result<MedicalSplit> CheckProvidedSplit(const MedicalRules& rules,
                                        const HolderMedicalState& holder,
                                        const MedicalBill& bill, const ProvidedSplit& provided,
                                        int64_t medical_account_available_fen,
                                        int64_t purse_available_fen);

}  // namespace citycard
