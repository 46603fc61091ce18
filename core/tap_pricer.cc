#include "core/tap_pricer.h"

#include <fmt/format.h>

#include <limits>

#include "core/time.h"

namespace citycard {

namespace {

// The same request with the month's free-ride quota used up: the counters are dated on the
// ride's own day, with more free rides used than any quota in a table can allow.
FareRequest QuotaUsedUp(FareRequest request) {
  request.context.counters_day = ClearingDay(request.time_s);
  request.context.free_rides_used_this_month = std::numeric_limits<int32_t>::max();
  return request;
}

// The pricing of the record's route, or nullptr when the table has none.
const RoutePricing* RoutePricingOf(const FareOperator& op, uint32_t route_code) {
  for (const FareRoute& route : op.routes) {
    if (route.code == route_code) return &route.pricing;
  }
  return op.pricing.has_value() ? &*op.pricing : nullptr;
}

// A gate entry that moved no money is a pass visit (FareOffice::EnterGate), not a ride;
// one that did is a ticket, priced as a single tap.
std::optional<TapEvent> EventOf(const TapRecord& record) {
  switch (record.type) {
    case TapType::purchase: return TapEvent::single;
    case TapType::metro_entry: return TapEvent::entry;
    case TapType::metro_exit: return TapEvent::exit;
    case TapType::gate_entry:
      if (record.amount_fen > 0) return TapEvent::single;
      return std::nullopt;
    case TapType::load: return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::optional<FareRequest> RequestForTap(const FareTable& table, const TapRecord& record,
                                         const PreviousTaps& previous) {
  std::optional<TapEvent> event = EventOf(record);
  if (!event.has_value()) return std::nullopt;
  const FareOperator* op = table.FindOperator(record.operator_id);
  if (op == nullptr) return std::nullopt;
  FareRequest request;
  request.operator_id = record.operator_id;
  request.route_code = record.route_code;
  request.mode = op->mode;
  request.profile = record.profile;
  request.event = *event;
  request.station_code = record.station_code;
  request.time_s = record.time_s;
  const RoutePricing* pricing = RoutePricingOf(*op, record.route_code);
  // A meter's amount and a car park's stay are only known to the reader: the core takes its
  // full fare and checks the discounts on it.
  if (pricing != nullptr &&
      (pricing->kind == PricingKind::metered || pricing->kind == PricingKind::parking)) {
    request.terminal_fare_fen = record.full_fare_fen;
  }
  const std::optional<TapRecord>* ride_before = &previous.last;
  if (record.type == TapType::metro_exit) {
    if (!previous.last.has_value()) {
      // The card's entry may simply not be uploaded yet: the core cannot tell an unmatched
      // exit from a late entry, so it checks the discounts on the reader's full fare.
      request.terminal_fare_fen = record.full_fare_fen;
    } else if (previous.last->type == TapType::metro_entry) {
      request.entry_station_code = previous.last->station_code;
      request.entry_time_s = previous.last->time_s;
      ride_before = &previous.second_last;
    }
  }
  if (!ride_before->has_value()) return request;
  const TapRecord& p = **ride_before;
  const bool was_ride = p.type == TapType::purchase || p.type == TapType::metro_exit ||
                        (p.type == TapType::gate_entry && p.amount_fen > 0);
  const FareOperator* previous_op = table.FindOperator(p.operator_id);
  if (was_ride && previous_op != nullptr) {
    request.context.previous = PreviousRide{p.time_s, previous_op->mode, p.operator_id,
                                            p.route_code};
  }
  return request;
}

TapPricing CompareWithRecord(const TapRecord& record, const FareQuote& quote) {
  TapPricing pricing;
  pricing.quote = quote;
  const std::string reader =
      fmt::format("reader v{} full={} concession={} transfer={} amount={}", record.fare_version,
                  record.full_fare_fen, record.concession_fen, record.transfer_discount_fen,
                  record.amount_fen);
  if (quote.outcome != FareOutcome::priced) {
    pricing.dispute = record.amount_fen != 0;
    pricing.detail = fmt::format("{}; core cannot price it: {}", reader,
                                 FareOutcomeName(quote.outcome));
    return pricing;
  }
  pricing.dispute = quote.amount_fen != record.amount_fen;
  pricing.detail = fmt::format("{}; core {}", reader, quote.Describe());
  return pricing;
}

Result<TapPricing> FareTablePricer::PriceTap(const TapRecord& record,
                                             const PreviousTaps& previous) {
  std::optional<FareRequest> request = RequestForTap(table_, record, previous);
  if (!request.has_value()) {
    TapPricing none;
    if (EventOf(record).has_value() && record.amount_fen != 0) {
      // A paid ride on an operator the table does not know.
      none.dispute = true;
      none.detail = fmt::format("reader v{} amount={}; core table v{} has no operator {}",
                                record.fare_version, record.amount_fen, table_.version,
                                record.operator_id);
    }
    return none;
  }
  TapPricing pricing = CompareWithRecord(record, Price(table_, *request));
  if (pricing.dispute && pricing.quote.has_value() && pricing.quote->uses_free_ride) {
    // The core does not know how many free rides the card used this month (the count lives on
    // the card and in the reader's context), so its first quote assumes none. A reader that
    // charged the fare the card pays once its quota is used up is not disputed.
    TapPricing exhausted = CompareWithRecord(record, Price(table_, QuotaUsedUp(*request)));
    if (!exhausted.dispute) return exhausted;
  }
  return pricing;
}

}  // namespace citycard
