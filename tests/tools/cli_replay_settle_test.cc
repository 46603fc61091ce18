#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <sstream>

#include "core/szt_file.h"
#include "db/database.h"
#include "tests/support/cli_runner_support.h"

using citycard::testing::CliResult;
using citycard::testing::CliSandbox;

namespace {

const char kEvening[] = CITYCARD_SOURCE_DIR "/../shared/data/szt-2018-08-31-evening.csv";

CliResult Require(CliResult result, int exit_code) {
  INFO(result.out << result.err);
  REQUIRE(result.exit_code == exit_code);
  return result;
}

struct FileFigures {
  std::map<std::string, int64_t> rows;      // per company_name
  std::map<std::string, int64_t> paid_fen;  // Σ deal_money per company_name
  std::map<std::string, int64_t> gross_fen; // Σ deal_value per company_name
  int64_t total_rows = 0;
  int64_t total_paid_fen = 0;
};

FileFigures ReadFigures() {
  std::ifstream file(kEvening, std::ios::binary);
  REQUIRE(file);
  std::stringstream text;
  text << file.rdbuf();
  auto rows = citycard::ParseSztFile(text.str());
  REQUIRE(rows.ok());
  FileFigures f;
  for (const citycard::SztRow& row : *rows) {
    f.rows[row.company_name] += 1;
    f.paid_fen[row.company_name] += row.deal_money_fen;
    f.gross_fen[row.company_name] += row.deal_value_fen;
    f.total_rows += 1;
    f.total_paid_fen += row.deal_money_fen;
  }
  return f;
}

}  // namespace

TEST_CASE("A replayed real evening settles per operator to the file's own sums, and replays "
          "again as duplicates",
          "[tools][replay][settlement]") {
  FileFigures file = ReadFigures();
  REQUIRE(file.total_rows == 10000);
  CliSandbox box(CITYCARD_BIN);
  Require(box.Run({"init"}), 0);

  nlohmann::json first =
      Require(box.Json({"replay", "--format", "szt", kEvening, "--provision"}), 0).json();
  CHECK(first["taps"] == 10000);
  CHECK(first["accepted"] == 10000);
  CHECK(first["duplicates"] == 0);
  CHECK(first["rejected"] == 0);
  CHECK(first["operators"] == 11);
  CHECK(first["late"] == 0);
  CHECK(first["ledger_ahead"] == false);
  REQUIRE(first["days"] == nlohmann::json::array({"2018-08-31", "2018-09-01"}));

  // The settlement of the days the taps fall in, added up per operator name.
  std::map<std::string, int64_t> taps;
  std::map<std::string, int64_t> paid;
  std::map<std::string, int64_t> gross;
  int64_t total_taps = 0;
  int64_t total_paid = 0;
  std::map<std::string, std::string> reports;
  for (const std::string day : {"2018-08-31", "2018-09-01"}) {
    CliResult settled = Require(box.Json({"settle", "--day", day}), 0);
    reports[day] = settled.out;
    nlohmann::json report = settled.json();
    CHECK(report["repeated"] == false);
    for (const nlohmann::json& line : report["operators"]) {
      std::string name = line["name"];
      taps[name] += line["taps"].get<int64_t>();
      paid[name] += line["paid_fen"].get<int64_t>();
      gross[name] += line["gross_fen"].get<int64_t>();
      CHECK(line["late_taps"] == 0);
      CHECK(line["fee_fen"] == 0);  // provisioned operators have no fee
      CHECK(line["net_fen"] == line["paid_fen"]);
    }
    total_taps += report["totals"]["taps"].get<int64_t>();
    total_paid += report["totals"]["paid_fen"].get<int64_t>();
  }
  CHECK(taps == file.rows);
  CHECK(paid == file.paid_fen);
  CHECK(gross == file.gross_fen);
  CHECK(total_taps == file.total_rows);
  CHECK(total_paid == file.total_paid_fen);
  CHECK(total_paid == 97960);

  // Settling again prints the same report and books nothing.
  for (const auto& [day, out] : reports) {
    nlohmann::json again = Require(box.Json({"settle", "--day", day}), 0).json();
    CHECK(again["repeated"] == true);
    nlohmann::json before = nlohmann::json::parse(out);
    before.erase("repeated");
    before.erase("transfers");
    again.erase("repeated");
    again.erase("transfers");
    CHECK(again == before);
  }
  CHECK(Require(box.Json({"audit", "verify"}), 0).json()["ok"] == true);

  // The same file again: every tap is a duplicate, nothing moves.
  nlohmann::json second =
      Require(box.Json({"replay", "--format", "szt", kEvening, "--provision"}), 0).json();
  CHECK(second["taps"] == 10000);
  CHECK(second["accepted"] == 0);
  CHECK(second["duplicates"] == 10000);
  CHECK(second["rejected"] == 0);
}

TEST_CASE("Settle refuses a day that has not ended and a malformed day", "[tools][settlement]") {
  CliSandbox box(CITYCARD_BIN);
  Require(box.Run({"init"}), 0);
  std::map<std::string, std::string> now = {{"CITYCARD_NOW", "2024-03-05 12:00:00"}};
  CliResult open = box.Json({"settle", "--day", "2024-03-05"}, now);
  CHECK(open.exit_code == 4);
  CHECK(open.json()["error"]["code"] == "day_not_over");
  CliResult bad = box.Json({"settle", "--day", "2024-02-30"}, now);
  CHECK(bad.exit_code == 2);
  CHECK(bad.json()["error"]["code"] == "invalid_date");
}

TEST_CASE("Settle prints a table, writes CSV and can move the clearing cut-off",
          "[tools][settlement]") {
  CliSandbox box(CITYCARD_BIN);
  Require(box.Run({"init"}), 0);
  std::map<std::string, std::string> now = {{"CITYCARD_NOW", "2024-03-06 12:00:00"}};
  CliResult table = Require(box.Run({"settle", "--day", "2024-03-05", "--csv",
                                     box.Path("day.csv")}, now), 0);
  CHECK(table.out.find("Settlement of 2024-03-05") != std::string::npos);
  CHECK(table.out.find("TOTAL") != std::string::npos);
  std::string csv = box.Read("day.csv");
  CHECK(csv.rfind("operator,name,kind,fee_bp,taps,", 0) == 0);
  CHECK(csv.find("\nTOTAL,") != std::string::npos);
  nlohmann::json cutoff = Require(box.Json({"settle", "--set-cutoff", "04:00"}, now), 0).json();
  CHECK(cutoff["cutoff"] == "04:00");
  CHECK(cutoff["cutoff_s"] == 14400);
  CHECK(box.Json({"settle", "--set-cutoff", "25:00"}, now).exit_code == 2);
  nlohmann::json report = Require(box.Json({"settle", "--day", "2024-03-04"}, now), 0).json();
  CHECK(report["cutoff"] == "04:00");
  CHECK(report["operators"].empty());
}

TEST_CASE("audit verify names a batch whose kept sums no longer match its transfers",
          "[tools][settlement]") {
  CliSandbox box(CITYCARD_BIN);
  Require(box.Run({"init"}), 0);
  const std::map<std::string, std::string> env = {{"CITYCARD_NOW", "2024-03-01 10:00:00"}};
  Require(box.Json({"card", "issue", "--holder-id", "321281199001011234", "--name", "张三",
                    "--deposit", "20"},
                   env),
          0);
  CHECK(Require(box.Json({"audit", "verify"}), 0).json()["ok"] == true);
  {
    // The deposit's batch credited the card deposits account ¥20: its sum now says ¥21.
    auto db = citycard::db::Database::Open(box.db_path(), false);
    REQUIRE(db.ok());
    REQUIRE((*db)->Exec("UPDATE ledger_batch_sums SET credits_fen = credits_fen + 100 "
                        "WHERE credits_fen = 2000").ok());
    REQUIRE((*db)->Changes() == 1);
  }
  CliResult verified = box.Json({"audit", "verify"});
  INFO(verified.out << verified.err);
  CHECK(verified.exit_code != 0);
  nlohmann::json report = verified.json();
  CHECK(report["ok"] == false);
  REQUIRE(report["problems"].size() == 1);
  CHECK(report["problems"][0].get<std::string>().find("kept sums") != std::string::npos);
}
