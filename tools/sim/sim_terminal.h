// A simulated card reader: it prices nothing itself (the caller says what to charge), fills
// the terminal's fields of each record, lets the card pay, signs the record with its terminal
// key (HMAC-SHA256, crypto/tap_auth.h) and keeps it in an offline store-and-forward queue
// until the core acknowledges it. See docs/crypto.md, "Simulator".
//
// The terminal counter (TTC) is incremented for every transaction the reader starts with a
// card, and each record carries the new value: a reader's first record carries TTC 1. A
// payment the card refuses consumes no TTC; a torn one does (the reader had started it).
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "core/load_record.h"
#include "core/status.h"
#include "core/tap_record.h"
#include "crypto/mac.h"
#include "tools/sim/sim_card.h"

namespace citycard::sim {

// How many records a reader stores before it refuses taps until it has uploaded.
inline constexpr size_t kSimTerminalQueueRecordsMax = 100'000;

// What the reader knows about a tap before the card answers.
struct TapRequest {
  TapType type = TapType::purchase;
  int64_t amount_fen = 0;
  int64_t full_fare_fen = 0;
  int64_t concession_fen = 0;
  int64_t transfer_discount_fen = 0;
  uint8_t flags = 0;
  uint32_t route_code = 0;
  uint32_t station_code = 0;
  uint32_t fare_version = 0;
  int64_t time_s = 0;
};

class SimTerminal {
 public:
  // terminal_id and operator_id must be valid record identifiers (asserted); the key is the
  // terminal's 32-byte HMAC key of version `key_version`.
  SimTerminal(std::string terminal_id, std::string operator_id, ByteView key32,
              uint8_t key_version, uint32_t counter = 0);

  // Switches to a new key version (rotation): later records are signed with it.
  void RotateKey(ByteView key32, uint8_t key_version);

  // The record as the reader prepares it for the card (terminal fields set, TTC not yet
  // consumed: it carries counter() + 1).
  TapRecord Draft(const TapRequest& request) const;

  // A whole tap: draft, card pays, terminal signs and queues. Returns the queued record.
  // Refusals: what the card refuses (card and terminal unchanged); Kind::refused
  // "terminal_store_full" when kSimTerminalQueueRecordsMax records wait for upload.
  Result<TapRecord> Tap(SimCard& card, const TapRequest& request);

  // A torn tap: the card debits but the reader never gets the TAC. Consumes a TTC, queues
  // nothing, and returns the reader's draft so that RecoverTorn can finish it.
  Result<TapRecord> TapTorn(SimCard& card, const TapRequest& request);

  // Recovers a torn tap from the card (GET TRANSACTION PROOF for the counter the card had
  // reached): signs and queues the recovered record. Kind::not_found
  // "transaction_not_on_card" when the card has made another transaction since; Kind::refused
  // "torn_record_mismatch" when the card's last transaction is not this reader's draft.
  Result<TapRecord> RecoverTorn(const SimCard& card, const TapRecord& draft);

  // A top-up: `fields` is what the reader read from the card (SimCard::ReadForLoad with this
  // terminal's id) and `host_mac` the core's authorisation. The card applies it; the reader
  // signs the card's load record (not queued: it travels in the top-up confirmation).
  Result<SimLoadResult> CompleteLoad(SimCard& card, const LoadFields& fields, ByteView host_mac,
                                     int64_t time_s);

  // Up to `max_records` of the oldest records waiting for upload, in TTC order. They stay
  // queued until acknowledged, so a batch whose answer was lost is uploaded again.
  std::vector<TapRecord> TakeBatch(size_t max_records) const;

  // Removes the records with these terminal counters (those the core acknowledged) from the
  // queue; returns how many were removed (a counter not queued is ignored).
  size_t Acknowledge(std::span<const uint32_t> terminal_counters);

  const std::string& terminal_id() const { return terminal_id_; }
  const std::string& operator_id() const { return operator_id_; }
  uint32_t counter() const { return counter_; }
  uint8_t key_version() const { return key_version_; }
  size_t queued() const { return queue_.size(); }

 private:
  Status CheckRoom() const;
  TapRecord SignAndQueue(TapRecord record);

  std::string terminal_id_;
  std::string operator_id_;
  crypto::HmacSha256 key_;
  uint8_t key_version_;
  uint32_t counter_;
  std::deque<TapRecord> queue_;
};

}  // namespace citycard::sim
