// `citycard alerts [--kind K] [--card N] [--terminal T] [--limit N]`: what tap ingest found
// (docs/ingest.md "Alerts"), newest first.
#include <fmt/format.h>

#include "core/alerts.h"
#include "core/card_number.h"
#include "core/time.h"
#include "db/sqlite_tap_store.h"
#include "tools/cli/commands.h"
#include "tools/cli/environment.h"
#include "tools/cli/format.h"

namespace citycard::cli {

namespace {

struct AlertsOptions {
  std::string kind;
  std::string card;
  std::string terminal;
  size_t limit = 1000;
};

Result<AlertFilter> Filter(const AlertsOptions& o) {
  AlertFilter filter;
  filter.limit = o.limit;
  if (!o.kind.empty()) {
    auto kind = ParseAlertKind(o.kind);
    if (!kind) {
      return Status::BadInput("invalid_alert_kind",
                              fmt::format("no alert kind \"{}\" (see docs/ingest.md)", o.kind));
    }
    filter.kind = *kind;
  }
  if (!o.card.empty()) {
    CITYCARD_RETURN_IF_ERROR(ValidateCardNumber(o.card));
    filter.card_no = CardNumberToInt(o.card);
  }
  if (!o.terminal.empty()) filter.terminal_id = o.terminal;
  return filter;
}

Result<CommandOutput> ListAlerts(Environment& env, const AlertsOptions& o) {
  auto filter = Filter(o);
  if (!filter.ok()) return filter.status();
  auto store = db::SqliteTapStore::Open(env.database());
  if (!store.ok()) return store.status();
  auto alerts = (*store)->ListAlerts(*filter);
  if (!alerts.ok()) return alerts.status();
  CommandOutput out;
  out.json["alerts"] = nlohmann::json::array();
  Table table({"time", "kind", "card", "terminal", "detail"});
  for (const Alert& a : *alerts) {
    std::string card = a.card_no == 0 ? "" : CardNumberFromInt(a.card_no);
    std::string time = FormatLocalTime(a.time_ms / 1000);
    nlohmann::json j;
    j["seq"] = a.seq;
    j["kind"] = std::string(AlertKindName(a.kind));
    j["card_no"] = a.card_no == 0 ? nlohmann::json(nullptr) : nlohmann::json(card);
    j["terminal_id"] = a.terminal_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.terminal_id);
    j["time"] = time;
    j["time_ms"] = a.time_ms;
    j["detail"] = a.detail;
    out.json["alerts"].push_back(std::move(j));
    table.Add({time, std::string(AlertKindName(a.kind)), card, a.terminal_id, a.detail});
  }
  out.text = alerts->empty() ? "No alerts.\n" : table.Render();
  return out;
}

}  // namespace

void RegisterAlertsCommands(CLI::App& app, AppContext& context) {
  auto o = std::make_shared<AlertsOptions>();
  CLI::App* alerts = app.add_subcommand("alerts", "list what tap ingest found, newest first");
  alerts->add_option("--kind", o->kind, "only this kind (conflict, cloned_card, forged_balance, …)");
  alerts->add_option("--card", o->card, "only this card number");
  alerts->add_option("--terminal", o->terminal, "only this terminal id");
  alerts->add_option("--limit", o->limit, "at most this many (default 1000)")
      ->check(CLI::Range(size_t{1}, kAlertListMax));
  alerts->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return ListAlerts(env, *o); });
  });
}

}  // namespace citycard::cli
