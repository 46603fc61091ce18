#include "tools/sim/sim_card.h"

#include <limits>

#include "crypto/card_keys.h"

namespace citycard::sim {

namespace {

crypto::Mac16 KeyFrom(ByteView key16) {
  CITYCARD_ASSERT(key16.size() == crypto::kAes128KeyBytes);
  crypto::Mac16 key{};
  std::copy(key16.begin(), key16.end(), key.begin());
  return key;
}

}  // namespace

SimCard::SimCard(uint64_t card_no, ByteView card_key16, uint8_t key_version, Profile profile,
                 int64_t balance_fen, uint32_t counter, int64_t overdraft_fen)
    : card_no_(card_no),
      key_(KeyFrom(card_key16)),
      cmac_(key_),
      key_version_(key_version),
      profile_(profile),
      balance_fen_(balance_fen),
      counter_(counter),
      overdraft_fen_(overdraft_fen) {
  CITYCARD_ASSERT(overdraft_fen >= 0);
}

SimCard SimCard::Issue(ByteView master16, uint8_t key_version, uint64_t card_no, Profile profile,
                       int64_t balance_fen, int64_t overdraft_fen) {
  crypto::Mac16 key = crypto::DeriveCardKey(master16, card_no);
  return SimCard(card_no, key, key_version, profile, balance_fen, 0, overdraft_fen);
}

SimCard::SimCard(const SimCard& other)
    : card_no_(other.card_no_),
      key_(other.key_),
      cmac_(other.key_),
      key_version_(other.key_version_),
      profile_(other.profile_),
      balance_fen_(other.balance_fen_),
      counter_(other.counter_),
      overdraft_fen_(other.overdraft_fen_),
      last_transaction_(other.last_transaction_) {}

SimCard& SimCard::operator=(const SimCard& other) {
  if (this != &other) *this = SimCard(other);
  return *this;
}

Status SimCard::CheckPayment(const TapRecord& draft) const {
  if (draft.amount_fen < 0 || draft.type == TapType::load) {
    return Status::BadInput("invalid_amount", "a payment needs an amount >= 0 and a non-load type");
  }
  if (counter_ == std::numeric_limits<uint32_t>::max()) {
    return Status::Refused("counter_exhausted", "the card's transaction counter is exhausted");
  }
  if (balance_fen_ - draft.amount_fen < -overdraft_fen_) {
    return Status::Refused("insufficient_balance", "the card's purse cannot cover the amount");
  }
  return Status::Ok();
}

TapRecord SimCard::Debit(const TapRecord& draft) {
  TapRecord record = draft;
  ++counter_;
  record.card_no = card_no_;
  record.card_counter = counter_;
  record.profile = profile_;
  record.tac_key_version = key_version_;
  record.balance_before_fen = balance_fen_;
  balance_fen_ -= draft.amount_fen;
  record.tac = crypto::ComputeTac(cmac_, record);
  last_transaction_ = record;
  return record;
}

Result<TapRecord> SimCard::Pay(const TapRecord& draft) {
  CITYCARD_RETURN_IF_ERROR(CheckPayment(draft));
  return Debit(draft);
}

Status SimCard::PayTorn(const TapRecord& draft) {
  CITYCARD_RETURN_IF_ERROR(CheckPayment(draft));
  Debit(draft);
  return Status::Ok();
}

Result<TapRecord> SimCard::ProveLastTransaction(uint32_t card_counter) const {
  if (!last_transaction_ || last_transaction_->card_counter != card_counter) {
    return Status::NotFound("transaction_not_on_card",
                            "the card's last transaction is not number " +
                                std::to_string(card_counter));
  }
  return *last_transaction_;
}

LoadFields SimCard::ReadForLoad(int64_t amount_fen, std::string terminal_id,
                                uint64_t request_id) const {
  LoadFields fields;
  fields.card_no = card_no_;
  fields.card_counter = counter_;
  fields.balance_before_fen = balance_fen_;
  fields.amount_fen = amount_fen;
  fields.terminal_id = std::move(terminal_id);
  fields.request_id = request_id;
  return fields;
}

Result<SimLoadResult> SimCard::ApplyLoad(const LoadFields& fields, ByteView host_mac,
                                         const TapRecord& draft) {
  if (!crypto::VerifyLoadAuthorisation(cmac_, fields, host_mac)) {
    return Status::BadInput("load_authorisation_invalid",
                            "the host's load authorisation does not verify under this card's key");
  }
  if (fields.card_no != card_no_ || fields.card_counter != counter_ ||
      fields.balance_before_fen != balance_fen_) {
    return Status::Refused("load_state_mismatch",
                           "the authorisation is for another card state (counter or balance)");
  }
  if (fields.amount_fen <= 0) return Status::BadInput("invalid_amount", "a load must be > 0");
  if (fields.amount_fen > kSimPurseBalanceMaxFen - balance_fen_) {
    return Status::Refused("balance_limit_exceeded", "the load would exceed the purse's limit");
  }
  if (counter_ == std::numeric_limits<uint32_t>::max()) {
    return Status::Refused("counter_exhausted", "the card's transaction counter is exhausted");
  }
  SimLoadResult result;
  result.record = draft;
  result.record.type = TapType::load;
  result.record.amount_fen = fields.amount_fen;
  result.record.terminal_id = fields.terminal_id;
  ++counter_;
  result.record.card_no = card_no_;
  result.record.card_counter = counter_;
  result.record.profile = profile_;
  result.record.tac_key_version = key_version_;
  result.record.balance_before_fen = balance_fen_;
  balance_fen_ += fields.amount_fen;
  result.record.tac = crypto::ComputeTac(cmac_, result.record);
  result.balance_after_fen = balance_fen_;
  result.confirmation = crypto::ComputeLoadConfirmation(cmac_, fields, balance_fen_);
  last_transaction_ = result.record;
  return result;
}

}  // namespace citycard::sim
