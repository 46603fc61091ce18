#include "tools/sim/sim_terminal.h"

#include <algorithm>
#include <unordered_set>

#include "crypto/tap_auth.h"

namespace citycard::sim {

SimTerminal::SimTerminal(std::string terminal_id, std::string operator_id, ByteView key32,
                         uint8_t key_version, uint32_t counter)
    : terminal_id_(std::move(terminal_id)),
      operator_id_(std::move(operator_id)),
      key_(key32),
      key_version_(key_version),
      counter_(counter) {
  TapRecord probe;
  probe.terminal_id = terminal_id_;
  probe.operator_id = operator_id_;
  CITYCARD_ASSERT(ValidateTapRecord(probe).ok());
}

void SimTerminal::RotateKey(ByteView key32, uint8_t key_version) {
  key_ = crypto::HmacSha256(key32);
  key_version_ = key_version;
}

TapRecord SimTerminal::Draft(const TapRequest& request) const {
  TapRecord r;
  r.type = request.type;
  r.flags = request.flags;
  r.terminal_key_version = key_version_;
  r.amount_fen = request.amount_fen;
  r.terminal_id = terminal_id_;
  r.terminal_counter = counter_ + 1;
  r.time_s = request.time_s;
  r.operator_id = operator_id_;
  r.route_code = request.route_code;
  r.station_code = request.station_code;
  r.fare_version = request.fare_version;
  r.full_fare_fen = request.full_fare_fen;
  r.concession_fen = request.concession_fen;
  r.transfer_discount_fen = request.transfer_discount_fen;
  return r;
}

Status SimTerminal::CheckRoom() const {
  if (queue_.size() >= kSimTerminalQueueRecordsMax) {
    return Status::Refused("terminal_store_full",
                           "the reader's store is full; upload before taking more taps");
  }
  return Status::Ok();
}

TapRecord SimTerminal::SignAndQueue(TapRecord record) {
  crypto::SignTapRecord(key_, &record);
  queue_.push_back(record);
  return record;
}

Result<TapRecord> SimTerminal::Tap(SimCard& card, const TapRequest& request) {
  CITYCARD_RETURN_IF_ERROR(CheckRoom());
  auto paid = card.Pay(Draft(request));
  if (!paid.ok()) return paid.status();
  ++counter_;
  return SignAndQueue(std::move(paid).value());
}

Result<TapRecord> SimTerminal::TapTorn(SimCard& card, const TapRequest& request) {
  CITYCARD_RETURN_IF_ERROR(CheckRoom());
  TapRecord draft = Draft(request);
  CITYCARD_RETURN_IF_ERROR(card.PayTorn(draft));
  ++counter_;
  return draft;
}

Result<TapRecord> SimTerminal::RecoverTorn(const SimCard& card, const TapRecord& draft) {
  CITYCARD_RETURN_IF_ERROR(CheckRoom());
  auto proof = card.ProveLastTransaction(card.counter());
  if (!proof.ok()) return proof.status();
  const TapRecord& r = *proof;
  if (r.terminal_id != draft.terminal_id || r.terminal_counter != draft.terminal_counter ||
      r.amount_fen != draft.amount_fen || r.time_s != draft.time_s) {
    return Status::Refused("torn_record_mismatch",
                           "the card's last transaction is not the torn one from this reader");
  }
  return SignAndQueue(r);
}

Result<SimLoadResult> SimTerminal::CompleteLoad(SimCard& card, const LoadFields& fields,
                                                ByteView host_mac, int64_t time_s) {
  TapRequest request;
  request.type = TapType::load;
  request.amount_fen = fields.amount_fen;
  request.time_s = time_s;
  auto loaded = card.ApplyLoad(fields, host_mac, Draft(request));
  if (!loaded.ok()) return loaded.status();
  ++counter_;
  crypto::SignTapRecord(key_, &loaded->record);
  return loaded;
}

std::vector<TapRecord> SimTerminal::TakeBatch(size_t max_records) const {
  size_t n = std::min(max_records, queue_.size());
  return std::vector<TapRecord>(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
}

size_t SimTerminal::Acknowledge(std::span<const uint32_t> terminal_counters) {
  std::unordered_set<uint32_t> acknowledged(terminal_counters.begin(), terminal_counters.end());
  size_t before = queue_.size();
  std::erase_if(queue_, [&](const TapRecord& r) {
    return acknowledged.count(r.terminal_counter) != 0;
  });
  return before - queue_.size();
}

}  // namespace citycard::sim
