#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>

#include <fmt/format.h>

#include "core/fares.h"
#include "core/szt_file.h"
#include "core/time.h"

using namespace citycard;

namespace {

// A small city with one of every rule, so each test can state its amounts exactly.
constexpr std::string_view kCityTable = R"({
  "format": "citycard-fares",
  "format_version": 1,
  "version": 7,
  "name": "Test city",
  "networks": [
    {"id": "metro",
     "stations": [{"code": 1, "name": "A", "zone": 1}, {"code": 2, "name": "B", "zone": 1},
                  {"code": 3, "name": "C", "zone": 2}, {"code": 4, "name": "D", "zone": 3}],
     "zone_fares_fen": [[200, 300, 400], [300, 200, 300], [400, 300, 200]],
     "pair_fares": [{"from": 3, "to": 2, "fare_fen": 250}],
     "unmatched_exit_fare_fen": 600, "unmatched_entry_fare_fen": 700, "max_trip_minutes": 120},
    {"id": "ferry",
     "stations": [{"code": 1, "zone": 1}, {"code": 2, "zone": 1}, {"code": 3, "zone": 1}],
     "pair_fares": [{"from": 1, "to": 2, "fare_fen": 500}]}
  ],
  "operators": [
    {"id": "bus1", "name": "Bus One", "mode": "bus",
     "routes": [{"code": 10, "pricing": {"kind": "flat", "fare_fen": 200}},
                {"code": 11, "pricing": {"kind": "flat", "fare_fen": 250}}]},
    {"id": "bus2", "name": "Bus Two", "mode": "bus", "pricing": {"kind": "flat", "fare_fen": 300}},
    {"id": "metro1", "mode": "metro", "pricing": {"kind": "distance", "network": "metro"}},
    {"id": "ferry1", "mode": "ferry", "pricing": {"kind": "distance", "network": "ferry"}},
    {"id": "taxi1", "mode": "taxi", "pricing": {"kind": "metered"}, "concessions": {}},
    {"id": "park1", "mode": "parking",
     "pricing": {"kind": "parking", "free_minutes": 15,
                 "bands": [{"until_minutes": 60, "unit_minutes": 30, "fen_per_unit": 300},
                           {"unit_minutes": 60, "fen_per_unit": 500}],
                 "day_max_fen": 4000, "lost_ticket_fare_fen": 5000}},
    {"id": "spot1", "mode": "scenic", "pricing": {"kind": "flat", "fare_fen": 5000}},
    {"id": "spot2", "mode": "scenic", "pricing": {"kind": "flat", "fare_fen": 3000}}
  ],
  "concessions": {
    "adult": [{"kind": "bands", "modes": ["bus"],
               "bands": [{"up_to_fen": 200, "pay_percent": 100}, {"pay_percent": 50}]}],
    "student": [{"kind": "percent", "pay_percent": 50}],
    "elderly": [{"kind": "free", "hours": [{"from": "09:00", "to": "16:00"}]},
                {"kind": "free_quota", "rides_per_month": 2},
                {"kind": "percent", "pay_percent": 50}],
    "disabled": [{"kind": "free"}],
    "low-income": [{"kind": "percent", "modes": ["bus"], "pay_percent": 25,
                    "hours": [{"from": "22:00", "to": "06:00"}]},
                   {"kind": "percent", "pay_percent": 75}]
  },
  "transfers": [
    {"from_modes": ["bus"], "to_modes": ["bus"], "window_minutes": 60, "discount_fen": 100,
     "different_route": true},
    {"from_modes": ["bus", "metro"], "to_modes": ["metro", "bus"], "window_minutes": 90,
     "percent_off": 50}
  ],
  "daily_caps": [{"profile": "adult", "modes": ["bus", "metro"], "cap_fen": 1000},
                 {"profile": "student", "modes": ["bus"], "cap_fen": 300}],
  "passes": [{"id": "annual", "name": "Scenic annual pass", "price_fen": 12000,
              "validity_days": 365, "visits": 3, "spots": ["spot1", "spot2"],
              "one_entry_per_spot_per_day": true}]
})";

const FareTable& City() {
  static const FareTable table = [] {
    Result<FareTable> parsed = ParseFareTable(kCityTable);
    if (!parsed.ok()) FAIL(parsed.status().ToString());
    return std::move(parsed).value();
  }();
  return table;
}

int64_t At(const char* local) { return *ParseLocalTime(local); }
int64_t DayOf(const char* local) { return ClearingDay(At(local)); }

FareRequest Bus(const char* operator_id, uint32_t route, Profile profile, const char* when) {
  FareRequest request;
  request.operator_id = operator_id;
  request.route_code = route;
  request.mode = RideMode::bus;
  request.profile = profile;
  request.event = TapEvent::single;
  request.time_s = At(when);
  return request;
}

FareRequest MetroExit(uint32_t from, uint32_t to, const char* entered, const char* exited) {
  FareRequest request;
  request.operator_id = "metro1";
  request.mode = RideMode::metro;
  request.event = TapEvent::exit;
  request.entry_station_code = from;
  request.station_code = to;
  request.entry_time_s = At(entered);
  request.time_s = At(exited);
  return request;
}

FareRequest Park(const char* entered, const char* exited) {
  FareRequest request;
  request.operator_id = "park1";
  request.mode = RideMode::parking;
  request.event = TapEvent::exit;
  request.entry_time_s = At(entered);
  request.time_s = At(exited);
  return request;
}

PreviousRide PreviousBus(const char* operator_id, uint32_t route, const char* ended) {
  return PreviousRide{At(ended), RideMode::bus, operator_id, route};
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The parse error of a table: the table text with `from` replaced by `to`.
std::string ErrorOf(std::string_view from, std::string_view to) {
  std::string text(kCityTable);
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  Result<FareTable> parsed = ParseFareTable(text);
  REQUIRE_FALSE(parsed.ok());
  REQUIRE(parsed.status().code() == "invalid_fare_table");
  REQUIRE(parsed.status().kind() == Kind::bad_input);
  return parsed.status().message();
}

}  // namespace

// ----- The table format. -----------------------------------------------------------------------

TEST_CASE("A fare table is read with every rule it states", "[core][fares]") {
  const FareTable& table = City();
  REQUIRE(table.version == 7);
  REQUIRE(table.name == "Test city");
  REQUIRE(table.networks.size() == 2);
  REQUIRE(table.networks[0].zone_fares_fen[1][2] == 300);
  REQUIRE(table.networks[0].pair_fares.size() == 1);
  REQUIRE(table.networks[0].pair_fares[0].from_code == 2);  // stored smaller code first
  REQUIRE(table.networks[1].unmatched_exit_fare_fen == 500);  // default: the highest fare
  REQUIRE(table.networks[1].max_trip_minutes == 240);          // default
  REQUIRE(table.operators.size() == 8);
  REQUIRE(table.FindOperator("bus1")->routes[1].pricing.fare_fen == 250);
  REQUIRE(table.FindOperatorByName("Bus Two")->id == "bus2");
  REQUIRE(table.FindOperator("taxi1")->concessions->empty());
  const RoutePricing& parking = *table.FindOperator("park1")->pricing;
  REQUIRE(parking.kind == PricingKind::parking);
  REQUIRE(parking.bands.size() == 2);
  REQUIRE_FALSE(parking.bands[1].until_minutes.has_value());
  REQUIRE(*parking.day_max_fen == 4000);
  REQUIRE(table.concessions.at(Profile::elderly).size() == 3);
  REQUIRE(table.concessions.at(Profile::elderly)[0].hours[0].start_minute == 9 * 60);
  REQUIRE(table.concessions.at(Profile::elderly)[1].rides_per_month == 2);
  REQUIRE(table.transfers[0].window_seconds == 3600);
  REQUIRE(table.transfers[0].different_route);
  REQUIRE(table.transfers[1].percent);
  REQUIRE(table.transfers[1].percent_off == 50);
  REQUIRE(table.FindDailyCap(Profile::adult, RideMode::metro)->cap_fen == 1000);
  REQUIRE(table.FindDailyCap(Profile::adult, RideMode::taxi) == nullptr);
  REQUIRE(table.FindPass("annual")->visits == 3);
  REQUIRE(table.FindPass("annual")->spots == std::vector<std::string>{"spot1", "spot2"});
}

TEST_CASE("A fare table that is not JSON is refused with its line and column", "[core][fares]") {
  Result<FareTable> parsed = ParseFareTable("{\n  \"format\": \"citycard-fares\",\n  \"version\": 1,,\n}");
  REQUIRE(parsed.status().code() == "invalid_fare_table");
  INFO(parsed.status().message());
  REQUIRE(parsed.status().message().rfind("line 3, column 16: ", 0) == 0);
  INFO(ParseFareTable("").status().message());
  REQUIRE(ParseFareTable("").status().message().rfind("line 1, column 1: ", 0) == 0);
}

// Regression (found by tests/fuzz/fares_fuzz.cc): the overflow came out as the JSON library's
// bare exception text, without the line the header promises.
TEST_CASE("A fare table with a number too large for a double is refused with its line", "[core][fares]") {
  Result<FareTable> parsed = ParseFareTable("{\n  \"format\": \"citycard-fares\",\n  \"version\": 1e999\n}");
  REQUIRE(parsed.status().code() == "invalid_fare_table");
  REQUIRE(parsed.status().message() == "line 3: number overflow parsing '1e999'");
}

TEST_CASE("Fare table errors name the field and the line of its key", "[core][fares]") {
  REQUIRE(ErrorOf("\"flat\", \"fare_fen\": 250", "\"flat\", \"fare_feen\": 250") ==
          "line 20: operators[0].routes[1].pricing.fare_feen: unknown field");
  REQUIRE(ErrorOf("\"fare_fen\": 300}", "\"fare_fen\": -1}") ==
          "line 21: operators[1].pricing.fare_fen: must be an integer from 0 to 1000000");
  REQUIRE(ErrorOf("\"mode\": \"metro\"", "\"mode\": \"tram\"") ==
          "line 22: operators[2].mode: must be one of bus, metro, taxi, parking, scenic, ferry");
  REQUIRE(ErrorOf("\"network\": \"ferry\"", "\"network\": \"boat\"") ==
          "line 23: operators[3].pricing.network: is not a network of this table");
  REQUIRE(ErrorOf("\"id\": \"bus2\"", "\"id\": \"bus1\"") ==
          "line 21: operators[1].id: is listed twice");
  REQUIRE(ErrorOf("\"format_version\": 1", "\"format_version\": 2") ==
          "line 3: format_version: must be an integer from 1 to 1");
  REQUIRE(ErrorOf("\"format\": \"citycard-fares\"", "\"format\": \"fares\"") ==
          "line 2: format: must be \"citycard-fares\"");
  REQUIRE(ErrorOf("\"version\": 7,", "") == "line 1: version: is required");
  REQUIRE(ErrorOf("\"to\": \"16:00\"", "\"to\": \"16:60\"") ==
          "line 37: concessions.elderly[0].hours[0].to: must be a time HH:MM (00:00 to 24:00)");
  REQUIRE(ErrorOf("\"rides_per_month\": 2", "\"rides_per_month\": 0") ==
          "line 38: concessions.elderly[1].rides_per_month: must be an integer from 1 to 10000");
  REQUIRE(ErrorOf("\"kind\": \"free\"}]", "\"kind\": \"gratis\"}]") ==
          "line 40: concessions.disabled[0].kind: must be one of percent, free, bands, free_quota");
  REQUIRE(ErrorOf("\"student\": [", "\"pupil\": [") ==
          "line 36: concessions.pupil: must be one of adult, student, elderly, disabled, low-income");
  REQUIRE(ErrorOf("\"window_minutes\": 60, \"discount_fen\": 100",
                  "\"window_minutes\": 60, \"discount_fen\": 100, \"percent_off\": 5") ==
          "line 46: transfers[0]: needs exactly one of discount_fen and percent_off");
  REQUIRE(ErrorOf("{\"profile\": \"student\", \"modes\": [\"bus\"]",
                  "{\"profile\": \"adult\", \"modes\": [\"bus\"]") ==
          "line 52: daily_caps[1].modes: adult already has a cap for bus");
  REQUIRE(ErrorOf("\"spots\": [\"spot1\", \"spot2\"]", "\"spots\": [\"spot1\", \"spot9\"]") ==
          "line 54: passes[0].spots[1]: must be the id of an operator of this table");
  REQUIRE(ErrorOf("{\"up_to_fen\": 200, \"pay_percent\": 100}, {\"pay_percent\": 50}",
                  "{\"pay_percent\": 100}, {\"pay_percent\": 50}") ==
          "line 35: concessions.adult[0].bands[0].up_to_fen: is required in all but the last band");
  REQUIRE(ErrorOf("{\"until_minutes\": 60,", "{\"until_minutes\": 0,") ==
          "line 27: operators[5].pricing.bands[0].until_minutes: must be an integer from 1 to 527040");
  REQUIRE(ErrorOf("{\"from\": 3, \"to\": 2,", "{\"from\": 3, \"to\": 9,") ==
          "line 11: networks[0].pair_fares[0].to: is not a station of this network");
  REQUIRE(ErrorOf("{\"code\": 4, \"name\": \"D\", \"zone\": 3}", "{\"code\": 4, \"name\": \"D\", \"zone\": 4}") ==
          "line 9: networks[0].stations[3].zone: is not a zone of zone_fares_fen (1 to 3)");
  REQUIRE(ErrorOf("[[200, 300, 400], [300, 200, 300]", "[[200, 300, 400], [300, 200]") ==
          "line 10: networks[0].zone_fares_fen[1]: must be an array of 3 fares");
  REQUIRE(ErrorOf("\"name\": \"Test city\"", "\"name\": \"Test city\", \"colour\": 1") ==
          "line 5: colour: unknown field");
  REQUIRE(ErrorOf(",\n     \"pair_fares\": [{\"from\": 1, \"to\": 2, \"fare_fen\": 500}]", "") ==
          "line 13: networks[1]: needs zone_fares_fen or pair_fares");
  REQUIRE(ErrorOf("{\"kind\": \"flat\", \"fare_fen\": 300}", "{\"kind\": \"zone\", \"fare_fen\": 300}") ==
          "line 21: operators[1].pricing.kind: must be one of flat, distance, metered, parking");
  REQUIRE(ErrorOf("\"id\": \"bus1\"", "\"id\": \"bus1-with-a-long-id\"") ==
          "line 18: operators[0].id: is longer than 16 bytes");
  REQUIRE(ErrorOf("\"id\": \"bus1\"", "\"id\": \"bus 1\"") ==
          "line 18: operators[0].id: must be printable ASCII without spaces");
  REQUIRE(ErrorOf("\"mode\": \"scenic\", \"pricing\": {\"kind\": \"flat\", \"fare_fen\": 3000}",
                  "\"mode\": \"scenic\"") ==
          "line 31: operators[7]: needs a pricing or at least one route");
  REQUIRE(ErrorOf("\"fare_fen\": 5000}", "\"fare_fen\": 5000, \"free_minutes\": 3}") ==
          "line 30: operators[6].pricing.free_minutes: is not a field of a flat pricing");
  REQUIRE(ErrorOf("\"student\": [{\"kind\": \"percent\", \"pay_percent\": 50}",
                  "\"student\": [{\"kind\": \"percent\", \"pay_percent\": 50, \"rides_per_month\": 3}") ==
          "line 36: concessions.student[0].rides_per_month: is not a field of a percent concession");
  REQUIRE(ErrorOf("\"cap_fen\": 1000", "\"cap_fen\": 10.5") ==
          "line 51: daily_caps[0].cap_fen: must be an integer from 0 to 1000000");
  REQUIRE(ErrorOf("\"to\": \"16:00\"", "\"to\": \"09:00\"") ==
          "line 37: concessions.elderly[0].hours[0]: is empty: from and to are the same time");
  REQUIRE(ErrorOf("\"version\": 7", "\"version\": 4294967296") ==
          "line 4: version: must be an integer from 1 to 4294967295");
  REQUIRE(ErrorOf("\"version\": 7", "\"version\": 18446744073709551615") ==
          "line 4: version: must be an integer from 1 to 4294967295");
  REQUIRE(ParseFareTable("[]").status().message() == "line 1: (top level): must be an object");
}

TEST_CASE("A fare table larger than the limit is refused before it is parsed", "[core][fares]") {
  std::string huge(kFareTableBytesMax + 1, ' ');
  REQUIRE(ParseFareTable(huge).status().message() == "the table is larger than 16777216 bytes");
}

TEST_CASE("The Shenzhen example table parses", "[core][fares]") {
  const std::string text = Slurp(CITYCARD_SOURCE_DIR "/docs/examples/shenzhen-fares.json");
  REQUIRE_FALSE(text.empty());
  Result<FareTable> table = ParseFareTable(text);
  INFO(table.status().ToString());
  REQUIRE(table.ok());
  REQUIRE(table->version == 20180831);
  REQUIRE(table->operators.size() == 11);
  REQUIRE(table->FindOperatorByName("地铁五号线")->id == "sz-metro-5");
  REQUIRE(table->transfers.size() == 3);
}

// ----- Base fares. -----------------------------------------------------------------------------

TEST_CASE("A flat route charges its fare", "[core][fares]") {
  FareQuote quote = Price(City(), Bus("bus2", 0, Profile::disabled, "2024-05-01 08:00:00"));
  REQUIRE(quote.outcome == FareOutcome::priced);
  REQUIRE(quote.rule_version == 7);
  REQUIRE(quote.base_rule == "flat");
  REQUIRE(quote.full_fare_fen == 300);
  FareQuote adult = Price(City(), Bus("bus1", 10, Profile::adult, "2024-05-01 08:00:00"));
  REQUIRE(adult.full_fare_fen == 200);
  REQUIRE(adult.amount_fen == 200);
  REQUIRE(adult.concession_fen == 0);
  REQUIRE(adult.concession_rule == "adult[0]:bands");
}

TEST_CASE("A distance fare comes from the pair table before the zone table", "[core][fares]") {
  FareQuote pair = Price(City(), MetroExit(3, 2, "2024-05-01 08:00:00", "2024-05-01 08:20:00"));
  REQUIRE(pair.base_rule == "distance:pair");
  REQUIRE(pair.full_fare_fen == 250);
  REQUIRE(pair.amount_fen == 250);
  FareQuote zone = Price(City(), MetroExit(1, 4, "2024-05-01 08:00:00", "2024-05-01 08:20:00"));
  REQUIRE(zone.base_rule == "distance:zone");
  REQUIRE(zone.full_fare_fen == 400);
  REQUIRE(Price(City(), MetroExit(3, 1, "2024-05-01 08:00:00", "2024-05-01 08:20:00")).full_fare_fen == 300);
  REQUIRE(Price(City(), MetroExit(1, 1, "2024-05-01 08:00:00", "2024-05-01 08:01:00")).full_fare_fen == 200);
}

TEST_CASE("A metro entry carries no money", "[core][fares]") {
  FareRequest entry = MetroExit(0, 1, "2024-05-01 08:00:00", "2024-05-01 08:00:00");
  entry.event = TapEvent::entry;
  entry.entry_station_code.reset();
  FareQuote quote = Price(City(), entry);
  REQUIRE(quote.outcome == FareOutcome::priced);
  REQUIRE(quote.base_rule == "entry");
  REQUIRE(quote.full_fare_fen == 0);
  REQUIRE(quote.amount_fen == 0);
  entry.station_code = 9;
  REQUIRE(Price(City(), entry).outcome == FareOutcome::unknown_station);
  entry.terminal_fare_fen = 0;  // a replayed entry names a station the table does not number
  REQUIRE(Price(City(), entry).outcome == FareOutcome::priced);
}

TEST_CASE("An exit without an entry is charged the unmatched exit fare", "[core][fares]") {
  FareRequest exit = MetroExit(1, 2, "2024-05-01 08:00:00", "2024-05-01 08:20:00");
  exit.entry_station_code.reset();
  exit.entry_time_s.reset();
  FareQuote quote = Price(City(), exit);
  REQUIRE(quote.base_rule == "distance:unmatched_exit");
  REQUIRE(quote.full_fare_fen == 600);
}

TEST_CASE("An exit closes its entry until the last second of the trip window", "[core][fares]") {
  FareQuote last = Price(City(), MetroExit(3, 2, "2024-05-01 08:00:00", "2024-05-01 10:00:00"));
  REQUIRE(last.base_rule == "distance:pair");
  REQUIRE(last.full_fare_fen == 250);
  FareQuote late = Price(City(), MetroExit(3, 2, "2024-05-01 08:00:00", "2024-05-01 10:00:01"));
  REQUIRE(late.base_rule == "distance:unmatched_exit");
  REQUIRE(late.full_fare_fen == 600);
}

TEST_CASE("An entry without an exit by the end of the window is charged the unmatched entry fare",
          "[core][fares]") {
  FareRequest abandoned = MetroExit(0, 3, "2024-05-01 08:00:00", "2024-05-01 08:00:00");
  abandoned.event = TapEvent::abandoned_entry;
  abandoned.entry_station_code.reset();
  abandoned.profile = Profile::student;
  abandoned.context.previous = PreviousBus("bus1", 10, "2024-05-01 07:59:00");
  FareQuote quote = Price(City(), abandoned);
  REQUIRE(quote.base_rule == "distance:unmatched_entry");
  REQUIRE(quote.full_fare_fen == 700);
  REQUIRE(quote.concession_fen == 350);
  REQUIRE(quote.transfer_discount_fen == 0);  // never a transfer
  REQUIRE(quote.amount_fen == 350);
}

TEST_CASE("A station the network does not list or a pair it does not price is not priced",
          "[core][fares]") {
  REQUIRE(Price(City(), MetroExit(1, 9, "2024-05-01 08:00:00", "2024-05-01 08:20:00")).outcome ==
          FareOutcome::unknown_station);
  REQUIRE(Price(City(), MetroExit(9, 1, "2024-05-01 08:00:00", "2024-05-01 08:20:00")).outcome ==
          FareOutcome::unknown_station);
  FareRequest ferry = MetroExit(1, 3, "2024-05-01 08:00:00", "2024-05-01 08:20:00");
  ferry.operator_id = "ferry1";
  ferry.mode = RideMode::ferry;
  FareQuote none = Price(City(), ferry);
  REQUIRE(none.outcome == FareOutcome::no_fare_for_pair);
  REQUIRE(none.amount_fen == 0);
  ferry.station_code = 2;
  REQUIRE(Price(City(), ferry).full_fare_fen == 500);
  FareRequest backwards = MetroExit(1, 2, "2024-05-01 08:20:00", "2024-05-01 08:00:00");
  REQUIRE(Price(City(), backwards).outcome == FareOutcome::invalid_request);
}

TEST_CASE("A metered ride charges the terminal's amount", "[core][fares]") {
  FareRequest taxi = Bus("taxi1", 0, Profile::student, "2024-05-01 08:00:00");
  taxi.mode = RideMode::taxi;
  REQUIRE(Price(City(), taxi).outcome == FareOutcome::missing_terminal_fare);
  taxi.terminal_fare_fen = 2350;
  FareQuote quote = Price(City(), taxi);
  REQUIRE(quote.base_rule == "terminal_fare");
  REQUIRE(quote.full_fare_fen == 2350);
  REQUIRE(quote.amount_fen == 2350);  // the taxi operator's concessions are empty: none
  taxi.terminal_fare_fen = -1;
  REQUIRE(Price(City(), taxi).outcome == FareOutcome::invalid_request);
  taxi.terminal_fare_fen = kFareFenMax + 1;
  REQUIRE(Price(City(), taxi).outcome == FareOutcome::invalid_request);
}

TEST_CASE("A full fare given by the terminal replaces the table's base fare", "[core][fares]") {
  FareRequest exit = MetroExit(1, 2, "2024-05-01 08:00:00", "2024-05-01 08:20:00");
  exit.terminal_fare_fen = 700;
  exit.profile = Profile::student;
  FareQuote quote = Price(City(), exit);
  REQUIRE(quote.base_rule == "terminal_fare");
  REQUIRE(quote.full_fare_fen == 700);
  REQUIRE(quote.amount_fen == 350);
}

TEST_CASE("Parking is priced from the entry and exit times by the rate table", "[core][fares]") {
  auto fee = [](const char* entered, const char* exited) {
    FareQuote quote = Price(City(), Park(entered, exited));
    REQUIRE(quote.base_rule == "parking");
    return quote.amount_fen;
  };
  REQUIRE(fee("2024-05-01 08:00:00", "2024-05-01 08:15:00") == 0);     // free minutes, last second
  REQUIRE(fee("2024-05-01 08:00:00", "2024-05-01 08:15:01") == 300);   // then from minute 0
  REQUIRE(fee("2024-05-01 08:00:00", "2024-05-01 08:30:00") == 300);
  REQUIRE(fee("2024-05-01 08:00:00", "2024-05-01 08:30:01") == 600);
  REQUIRE(fee("2024-05-01 08:00:00", "2024-05-01 09:00:00") == 600);
  REQUIRE(fee("2024-05-01 08:00:00", "2024-05-01 09:00:01") == 1100);
  REQUIRE(fee("2024-05-01 08:00:00", "2024-05-01 11:00:00") == 1600);
  REQUIRE(fee("2024-05-01 08:00:00", "2024-05-01 18:00:00") == 4000);  // the day's maximum
  REQUIRE(fee("2024-05-01 08:00:00", "2024-05-02 08:00:00") == 4000);  // one whole day
  REQUIRE(fee("2024-05-01 08:00:00", "2024-05-02 08:30:00") == 4300);  // a day and a half hour
  REQUIRE(fee("2024-05-01 23:50:00", "2024-05-02 00:10:00") == 300);   // across midnight
}

TEST_CASE("A parking exit without an entry or an entry never closed costs the lost-ticket fare",
          "[core][fares]") {
  FareRequest exit = Park("2024-05-01 08:00:00", "2024-05-01 09:00:00");
  exit.entry_time_s.reset();
  FareQuote lost = Price(City(), exit);
  REQUIRE(lost.base_rule == "parking:lost_ticket");
  REQUIRE(lost.amount_fen == 5000);
  exit.event = TapEvent::abandoned_entry;
  REQUIRE(Price(City(), exit).amount_fen == 5000);
  REQUIRE(Price(City(), Park("2024-05-01 09:00:00", "2024-05-01 08:00:00")).outcome ==
          FareOutcome::invalid_request);
  FareRequest entry = Park("2024-05-01 08:00:00", "2024-05-01 08:00:00");
  entry.event = TapEvent::entry;
  REQUIRE(Price(City(), entry).base_rule == "entry");
}

TEST_CASE("A request the table cannot price gets its own outcome and no amount", "[core][fares]") {
  REQUIRE(Price(City(), Bus("nobody", 10, Profile::adult, "2024-05-01 08:00:00")).outcome ==
          FareOutcome::unknown_operator);
  REQUIRE(Price(City(), Bus("bus1", 99, Profile::adult, "2024-05-01 08:00:00")).outcome ==
          FareOutcome::unknown_route);
  FareRequest wrong_mode = Bus("bus1", 10, Profile::adult, "2024-05-01 08:00:00");
  wrong_mode.mode = RideMode::metro;
  REQUIRE(Price(City(), wrong_mode).outcome == FareOutcome::mode_mismatch);
  FareRequest exit_on_flat = Bus("bus1", 10, Profile::adult, "2024-05-01 08:00:00");
  exit_on_flat.event = TapEvent::exit;
  REQUIRE(Price(City(), exit_on_flat).outcome == FareOutcome::event_not_priced);
  exit_on_flat.event = TapEvent::entry;
  REQUIRE(Price(City(), exit_on_flat).outcome == FareOutcome::event_not_priced);
  FareRequest single_on_distance = MetroExit(1, 2, "2024-05-01 08:00:00", "2024-05-01 08:20:00");
  single_on_distance.event = TapEvent::single;
  FareQuote quote = Price(City(), single_on_distance);
  REQUIRE(quote.outcome == FareOutcome::event_not_priced);
  REQUIRE(quote.full_fare_fen == 0);
  REQUIRE(quote.amount_fen == 0);
  REQUIRE(quote.rule_version == 7);
  REQUIRE(FareOutcomeName(FareOutcome::no_fare_for_pair) == "no_fare_for_pair");
}

// ----- Concessions. ----------------------------------------------------------------------------

TEST_CASE("A percentage concession rounds what the card pays half up to the fen", "[core][fares]") {
  FareQuote student = Price(City(), Bus("bus1", 10, Profile::student, "2024-05-01 08:00:00"));
  REQUIRE(student.concession_fen == 100);
  REQUIRE(student.amount_fen == 100);
  REQUIRE(student.concession_rule == "student[0]:percent");
  FareRequest odd = Bus("bus2", 0, Profile::student, "2024-05-01 08:00:00");
  odd.terminal_fare_fen = 251;  // 125.5 fen to pay
  FareQuote half = Price(City(), odd);
  REQUIRE(half.amount_fen == 126);
  REQUIRE(half.concession_fen == 125);
  odd.terminal_fare_fen = 249;  // 124.5
  REQUIRE(Price(City(), odd).amount_fen == 125);
  REQUIRE(PayPercent(1, 50) == 1);
  REQUIRE(PayPercent(3, 50) == 2);
  REQUIRE(PayPercent(199, 95) == 189);  // 189.05
  REQUIRE(PayPercent(10, 95) == 10);    // 9.5
}

TEST_CASE("A banded concession charges each band of the fare at its own rate", "[core][fares]") {
  REQUIRE(Price(City(), Bus("bus1", 11, Profile::adult, "2024-05-01 08:00:00")).amount_fen == 225);
  FareQuote three = Price(City(), Bus("bus2", 0, Profile::adult, "2024-05-01 08:00:00"));
  REQUIRE(three.amount_fen == 250);
  REQUIRE(three.concession_fen == 50);
  FareRequest odd = Bus("bus2", 0, Profile::adult, "2024-05-01 08:00:00");
  odd.terminal_fare_fen = 201;  // 200 + 0.5: rounded once, half up
  REQUIRE(Price(City(), odd).amount_fen == 201);
  odd.terminal_fare_fen = 150;  // inside the first band
  REQUIRE(Price(City(), odd).amount_fen == 150);
  // Modes filter rules: adults have no metro concession.
  REQUIRE(Price(City(), MetroExit(1, 4, "2024-05-01 08:00:00", "2024-05-01 08:20:00")).concession_rule.empty());
}

TEST_CASE("A free concession may hold only in some hours", "[core][fares]") {
  FareQuote inside = Price(City(), Bus("bus2", 0, Profile::elderly, "2024-05-01 09:00:00"));
  REQUIRE(inside.amount_fen == 0);
  REQUIRE(inside.concession_rule == "elderly[0]:free");
  REQUIRE_FALSE(inside.uses_free_ride);
  REQUIRE(Price(City(), Bus("bus2", 0, Profile::elderly, "2024-05-01 15:59:59")).concession_rule ==
          "elderly[0]:free");
  FareRequest after = Bus("bus2", 0, Profile::elderly, "2024-05-01 16:00:00");
  after.context.free_rides_used_this_month = 2;
  after.context.counters_day = DayOf("2024-05-01 07:00:00");
  FareQuote paid = Price(City(), after);
  REQUIRE(paid.concession_rule == "elderly[2]:percent");
  REQUIRE(paid.amount_fen == 150);
  // A metro trip's hours are decided by its entry.
  FareRequest trip = MetroExit(1, 4, "2024-05-01 15:59:59", "2024-05-01 16:30:00");
  trip.profile = Profile::elderly;
  REQUIRE(Price(City(), trip).concession_rule == "elderly[0]:free");
}

TEST_CASE("Hours that wrap past midnight hold on both sides of it", "[core][fares]") {
  auto rule = [](const char* when) {
    return Price(City(), Bus("bus2", 0, Profile::low_income, when)).amount_fen;
  };
  REQUIRE(rule("2024-05-01 21:59:59") == 225);  // 75 %
  REQUIRE(rule("2024-05-01 22:00:00") == 75);   // 25 %
  REQUIRE(rule("2024-05-01 23:59:59") == 75);
  REQUIRE(rule("2024-05-02 00:00:00") == 75);
  REQUIRE(rule("2024-05-02 05:59:59") == 75);
  REQUIRE(rule("2024-05-02 06:00:00") == 225);
  FareRequest metro = MetroExit(1, 4, "2024-05-01 23:00:00", "2024-05-01 23:20:00");
  metro.profile = Profile::low_income;
  REQUIRE(Price(City(), metro).amount_fen == 300);  // the night rule is for buses only
}

TEST_CASE("A monthly free-ride quota is used up and starts again with the month", "[core][fares]") {
  FareRequest ride = Bus("bus2", 0, Profile::elderly, "2024-05-31 20:00:00");
  ride.context.counters_day = DayOf("2024-05-31 08:00:00");
  ride.context.free_rides_used_this_month = 1;
  FareQuote free_ride = Price(City(), ride);
  REQUIRE(free_ride.concession_rule == "elderly[1]:free_quota");
  REQUIRE(free_ride.uses_free_ride);
  REQUIRE(free_ride.amount_fen == 0);
  RideContext next = NextContext(ride, free_ride);
  REQUIRE(next.free_rides_used_this_month == 2);
  ride.context = next;
  ride.time_s = At("2024-05-31 23:59:59");
  FareQuote used_up = Price(City(), ride);
  REQUIRE_FALSE(used_up.uses_free_ride);
  REQUIRE(used_up.amount_fen == 150);
  ride.time_s = At("2024-06-01 00:00:00");  // a new month: the quota is whole again
  FareQuote june = Price(City(), ride);
  REQUIRE(june.uses_free_ride);
  REQUIRE(june.amount_fen == 0);
  REQUIRE(NextContext(ride, june).free_rides_used_this_month == 1);
}

TEST_CASE("A route's concessions replace the table's", "[core][fares]") {
  FareRequest taxi = Bus("taxi1", 0, Profile::disabled, "2024-05-01 10:00:00");
  taxi.mode = RideMode::taxi;
  taxi.terminal_fare_fen = 1000;
  FareQuote quote = Price(City(), taxi);
  REQUIRE(quote.amount_fen == 1000);
  REQUIRE(quote.concession_rule.empty());
}

// ----- Transfers. ------------------------------------------------------------------------------

TEST_CASE("A fixed transfer discount holds until the last second of its window", "[core][fares]") {
  FareRequest ride = Bus("bus1", 11, Profile::adult, "2024-05-01 09:00:00");
  ride.context.previous = PreviousBus("bus1", 10, "2024-05-01 08:00:00");
  FareQuote last = Price(City(), ride);
  REQUIRE(last.transfer_rule == "transfers[0]");
  REQUIRE(last.full_fare_fen == 250);
  REQUIRE(last.concession_fen == 25);
  REQUIRE(last.transfer_discount_fen == 100);
  REQUIRE(last.amount_fen == 125);
  ride.time_s = At("2024-05-01 09:00:01");  // past rule 0's hour: rule 1, half off
  FareQuote later = Price(City(), ride);
  REQUIRE(later.transfer_rule == "transfers[1]");
  REQUIRE(later.transfer_discount_fen == 112);  // pays 112.5 -> 113
  REQUIRE(later.amount_fen == 113);
  ride.time_s = At("2024-05-01 09:30:00");
  REQUIRE(Price(City(), ride).transfer_rule == "transfers[1]");
  ride.time_s = At("2024-05-01 09:30:01");
  FareQuote none = Price(City(), ride);
  REQUIRE(none.transfer_rule.empty());
  REQUIRE(none.amount_fen == 225);
}

TEST_CASE("A transfer rule that needs another route skips the same route", "[core][fares]") {
  FareRequest ride = Bus("bus1", 10, Profile::adult, "2024-05-01 08:10:00");
  ride.context.previous = PreviousBus("bus1", 10, "2024-05-01 08:00:00");
  FareQuote quote = Price(City(), ride);
  REQUIRE(quote.transfer_rule == "transfers[1]");
  REQUIRE(quote.amount_fen == 100);
  ride.context.previous = PreviousBus("bus2", 10, "2024-05-01 08:00:00");  // another operator
  REQUIRE(Price(City(), ride).transfer_rule == "transfers[0]");
}

TEST_CASE("A transfer discount comes after the concession and never below zero", "[core][fares]") {
  FareRequest student = Bus("bus2", 0, Profile::student, "2024-05-01 08:10:00");
  student.context.previous = PreviousBus("bus1", 10, "2024-05-01 08:00:00");
  FareQuote quote = Price(City(), student);
  REQUIRE(quote.concession_fen == 150);
  REQUIRE(quote.transfer_discount_fen == 100);
  REQUIRE(quote.amount_fen == 50);
  student.profile = Profile::disabled;
  FareQuote free_ride = Price(City(), student);
  REQUIRE(free_ride.transfer_rule == "transfers[0]");
  REQUIRE(free_ride.transfer_discount_fen == 0);
  REQUIRE(free_ride.amount_fen == 0);
}

TEST_CASE("A metro trip is a transfer when its entry falls in the window", "[core][fares]") {
  FareRequest trip = MetroExit(1, 4, "2024-05-01 09:30:00", "2024-05-01 10:00:00");
  trip.context.previous = PreviousBus("bus1", 10, "2024-05-01 08:00:00");
  FareQuote quote = Price(City(), trip);
  REQUIRE(quote.transfer_rule == "transfers[1]");
  REQUIRE(quote.transfer_discount_fen == 200);
  REQUIRE(quote.amount_fen == 200);
  trip.entry_time_s = At("2024-05-01 09:30:01");
  REQUIRE(Price(City(), trip).transfer_rule.empty());
  trip.context.previous->mode = RideMode::taxi;  // not a listed mode
  trip.entry_time_s = At("2024-05-01 08:10:00");
  REQUIRE(Price(City(), trip).transfer_rule.empty());
  // A previous ride that ends after this one starts is not a transfer.
  trip.context.previous = PreviousBus("bus1", 10, "2024-05-01 08:10:01");
  REQUIRE(Price(City(), trip).transfer_rule.empty());
}

// ----- Daily caps at the reader. --------------------------------------------------------------

TEST_CASE("The tap that reaches the daily cap pays in full and the next one pays nothing",
          "[core][fares]") {
  FareRequest ride = Bus("bus2", 0, Profile::adult, "2024-05-01 18:00:00");
  ride.context.counters_day = DayOf("2024-05-01 08:00:00");
  ride.context.paid_today_fen = {{RideMode::bus, 450}, {RideMode::metro, 300}, {RideMode::taxi, 5000}};
  FareQuote reaches = Price(City(), ride);
  REQUIRE(reaches.amount_fen == 250);
  REQUIRE(reaches.cap_discount_fen == 0);
  REQUIRE(reaches.cap_rule == "daily_caps[0]");
  ride.context = NextContext(ride, reaches);
  REQUIRE(ride.context.paid_today_fen[RideMode::bus] == 700);
  ride.time_s = At("2024-05-01 21:00:00");  // past every transfer window
  FareQuote over = Price(City(), ride);
  REQUIRE(over.transfer_rule.empty());
  REQUIRE(over.amount_fen == 0);
  REQUIRE(over.cap_discount_fen == 250);
  REQUIRE(over.full_fare_fen == 300);
  REQUIRE(over.concession_fen == 50);
}

TEST_CASE("The tap that crosses the daily cap pays only what is left under it", "[core][fares]") {
  FareRequest trip = MetroExit(1, 4, "2024-05-01 18:00:00", "2024-05-01 18:20:00");
  trip.context.counters_day = DayOf("2024-05-01 08:00:00");
  trip.context.paid_today_fen = {{RideMode::bus, 900}};
  FareQuote quote = Price(City(), trip);
  REQUIRE(quote.full_fare_fen == 400);
  REQUIRE(quote.cap_discount_fen == 300);
  REQUIRE(quote.amount_fen == 100);
}

TEST_CASE("The daily cap starts again at midnight", "[core][fares]") {
  FareRequest ride = Bus("bus2", 0, Profile::adult, "2024-05-01 23:59:59");
  ride.context.counters_day = DayOf("2024-05-01 08:00:00");
  ride.context.paid_today_fen = {{RideMode::bus, 1000}};
  REQUIRE(Price(City(), ride).amount_fen == 0);
  ride.time_s = At("2024-05-02 00:00:00");
  FareQuote next_day = Price(City(), ride);
  REQUIRE(next_day.amount_fen == 250);
  REQUIRE(next_day.cap_discount_fen == 0);
  RideContext context = NextContext(ride, next_day);
  REQUIRE(*context.counters_day == DayOf("2024-05-02 00:00:00"));
  REQUIRE(context.paid_today_fen == std::map<RideMode, int64_t>{{RideMode::bus, 250}});
}

TEST_CASE("The context after a ride remembers it and an entry changes nothing", "[core][fares]") {
  FareRequest ride = Bus("bus1", 10, Profile::adult, "2024-05-01 08:00:00");
  FareQuote quote = Price(City(), ride);
  RideContext context = NextContext(ride, quote);
  REQUIRE(context.previous->end_time_s == At("2024-05-01 08:00:00"));
  REQUIRE(context.previous->mode == RideMode::bus);
  REQUIRE(context.previous->operator_id == "bus1");
  REQUIRE(context.previous->route_code == 10);
  REQUIRE(context.paid_today_fen.at(RideMode::bus) == 200);
  FareRequest entry = MetroExit(0, 1, "2024-05-01 08:30:00", "2024-05-01 08:30:00");
  entry.event = TapEvent::entry;
  entry.context = context;
  RideContext after_entry = NextContext(entry, Price(City(), entry));
  REQUIRE(after_entry.previous->end_time_s == context.previous->end_time_s);
  REQUIRE(after_entry.paid_today_fen == context.paid_today_fen);
  FareRequest unknown = Bus("nobody", 10, Profile::adult, "2024-05-01 09:00:00");
  unknown.context = context;
  REQUIRE(NextContext(unknown, Price(City(), unknown)).paid_today_fen == context.paid_today_fen);
}

TEST_CASE("A quote describes itself for logs", "[core][fares]") {
  FareRequest ride = Bus("bus1", 11, Profile::adult, "2024-05-01 09:00:00");
  ride.context.previous = PreviousBus("bus1", 10, "2024-05-01 08:30:00");
  REQUIRE(Price(City(), ride).Describe() ==
          "v7 priced flat full=250 concession=25 transfer=100 cap=0 amount=125 "
          "concession_rule=adult[0]:bands transfer_rule=transfers[0] cap_rule=daily_caps[0]");
}

// ----- Passes. ---------------------------------------------------------------------------------

TEST_CASE("A pass opens its spots once a day each while it has visits and is valid", "[core][fares]") {
  const PassProduct& pass = *City().FindPass("annual");
  PassHolding holding;
  holding.sold_day = DayOf("2024-05-01 10:00:00");
  REQUIRE(CheckPassEntry(pass, holding, "spot1", At("2024-05-01 10:00:00")) == PassEntryOutcome::admitted);
  REQUIRE(CheckPassEntry(pass, holding, "bus1", At("2024-05-01 10:00:00")) == PassEntryOutcome::not_valid_here);
  REQUIRE(CheckPassEntry(pass, holding, "spot1", At("2024-04-30 23:59:59")) == PassEntryOutcome::not_yet_valid);
  REQUIRE(CheckPassEntry(pass, holding, "spot1", At("2025-04-30 23:59:59")) == PassEntryOutcome::admitted);
  REQUIRE(CheckPassEntry(pass, holding, "spot1", At("2025-05-01 00:00:00")) == PassEntryOutcome::expired);
  holding.visits_used = 1;
  holding.last_entry_day_by_spot["spot1"] = DayOf("2024-05-01 10:00:00");
  REQUIRE(CheckPassEntry(pass, holding, "spot1", At("2024-05-01 23:59:59")) ==
          PassEntryOutcome::already_entered_today);
  REQUIRE(CheckPassEntry(pass, holding, "spot2", At("2024-05-01 11:00:00")) == PassEntryOutcome::admitted);
  REQUIRE(CheckPassEntry(pass, holding, "spot1", At("2024-05-02 00:00:00")) == PassEntryOutcome::admitted);
  holding.visits_used = 3;
  REQUIRE(CheckPassEntry(pass, holding, "spot2", At("2024-05-03 11:00:00")) == PassEntryOutcome::no_visits_left);
  REQUIRE(PassEntryOutcomeName(PassEntryOutcome::already_entered_today) == "pass_already_entered_today");
}

// ----- The real Shenzhen evening. -------------------------------------------------------------

namespace {

// A card's profile, inferred from what it was charged on its non-transfer taps with a full
// fare: a card charged nothing for a priced ride rides free (elderly in the Shenzhen table);
// a card charged exactly half a full fare is a concession card (student); any other card is an
// ordinary (adult) card. See docs/fares.md, "The Shenzhen example".
std::map<std::string, Profile> InferProfiles(const std::vector<SztRow>& rows) {
  std::map<std::string, Profile> profiles;
  for (const SztRow& row : rows) {
    Profile& profile = profiles.try_emplace(row.card_no, Profile::adult).first->second;
    if (row.deal_type == SztDealType::metro_entry || row.conn_mark || row.deal_value_fen == 0) continue;
    if (row.deal_money_fen == 0) {
      profile = Profile::elderly;
    } else if (2 * row.deal_money_fen == row.deal_value_fen && profile == Profile::adult) {
      profile = Profile::student;
    }
  }
  return profiles;
}

struct Agreement {
  int64_t rows = 0;
  int64_t agreed = 0;
  double percent() const { return rows == 0 ? 100.0 : 100.0 * static_cast<double>(agreed) / static_cast<double>(rows); }
};

}  // namespace

TEST_CASE("The Shenzhen table prices the real evening as the cards were charged", "[core][fares]") {
  const std::string csv = Slurp(CITYCARD_SOURCE_DIR "/../shared/data/szt-2018-08-31-evening.csv");
  if (csv.empty()) {
    WARN("../shared/data/szt-2018-08-31-evening.csv is absent: the Shenzhen agreement is not checked");
    return;
  }
  Result<std::vector<SztRow>> rows = ParseSztFile(csv);
  REQUIRE(rows.ok());
  Result<FareTable> table = ParseFareTable(Slurp(CITYCARD_SOURCE_DIR "/docs/examples/shenzhen-fares.json"));
  REQUIRE(table.ok());
  const std::map<std::string, Profile> profiles = InferProfiles(*rows);

  // Each card's taps in time order, so that its context (previous ride, today's payments) is
  // what a reader would have had, as far as this evening shows it.
  std::vector<const SztRow*> ordered;
  for (const SztRow& row : *rows) ordered.push_back(&row);
  std::stable_sort(ordered.begin(), ordered.end(), [](const SztRow* a, const SztRow* b) {
    return std::tie(a->card_no, a->deal_time_s) < std::tie(b->card_no, b->deal_time_s);
  });

  Agreement all_plain;    // every non-transfer tap, entries included
  Agreement charged;      // non-transfer exits and bus rides: the taps that carry a fare
  Agreement transfers;    // conn_mark = 1
  std::map<std::string, int64_t> by_profile_rows;
  RideContext context;
  std::optional<int64_t> entry_time_s;
  std::string card;
  std::vector<std::string> disagreements;
  for (const SztRow* row : ordered) {
    if (row->card_no != card) {
      card = row->card_no;
      context = RideContext{};
      entry_time_s.reset();
    }
    const FareOperator* op = table->FindOperatorByName(row->company_name);
    REQUIRE(op != nullptr);
    FareRequest request;
    request.operator_id = op->id;
    request.mode = op->mode;
    request.profile = profiles.at(row->card_no);
    request.time_s = row->deal_time_s;
    request.terminal_fare_fen = row->deal_value_fen;
    for (const FareRoute& route : op->routes) {
      if (route.name == row->station) request.route_code = route.code;
    }
    switch (row->deal_type) {
      case SztDealType::metro_entry: request.event = TapEvent::entry; break;
      case SztDealType::metro_exit:
        request.event = TapEvent::exit;
        request.entry_time_s = entry_time_s;
        break;
      case SztDealType::bus: request.event = TapEvent::single; break;
    }
    request.context = context;
    // A transfer's first ride is usually before the evening starts: the reader's conn_mark
    // says there was one, so a bus ride a minute before this ride started stands in for it.
    if (row->conn_mark && !request.context.previous) {
      request.context.previous = PreviousRide{request.entry_time_s.value_or(request.time_s) - 60,
                                              RideMode::bus, "sz-bus-earlier", 0};
    }
    FareQuote quote = Price(*table, request);
    REQUIRE(quote.outcome == FareOutcome::priced);
    const bool agreed = quote.amount_fen == row->deal_money_fen;
    Agreement& bucket = row->conn_mark ? transfers : all_plain;
    ++bucket.rows;
    bucket.agreed += agreed;
    if (!row->conn_mark && row->deal_type != SztDealType::metro_entry) {
      ++charged.rows;
      charged.agreed += agreed;
      ++by_profile_rows[std::string(ProfileName(request.profile))];
    }
    if (!agreed) {
      disagreements.push_back(fmt::format("line {}: {} {} {} value={} money={} priced={} ({})", row->line,
                                          row->card_no, row->company_name, row->station, row->deal_value_fen,
                                          row->deal_money_fen, quote.amount_fen, quote.Describe()));
    }
    context = NextContext(request, quote);
    entry_time_s = row->deal_type == SztDealType::metro_entry ? std::optional<int64_t>(row->deal_time_s)
                                                               : std::nullopt;
  }
  std::printf("Shenzhen evening, priced from deal_value with inferred profiles:\n");
  std::printf("  non-transfer taps:             %lld/%lld agree (%.2f%%)\n",
              static_cast<long long>(all_plain.agreed), static_cast<long long>(all_plain.rows), all_plain.percent());
  std::printf("  non-transfer exits and buses:  %lld/%lld agree (%.2f%%)\n",
              static_cast<long long>(charged.agreed), static_cast<long long>(charged.rows), charged.percent());
  std::printf("  transfer taps (conn_mark=1):   %lld/%lld agree (%.2f%%)\n",
              static_cast<long long>(transfers.agreed), static_cast<long long>(transfers.rows), transfers.percent());
  for (const auto& [profile, count] : by_profile_rows) {
    std::printf("  charged taps of %s cards: %lld\n", profile.c_str(), static_cast<long long>(count));
  }
  for (const std::string& line : disagreements) std::printf("  disagrees: %s\n", line.c_str());
  REQUIRE(all_plain.rows == 9990);
  REQUIRE(charged.rows == 630);
  REQUIRE(charged.percent() >= 99.0);
  REQUIRE(all_plain.percent() >= 99.0);
}
