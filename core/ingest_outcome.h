// The outcome of ingesting one tap record: one named value per check of docs/ingest.md,
// "Checks, in order". Stored with every booked tap and mapped to the protocol's per-record
// result codes by the server (tools/server/ingest_backend.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace citycard {

// Stored numbers; never renumber.
enum class IngestOutcome : uint8_t {
  // Booked.
  accepted = 0,
  accepted_late = 1,        // the tap's clearing day is before the day it arrived in
  accepted_with_alert = 2,  // booked (the ride happened) and an alert raised
  // Answered without booking again.
  duplicate = 3,            // this very record was booked before: nothing moves
  // Refused: nothing booked.
  conflict = 4,             // another record was booked under this (terminal, TTC): alert
  invalid_record = 5,       // does not decode or fails ValidateTapRecord
  wrong_terminal = 6,       // names another terminal than the session's
  unknown_terminal = 7,
  terminal_disabled = 8,
  wrong_operator = 9,       // names another operator than the terminal's
  unknown_terminal_key = 10,  // the terminal never had the record's key version
  terminal_key_revoked = 11,
  bad_terminal_mac = 12,
  unknown_card = 13,
  tac_missing = 14,         // torn transaction: upload again once the TAC is recovered
  unknown_card_key = 15,    // no card key of the record's version
  bad_tac = 16,
  card_counter_too_old = 17,  // the card counter went back beyond the window
  cloned_card = 18,         // another record was booked under this (card, CTC): alert
  forged_balance = 19,      // the card claims money it cannot hold: alert, denylisted
  card_closed = 20,         // the card's purse was closed and refunded: alert
  unmatched_load = 21,      // a load record that no authorised top-up matches: alert
  retry_later = 22,         // not stored now (the core could not post); upload again
};
inline constexpr uint8_t kIngestOutcomeMax = 22;

// The stable snake_case name: "accepted", "bad_tac", …; "unknown" outside the enum.
std::string_view IngestOutcomeName(IngestOutcome outcome);
std::optional<IngestOutcome> ParseIngestOutcome(std::string_view name);

// True for the outcomes under which the record is booked (accepted*).
inline bool IsBooked(IngestOutcome outcome) {
  return outcome == IngestOutcome::accepted || outcome == IngestOutcome::accepted_late ||
         outcome == IngestOutcome::accepted_with_alert;
}

}  // namespace citycard
