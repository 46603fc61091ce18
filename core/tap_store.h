// The storage interface of tap ingest (core/ingest.h): booked taps, counter gaps, alerts,
// online top-ups, what each terminal reported of the denylist, and per-(clearing day,
// operator) totals for settlement. The engine decides everything; a store only finds and
// writes what it is given, one Write per group commit. db/sqlite_tap_store.h implements it
// over SQLite on the same connection as the registry and the ledger, so that a group commit
// writes taps, transfers and denylist changes in ONE storage transaction, begun and committed
// through RegistryStore::Begin/Commit (see core/unit_of_work.h). tests/support has an
// in-memory fake. Record meanings: docs/ingest.md.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/alerts.h"
#include "core/ingest_outcome.h"
#include "core/ledger.h"
#include "core/status.h"
#include "core/tap_record.h"

namespace citycard {

// A booked tap record with what the core added to it.
struct StoredTap {
  int64_t seq = 0;  // assigned by the store: 1, 2, 3, … in booking order
  TapRecord record;
  int64_t received_ms = 0;   // when the core booked it (the injectable clock)
  int64_t clearing_day = 0;  // civil day number (core/time.h) of received_ms: the day it clears
  bool late = false;         // the tap's own clearing day is before clearing_day
  IngestOutcome outcome = IngestOutcome::accepted;  // accepted, accepted_late or _with_alert
  uint64_t charged_card_no = 0;  // whose purse paid: the card, or its replacement after the move
  Id128 transfer_id;             // the ledger transfer; zero when no money moved (amount 0)

  bool operator==(const StoredTap&) const = default;
};

// What the booked records of one card say about it: the highest booked counter and the
// balance the card had after that transaction.
struct CardCounterState {
  uint64_t card_no = 0;
  uint32_t last_counter = 0;
  int64_t last_balance_after_fen = 0;
  uint8_t last_tac_key_version = 1;
};

// A run of missing counters [from, to] of one card (missing taps) or one terminal (possibly
// lost uploads). Exactly one of card_no / terminal_id is set.
enum class GapKind : uint8_t { card = 1, terminal = 2 };
struct CounterGap {
  GapKind kind = GapKind::card;
  uint64_t card_no = 0;
  std::string terminal_id;
  uint32_t from = 0;
  uint32_t to = 0;  // >= from
  int64_t found_ms = 0;

  bool operator==(const CounterGap&) const = default;
};

// The state of an online top-up (docs/ingest.md "Online top-up"). Stored numbers.
enum class TopupStatus : uint8_t {
  pending = 1,    // authorised; the pending transfer holds the money in flight
  posted = 2,     // the card confirmed: the pending transfer is posted
  expired = 3,    // no confirmation before the timeout: voided, may still be recovered
  recovered = 4,  // expired, then a later record proved the card holds the money: booked
};
std::string_view TopupStatusName(TopupStatus status);

struct TopupRecord {
  std::string terminal_id;
  uint64_t request_id = 0;        // the terminal's; unique per terminal
  uint64_t card_no = 0;
  uint32_t card_counter = 0;      // the card's CTC before the load; the load itself is +1
  int64_t balance_before_fen = 0;
  int64_t amount_fen = 0;
  uint8_t card_key_version = 1;
  Id128 pending_id;
  uint64_t authorisation_id = 0;  // what the terminal quotes back; unique
  TopupStatus status = TopupStatus::pending;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  int64_t settled_ms = 0;         // when posted, expired or recovered
  Id128 settle_transfer_id;       // the post or the recovery transfer

  bool operator==(const TopupRecord&) const = default;
};

// One terminal's report (heartbeat) that it holds denylist `version`, by its own clock.
struct TerminalDenylistReport {
  int64_t version = 0;
  int64_t terminal_time_ms = 0;
};

// What settlement (issue 10) reads per clearing day and operator. Purchases (every type but
// load) count in taps and the fare columns; loads in loads/load_fen.
struct DayOperatorTotals {
  int64_t clearing_day = 0;
  std::string operator_id;
  int64_t taps = 0;                // booked records, zero-amount ones included
  int64_t full_fare_fen = 0;       // Σ full_fare_fen (gross)
  int64_t concession_fen = 0;
  int64_t transfer_discount_fen = 0;
  int64_t paid_fen = 0;            // Σ amount_fen: what moved purse -> operator payable
  int64_t late_taps = 0;
  int64_t loads = 0;               // booked load records (online top-ups confirmed)
  int64_t load_fen = 0;

  bool operator==(const DayOperatorTotals&) const = default;
};

// Everything one group commit writes.
struct IngestWrite {
  std::vector<StoredTap> taps;     // seq ignored on input; new (terminal, TTC) and (card, CTC)
  std::vector<Alert> alerts;       // seq ignored on input
  std::vector<CounterGap> gaps_added;
  // Gaps whose runs changed (a missing counter arrived): the gap starting at `from` of the
  // given kind and key is removed; gaps_added holds what remains of it.
  std::vector<CounterGap> gaps_removed;
  std::vector<TopupRecord> topups;  // inserted or replaced, by (terminal_id, request_id)
  std::vector<DayOperatorTotals> day_deltas;  // added to the stored totals

  bool empty() const {
    return taps.empty() && alerts.empty() && gaps_added.empty() && gaps_removed.empty() &&
           topups.empty() && day_deltas.empty();
  }
};

class TapStore {
 public:
  virtual ~TapStore() = default;

  // Reads. Each may fail with Kind::internal (the store's I/O).
  virtual Result<std::optional<StoredTap>> FindByTerminalCounter(std::string_view terminal_id,
                                                                 uint32_t terminal_counter) = 0;
  virtual Result<std::optional<StoredTap>> FindByCardCounter(uint64_t card_no,
                                                             uint32_t card_counter) = 0;
  // The booked tap of the card with the highest counter, as a state; nullopt for none.
  virtual Result<std::optional<CardCounterState>> LoadCardCounterState(uint64_t card_no) = 0;
  // Σ amount_fen of the card's booked records with card_counter > after_counter, loads
  // excluded (how much the card paid after that counter).
  virtual Result<int64_t> SumPaidAfter(uint64_t card_no, uint32_t after_counter) = 0;
  // The gaps of one card or one terminal (by kind; the other key ignored), ascending from.
  virtual Result<std::vector<CounterGap>> LoadGaps(GapKind kind, uint64_t card_no,
                                                   std::string_view terminal_id) = 0;

  // Writes one group commit, inside the caller's storage transaction. A (terminal, TTC) or
  // (card, CTC) already stored is a programmer error of the engine: Kind::internal
  // "tap_exists".
  virtual Status Write(const IngestWrite& write) = 0;

  // Top-ups.
  virtual Result<std::optional<TopupRecord>> FindTopup(std::string_view terminal_id,
                                                       uint64_t request_id) = 0;
  virtual Result<std::optional<TopupRecord>> FindTopupByAuthorisation(
      uint64_t authorisation_id) = 0;
  // Every top-up still pending or expired (not posted, not recovered), oldest first.
  virtual Result<std::vector<TopupRecord>> ListOpenTopups() = 0;

  // Denylist versions the terminals reported. Record: its own write (or inside the caller's
  // transaction when one is open); a version not above the last recorded one is ignored.
  virtual Status RecordTerminalDenylistVersion(std::string_view terminal_id, int64_t version,
                                               int64_t terminal_time_ms) = 0;
  // Ascending version (and time).
  virtual Result<std::vector<TerminalDenylistReport>> LoadTerminalDenylistReports(
      std::string_view terminal_id) = 0;

  // Queries for the CLI, settlement and audits.
  // Newest first, at most min(filter.limit, kAlertListMax).
  virtual Result<std::vector<Alert>> ListAlerts(const AlertFilter& filter) = 0;
  virtual Result<std::vector<CounterGap>> ListGaps(GapKind kind) = 0;
  // The totals of one clearing day, one row per operator with booked records, ascending
  // operator_id. O(operators): read from totals kept per commit, not from the taps.
  virtual Result<std::vector<DayOperatorTotals>> DayTotals(int64_t clearing_day) = 0;
  // The taps booked on one clearing day with seq > after_seq, ascending seq, at most
  // `limit`. A page shorter than `limit` is the last.
  virtual Status ScanDayTaps(int64_t clearing_day, int64_t after_seq, size_t limit,
                             std::vector<StoredTap>* out) = 0;
  // Every booked tap of a card, ascending card_counter, at most `limit`.
  virtual Status CardTaps(uint64_t card_no, size_t limit, std::vector<StoredTap>* out) = 0;
};

}  // namespace citycard
