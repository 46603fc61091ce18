#include <catch2/catch.hpp>
#include <sys/stat.h>

#include "tests/support/cli_runner_support.h"

using citycard::testing::CliSandbox;

namespace {

unsigned Mode(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("init creates the database and a key file only its owner can read", "[tools][cli]") {
  CliSandbox box(CITYCARD_BIN);
  auto result = box.Json({"init"});
  REQUIRE(result.exit_code == 0);
  auto json = result.json();
  REQUIRE(json["database"] == box.db_path());
  REQUIRE(json["keys"] == box.keys_path());
  REQUIRE(json["core_public_key"].get<std::string>().size() == 64);
  REQUIRE(Mode(box.keys_path()) == 0600);
  // keys public gives the same key afterwards.
  auto keys = box.Json({"keys", "public"});
  REQUIRE(keys.exit_code == 0);
  REQUIRE(keys.json()["algorithm"] == "ed25519");
  REQUIRE(keys.json()["public_key"] == json["core_public_key"]);
  auto human = box.Run({"keys", "public"});
  REQUIRE(human.out == json["core_public_key"].get<std::string>() + "\n");
}

TEST_CASE("init twice refuses to overwrite anything", "[tools][cli]") {
  CliSandbox box(CITYCARD_BIN);
  REQUIRE(box.Run({"init"}).exit_code == 0);
  std::string keys_before = box.Read("citycard.keys");
  auto again = box.Json({"init"});
  REQUIRE(again.exit_code == 4);
  REQUIRE(again.json()["error"]["code"] == "database_exists");
  REQUIRE(box.Read("citycard.keys") == keys_before);
  auto human = box.Run({"init"});
  REQUIRE(human.exit_code == 4);
  REQUIRE(human.out.empty());
  REQUIRE(human.err.find("citycard: database_exists: ") == 0);
}

TEST_CASE("init refuses when only the key file exists, and creates no database",
          "[tools][cli]") {
  CliSandbox box(CITYCARD_BIN);
  box.Write("citycard.keys", "not mine to overwrite");
  auto result = box.Json({"init"});
  REQUIRE(result.exit_code == 4);
  REQUIRE(result.json()["error"]["code"] == "key_file_exists");
  REQUIRE(box.Read("citycard.keys") == "not mine to overwrite");
  struct stat st {};
  REQUIRE(::stat(box.db_path().c_str(), &st) != 0);
}

TEST_CASE("The --db and --keys flags choose the files", "[tools][cli]") {
  CliSandbox box(CITYCARD_BIN);
  auto result = box.Json({"--db", box.Path("other.db"), "--keys", box.Path("other.keys"), "init"});
  REQUIRE(result.exit_code == 0);
  REQUIRE(Mode(box.Path("other.keys")) == 0600);
  // The default paths of the sandbox were not used.
  REQUIRE(box.Json({"keys", "public"}).exit_code == 3);
  REQUIRE(box.Json({"--db", box.Path("other.db"), "--keys", box.Path("other.keys"), "keys",
                    "public"})
              .exit_code == 0);
}

TEST_CASE("A command before init says the database is not found", "[tools][cli]") {
  CliSandbox box(CITYCARD_BIN);
  auto result = box.Json({"card", "show", "8607550000000012"});
  REQUIRE(result.exit_code == 3);
  REQUIRE(result.json()["error"]["code"] == "db_not_found");
}

TEST_CASE("A key file readable by others is refused", "[tools][cli]") {
  CliSandbox box(CITYCARD_BIN);
  REQUIRE(box.Run({"init"}).exit_code == 0);
  REQUIRE(::chmod(box.keys_path().c_str(), 0644) == 0);
  auto result = box.Json({"keys", "public"});
  REQUIRE(result.exit_code == 5);
  REQUIRE(result.json()["error"]["code"] == "key_file_insecure");
}

TEST_CASE("Usage errors exit 2, with a JSON error under --json", "[tools][cli]") {
  CliSandbox box(CITYCARD_BIN);
  REQUIRE(box.Run({"init"}).exit_code == 0);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"frobnicate"}, {"card"}, {"card", "show"},
        {"card", "issue", "--holder-id", "321281199001011234"},
        {"card", "block", "8607550000000012", "--reason", "bored"},
        {"card", "topup", "8607550000000012"}, {"card", "show", "8607550000000012", "--bogus"}}) {
    auto result = box.Json(args);
    INFO(result.out);
    REQUIRE(result.exit_code == 2);
    REQUIRE(result.json()["error"]["code"] == "usage");
  }
  auto human = box.Run({"card", "list", "--status", "lost"});
  REQUIRE(human.exit_code == 2);
  REQUIRE(human.err.find("citycard: usage: ") == 0);
}

TEST_CASE("A malformed CITYCARD_NOW is refused as a usage error", "[tools][cli]") {
  CliSandbox box(CITYCARD_BIN);
  REQUIRE(box.Run({"init"}).exit_code == 0);
  auto result = box.Json({"card", "list"}, {{"CITYCARD_NOW", "yesterday"}});
  REQUIRE(result.exit_code == 2);
  REQUIRE(result.json()["error"]["code"] == "invalid_environment");
}
