#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "core/szt_file.h"
#include "tests/support/cli_runner_support.h"
#include "tools/cli/demo.h"

using citycard::testing::CliResult;
using citycard::testing::CliSandbox;

namespace {

const char kEvening[] = CITYCARD_SOURCE_DIR "/../shared/data/szt-2018-08-31-evening.csv";

struct Figures {
  int64_t rows = 0;
  int64_t paid_fen = 0;
};

// The rows the short demo replays (every kDemoShortStride-th) and what they paid.
Figures ShortFigures() {
  std::ifstream file(kEvening, std::ios::binary);
  REQUIRE(file);
  std::stringstream text;
  text << file.rdbuf();
  auto rows = citycard::ParseSztFile(text.str());
  REQUIRE(rows.ok());
  Figures f;
  for (size_t i = 0; i < rows->size(); i += citycard::cli::kDemoShortStride) {
    f.rows += 1;
    f.paid_fen += (*rows)[i].deal_money_fen;
  }
  return f;
}

}  // namespace

TEST_CASE("The short demo replays the real evening through the protocol, settles it to the "
          "file's sums and finds the ledger clean",
          "[tools][demo]") {
  Figures file = ShortFigures();
  REQUIRE(file.rows == 1000);
  CliSandbox box(CITYCARD_BIN);
  CliResult run = box.Json({"demo", "--short", "--dir", box.Path("city")},
                           {{"CITYCARD_DATA", kEvening}});
  INFO(run.out << run.err);
  REQUIRE(run.exit_code == 0);
  nlohmann::json summary = run.json();
  CHECK(summary["ok"] == true);
  CHECK(summary["dir"] == box.Path("city"));
  CHECK(summary["file"]["rows"] == file.rows);
  CHECK(summary["file"]["deal_money_fen"] == file.paid_fen);
  CHECK(summary["replay"]["taps"] == file.rows);
  CHECK(summary["replay"]["accepted"] == file.rows);
  CHECK(summary["replay"]["duplicates"] == 0);
  CHECK(summary["replay"]["rejected"] == 0);
  // Every 10th row of the evening comes from 10 of its 11 operators.
  CHECK(summary["replay"]["operators"] == 10);
  // The city's own taps: 6 taxi rides and 4 car-park exits accepted, the taxi's batch sent
  // again as 6 duplicates, a cloned card and a forged purse refused.
  CHECK(summary["taps"]["by_result"]["accepted"] == 10);
  CHECK(summary["taps"]["by_result"]["duplicate"] == 6);
  CHECK(summary["taps"]["by_result"]["cloned_card"] == 1);
  CHECK(summary["taps"]["by_result"]["forged_balance"] == 1);
  CHECK(summary["taps"]["accepted"] == file.rows + 10);
  CHECK(summary["taps"]["duplicates"] == 6);
  CHECK(summary["taps"]["rejected"] == 2);
  CHECK(summary["city_taps"]["paid_fen"] == 16670);
  // The car park's reader talks over a serial line (a pseudo-terminal), the taxi's over TCP.
  CHECK(summary["city_taps"]["serial"].get<std::string>().rfind("/dev/pts/", 0) == 0);
  CHECK(summary["alerts"]["cloned_card"] == 1);
  CHECK(summary["alerts"]["forged_balance"] == 1);
  CHECK(summary["bills"]["by_status"]["paid"] == 8);
  CHECK(summary["bills"]["by_status"]["insufficient_funds"] == 1);
  CHECK(summary["bills"]["by_status"]["no_mandate"] == 1);
  CHECK(summary["bills"]["by_status"]["unknown_card"] == 1);
  CHECK(summary["hospital"]["identity"] == "valid");
  CHECK(summary["hospital"]["lost_card_identity"] == "card_not_valid");
  const nlohmann::json& bill = summary["hospital"];
  CHECK(bill["amount_fen"] == 68000);
  CHECK(bill["fund_fen"].get<int64_t>() + bill["medical_account_fen"].get<int64_t>() +
            bill["purse_fen"].get<int64_t>() + bill["assistance_fen"].get<int64_t>() ==
        68000);
  CHECK(summary["settlement"]["replay_taps"] == file.rows);
  CHECK(summary["settlement"]["replay_paid_fen"] == file.paid_fen);
  CHECK(summary["settlement"]["taps"] == file.rows + 10);
  CHECK(summary["audit"]["ok"] == true);
  CHECK(summary["audit"]["problems"].empty());
  for (const nlohmann::json& step : summary["steps"]) CHECK(step["ok"] == true);
}

TEST_CASE("A working folder that cannot be created stops the demo before anything runs",
          "[tools][demo]") {
  CliSandbox box(CITYCARD_BIN);
  CliResult bad = box.Json({"demo", "--short", "--dir", "/proc/citycard-demo"},
                           {{"CITYCARD_DATA", kEvening}});
  INFO(bad.out << bad.err);
  CHECK(bad.exit_code == 1);
  CHECK(bad.json()["error"]["code"] == "demo_dir_failed");
}
