// The fare office: loads fare-table versions into the FareStore, answers which one is current,
// sells pass products onto cards and decides gate entries with them. Pure logic over the
// stores (core/fare_store.h, core/registry.h), the ledger and the card office. Rules:
// docs/fares.md, "Loading and versions" and "Passes: sale and gate entry".
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/card_office.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/fare_store.h"
#include "core/fares.h"
#include "core/ledger.h"
#include "core/registry.h"
#include "core/status.h"
#include "core/tap_pricer.h"

namespace citycard {

struct FareLoadResult {
  StoredFareTable table;
  bool repeated = false;  // the same version with the same text was loaded before: no change
};

struct PassSale {
  StoredPass pass;
  int64_t balance_after_fen = 0;  // the purse after the sale
  bool repeated = false;          // the same sale on the same day was booked before
};

// A gate entry with a pass, as decided by FareOffice::EnterGate.
struct GateEntryDecision {
  PassEntryOutcome outcome = PassEntryOutcome::admitted;
  std::string pass_id;          // the pass used (admitted) or the last one tried
  int64_t visits_left = 0;      // after this entry
};

// The transfer id of a pass sale: DeriveTransferId(digester, "citycard.pass",
// "<card_no>/<pass_id>/<sold_day>"), so the same sale repeated on the same day moves no more
// money.
Id128 PassSaleTransferId(const Digester& digester, std::string_view card_no,
                         std::string_view pass_id, int64_t sold_day);

class FareOffice {
 public:
  // Everything passed must outlive the office. `store`, `registry` and `ledger` share one
  // connection (a pass sale joins the ledger to the store's transaction).
  FareOffice(FareStore& store, RegistryStore& registry, Ledger& ledger, CardOffice& cards,
             const Digester& digester, const Clock& clock);

  // Parses `json` (ParseFareTable) and stores it as a new version, with its text as given.
  // Success: the stored table; loading the same version with the same text again is
  // `repeated` and changes nothing. Failures: ParseFareTable's (Kind::bad_input
  // "invalid_fare_table"); Kind::refused "fare_version_exists" for a stored version with
  // another text; Kind::refused "fare_version_not_newer" for a version below the current one
  // (versions only grow, so a reader's version always names one table).
  Result<FareLoadResult> LoadTable(std::string_view json);

  // The current table (highest version) and its parse. Kind::not_found "no_fare_table" when
  // none is loaded.
  Result<StoredFareTable> CurrentTable();
  Result<FareTable> CurrentParsedTable();

  // Sells pass product `pass_id` of the current table onto card `card_no`, to the holder
  // whose national id is `holder_national_id`: the price moves purse -> the payable of the
  // product's first spot (its scenic operator) as one ledger transfer (TransferCode::pass_sale),
  // committed with the pass row. The pass is valid from today (local) for validity_days.
  // Failures, in the order checked: Kind::not_found "no_fare_table", "unknown_pass",
  // "card_not_found"; Kind::bad_input "invalid_national_id"; Kind::refused "not_card_holder"
  // (the id is not the card's holder's), the card's status ("card_blocked", "card_replaced",
  // "card_closed", "card_expired"), "pass_profile_not_allowed", "pass_already_held" (the card
  // holds an unexpired pass of that product with visits left), "insufficient_funds";
  // Kind::not_found "operator_not_found" (the spot's operator is not registered).
  Result<PassSale> SellPass(std::string_view card_no, std::string_view pass_id,
                            std::string_view holder_national_id);

  // The card's passes.
  Result<std::vector<StoredPass>> ListPasses(std::string_view card_no);

  // A gate tap of card `card_no` at scenic spot `spot` (an operator id) at time_s: among the
  // card's passes whose product (in the table the pass was sold under) lists the spot, the
  // first that admits (CheckPassEntry) is used and one visit is booked on it, in one storage
  // transaction (the visit and the spot's day of entry together: a failure books neither, so
  // a retried entry counts one visit). Success: the decision; a refusal is an outcome, not a
  // failure (the last refusal found; not_valid_here when the card holds no pass for the
  // spot). Failures: the store's.
  Result<GateEntryDecision> EnterGate(std::string_view card_no, std::string_view spot,
                                      int64_t time_s);
  // The same inside the caller's open storage transaction (the ingest's group, for
  // FareOfficePricer), which the caller commits or rolls back.
  Result<GateEntryDecision> EnterGateInTransaction(std::string_view card_no,
                                                   std::string_view spot, int64_t time_s);

 private:
  Status RunUnit(const std::function<Status()>& body);
  Result<FareTable> TableOfVersion(int64_t version);

  FareStore& store_;
  RegistryStore& registry_;
  Ledger& ledger_;
  CardOffice& cards_;
  const Digester& digester_;
  const Clock& clock_;
};

// The core's TapPricer (core/tap_pricer.h) as ingest uses it: taps are priced with `table`
// (FareTablePricer), and a gate entry that moved no money is a pass visit: it is booked on the
// card's pass (FareOffice::EnterGateInTransaction, writing through the FareStore inside the
// ingest's transaction, so a retried group books it once), and a visit the core refuses (the reader
// admitted a second entry the same day, an expired pass, …) is a dispute whose detail names
// the outcome ("pass_already_entered_today").
class FareOfficePricer final : public TapPricer {
 public:
  FareOfficePricer(FareOffice& office, FareTable table)
      : office_(office), pricer_(std::move(table)) {}
  Result<TapPricing> PriceTap(const TapRecord& record, const PreviousTaps& previous) override;

 private:
  FareOffice& office_;
  FareTablePricer pricer_;
};

}  // namespace citycard
