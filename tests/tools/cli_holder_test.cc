#include <catch2/catch.hpp>

#include "tests/support/cli_runner_support.h"

using citycard::testing::CliSandbox;

namespace {

const char kHeader[] = "national_id,name,schemes,groups,medical_account\n";

struct HolderBox {
  HolderBox() { REQUIRE(box.Run({"init"}).exit_code == 0); }
  CliSandbox box{CITYCARD_BIN};
};

}  // namespace

TEST_CASE("holder import creates holders; the same file again changes nothing",
          "[tools][cli][holder]") {
  HolderBox f;
  f.box.Write("registry.csv", std::string(kHeader) +
                                  "321281199001011234,张三,pension|medical,,120.50\n"
                                  "11010519491231002X,李四,medical,elderly|low_income,0\n");
  auto result = f.box.Json({"holder", "import", f.box.Path("registry.csv")});
  REQUIRE(result.exit_code == 0);
  auto json = result.json();
  REQUIRE(json["lines"] == 2);
  REQUIRE(json["created"] == 2);
  REQUIRE(json["updated"] == 0);
  REQUIRE(json["unchanged"] == 0);
  REQUIRE(json["skipped"] == 0);
  REQUIRE(json["problems"].empty());
  auto again = f.box.Json({"holder", "import", f.box.Path("registry.csv")}).json();
  REQUIRE(again["created"] == 0);
  REQUIRE(again["unchanged"] == 2);

  auto shown = f.box.Json({"holder", "show", "321281199001011234"});
  REQUIRE(shown.exit_code == 0);
  auto holder = shown.json();
  REQUIRE(holder["holder_id_masked"] == "3212**********1234");
  REQUIRE(holder["name"] == "张三");
  REQUIRE(holder["schemes"] == nlohmann::json::array({"pension", "medical"}));
  REQUIRE(holder["groups"].empty());
  REQUIRE(holder["medical_balance"] == "120.50");
  REQUIRE(holder["medical_balance_fen"] == 12050);
  REQUIRE(holder["cards"].empty());
  REQUIRE(holder["in_registry"] == true);
  REQUIRE(shown.out.find("321281199001011234") == std::string::npos);
  auto li = f.box.Json({"holder", "show", "11010519491231002x"}).json();
  REQUIRE(li["groups"] == nlohmann::json::array({"low_income", "elderly"}));
}

TEST_CASE("holder import applies a changed line as an update", "[tools][cli][holder]") {
  HolderBox f;
  f.box.Write("a.csv", std::string(kHeader) + "321281199001011234,张三,pension,,10\n");
  f.box.Write("b.csv", std::string(kHeader) + "321281199001011234,张三丰,pension|medical,disabled,10\n");
  REQUIRE(f.box.Run({"holder", "import", f.box.Path("a.csv")}).exit_code == 0);
  auto updated = f.box.Json({"holder", "import", f.box.Path("b.csv")}).json();
  REQUIRE(updated["updated"] == 1);
  REQUIRE(updated["created"] == 0);
  auto holder = f.box.Json({"holder", "show", "321281199001011234"}).json();
  REQUIRE(holder["name"] == "张三丰");
  REQUIRE(holder["groups"] == nlohmann::json::array({"disabled"}));
  REQUIRE(holder["medical_balance_fen"] == 1000);
}

TEST_CASE("holder import with bad lines reports each and changes nothing", "[tools][cli][holder]") {
  HolderBox f;
  f.box.Write("bad.csv", std::string(kHeader) +
                             "321281199001011234,张三,pension,,10\n"
                             "321281199001011235,李四,pension,,10\n"
                             "11010519491231002X,王五,pension,rich,10\n");
  auto result = f.box.Json({"holder", "import", f.box.Path("bad.csv")});
  REQUIRE(result.exit_code == 5);
  auto error = result.json()["error"];
  REQUIRE(error["code"] == "invalid_registry_file");
  std::string message = error["message"];
  REQUIRE(message.find("line 3: invalid_national_id") != std::string::npos);
  REQUIRE(message.find("line 4: invalid_group") != std::string::npos);
  REQUIRE(message.find("321281199001011235") == std::string::npos);
  REQUIRE(f.box.Json({"holder", "show", "321281199001011234"}).exit_code == 3);

  auto human = f.box.Run({"holder", "import", f.box.Path("bad.csv")});
  REQUIRE(human.exit_code == 5);
  REQUIRE(human.err.find("line 3: invalid_national_id") != std::string::npos);

  auto skipped = f.box.Json({"holder", "import", "--skip-bad", f.box.Path("bad.csv")});
  REQUIRE(skipped.exit_code == 0);
  REQUIRE(skipped.json()["created"] == 1);
  REQUIRE(skipped.json()["skipped"] == 2);
  REQUIRE(skipped.json()["problems"][0]["line"] == 3);
  REQUIRE(skipped.json()["problems"][1]["code"] == "invalid_group");
  REQUIRE(f.box.Json({"holder", "show", "321281199001011234"}).exit_code == 0);
}

TEST_CASE("holder import refuses a file without the header or that does not exist",
          "[tools][cli][holder]") {
  HolderBox f;
  f.box.Write("noheader.csv", "321281199001011234,张三,pension,,10\n");
  auto result = f.box.Json({"holder", "import", f.box.Path("noheader.csv")});
  REQUIRE(result.exit_code == 5);
  REQUIRE(result.json()["error"]["code"] == "invalid_registry_header");
  auto missing = f.box.Json({"holder", "import", f.box.Path("missing.csv")});
  REQUIRE(missing.exit_code == 3);
  REQUIRE(missing.json()["error"]["code"] == "file_not_found");
  REQUIRE(f.box.Json({"holder", "import"}).exit_code == 2);
}

TEST_CASE("holder show refuses a bad national id and an unknown holder", "[tools][cli][holder]") {
  HolderBox f;
  auto bad = f.box.Json({"holder", "show", "321281199001011235"});
  REQUIRE(bad.exit_code == 5);
  REQUIRE(bad.json()["error"]["code"] == "invalid_national_id");
  auto unknown = f.box.Json({"holder", "show", "321281199001011234"});
  REQUIRE(unknown.exit_code == 3);
  REQUIRE(unknown.json()["error"]["code"] == "holder_not_found");
  REQUIRE(unknown.out.find("321281199001011234") == std::string::npos);
}

TEST_CASE("The plain national id never reaches the database", "[tools][cli][holder]") {
  HolderBox f;
  f.box.Write("r.csv", std::string(kHeader) + "321281199001011234,张三,pension,,10\n");
  REQUIRE(f.box.Run({"holder", "import", f.box.Path("r.csv")}).exit_code == 0);
  REQUIRE(f.box.Run({"card", "issue", "--holder-id", "11010519491231002X", "--name", "李四"})
              .exit_code == 0);
  std::string bytes = f.box.Read("citycard.db") + f.box.Read("citycard.db-wal");
  REQUIRE(bytes.find("3212") != std::string::npos);  // the masked form is there
  REQUIRE(bytes.find("321281199001011234") == std::string::npos);
  REQUIRE(bytes.find("11010519491231002X") == std::string::npos);
  REQUIRE(bytes.find("12811990010112") == std::string::npos);  // not even the middle
}

TEST_CASE("holder show lists the holder's cards", "[tools][cli][holder]") {
  HolderBox f;
  REQUIRE(f.box.Run({"card", "issue", "--holder-id", "321281199001011234", "--name", "张三"})
              .exit_code == 0);
  auto holder = f.box.Json({"holder", "show", "321281199001011234"}).json();
  REQUIRE(holder["cards"] == nlohmann::json::array({"8607550000000012"}));
  REQUIRE(holder["in_registry"] == false);
  auto human = f.box.Run({"holder", "show", "321281199001011234"});
  REQUIRE(human.out.find("Cards            8607550000000012") != std::string::npos);
}
