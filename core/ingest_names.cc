// The stable names of ingest's enums (core/alerts.h, core/ingest_outcome.h, core/ingest.h,
// core/tap_store.h). Scripts and JSON consumers match on these: never rename one.
#include <array>
#include <string_view>

#include "core/alerts.h"
#include "core/ingest.h"
#include "core/ingest_outcome.h"
#include "core/tap_store.h"

namespace citycard {

namespace {

constexpr std::array<std::string_view, kAlertKindMax + 1> kAlertKindNames = {
    "unknown",          "conflict",         "cloned_card",      "missing_card_taps",
    "forged_balance",   "blocked_card_tap", "denylisted_card_tap", "replaced_card_tap",
    "closed_card_tap",  "negative_balance", "lost_uploads",     "balance_mismatch",
    "unmatched_load",   "topup_recovered",  "fare_dispute",
};

constexpr std::array<std::string_view, kIngestOutcomeMax + 1> kIngestOutcomeNames = {
    "accepted",          "accepted_late",        "accepted_with_alert", "duplicate",
    "conflict",          "invalid_record",       "wrong_terminal",      "unknown_terminal",
    "terminal_disabled", "wrong_operator",       "unknown_terminal_key", "terminal_key_revoked",
    "bad_terminal_mac",  "unknown_card",         "tac_missing",         "unknown_card_key",
    "bad_tac",           "card_counter_too_old", "cloned_card",         "forged_balance",
    "card_closed",       "unmatched_load",       "retry_later",
};

}  // namespace

std::string_view AlertKindName(AlertKind kind) {
  auto n = static_cast<size_t>(kind);
  return n >= 1 && n < kAlertKindNames.size() ? kAlertKindNames[n] : "unknown";
}

std::optional<AlertKind> ParseAlertKind(std::string_view name) {
  for (size_t n = 1; n < kAlertKindNames.size(); ++n) {
    if (kAlertKindNames[n] == name) return static_cast<AlertKind>(n);
  }
  return std::nullopt;
}

std::string_view IngestOutcomeName(IngestOutcome outcome) {
  auto n = static_cast<size_t>(outcome);
  return n < kIngestOutcomeNames.size() ? kIngestOutcomeNames[n] : "unknown";
}

std::optional<IngestOutcome> ParseIngestOutcome(std::string_view name) {
  for (size_t n = 0; n < kIngestOutcomeNames.size(); ++n) {
    if (kIngestOutcomeNames[n] == name) return static_cast<IngestOutcome>(n);
  }
  return std::nullopt;
}

std::string_view TopupOutcomeName(TopupOutcome outcome) {
  switch (outcome) {
    case TopupOutcome::authorised: return "authorised";
    case TopupOutcome::card_not_found: return "card_not_found";
    case TopupOutcome::card_blocked: return "card_blocked";
    case TopupOutcome::card_expired: return "card_expired";
    case TopupOutcome::amount_out_of_range: return "amount_out_of_range";
    case TopupOutcome::duplicate_request: return "duplicate_request";
    case TopupOutcome::confirmed: return "confirmed";
    case TopupOutcome::authorisation_not_found: return "authorisation_not_found";
    case TopupOutcome::authorisation_expired: return "authorisation_expired";
    case TopupOutcome::amount_mismatch: return "amount_mismatch";
    case TopupOutcome::bad_record: return "bad_record";
  }
  return "unknown";
}

std::string_view TopupStatusName(TopupStatus status) {
  switch (status) {
    case TopupStatus::pending: return "pending";
    case TopupStatus::posted: return "posted";
    case TopupStatus::expired: return "expired";
    case TopupStatus::recovered: return "recovered";
  }
  return "unknown";
}

}  // namespace citycard
