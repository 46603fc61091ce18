#include <catch2/catch.hpp>

#include "core/tap_pricer.h"
#include "tests/support/ingest_fixture_support.h"

using namespace citycard;
using citycard::testing::FakeCard;
using citycard::testing::IngestFixture;

namespace {

// The operators of tests/support/ingest_fixture_support.cc: BUS1 (flat 200 on route 7, students
// pay half), METRO (zones), KIOSKS; a transfer bus -> metro takes 40 fen off within 90 minutes.
constexpr std::string_view kTable = R"({
  "format": "citycard-fares", "format_version": 1, "version": 3,
  "networks": [{"id": "m", "stations": [{"code": 1, "zone": 1}, {"code": 2, "zone": 1},
                                        {"code": 3, "zone": 2}],
                "zone_fares_fen": [[200, 400], [400, 200]], "unmatched_exit_fare_fen": 900}],
  "operators": [
    {"id": "BUS1", "mode": "bus", "routes": [{"code": 7, "pricing": {"kind": "flat", "fare_fen": 200}}]},
    {"id": "METRO", "mode": "metro", "pricing": {"kind": "distance", "network": "m"}},
    {"id": "TAXI", "mode": "taxi", "pricing": {"kind": "metered"}}
  ],
  "concessions": {"student": [{"kind": "percent", "pay_percent": 50}]},
  "transfers": [{"from_modes": ["bus"], "to_modes": ["metro"], "window_minutes": 90,
                 "discount_fen": 40}]
})";

FareTable Table() {
  auto table = ParseFareTable(kTable);
  REQUIRE(table.ok());
  return *table;
}

TapRecord Bus(int64_t amount_fen, Profile profile = Profile::adult) {
  TapRecord r;
  r.type = TapType::purchase;
  r.profile = profile;
  r.operator_id = "BUS1";
  r.terminal_id = "T1";
  r.route_code = 7;
  r.time_s = 1'709'258'400;
  r.fare_version = 3;
  r.full_fare_fen = 200;
  r.amount_fen = amount_fen;
  return r;
}

TapRecord Metro(TapType type, uint32_t station, int64_t time_s, int64_t amount_fen) {
  TapRecord r;
  r.type = type;
  r.operator_id = "METRO";
  r.terminal_id = "M1";
  r.station_code = station;
  r.time_s = time_s;
  r.fare_version = 3;
  r.full_fare_fen = amount_fen;
  r.amount_fen = amount_fen;
  return r;
}

}  // namespace

TEST_CASE("A tap priced as the core prices it is no dispute and keeps the core's breakdown",
          "[core][tap_pricer]") {
  FareTablePricer pricer(Table());
  auto priced = pricer.PriceTap(Bus(200), PreviousTaps{});
  REQUIRE(priced.ok());
  CHECK_FALSE(priced->dispute);
  REQUIRE(priced->quote.has_value());
  CHECK(priced->quote->rule_version == 3);
  CHECK(priced->quote->base_rule == "flat");
  CHECK(priced->quote->full_fare_fen == 200);
  CHECK(priced->quote->amount_fen == 200);

  auto student = pricer.PriceTap(Bus(100, Profile::student), PreviousTaps{});
  REQUIRE(student.ok());
  CHECK_FALSE(student->dispute);
  CHECK(student->quote->concession_fen == 100);
  CHECK(student->quote->amount_fen == 100);
}

TEST_CASE("A tap the reader charged differently is a dispute naming both breakdowns",
          "[core][tap_pricer]") {
  FareTablePricer pricer(Table());
  auto priced = pricer.PriceTap(Bus(150), PreviousTaps{});
  REQUIRE(priced.ok());
  CHECK(priced->dispute);
  CHECK(priced->quote->amount_fen == 200);
  CHECK(priced->detail.find("reader v3 full=200 concession=0 transfer=0 amount=150") !=
        std::string::npos);
  CHECK(priced->detail.find("amount=200") != std::string::npos);
}

TEST_CASE("A metro exit is priced from the card's entry record", "[core][tap_pricer]") {
  FareTablePricer pricer(Table());
  const int64_t t = 1'709'258'400;
  TapRecord entry = Metro(TapType::metro_entry, 1, t, 0);
  TapRecord exit = Metro(TapType::metro_exit, 3, t + 1200, 400);
  auto priced = pricer.PriceTap(exit, PreviousTaps{entry, std::nullopt});
  REQUIRE(priced.ok());
  CHECK_FALSE(priced->dispute);
  CHECK(priced->quote->base_rule == "distance:zone");
  CHECK(priced->quote->amount_fen == 400);
  // The reader charged the zone-1 fare for a trip to zone 2.
  exit.amount_fen = 200;
  CHECK(pricer.PriceTap(exit, PreviousTaps{entry, std::nullopt})->dispute);
  // An entry carries no money: priced 0.
  auto at_entry = pricer.PriceTap(entry, PreviousTaps{});
  CHECK_FALSE(at_entry->dispute);
  CHECK(at_entry->quote->base_rule == "entry");
}

TEST_CASE("A metro exit whose entry the core lacks is checked on the reader's full fare, one "
          "after another ride is an unmatched exit",
          "[core][tap_pricer]") {
  FareTablePricer pricer(Table());
  const int64_t t = 1'709'258'400;
  TapRecord exit = Metro(TapType::metro_exit, 3, t, 400);
  auto unknown = pricer.PriceTap(exit, PreviousTaps{});
  CHECK_FALSE(unknown->dispute);
  CHECK(unknown->quote->base_rule == "terminal_fare");
  TapRecord old_bus = Bus(200);
  old_bus.time_s = t - 3 * 3600;  // outside the transfer window
  auto unmatched = pricer.PriceTap(exit, PreviousTaps{old_bus, std::nullopt});
  CHECK(unmatched->dispute);
  CHECK(unmatched->quote->base_rule == "distance:unmatched_exit");
  CHECK(unmatched->quote->amount_fen == 900);
}

TEST_CASE("A metro trip after a bus ride is a transfer when its entry is within the window, the "
          "last second included",
          "[core][tap_pricer]") {
  FareTablePricer pricer(Table());
  TapRecord bus = Bus(200);
  TapRecord entry = Metro(TapType::metro_entry, 1, bus.time_s + 90 * 60, 0);
  TapRecord exit = Metro(TapType::metro_exit, 2, entry.time_s + 600, 160);
  exit.full_fare_fen = 200;
  exit.transfer_discount_fen = 40;
  auto priced = pricer.PriceTap(exit, PreviousTaps{entry, bus});
  REQUIRE(priced.ok());
  CHECK_FALSE(priced->dispute);
  CHECK(priced->quote->full_fare_fen == 200);
  CHECK(priced->quote->transfer_discount_fen == 40);
  CHECK(priced->quote->transfer_rule == "transfers[0]");
  CHECK(priced->quote->amount_fen == 160);
  // One second later the entry is outside the window: the full 200, and the reader's 160 is
  // disputed.
  entry.time_s += 1;
  exit.time_s += 1;
  auto late = pricer.PriceTap(exit, PreviousTaps{entry, bus});
  CHECK(late->quote->transfer_discount_fen == 0);
  CHECK(late->quote->amount_fen == 200);
  CHECK(late->dispute);
}

TEST_CASE("A metered ride is checked on the reader's full fare, a load is not priced",
          "[core][tap_pricer]") {
  FareTablePricer pricer(Table());
  TapRecord taxi = Bus(3150);
  taxi.operator_id = "TAXI";
  taxi.full_fare_fen = 3150;
  auto priced = pricer.PriceTap(taxi, PreviousTaps{});
  CHECK_FALSE(priced->dispute);
  CHECK(priced->quote->base_rule == "terminal_fare");
  CHECK(priced->quote->amount_fen == 3150);
  TapRecord load = Bus(5000);
  load.type = TapType::load;
  auto none = pricer.PriceTap(load, PreviousTaps{});
  CHECK_FALSE(none->dispute);
  CHECK_FALSE(none->quote.has_value());
}

TEST_CASE("A paid ride on an operator the table does not know is a dispute", "[core][tap_pricer]") {
  FareTablePricer pricer(Table());
  TapRecord r = Bus(200);
  r.operator_id = "FERRY9";
  auto priced = pricer.PriceTap(r, PreviousTaps{});
  CHECK(priced->dispute);
  CHECK_FALSE(priced->quote.has_value());
  CHECK(priced->detail == "reader v3 amount=200; core table v3 has no operator FERRY9");
  r.amount_fen = 0;
  CHECK_FALSE(pricer.PriceTap(r, PreviousTaps{})->dispute);
}

// ---- Through the ingest ------------------------------------------------------------------

TEST_CASE("Ingest books a disputed tap at what the card paid and raises fare_dispute",
          "[core][tap_pricer][ingest]") {
  IngestFixture x;
  FareTablePricer pricer(Table());
  x.engine.SetTapPricer(&pricer);
  FakeCard card = x.IssueCard(1000);
  TapRecord fair = x.Tap(card, "T1", 200);
  CHECK(x.IngestOne(fair) == IngestOutcome::accepted);
  CHECK(x.Alerts(AlertKind::fare_dispute).empty());

  TapRecord cheap = x.Tap(card, "T1", 150);
  cheap.full_fare_fen = 200;
  x.Sign(&cheap);
  CHECK(x.IngestOne(cheap) == IngestOutcome::accepted_with_alert);
  CHECK(x.Purse(card.card_no) == 1000 - 200 - 150);
  CHECK(x.Payable("BUS1") == 350);
  CHECK(x.LedgerSum() == 0);
  auto alerts = x.Alerts(AlertKind::fare_dispute);
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].card_no == card.card_no);
  CHECK(alerts[0].terminal_id == "T1");
  CHECK(alerts[0].detail.find("amount=150") != std::string::npos);
  CHECK(alerts[0].detail.find("amount=200") != std::string::npos);
}

TEST_CASE("Ingest without a pricer does not re-price", "[core][tap_pricer][ingest]") {
  IngestFixture x;
  FakeCard card = x.IssueCard(1000);
  TapRecord cheap = x.Tap(card, "T1", 150);
  cheap.full_fare_fen = 200;
  x.Sign(&cheap);
  CHECK(x.IngestOne(cheap) == IngestOutcome::accepted);
  CHECK(x.Alerts(AlertKind::fare_dispute).empty());
}

TEST_CASE("An elderly card past its monthly free rides is no dispute, and a wrong amount still is",
          "[core][tap_pricer]") {
  // BUS1's elderly riders ride free for 2 rides a month, then pay half.
  std::string text(kTable);
  const std::string students = R"("student": [{"kind": "percent", "pay_percent": 50}])";
  text.replace(text.find(students), students.size(),
               std::string(students) +
                   R"(, "elderly": [{"kind": "free_quota", "rides_per_month": 2},
                                    {"kind": "percent", "pay_percent": 50}])");
  auto table = ParseFareTable(text);
  REQUIRE(table.ok());
  FareTablePricer pricer(*table);

  auto free_ride = pricer.PriceTap(Bus(0, Profile::elderly), PreviousTaps{});
  REQUIRE(free_ride.ok());
  CHECK_FALSE(free_ride->dispute);
  CHECK(free_ride->quote->uses_free_ride);
  CHECK(free_ride->quote->amount_fen == 0);

  // The reader knew the card's quota was used up and charged half.
  auto past_quota = pricer.PriceTap(Bus(100, Profile::elderly), PreviousTaps{});
  REQUIRE(past_quota.ok());
  CHECK_FALSE(past_quota->dispute);
  CHECK_FALSE(past_quota->quote->uses_free_ride);
  CHECK(past_quota->quote->amount_fen == 100);
  CHECK(past_quota->quote->concession_fen == 100);

  // Neither free nor half: a dispute, and the alert names the core's first quote (free).
  auto wrong = pricer.PriceTap(Bus(150, Profile::elderly), PreviousTaps{});
  REQUIRE(wrong.ok());
  CHECK(wrong->dispute);
  CHECK(wrong->quote->amount_fen == 0);
  CHECK(wrong->detail.find("amount=150") != std::string::npos);
}
