// `citycard fares load|show` and `citycard pass sell|list|enter`, run as a process.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

std::string Quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

struct Run {
  int exit_code = -1;
  std::string out;
  nlohmann::json json() const {
    auto parsed = nlohmann::json::parse(out, nullptr, false);
    REQUIRE_FALSE(parsed.is_discarded());
    return parsed;
  }
};

// A fresh installation in a directory of its own; every command runs at CITYCARD_NOW.
class Sandbox {
 public:
  Sandbox() {
    dir_ = (std::filesystem::temp_directory_path() /
            ("citycard-cli-fares-" + std::to_string(::getpid()) + "-" + std::to_string(next_++)))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~Sandbox() { std::filesystem::remove_all(dir_); }

  Run Cli(const std::vector<std::string>& args, const std::string& now = "2024-03-01 10:00:00") {
    std::string command = "cd " + Quote(dir_) + " && CITYCARD_DB=" + Quote(dir_ + "/c.db") +
                          " CITYCARD_KEYS=" + Quote(dir_ + "/c.keys") +
                          " CITYCARD_NOW=" + Quote(now) + " " + Quote(CITYCARD_BIN);
    for (const std::string& a : args) command += " " + Quote(a);
    command += " 2>/dev/null </dev/null";
    Run run;
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) run.out.append(buffer, n);
    int status = ::pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
  }
  Run Json(std::vector<std::string> args, const std::string& now = "2024-03-01 10:00:00") {
    args.insert(args.begin(), "--json");
    return Cli(args, now);
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

 private:
  static inline int next_ = 0;
  std::string dir_;
};

std::string TableText(int version, int price_fen = 12000) {
  return R"({"format": "citycard-fares", "format_version": 1, "version": )" +
         std::to_string(version) + R"(, "name": "Test",
  "operators": [
    {"id": "bus1", "name": "Bus One", "mode": "bus", "pricing": {"kind": "flat", "fare_fen": 200}},
    {"id": "spot1", "name": "West Lake", "mode": "scenic", "pricing": {"kind": "flat", "fare_fen": 5000}}
  ],
  "passes": [{"id": "annual", "name": "Annual", "price_fen": )" +
         std::to_string(price_fen) + R"(, "validity_days": 365, "visits": 24,
              "spots": ["spot1"]}]
})";
}

constexpr char kHolderId[] = "321281199001011234";

}  // namespace

TEST_CASE("citycard fares load stores a version and fares show shows it", "[tools][cli][fares]") {
  Sandbox s;
  REQUIRE(s.Cli({"init"}).exit_code == 0);
  Run none = s.Json({"fares", "show"});
  CHECK(none.exit_code == 3);
  CHECK(none.json()["error"]["code"] == "no_fare_table");

  std::string v7 = s.Write("v7.json", TableText(7));
  Run loaded = s.Json({"fares", "load", v7});
  REQUIRE(loaded.exit_code == 0);
  nlohmann::json j = loaded.json();
  CHECK(j["version"] == 7);
  CHECK(j["name"] == "Test");
  CHECK(j["repeated"] == false);
  CHECK(j["operators"] == 2);
  CHECK(j["passes"] == 1);
  CHECK(j["loaded_at"] == "2024-03-01 10:00:00");

  Run again = s.Json({"fares", "load", v7});
  REQUIRE(again.exit_code == 0);
  CHECK(again.json()["repeated"] == true);

  Run clash = s.Json({"fares", "load", s.Write("v7b.json", TableText(7, 9900))});
  CHECK(clash.exit_code == 4);
  CHECK(clash.json()["error"]["code"] == "fare_version_exists");

  REQUIRE(s.Json({"fares", "load", s.Write("v8.json", TableText(8, 15000))}).exit_code == 0);
  Run older = s.Json({"fares", "load", s.Write("v6.json", TableText(6))});
  CHECK(older.exit_code == 4);
  CHECK(older.json()["error"]["code"] == "fare_version_not_newer");

  Run bad = s.Json({"fares", "load", s.Write("bad.json", "{\"format\": \"citycard-fares\",\n}")});
  CHECK(bad.exit_code == 5);
  CHECK(bad.json()["error"]["code"] == "invalid_fare_table");
  Run missing = s.Json({"fares", "load", "nowhere.json"});
  CHECK(missing.exit_code == 3);

  Run show = s.Json({"fares", "show"});
  REQUIRE(show.exit_code == 0);
  nlohmann::json shown = show.json();
  CHECK(shown["version"] == 8);
  REQUIRE(shown["operators"].size() == 2);
  CHECK(shown["operators"][0]["id"] == "bus1");
  CHECK(shown["operators"][0]["mode"] == "bus");
  CHECK(shown["operators"][0]["pricing"] == "flat");
  REQUIRE(shown["passes"].size() == 1);
  CHECK(shown["passes"][0]["price"] == "150.00");
  CHECK(shown["passes"][0]["price_fen"] == 15000);
  CHECK(shown["passes"][0]["visits"] == 24);
  REQUIRE(shown["versions"].size() == 2);
  CHECK(shown["versions"][0]["version"] == 7);
  CHECK(shown["versions"][1]["version"] == 8);

  Run human = s.Cli({"fares", "show"});
  CHECK(human.exit_code == 0);
  CHECK(human.out.find("Fare table version 8 (Test)") != std::string::npos);
  CHECK(human.out.find("¥150.00") != std::string::npos);
}

TEST_CASE("citycard pass sell books the price to the scenic operator and a second entry the same "
          "day is refused",
          "[tools][cli][fares]") {
  Sandbox s;
  REQUIRE(s.Cli({"init"}).exit_code == 0);
  REQUIRE(s.Cli({"operator", "add", "spot1", "--name", "West Lake", "--kind", "scenic"})
              .exit_code == 0);
  REQUIRE(s.Cli({"fares", "load", s.Write("t.json", TableText(7))}).exit_code == 0);
  Run issued = s.Json({"card", "issue", "--holder-id", kHolderId, "--name", "张三"});
  REQUIRE(issued.exit_code == 0);
  std::string card = issued.json()["card_no"];
  REQUIRE(s.Cli({"card", "topup", card, "200.00"}).exit_code == 0);

  Run poor = s.Json({"pass", "sell", card, "annual", "--holder-id", "110101199003074477"});
  CHECK(poor.exit_code == 4);
  CHECK(poor.json()["error"]["code"] == "not_card_holder");
  Run unknown = s.Json({"pass", "sell", card, "weekly", "--holder-id", kHolderId});
  CHECK(unknown.exit_code == 3);
  CHECK(unknown.json()["error"]["code"] == "unknown_pass");

  Run sold = s.Json({"pass", "sell", card, "annual", "--holder-id", kHolderId});
  REQUIRE(sold.exit_code == 0);
  nlohmann::json j = sold.json();
  CHECK(j["card_no"] == card);
  CHECK(j["pass_id"] == "annual");
  CHECK(j["price"] == "120.00");
  CHECK(j["price_fen"] == 12000);
  CHECK(j["operator"] == "spot1");
  CHECK(j["valid_from"] == "2024-03-01");
  CHECK(j["valid_until"] == "2025-02-28");
  CHECK(j["visits_left"] == 24);
  CHECK(j["balance"] == "80.00");
  CHECK(j["balance_fen"] == 8000);
  CHECK(j["repeated"] == false);

  Run shown = s.Json({"card", "show", card});
  REQUIRE(shown.exit_code == 0);
  CHECK(shown.json()["balance_fen"] == 8000);

  Run history = s.Json({"card", "history", card});
  REQUIRE(history.exit_code == 0);
  bool found = false;
  // Keep the parsed document alive for the loop: a range-for over a member of a temporary
  // would read freed memory.
  const auto history_json = history.json();
  for (const auto& e : history_json["entries"]) {
    if (e["kind"] == "pass_sale") {
      found = true;
      CHECK(e["amount_fen"] == -12000);
      CHECK(e["operator"] == "spot1");
    }
  }
  CHECK(found);

  Run twice = s.Json({"pass", "sell", card, "annual", "--holder-id", kHolderId},
                     "2024-03-02 09:00:00");
  CHECK(twice.exit_code == 4);
  CHECK(twice.json()["error"]["code"] == "pass_already_held");

  Run enter = s.Json({"pass", "enter", card, "spot1"}, "2024-03-02 09:00:00");
  REQUIRE(enter.exit_code == 0);
  CHECK(enter.json()["outcome"] == "admitted");
  CHECK(enter.json()["visits_left"] == 23);
  Run second = s.Json({"pass", "enter", card, "spot1"}, "2024-03-02 17:00:00");
  CHECK(second.exit_code == 4);
  CHECK(second.json()["error"]["code"] == "pass_already_entered_today");
  Run next_day = s.Json({"pass", "enter", card, "spot1"}, "2024-03-03 09:00:00");
  CHECK(next_day.exit_code == 0);
  CHECK(next_day.json()["visits_left"] == 22);

  Run audit = s.Json({"audit", "verify"});
  CHECK(audit.exit_code == 0);
}
