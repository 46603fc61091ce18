// Re-pricing of booked taps: the core prices every tap again with the engine the reader used
// (core/fares.h), so that a reader that priced wrongly (an old table, a bug, a tampered
// reader) is seen. The tap is still booked at what the card paid — the card already paid it
// — and a difference raises a fare_dispute alert (core/alerts.h). Tap ingest (core/ingest.h)
// calls a TapPricer, when one is set, for every tap it books. Rules: docs/fares.md,
// "Re-pricing in the core".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/fares.h"
#include "core/status.h"
#include "core/tap_record.h"

namespace citycard {

// What the core found for one tap.
struct TapPricing {
  // The core's quote with its breakdown; nullopt when the core does not price this tap (a
  // load, a gate entry, no table loaded).
  std::optional<FareQuote> quote;
  // Whether the reader's price differs from the core's: a priced quote whose amount is not
  // the record's amount_fen, or a record the table cannot price (outcome other than priced)
  // that moved money.
  bool dispute = false;
  // For the alert: the record's and the core's breakdowns, or why the core could not price.
  std::string detail;
};

// The card's records just before the one priced, as far as the core has them: `last` has the
// card counter one less, `second_last` two less. A metro exit needs both: its entry, and the
// ride before the entry (for a transfer).
struct PreviousTaps {
  std::optional<TapRecord> last;
  std::optional<TapRecord> second_last;
};

class TapPricer {
 public:
  virtual ~TapPricer() = default;
  // Prices `record` (a booked tap) with the card's previous records (the previous ride for
  // transfers, the entry of a metro exit). Called by ingest inside its storage transaction:
  // whatever it writes through a store on that connection commits or rolls back with the
  // group (a retried group calls it again), and it must keep no state of its own across
  // calls. Failures (Kind::internal) fail the ingest group.
  virtual Result<TapPricing> PriceTap(const TapRecord& record, const PreviousTaps& previous) = 0;
};

// Builds the engine's request for a booked tap: the record's operator, route, station, time
// and profile; the mode of its operator in `table`; the event from its type (purchase:
// single, metro_entry: entry, metro_exit: exit, a gate_entry that moved money: single). The
// terminal's full fare is taken only for a metered or parking route, and for a metro exit
// whose last record the core does not have (its entry may not be uploaded yet); elsewhere the
// core finds the base fare itself. From `previous`: for a metro exit whose last record is a
// metro entry, that entry's station and time, and the ride before it (second_last) for
// transfers; for any other tap, the last record as the previous ride when it was a ride (a
// purchase, a metro exit, a paid gate entry). The day's counters (daily caps, free-ride
// quota) are not known from a few records: the context carries none, and caps are applied at
// settlement (core/capping.h).
// nullopt when the record's operator is not in the table or the record is not priced (a
// load; a gate entry that moved no money, which is a pass visit).
std::optional<FareRequest> RequestForTap(const FareTable& table, const TapRecord& record,
                                         const PreviousTaps& previous);

// Compares the core's quote with the record: dispute when the core priced it and the amounts
// differ, or the core could not price a tap that moved money.
TapPricing CompareWithRecord(const TapRecord& record, const FareQuote& quote);

// A TapPricer over one fare table (the current one; the caller swaps the pricer when a new
// version is loaded). A record priced by the reader with another table version is still
// priced with this table (the alert's detail names both versions).
class FareTablePricer final : public TapPricer {
 public:
  explicit FareTablePricer(FareTable table) : table_(std::move(table)) {}
  Result<TapPricing> PriceTap(const TapRecord& record, const PreviousTaps& previous) override;
  const FareTable& table() const { return table_; }

 private:
  FareTable table_;
};

}  // namespace citycard
