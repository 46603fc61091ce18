// `citycard settle --day YYYY-MM-DD [--csv FILE]` and `citycard settle --set-cutoff HH:MM`:
// clearing and settlement per operator (docs/settlement.md).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "core/csv.h"
#include "core/settlement.h"
#include "core/settlement_tap_source.h"
#include "core/time.h"
#include "db/sqlite_health_store.h"
#include "db/sqlite_settlement_reads.h"
#include "db/sqlite_settlement_store.h"
#include "db/sqlite_tap_store.h"
#include "db/wal_checkpointer.h"
#include "tools/cli/commands.h"
#include "tools/cli/environment.h"
#include "tools/cli/fares_wiring.h"
#include "tools/cli/format.h"
#include "tools/cli/settle.h"

namespace citycard::cli {

namespace {

// The tap store's view of the day plus the number of medical bills the health store settled in
// it. Only the count: the medical amounts are read from the ledger's day by the Settler (there
// with their reversals).
class SettlementSources final : public SettlementTapSource {
 public:
  SettlementSources(SettlementTapSource& taps, HealthStore& health, int64_t cutoff_s)
      : taps_(taps), health_(health), cutoff_s_(cutoff_s) {}
  Result<std::vector<OperatorTapTotals>> OperatorTotals(int64_t day) override {
    return taps_.OperatorTotals(day);
  }
  Status ForEachCardDay(int64_t day,
                        const std::function<Status(const CardDayTaps&)>& visit) override {
    return taps_.ForEachCardDay(day, visit);
  }
  size_t CardDayPartsMax() const override { return taps_.CardDayPartsMax(); }
  Status ForEachCardDayPart(int64_t day, size_t part, size_t parts,
                            const std::function<Status(const CardDayTaps&)>& visit) override {
    return taps_.ForEachCardDayPart(day, part, parts, visit);
  }
  // The tap source's day only: the health store's totals are read with the services.
  Status ReadDay(int64_t day) override { return taps_.ReadDay(day); }
  Result<std::vector<OperatorServiceTotals>> ServiceTotals(int64_t day) override {
    auto services = taps_.ServiceTotals(day);
    if (!services.ok()) return services.status();
    auto medical = health_.MedicalTotals(ClearingDayStart(day, cutoff_s_) * 1000,
                                         ClearingDayStart(day + 1, cutoff_s_) * 1000);
    if (!medical.ok()) return medical.status();
    for (const OperatorServiceTotals& m : *medical) {
      OperatorServiceTotals count;
      count.operator_id = m.operator_id;
      count.medical_bills = m.medical_bills;
      services->push_back(std::move(count));
    }
    return services;
  }

 private:
  SettlementTapSource& taps_;
  HealthStore& health_;
  int64_t cutoff_s_;
};

struct SettleOptions {
  std::string day;
  std::string csv_path;
  std::string set_cutoff;
};

// "HH:MM" -> seconds after midnight. Kind::usage "invalid_cutoff" otherwise.
Result<int64_t> ParseCutoff(const std::string& text) {
  unsigned hours = 0;
  unsigned minutes = 0;
  char extra = 0;
  if (text.size() != 5 || std::sscanf(text.c_str(), "%2u:%2u%c", &hours, &minutes, &extra) != 2 ||
      hours > 23 || minutes > 59) {
    return Status::Usage("invalid_cutoff", "a cut-off is HH:MM, 00:00 to 23:59: " + text);
  }
  return static_cast<int64_t>(hours * 3600 + minutes * 60);
}

std::string CutoffText(int64_t cutoff_s) {
  return fmt::format("{:02}:{:02}", cutoff_s / 3600, cutoff_s / 60 % 60);
}

std::string ReportTable(const SettlementReport& report) {
  Table table({"OPERATOR", "NAME", ">TAPS", ">LATE", ">GROSS", ">CONCESSION", ">TRANSFER",
               ">PAID", ">CAP REBATE", ">FEE", ">NET"});
  auto add = [&table](const OperatorSettlement& line, const std::string& id) {
    table.Add({id, line.name, std::to_string(line.taps), std::to_string(line.late_taps),
               FormatYuanSign(line.gross_fen), FormatYuanSign(line.concession_fen),
               FormatYuanSign(line.transfer_discount_fen), FormatYuanSign(line.paid_fen),
               FormatYuanSign(line.capping_rebate_fen), FormatYuanSign(line.fee_fen),
               FormatYuanSign(line.net_fen)});
  };
  for (const OperatorSettlement& line : report.operators) add(line, line.operator_id);
  add(report.totals, "TOTAL");
  return table.Render();
}

// Every column of the JSON lines, amounts in fen; the totals last, as operator "TOTAL".
std::string ReportCsv(const SettlementReport& report) {
  nlohmann::json json = SettlementReportToJson(report);
  // The report's columns in reading order, then any other integer column of the JSON.
  std::vector<std::string> keys = {
      "operator",      "name",           "kind",          "fee_bp",
      "taps",          "paid_taps",      "late_taps",     "gross_fen",
      "concession_fen", "transfer_discount_fen", "other_discount_fen", "paid_fen",
      "late_paid_fen", "capping_rebate_fen", "capped_cards", "bills",
      "bills_amount_fen", "passes",     "passes_amount_fen", "medical_bills",
      "medical_fund_fen", "medical_holder_fen", "fee_base_fen", "fee_fen",
      "net_fen",       "topups",         "topup_fen"};
  for (const auto& [key, value] : json["totals"].items()) {
    if (value.is_number_integer() && std::find(keys.begin(), keys.end(), key) == keys.end()) {
      keys.push_back(key);
    }
  }
  std::string out;
  std::vector<std::string_view> header(keys.begin(), keys.end());
  AppendCsvRecord(&out, header);
  auto row = [&](const nlohmann::json& line) {
    std::vector<std::string> cells;
    for (const std::string& key : keys) {
      if (!line.contains(key)) {
        cells.push_back(key == "operator" ? "TOTAL" : "");
      } else if (line[key].is_string()) {
        cells.push_back(line[key].get<std::string>());
      } else {
        cells.push_back(line[key].dump());
      }
    }
    std::vector<std::string_view> fields(cells.begin(), cells.end());
    AppendCsvRecord(&out, fields);
  };
  for (const nlohmann::json& line : json["operators"]) row(line);
  row(json["totals"]);
  return out;
}

Status WriteReportFile(const std::string& path, const std::string& text) {
  std::string temporary = path + ".tmp";
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    file << text;
    file.flush();
    if (!file) {
      std::remove(temporary.c_str());
      return Status::Internal("file_write_failed", "cannot write " + path);
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    return Status::Internal("file_write_failed", "cannot write " + path);
  }
  return Status::Ok();
}

Result<CommandOutput> SetCutoff(Environment& env, const std::string& text) {
  auto cutoff = ParseCutoff(text);
  if (!cutoff.ok()) return cutoff.status();
  auto store = db::SqliteSettlementStore::Open(env.database());
  if (!store.ok()) return store.status();
  CITYCARD_RETURN_IF_ERROR((*store)->SetClearingCutoff(*cutoff));
  return CommandOutput{{{"cutoff", CutoffText(*cutoff)}, {"cutoff_s", *cutoff}},
                       "Clearing days now start at " + CutoffText(*cutoff) + " (Asia/Shanghai)\n"};
}

Result<CommandOutput> Settle(Environment& env, const SettleOptions& o) {
  auto day = ParseDay(o.day);
  if (!day.ok()) return Status::Usage("invalid_date", day.status().message());
  auto outcome = SettleDay(env, *day);
  if (!outcome.ok()) return outcome.status();
  const SettlementReport& report = outcome->record.report;
  if (!o.csv_path.empty()) CITYCARD_RETURN_IF_ERROR(WriteReportFile(o.csv_path, ReportCsv(report)));
  CommandOutput output;
  output.json = SettlementReportToJson(report);
  output.json["repeated"] = outcome->repeated;
  output.json["transfers"] = outcome->record.transfers;
  output.text = fmt::format("Settlement of {} (clearing day from {}){}\n", FormatDay(report.day),
                            CutoffText(report.cutoff_s),
                            outcome->repeated ? ", settled before: nothing booked now" : "");
  output.text += ReportTable(report);
  return output;
}

}  // namespace

Result<std::vector<DailyCap>> CurrentDailyCaps(Environment& env) {
  auto fares = FaresRuntime::Open(env);
  if (!fares.ok()) return fares.status();
  auto table = (*fares)->office().CurrentParsedTable();
  if (!table.ok()) {
    if (table.status().code() == "no_fare_table") return std::vector<DailyCap>{};
    return table.status();
  }
  return table->daily_caps;
}

Result<std::unique_ptr<ApartTapSource>> OpenApartTapSource(const std::string& db_path) {
  if (db_path.empty() || db_path == ":memory:") return std::unique_ptr<ApartTapSource>();
  auto apart = std::make_unique<ApartTapSource>();
  auto db = db::Database::Open(db_path, false);
  if (!db.ok()) return db.status();
  apart->db = std::move(*db);
  auto taps = db::SqliteTapStore::Open(*apart->db);
  if (!taps.ok()) return taps.status();
  apart->taps = std::move(*taps);
  auto registry = db::SqliteRegistryStore::Open(*apart->db);
  if (!registry.ok()) return registry.status();
  apart->registry = std::move(*registry);
  apart->reads = std::make_unique<db::SqliteSettlementReads>(*apart->db);
  auto second_db = db::Database::Open(db_path, false);
  if (!second_db.ok()) return second_db.status();
  apart->second_db = std::move(*second_db);
  apart->second_reads = std::make_unique<db::SqliteSettlementReads>(*apart->second_db);
  apart->source = std::make_unique<TapStoreSettlementSource>(
      *apart->taps, *apart->registry, apart->reads.get(), apart->second_reads.get());
  return apart;
}

Result<SettlementOutcome> SettleDay(Environment& env, int64_t day) {
  // A replaced card's balance that is due to move moves first, so that a capping rebate to it
  // follows the balance to the new card.
  auto moved = env.card_office().ProcessDueReplacements();
  if (!moved.ok()) return moved.status();
  auto store = db::SqliteSettlementStore::Open(env.database());
  if (!store.ok()) return store.status();
  auto taps = db::SqliteTapStore::Open(env.database());
  if (!taps.ok()) return taps.status();
  auto health = db::SqliteHealthStore::Open(env.database());
  if (!health.ok()) return health.status();
  auto cutoff = (*store)->ClearingCutoff();
  if (!cutoff.ok()) return cutoff.status();
  // The day's taps and ledger movements are read in SQL: the taps on a second connection (and
  // thread) while the ledger's day is summed on the environment's.
  db::SqliteSettlementReads reads(env.database());
  auto apart = OpenApartTapSource(env.database().path());
  if (!apart.ok()) return apart.status();
  std::optional<TapStoreSettlementSource> shared;
  if (*apart == nullptr) shared.emplace(**taps, env.registry(), &reads);
  SettlementSources source(*apart != nullptr ? *(*apart)->source : *shared, **health, *cutoff);
  SettlerConfig config;
  config.reads = &reads;
  config.tap_source_apart = *apart != nullptr;
  // The tap source's connection is idle once the day is read: the rebated cards are read and
  // the transfers planned over it on a second thread while the booking writes.
  config.plan_reads = *apart != nullptr ? (*apart)->reads.get() : nullptr;
  auto caps = CurrentDailyCaps(env);
  if (!caps.ok()) return caps.status();
  config.daily_caps = std::move(*caps);
  Settler settler(env.registry(), env.ledger(), env.ledger_store(), **store, source,
                  env.digester(), env.clock(), std::move(config));
  // The booking's commit returns once it is durable; the copy of its pages from the WAL into
  // the database file comes after (db/wal_checkpointer.h DeferredCheckpoint).
  db::DeferredCheckpoint deferred(env.database());
  auto outcome = settler.Settle(day);
  if (!outcome.ok()) return outcome.status();
  // A failed copy loses nothing (the pages stay in the WAL); the settlement stands, and a
  // second `settle` of the day reports it as settled before.
  CITYCARD_RETURN_IF_ERROR(deferred.Finish());
  return outcome;
}

void RegisterSettleCommands(CLI::App& app, AppContext& context) {
  auto o = std::make_shared<SettleOptions>();
  CLI::App* settle = app.add_subcommand("settle", "clear and settle a day per operator");
  CLI::Option* day = settle->add_option("--day", o->day, "the clearing day, YYYY-MM-DD");
  settle->add_option("--csv", o->csv_path, "also write the report as CSV to FILE (replaced if it exists)");
  CLI::Option* cutoff = settle->add_option(
      "--set-cutoff", o->set_cutoff, "set when clearing days start, HH:MM Asia/Shanghai");
  day->excludes(cutoff);
  settle->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) -> Result<CommandOutput> {
      if (!o->set_cutoff.empty()) return SetCutoff(env, o->set_cutoff);
      if (o->day.empty()) return Status::Usage("missing_option", "settle needs --day YYYY-MM-DD");
      return Settle(env, *o);
    });
  });
}

}  // namespace citycard::cli
