#include "terminals/codes.h"

#include <array>
#include <utility>

namespace citycard::terminals {

namespace {

constexpr std::pair<ResultCode, std::string_view> kNames[] = {
    {ResultCode::ok, "ok"},
    {ResultCode::malformed_frame, "malformed_frame"},
    {ResultCode::frame_too_large, "frame_too_large"},
    {ResultCode::unsupported_version, "unsupported_version"},
    {ResultCode::unexpected_message, "unexpected_message"},
    {ResultCode::malformed_message, "malformed_message"},
    {ResultCode::sequence_error, "sequence_error"},
    {ResultCode::bad_frame_mac, "bad_frame_mac"},
    {ResultCode::handshake_timeout, "handshake_timeout"},
    {ResultCode::idle_timeout, "idle_timeout"},
    {ResultCode::too_many_sessions, "too_many_sessions"},
    {ResultCode::server_shutting_down, "server_shutting_down"},
    {ResultCode::internal_error, "internal_error"},
    {ResultCode::backend_unavailable, "backend_unavailable"},
    {ResultCode::batch_too_large, "batch_too_large"},
    {ResultCode::unknown_terminal, "unknown_terminal"},
    {ResultCode::terminal_disabled, "terminal_disabled"},
    {ResultCode::unknown_key_version, "unknown_key_version"},
    {ResultCode::authentication_failed, "authentication_failed"},
    {ResultCode::accepted, "accepted"},
    {ResultCode::accepted_late, "accepted_late"},
    {ResultCode::accepted_with_alert, "accepted_with_alert"},
    {ResultCode::duplicate, "duplicate"},
    {ResultCode::conflict, "conflict"},
    {ResultCode::invalid_record, "invalid_record"},
    {ResultCode::wrong_terminal, "wrong_terminal"},
    {ResultCode::wrong_operator, "wrong_operator"},
    {ResultCode::bad_terminal_mac, "bad_terminal_mac"},
    {ResultCode::unknown_card, "unknown_card"},
    {ResultCode::bad_tac, "bad_tac"},
    {ResultCode::card_counter_too_old, "card_counter_too_old"},
    {ResultCode::cloned_card, "cloned_card"},
    {ResultCode::forged_balance, "forged_balance"},
    {ResultCode::tac_missing, "tac_missing"},
    {ResultCode::unknown_card_key, "unknown_card_key"},
    {ResultCode::card_closed, "card_closed"},
    {ResultCode::unmatched_load, "unmatched_load"},
    {ResultCode::unknown_terminal_key, "unknown_terminal_key"},
    {ResultCode::terminal_key_revoked, "terminal_key_revoked"},
    {ResultCode::retry_later, "retry_later"},
    {ResultCode::unsupported_request, "unsupported_request"},
    {ResultCode::card_not_found, "card_not_found"},
    {ResultCode::card_blocked, "card_blocked"},
    {ResultCode::card_expired, "card_expired"},
    {ResultCode::insufficient_funds, "insufficient_funds"},
    {ResultCode::bad_card_proof, "bad_card_proof"},
    {ResultCode::amount_out_of_range, "amount_out_of_range"},
    {ResultCode::authorisation_not_found, "authorisation_not_found"},
    {ResultCode::authorisation_expired, "authorisation_expired"},
    {ResultCode::not_insured, "not_insured"},
    {ResultCode::bill_not_found, "bill_not_found"},
    {ResultCode::bill_already_paid, "bill_already_paid"},
    {ResultCode::amount_mismatch, "amount_mismatch"},
    {ResultCode::duplicate_request, "duplicate_request"},
    {ResultCode::no_mandate, "no_mandate"},
};

}  // namespace

std::string_view ResultCodeName(ResultCode code) {
  for (const auto& [value, name] : kNames) {
    if (value == code) return name;
  }
  return "unknown_code";
}

std::optional<ResultCode> ParseResultCode(std::string_view name) {
  for (const auto& [value, text] : kNames) {
    if (text == name) return value;
  }
  return std::nullopt;
}

bool IsFinalRecordResult(ResultCode code) {
  switch (code) {
    case ResultCode::unknown_terminal:
    case ResultCode::terminal_disabled:
    case ResultCode::accepted:
    case ResultCode::accepted_late:
    case ResultCode::accepted_with_alert:
    case ResultCode::duplicate:
    case ResultCode::conflict:
    case ResultCode::invalid_record:
    case ResultCode::wrong_terminal:
    case ResultCode::wrong_operator:
    case ResultCode::bad_terminal_mac:
    case ResultCode::unknown_card:
    case ResultCode::bad_tac:
    case ResultCode::card_counter_too_old:
    case ResultCode::cloned_card:
    case ResultCode::forged_balance:
    case ResultCode::unknown_card_key:
    case ResultCode::card_closed:
    case ResultCode::unmatched_load:
    case ResultCode::unknown_terminal_key:
    case ResultCode::terminal_key_revoked:
      return true;
    default:
      return false;
  }
}

}  // namespace citycard::terminals
