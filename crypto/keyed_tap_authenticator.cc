#include "crypto/keyed_tap_authenticator.h"

#include <algorithm>

#include "crypto/card_keys.h"
#include "crypto/key_wrap.h"
#include "crypto/tap_auth.h"

namespace citycard::crypto {

namespace {

// Card numbers are below 2^54 (16 digits), so the version fits in the top byte.
uint64_t CacheKey(uint64_t card_no, uint8_t version) {
  return card_no | (static_cast<uint64_t>(version) << 56);
}

}  // namespace

const AesCmac* KeyedTapAuthenticator::CardKey(uint64_t card_no, uint8_t version) {
  uint64_t key = CacheKey(card_no, version);
  auto it = card_keys_.find(key);
  if (it != card_keys_.end()) {
    card_lru_.splice(card_lru_.begin(), card_lru_, it->second.lru);
    return &it->second.key;
  }
  auto master = keys_.CardMasterKey(version);
  if (!master.ok()) return nullptr;
  Mac16 derived = DeriveCardKey(*master, card_no);
  if (card_keys_.size() >= kCardKeyCacheMax) {
    card_keys_.erase(card_lru_.back());
    card_lru_.pop_back();
  }
  card_lru_.push_front(key);
  auto inserted = card_keys_.emplace(key, CardKeyEntry{AesCmac(derived), card_lru_.begin()});
  std::fill(derived.begin(), derived.end(), 0);
  return &inserted.first->second.key;
}

TerminalMacVerdict KeyedTapAuthenticator::VerifyTerminalMac(const Terminal& terminal,
                                                            const TapRecord& record) {
  const citycard::TerminalKey* found = nullptr;
  for (const citycard::TerminalKey& k : terminal.keys) {
    if (k.version == record.terminal_key_version) found = &k;
  }
  if (found == nullptr) return TerminalMacVerdict::unknown_key_version;
  if (found->revoked) return TerminalMacVerdict::key_revoked;
  auto cache_key = std::make_pair(terminal.id, found->version);
  auto it = terminal_keys_.find(cache_key);
  if (it == terminal_keys_.end() || it->second.wrapped != found->wrapped_key) {
    TerminalKeyEntry entry;
    entry.wrapped = found->wrapped_key;
    auto plain = UnwrapKey(keys_.WrapKey(), found->wrapped_key);
    if (plain.ok()) {
      entry.key.emplace(*plain);
      std::fill(plain->begin(), plain->end(), 0);
    }
    it = terminal_keys_.insert_or_assign(cache_key, std::move(entry)).first;
  }
  if (!it->second.key.has_value()) return TerminalMacVerdict::mac_mismatch;
  return crypto::VerifyTerminalMac(*it->second.key, record) ? TerminalMacVerdict::valid
                                                             : TerminalMacVerdict::mac_mismatch;
}

TacVerdict KeyedTapAuthenticator::VerifyTac(const TapRecord& record) {
  if (std::all_of(record.tac.begin(), record.tac.end(), [](uint8_t b) { return b == 0; })) {
    return TacVerdict::missing;
  }
  const AesCmac* key = CardKey(record.card_no, record.tac_key_version);
  if (key == nullptr) return TacVerdict::unknown_key_version;
  return crypto::VerifyTac(*key, record) ? TacVerdict::valid : TacVerdict::mismatch;
}

bool KeyedTapAuthenticator::LoadAuthorisation(uint8_t version, const LoadFields& fields,
                                              LoadMacBytes* out) {
  const AesCmac* key = CardKey(fields.card_no, version);
  if (key == nullptr) return false;
  *out = ComputeLoadAuthorisation(*key, fields);
  return true;
}

bool KeyedTapAuthenticator::VerifyLoadConfirmation(uint8_t version, const LoadFields& fields,
                                                   int64_t balance_after_fen, ByteView mac) {
  const AesCmac* key = CardKey(fields.card_no, version);
  if (key == nullptr) return false;
  return crypto::VerifyLoadConfirmation(*key, fields, balance_after_fen, mac);
}

bool KeyedTapAuthenticator::VerifyCardProof(uint64_t card_no, uint8_t version, ByteView input,
                                            ByteView proof) {
  const AesCmac* key = CardKey(card_no, version);
  if (key == nullptr || proof.size() != 8) return false;
  Mac16 full = key->Compute(input);
  return ConstantTimeEqual(ByteView(full.data(), 8), proof);
}

}  // namespace citycard::crypto
