#include <catch2/catch.hpp>

#include "core/registry.h"

using namespace citycard;

TEST_CASE("Registry enums round-trip through their names", "[core][registry]") {
  for (auto s : {Scheme::pension, Scheme::medical, Scheme::unemployment, Scheme::work_injury,
                 Scheme::maternity}) {
    REQUIRE(ParseScheme(SchemeName(s)) == s);
  }
  for (auto g : {SpecialGroup::low_income, SpecialGroup::social_assistance, SpecialGroup::disabled,
                 SpecialGroup::elderly}) {
    REQUIRE(ParseSpecialGroup(SpecialGroupName(g)) == g);
  }
  for (auto s : {CardStatus::active, CardStatus::blocked, CardStatus::replaced, CardStatus::closed,
                 CardStatus::expired}) {
    REQUIRE(ParseCardStatus(CardStatusName(s)) == s);
  }
  for (auto k : {OperatorKind::bus, OperatorKind::metro, OperatorKind::taxi, OperatorKind::parking,
                 OperatorKind::utility, OperatorKind::hospital, OperatorKind::scenic,
                 OperatorKind::counter}) {
    REQUIRE(ParseOperatorKind(OperatorKindName(k)) == k);
  }
  REQUIRE(ParseTerminalKind("gate") == TerminalKind::gate);
  REQUIRE(ParseTerminalKind("kiosk") == TerminalKind::kiosk);
  REQUIRE(TerminalKindName(TerminalKind::metro) == "metro");
  REQUIRE(CardStatusName(CardStatus::replaced) == "replaced");
  REQUIRE(SchemeName(Scheme::work_injury) == "work_injury");
}

TEST_CASE("Unknown names parse to nothing", "[core][registry]") {
  REQUIRE_FALSE(ParseScheme("Pension").has_value());
  REQUIRE_FALSE(ParseSpecialGroup("").has_value());
  REQUIRE_FALSE(ParseCardStatus("none").has_value());
  REQUIRE_FALSE(ParseBlockReason("none").has_value());
  REQUIRE_FALSE(ParseOperatorKind("gate").has_value());
  REQUIRE_FALSE(ParseTerminalKind("ferry").has_value());
}

TEST_CASE("Block reasons map onto the same denylist reasons", "[core][registry]") {
  REQUIRE(BlockReasonName(BlockReason::none).empty());
  REQUIRE(BlockReasonName(BlockReason::fraud) == "fraud");
  REQUIRE(ParseBlockReason("damaged") == BlockReason::damaged);
  REQUIRE(DenyReasonFor(BlockReason::lost) == DenyReason::lost);
  REQUIRE(DenyReasonFor(BlockReason::stolen) == DenyReason::stolen);
  REQUIRE(DenyReasonFor(BlockReason::damaged) == DenyReason::damaged);
  REQUIRE(DenyReasonFor(BlockReason::fraud) == DenyReason::fraud);
  REQUIRE(DenyReasonName(DenyReason::negative_balance) == "negative_balance");
}

TEST_CASE("Operator and terminal ids are 1 to 16 safe characters", "[core][registry]") {
  REQUIRE(ValidateRegistryId("BUS01", "invalid_operator_id").ok());
  REQUIRE(ValidateRegistryId("metro_line-1", "invalid_operator_id").ok());
  REQUIRE(ValidateRegistryId("A234567890123456", "invalid_operator_id").ok());
  for (const char* bad : {"", "A2345678901234567", "bus 1", "巴士", "a/b"}) {
    INFO(bad);
    Status s = ValidateRegistryId(bad, "invalid_terminal_id");
    REQUIRE(s.code() == "invalid_terminal_id");
    REQUIRE(s.exit_code() == 5);
  }
}

TEST_CASE("A terminal's current key version is its last", "[core][registry]") {
  Terminal terminal;
  REQUIRE(terminal.current_key_version() == 0);
  terminal.keys.push_back(TerminalKey{1, {1}, 0, false});
  terminal.keys.push_back(TerminalKey{2, {2}, 0, false});
  REQUIRE(terminal.current_key_version() == 2);
}
