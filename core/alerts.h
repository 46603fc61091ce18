// Alerts: what tap ingest (core/ingest.h) found suspicious or exceptional, kept for the card
// office to look at (`citycard alerts`). An alert never changes money by itself; it records
// that something happened and why. Kinds, their causes and what follows each: docs/ingest.md,
// "Alerts".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace citycard {

// Stored numbers; never renumber. New kinds take new numbers.
enum class AlertKind : uint8_t {
  conflict = 1,              // another record under a (terminal, TTC) already booked
  cloned_card = 2,           // a second record under a (card, CTC) already booked
  missing_card_taps = 3,     // a gap in a card's counters: taps not (yet) uploaded
  forged_balance = 4,        // the card claims more money than it can hold: denylisted
  blocked_card_tap = 5,      // a blocked card tapped after the terminal knew (honoured)
  denylisted_card_tap = 6,   // a denylisted (not blocked) card tapped after the terminal knew
  replaced_card_tap = 7,     // a replaced card tapped after the terminal knew (honoured)
  closed_card_tap = 8,       // a closed card tapped: refused, its purse is gone
  negative_balance = 9,      // an offline tap took the purse below zero: denylisted
  lost_uploads = 10,         // a gap in a terminal's counters: uploads possibly lost
  balance_mismatch = 11,     // the card holds less than its previous record left it
  unmatched_load = 12,       // a load record no authorised top-up matches
  topup_recovered = 13,      // an expired top-up proven by a later tap, booked late
  fare_dispute = 14,         // the reader priced differently from the core (issue 7)
};
inline constexpr uint8_t kAlertKindMax = 14;

// "conflict", "cloned_card", …; "unknown" outside the enum.
std::string_view AlertKindName(AlertKind kind);
std::optional<AlertKind> ParseAlertKind(std::string_view name);

// The most bytes of an alert's detail text.
inline constexpr size_t kAlertDetailBytesMax = 512;

struct Alert {
  int64_t seq = 0;  // assigned by the store: 1, 2, 3, … in the order raised
  AlertKind kind = AlertKind::conflict;
  uint64_t card_no = 0;     // 0 when no card is involved
  std::string terminal_id;  // empty when no terminal is involved
  int64_t time_ms = 0;      // when the core raised it (the injectable clock)
  std::string detail;       // for people: what was seen, with the numbers

  bool operator==(const Alert&) const = default;
};

// Which alerts `citycard alerts` lists: every field that is set must match.
struct AlertFilter {
  std::optional<AlertKind> kind;
  std::optional<uint64_t> card_no;
  std::optional<std::string> terminal_id;
  size_t limit = 1000;
};
// The most alerts one listing returns.
inline constexpr size_t kAlertListMax = 100'000;

}  // namespace citycard
