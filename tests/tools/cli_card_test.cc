#include <catch2/catch.hpp>

#include "db/database.h"
#include "db/sqlite_registry_store.h"
#include "tests/support/cli_runner_support.h"

using citycard::testing::CliSandbox;
using Env = std::map<std::string, std::string>;

namespace {

const char kAlice[] = "321281199001011234";
const char kBob[] = "11010519491231002X";
const char kCard1[] = "8607550000000012";
const char kCard2[] = "8607550000000020";
const char kUnknownCard[] = "8607550000000996";  // well-formed, never issued
const Env kMarch1 = {{"CITYCARD_NOW", "2024-03-01 10:00:00"}};

// An initialised sandbox with one adult card (kCard1, deposit ¥20) issued on 2024-03-01.
struct CardBox {
  CardBox() {
    REQUIRE(box.Run({"init"}).exit_code == 0);
    auto issued = box.Json({"card", "issue", "--holder-id", kAlice, "--name", "张三", "--deposit",
                            "20"},
                           kMarch1);
    REQUIRE(issued.exit_code == 0);
    REQUIRE(issued.json()["card_no"] == kCard1);
  }
  nlohmann::json Card(const std::string& card_no, const Env& env = kMarch1) {
    auto shown = box.Json({"card", "show", card_no}, env);
    REQUIRE(shown.exit_code == 0);
    return shown.json();
  }
  CliSandbox box{CITYCARD_BIN};
};

// Whether the registry in the sandbox's database has the card on its denylist.
bool Denylisted(const CliSandbox& box, const std::string& card_no) {
  auto db = citycard::db::Database::Open(box.db_path(), false);
  REQUIRE(db.ok());
  auto store = citycard::db::SqliteRegistryStore::Open(**db);
  REQUIRE(store.ok());
  auto entry = (*store)->DenylistFind(card_no);
  REQUIRE(entry.ok());
  return entry->has_value();
}

void RequireError(const citycard::testing::CliResult& result, int exit_code,
                  const std::string& code) {
  INFO(result.out << result.err);
  REQUIRE(result.exit_code == exit_code);
  REQUIRE(result.json()["error"]["code"] == code);
  REQUIRE(result.json()["error"]["message"].is_string());
}

}  // namespace

TEST_CASE("card issue prints the new card with every contract key", "[tools][cli][card]") {
  CliSandbox box(CITYCARD_BIN);
  REQUIRE(box.Run({"init"}).exit_code == 0);
  auto result = box.Json({"card", "issue", "--holder-id", kAlice, "--name", "张三", "--profile",
                          "student", "--deposit", "20.5"},
                         kMarch1);
  REQUIRE(result.exit_code == 0);
  auto card = result.json();
  REQUIRE(card["card_no"] == kCard1);
  REQUIRE(card["status"] == "active");
  REQUIRE(card["profile"] == "student");
  REQUIRE(card["holder_name"] == "张三");
  REQUIRE(card["holder_id_masked"] == "3212**********1234");
  REQUIRE(card["balance"] == "0.00");
  REQUIRE(card["balance_fen"] == 0);
  REQUIRE(card["deposit"] == "20.50");
  REQUIRE(card["deposit_fen"] == 2050);
  REQUIRE(card["expires"] == "2034-03-01");
  REQUIRE(card["issued"] == "2024-03-01 10:00:00");
  REQUIRE_FALSE(card.contains("block_reason"));
  REQUIRE_FALSE(card.contains("replaced_by"));
  // The plain national id is in no output.
  REQUIRE(result.out.find(kAlice) == std::string::npos);
  auto with_expiry = box.Json({"card", "issue", "--holder-id", kBob, "--name", "Li Si",
                               "--expires", "2030-12-31"},
                              kMarch1);
  REQUIRE(with_expiry.json()["expires"] == "2030-12-31");
  REQUIRE(with_expiry.json()["profile"] == "adult");
  REQUIRE(with_expiry.json()["deposit_fen"] == 0);
}

TEST_CASE("card issue refuses bad input with exit 5", "[tools][cli][card]") {
  CliSandbox box(CITYCARD_BIN);
  REQUIRE(box.Run({"init"}).exit_code == 0);
  RequireError(box.Json({"card", "issue", "--holder-id", "321281199001011235", "--name", "张三"}),
               5, "invalid_national_id");
  RequireError(box.Json({"card", "issue", "--holder-id", kAlice, "--name", "张三", "--deposit",
                         "12.345"}),
               5, "invalid_amount");
  RequireError(box.Json({"card", "issue", "--holder-id", kAlice, "--name", "张三", "--expires",
                         "2024-02-30"}),
               5, "invalid_date");
  RequireError(box.Json({"card", "issue", "--holder-id", kAlice, "--name", "张三", "--expires",
                         "2024-02-28"},
                        kMarch1),
               5, "invalid_expiry");
  auto list = box.Json({"card", "list"});
  REQUIRE(list.json()["cards"].empty());
}

TEST_CASE("card show finds a card, refuses a mistyped number and an unknown card",
          "[tools][cli][card]") {
  CardBox f;
  REQUIRE(f.Card(kCard1)["balance_fen"] == 0);
  RequireError(f.box.Json({"card", "show", kUnknownCard}), 3, "card_not_found");
  RequireError(f.box.Json({"card", "show", "8607550000000013"}), 5, "invalid_card_no");
  auto human = f.box.Run({"card", "show", kCard1}, kMarch1);
  REQUIRE(human.exit_code == 0);
  REQUIRE(human.out.find("Balance  ¥0.00\n") != std::string::npos);
  REQUIRE(human.out.find("Deposit  ¥20.00\n") != std::string::npos);
  REQUIRE(human.out.find("Holder   张三 (3212**********1234)\n") != std::string::npos);
  REQUIRE(human.out.find("Issued   2024-03-01 10:00:00\n") != std::string::npos);
}

TEST_CASE("card topup credits the purse and prints the card and the transfer id",
          "[tools][cli][card]") {
  CardBox f;
  auto result = f.box.Json({"card", "topup", kCard1, "12.5"}, kMarch1);
  REQUIRE(result.exit_code == 0);
  auto json = result.json();
  REQUIRE(json["card_no"] == kCard1);
  REQUIRE(json["balance"] == "12.50");
  REQUIRE(json["balance_fen"] == 1250);
  REQUIRE(json["amount"] == "12.50");
  REQUIRE(json["amount_fen"] == 1250);
  REQUIRE(json["transfer_id"].get<std::string>().size() == 32);
  REQUIRE(json["repeated"] == false);
  // With a reference, a repeat moves no money.
  auto first = f.box.Json({"card", "topup", kCard1, "1", "--ref", "K7-1"}, kMarch1);
  auto again = f.box.Json({"card", "topup", kCard1, "1", "--ref", "K7-1"}, kMarch1);
  REQUIRE(again.exit_code == 0);
  REQUIRE(again.json()["repeated"] == true);
  REQUIRE(again.json()["transfer_id"] == first.json()["transfer_id"]);
  REQUIRE(again.json()["balance_fen"] == 1350);
  RequireError(f.box.Json({"card", "topup", kCard1, "2", "--ref", "K7-1"}), 4, "transfer_conflict");
  auto human = f.box.Run({"card", "topup", kCard1, "0.01"});
  REQUIRE(human.out.find("Topped up ¥0.01 to card 8607550000000012") == 0);
}

TEST_CASE("card topup refuses bad amounts, unknown and blocked cards", "[tools][cli][card]") {
  CardBox f;
  for (const char* bad : {"12.345", "-3", "1e3", "abc", "0", "12.", ""}) {
    INFO(bad);
    RequireError(f.box.Json({"card", "topup", kCard1, bad}), 5, "invalid_amount");
  }
  RequireError(f.box.Json({"card", "topup", kUnknownCard, "5"}), 3, "card_not_found");
  RequireError(f.box.Json({"card", "topup", "12345", "5"}), 5, "invalid_card_no");
  RequireError(f.box.Json({"card", "topup", kCard1, "1000.01"}), 4, "purse_limit_exceeded");
  REQUIRE(f.box.Run({"card", "block", kCard1, "--reason", "lost"}).exit_code == 0);
  RequireError(f.box.Json({"card", "topup", kCard1, "5"}), 4, "card_blocked");
  REQUIRE(f.Card(kCard1)["balance_fen"] == 0);
}

TEST_CASE("card block denylists at once; unblock lifts it", "[tools][cli][card]") {
  CardBox f;
  auto blocked = f.box.Json({"card", "block", kCard1, "--reason", "stolen"});
  REQUIRE(blocked.exit_code == 0);
  REQUIRE(blocked.json()["status"] == "blocked");
  REQUIRE(blocked.json()["block_reason"] == "stolen");
  REQUIRE(blocked.json()["denylist_version"] == 1);
  REQUIRE(Denylisted(f.box, kCard1));
  RequireError(f.box.Json({"card", "block", kCard1, "--reason", "lost"}), 4, "card_blocked");
  RequireError(f.box.Json({"card", "block", kUnknownCard, "--reason", "lost"}), 3,
               "card_not_found");
  auto unblocked = f.box.Json({"card", "unblock", kCard1});
  REQUIRE(unblocked.exit_code == 0);
  REQUIRE(unblocked.json()["status"] == "active");
  REQUIRE_FALSE(unblocked.json().contains("block_reason"));
  REQUIRE(unblocked.json()["denylist_version"] == 2);
  REQUIRE_FALSE(Denylisted(f.box, kCard1));
  RequireError(f.box.Json({"card", "unblock", kCard1}), 4, "card_not_blocked");
}

TEST_CASE("card replace denylists the old card at once and moves the balance once after the "
          "hold period",
          "[tools][cli][card]") {
  CardBox f;
  REQUIRE(f.box.Run({"card", "topup", kCard1, "30"}, kMarch1).exit_code == 0);
  REQUIRE(f.box.Run({"card", "block", kCard1, "--reason", "lost"}, kMarch1).exit_code == 0);
  auto replaced = f.box.Json({"card", "replace", kCard1}, kMarch1);
  REQUIRE(replaced.exit_code == 0);
  auto json = replaced.json();
  REQUIRE(json["old"]["card_no"] == kCard1);
  REQUIRE(json["old"]["status"] == "replaced");
  REQUIRE(json["old"]["replaced_by"] == kCard2);
  REQUIRE(json["old"]["block_reason"] == "lost");
  REQUIRE(json["old"]["balance_fen"] == 3000);
  REQUIRE(json["old"]["balance_move_due"] == "2024-03-04 10:00:00");
  REQUIRE(json["new"]["card_no"] == kCard2);
  REQUIRE(json["new"]["status"] == "active");
  REQUIRE(json["new"]["balance_fen"] == 0);
  REQUIRE(json["new"]["deposit_fen"] == 2000);
  REQUIRE(json["new"]["replaces"] == kCard1);
  REQUIRE(json["new"]["holder_id_masked"] == "3212**********1234");
  REQUIRE(json["balance_moved"] == false);
  REQUIRE(Denylisted(f.box, kCard1));

  Env early = {{"CITYCARD_NOW", "2024-03-04 09:59:59"}};
  Env due = {{"CITYCARD_NOW", "2024-03-04 10:00:00"}};
  REQUIRE(f.box.Json({"card", "move-balances"}, early).json()["moved"] == 0);
  REQUIRE(f.Card(kCard2, early)["balance_fen"] == 0);
  REQUIRE(f.box.Json({"card", "move-balances"}, due).json()["moved"] == 1);
  REQUIRE(f.Card(kCard2, due)["balance_fen"] == 3000);
  REQUIRE(f.Card(kCard1, due)["balance_fen"] == 0);
  REQUIRE(f.Card(kCard1, due)["balance_moved"] == true);
  REQUIRE(f.box.Json({"card", "move-balances"}, due).json()["moved"] == 0);
  REQUIRE(f.Card(kCard2, due)["balance_fen"] == 3000);
  RequireError(f.box.Json({"card", "replace", kCard1}), 4, "card_replaced");
  RequireError(f.box.Json({"card", "topup", kCard1, "1"}), 4, "card_replaced");
}

TEST_CASE("card replace --now moves the balance at once; the hold period is configurable",
          "[tools][cli][card]") {
  CardBox f;
  REQUIRE(f.box.Run({"card", "topup", kCard1, "7.25"}, kMarch1).exit_code == 0);
  auto replaced = f.box.Json({"card", "replace", kCard1, "--now"}, kMarch1);
  REQUIRE(replaced.exit_code == 0);
  REQUIRE(replaced.json()["balance_moved"] == true);
  REQUIRE(replaced.json()["moved_fen"] == 725);
  REQUIRE(replaced.json()["new"]["balance_fen"] == 725);
  REQUIRE(replaced.json()["old"]["balance_fen"] == 0);
  REQUIRE(Denylisted(f.box, kCard1));
  REQUIRE(f.box.Json({"card", "move-balances"}, {{"CITYCARD_NOW", "2025-01-01 00:00:00"}})
              .json()["moved"] == 0);
  REQUIRE(f.Card(kCard2)["balance_fen"] == 725);

  // A hold of one hour, set by the environment.
  Env one_hour = {{"CITYCARD_NOW", "2024-03-01 10:00:00"}, {"CITYCARD_REPLACEMENT_HOLD_S", "3600"}};
  auto second = f.box.Json({"card", "replace", kCard2}, one_hour);
  REQUIRE(second.json()["old"]["balance_move_due"] == "2024-03-01 11:00:00");
}

TEST_CASE("card close refunds purse and deposit and denylists the card", "[tools][cli][card]") {
  CardBox f;
  REQUIRE(f.box.Run({"card", "topup", kCard1, "12.34"}).exit_code == 0);
  auto closed = f.box.Json({"card", "close", kCard1});
  REQUIRE(closed.exit_code == 0);
  auto json = closed.json();
  REQUIRE(json["status"] == "closed");
  REQUIRE(json["balance_fen"] == 0);
  REQUIRE(json["purse_refund"] == "12.34");
  REQUIRE(json["purse_refund_fen"] == 1234);
  REQUIRE(json["deposit_refund"] == "20.00");
  REQUIRE(json["deposit_refund_fen"] == 2000);
  REQUIRE(json["transfer_ids"].size() == 2);
  REQUIRE(Denylisted(f.box, kCard1));
  RequireError(f.box.Json({"card", "close", kCard1}), 4, "card_closed");
  RequireError(f.box.Json({"card", "topup", kCard1, "1"}), 4, "card_closed");
  RequireError(f.box.Json({"card", "close", kUnknownCard}), 3, "card_not_found");
}

TEST_CASE("card history lists the purse's entries newest first", "[tools][cli][card]") {
  CardBox f;
  REQUIRE(f.box.Run({"card", "topup", kCard1, "10"}, kMarch1).exit_code == 0);
  REQUIRE(f.box.Run({"card", "topup", kCard1, "2.5"}, {{"CITYCARD_NOW", "2024-03-02 08:30:00"}})
              .exit_code == 0);
  auto result = f.box.Json({"card", "history", kCard1});
  REQUIRE(result.exit_code == 0);
  auto json = result.json();
  REQUIRE(json["card_no"] == kCard1);
  REQUIRE(json["entries"].size() == 2);
  auto newest = json["entries"][0];
  REQUIRE(newest["time"] == "2024-03-02 08:30:00");
  REQUIRE(newest["kind"] == "topup");
  REQUIRE(newest["amount_fen"] == 250);
  REQUIRE(newest["amount"] == "2.50");
  REQUIRE(newest["balance_after_fen"] == 1250);
  REQUIRE(newest["operator"].is_null());
  REQUIRE(newest["transfer_id"].get<std::string>().size() == 32);
  REQUIRE(json["entries"][1]["balance_after_fen"] == 1000);
  REQUIRE(f.box.Json({"card", "history", kCard1, "--limit", "1"}).json()["entries"].size() == 1);
  RequireError(f.box.Json({"card", "history", kUnknownCard}), 3, "card_not_found");
  REQUIRE(f.box.Json({"card", "history", kCard1, "--limit", "0"}).exit_code == 2);
}

TEST_CASE("card list filters by status and holder and aligns Chinese names",
          "[tools][cli][card]") {
  CardBox f;
  REQUIRE(f.box.Run({"card", "issue", "--holder-id", kBob, "--name", "Li Si"}, kMarch1).exit_code ==
          0);
  REQUIRE(f.box.Run({"card", "block", kCard2, "--reason", "damaged"}).exit_code == 0);
  auto all = f.box.Json({"card", "list"}, kMarch1).json();
  REQUIRE(all["cards"].size() == 2);
  auto blocked = f.box.Json({"card", "list", "--status", "blocked"}, kMarch1).json();
  REQUIRE(blocked["cards"].size() == 1);
  REQUIRE(blocked["cards"][0]["card_no"] == kCard2);
  auto alice = f.box.Json({"card", "list", "--holder-id", kAlice}, kMarch1).json();
  REQUIRE(alice["cards"].size() == 1);
  REQUIRE(alice["cards"][0]["card_no"] == kCard1);
  RequireError(f.box.Json({"card", "list", "--holder-id", "123"}), 5, "invalid_national_id");
  auto expired = f.box.Json({"card", "list", "--status", "expired"},
                            {{"CITYCARD_NOW", "2034-03-02 00:00:00"}});
  REQUIRE(expired.json()["cards"].size() == 1);  // the blocked card is not "expired"
  REQUIRE(expired.json()["cards"][0]["status"] == "expired");

  auto table = f.box.Run({"card", "list"}, kMarch1);
  REQUIRE(table.out ==
          "CARD NO           STATUS             PROFILE  HOLDER  ID                  BALANCE  EXPIRES\n"
          "8607550000000012  active             adult    张三    3212**********1234    ¥0.00  2034-03-01\n"
          "8607550000000020  blocked (damaged)  adult    Li Si   1101**********002X    ¥0.00  2034-03-01\n"
          "2 card(s)\n");
}

TEST_CASE("The --quiet flag prints nothing on success but still reports errors", "[tools][cli][card]") {
  CardBox f;
  auto quiet = f.box.Run({"--quiet", "card", "topup", kCard1, "1"});
  REQUIRE(quiet.exit_code == 0);
  REQUIRE(quiet.out.empty());
  auto failed = f.box.Run({"--quiet", "card", "topup", kUnknownCard, "1"});
  REQUIRE(failed.exit_code == 3);
  REQUIRE(failed.err.find("card_not_found") != std::string::npos);
}
