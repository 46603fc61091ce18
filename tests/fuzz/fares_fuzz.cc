// Fuzz target: the fare-table parser and, through the tables it accepts, the pricing engine
// (core/fares.h, docs/fares.md, docs/fuzzing.md). The input is the JSON text of a table.
//
// Checked, beyond "does not crash":
// - a refusal is Kind::bad_input "invalid_fare_table" with a message that names a line;
// - what ParseFareTable promises of an accepted table: amounts within 0..kFareFenMax,
//   percentages within 0..100, every list within its limit, stations sorted and unique per
//   network, references (networks, pair stations, zones) resolving, at most one daily cap
//   per profile and mode;
// - Price, for a spread of requests against the first operators of the table (each event,
//   known and unknown routes and stations, profiles and times of day in turn): a quote that
//   is not priced carries no money; a priced one has no negative part, pays at most the full
//   fare, and its parts add up (Price asserts that too);
// - a daily cap holds over a day of rides: three rides in a row, each priced with the
//   context NextContext left, never pay more together than the cap.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "core/fares.h"
#include "core/profile.h"
#include "core/status.h"

namespace {

using namespace citycard;

constexpr Profile kProfiles[] = {Profile::adult, Profile::student, Profile::elderly,
                                 Profile::disabled, Profile::low_income};
constexpr int64_t kDayStartS = 1535673600 - 8 * 3600;  // 2018-08-31 00:00 in Shenzhen
constexpr int64_t kMorningS = kDayStartS + 10 * 3600;
constexpr size_t kOperatorsPriced = 4;
constexpr size_t kRoutesPriced = 3;

bool IsFen(int64_t fen) { return fen >= 0 && fen <= kFareFenMax; }
bool IsPercent(int64_t percent) { return percent >= 0 && percent <= 100; }

void CheckConcessions(const ConcessionMap& concessions) {
  for (const auto& [profile, rules] : concessions) {
    CITYCARD_ASSERT(rules.size() <= kFareRulesMax);
    for (const ConcessionRule& rule : rules) {
      CITYCARD_ASSERT(IsPercent(rule.pay_percent));
      for (const PayBand& band : rule.bands) {
        CITYCARD_ASSERT(IsPercent(band.pay_percent));
        if (band.up_to_fen) CITYCARD_ASSERT(IsFen(*band.up_to_fen));
      }
      for (const HourRange& hours : rule.hours) {
        CITYCARD_ASSERT(hours.start_minute >= 0 && hours.start_minute < 24 * 60);
        CITYCARD_ASSERT(hours.end_minute >= 0 && hours.end_minute <= 24 * 60);
      }
      CITYCARD_ASSERT(rule.rides_per_month >= 0 && rule.rides_per_month <= kFreeRidesPerMonthMax);
    }
  }
}

void CheckPricing(const FareTable& table, const RoutePricing& pricing) {
  CITYCARD_ASSERT(IsFen(pricing.fare_fen) && IsFen(pricing.lost_ticket_fare_fen));
  if (pricing.kind == PricingKind::distance) CITYCARD_ASSERT(table.FindNetwork(pricing.network_id));
  if (pricing.day_max_fen) CITYCARD_ASSERT(IsFen(*pricing.day_max_fen));
  CITYCARD_ASSERT(pricing.free_minutes >= 0 && pricing.free_minutes <= kFareMinutesMax);
  for (const ParkingBand& band : pricing.bands) {
    CITYCARD_ASSERT(IsFen(band.fen_per_unit));
    CITYCARD_ASSERT(band.unit_minutes >= 1 && band.unit_minutes <= kFareMinutesMax);
  }
}

void CheckNetwork(const FareNetwork& network) {
  CITYCARD_ASSERT(network.stations.size() <= kFareStationsMax);
  CITYCARD_ASSERT(network.zone_fares_fen.size() <= kFareZonesMax);
  CITYCARD_ASSERT(network.pair_fares.size() <= kFarePairFaresMax);
  auto by_code = [](const FareStation& a, const FareStation& b) { return a.code < b.code; };
  CITYCARD_ASSERT(std::is_sorted(network.stations.begin(), network.stations.end(), by_code));
  auto same_code = [](const FareStation& a, const FareStation& b) { return a.code == b.code; };
  CITYCARD_ASSERT(std::adjacent_find(network.stations.begin(), network.stations.end(), same_code) ==
                  network.stations.end());
  auto has_station = [&](uint32_t code) {
    return std::binary_search(network.stations.begin(), network.stations.end(),
                              FareStation{code, {}, 1}, by_code);
  };
  for (const StationPairFare& pair : network.pair_fares) {
    CITYCARD_ASSERT(IsFen(pair.fare_fen));
    CITYCARD_ASSERT(has_station(pair.from_code) && has_station(pair.to_code));
  }
  const auto zones = static_cast<int64_t>(network.zone_fares_fen.size());
  for (const auto& row : network.zone_fares_fen) {
    CITYCARD_ASSERT(static_cast<int64_t>(row.size()) == zones);
    for (int64_t fen : row) CITYCARD_ASSERT(IsFen(fen));
  }
  if (zones > 0) {
    for (const FareStation& station : network.stations) {
      CITYCARD_ASSERT(station.zone >= 1 && station.zone <= zones);
    }
  }
  CITYCARD_ASSERT(IsFen(network.unmatched_exit_fare_fen) && IsFen(network.unmatched_entry_fare_fen));
  CITYCARD_ASSERT(network.max_trip_minutes >= 0 && network.max_trip_minutes <= kFareMinutesMax);
}

void CheckTable(const FareTable& table) {
  CITYCARD_ASSERT(table.version >= 1 && table.version <= int64_t{0xFFFFFFFF});
  CITYCARD_ASSERT(table.operators.size() <= kFareOperatorsMax);
  CITYCARD_ASSERT(table.passes.size() <= kFarePassesMax);
  for (const FareNetwork& network : table.networks) CheckNetwork(network);
  for (const FareOperator& op : table.operators) {
    CITYCARD_ASSERT(op.routes.size() <= kFareRoutesMax);
    CITYCARD_ASSERT(table.FindOperator(op.id) != nullptr);
    if (op.pricing) CheckPricing(table, *op.pricing);
    if (op.concessions) CheckConcessions(*op.concessions);
    for (const FareRoute& route : op.routes) {
      CheckPricing(table, route.pricing);
      if (route.concessions) CheckConcessions(*route.concessions);
    }
  }
  CheckConcessions(table.concessions);
  for (const TransferRule& rule : table.transfers) {
    CITYCARD_ASSERT(IsFen(rule.discount_fen) && IsPercent(rule.percent_off));
    CITYCARD_ASSERT(rule.window_seconds >= 0);
  }
  std::set<std::pair<Profile, RideMode>> capped;
  for (const DailyCap& cap : table.daily_caps) {
    CITYCARD_ASSERT(IsFen(cap.cap_fen));
    for (RideMode mode : cap.modes) CITYCARD_ASSERT(capped.insert({cap.profile, mode}).second);
  }
  for (const PassProduct& pass : table.passes) {
    CITYCARD_ASSERT(IsFen(pass.price_fen));
    CITYCARD_ASSERT(pass.validity_days >= 0 && pass.validity_days <= kPassValidityDaysMax);
    CITYCARD_ASSERT(pass.visits >= 0 && pass.visits <= kPassVisitsMax);
  }
}

void CheckQuote(const FareQuote& quote, const FareTable& table) {
  CITYCARD_ASSERT(quote.rule_version == table.version);
  if (quote.outcome != FareOutcome::priced) {
    CITYCARD_ASSERT(quote.full_fare_fen == 0 && quote.amount_fen == 0);
    CITYCARD_ASSERT(quote.concession_fen == 0 && quote.transfer_discount_fen == 0);
    CITYCARD_ASSERT(quote.cap_discount_fen == 0);
    return;
  }
  CITYCARD_ASSERT(quote.full_fare_fen >= 0 && quote.amount_fen >= 0);
  CITYCARD_ASSERT(quote.concession_fen >= 0 && quote.transfer_discount_fen >= 0);
  CITYCARD_ASSERT(quote.cap_discount_fen >= 0);
  CITYCARD_ASSERT(quote.amount_fen <= quote.full_fare_fen);
  CITYCARD_ASSERT(quote.full_fare_fen == quote.concession_fen + quote.transfer_discount_fen +
                                             quote.cap_discount_fen + quote.amount_fen);
  CITYCARD_ASSERT(!quote.base_rule.empty());
}

// The stations a request may name on this pricing: the network's first and last, and one
// that no network lists.
std::vector<uint32_t> StationsOf(const FareTable& table, const RoutePricing& pricing) {
  std::vector<uint32_t> codes = {0xFFFFFFFF};
  const FareNetwork* network = table.FindNetwork(pricing.network_id);
  if (network != nullptr && !network->stations.empty()) {
    codes.push_back(network->stations.front().code);
    codes.push_back(network->stations.back().code);
  }
  return codes;
}

// The requests priced for one route: each event, with and without a known entry.
std::vector<FareRequest> RequestsFor(const FareTable& table, const FareOperator& op,
                                     uint32_t route_code, const RoutePricing* pricing) {
  std::vector<FareRequest> requests;
  FareRequest base;
  base.operator_id = op.id;
  base.route_code = route_code;
  base.mode = op.mode;
  base.time_s = kMorningS;
  std::vector<uint32_t> stations =
      pricing != nullptr ? StationsOf(table, *pricing) : std::vector<uint32_t>{1};
  for (TapEvent event : {TapEvent::single, TapEvent::entry, TapEvent::abandoned_entry}) {
    FareRequest request = base;
    request.event = event;
    request.station_code = stations.back();
    requests.push_back(request);
  }
  for (uint32_t from : stations) {
    for (int64_t stay_s : {int64_t{0}, int64_t{25 * 60}, int64_t{3 * 86400 + 7200}}) {
      FareRequest request = base;
      request.event = TapEvent::exit;
      request.entry_station_code = from;
      request.station_code = stations.back();
      request.entry_time_s = kMorningS - stay_s;
      requests.push_back(request);
    }
  }
  FareRequest unmatched = base;
  unmatched.event = TapEvent::exit;
  unmatched.station_code = stations.back();
  requests.push_back(unmatched);
  FareRequest metered = base;
  metered.terminal_fare_fen = 1234;
  requests.push_back(metered);
  return requests;
}

// Prices the request three times in a row, as three rides of one card on one day.
void PriceDay(const FareTable& table, FareRequest request) {
  int64_t paid_fen = 0;
  for (int ride = 0; ride < 3; ++ride) {
    FareQuote quote = Price(table, request);
    CheckQuote(quote, table);
    paid_fen += quote.amount_fen;
    request.context = NextContext(request, quote);
    request.time_s += 600;
    if (request.entry_time_s) *request.entry_time_s += 600;
  }
  const DailyCap* cap = table.FindDailyCap(request.profile, request.mode);
  if (cap != nullptr) CITYCARD_ASSERT(paid_fen <= cap->cap_fen);
}

void PriceOperator(const FareTable& table, const FareOperator& op) {
  std::vector<std::pair<uint32_t, const RoutePricing*>> routes;
  for (size_t i = 0; i < op.routes.size() && i < kRoutesPriced; ++i) {
    routes.emplace_back(op.routes[i].code, &op.routes[i].pricing);
  }
  routes.emplace_back(0xFFFFFFFF, op.pricing ? &*op.pricing : nullptr);  // an unlisted route
  // Each request goes with one profile and one time of day, in turn, so that all of them are
  // tried without pricing every combination (which made a run ten times slower). The times
  // stay 30 minutes clear of midnight, so the three rides of PriceDay fall on one day.
  size_t turn = 0;
  for (const auto& [code, pricing] : routes) {
    for (FareRequest request : RequestsFor(table, op, code, pricing)) {
      request.profile = kProfiles[turn % std::size(kProfiles)];
      const int64_t shift_s = kDayStartS + static_cast<int64_t>(turn * 7919 % (86400 - 1800)) - kMorningS;
      request.time_s += shift_s;
      if (request.entry_time_s) *request.entry_time_s += shift_s;
      ++turn;
      PriceDay(table, request);
    }
  }
  // A request whose mode is not the operator's is refused.
  FareRequest wrong_mode;
  wrong_mode.operator_id = op.id;
  wrong_mode.mode = op.mode == RideMode::bus ? RideMode::metro : RideMode::bus;
  CITYCARD_ASSERT(Price(table, wrong_mode).outcome == FareOutcome::mode_mismatch);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  Result<FareTable> table = ParseFareTable(json);
  if (!table.ok()) {
    CITYCARD_ASSERT(table.status().kind() == Kind::bad_input);
    CITYCARD_ASSERT(table.status().code() == "invalid_fare_table");
    CITYCARD_ASSERT(table.status().message().starts_with("line "));
    return 0;
  }
  CheckTable(*table);
  for (size_t i = 0; i < table->operators.size() && i < kOperatorsPriced; ++i) {
    PriceOperator(*table, table->operators[i]);
  }
  FareRequest unknown;
  unknown.operator_id = "\x01no such operator";
  CITYCARD_ASSERT(Price(*table, unknown).outcome == FareOutcome::unknown_operator);
  return 0;
}
