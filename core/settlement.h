// Clearing and settlement: what each operator is owed for a clearing day, the transfers that
// pay it, and the proof that the figures agree with the ledger. The report, the fee rounding,
// the reconciliation, the transfer ids and the accounting of capping rebates are described in
// docs/settlement.md; this header is the contract.
//
// The pure part (BuildSettlementReport, PlanRebateTransfers and PlanOperatorTransfers,
// Reconcile, the JSON form) computes from values alone. Settler drives it over storage
// interfaces: the taps of the day (SettlementTapSource, implemented over the ingest's tap
// store), the registry, the ledger and SettlementStore (db/sqlite_settlement_store.h), where
// finished runs are kept.
//
// Money flows of one operator for one clearing day, all in the ledger:
//   taps (booked by ingest):  card purse        -> operator payable   paid_fen
//   capping rebates:          operator payable  -> card purse         capping_rebate_fen
//   fee:                      operator payable  -> fee income         fee_fen
//   payout:                   operator payable  -> settlement         net_fen
//   bills, passes, medical:   ...               -> operator payable   (their amounts)
// so that what the day credited = capping_rebate_fen + fee_fen + net_fen: the day leaves
// nothing on the payable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/capping.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/fares.h"
#include "core/ledger.h"
#include "core/ledger_store.h"
#include "core/profile.h"
#include "core/registry.h"
#include "core/settlement_reads.h"
#include "core/status.h"
#include "core/time.h"

namespace citycard {

// Transfer codes booked by settlement (Transfer::code). Stable numbers, in a range of their
// own (96..) so that they cannot meet the codes other components use (TransferCode in
// core/account_plan.h, the medical codes 64..75 of core/health.h).
inline constexpr uint16_t kTransferCodeCappingRebate = 96;  // operator payable -> card purse
inline constexpr uint16_t kTransferCodeSettlementFee = 97;  // operator payable -> fee income
// operator payable -> settlement; settlement -> operator payable when the day's net is negative
// (a medical reversal larger than the day's takings: the operator owes it back).
inline constexpr uint16_t kTransferCodeSettlementPayout = 98;

// Domains of the derived transfer ids (DeriveTransferId): the payout and the fee of (day,
// operator), the rebate of (day, operator, card).
inline constexpr std::string_view kPayoutIdDomain = "citycard.settlement.payout";
inline constexpr std::string_view kFeeIdDomain = "citycard.settlement.fee";
inline constexpr std::string_view kRebateIdDomain = "citycard.settlement.rebate";

// Limits. A clearing cut-off is a time of day; a day with more operators than this is not a
// city's.
inline constexpr int64_t kClearingCutoffSecondsMax = kSecondsPerDay - 1;
inline constexpr size_t kSettlementOperatorsMax = 65'536;
// The most fen one report row may hold in any column (¥1,000,000,000,000): far above a city's
// day, and small enough that multiplying by kFeeBasisPointsMax cannot overflow.
inline constexpr int64_t kSettlementFenMax = 100'000'000'000'000;
static_assert(kSettlementFenMax <= (INT64_MAX - kFeeBasisPointsMax) / kFeeBasisPointsMax);
// How many rebates the planning thread resolves and plans at a time (SettlerConfig::plan_reads):
// a ledger batch's worth, so that the booking waits only for the first stretch, while one
// bulk card read per stretch stays large.
inline constexpr size_t kSettlementPlanStretch = kTransferBatchMax;
// How many times Settle plans and books a day whose rebated cards changed while it planned
// (RegistryStore::CardChanges) before it gives up with "settlement_cards_changed": a card
// office changes a card in milliseconds, so a third plan in a row meeting a change means
// cards are being changed all the time (an import), and settling later is the answer.
inline constexpr int kSettlementCardChangeTriesMax = 3;

// ---- Inputs ----------------------------------------------------------------------------

// The taps of one operator cleared on one day (received on it), as the tap store aggregates
// them. A late tap (made before the day it was received on) is counted on the day it arrived.
struct OperatorTapTotals {
  std::string operator_id;
  int64_t taps = 0;                   // every accepted record, zero-amount ones included
  int64_t paid_taps = 0;              // those that moved money (amount > 0): one ledger transfer each
  int64_t gross_fen = 0;              // full fare
  int64_t concession_fen = 0;
  int64_t transfer_discount_fen = 0;
  int64_t paid_fen = 0;               // what the cards paid, booked purse -> payable
  int64_t late_taps = 0;
  int64_t late_paid_fen = 0;
};

// The operators that are not transport: what a counter or kiosk collected in top-ups, what a
// hospital settled (the fund's share and the holders' share), what a utility was paid in bills.
// Utility bills, scenic passes and medical settlements are booked into the operator's payable
// (core/bills.h, core/fare_office.h, core/health.h), so they are paid out with the day like
// taps: they enter the fee base and the net. Top-ups are reported only (docs/settlement.md
// "Other services").
struct OperatorServiceTotals {
  std::string operator_id;
  int64_t topups = 0;
  int64_t topup_fen = 0;
  int64_t medical_bills = 0;       // medical bills settled (the health store's count)
  int64_t medical_fund_fen = 0;    // fund and assistance fund shares, less reversals (may be < 0)
  int64_t medical_holder_fen = 0;  // medical account and purse shares, less reversals (may be < 0)
  int64_t bills = 0;
  int64_t bills_amount_fen = 0;
  int64_t passes = 0;              // scenic passes sold (TransferCode::pass_sale)
  int64_t passes_amount_fen = 0;
};

// A capping rebate to book: what `card_no` gets back from `operator_id` for the day.
struct CardRebate {
  std::string card_no;
  std::string operator_id;
  int64_t rebate_fen = 0;  // > 0
};

// ---- The report ------------------------------------------------------------------------

// One operator's (or the totals') line of a clearing day. JSON keys are the member names.
struct OperatorSettlement {
  std::string operator_id;  // "" in the totals
  std::string name;
  std::string kind;         // OperatorKindName; "" in the totals
  int64_t fee_bp = 0;       // 0 in the totals
  int64_t taps = 0;
  int64_t paid_taps = 0;
  int64_t late_taps = 0;
  int64_t gross_fen = 0;
  int64_t concession_fen = 0;
  int64_t transfer_discount_fen = 0;
  int64_t other_discount_fen = 0;  // gross - concession - transfer discount - paid (a reader's cap)
  int64_t paid_fen = 0;
  int64_t late_paid_fen = 0;
  int64_t capping_rebate_fen = 0;
  int64_t capped_cards = 0;
  int64_t topups = 0;
  int64_t topup_fen = 0;
  int64_t medical_bills = 0;
  int64_t medical_fund_fen = 0;
  int64_t medical_holder_fen = 0;
  int64_t bills = 0;
  int64_t bills_amount_fen = 0;
  int64_t passes = 0;
  int64_t passes_amount_fen = 0;
  // paid - capping rebate + bills + passes + medical shares: what the day left on the payable
  int64_t fee_base_fen = 0;
  int64_t fee_fen = 0;       // on a positive fee base only
  int64_t net_fen = 0;       // fee base - fee: the payout (negative: the operator owes it)

  friend bool operator==(const OperatorSettlement&, const OperatorSettlement&) = default;
};

struct SettlementReport {
  int64_t day = 0;        // civil day number (core/time.h)
  int64_t cutoff_s = 0;   // the clearing day starts this long after local midnight
  std::vector<OperatorSettlement> operators;  // ascending operator_id; only those with activity
  OperatorSettlement totals;

  friend bool operator==(const SettlementReport&, const SettlementReport&) = default;
};

// The fee of an operator for a day: fee_bp basis points of fee_base_fen, rounded half up to
// the fen (half a fen goes to the card office). fee_base_fen in 0..kSettlementFenMax, fee_bp
// in 0..kFeeBasisPointsMax (programmer errors otherwise). Never more than the base.
int64_t SettlementFeeFen(int64_t fee_base_fen, int64_t fee_bp);

// Builds the report of `day` from the day's per-operator totals. `operators` is the registry
// (any order); every operator named by `taps`, `services` or `rebates` must be in it. An
// operator appears when it had taps, services or rebates; several entries of one operator in a
// list are added up.
// Failures: Kind::internal "unknown_operator" (an operator not in the registry),
// "invalid_settlement_input" (a negative figure, a figure above kSettlementFenMax, paid above
// gross, a rebate above what the operator was paid, more than kSettlementOperatorsMax
// operators).
Result<SettlementReport> BuildSettlementReport(int64_t day, int64_t cutoff_s,
                                               const std::vector<Operator>& operators,
                                               const std::vector<OperatorTapTotals>& taps,
                                               const std::vector<OperatorServiceTotals>& services,
                                               const std::vector<CardRebate>& rebates);

// ---- Transfers -------------------------------------------------------------------------

// The id of the payout, fee or rebate of `operator_id` on `day` (and `card_no` for a rebate):
// DeriveTransferId(domain, "YYYY-MM-DD/OPERATOR") for the payout and the fee; for a rebate, the
// upper 64 bits of DeriveTransferId(rebate domain, "YYYY-MM-DD/OPERATOR") and the card number
// (a valid 16-digit one) as the lower 64, so that one settlement's rebates sort together, by
// card, in the ledger's index of ids. Settling a day again gives the same ids, so the ledger
// books nothing twice.
Id128 SettlementPayoutId(const Digester& digester, int64_t day, std::string_view operator_id);
Id128 SettlementFeeId(const Digester& digester, int64_t day, std::string_view operator_id);
Id128 SettlementRebateId(const Digester& digester, int64_t day, std::string_view operator_id,
                         std::string_view card_no);

// Where a rebate is credited: the card's purse account id as resolved by the caller (the purse
// of the card, or of the card that replaced it; the refunds account for a closed card).
using RebateAccountResolver = std::function<Result<uint64_t>(std::string_view card_no)>;

// The transfers that settle a report are planned in two parts, so that the rebates can be
// planned a stretch at a time while the stretches before are booked (Settler,
// SettlerConfig::plan_reads): every rebate, in the card-days' order (by card, then as the
// capping engine gives a card's operators), then per operator (ascending) the fee and the
// payout. A zero amount books no transfer. `operators` is the registry (for the payable
// account ids). Every transfer has user_data_64 = the day, and user_data_32 = the operator's
// registry number.
// RebatesInOrder: the rebates by (operator, card), by address into `rebates`, which must
// outlive the result (the report sums them in that order).
std::vector<const CardRebate*> RebatesInOrder(const std::vector<CardRebate>& rebates);
// Appends to *out the rebate transfers of `rebates`, in the order given.
// Failures: those of `resolve`; Kind::internal "unknown_operator". *out may then hold some of
// the rebates' transfers.
Status PlanRebateTransfers(int64_t day, const std::vector<Operator>& operators,
                           std::span<const CardRebate* const> rebates, const Digester& digester,
                           const RebateAccountResolver& resolve, std::vector<Transfer>* out);
// Appends to *out the fees and payouts of `report`, per operator (ascending).
// Failures: Kind::internal "unknown_operator".
Status PlanOperatorTransfers(const SettlementReport& report, const std::vector<Operator>& operators,
                             const Digester& digester, std::vector<Transfer>* out);

// ---- Reconciliation --------------------------------------------------------------------

// What the ledger moved through one account under one transfer code in a window.
struct AccountCodeMovement {
  int64_t transfers = 0;
  int64_t credits_fen = 0;
  int64_t debits_fen = 0;
};
// Keyed by (account id, transfer code). Only posted movements (not pending ones, nor voids).
using LedgerMovements = std::map<std::pair<uint64_t, uint16_t>, AccountCodeMovement>;

// Adds up the ledger's posted transfers whose timestamp is in [from_ms, to_ms), reading
// `store` directly: the ledger's timestamps never go back, so the window's first and last
// transfer are found by binary search on the transfer sequence, and the transfers between
// them are summed (core/settlement_reads.h SumPostedMovements). Failures: the store's.
// `reads`, when given, sums instead of `store` (db/sqlite_settlement_reads.h sums in SQL); it
// must read the same ledger. With `only_kind`, only the movements of accounts of that kind
// (the Settler asks for operator payables: Reconcile and ServiceTotalsFromLedger look at
// nothing else).
Result<LedgerMovements> CollectLedgerMovements(LedgerStore& store, int64_t from_ms, int64_t to_ms,
                                               SettlementReads* reads = nullptr,
                                               std::optional<AccountKind> only_kind = std::nullopt);

// The transfer codes that move money into or out of operator payables, as the components book
// them (core/account_plan.h TransferCode, core/health.h).
struct PayableCodes {
  uint16_t tap = 16;            // TransferCode::tap
  uint16_t bill_payment = 32;   // TransferCode::bill_payment
  uint16_t pass_sale = 48;      // TransferCode::pass_sale
  uint16_t medical_first = 64;  // kTransferCodeMedicalFund .. kTransferCodeMedicalPurse
  uint16_t medical_reversal_offset = 8;  // kTransferCodeMedicalReversalOffset
};

// Checks the report against the ledger's movements of its clearing day, to the fen: for every
// operator payable, the tap transfers credited (count and amount) are the report's paid taps
// and paid amount, and none was debited back; every other movement of a payable in the window
// is a bill, a pass sale, a medical share or reversal, or a settlement transfer (of another
// day); no payable outside the report moved; the totals are the sums of the lines, and each
// line's parts add up (gross = concession + transfer discount + other discount + paid;
// fee base = paid - capping rebate + bills + passes + medical shares = fee + net).
// Failure: Kind::internal "reconciliation_failed", the message naming the first difference
// ("operator bus-1: the ledger booked 1234 fen in 5 tap transfers ...").
Status Reconcile(const SettlementReport& report, const std::vector<Operator>& operators,
                 const LedgerMovements& movements, const PayableCodes& codes);

// What the other services booked into operator payables in `movements`, per operator: bills,
// pass sales and medical shares (net of reversals). Kind::internal "unknown_operator" for a
// payable no operator of `operators` owns.
Result<std::vector<OperatorServiceTotals>> ServiceTotalsFromLedger(
    const std::vector<Operator>& operators, const LedgerMovements& movements,
    const PayableCodes& codes);

// ---- JSON ------------------------------------------------------------------------------

// The report as CLI.md's `settle` shape: {"day", "cutoff", "operators": [{"operator", "name",
// "kind", "fee_bp", "taps", ..., "net_fen", "net": "12.50", ...}], "totals": {...}}. Every
// *_fen key is also given in yuan under its name without "_fen".
nlohmann::json SettlementReportToJson(const SettlementReport& report);
// The inverse (used to keep finished runs). Kind::internal "invalid_settlement_record" when a
// key is missing or of the wrong type.
Result<SettlementReport> SettlementReportFromJson(const nlohmann::json& json);

// ---- Storage and the run ---------------------------------------------------------------

// A finished settlement of a day, as kept.
struct SettlementRecord {
  SettlementReport report;
  int64_t settled_ms = 0;      // when it was booked, by the clock
  int64_t transfers = 0;       // how many transfers it booked
};

class SettlementStore {
 public:
  virtual ~SettlementStore() = default;
  // The finished run of `day`, or nullopt.
  virtual Result<std::optional<SettlementRecord>> FindRun(int64_t day) = 0;
  // Keeps a finished run. Kind::refused "settlement_exists" when `day` has one. Called inside
  // the unit of work that books the run's transfers (same connection), so both commit together.
  virtual Status SaveRun(const SettlementRecord& record) = 0;
  // The clearing cut-off in seconds after local midnight (0 when never set).
  virtual Result<int64_t> ClearingCutoff() = 0;
  // Sets it: Kind::bad_input "invalid_cutoff" outside 0..kClearingCutoffSecondsMax.
  virtual Status SetClearingCutoff(int64_t cutoff_s) = 0;
};

// What settlement reads about the taps of a clearing day: implemented over the ingest's tap
// store (tools/cli adapts it), faked in tests.
struct CardDayTaps {
  std::string card_no;
  Profile profile = Profile::adult;
  std::vector<PaidTap> taps;  // the card's taps cleared on the day that paid money and are not late
};
class SettlementTapSource {
 public:
  virtual ~SettlementTapSource() = default;
  // The per-operator totals of the taps cleared on `day`.
  virtual Result<std::vector<OperatorTapTotals>> OperatorTotals(int64_t day) = 0;
  // Calls `visit` once per card that paid on `day` with its paid taps that are not late; stops
  // at and returns the first failing visit.
  virtual Status ForEachCardDay(int64_t day,
                                const std::function<Status(const CardDayTaps&)>& visit) = 0;
  // Into how many parts ForEachCardDayPart can split the card-days (1: not at all). Default 1.
  virtual size_t CardDayPartsMax() const { return 1; }
  // ForEachCardDay for the `part`-th (0-based) of `parts` stretches of the day's card-days
  // (1 <= parts <= CardDayPartsMax()): the stretches run in card order, no card is cut, and
  // together they are every card-day once, so that the caps of two stretches can be computed
  // on two threads. Calls for different parts may run at the same time, but only after another
  // question of the same day has been answered (the Settler asks OperatorTotals first), and on
  // a thread other than the one that asked it (the Settler's planning thread, with
  // SettlerConfig::plan_reads), never at the same time as another kind of question.
  // Default: parts must be 1 (assert), and it is ForEachCardDay.
  virtual Status ForEachCardDayPart(int64_t day, size_t part, size_t parts,
                                    const std::function<Status(const CardDayTaps&)>& visit) {
    CITYCARD_ASSERT(part == 0 && parts == 1);
    return ForEachCardDay(day, visit);
  }
  // Reads what the questions about `day` need ahead of them, so that they then answer from
  // memory. The Settler calls it on a second thread when SettlerConfig::tap_source_apart says
  // the source uses a connection of its own; never at the same time as another call of the
  // source. Failures: those the questions would give. Default: reads nothing ahead.
  virtual Status ReadDay(int64_t day) {
    (void)day;
    return Status::Ok();
  }
  // Other services of the day (top-ups, medical, bills); empty until those modules feed it.
  virtual Result<std::vector<OperatorServiceTotals>> ServiceTotals(int64_t day) {
    (void)day;
    return std::vector<OperatorServiceTotals>{};
  }
};

struct SettlerConfig {
  PayableCodes codes;
  std::vector<DailyCap> daily_caps;  // from the loaded fare table; empty: no capping
  // Where the day's ledger movements are summed (over the ledger store's connection, e.g.
  // db::SqliteSettlementReads); nullptr: from the ledger store's general scan. Must outlive
  // the Settler.
  SettlementReads* reads = nullptr;
  // The tap source's ReadDay uses no store (no connection) that the Settler's other inputs use
  // (tools/cli opens a second connection for it): Settle then reads the day's taps on a second
  // thread while it sums the ledger's day on its own (docs/settlement.md "Reading the day").
  // false: one after the other, on the calling thread.
  bool tap_source_apart = false;
  // Reads over a connection that nothing else of the Settler uses while it books (tools/cli
  // gives the tap source's, idle once the day is read). When set, the caps are computed, the
  // rebated cards' accounts resolved and the transfers planned on a second thread, a stretch
  // of kSettlementPlanStretch rebates at a time, while the booking writes the stretches
  // planned before, and the report is built and reconciled there once every card is capped;
  // the batches booked, and so the ledger, are the same as when everything is planned first
  // (docs/settlement.md "Booking"). nullptr: all of it on the calling thread first.
  // Must outlive the Settler.
  SettlementReads* plan_reads = nullptr;
  // How many rebates the planning thread plans at a time, and how many transfers the booking
  // writes per ledger batch (1..kTransferBatchMax). Tests make them small to meet the stretches
  // and batches of a large day on a few cards.
  size_t plan_stretch = kSettlementPlanStretch;
  size_t book_batch = kTransferBatchMax;
  // Called as each step of a settlement ends, with the step's name ("read_day", "totals",
  // "rebates", "report", "accounts", "plan", "book"; with plan_reads the last five are one,
  // "book"), so that a benchmark can time the steps
  // (docs/benchmarks.md); empty: not called. It must not throw.
  std::function<void(std::string_view step)> on_step;
};

struct SettlementOutcome {
  SettlementRecord record;
  bool repeated = false;  // the day was settled before: nothing was booked now
};

// Which ride mode an operator's taps count under for a daily cap; nullopt for operators whose
// taps no cap covers (utilities, hospitals, counters).
std::optional<RideMode> CapModeForOperator(OperatorKind kind);

class Settler {
 public:
  // Everything passed must outlive the Settler. `registry`, `ledger` and `settlement_store`
  // share one storage transaction (RegistryStore::Begin); `ledger_store` is the ledger's.
  Settler(RegistryStore& registry, Ledger& ledger, LedgerStore& ledger_store,
          SettlementStore& settlement_store, SettlementTapSource& taps, const Digester& digester,
          const Clock& clock, SettlerConfig config);

  // Settles clearing day `day`: builds the report, reconciles it with the ledger, books the
  // rebates, fees and payouts and keeps the run, all in one transaction. A day settled before
  // is reconciled again and its kept report returned (repeated; nothing booked).
  // Failures: Kind::refused "day_not_over" (the clock has not passed the day's end yet: taps
  // may still arrive); Kind::internal "reconciliation_failed" (nothing booked),
  // "settlement_transfer_failed" (the ledger declined a transfer: a different settlement of the
  // day was booked before; nothing booked), "unknown_operator", "invalid_settlement_input";
  // Kind::refused "settlement_cards_changed" (a rebated card's registry row may have changed
  // between the plan's read of it and the booking's transaction, kSettlementCardChangeTriesMax
  // times in a row; nothing booked); the capping engine's and the stores' failures.
  Result<SettlementOutcome> Settle(int64_t day);

 private:
  Result<std::vector<CardRebate>> ComputeRebates(int64_t day,
                                                 const std::vector<Operator>& operators);
  // The rebates of one part of the card-days, appended to *out in card order; `after_card`
  // (when set) is called after each card's, and its failure ends the pass.
  Status RebatesOfPart(int64_t day, const std::map<std::string_view, const Operator*>& registry,
                       size_t part, size_t parts, std::vector<CardRebate>* out,
                       const std::function<Status()>& after_card = {});
  // Each rebated card's account (or the failure its resolution gave), for PlanRebateTransfers.
  struct RebateAccounts {
    std::vector<std::string> card_nos;       // ascending, unique
    std::vector<Result<uint64_t>> accounts;  // one per card_nos
    // The account of `card_no`, which must be among card_nos (assert). Asked in card order
    // (as the plan asks), each is found at or next to the one found before.
    Result<uint64_t> Find(std::string_view card_no) const;
    mutable size_t last_found = 0;  // where Find found the card before
  };
  // `reads`: where the cards are read (config_.reads or plan_reads; nullptr: the registry).
  // Notes the registry's card change count before it reads them (NoteCardChanges).
  Result<RebateAccounts> ResolveRebateAccounts(std::span<const CardRebate* const> rebates,
                                               SettlementReads* reads);
  // `first`: the card's state when the caller found it in `states` (nullptr: looked up).
  Result<uint64_t> FollowRebateCard(const std::string& card_no, const RebateCardState* first,
                                    const RebateAccounts& asked,
                                    const std::vector<RebateCardState>& states,
                                    SettlementReads* reads);
  // The card's state in `states`, or read alone into `*alone`; nullptr: not registered.
  Result<const RebateCardState*> RebateCard(std::string_view card_no, const RebateAccounts& asked,
                                            const std::vector<RebateCardState>& states,
                                            SettlementReads* reads,
                                            std::optional<RebateCardState>* alone);
  // Ahead of the plan's first read of cards, reads the card change count over `reads`
  // (nullptr: the registry) into planned_card_changes_; nothing after that.
  Status NoteCardChanges(SettlementReads* reads);
  // The booking's check, inside its transaction, that the count read when it began is the
  // plan's: else "settlement_cards_changed". Only once the planning has finished.
  Status CheckCardsUnchanged(int64_t at_begin) const;
  Result<LedgerMovements> DayMovements(int64_t day, int64_t cutoff_s);
  Result<LedgerMovements> ReadDay(int64_t day);
  // The planned transfers as the booking takes them: all at once, or stretch by stretch from
  // the planning thread (settlement_run.cc).
  class TransferFeed;
  // What the day's report is built from besides the rebates: the tap source's totals per
  // operator, the services' totals and the ledger's movements of the day.
  struct DayFigures {
    const std::vector<OperatorTapTotals>& taps;
    const std::vector<OperatorServiceTotals>& services;
    const LedgerMovements& movements;
  };
  // Computes the caps, plans their transfers into `feed` a stretch at a time (the cards read
  // over config_.plan_reads), then builds and reconciles the report (put in record.report)
  // and plans the fees and payouts; run on the planning thread.
  Status PlanInto(const DayFigures& figures, const std::vector<Operator>& operators,
                  SettlementRecord& record, TransferFeed& feed);
  // Books the planned transfers and keeps the run (its transfer count set from the feed), in
  // one unit of work (see settlement_run.cc).
  Status Book(TransferFeed& feed, SettlementRecord& record);
  // Whether a booking searches the ledger for its transfer ids (Ledger::Apply) or books them
  // as new (Ledger::ApplyNew).
  enum class SettlementIds : uint8_t { known_new, search };
  Status BookOnce(TransferFeed& feed, SettlementRecord& record, SettlementIds ids);
  Status AllBooked(std::span<const Transfer> batch, std::span<const TransferOutcome> outcomes) const;
  // Runs PlanInto on a second thread while Book takes the stretches; sets record's report and
  // transfer count.
  Status PlanAndBookApart(const DayFigures& figures, const std::vector<Operator>& operators,
                          SettlementRecord& record);
  // One try at the day once its figures are read: the caps, the report, the plan and the
  // booking, apart (plan_reads) or one after the other.
  Result<SettlementRecord> PlanAndBook(const DayFigures& figures,
                                       const std::vector<Operator>& operators);
  // Tells config_.on_step that `step` has ended.
  void StepDone(std::string_view step) const;

  RegistryStore& registry_;
  Ledger& ledger_;
  LedgerStore& ledger_store_;
  SettlementStore& store_;
  SettlementTapSource& taps_;
  const Digester& digester_;
  const Clock& clock_;
  SettlerConfig config_;
  int64_t cutoff_s_ = 0;
  int64_t day_ = 0;  // the day being settled
  // The card change count read before the plan's first read of cards (nullopt: none read).
  // Written on the planning thread only, before it finishes the feed; read by the booking
  // only after TransferFeed::Finished, whose mutex orders the two.
  std::optional<int64_t> planned_card_changes_;
};

}  // namespace citycard
