// The pricing engine and small helpers of core/fares.h. The JSON reader is in
// core/fares_parse.cc.
#include "core/fares.h"

#include <algorithm>
#include <array>
#include <utility>

#include <fmt/format.h>

#include "core/time.h"

namespace citycard {

namespace {

constexpr std::array<std::pair<RideMode, std::string_view>, 6> kRideModes = {{
    {RideMode::bus, "bus"},
    {RideMode::metro, "metro"},
    {RideMode::taxi, "taxi"},
    {RideMode::parking, "parking"},
    {RideMode::scenic, "scenic"},
    {RideMode::ferry, "ferry"},
}};

bool Contains(const std::vector<RideMode>& modes, RideMode mode) {
  return std::find(modes.begin(), modes.end(), mode) != modes.end();
}

int64_t FloorMod(int64_t a, int64_t b) {
  const int64_t r = a % b;
  return r < 0 ? r + b : r;
}

// The minute of the local day (0..1439) at unix_seconds.
int64_t LocalMinuteOfDay(int64_t unix_seconds) {
  return FloorMod(unix_seconds + kShanghaiOffsetSeconds, kSecondsPerDay) / 60;
}

bool InHours(const std::vector<HourRange>& hours, int64_t unix_seconds) {
  if (hours.empty()) return true;
  const int64_t minute = LocalMinuteOfDay(unix_seconds);
  for (const HourRange& range : hours) {
    const bool inside = range.start_minute < range.end_minute
                            ? minute >= range.start_minute && minute < range.end_minute
                            : minute >= range.start_minute || minute < range.end_minute;
    if (inside) return true;
  }
  return false;
}

// "2018-08" of a civil day: two days are in one month when these are equal.
std::string MonthOf(int64_t day) { return FormatDay(day).substr(0, 7); }

// The amount a card pays of `full_fen` under progressive bands, rounded half up once.
int64_t PayBands(const std::vector<PayBand>& bands, int64_t full_fen) {
  int64_t hundredths = 0;  // fen * percent: exact until the single rounding below
  int64_t lower_fen = 0;
  for (const PayBand& band : bands) {
    if (full_fen <= lower_fen) break;
    const int64_t upper_fen = band.up_to_fen ? std::min(*band.up_to_fen, full_fen) : full_fen;
    hundredths += (upper_fen - lower_fen) * band.pay_percent;
    lower_fen = upper_fen;
  }
  return (hundredths + 50) / 100;
}

struct Base {
  FareOutcome outcome = FareOutcome::priced;
  int64_t full_fen = 0;
  std::string rule;
  bool carries_money = true;  // false for an entry
};

Base Refuse(FareOutcome outcome) {
  Base base;
  base.outcome = outcome;
  return base;
}

Base Charge(int64_t full_fen, std::string rule) {
  Base base;
  base.full_fen = full_fen;
  base.rule = std::move(rule);
  return base;
}

const FareStation* FindStation(const FareNetwork& network, uint32_t code) {
  auto it = std::lower_bound(network.stations.begin(), network.stations.end(), code,
                             [](const FareStation& s, uint32_t c) { return s.code < c; });
  return it != network.stations.end() && it->code == code ? &*it : nullptr;
}

const StationPairFare* FindPair(const FareNetwork& network, uint32_t a, uint32_t b) {
  const std::pair<uint32_t, uint32_t> key = std::minmax(a, b);
  auto it = std::lower_bound(network.pair_fares.begin(), network.pair_fares.end(), key,
                             [](const StationPairFare& p, const std::pair<uint32_t, uint32_t>& k) {
                               return std::make_pair(p.from_code, p.to_code) < k;
                             });
  return it != network.pair_fares.end() && it->from_code == key.first && it->to_code == key.second
             ? &*it
             : nullptr;
}

Base DistanceExit(const FareNetwork& network, const FareRequest& request) {
  const FareStation* exit = FindStation(network, request.station_code);
  if (exit == nullptr) return Refuse(FareOutcome::unknown_station);
  if (!request.entry_station_code) {
    return Charge(network.unmatched_exit_fare_fen, "distance:unmatched_exit");
  }
  const FareStation* entry = FindStation(network, *request.entry_station_code);
  if (entry == nullptr) return Refuse(FareOutcome::unknown_station);
  if (request.entry_time_s) {
    const int64_t trip_s = request.time_s - *request.entry_time_s;
    if (trip_s < 0) return Refuse(FareOutcome::invalid_request);
    // The trip window's last second still closes the trip; one second more and the entry is
    // no longer this exit's (docs/fares.md, "Incomplete trips").
    if (trip_s > network.max_trip_minutes * 60) {
      return Charge(network.unmatched_exit_fare_fen, "distance:unmatched_exit");
    }
  }
  if (const StationPairFare* pair = FindPair(network, entry->code, exit->code)) {
    return Charge(pair->fare_fen, "distance:pair");
  }
  const size_t zones = network.zone_fares_fen.size();
  if (zones == 0 || entry->zone < 1 || exit->zone < 1 || static_cast<size_t>(entry->zone) > zones ||
      static_cast<size_t>(exit->zone) > zones) {
    return Refuse(FareOutcome::no_fare_for_pair);
  }
  return Charge(network.zone_fares_fen[entry->zone - 1][exit->zone - 1], "distance:zone");
}

Base DistanceBase(const FareTable& table, const RoutePricing& pricing, const FareRequest& request) {
  const FareNetwork* network = table.FindNetwork(pricing.network_id);
  if (network == nullptr) return Refuse(FareOutcome::unknown_route);
  switch (request.event) {
    case TapEvent::exit:
      return DistanceExit(*network, request);
    case TapEvent::abandoned_entry:
      if (FindStation(*network, request.station_code) == nullptr) {
        return Refuse(FareOutcome::unknown_station);
      }
      return Charge(network->unmatched_entry_fare_fen, "distance:unmatched_entry");
    default:
      return Refuse(FareOutcome::event_not_priced);
  }
}

Base ParkingBase(const RoutePricing& pricing, const FareRequest& request) {
  if (request.event == TapEvent::abandoned_entry ||
      (request.event == TapEvent::exit && !request.entry_time_s)) {
    return Charge(pricing.lost_ticket_fare_fen, "parking:lost_ticket");
  }
  if (request.event != TapEvent::exit) return Refuse(FareOutcome::event_not_priced);
  const int64_t stay_s = request.time_s - *request.entry_time_s;
  if (stay_s < 0 || stay_s > kFareMinutesMax * 60) return Refuse(FareOutcome::invalid_request);
  return Charge(ParkingFee(pricing, stay_s), "parking");
}

Base ComputeBase(const FareTable& table, const RoutePricing& pricing, const FareRequest& request) {
  const bool opens_trip = pricing.kind == PricingKind::distance || pricing.kind == PricingKind::parking;
  if (request.event == TapEvent::entry) {
    if (!opens_trip) return Refuse(FareOutcome::event_not_priced);
    // With a terminal fare the terminal did the distance pricing, so the stations are its
    // business (a replay of recorded taps names stations the table need not number).
    if (pricing.kind == PricingKind::distance && !request.terminal_fare_fen) {
      const FareNetwork* network = table.FindNetwork(pricing.network_id);
      if (network == nullptr) return Refuse(FareOutcome::unknown_route);
      if (FindStation(*network, request.station_code) == nullptr) {
        return Refuse(FareOutcome::unknown_station);
      }
    }
    Base base = Charge(0, "entry");
    base.carries_money = false;
    return base;
  }
  if (request.terminal_fare_fen) {
    if (*request.terminal_fare_fen < 0 || *request.terminal_fare_fen > kFareFenMax) {
      return Refuse(FareOutcome::invalid_request);
    }
    return Charge(*request.terminal_fare_fen, "terminal_fare");
  }
  switch (pricing.kind) {
    case PricingKind::flat:
      if (request.event != TapEvent::single) return Refuse(FareOutcome::event_not_priced);
      return Charge(pricing.fare_fen, "flat");
    case PricingKind::metered:
      if (request.event != TapEvent::single) return Refuse(FareOutcome::event_not_priced);
      return Refuse(FareOutcome::missing_terminal_fare);
    case PricingKind::distance:
      return DistanceBase(table, pricing, request);
    case PricingKind::parking:
      return ParkingBase(pricing, request);
  }
  return Refuse(FareOutcome::event_not_priced);
}

struct Concession {
  int64_t pay_fen = 0;
  std::string rule;
  bool uses_free_ride = false;
};

Concession ApplyConcession(const ConcessionMap& concessions, const FareRequest& request,
                           int64_t full_fen, int64_t ride_start_s, int64_t free_rides_used) {
  Concession result;
  result.pay_fen = full_fen;
  auto it = concessions.find(request.profile);
  if (it == concessions.end()) return result;
  const std::vector<ConcessionRule>& rules = it->second;
  for (size_t i = 0; i < rules.size(); ++i) {
    const ConcessionRule& rule = rules[i];
    if (!rule.modes.empty() && !Contains(rule.modes, request.mode)) continue;
    if (!InHours(rule.hours, ride_start_s)) continue;
    switch (rule.kind) {
      case ConcessionKind::percent:
        result.pay_fen = PayPercent(full_fen, rule.pay_percent);
        break;
      case ConcessionKind::free:
        result.pay_fen = 0;
        break;
      case ConcessionKind::bands:
        result.pay_fen = PayBands(rule.bands, full_fen);
        break;
      case ConcessionKind::free_quota:
        // A ride with nothing to pay does not use up a free ride.
        if (full_fen == 0 || free_rides_used >= rule.rides_per_month) continue;
        result.pay_fen = 0;
        result.uses_free_ride = true;
        break;
    }
    result.rule = fmt::format("{}[{}]:{}", ProfileName(request.profile), i,
                              ConcessionKindName(rule.kind));
    return result;
  }
  return result;
}

bool TransferApplies(const TransferRule& rule, const FareRequest& request, int64_t ride_start_s) {
  const PreviousRide& previous = *request.context.previous;
  const int64_t gap_s = ride_start_s - previous.end_time_s;
  if (gap_s < 0 || gap_s > rule.window_seconds) return false;
  if (!Contains(rule.from_modes, previous.mode) || !Contains(rule.to_modes, request.mode)) {
    return false;
  }
  if (rule.different_route && previous.operator_id == request.operator_id &&
      previous.route_code == request.route_code) {
    return false;
  }
  return true;
}

const ConcessionMap& ConcessionsFor(const FareTable& table, const FareOperator& op,
                                    const FareRoute* route) {
  if (route != nullptr && route->concessions) return *route->concessions;
  if (op.concessions) return *op.concessions;
  return table.concessions;
}

}  // namespace

std::string_view RideModeName(RideMode mode) {
  for (const auto& [m, name] : kRideModes) {
    if (m == mode) return name;
  }
  return "unknown";
}

std::optional<RideMode> ParseRideMode(std::string_view name) {
  for (const auto& [m, n] : kRideModes) {
    if (n == name) return m;
  }
  return std::nullopt;
}

std::string_view PricingKindName(PricingKind kind) {
  switch (kind) {
    case PricingKind::flat: return "flat";
    case PricingKind::distance: return "distance";
    case PricingKind::metered: return "metered";
    case PricingKind::parking: return "parking";
  }
  return "unknown";
}

std::string_view ConcessionKindName(ConcessionKind kind) {
  switch (kind) {
    case ConcessionKind::percent: return "percent";
    case ConcessionKind::free: return "free";
    case ConcessionKind::bands: return "bands";
    case ConcessionKind::free_quota: return "free_quota";
  }
  return "unknown";
}

std::string_view FareOutcomeName(FareOutcome outcome) {
  switch (outcome) {
    case FareOutcome::priced: return "priced";
    case FareOutcome::unknown_operator: return "unknown_operator";
    case FareOutcome::unknown_route: return "unknown_route";
    case FareOutcome::mode_mismatch: return "mode_mismatch";
    case FareOutcome::unknown_station: return "unknown_station";
    case FareOutcome::no_fare_for_pair: return "no_fare_for_pair";
    case FareOutcome::event_not_priced: return "event_not_priced";
    case FareOutcome::missing_terminal_fare: return "missing_terminal_fare";
    case FareOutcome::invalid_request: return "invalid_request";
  }
  return "unknown";
}

std::string_view PassEntryOutcomeName(PassEntryOutcome outcome) {
  switch (outcome) {
    case PassEntryOutcome::admitted: return "admitted";
    case PassEntryOutcome::not_valid_here: return "pass_not_valid_here";
    case PassEntryOutcome::not_yet_valid: return "pass_not_yet_valid";
    case PassEntryOutcome::expired: return "pass_expired";
    case PassEntryOutcome::no_visits_left: return "pass_no_visits_left";
    case PassEntryOutcome::already_entered_today: return "pass_already_entered_today";
  }
  return "unknown";
}

const FareOperator* FareTable::FindOperator(std::string_view id) const {
  for (const FareOperator& op : operators) {
    if (op.id == id) return &op;
  }
  return nullptr;
}

const FareOperator* FareTable::FindOperatorByName(std::string_view operator_name) const {
  for (const FareOperator& op : operators) {
    if (op.name == operator_name) return &op;
  }
  return nullptr;
}

const FareNetwork* FareTable::FindNetwork(std::string_view id) const {
  for (const FareNetwork& network : networks) {
    if (network.id == id) return &network;
  }
  return nullptr;
}

const PassProduct* FareTable::FindPass(std::string_view id) const {
  for (const PassProduct& pass : passes) {
    if (pass.id == id) return &pass;
  }
  return nullptr;
}

const DailyCap* FareTable::FindDailyCap(Profile profile, RideMode mode) const {
  for (const DailyCap& cap : daily_caps) {
    if (cap.profile == profile && Contains(cap.modes, mode)) return &cap;
  }
  return nullptr;
}

void SortFareNetwork(FareNetwork* network) {
  std::sort(network->stations.begin(), network->stations.end(),
            [](const FareStation& a, const FareStation& b) { return a.code < b.code; });
  for (StationPairFare& pair : network->pair_fares) {
    if (pair.from_code > pair.to_code) std::swap(pair.from_code, pair.to_code);
  }
  std::sort(network->pair_fares.begin(), network->pair_fares.end(),
            [](const StationPairFare& a, const StationPairFare& b) {
              return std::make_pair(a.from_code, a.to_code) < std::make_pair(b.from_code, b.to_code);
            });
}

int64_t PayPercent(int64_t fen, int64_t percent) { return (fen * percent + 50) / 100; }

int64_t ParkingFee(const RoutePricing& pricing, int64_t stay_seconds) {
  CITYCARD_ASSERT(stay_seconds >= 0 && stay_seconds <= kFareMinutesMax * 60);
  if (stay_seconds <= pricing.free_minutes * 60) return 0;
  int64_t whole_days = 0;
  int64_t rest_s = stay_seconds;
  if (pricing.day_max_fen) {
    whole_days = stay_seconds / kSecondsPerDay;
    rest_s = stay_seconds % kSecondsPerDay;
  }
  int64_t fee = 0;
  int64_t band_start_s = 0;
  for (const ParkingBand& band : pricing.bands) {
    const int64_t band_end_s = band.until_minutes ? *band.until_minutes * 60 : rest_s;
    const int64_t in_band_s = std::min(rest_s, band_end_s) - band_start_s;
    if (in_band_s <= 0) break;
    const int64_t unit_s = band.unit_minutes * 60;
    fee += (in_band_s + unit_s - 1) / unit_s * band.fen_per_unit;
    band_start_s = band_end_s;
  }
  if (pricing.day_max_fen) fee = std::min(fee, *pricing.day_max_fen) + whole_days * *pricing.day_max_fen;
  return fee;
}

FareQuote Price(const FareTable& table, const FareRequest& request) {
  FareQuote quote;
  quote.rule_version = table.version;
  auto refuse = [&quote](FareOutcome outcome) {
    quote.outcome = outcome;
    return quote;
  };
  const FareOperator* op = table.FindOperator(request.operator_id);
  if (op == nullptr) return refuse(FareOutcome::unknown_operator);
  if (op->mode != request.mode) return refuse(FareOutcome::mode_mismatch);
  const FareRoute* route = nullptr;
  for (const FareRoute& r : op->routes) {
    if (r.code == request.route_code) route = &r;
  }
  const RoutePricing* pricing = route != nullptr ? &route->pricing : op->pricing ? &*op->pricing : nullptr;
  if (pricing == nullptr) return refuse(FareOutcome::unknown_route);

  Base base = ComputeBase(table, *pricing, request);
  if (base.outcome != FareOutcome::priced) return refuse(base.outcome);
  quote.base_rule = base.rule;
  quote.full_fare_fen = base.full_fen;
  if (!base.carries_money) return quote;

  const bool known_entry = request.event == TapEvent::exit && request.entry_time_s;
  const int64_t ride_start_s = known_entry ? *request.entry_time_s : request.time_s;
  const RideContext& context = request.context;
  const int64_t ride_day = ClearingDay(request.time_s);
  const bool same_day = context.counters_day && *context.counters_day == ride_day;
  const bool same_month = context.counters_day && MonthOf(*context.counters_day) == MonthOf(ride_day);

  Concession concession = ApplyConcession(ConcessionsFor(table, *op, route), request, base.full_fen,
                                          ride_start_s,
                                          same_month ? context.free_rides_used_this_month : 0);
  quote.concession_fen = base.full_fen - concession.pay_fen;
  quote.concession_rule = concession.rule;
  quote.uses_free_ride = concession.uses_free_ride;
  int64_t pay_fen = concession.pay_fen;

  if (context.previous && request.event != TapEvent::abandoned_entry) {
    for (size_t i = 0; i < table.transfers.size(); ++i) {
      const TransferRule& rule = table.transfers[i];
      if (!TransferApplies(rule, request, ride_start_s)) continue;
      const int64_t discount_fen = rule.percent ? pay_fen - PayPercent(pay_fen, 100 - rule.percent_off)
                                                : std::min(rule.discount_fen, pay_fen);
      quote.transfer_discount_fen = discount_fen;
      quote.transfer_rule = fmt::format("transfers[{}]", i);
      pay_fen -= discount_fen;
      break;
    }
  }

  if (const DailyCap* cap = table.FindDailyCap(request.profile, request.mode)) {
    int64_t paid_fen = 0;
    if (same_day) {
      for (RideMode mode : cap->modes) {
        auto it = context.paid_today_fen.find(mode);
        if (it != context.paid_today_fen.end()) paid_fen += it->second;
      }
    }
    const int64_t room_fen = std::max<int64_t>(0, cap->cap_fen - paid_fen);
    quote.cap_discount_fen = std::max<int64_t>(0, pay_fen - room_fen);
    quote.cap_rule = fmt::format("daily_caps[{}]", cap - table.daily_caps.data());
    pay_fen -= quote.cap_discount_fen;
  }
  quote.amount_fen = pay_fen;
  CITYCARD_ASSERT(quote.amount_fen >= 0);
  CITYCARD_ASSERT(quote.full_fare_fen == quote.concession_fen + quote.transfer_discount_fen +
                                             quote.cap_discount_fen + quote.amount_fen);
  return quote;
}

RideContext NextContext(const FareRequest& request, const FareQuote& quote) {
  RideContext next = request.context;
  if (quote.outcome != FareOutcome::priced || request.event == TapEvent::entry) return next;
  const int64_t day = ClearingDay(request.time_s);
  if (!next.counters_day || *next.counters_day != day) {
    next.paid_today_fen.clear();
    if (!next.counters_day || MonthOf(*next.counters_day) != MonthOf(day)) {
      next.free_rides_used_this_month = 0;
    }
    next.counters_day = day;
  }
  next.paid_today_fen[request.mode] += quote.amount_fen;
  if (quote.uses_free_ride) ++next.free_rides_used_this_month;
  next.previous = PreviousRide{request.time_s, request.mode, request.operator_id, request.route_code};
  return next;
}

std::string FareQuote::Describe() const {
  return fmt::format(
      "v{} {} {} full={} concession={} transfer={} cap={} amount={} concession_rule={} "
      "transfer_rule={} cap_rule={}",
      rule_version, FareOutcomeName(outcome), base_rule.empty() ? "-" : base_rule, full_fare_fen,
      concession_fen, transfer_discount_fen, cap_discount_fen, amount_fen,
      concession_rule.empty() ? "-" : concession_rule, transfer_rule.empty() ? "-" : transfer_rule,
      cap_rule.empty() ? "-" : cap_rule);
}

PassEntryOutcome CheckPassEntry(const PassProduct& product, const PassHolding& holding,
                                std::string_view spot, int64_t time_s) {
  if (std::find(product.spots.begin(), product.spots.end(), spot) == product.spots.end()) {
    return PassEntryOutcome::not_valid_here;
  }
  const int64_t day = ClearingDay(time_s);
  if (day < holding.sold_day) return PassEntryOutcome::not_yet_valid;
  if (day >= holding.sold_day + product.validity_days) return PassEntryOutcome::expired;
  if (holding.visits_used >= product.visits) return PassEntryOutcome::no_visits_left;
  if (product.one_entry_per_spot_per_day) {
    auto it = holding.last_entry_day_by_spot.find(std::string(spot));
    if (it != holding.last_entry_day_by_spot.end() && it->second == day) {
      return PassEntryOutcome::already_entered_today;
    }
  }
  return PassEntryOutcome::admitted;
}

}  // namespace citycard
