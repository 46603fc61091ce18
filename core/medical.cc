#include "core/medical.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/money.h"
#include "core/time.h"

namespace citycard {

namespace {

using Json = nlohmann::json;

size_t SchemeIndex(Scheme scheme) {
  size_t number = static_cast<size_t>(scheme);
  CITYCARD_ASSERT(number >= 1 && number <= kSchemeCount);
  return number - 1;
}

size_t CategoryIndex(MedicalCategory category) {
  size_t number = static_cast<size_t>(category);
  CITYCARD_ASSERT(number >= 1 && number <= kMedicalCategoryCount);
  return number - 1;
}

// ---- Rules file ------------------------------------------------------------------------

Status RulesError(std::string_view where, std::string_view what) {
  return Status::BadInput("invalid_medical_rules", fmt::format("{}: {}", where, what));
}

// Refuses any key of `object` that is not in `allowed`: a misspelt key would otherwise be
// silently ignored and a rule silently left out.
Status CheckKeys(const Json& object, std::string_view where,
                 std::initializer_list<std::string_view> allowed) {
  for (const auto& item : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
      return RulesError(where, fmt::format("unknown key '{}'", item.key()));
    }
  }
  for (std::string_view key : allowed) {
    if (!object.contains(std::string(key))) {
      return RulesError(where, fmt::format("missing key '{}'", key));
    }
  }
  return Status::Ok();
}

Result<int64_t> ReadYuan(const Json& object, std::string_view key, std::string_view where) {
  const Json& value = object.at(std::string(key));
  std::string place = fmt::format("{}.{}", where, key);
  if (!value.is_string()) return RulesError(place, "must be an amount in yuan as a string, like \"800.00\"");
  Result<int64_t> fen = ParseYuan(value.get<std::string>());
  if (!fen.ok()) return RulesError(place, fen.status().message());
  return fen;
}

Result<int32_t> ReadRate(const Json& object, std::string_view where) {
  const Json& value = object.at("rate_bp");
  std::string place = fmt::format("{}.rate_bp", where);
  if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
      value.get<int64_t>() > kBasisPointsMax) {
    return RulesError(place, fmt::format("must be an integer from 0 to {} (basis points)",
                                         kBasisPointsMax));
  }
  return static_cast<int32_t>(value.get<int64_t>());
}

Result<CategoryRule> ReadCategoryRule(const Json& object, std::string_view where) {
  if (!object.is_object()) return RulesError(where, "must be an object");
  CITYCARD_RETURN_IF_ERROR(CheckKeys(object, where, {"deductible", "rate_bp", "annual_cap"}));
  Result<int64_t> deductible = ReadYuan(object, "deductible", where);
  if (!deductible.ok()) return deductible.status();
  Result<int32_t> rate = ReadRate(object, where);
  if (!rate.ok()) return rate.status();
  Result<int64_t> cap = ReadYuan(object, "annual_cap", where);
  if (!cap.ok()) return cap.status();
  return CategoryRule{true, *deductible, *rate, *cap};
}

Status ReadSchemes(const Json& schemes, MedicalRules* rules) {
  if (!schemes.is_object()) return RulesError("schemes", "must be an object");
  for (const auto& [scheme_name, categories] : schemes.items()) {
    std::string where = fmt::format("schemes.{}", scheme_name);
    std::optional<Scheme> scheme = ParseScheme(scheme_name);
    if (!scheme) return RulesError(where, "unknown scheme");
    if (!categories.is_object()) return RulesError(where, "must be an object");
    for (const auto& [category_name, rule_json] : categories.items()) {
      std::string place = fmt::format("{}.{}", where, category_name);
      std::optional<MedicalCategory> category = ParseMedicalCategory(category_name);
      if (!category) return RulesError(place, "unknown category");
      Result<CategoryRule> rule = ReadCategoryRule(rule_json, place);
      if (!rule.ok()) return rule.status();
      rules->rule(*scheme, *category) = *rule;
    }
  }
  return Status::Ok();
}

Status ReadAssistance(const Json& object, AssistanceRule* assistance) {
  if (!object.is_object()) return RulesError("assistance", "must be an object");
  CITYCARD_RETURN_IF_ERROR(CheckKeys(object, "assistance", {"groups", "rate_bp", "annual_cap"}));
  const Json& groups = object.at("groups");
  if (!groups.is_array()) return RulesError("assistance.groups", "must be a list of group names");
  for (const Json& name : groups) {
    std::optional<SpecialGroup> group;
    if (name.is_string()) group = ParseSpecialGroup(name.get<std::string>());
    if (!group) return RulesError("assistance.groups", fmt::format("unknown group {}", name.dump()));
    if (std::find(assistance->groups.begin(), assistance->groups.end(), *group) !=
        assistance->groups.end()) {
      return RulesError("assistance.groups", fmt::format("group {} given twice", name.dump()));
    }
    assistance->groups.push_back(*group);
  }
  std::sort(assistance->groups.begin(), assistance->groups.end());
  Result<int32_t> rate = ReadRate(object, "assistance");
  if (!rate.ok()) return rate.status();
  Result<int64_t> cap = ReadYuan(object, "annual_cap", "assistance");
  if (!cap.ok()) return cap.status();
  assistance->rate_bp = *rate;
  assistance->annual_cap_fen = *cap;
  return Status::Ok();
}

// ---- Split -------------------------------------------------------------------------------

// floor(amount * rate_bp / 10000) for non-negative amounts; cannot overflow because amounts
// are at most kAmountFenMax (1e10) and rates at most 1e4.
int64_t ShareOf(int64_t amount_fen, int32_t rate_bp) {
  CITYCARD_ASSERT(amount_fen >= 0 && amount_fen <= kAmountFenMax);
  CITYCARD_ASSERT(rate_bp >= 0 && rate_bp <= kBasisPointsMax);
  return amount_fen * rate_bp / kBasisPointsMax;
}

bool Has(const std::vector<Scheme>& schemes, Scheme scheme) {
  return std::find(schemes.begin(), schemes.end(), scheme) != schemes.end();
}

bool InAssistanceGroup(const AssistanceRule& assistance, const std::vector<SpecialGroup>& groups) {
  return std::any_of(groups.begin(), groups.end(), [&](SpecialGroup group) {
    return std::find(assistance.groups.begin(), assistance.groups.end(), group) !=
           assistance.groups.end();
  });
}

void CheckYearToDate(const MedicalYearToDate& ytd) {
  // Stored figures are sums of non-negative parts; anything else is a corrupt store.
  CITYCARD_ASSERT(ytd.assistance_paid_fen >= 0);
  for (const auto& categories : ytd.by_category) {
    for (const CategoryYearToDate& figures : categories) {
      CITYCARD_ASSERT(figures.deductible_used_fen >= 0 && figures.fund_paid_fen >= 0);
    }
  }
}

// The checks both kinds of split share, and the year-to-date figures the bill starts from.
Result<MedicalYearToDate> StartingFigures(const HolderMedicalState& holder,
                                          const MedicalBill& bill) {
  if (bill.amount_fen <= 0 || bill.amount_fen > kAmountFenMax) {
    return Status::BadInput("invalid_amount",
                            fmt::format("a bill of {} yuan cannot be settled", FormatYuan(bill.amount_fen)));
  }
  if (!Has(holder.schemes, bill.scheme)) {
    return Status::Refused("not_insured", fmt::format("the holder is not insured under the {} scheme",
                                                      SchemeName(bill.scheme)));
  }
  CheckYearToDate(holder.year_to_date);
  int32_t year = ShanghaiYear(bill.settled_at_unix);
  if (year < holder.year_to_date.year) {
    return Status::Refused("medical_year_closed",
                           fmt::format("a bill of {} cannot be settled after the figures of {} began",
                                       year, holder.year_to_date.year));
  }
  if (year > holder.year_to_date.year) {
    MedicalYearToDate fresh;
    fresh.year = year;
    return fresh;
  }
  return holder.year_to_date;
}

Status InsufficientFunds(int64_t holder_share_fen, int64_t medical_available_fen,
                         int64_t purse_available_fen) {
  return Status::Refused(
      "insufficient_funds",
      fmt::format("the holder's share {} is more than the medical account {} and the purse {} "
                  "together",
                  FormatYuanSign(holder_share_fen), FormatYuanSign(medical_available_fen),
                  FormatYuanSign(purse_available_fen)));
}

}  // namespace

std::string_view MedicalCategoryName(MedicalCategory category) {
  switch (category) {
    case MedicalCategory::outpatient: return "outpatient";
    case MedicalCategory::inpatient: return "inpatient";
    case MedicalCategory::drugs: return "drugs";
  }
  return "unknown";
}

std::optional<MedicalCategory> ParseMedicalCategory(std::string_view name) {
  for (size_t number = 1; number <= kMedicalCategoryCount; ++number) {
    auto category = static_cast<MedicalCategory>(number);
    if (MedicalCategoryName(category) == name) return category;
  }
  return std::nullopt;
}

const CategoryRule& MedicalRules::rule(Scheme scheme, MedicalCategory category) const {
  return rules[SchemeIndex(scheme)][CategoryIndex(category)];
}
CategoryRule& MedicalRules::rule(Scheme scheme, MedicalCategory category) {
  return rules[SchemeIndex(scheme)][CategoryIndex(category)];
}
const CategoryYearToDate& MedicalYearToDate::at(Scheme scheme, MedicalCategory category) const {
  return by_category[SchemeIndex(scheme)][CategoryIndex(category)];
}
CategoryYearToDate& MedicalYearToDate::at(Scheme scheme, MedicalCategory category) {
  return by_category[SchemeIndex(scheme)][CategoryIndex(category)];
}

Result<MedicalRules> ParseMedicalRules(std::string_view json) {
  if (json.size() > kMedicalRulesBytesMax) {
    return RulesError("file", fmt::format("longer than {} bytes", kMedicalRulesBytesMax));
  }
  Json root = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return RulesError("file", "not valid JSON");
  if (!root.is_object()) return RulesError("file", "must be a JSON object");
  CITYCARD_RETURN_IF_ERROR(CheckKeys(root, "file", {"version", "schemes", "assistance"}));
  MedicalRules rules;
  const Json& version = root.at("version");
  if (!version.is_string() || version.get<std::string>().empty() ||
      version.get<std::string>().size() > kMedicalRulesVersionBytesMax) {
    return RulesError("version", fmt::format("must be a string of 1 to {} bytes",
                                             kMedicalRulesVersionBytesMax));
  }
  rules.version = version.get<std::string>();
  CITYCARD_RETURN_IF_ERROR(ReadSchemes(root.at("schemes"), &rules));
  CITYCARD_RETURN_IF_ERROR(ReadAssistance(root.at("assistance"), &rules.assistance));
  return rules;
}

int32_t ShanghaiYear(int64_t unix_seconds) {
  // The local civil day, then its year: years are 365 or 366 days, so start from an estimate
  // and correct it against the exact first day of the year.
  int64_t day = ClearingDay(unix_seconds);
  int64_t year = 1970 + (day >= 0 ? day / 366 : day / 365 - 1);
  while (DaysFromCivil(year + 1, 1, 1) <= day) ++year;
  while (DaysFromCivil(year, 1, 1) > day) --year;
  return static_cast<int32_t>(year);
}

Result<MedicalSplit> SplitBill(const MedicalRules& rules, const HolderMedicalState& holder,
                               const MedicalBill& bill, int64_t medical_account_available_fen,
                               int64_t purse_available_fen) {
  Result<MedicalYearToDate> start = StartingFigures(holder, bill);
  if (!start.ok()) return start.status();
  const CategoryRule& rule = rules.rule(bill.scheme, bill.category);
  if (!rule.covered) {
    return Status::Refused("not_covered",
                           fmt::format("the {} scheme has no rule for {}", SchemeName(bill.scheme),
                                       MedicalCategoryName(bill.category)));
  }
  MedicalSplit split;
  split.amount_fen = bill.amount_fen;
  split.year_to_date_after = std::move(start).value();
  CategoryYearToDate& figures = split.year_to_date_after.at(bill.scheme, bill.category);

  int64_t deductible_left = std::max<int64_t>(0, rule.deductible_fen - figures.deductible_used_fen);
  split.deductible_fen = std::min(bill.amount_fen, deductible_left);
  int64_t cap_left = std::max<int64_t>(0, rule.annual_cap_fen - figures.fund_paid_fen);
  split.fund_fen = std::min(ShareOf(bill.amount_fen - split.deductible_fen, rule.rate_bp), cap_left);

  int64_t holder_share = bill.amount_fen - split.fund_fen;
  if (InAssistanceGroup(rules.assistance, holder.groups)) {
    const AssistanceRule& assistance = rules.assistance;
    int64_t assistance_left = std::max<int64_t>(
        0, assistance.annual_cap_fen - split.year_to_date_after.assistance_paid_fen);
    split.assistance_fen = std::min(ShareOf(holder_share, assistance.rate_bp), assistance_left);
  }
  int64_t to_pay = holder_share - split.assistance_fen;
  int64_t medical_available = std::max<int64_t>(0, medical_account_available_fen);
  int64_t purse_available = std::max<int64_t>(0, purse_available_fen);
  split.medical_account_fen = std::min(to_pay, medical_available);
  split.purse_fen = to_pay - split.medical_account_fen;
  if (split.purse_fen > purse_available) {
    return InsufficientFunds(to_pay, medical_available, purse_available);
  }

  figures.deductible_used_fen += split.deductible_fen;
  figures.fund_paid_fen += split.fund_fen;
  split.year_to_date_after.assistance_paid_fen += split.assistance_fen;
  CITYCARD_ASSERT(split.fund_fen + split.assistance_fen + split.medical_account_fen +
                      split.purse_fen == split.amount_fen);
  return split;
}

Result<MedicalSplit> CheckProvidedSplit(const MedicalRules& rules,
                                        const HolderMedicalState& holder,
                                        const MedicalBill& bill, const ProvidedSplit& provided,
                                        int64_t medical_account_available_fen,
                                        int64_t purse_available_fen) {
  Result<MedicalYearToDate> start = StartingFigures(holder, bill);
  if (!start.ok()) return start.status();
  const ProvidedSplit& p = provided;
  auto invalid = [](std::string message) {
    return Status::BadInput("invalid_split", std::move(message));
  };
  for (int64_t part : {p.deductible_fen, p.fund_fen, p.assistance_fen, p.medical_account_fen,
                       p.purse_fen}) {
    if (part < 0 || part > kAmountFenMax) return invalid("every part must be 0 or more");
  }
  int64_t sum = p.fund_fen + p.assistance_fen + p.medical_account_fen + p.purse_fen;
  if (sum != bill.amount_fen) {
    return invalid(fmt::format("the parts add up to {}, the bill is {}", FormatYuanSign(sum),
                               FormatYuanSign(bill.amount_fen)));
  }
  if (p.deductible_fen > bill.amount_fen) {
    return invalid("the deductible part is more than the bill");
  }
  if (p.assistance_fen > 0 && !InAssistanceGroup(rules.assistance, holder.groups)) {
    return invalid("assistance for a holder who is in no assistance group");
  }
  int64_t medical_available = std::max<int64_t>(0, medical_account_available_fen);
  int64_t purse_available = std::max<int64_t>(0, purse_available_fen);
  if (p.medical_account_fen > medical_available || p.purse_fen > purse_available) {
    return Status::Refused(
        "insufficient_funds",
        fmt::format("the medical account has {} for a part of {}, the purse {} for a part of {}",
                    FormatYuanSign(medical_available), FormatYuanSign(p.medical_account_fen),
                    FormatYuanSign(purse_available), FormatYuanSign(p.purse_fen)));
  }
  if (p.purse_fen > 0 && p.medical_account_fen < medical_available) {
    return invalid("the purse pays while the medical account could pay more");
  }
  MedicalSplit split{bill.amount_fen, p.deductible_fen, p.fund_fen, p.assistance_fen,
                     p.medical_account_fen, p.purse_fen, std::move(start).value()};
  CategoryYearToDate& figures = split.year_to_date_after.at(bill.scheme, bill.category);
  figures.deductible_used_fen += p.deductible_fen;
  figures.fund_paid_fen += p.fund_fen;
  split.year_to_date_after.assistance_paid_fen += p.assistance_fen;
  return split;
}

}  // namespace citycard
