// `citycard fares load FILE.json | fares show [--version N]` and
// `citycard pass sell CARD_NO PASS_ID --holder-id ID | pass list CARD_NO |
//  pass enter CARD_NO SPOT [--at TIME]`. Rules: docs/fares.md.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <memory>

#include "core/fare_office.h"
#include "core/money.h"
#include "core/time.h"
#include "db/sqlite_fare_store.h"
#include "tools/cli/commands.h"
#include "tools/cli/environment.h"
#include "tools/cli/files.h"
#include "tools/cli/format.h"

namespace citycard::cli {

namespace {

// The fare office over the environment's connection, with its store.
struct Fares {
  std::unique_ptr<db::SqliteFareStore> store;
  std::unique_ptr<FareOffice> office;
};

Result<Fares> OpenFares(Environment& env) {
  auto store = db::SqliteFareStore::Open(env.database());
  if (!store.ok()) return store.status();
  Fares fares;
  fares.store = std::move(*store);
  fares.office = std::make_unique<FareOffice>(*fares.store, env.registry(), env.ledger(),
                                              env.card_office(), env.digester(), env.clock());
  return fares;
}

std::string LocalTimeMs(int64_t ms) { return FormatLocalTime(ms / 1000); }

nlohmann::json PassProductJson(const PassProduct& p) {
  nlohmann::json j = {{"id", p.id},
                      {"name", p.name},
                      {"validity_days", p.validity_days},
                      {"visits", p.visits},
                      {"spots", p.spots},
                      {"one_entry_per_spot_per_day", p.one_entry_per_spot_per_day}};
  PutAmount(j, "price", p.price_fen);
  nlohmann::json profiles = nlohmann::json::array();
  for (Profile profile : p.profiles) profiles.push_back(std::string(ProfileName(profile)));
  j["profiles"] = profiles;
  return j;
}

Result<CommandOutput> Load(Environment& env, const std::string& path) {
  auto text = ReadTextFile(path, kFareTableBytesMax);
  if (!text.ok()) return text.status();
  auto fares = OpenFares(env);
  if (!fares.ok()) return fares.status();
  auto loaded = fares->office->LoadTable(*text);
  if (!loaded.ok()) return loaded.status();
  auto table = ParseFareTable(loaded->table.json);
  if (!table.ok()) return table.status();
  const StoredFareTable& t = loaded->table;
  CommandOutput out;
  out.json = {{"version", t.version},
              {"name", t.name},
              {"loaded_at", LocalTimeMs(t.loaded_ms)},
              {"repeated", loaded->repeated},
              {"bytes", t.json.size()},
              {"operators", table->operators.size()},
              {"passes", table->passes.size()}};
  out.text = fmt::format("{} fare table version {}{}\n",
                         loaded->repeated ? "Already loaded:" : "Loaded", t.version,
                         t.name.empty() ? "" : " (" + t.name + ")");
  out.text += KeyValues({{"operators", std::to_string(table->operators.size())},
                         {"passes", std::to_string(table->passes.size())},
                         {"bytes", std::to_string(t.json.size())},
                         {"loaded at", LocalTimeMs(t.loaded_ms)}});
  return out;
}

Result<CommandOutput> Show(Environment& env) {
  auto fares = OpenFares(env);
  if (!fares.ok()) return fares.status();
  auto current = fares->office->CurrentTable();
  if (!current.ok()) return current.status();
  auto table = ParseFareTable(current->json);
  if (!table.ok()) return table.status();
  auto versions = fares->store->ListTables();
  if (!versions.ok()) return versions.status();

  CommandOutput out;
  nlohmann::json operators = nlohmann::json::array();
  Table ops({"operator", "name", "mode", "pricing", ">routes"});
  for (const FareOperator& op : table->operators) {
    std::string pricing = op.pricing ? std::string(PricingKindName(op.pricing->kind)) : "per route";
    operators.push_back({{"id", op.id},
                         {"name", op.name},
                         {"mode", std::string(RideModeName(op.mode))},
                         {"pricing", pricing},
                         {"routes", op.routes.size()}});
    ops.Add({op.id, op.name, std::string(RideModeName(op.mode)), pricing,
             std::to_string(op.routes.size())});
  }
  nlohmann::json passes = nlohmann::json::array();
  Table pass_table({"pass", "name", ">price", ">days", ">visits", "spots"});
  for (const PassProduct& p : table->passes) {
    passes.push_back(PassProductJson(p));
    pass_table.Add({p.id, p.name, FormatYuanSign(p.price_fen), std::to_string(p.validity_days),
                    std::to_string(p.visits), fmt::format("{}", fmt::join(p.spots, " "))});
  }
  nlohmann::json version_list = nlohmann::json::array();
  for (const StoredFareTable& v : *versions) {
    version_list.push_back({{"version", v.version},
                            {"name", v.name},
                            {"loaded_at", LocalTimeMs(v.loaded_ms)},
                            {"bytes", v.json.size()}});
  }
  out.json = {{"version", current->version},
              {"name", current->name},
              {"loaded_at", LocalTimeMs(current->loaded_ms)},
              {"networks", table->networks.size()},
              {"transfers", table->transfers.size()},
              {"daily_caps", table->daily_caps.size()},
              {"operators", operators},
              {"passes", passes},
              {"versions", version_list}};
  out.text = fmt::format("Fare table version {}{}, loaded {} ({} versions loaded)\n",
                         current->version, current->name.empty() ? "" : " (" + current->name + ")",
                         LocalTimeMs(current->loaded_ms), versions->size());
  out.text += ops.Render();
  if (pass_table.rows() > 0) out.text += "\n" + pass_table.Render();
  return out;
}

nlohmann::json StoredPassJson(const StoredPass& p, const FareTable* table) {
  nlohmann::json j = {{"card_no", p.card_no},
                      {"pass_id", p.pass_id},
                      {"fare_version", p.fare_version},
                      {"operator", p.operator_id},
                      {"transfer_id", p.transfer_id.ToHex()},
                      {"sold_at", LocalTimeMs(p.sold_ms)},
                      {"valid_from", FormatDay(p.holding.sold_day)},
                      {"visits_used", p.holding.visits_used}};
  PutAmount(j, "price", p.price_fen);
  const PassProduct* product = table != nullptr ? table->FindPass(p.pass_id) : nullptr;
  if (product != nullptr) {
    j["valid_until"] = FormatDay(p.holding.sold_day + product->validity_days - 1);
    j["visits_left"] = product->visits - p.holding.visits_used;
  }
  return j;
}

Result<CommandOutput> Sell(Environment& env, const std::string& card_no,
                           const std::string& pass_id, const std::string& holder_id) {
  auto fares = OpenFares(env);
  if (!fares.ok()) return fares.status();
  auto sale = fares->office->SellPass(card_no, pass_id, holder_id);
  if (!sale.ok()) return sale.status();
  auto table = fares->office->CurrentParsedTable();
  if (!table.ok()) return table.status();
  CommandOutput out;
  out.json = StoredPassJson(sale->pass, &*table);
  out.json["repeated"] = sale->repeated;
  PutAmount(out.json, "balance", sale->balance_after_fen);
  out.text = fmt::format("{} pass {} onto card {} for {}\n",
                         sale->repeated ? "Already sold:" : "Sold", pass_id,
                         sale->pass.card_no, FormatYuanSign(sale->pass.price_fen));
  out.text += KeyValues({{"paid to", sale->pass.operator_id},
                         {"valid", out.json["valid_from"].get<std::string>() + " to " +
                                       out.json.value("valid_until", std::string("?"))},
                         {"visits", std::to_string(out.json.value("visits_left", int64_t{0}))},
                         {"balance", FormatYuanSign(sale->balance_after_fen)},
                         {"transfer", sale->pass.transfer_id.ToHex()}});
  return out;
}

Result<CommandOutput> List(Environment& env, const std::string& card_no) {
  auto fares = OpenFares(env);
  if (!fares.ok()) return fares.status();
  auto passes = fares->office->ListPasses(card_no);
  if (!passes.ok()) return passes.status();
  CommandOutput out;
  nlohmann::json list = nlohmann::json::array();
  Table t({"pass", "valid from", ">visits used", "paid to"});
  for (const StoredPass& p : *passes) {
    list.push_back(StoredPassJson(p, nullptr));
    t.Add({p.pass_id, FormatDay(p.holding.sold_day), std::to_string(p.holding.visits_used),
           p.operator_id});
  }
  out.json = {{"card_no", card_no}, {"passes", list}};
  out.text = t.Render();
  return out;
}

// A gate entry decided at the counter (the same rule a gate applies offline): admitted, or
// refused with the outcome's name as the code (Kind::refused, exit 4).
Result<CommandOutput> Enter(Environment& env, const std::string& card_no, const std::string& spot) {
  auto fares = OpenFares(env);
  if (!fares.ok()) return fares.status();
  auto decision = fares->office->EnterGate(card_no, spot, env.clock().NowSeconds());
  if (!decision.ok()) return decision.status();
  if (decision->outcome != PassEntryOutcome::admitted) {
    return Status::Refused(std::string(PassEntryOutcomeName(decision->outcome)),
                           fmt::format("card {} may not enter {} with a pass", card_no, spot));
  }
  CommandOutput out;
  out.json = {{"card_no", card_no},
              {"spot", spot},
              {"pass_id", decision->pass_id},
              {"outcome", "admitted"},
              {"visits_left", decision->visits_left}};
  out.text = fmt::format("Admitted at {} with pass {}: {} visits left\n", spot, decision->pass_id,
                         decision->visits_left);
  return out;
}

struct PassOptions {
  std::string card_no;
  std::string pass_id;
  std::string holder_id;
  std::string spot;
};

}  // namespace

void RegisterFaresCommands(CLI::App& app, AppContext& context) {
  CLI::App* fares = app.add_subcommand("fares", "fare tables: load a version, show the current");
  fares->require_subcommand(1);
  auto path = std::make_shared<std::string>();
  CLI::App* load = fares->add_subcommand("load", "load a fare table file as a new version");
  load->add_option("FILE", *path, "the fare table, JSON (docs/fares.md)")->required();
  load->callback([&context, path] {
    RunWithEnvironment(context, [&](Environment& env) { return Load(env, *path); });
  });
  fares->add_subcommand("show", "show the current fare table")->callback([&context] {
    RunWithEnvironment(context, [](Environment& env) { return Show(env); });
  });

  auto o = std::make_shared<PassOptions>();
  CLI::App* pass = app.add_subcommand("pass", "passes sold onto cards (annual scenic pass)");
  pass->require_subcommand(1);
  CLI::App* sell = pass->add_subcommand("sell", "sell a pass of the current fare table");
  sell->add_option("CARD_NO", o->card_no, "the card")->required();
  sell->add_option("PASS_ID", o->pass_id, "the pass product's id in the fare table")->required();
  sell->add_option("--holder-id", o->holder_id, "the buyer's national id: the card's holder")
      ->required();
  sell->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) {
      return Sell(env, o->card_no, o->pass_id, o->holder_id);
    });
  });
  CLI::App* list = pass->add_subcommand("list", "the passes a card holds");
  list->add_option("CARD_NO", o->card_no, "the card")->required();
  list->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return List(env, o->card_no); });
  });
  CLI::App* enter = pass->add_subcommand("enter", "a gate entry with the card's pass, now");
  enter->add_option("CARD_NO", o->card_no, "the card")->required();
  enter->add_option("SPOT", o->spot, "the scenic spot's operator id")->required();
  enter->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return Enter(env, o->card_no, o->spot); });
  });
}

}  // namespace citycard::cli
