// The TapAuthenticator of core/tap_authenticator.h with real keys: terminal MACs under the
// terminal's keys unwrapped with the key file's wrap key, TACs and load MACs under card keys
// diversified from the key file's card master keys (crypto/card_keys.h). Derived card keys
// and unwrapped terminal keys are cached, so that a tap costs two MACs and no key setup.
// Not thread-safe (the MAC contexts are reused): one per thread.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/tap_authenticator.h"
#include "crypto/key_file.h"
#include "crypto/mac.h"

namespace citycard::crypto {

// How many derived card keys stay cached; the least recently used goes first.
inline constexpr size_t kCardKeyCacheMax = 65'536;

class KeyedTapAuthenticator final : public TapAuthenticator {
 public:
  // The key file must outlive the authenticator.
  explicit KeyedTapAuthenticator(const KeyFile& keys) : keys_(keys) {}

  TerminalMacVerdict VerifyTerminalMac(const Terminal& terminal, const TapRecord& record) override;
  TacVerdict VerifyTac(const TapRecord& record) override;
  uint8_t CurrentCardKeyVersion() const override { return keys_.CurrentCardKeyVersion(); }
  bool LoadAuthorisation(uint8_t card_key_version, const LoadFields& fields,
                         LoadMacBytes* out) override;
  bool VerifyLoadConfirmation(uint8_t card_key_version, const LoadFields& fields,
                              int64_t balance_after_fen, ByteView mac) override;
  bool VerifyCardProof(uint64_t card_no, uint8_t card_key_version, ByteView input,
                       ByteView proof) override;

  // The card key object of (card, version); nullptr when the key file has no such version.
  const AesCmac* CardKey(uint64_t card_no, uint8_t version);

 private:
  struct TerminalKeyEntry {
    Bytes wrapped;  // what the registry held when this was unwrapped
    std::optional<HmacSha256> key;  // nullopt: the wrapped key did not unwrap
  };
  struct CardKeyEntry {
    AesCmac key;
    std::list<uint64_t>::iterator lru;
  };

  const KeyFile& keys_;
  std::map<std::pair<std::string, int>, TerminalKeyEntry> terminal_keys_;
  std::unordered_map<uint64_t, CardKeyEntry> card_keys_;
  std::list<uint64_t> card_lru_;  // most recent first
};

}  // namespace citycard::crypto
