// Every error and result code of the terminal protocol, in one enum with stable numbers
// (docs/protocol.md, "Codes"). The same numbers travel in error frames, in the per-record
// results of a batch acknowledgement and in the responses to online requests. A number once
// published is never reused or renumbered; new codes take new numbers in their range.
//
// Ranges: 0 ok; 100-199 frames and sessions; 200-299 authentication; 300-399 results of one
// tap record; 400-499 outcomes of online requests.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace citycard::terminals {

enum class ResultCode : uint16_t {
  ok = 0,

  // Frames and sessions: carried in error frames; the session is closed after each.
  malformed_frame = 100,       // bad CRC or unparseable frame on a stream that must be clean
  frame_too_large = 101,       // a header announced more than kFrameBytesMax
  unsupported_version = 102,   // frame version other than kProtocolVersion
  unexpected_message = 103,    // a frame type not allowed in the session's state
  malformed_message = 104,     // a body that does not decode (wrong size, bad field)
  sequence_error = 105,        // replayed, reordered or missing frame
  bad_frame_mac = 106,         // the frame MAC did not verify: altered or forged
  handshake_timeout = 107,     // the handshake took longer than the server's limit
  idle_timeout = 108,          // no complete frame within the server's idle limit
  too_many_sessions = 109,     // the server is at its session limit; try again later
  server_shutting_down = 110,  // the server is stopping; reconnect later
  internal_error = 111,        // a bug or an I/O failure on the server; retry later
  backend_unavailable = 112,   // the core could not take the request now; retry later
  batch_too_large = 113,       // more than kRecordsPerBatchMax records (or none)

  // Authentication, during the handshake.
  unknown_terminal = 200,       // no terminal registered under that id
  terminal_disabled = 201,      // registered but disabled by the operator
  unknown_key_version = 202,    // the terminal has no key of that version
  authentication_failed = 203,  // the terminal's proof did not verify (wrong key)

  // Results of one tap record in a batch acknowledgement (which may also carry
  // unknown_terminal and terminal_disabled for a record). Every record result but
  // tac_missing and retry_later is final: the reader may delete the record once the
  // acknowledgement's signature verifies.
  accepted = 300,              // booked
  accepted_late = 301,         // booked on a later clearing day than the tap's, marked late
  accepted_with_alert = 302,   // booked (the ride happened) and an alert raised
  duplicate = 303,             // the same record was booked before; answered as before
  conflict = 304,              // another record was booked under this (terminal, TTC)
  invalid_record = 305,        // the record does not decode or fails validation
  wrong_terminal = 306,        // the record names another terminal than the session's
  wrong_operator = 307,        // the record names another operator than the terminal's
  bad_terminal_mac = 308,      // the terminal's MAC over the record did not verify
  unknown_card = 309,          // no such card in the core
  bad_tac = 310,               // the card's TAC did not verify
  card_counter_too_old = 311,  // the card counter went back beyond the accepted window
  cloned_card = 312,           // same card counter, other content: refused, alert raised
  forged_balance = 313,        // the balance rose without a load: refused, card denylisted
  tac_missing = 314,           // a torn transaction: keep it, upload again with the recovered TAC
  unknown_card_key = 315,      // the card has no key of the record's TAC key version
  card_closed = 316,           // the card's purse was closed and refunded: alert raised
  unmatched_load = 317,        // a load record no authorised top-up matches: alert raised
  unknown_terminal_key = 318,  // the terminal never had the record's key version
  terminal_key_revoked = 319,  // the record's terminal key version was revoked
  retry_later = 399,           // not stored now; keep the record and upload it again

  // Outcomes of online requests (top-up, identity check, medical settlement, bill payment).
  unsupported_request = 400,     // the core does not handle this request (yet)
  card_not_found = 401,
  card_blocked = 402,
  card_expired = 403,
  insufficient_funds = 404,
  bad_card_proof = 405,          // the card's proof in the request did not verify
  amount_out_of_range = 406,
  authorisation_not_found = 407, // a top-up confirmation for an unknown authorisation
  authorisation_expired = 408,   // the pending top-up was voided before the confirmation
  not_insured = 409,             // the holder has no scheme covering the request
  bill_not_found = 410,
  bill_already_paid = 411,
  amount_mismatch = 412,         // the amount differs from the bill's or authorisation's
  duplicate_request = 413,       // the same request id was answered before
  no_mandate = 414,              // the card holds no mandate to pay that utility's bills
};

// The code's stable snake_case name ("sequence_error"); "unknown_code" for a number that
// is not in the enum (a newer peer may send one).
std::string_view ResultCodeName(ResultCode code);
std::optional<ResultCode> ParseResultCode(std::string_view name);

// True for the per-record results after which a reader may delete its record: every known
// record result (300-313, 315-319, and unknown_terminal and terminal_disabled) but
// tac_missing and retry_later. False for those two and for any other number, including one
// this build does not know, so that a reader keeps what it cannot interpret
// (docs/protocol.md "Batch acknowledgement").
bool IsFinalRecordResult(ResultCode code);

}  // namespace citycard::terminals
