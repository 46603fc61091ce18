// Fare tables and the pricing engine: how a tap is priced, from a versioned table that a
// reader downloads and the core loads. Format: docs/fares.md. Example:
// docs/examples/shenzhen-fares.json.
//
// Everything here is pure: ParseFareTable reads text, Price computes a quote from a table and a
// request, and nothing opens a file, reads a clock or keeps state between calls. The same
// engine runs in a reader (offline, before the card pays) and in the core (when the tap is
// booked), so that both agree to the fen.
//
// Money is int64 fen. Every percentage is applied to the amount the card pays, which is
// rounded half up to the fen; the discount is the rest, so the parts of a quote always add up
// exactly: full_fare_fen = concession_fen + transfer_discount_fen + cap_discount_fen +
// amount_fen.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/profile.h"
#include "core/status.h"

namespace citycard {

// The format this parser reads ("format": "citycard-fares", "format_version": 1).
inline constexpr std::string_view kFareTableFormatName = "citycard-fares";
inline constexpr int64_t kFareTableFormatVersion = 1;

// Limits, each checked by ParseFareTable. They are far above any real city's tables and keep
// a malformed or hostile file from taking the memory or time of a reader.
inline constexpr size_t kFareTableBytesMax = 16u << 20;    // 16 MiB of JSON
inline constexpr size_t kFareOperatorsMax = 4096;
inline constexpr size_t kFareRoutesMax = 65536;            // per operator
inline constexpr size_t kFareStationsMax = 4096;           // per network
inline constexpr size_t kFareZonesMax = 256;               // per network
inline constexpr size_t kFarePairFaresMax = 1u << 20;      // per network
inline constexpr size_t kFareRulesMax = 64;                // per list of rules
inline constexpr size_t kFarePassesMax = 1024;
inline constexpr int64_t kFareFenMax = 1'000'000;          // ¥10,000: one ride, one unit, one cap
inline constexpr int64_t kFareMinutesMax = 366 * 24 * 60;  // a year, for every duration
inline constexpr int64_t kPassValidityDaysMax = 3660;      // ten years
inline constexpr int64_t kPassVisitsMax = 100'000;
inline constexpr int64_t kFreeRidesPerMonthMax = 10'000;
inline constexpr size_t kFareTextBytesMax = 256;           // ids and names

// How a ride is travelled. Carried in the table as these names: never rename.
enum class RideMode : uint8_t {
  bus = 1,
  metro = 2,
  taxi = 3,
  parking = 4,
  scenic = 5,
  ferry = 6,
};
// "bus", "metro", "taxi", "parking", "scenic", "ferry".
std::string_view RideModeName(RideMode mode);
std::optional<RideMode> ParseRideMode(std::string_view name);

// ---------------------------------------------------------------------------------------------
// The table.

// How a route's full fare is found.
enum class PricingKind : uint8_t {
  flat = 1,      // one fare per ride
  distance = 2,  // from the entry and exit stations, in a network's pair or zone table
  metered = 3,   // the terminal's amount (a taxi meter): FareRequest::terminal_fare_fen
  parking = 4,   // from the entry and exit times, by a rate table
};
std::string_view PricingKindName(PricingKind kind);

struct FareStation {
  uint32_t code = 0;  // as readers number it (TapRecord::station_code); unique in its network
  std::string name;
  int64_t zone = 1;   // 1..zone count; only used by a zone table
};

struct StationPairFare {
  uint32_t from_code = 0;
  uint32_t to_code = 0;
  int64_t fare_fen = 0;  // both directions
};

// A set of stations with one distance fare system, shared by the routes (lines) that name it,
// so a trip may enter on one line and leave on another.
struct FareNetwork {
  std::string id;
  std::vector<FareStation> stations;
  // zone_fares_fen[a - 1][b - 1]: the fare from zone a to zone b. Empty when the network is
  // priced by station pairs alone.
  std::vector<std::vector<int64_t>> zone_fares_fen;
  // Fares by station pair; a pair listed here wins over the zone table.
  std::vector<StationPairFare> pair_fares;
  // An exit with no entry (or an entry older than max_trip_minutes) is charged this.
  int64_t unmatched_exit_fare_fen = 0;
  // An entry with no exit by the end of max_trip_minutes is charged this.
  int64_t unmatched_entry_fare_fen = 0;
  int64_t max_trip_minutes = 240;
};

// One band of a parking rate table: from the end of the previous band (minute 0 for the
// first) until until_minutes, each started unit of unit_minutes costs fen_per_unit.
struct ParkingBand {
  std::optional<int64_t> until_minutes;  // nullopt: no end (only the last band)
  int64_t unit_minutes = 60;
  int64_t fen_per_unit = 0;
};

struct RoutePricing {
  PricingKind kind = PricingKind::flat;
  int64_t fare_fen = 0;         // flat
  std::string network_id;       // distance
  // parking: a stay of at most free_minutes costs nothing; a longer one is charged from
  // minute 0. Each whole 24 hours cost day_max_fen (when set), and the rest is charged by the
  // bands but never more than day_max_fen.
  int64_t free_minutes = 0;
  std::vector<ParkingBand> bands;
  std::optional<int64_t> day_max_fen;
  int64_t lost_ticket_fare_fen = 0;  // parking: an exit with no entry, or an entry never closed
};

// What a card of some profile pays.
enum class ConcessionKind : uint8_t {
  percent = 1,     // pays pay_percent of the full fare
  free = 2,        // pays nothing
  bands = 3,       // progressive: each band of the full fare at its own pay_percent
  free_quota = 4,  // free while the card has used fewer than rides_per_month free rides this
                   // month; otherwise the next rule in the list is tried
};
std::string_view ConcessionKindName(ConcessionKind kind);

// Minutes of the local (Asia/Shanghai) day, [start, end). start > end wraps past midnight:
// {22:00, 06:00} covers 22:00:00 ..23:59:59 and 00:00:00 .. 05:59:59.
struct HourRange {
  int64_t start_minute = 0;
  int64_t end_minute = 0;
};

struct PayBand {
  std::optional<int64_t> up_to_fen;  // the band covers the full fare up to here; nullopt: the rest
  int64_t pay_percent = 100;
};

struct ConcessionRule {
  ConcessionKind kind = ConcessionKind::percent;
  std::vector<RideMode> modes;   // empty: every mode
  std::vector<HourRange> hours;  // empty: all day; else the ride's start must fall in one
  int64_t pay_percent = 100;     // percent
  std::vector<PayBand> bands;    // bands
  int64_t rides_per_month = 0;   // free_quota
};

// Per profile, the rules tried in order; the first that matches the ride decides. A profile
// with no entry (or no matching rule) pays the full fare.
using ConcessionMap = std::map<Profile, std::vector<ConcessionRule>>;

struct FareRoute {
  uint32_t code = 0;  // TapRecord::route_code
  std::string name;
  RoutePricing pricing;
  std::optional<ConcessionMap> concessions;  // replaces the operator's or table's when set
};

struct FareOperator {
  std::string id;  // TapRecord::operator_id
  std::string name;
  RideMode mode = RideMode::bus;
  std::vector<FareRoute> routes;
  // Prices any route not listed in routes; nullopt: such a route is unknown.
  std::optional<RoutePricing> pricing;
  std::optional<ConcessionMap> concessions;  // replaces the table's when set
};

// A discount on a ride that starts within window_seconds after the previous ride ended
// (the last second included), when the previous ride's mode is in from_modes and this one's
// in to_modes. Exactly one of discount_fen and percent_off is used (kind).
struct TransferRule {
  std::vector<RideMode> from_modes;
  std::vector<RideMode> to_modes;
  int64_t window_seconds = 0;
  bool percent = false;
  int64_t discount_fen = 0;   // fixed: at most what is left after the concession
  int64_t percent_off = 0;    // percent of what is left after the concession
  bool different_route = false;  // the previous ride must be on another operator or route
};

// At most cap_fen paid per local day by a card of this profile on these modes together.
struct DailyCap {
  Profile profile = Profile::adult;
  std::vector<RideMode> modes;
  int64_t cap_fen = 0;
};

// A product sold onto a card: visits at the listed spots instead of money.
struct PassProduct {
  std::string id;
  std::string name;
  int64_t price_fen = 0;
  int64_t validity_days = 0;  // valid from the day of sale for this many days
  int64_t visits = 0;
  std::vector<std::string> spots;  // operator ids of the scenic spots it opens
  bool one_entry_per_spot_per_day = true;
  std::vector<Profile> profiles;   // empty: any profile may buy it
};

struct FareTable {
  int64_t version = 0;  // the rule version; TapRecord::fare_version (1 .. 2^32 - 1)
  std::string name;
  std::vector<FareNetwork> networks;
  std::vector<FareOperator> operators;
  ConcessionMap concessions;
  std::vector<TransferRule> transfers;
  std::vector<DailyCap> daily_caps;
  std::vector<PassProduct> passes;

  const FareOperator* FindOperator(std::string_view id) const;
  const FareOperator* FindOperatorByName(std::string_view name) const;
  const FareNetwork* FindNetwork(std::string_view id) const;
  const PassProduct* FindPass(std::string_view id) const;
  // The cap for this profile and mode; the parser ensures there is at most one.
  const DailyCap* FindDailyCap(Profile profile, RideMode mode) const;
};

// Sorts a network's stations by code and its pair fares by (smaller code, larger code), as
// Price needs them for its binary searches. ParseFareTable does it; a table built by hand must
// call this for each network before pricing with it.
void SortFareNetwork(FareNetwork* network);

// Parses and validates a fare table (docs/fares.md). On success every reference resolves
// (networks, stations, zones), every amount is within 0..kFareFenMax, every list within its
// limit, and no (profile, mode) has two daily caps.
// Failure: Kind::bad_input, code "invalid_fare_table", message "line L: PATH: why" where PATH
// names the field (operators[2].routes[0].pricing.fare_fen) and L is the line of its key in
// the text (for a syntax error, "line L, column C: why"; a missing field is reported at the
// line of the object that lacks it). A duplicate key inside one object is not detected: the
// last one wins.
Result<FareTable> ParseFareTable(std::string_view json);

// ---------------------------------------------------------------------------------------------
// Pricing.

// What the tap being priced is.
enum class TapEvent : uint8_t {
  single = 1,           // a one-tap ride: flat, metered (and any route with a terminal fare)
  entry = 2,            // opens a distance trip or a parking stay; carries no money
  exit = 3,             // closes it; entry_station_code / entry_time_s when the entry is known
  abandoned_entry = 4,  // an entry never closed by the end of the network's trip window
};

// The previous ride of the card, for transfers.
struct PreviousRide {
  int64_t end_time_s = 0;  // its last tap (a bus tap, a metro exit)
  RideMode mode = RideMode::bus;
  std::string operator_id;
  uint32_t route_code = 0;
};

// What the card (or the core's shadow of it) knows of its recent riding.
struct RideContext {
  std::optional<PreviousRide> previous;
  // The civil day (core/time.h, local midnight) the two counters below were last updated on.
  // Counters of another day count as 0 paid today; of another month as 0 free rides used.
  std::optional<int64_t> counters_day;
  int64_t free_rides_used_this_month = 0;
  std::map<RideMode, int64_t> paid_today_fen;  // what the card paid that day, per mode
};

struct FareRequest {
  std::string operator_id;
  uint32_t route_code = 0;
  RideMode mode = RideMode::bus;  // must be the operator's mode
  Profile profile = Profile::adult;
  TapEvent event = TapEvent::single;
  uint32_t station_code = 0;  // the tap's station (the exit station of an exit)
  int64_t time_s = 0;         // the tap's time, Unix seconds
  std::optional<uint32_t> entry_station_code;  // exit: the entry's station, when known
  std::optional<int64_t> entry_time_s;         // exit: the entry's time, when known
  // The full fare the terminal states: required for a metered route; for any other route it
  // replaces the table's base fare ("full fare known", as in a replay of recorded taps).
  std::optional<int64_t> terminal_fare_fen;
  RideContext context;
};

// Why a request was or was not priced. Each value is produced by a test.
enum class FareOutcome : uint8_t {
  priced = 0,
  unknown_operator = 1,
  unknown_route = 2,
  mode_mismatch = 3,         // the request's mode is not the operator's
  unknown_station = 4,       // a station the route's network does not list
  no_fare_for_pair = 5,      // a pair neither the pair table nor the zone table prices
  event_not_priced = 6,      // e.g. an exit on a flat route, a single tap on a distance route
  missing_terminal_fare = 7, // a metered route without terminal_fare_fen
  invalid_request = 8,       // a negative or too large terminal fare, an exit before its entry
};
std::string_view FareOutcomeName(FareOutcome outcome);

struct FareQuote {
  FareOutcome outcome = FareOutcome::priced;
  int64_t rule_version = 0;  // the table's version
  int64_t full_fare_fen = 0;
  int64_t concession_fen = 0;
  int64_t transfer_discount_fen = 0;
  int64_t cap_discount_fen = 0;
  int64_t amount_fen = 0;  // what the card pays
  // Which rule applied, as stable short texts (docs/fares.md, "Quotes"):
  std::string base_rule;        // "flat", "distance:pair", "distance:zone",
                                // "distance:unmatched_exit", "distance:unmatched_entry",
                                // "entry", "metered", "parking", "parking:lost_ticket",
                                // "terminal_fare"
  std::string concession_rule;  // "" or "student[0]:percent" (profile, index, kind)
  std::string transfer_rule;    // "" or "transfers[1]"
  std::string cap_rule;         // "" or "daily_caps[0]"
  bool uses_free_ride = false;  // a free_quota rule applied: count it in the month's quota

  // "v20180831 flat full=200 concession=40 transfer=0 cap=0 amount=160 ..." for logs.
  std::string Describe() const;
};

// Prices one tap. Never fails: a request the table cannot price gets an outcome other than
// priced and all amounts 0. Steps (docs/fares.md, "Pricing"): the base (full) fare; the
// concession of the card's profile; the transfer discount; the daily cap. Concession hours
// and the transfer window use the ride's start (entry_time_s when known, else time_s); the
// cap day and the free-ride month use time_s.
FareQuote Price(const FareTable& table, const FareRequest& request);

// The card's context after a priced ride: the ride becomes the previous ride, what it paid
// is added to paid_today_fen, a free ride is counted; counters of an older day or month are
// reset first. An entry changes nothing (the ride has not ended).
RideContext NextContext(const FareRequest& request, const FareQuote& quote);

// The parking fee for a stay, by the route's rate table (before any concession). The stay
// must be 0 .. kFareMinutesMax * 60 seconds (asserted; Price refuses longer stays as
// invalid_request before calling this).
int64_t ParkingFee(const RoutePricing& pricing, int64_t stay_seconds);

// The amount a card pays of `fen` at `percent`, rounded half up to the fen.
int64_t PayPercent(int64_t fen, int64_t percent);

// ---------------------------------------------------------------------------------------------
// Passes.

// Why a pass did or did not open a gate. Each value is produced by a test.
enum class PassEntryOutcome : uint8_t {
  admitted = 0,
  not_valid_here = 1,          // the spot is not one of the product's
  not_yet_valid = 2,           // before the day of sale
  expired = 3,                 // validity_days after the day of sale
  no_visits_left = 4,
  already_entered_today = 5,   // one entry per spot per day
};
std::string_view PassEntryOutcomeName(PassEntryOutcome outcome);

// What a card holds of one pass.
struct PassHolding {
  int64_t sold_day = 0;  // civil day of sale
  int64_t visits_used = 0;
  std::map<std::string, int64_t> last_entry_day_by_spot;
};

// Decides a gate tap at `spot` at time_s with this pass. On admitted the caller books one
// visit (visits_used + 1, last_entry_day_by_spot[spot] = that day).
PassEntryOutcome CheckPassEntry(const PassProduct& product, const PassHolding& holding,
                                std::string_view spot, int64_t time_s);

}  // namespace citycard
