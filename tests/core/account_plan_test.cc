#include <catch2/catch.hpp>

#include "core/account_plan.h"
#include "tests/support/memory_ledger_store_support.h"

using namespace citycard;

TEST_CASE("Account ids carry their kind and owner", "[core][account_plan]") {
  uint64_t purse = AccountIdFor(AccountKind::card_purse, 8607550000000012ULL);
  REQUIRE(purse == (uint64_t{1} << 56 | 8607550000000012ULL));
  REQUIRE(AccountIdKind(purse) == AccountKind::card_purse);
  REQUIRE(AccountIdOwner(purse) == 8607550000000012ULL);
  REQUIRE(SystemAccountId(AccountKind::refunds) == uint64_t{10} << 56);
  REQUIRE(AccountIdKind(SystemAccountId(AccountKind::topup_clearing)) == AccountKind::topup_clearing);
  REQUIRE(AccountIdOwner(SystemAccountId(AccountKind::topup_clearing)) == 0);
}

TEST_CASE("Transfer codes have stable names", "[core][account_plan]") {
  REQUIRE(TransferCodeName(1) == "topup");
  REQUIRE(TransferCodeName(6) == "replacement");
  REQUIRE(TransferCodeName(16) == "tap");
  REQUIRE(TransferCodeName(999) == "code_999");
}

TEST_CASE("Derived transfer ids depend on domain and key only", "[core][account_plan]") {
  citycard::testing::FakeDigester digester;
  Id128 a = DeriveTransferId(digester, "citycard.topup", "8607550000000012:ref:1");
  REQUIRE(a == DeriveTransferId(digester, "citycard.topup", "8607550000000012:ref:1"));
  REQUIRE_FALSE(a == DeriveTransferId(digester, "citycard.topup", "8607550000000012:ref:2"));
  REQUIRE_FALSE(a == DeriveTransferId(digester, "citycard.deposit", "8607550000000012:ref:1"));
  // The separator keeps ("ab", "c") apart from ("a", "bc").
  REQUIRE_FALSE(DeriveTransferId(digester, "ab", "c") == DeriveTransferId(digester, "a", "bc"));
  REQUIRE_FALSE(a.IsZero());
}
