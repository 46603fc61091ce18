// A simulated citizen card: what a real card's purse application does at a reader, so that
// tests, `citycard sim`, the replay, the demo and the benchmarks produce records exactly as
// the field would. See docs/crypto.md, "Simulator".
//
// The card holds its number, its diversified AES-128 key (and the key version it was issued
// under), its transaction counter (CTC), its purse balance and its profile. Every transaction
// it performs (a payment or a load) increments the CTC first and carries the new value, so a
// card's first transaction carries card_counter 1 and `counter()` is the number of
// transactions it has made. Like a PBOC purse, the card remembers its last transaction and can
// prove it again (GET TRANSACTION PROOF), which is how a torn transaction is recovered.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "core/load_record.h"
#include "core/profile.h"
#include "core/status.h"
#include "core/tap_record.h"
#include "crypto/mac.h"
#include "crypto/tap_auth.h"

namespace citycard::sim {

// What the card returns after applying a load: its load confirmation for the core and its own
// record of the load (type load, TAC'd; the terminal signs it).
struct SimLoadResult {
  crypto::LoadMac confirmation{};
  int64_t balance_after_fen = 0;
  TapRecord record;
};

class SimCard {
 public:
  // A card with the given key (16 bytes, asserted). `overdraft_fen` (>= 0) is how far below
  // zero an offline payment may take the purse, as the card's profile allows.
  SimCard(uint64_t card_no, ByteView card_key16, uint8_t key_version, Profile profile,
          int64_t balance_fen, uint32_t counter = 0, int64_t overdraft_fen = 0);

  // A card whose key is diversified from an issuer master key (crypto/card_keys.h), as the
  // card office personalises it.
  static SimCard Issue(ByteView master16, uint8_t key_version, uint64_t card_no, Profile profile,
                       int64_t balance_fen, int64_t overdraft_fen = 0);

  // Copying makes a clone with the same key, counter and balance: exactly what a card cloner
  // produces, which tests use to exercise clone detection.
  SimCard(const SimCard& other);
  SimCard& operator=(const SimCard& other);
  SimCard(SimCard&&) = default;
  SimCard& operator=(SimCard&&) = default;

  // Pays for `draft` (the reader's record with its type, amount and terminal fields set):
  // increments the CTC, fills card_no, card_counter, profile, tac_key_version and
  // balance_before_fen, debits amount_fen, computes the TAC, and returns the record
  // (terminal_mac untouched; the terminal signs). Refusals, with the card unchanged:
  // Kind::refused "insufficient_balance" when the debit would go below -overdraft;
  // Kind::bad_input "invalid_amount" for a negative amount or a type of load (loads go
  // through ApplyLoad); "counter_exhausted" when the CTC is at its maximum.
  Result<TapRecord> Pay(const TapRecord& draft);

  // A torn payment: the card debits and counts exactly as Pay does, but the reader never gets
  // the answer. Returns what Pay refuses; on success the transaction is only retrievable
  // through ProveLastTransaction.
  Status PayTorn(const TapRecord& draft);

  // The card's last transaction, with its TAC, if its counter is `card_counter`
  // (GET TRANSACTION PROOF). Kind::not_found "transaction_not_on_card" otherwise: a card
  // remembers only its last transaction.
  Result<TapRecord> ProveLastTransaction(uint32_t card_counter) const;

  // What a reader reads before a top-up: the fields the host authorises. card_counter is the
  // CTC before the load.
  LoadFields ReadForLoad(int64_t amount_fen, std::string terminal_id, uint64_t request_id) const;

  // Applies a load the host authorised with `host_mac` over `fields`; `draft` carries the
  // reader's fields for the card's load record (terminal id and counter, time, operator).
  // Refusals, with the card unchanged: Kind::bad_input "load_authorisation_invalid" when the
  // MAC does not verify under this card's key; Kind::refused "load_state_mismatch" when the
  // fields are not this card's current number, counter and balance (a replayed or stale
  // authorisation); "invalid_amount" for an amount <= 0; "balance_limit_exceeded" above
  // kSimPurseBalanceMaxFen.
  Result<SimLoadResult> ApplyLoad(const LoadFields& fields, ByteView host_mac,
                                  const TapRecord& draft);

  uint64_t card_no() const { return card_no_; }
  uint32_t counter() const { return counter_; }
  int64_t balance_fen() const { return balance_fen_; }
  Profile profile() const { return profile_; }
  uint8_t key_version() const { return key_version_; }
  const crypto::Mac16& key() const { return key_; }

 private:
  Status CheckPayment(const TapRecord& draft) const;
  TapRecord Debit(const TapRecord& draft);

  uint64_t card_no_;
  crypto::Mac16 key_;
  crypto::AesCmac cmac_;
  uint8_t key_version_;
  Profile profile_;
  int64_t balance_fen_;
  uint32_t counter_;
  int64_t overdraft_fen_;
  std::optional<TapRecord> last_transaction_;
};

// A purse holds at most this much (10,000 yuan), as PBOC purses cap their balance.
inline constexpr int64_t kSimPurseBalanceMaxFen = 1'000'000;

}  // namespace citycard::sim
