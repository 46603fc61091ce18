// Identity checks and medical settlement at a counter (docs/medical.md "Commands"):
//   citycard identity check CARD_NO --purpose P
//   citycard audit identity [--card N] [--terminal T] [--limit N]
//   citycard medical rules load FILE.json | medical rules show
//   citycard medical settle CARD_NO --hospital OPERATOR_ID --bill-id ID --scheme S
//                           --category C --amount YUAN [--split-fund YUAN --split-assistance YUAN
//                           --split-account YUAN --split-purse YUAN --split-deductible YUAN]
//   citycard medical show BILL_ID [--hospital OPERATOR_ID]
//   citycard medical reverse BILL_ID [--hospital OPERATOR_ID]
#include <fmt/format.h>

#include "core/money.h"
#include "core/time.h"
#include "tools/cli/commands.h"
#include "tools/cli/environment.h"
#include "tools/cli/files.h"
#include "tools/cli/format.h"
#include "tools/cli/health_wiring.h"

namespace citycard::cli {

namespace {

struct HealthOptions {
  std::string card_no;
  std::string purpose;
  std::optional<std::string> filter_card;
  std::optional<std::string> filter_terminal;
  size_t limit = 1000;
  std::string file;
  std::string hospital;
  std::string bill_id;
  std::string scheme = "medical";
  std::string category;
  std::string amount;
  std::optional<std::string> split_fund;
  std::optional<std::string> split_assistance;
  std::optional<std::string> split_account;
  std::optional<std::string> split_purse;
  std::optional<std::string> split_deductible;
};

// Runs body(Environment&, HealthService&) with the health store opened on the command's
// database.
template <typename Body>
void RunWithHealth(AppContext& context, Body&& body) {
  RunWithEnvironment(context, [&](Environment& env) -> Result<CommandOutput> {
    auto runtime = HealthRuntime::Open(env);
    if (!runtime.ok()) return runtime.status();
    return body(env, (*runtime)->service());
  });
}

std::string TimeText(int64_t ms) { return FormatLocalTime(ms / 1000); }

// ---- identity check / audit identity -----------------------------------------------------

nlohmann::json DisclosedJson(const IdentityCheckRecord& r) {
  nlohmann::json schemes = nlohmann::json::object();
  for (Scheme s : r.disclosed.asked.schemes) {
    schemes[std::string(SchemeName(s))] = r.disclosed.HasScheme(s);
  }
  nlohmann::json groups = nlohmann::json::object();
  for (SpecialGroup g : r.disclosed.asked.groups) {
    groups[std::string(SpecialGroupName(g))] = r.disclosed.InGroup(g);
  }
  return {{"schemes", schemes}, {"groups", groups}};
}

nlohmann::json CheckJson(const IdentityCheckRecord& r) {
  nlohmann::json j = {{"check_id", r.id},
                      {"time", TimeText(r.time_ms)},
                      {"time_ms", r.time_ms},
                      {"terminal", r.terminal_id},
                      {"operator", r.operator_id},
                      {"card_no", r.card_no},
                      {"purpose", IdentityPurposeName(r.purpose)},
                      {"outcome", IdentityOutcomeName(r.outcome)},
                      {"valid", r.outcome == IdentityOutcome::valid}};
  j["card_status"] = r.card_status ? nlohmann::json(CardStatusName(*r.card_status)) : nullptr;
  j["profile"] = r.profile ? nlohmann::json(ProfileName(*r.profile)) : nullptr;
  nlohmann::json disclosed = DisclosedJson(r);
  j["schemes"] = disclosed["schemes"];
  j["groups"] = disclosed["groups"];
  return j;
}

std::string YesNoList(const nlohmann::json& answers) {
  std::string out;
  for (const auto& [name, yes] : answers.items()) {
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", name, yes.get<bool>() ? "yes" : "no");
  }
  return out.empty() ? "(none asked)" : out;
}

// A check that did not find a valid card fails the command (after it was recorded).
Status CheckRefusal(const IdentityCheckRecord& r) {
  switch (r.outcome) {
    case IdentityOutcome::valid: return Status::Ok();
    case IdentityOutcome::card_not_found:
      return Status::NotFound("card_not_found",
                              fmt::format("no card {} (check {} recorded)", r.card_no, r.id));
    case IdentityOutcome::bad_card_proof:
      return Status::BadInput("bad_card_proof", fmt::format("check {} recorded", r.id));
    case IdentityOutcome::card_not_valid: break;
  }
  std::string status(CardStatusName(*r.card_status));
  return Status::Refused("card_" + status, fmt::format("card {} is {}: not valid (check {} "
                                                       "recorded)",
                                                       r.card_no, status, r.id));
}

Result<CommandOutput> IdentityCheck(HealthService& health, const HealthOptions& o) {
  auto purpose = ParseIdentityPurpose(o.purpose);
  if (!purpose) {
    return Status::Usage("invalid_purpose",
                         "--purpose is one of hospital, pharmacy, pension_office, "
                         "transit_concession, employment_office");
  }
  IdentityQuery query;
  query.card_no = o.card_no;
  query.purpose = *purpose;
  auto record = health.CheckIdentity(query);
  if (!record.ok()) return record.status();
  CITYCARD_RETURN_IF_ERROR(CheckRefusal(*record));
  CommandOutput out;
  out.json = CheckJson(*record);
  out.text = KeyValues({{"Card", record->card_no},
                        {"Valid", "yes"},
                        {"Profile", out.json["profile"].get<std::string>()},
                        {"Purpose", o.purpose},
                        {"Schemes", YesNoList(out.json["schemes"])},
                        {"Groups", YesNoList(out.json["groups"])},
                        {"Check", std::to_string(record->id)}});
  return out;
}

Result<CommandOutput> AuditIdentity(HealthService& health, const HealthOptions& o) {
  IdentityCheckFilter filter;
  filter.card_no = o.filter_card;
  filter.terminal_id = o.filter_terminal;
  filter.limit = o.limit;
  auto checks = health.ListChecks(filter);
  if (!checks.ok()) return checks.status();
  CommandOutput out;
  out.json = {{"checks", nlohmann::json::array()}};
  Table table({"ID", "TIME", "TERMINAL", "CARD", "PURPOSE", "OUTCOME", "SCHEMES", "GROUPS"});
  for (const IdentityCheckRecord& r : *checks) {
    nlohmann::json j = CheckJson(r);
    table.Add({std::to_string(r.id), j["time"].get<std::string>(), r.terminal_id, r.card_no,
               std::string(IdentityPurposeName(r.purpose)),
               std::string(IdentityOutcomeName(r.outcome)), YesNoList(j["schemes"]),
               YesNoList(j["groups"])});
    out.json["checks"].push_back(std::move(j));
  }
  out.text = table.Render();
  return out;
}

// ---- medical ---------------------------------------------------------------------------------

nlohmann::json SettlementJson(const MedicalSettlementRecord& r) {
  nlohmann::json j = {{"hospital", r.hospital_id},
                      {"bill_id", r.bill_id},
                      {"card_no", r.card_no},
                      {"scheme", SchemeName(r.scheme)},
                      {"category", MedicalCategoryName(r.category)},
                      {"provided_split", r.provided},
                      {"rules_version", r.rules_version},
                      {"terminal", r.terminal_id},
                      {"settled_at", TimeText(r.settled_ms)},
                      {"settled_ms", r.settled_ms},
                      {"voucher", ToHex(r.voucher)},
                      {"reversed", r.reversed()}};
  PutAmount(j, "amount", r.amount_fen);
  PutAmount(j, "deductible", r.deductible_fen);
  PutAmount(j, "fund", r.fund_fen);
  PutAmount(j, "assistance", r.assistance_fen);
  PutAmount(j, "medical_account", r.medical_account_fen);
  PutAmount(j, "purse", r.purse_fen);
  PutAmount(j, "medical_account_after", r.medical_account_after_fen);
  PutAmount(j, "purse_after", r.purse_after_fen);
  if (r.reversed()) {
    j["reversed_at"] = TimeText(r.reversed_ms);
    j["reversed_ms"] = r.reversed_ms;
    j["reversal_voucher"] = ToHex(r.reversal_voucher);
  }
  return j;
}

std::string SettlementText(const MedicalSettlementRecord& r, std::string_view headline) {
  std::string text = std::string(headline) + "\n";
  text += KeyValues({{"Hospital", r.hospital_id},
                     {"Bill", r.bill_id},
                     {"Card", r.card_no},
                     {"Scheme", fmt::format("{} / {}", SchemeName(r.scheme),
                                            MedicalCategoryName(r.category))},
                     {"Amount", FormatYuanSign(r.amount_fen)},
                     {"Deductible", FormatYuanSign(r.deductible_fen)},
                     {"Fund", FormatYuanSign(r.fund_fen)},
                     {"Assistance", FormatYuanSign(r.assistance_fen)},
                     {"Medical account", FormatYuanSign(r.medical_account_fen)},
                     {"Purse", FormatYuanSign(r.purse_fen)},
                     {"Medical account after", FormatYuanSign(r.medical_account_after_fen)},
                     {"Purse after", FormatYuanSign(r.purse_after_fen)},
                     {"Settled", TimeText(r.settled_ms)},
                     {"Voucher", ToHex(r.voucher)}});
  if (r.reversed()) {
    text += KeyValues({{"Reversed", TimeText(r.reversed_ms)},
                       {"Reversal voucher", ToHex(r.reversal_voucher)}});
  }
  return text;
}

Result<int64_t> OptionalYuan(const std::optional<std::string>& text) {
  if (!text) return int64_t{0};
  return ParseYuan(*text);
}

Result<std::optional<ProvidedSplit>> ProvidedFrom(const HealthOptions& o) {
  if (!o.split_fund && !o.split_assistance && !o.split_account && !o.split_purse &&
      !o.split_deductible) {
    return std::optional<ProvidedSplit>();
  }
  ProvidedSplit split;
  std::pair<const std::optional<std::string>*, int64_t*> parts[] = {
      {&o.split_fund, &split.fund_fen},       {&o.split_assistance, &split.assistance_fen},
      {&o.split_account, &split.medical_account_fen}, {&o.split_purse, &split.purse_fen},
      {&o.split_deductible, &split.deductible_fen}};
  for (auto& [text, fen] : parts) {
    auto value = OptionalYuan(*text);
    if (!value.ok()) return value.status();
    *fen = *value;
  }
  return std::optional<ProvidedSplit>(split);
}

Result<CommandOutput> MedicalSettle(HealthService& health, const HealthOptions& o) {
  auto scheme = ParseScheme(o.scheme);
  if (!scheme) {
    return Status::Usage("invalid_scheme", "--scheme is one of pension, medical, unemployment, "
                                           "work_injury, maternity");
  }
  auto category = ParseMedicalCategory(o.category);
  if (!category) {
    return Status::Usage("invalid_category", "--category is one of outpatient, inpatient, drugs");
  }
  auto amount = ParseYuan(o.amount);
  if (!amount.ok()) return amount.status();
  auto provided = ProvidedFrom(o);
  if (!provided.ok()) return provided.status();
  MedicalSettleRequest request;
  request.card_no = o.card_no;
  request.hospital_id = o.hospital;
  request.bill_id = o.bill_id;
  request.scheme = *scheme;
  request.category = *category;
  request.amount_fen = *amount;
  request.provided = *provided;
  auto result = health.Settle(request);
  if (!result.ok()) return result.status();
  CommandOutput out;
  out.json = SettlementJson(result->record);
  out.json["repeated"] = result->repeated;
  out.text = SettlementText(result->record, result->repeated
                                                ? "Settled before (nothing booked now):"
                                                : "Settled:");
  return out;
}

Result<CommandOutput> MedicalShow(HealthService& health, const HealthOptions& o) {
  auto record = health.FindSettlement(o.hospital, o.bill_id);
  if (!record.ok()) return record.status();
  return CommandOutput{SettlementJson(*record), SettlementText(*record, "Settlement:")};
}

Result<CommandOutput> MedicalReverse(HealthService& health, const HealthOptions& o) {
  auto record = health.Reverse(o.hospital, o.bill_id);
  if (!record.ok()) return record.status();
  return CommandOutput{SettlementJson(*record), SettlementText(*record, "Reversed:")};
}

Result<CommandOutput> RulesLoad(HealthService& health, const HealthOptions& o) {
  auto text = ReadTextFile(o.file, kMedicalRulesBytesMax);
  if (!text.ok()) return text.status();
  auto rules = health.LoadRules(*text);
  if (!rules.ok()) return rules.status();
  CommandOutput out;
  out.json = {{"version", rules->version}, {"loaded_at", TimeText(rules->loaded_ms)}};
  out.text = fmt::format("medical rules {} loaded\n", rules->version);
  return out;
}

Result<CommandOutput> RulesShow(HealthStore& store) {
  auto rules = store.CurrentRules();
  if (!rules.ok()) return rules.status();
  if (!rules->has_value()) {
    return Status::NotFound("no_medical_rules", "no scheme rules are loaded");
  }
  CommandOutput out;
  nlohmann::json parsed = nlohmann::json::parse((*rules)->text, nullptr, false);
  out.json = {{"version", (*rules)->version},
              {"loaded_at", TimeText((*rules)->loaded_ms)},
              {"rules", parsed}};
  out.text = fmt::format("version {} (loaded {})\n{}\n", (*rules)->version,
                         TimeText((*rules)->loaded_ms), (*rules)->text);
  return out;
}

template <typename Fn>
void OnHealth(CLI::App* sub, AppContext& context, std::shared_ptr<HealthOptions> options, Fn fn) {
  sub->callback([&context, options, fn] {
    RunWithHealth(context, [&](Environment&, HealthService& health) { return fn(health, *options); });
  });
}

void RegisterMedical(CLI::App& app, AppContext& context, std::shared_ptr<HealthOptions> o) {
  CLI::App* medical = app.add_subcommand("medical", "medical scheme rules and bill settlement");
  medical->require_subcommand(1);
  CLI::App* rules = medical->add_subcommand("rules", "the scheme rules file");
  rules->require_subcommand(1);
  CLI::App* load = rules->add_subcommand("load", "load a rules file (docs/medical.md)");
  load->add_option("FILE", o->file, "rules file, JSON")->required();
  OnHealth(load, context, o, RulesLoad);
  CLI::App* show_rules = rules->add_subcommand("show", "the rules in force");
  show_rules->callback([&context] {
    RunWithEnvironment(context, [&](Environment& env) -> Result<CommandOutput> {
      auto runtime = HealthRuntime::Open(env);
      if (!runtime.ok()) return runtime.status();
      return RulesShow((*runtime)->store());
    });
  });

  CLI::App* settle = medical->add_subcommand("settle", "settle a hospital bill from a card");
  settle->add_option("CARD_NO", o->card_no, "the patient's card")->required();
  settle->add_option("--hospital", o->hospital, "operator id of the hospital")->required();
  settle->add_option("--bill-id", o->bill_id, "the hospital's bill id")->required();
  settle->add_option("--scheme", o->scheme, "scheme (default medical)");
  settle->add_option("--category", o->category, "outpatient, inpatient or drugs")->required();
  settle->add_option("--amount", o->amount, "the bill, yuan")->required();
  settle->add_option("--split-fund", o->split_fund, "provided split: the fund's part, yuan");
  settle->add_option("--split-assistance", o->split_assistance, "provided split: assistance");
  settle->add_option("--split-account", o->split_account, "provided split: medical account");
  settle->add_option("--split-purse", o->split_purse, "provided split: purse");
  settle->add_option("--split-deductible", o->split_deductible, "provided split: deductible");
  OnHealth(settle, context, o, MedicalSettle);

  CLI::App* show = medical->add_subcommand("show", "show a settlement");
  show->add_option("BILL_ID", o->bill_id, "the hospital's bill id")->required();
  show->add_option("--hospital", o->hospital, "needed when several hospitals use the bill id");
  OnHealth(show, context, o, MedicalShow);

  CLI::App* reverse = medical->add_subcommand("reverse", "refund a settlement (once)");
  reverse->add_option("BILL_ID", o->bill_id, "the hospital's bill id")->required();
  reverse->add_option("--hospital", o->hospital, "needed when several hospitals use the bill id");
  OnHealth(reverse, context, o, MedicalReverse);
}

}  // namespace

void RegisterHealthCommands(CLI::App& app, AppContext& context) {
  auto o = std::make_shared<HealthOptions>();
  CLI::App* identity = app.add_subcommand("identity", "social-security identity checks");
  identity->require_subcommand(1);
  CLI::App* check = identity->add_subcommand("check", "check a card at a counter (recorded)");
  check->add_option("CARD_NO", o->card_no, "the card")->required();
  check->add_option("--purpose", o->purpose, "hospital, pharmacy, pension_office, "
                                             "transit_concession or employment_office")
      ->required();
  OnHealth(check, context, o, IdentityCheck);

  CLI::App* audit = CommandGroup(app, "audit", "verify the ledger and list audit trails");
  CLI::App* audit_identity = audit->add_subcommand("identity", "the recorded identity checks");
  audit_identity->add_option("--card", o->filter_card, "only this card");
  audit_identity->add_option("--terminal", o->filter_terminal,
                             "only this terminal (counter checks: counter:cli)");
  audit_identity->add_option("--limit", o->limit, "at most this many, oldest first")
      ->check(CLI::Range(size_t{1}, kIdentityCheckListMax));
  OnHealth(audit_identity, context, o, AuditIdentity);

  RegisterMedical(app, context, o);
}

}  // namespace citycard::cli
