#include <catch2/catch.hpp>

#include "core/account_plan.h"
#include "core/terminal_office.h"
#include "tests/support/card_office_fixture_support.h"

using namespace citycard;
using citycard::testing::CardOfficeFixture;

TEST_CASE("Adding an operator creates its payable account", "[core][terminal_office]") {
  CardOfficeFixture f;
  auto op = f.terminals.AddOperator({"METRO", "深圳地铁", OperatorKind::metro, 120});
  REQUIRE(op.ok());
  REQUIRE(op->number == 1);
  REQUIRE(op->payable_account_id == AccountIdFor(AccountKind::operator_payable, 1));
  auto account = f.ledger.LookupAccount(op->payable_account_id);
  REQUIRE(account.ok());
  REQUIRE(account->kind == AccountKind::operator_payable);
  REQUIRE_FALSE(account->enforces_floor());
  auto list = f.terminals.ListOperators();
  REQUIRE(list->size() == 1);
  REQUIRE((*list)[0].name == "深圳地铁");
  REQUIRE((*list)[0].fee_bp == 120);
}

TEST_CASE("Operators are refused for a bad id, fee or name and when they exist",
          "[core][terminal_office]") {
  CardOfficeFixture f;
  REQUIRE(f.terminals.AddOperator({"BUS 1", "x", OperatorKind::bus, 0}).status().code() ==
          "invalid_operator_id");
  REQUIRE(f.terminals.AddOperator({"BUS1", "x", OperatorKind::bus, 10001}).status().code() ==
          "invalid_fee");
  REQUIRE(f.terminals.AddOperator({"BUS1", "x", OperatorKind::bus, -1}).status().code() ==
          "invalid_fee");
  REQUIRE(f.terminals.AddOperator({"BUS1", "", OperatorKind::bus, 0}).status().code() ==
          "invalid_name");
  REQUIRE(f.terminals.AddOperator({"BUS1", "x", OperatorKind::bus, 10000}).ok());
  auto again = f.terminals.AddOperator({"BUS1", "y", OperatorKind::taxi, 0});
  REQUIRE(again.status().code() == "operator_exists");
  REQUIRE(again.status().exit_code() == 4);
  REQUIRE(f.terminals.ListOperators()->size() == 1);
}

TEST_CASE("Registering a terminal stores its key wrapped as version 1", "[core][terminal_office]") {
  CardOfficeFixture f;
  REQUIRE(f.terminals.AddOperator({"BUS01", "巴士", OperatorKind::bus, 0}).ok());
  auto issued = f.terminals.RegisterTerminal({"T0001", "BUS01", TerminalKind::bus, "M101路"});
  REQUIRE(issued.ok());
  REQUIRE(issued->version == 1);
  REQUIRE(issued->plain_key == Bytes(32, 1));
  auto stored = f.terminals.ShowTerminal("T0001");
  REQUIRE(stored->route == "M101路");
  REQUIRE(stored->status == TerminalStatus::active);
  REQUIRE(stored->keys.size() == 1);
  REQUIRE(stored->keys[0].version == 1);
  Bytes wrapped(32, 1);
  wrapped.push_back('W');
  REQUIRE(stored->keys[0].wrapped_key == wrapped);
  REQUIRE(f.terminals.ListTerminals()->size() == 1);
}

TEST_CASE("Terminal registration is refused for unknown operators, bad ids and duplicates",
          "[core][terminal_office]") {
  CardOfficeFixture f;
  auto no_op = f.terminals.RegisterTerminal({"T1", "NOPE", TerminalKind::bus, ""});
  REQUIRE(no_op.status().code() == "operator_not_found");
  REQUIRE(no_op.status().exit_code() == 3);
  REQUIRE(f.terminals.AddOperator({"BUS01", "巴士", OperatorKind::bus, 0}).ok());
  REQUIRE(f.terminals.RegisterTerminal({"T 1", "BUS01", TerminalKind::bus, ""}).status().code() ==
          "invalid_terminal_id");
  REQUIRE(f.terminals.RegisterTerminal({"T1", "BUS01", TerminalKind::bus, "a\nb"}).status().code() ==
          "invalid_route");
  REQUIRE(f.terminals.RegisterTerminal({"T1", "BUS01", TerminalKind::bus, ""}).ok());
  REQUIRE(f.terminals.RegisterTerminal({"T1", "BUS01", TerminalKind::gate, ""}).status().code() ==
          "terminal_exists");
  REQUIRE(f.terminals.ShowTerminal("T2").status().code() == "terminal_not_found");
}

TEST_CASE("Rotating a key adds a version and keeps the old ones", "[core][terminal_office]") {
  CardOfficeFixture f;
  REQUIRE(f.terminals.AddOperator({"BUS01", "巴士", OperatorKind::bus, 0}).ok());
  REQUIRE(f.terminals.RegisterTerminal({"T1", "BUS01", TerminalKind::bus, ""}).ok());
  auto rotated = f.terminals.RotateKey("T1");
  REQUIRE(rotated.ok());
  REQUIRE(rotated->version == 2);
  REQUIRE(rotated->plain_key == Bytes(32, 2));
  auto stored = f.terminals.ShowTerminal("T1");
  REQUIRE(stored->keys.size() == 2);
  REQUIRE(stored->keys[0].version == 1);
  REQUIRE(stored->keys[1].version == 2);
  REQUIRE(stored->current_key_version() == 2);
}

TEST_CASE("A disabled terminal stays disabled and gets no new key", "[core][terminal_office]") {
  CardOfficeFixture f;
  REQUIRE(f.terminals.AddOperator({"BUS01", "巴士", OperatorKind::bus, 0}).ok());
  REQUIRE(f.terminals.RegisterTerminal({"T1", "BUS01", TerminalKind::bus, ""}).ok());
  auto disabled = f.terminals.DisableTerminal("T1");
  REQUIRE(disabled->status == TerminalStatus::disabled);
  REQUIRE(f.terminals.ShowTerminal("T1")->status == TerminalStatus::disabled);
  REQUIRE(f.terminals.DisableTerminal("T1").status().code() == "terminal_disabled");
  REQUIRE(f.terminals.RotateKey("T1").status().code() == "terminal_disabled");
}
