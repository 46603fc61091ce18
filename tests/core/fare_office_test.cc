#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/fare_office.h"
#include "core/national_id.h"
#include "tests/support/card_office_fixture_support.h"
#include "tests/support/memory_fare_store_support.h"

using namespace citycard;
using citycard::testing::CardOfficeFixture;
using citycard::testing::MemoryFareStore;

namespace {

// Version `version` of a small table: a bus, two scenic spots, and three passes.
std::string TableText(int64_t version, int64_t annual_price_fen = 12000) {
  return fmt::format(R"({{
  "format": "citycard-fares", "format_version": 1, "version": {}, "name": "Test v{}",
  "operators": [
    {{"id": "bus1", "name": "Bus One", "mode": "bus", "pricing": {{"kind": "flat", "fare_fen": 200}}}},
    {{"id": "spot1", "mode": "scenic", "pricing": {{"kind": "flat", "fare_fen": 5000}}}},
    {{"id": "spot2", "mode": "scenic", "pricing": {{"kind": "flat", "fare_fen": 3000}}}}
  ],
  "passes": [
    {{"id": "annual", "name": "Annual", "price_fen": {}, "validity_days": 365, "visits": 3,
      "spots": ["spot1", "spot2"], "profiles": ["adult", "elderly"]}},
    {{"id": "spot2only", "price_fen": 500, "validity_days": 30, "visits": 10, "spots": ["spot2"]}}
  ]
}})",
                     version, version, annual_price_fen);
}

constexpr char kHolderId[] = "321281199001011234";
constexpr int64_t kDayMs = 86'400'000;

struct FareOfficeFixture {
  FareOfficeFixture() {
    REQUIRE(f.terminals.AddOperator({"spot1", "West Lake", OperatorKind::scenic, 0}).ok());
    REQUIRE(f.terminals.AddOperator({"bus1", "Bus One", OperatorKind::bus, 0}).ok());
  }
  // Loads version 1 and issues an adult card holding `balance_fen`.
  std::string ReadyCard(int64_t balance_fen) {
    REQUIRE(fares.LoadTable(TableText(1)).ok());
    CardView card = f.IssueAdult(kHolderId);
    if (balance_fen > 0) REQUIRE(f.office.Topup(card.card.card_no, balance_fen, "t1").ok());
    return card.card.card_no;
  }
  uint64_t Purse(const std::string& card_no) {
    return AccountIdFor(AccountKind::card_purse, CardNumberToInt(card_no));
  }
  int64_t Payable(const std::string& operator_id) {
    auto op = f.registry.FindOperator(operator_id);
    REQUIRE(op.ok());
    REQUIRE(op->has_value());
    return f.Balance((*op)->payable_account_id);
  }

  CardOfficeFixture f;
  MemoryFareStore store{f.registry};
  FareOffice fares{store, f.registry, f.ledger, f.office, f.digester, f.clock};
};

}  // namespace

// ---- Loading and versions ----------------------------------------------------------------

TEST_CASE("Loading a fare table stores its version and its text as given", "[core][fare_office]") {
  FareOfficeFixture x;
  auto loaded = x.fares.LoadTable(TableText(1));
  REQUIRE(loaded.ok());
  CHECK_FALSE(loaded->repeated);
  CHECK(loaded->table.version == 1);
  CHECK(loaded->table.name == "Test v1");
  CHECK(loaded->table.json == TableText(1));
  CHECK(loaded->table.loaded_ms == testing::kFixtureStartMs);
  auto current = x.fares.CurrentTable();
  REQUIRE(current.ok());
  CHECK(*current == loaded->table);
}

TEST_CASE("Loading the same version with the same text again is repeated and changes nothing",
          "[core][fare_office]") {
  FareOfficeFixture x;
  REQUIRE(x.fares.LoadTable(TableText(1)).ok());
  x.f.clock.AdvanceMs(1000);
  auto again = x.fares.LoadTable(TableText(1));
  REQUIRE(again.ok());
  CHECK(again->repeated);
  CHECK(again->table.loaded_ms == testing::kFixtureStartMs);
  CHECK(x.store.ListTables()->size() == 1);
}

TEST_CASE("Another text under a loaded version is refused with fare_version_exists",
          "[core][fare_office]") {
  FareOfficeFixture x;
  REQUIRE(x.fares.LoadTable(TableText(1)).ok());
  auto other = x.fares.LoadTable(TableText(1, 9900));
  REQUIRE_FALSE(other.ok());
  CHECK(other.status().kind() == Kind::refused);
  CHECK(other.status().code() == "fare_version_exists");
}

TEST_CASE("A version below the current one is refused with fare_version_not_newer",
          "[core][fare_office]") {
  FareOfficeFixture x;
  REQUIRE(x.fares.LoadTable(TableText(5)).ok());
  auto older = x.fares.LoadTable(TableText(4));
  REQUIRE_FALSE(older.ok());
  CHECK(older.status().code() == "fare_version_not_newer");
  REQUIRE(x.fares.LoadTable(TableText(6)).ok());
  CHECK(x.fares.CurrentTable()->version == 6);
  CHECK(x.store.ListTables()->size() == 2);
}

TEST_CASE("A malformed table is refused with invalid_fare_table and nothing is stored",
          "[core][fare_office]") {
  FareOfficeFixture x;
  auto bad = x.fares.LoadTable(R"({"format": "citycard-fares", "format_version": 2})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().kind() == Kind::bad_input);
  CHECK(bad.status().code() == "invalid_fare_table");
  CHECK(x.store.ListTables()->empty());
}

TEST_CASE("No table loaded: CurrentTable is no_fare_table and CurrentFareTable is version 0",
          "[core][fare_office]") {
  FareOfficeFixture x;
  auto current = x.fares.CurrentTable();
  REQUIRE_FALSE(current.ok());
  CHECK(current.status().code() == "no_fare_table");
  auto blob = CurrentFareTable(x.store);
  REQUIRE(blob.ok());
  CHECK(blob->version == 0);
  CHECK(blob->json.empty());
}

TEST_CASE("CurrentFareTable serves the newest version with its text", "[core][fare_office]") {
  FareOfficeFixture x;
  REQUIRE(x.fares.LoadTable(TableText(20180831)).ok());
  REQUIRE(x.fares.LoadTable(TableText(20180901)).ok());
  auto blob = CurrentFareTable(x.store);
  REQUIRE(blob.ok());
  CHECK(blob->version == 20180901u);
  CHECK(blob->json == TableText(20180901));
}

// ---- Pass sale ---------------------------------------------------------------------------

TEST_CASE("Selling a pass moves its price from the purse to the scenic operator's payable",
          "[core][fare_office]") {
  FareOfficeFixture x;
  std::string card = x.ReadyCard(20000);
  auto sale = x.fares.SellPass(card, "annual", kHolderId);
  REQUIRE(sale.ok());
  CHECK_FALSE(sale->repeated);
  CHECK(sale->balance_after_fen == 8000);
  CHECK(x.f.Balance(x.Purse(card)) == 8000);
  CHECK(x.Payable("spot1") == 12000);
  CHECK(x.f.LedgerSum() == 0);
  CHECK(sale->pass.price_fen == 12000);
  CHECK(sale->pass.operator_id == "spot1");
  CHECK(sale->pass.fare_version == 1);
  CHECK(sale->pass.holding.sold_day == ClearingDay(testing::kFixtureStartMs / 1000));
  CHECK(sale->pass.holding.visits_used == 0);
  auto transfer = x.f.ledger.LookupTransfer(sale->pass.transfer_id);
  REQUIRE(transfer.ok());
  REQUIRE(transfer->has_value());
  CHECK((*transfer)->code == static_cast<uint16_t>(TransferCode::pass_sale));
  CHECK((*transfer)->amount_fen == 12000);
  CHECK(TransferCodeName((*transfer)->code) == "pass_sale");
}

TEST_CASE("The same pass sold again on the same day is repeated and moves no more money",
          "[core][fare_office]") {
  FareOfficeFixture x;
  std::string card = x.ReadyCard(30000);
  REQUIRE(x.fares.SellPass(card, "annual", kHolderId).ok());
  auto again = x.fares.SellPass(card, "annual", kHolderId);
  REQUIRE(again.ok());
  CHECK(again->repeated);
  CHECK(x.f.Balance(x.Purse(card)) == 18000);
  CHECK(x.Payable("spot1") == 12000);
}

TEST_CASE("A pass sale refuses each case with its own code", "[core][fare_office]") {
  FareOfficeFixture x;
  SECTION("no fare table") {
    CardView card = x.f.IssueAdult(kHolderId);
    auto sale = x.fares.SellPass(card.card.card_no, "annual", kHolderId);
    CHECK(sale.status().code() == "no_fare_table");
  }
  SECTION("unknown pass") {
    std::string card = x.ReadyCard(20000);
    auto sale = x.fares.SellPass(card, "weekly", kHolderId);
    CHECK(sale.status().kind() == Kind::not_found);
    CHECK(sale.status().code() == "unknown_pass");
  }
  SECTION("unknown card") {
    x.ReadyCard(0);
    auto sale = x.fares.SellPass(MakeCardNumber(999), "annual", kHolderId);
    CHECK(sale.status().kind() == Kind::not_found);
  }
  SECTION("another person's national id") {
    std::string card = x.ReadyCard(20000);
    x.f.IssueAdult("110101199003074477");
    auto sale = x.fares.SellPass(card, "annual", "110101199003074477");
    CHECK(sale.status().kind() == Kind::refused);
    CHECK(sale.status().code() == "not_card_holder");
  }
  SECTION("a national id with no holder") {
    std::string card = x.ReadyCard(20000);
    auto sale = x.fares.SellPass(card, "annual", "110101199003074477");
    CHECK(sale.status().code() == "not_card_holder");
  }
  SECTION("a malformed national id") {
    std::string card = x.ReadyCard(20000);
    auto sale = x.fares.SellPass(card, "annual", "12345");
    CHECK(sale.status().kind() == Kind::bad_input);
  }
  SECTION("a blocked card") {
    std::string card = x.ReadyCard(20000);
    REQUIRE(x.f.office.Block(card, BlockReason::lost).ok());
    auto sale = x.fares.SellPass(card, "annual", kHolderId);
    CHECK(sale.status().code() == "card_blocked");
  }
  SECTION("a profile the pass is not sold to") {
    REQUIRE(x.fares.LoadTable(TableText(1)).ok());
    IssueRequest request;
    request.national_id = kHolderId;
    request.name = "李四";
    request.profile = Profile::student;
    auto card = x.f.office.IssueCard(request);
    REQUIRE(card.ok());
    REQUIRE(x.f.office.Topup(card->card.card_no, 20000, "t1").ok());
    auto sale = x.fares.SellPass(card->card.card_no, "annual", kHolderId);
    CHECK(sale.status().code() == "pass_profile_not_allowed");
  }
  SECTION("a card already holding the pass") {
    std::string card = x.ReadyCard(30000);
    REQUIRE(x.fares.SellPass(card, "annual", kHolderId).ok());
    x.f.clock.AdvanceMs(kDayMs);
    auto sale = x.fares.SellPass(card, "annual", kHolderId);
    CHECK(sale.status().code() == "pass_already_held");
    CHECK(x.f.Balance(x.Purse(card)) == 18000);
  }
  SECTION("too little money") {
    std::string card = x.ReadyCard(11999);
    auto sale = x.fares.SellPass(card, "annual", kHolderId);
    CHECK(sale.status().kind() == Kind::refused);
    CHECK(sale.status().code() == "insufficient_funds");
    CHECK(x.f.Balance(x.Purse(card)) == 11999);
  }
  SECTION("a spot whose operator is not registered") {
    std::string card = x.ReadyCard(20000);
    auto sale = x.fares.SellPass(card, "spot2only", kHolderId);
    CHECK(sale.status().kind() == Kind::not_found);
    CHECK(sale.status().code() == "operator_not_found");
  }
}

TEST_CASE("A pass sale whose pass row fails books no transfer", "[core][fare_office]") {
  FareOfficeFixture x;
  std::string card = x.ReadyCard(20000);
  x.store.FailNextInsertPass();
  auto sale = x.fares.SellPass(card, "annual", kHolderId);
  REQUIRE_FALSE(sale.ok());
  CHECK(sale.status().code() == "injected_fault");
  CHECK(x.f.Balance(x.Purse(card)) == 20000);
  CHECK(x.Payable("spot1") == 0);
  CHECK(x.store.ListPasses(card)->empty());
}

TEST_CASE("An expired pass can be sold again and the new sale replaces it",
          "[core][fare_office]") {
  FareOfficeFixture x;
  std::string card = x.ReadyCard(30000);
  REQUIRE(x.fares.SellPass(card, "annual", kHolderId).ok());
  x.f.clock.AdvanceMs(365 * kDayMs);
  auto renewed = x.fares.SellPass(card, "annual", kHolderId);
  REQUIRE(renewed.ok());
  CHECK(x.f.Balance(x.Purse(card)) == 6000);
  CHECK(x.Payable("spot1") == 24000);
  auto passes = x.fares.ListPasses(card);
  REQUIRE(passes->size() == 1);
  CHECK(passes->front().holding.sold_day ==
        ClearingDay(testing::kFixtureStartMs / 1000) + 365);
}

// ---- Gate entry --------------------------------------------------------------------------

TEST_CASE("A gate entry with a pass consumes a visit and a second the same day at that spot is "
          "refused with pass_already_entered_today",
          "[core][fare_office]") {
  FareOfficeFixture x;
  std::string card = x.ReadyCard(20000);
  REQUIRE(x.fares.SellPass(card, "annual", kHolderId).ok());
  const int64_t t = testing::kFixtureStartMs / 1000;
  auto first = x.fares.EnterGate(card, "spot1", t);
  REQUIRE(first.ok());
  CHECK(first->outcome == PassEntryOutcome::admitted);
  CHECK(first->pass_id == "annual");
  CHECK(first->visits_left == 2);
  auto second = x.fares.EnterGate(card, "spot1", t + 3600);
  REQUIRE(second.ok());
  CHECK(second->outcome == PassEntryOutcome::already_entered_today);
  CHECK(PassEntryOutcomeName(second->outcome) == "pass_already_entered_today");
  CHECK(second->visits_left == 2);
  // Another spot the same day, and the first spot the next day.
  CHECK(x.fares.EnterGate(card, "spot2", t + 3600)->outcome == PassEntryOutcome::admitted);
  auto next_day = x.fares.EnterGate(card, "spot1", t + 86'400);
  CHECK(next_day->outcome == PassEntryOutcome::admitted);
  CHECK(next_day->visits_left == 0);
  CHECK(x.fares.EnterGate(card, "spot2", t + 2 * 86'400)->outcome ==
        PassEntryOutcome::no_visits_left);
  // A gate entry moves no money.
  CHECK(x.f.Balance(x.Purse(card)) == 8000);
}

TEST_CASE("A gate entry without a pass for the spot is pass_not_valid_here, after expiry "
          "pass_expired",
          "[core][fare_office]") {
  FareOfficeFixture x;
  std::string card = x.ReadyCard(20000);
  const int64_t t = testing::kFixtureStartMs / 1000;
  CHECK(x.fares.EnterGate(card, "spot1", t)->outcome == PassEntryOutcome::not_valid_here);
  REQUIRE(x.fares.SellPass(card, "annual", kHolderId).ok());
  CHECK(x.fares.EnterGate(card, "bus1", t)->outcome == PassEntryOutcome::not_valid_here);
  CHECK(x.fares.EnterGate(card, "spot1", t - 86'400)->outcome == PassEntryOutcome::not_yet_valid);
  CHECK(x.fares.EnterGate(card, "spot1", t + 365 * 86'400)->outcome == PassEntryOutcome::expired);
  CHECK(x.fares.EnterGate(card, "spot1", t + 364 * 86'400)->outcome ==
        PassEntryOutcome::admitted);
}

TEST_CASE("The core's pricer books a gate tap's pass visit and disputes a second entry the same "
          "day",
          "[core][fare_office]") {
  FareOfficeFixture x;
  std::string card = x.ReadyCard(20000);
  REQUIRE(x.fares.SellPass(card, "annual", kHolderId).ok());
  auto table = x.fares.CurrentParsedTable();
  REQUIRE(table.ok());
  FareOfficePricer pricer(x.fares, *table);
  TapRecord gate;
  gate.type = TapType::gate_entry;
  gate.card_no = CardNumberToInt(card);
  gate.operator_id = "spot1";
  gate.terminal_id = "G1";
  gate.time_s = testing::kFixtureStartMs / 1000;
  gate.fare_version = 1;
  auto first = pricer.PriceTap(gate, PreviousTaps{});
  REQUIRE(first.ok());
  CHECK_FALSE(first->dispute);
  CHECK_FALSE(first->quote.has_value());
  CHECK(x.store.FindPass(card, "annual")->value().holding.visits_used == 1);
  gate.time_s += 600;
  auto second = pricer.PriceTap(gate, PreviousTaps{});
  REQUIRE(second.ok());
  CHECK(second->dispute);
  CHECK(second->detail.find("pass_already_entered_today") != std::string::npos);
  CHECK(x.store.FindPass(card, "annual")->value().holding.visits_used == 1);
  // A paid gate ticket is priced as a ride: spot1 costs 5000.
  gate.amount_fen = 5000;
  gate.full_fare_fen = 5000;
  auto ticket = pricer.PriceTap(gate, PreviousTaps{});
  REQUIRE(ticket.ok());
  CHECK_FALSE(ticket->dispute);
  REQUIRE(ticket->quote.has_value());
  CHECK(ticket->quote->amount_fen == 5000);
}
