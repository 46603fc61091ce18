#include <catch2/catch.hpp>
#include <sys/stat.h>

#include "core/bytes.h"
#include "crypto/key_file.h"
#include "crypto/key_wrap.h"
#include "db/database.h"
#include "db/sqlite_registry_store.h"
#include "tests/support/cli_runner_support.h"

using citycard::testing::CliSandbox;

namespace {

struct OperatorBox {
  OperatorBox() {
    REQUIRE(box.Run({"init"}).exit_code == 0);
    REQUIRE(box.Run({"operator", "add", "BUS01", "--name", "巴士集团", "--kind", "bus",
                     "--fee-bp", "50"})
                .exit_code == 0);
  }
  CliSandbox box{CITYCARD_BIN};
};

// The plain key of `version` of a terminal, unwrapped from the database with the key file.
citycard::Bytes StoredKey(const CliSandbox& box, const std::string& terminal_id, int version) {
  auto keys = citycard::crypto::KeyFile::Load(box.keys_path());
  REQUIRE(keys.ok());
  auto db = citycard::db::Database::Open(box.db_path(), false);
  auto store = citycard::db::SqliteRegistryStore::Open(**db);
  auto terminal = (*store)->FindTerminal(terminal_id);
  REQUIRE(terminal->has_value());
  for (const auto& key : (*terminal)->keys) {
    if (key.version != version) continue;
    auto plain = citycard::crypto::UnwrapKey(keys->WrapKey(), key.wrapped_key);
    REQUIRE(plain.ok());
    return *plain;
  }
  FAIL("no such key version");
  return {};
}

void RequireError(const citycard::testing::CliResult& result, int exit_code,
                  const std::string& code) {
  INFO(result.out << result.err);
  REQUIRE(result.exit_code == exit_code);
  REQUIRE(result.json()["error"]["code"] == code);
}

}  // namespace

TEST_CASE("operator add and list", "[tools][cli][operator]") {
  OperatorBox f;
  auto added = f.box.Json({"operator", "add", "METRO", "--name", "深圳地铁", "--kind", "metro"});
  REQUIRE(added.exit_code == 0);
  REQUIRE(added.json()["operator_id"] == "METRO");
  REQUIRE(added.json()["name"] == "深圳地铁");
  REQUIRE(added.json()["kind"] == "metro");
  REQUIRE(added.json()["fee_bp"] == 0);
  auto list = f.box.Json({"operator", "list"}).json();
  REQUIRE(list["operators"].size() == 2);
  REQUIRE(list["operators"][0]["operator_id"] == "BUS01");
  REQUIRE(list["operators"][0]["fee_bp"] == 50);
  auto table = f.box.Run({"operator", "list"});
  REQUIRE(table.out ==
          "OPERATOR  NAME      KIND   FEE BP\n"
          "BUS01     巴士集团  bus        50\n"
          "METRO     深圳地铁  metro       0\n");
}

TEST_CASE("operator add refuses duplicates, bad ids and fees, and missing options",
          "[tools][cli][operator]") {
  OperatorBox f;
  RequireError(f.box.Json({"operator", "add", "BUS01", "--name", "x", "--kind", "bus"}), 4,
               "operator_exists");
  RequireError(f.box.Json({"operator", "add", "BUS 2", "--name", "x", "--kind", "bus"}), 5,
               "invalid_operator_id");
  RequireError(f.box.Json({"operator", "add", "BUS2", "--name", "x", "--kind", "bus", "--fee-bp",
                           "10001"}),
               5, "invalid_fee");
  RequireError(f.box.Json({"operator", "add", "BUS2", "--name", "x"}), 2, "usage");
  RequireError(f.box.Json({"operator", "add", "BUS2", "--name", "x", "--kind", "ferry"}), 2,
               "usage");
  RequireError(f.box.Json({"operator", "add", "BUS2", "--name", "x", "--kind", "bus", "--fee-bp",
                           "ten"}),
               2, "usage");
}

TEST_CASE("terminal register stores the key wrapped and writes the plain key with mode 0600",
          "[tools][cli][terminal]") {
  OperatorBox f;
  auto result = f.box.Json({"terminal", "register", "T0001", "--operator", "BUS01", "--kind", "bus",
                            "--route", "M101路", "--key-out", f.box.Path("t1.key")});
  REQUIRE(result.exit_code == 0);
  auto json = result.json();
  REQUIRE(json["terminal_id"] == "T0001");
  REQUIRE(json["operator_id"] == "BUS01");
  REQUIRE(json["kind"] == "bus");
  REQUIRE(json["route"] == "M101路");
  REQUIRE(json["status"] == "active");
  REQUIRE(json["key_version"] == 1);
  REQUIRE(json["key_versions"] == nlohmann::json::array({1}));
  REQUIRE(json["counter"] == 0);
  REQUIRE(json["key_file"] == f.box.Path("t1.key"));
  struct stat st {};
  REQUIRE(::stat(f.box.Path("t1.key").c_str(), &st) == 0);
  REQUIRE((st.st_mode & 0777) == 0600);
  std::string written = f.box.Read("t1.key");
  REQUIRE(written.size() == 65);
  REQUIRE(written.back() == '\n');
  REQUIRE(written.substr(0, 64) == citycard::ToHex(StoredKey(f.box, "T0001", 1)));
  // The key is not printed.
  REQUIRE(result.out.find(written.substr(0, 64)) == std::string::npos);
}

TEST_CASE("terminal register refuses unknown operators, duplicates and an existing key file",
          "[tools][cli][terminal]") {
  OperatorBox f;
  RequireError(f.box.Json({"terminal", "register", "T1", "--operator", "NOPE", "--kind", "bus"}), 3,
               "operator_not_found");
  REQUIRE(f.box.Run({"terminal", "register", "T1", "--operator", "BUS01", "--kind", "gate"})
              .exit_code == 0);
  RequireError(f.box.Json({"terminal", "register", "T1", "--operator", "BUS01", "--kind", "bus"}),
               4, "terminal_exists");
  f.box.Write("taken.key", "x");
  RequireError(f.box.Json({"terminal", "register", "T2", "--operator", "BUS01", "--kind", "bus",
                           "--key-out", f.box.Path("taken.key")}),
               4, "file_exists");
  REQUIRE(f.box.Read("taken.key") == "x");
  RequireError(f.box.Json({"terminal", "show", "T2"}), 3, "terminal_not_found");
  RequireError(f.box.Json({"terminal", "register", "T/2", "--operator", "BUS01", "--kind", "bus"}),
               5, "invalid_terminal_id");
  RequireError(f.box.Json({"terminal", "register", "T2", "--operator", "BUS01", "--kind", "ferry"}),
               2, "usage");
}

TEST_CASE("terminal rotate-key adds a version and keeps the old one", "[tools][cli][terminal]") {
  OperatorBox f;
  REQUIRE(f.box.Run({"terminal", "register", "T1", "--operator", "BUS01", "--kind", "bus",
                     "--key-out", f.box.Path("v1.key")})
              .exit_code == 0);
  auto rotated = f.box.Json({"terminal", "rotate-key", "T1", "--key-out", f.box.Path("v2.key")});
  REQUIRE(rotated.exit_code == 0);
  REQUIRE(rotated.json()["key_version"] == 2);
  REQUIRE(rotated.json()["issued_key_version"] == 2);
  REQUIRE(rotated.json()["key_versions"] == nlohmann::json::array({1, 2}));
  REQUIRE(f.box.Read("v1.key").substr(0, 64) == citycard::ToHex(StoredKey(f.box, "T1", 1)));
  REQUIRE(f.box.Read("v2.key").substr(0, 64) == citycard::ToHex(StoredKey(f.box, "T1", 2)));
  REQUIRE(f.box.Read("v1.key") != f.box.Read("v2.key"));
  RequireError(f.box.Json({"terminal", "rotate-key", "T9"}), 3, "terminal_not_found");
}

TEST_CASE("terminal list, show and disable", "[tools][cli][terminal]") {
  OperatorBox f;
  REQUIRE(f.box.Run({"terminal", "register", "T2", "--operator", "BUS01", "--kind", "bus"})
              .exit_code == 0);
  REQUIRE(f.box.Run({"terminal", "register", "T1", "--operator", "BUS01", "--kind", "kiosk",
                     "--route", "市民中心"})
              .exit_code == 0);
  auto list = f.box.Json({"terminal", "list"}).json();
  REQUIRE(list["terminals"].size() == 2);
  REQUIRE(list["terminals"][0]["terminal_id"] == "T1");
  REQUIRE(list["terminals"][0]["kind"] == "kiosk");
  auto shown = f.box.Json({"terminal", "show", "T1"}).json();
  REQUIRE(shown["route"] == "市民中心");
  auto disabled = f.box.Json({"terminal", "disable", "T1"});
  REQUIRE(disabled.exit_code == 0);
  REQUIRE(disabled.json()["status"] == "disabled");
  REQUIRE(f.box.Json({"terminal", "show", "T1"}).json()["status"] == "disabled");
  RequireError(f.box.Json({"terminal", "disable", "T1"}), 4, "terminal_disabled");
  RequireError(f.box.Json({"terminal", "rotate-key", "T1"}), 4, "terminal_disabled");
  auto table = f.box.Run({"terminal", "list"});
  REQUIRE(table.out ==
          "TERMINAL  OPERATOR  KIND   ROUTE     STATUS    KEY  COUNTER\n"
          "T1        BUS01     kiosk  市民中心  disabled    1        0\n"
          "T2        BUS01     bus              active      1        0\n");
}
