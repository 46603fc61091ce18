// How tap ingest checks the proofs a record carries, without core touching OpenSSL: the
// terminal's MAC (under one of the terminal's key versions) and the card's TAC (under the
// card's diversified key), and the two MACs of an online top-up. crypto/keyed_tap_authenticator.h
// implements it with the key file; core tests use a fake. Layouts: docs/crypto.md.
#pragma once

#include <array>
#include <cstdint>

#include "core/bytes.h"
#include "core/load_record.h"
#include "core/registry.h"
#include "core/tap_record.h"

namespace citycard {

// The outcome of checking a record's terminal MAC.
enum class TerminalMacVerdict : uint8_t {
  valid = 0,
  unknown_key_version = 1,  // the terminal never had the record's key version
  key_revoked = 2,          // that version was revoked: nothing it signs is accepted
  mac_mismatch = 3,         // the record was changed or forged
};

// The outcome of checking a record's TAC.
enum class TacVerdict : uint8_t {
  valid = 0,
  missing = 1,              // the TAC is all zeros: a torn transaction, TAC not recovered yet
  unknown_key_version = 2,  // the issuer has no card key of the record's version
  mismatch = 3,             // the record's card fields were changed or forged
};

using LoadMacBytes = std::array<uint8_t, kLoadMacBytes>;

class TapAuthenticator {
 public:
  virtual ~TapAuthenticator() = default;

  // Checks record.terminal_mac under the key of record.terminal_key_version among
  // terminal.keys (wrapped, with their revoked flags). A key that cannot be unwrapped counts
  // as mac_mismatch (the record cannot be proven).
  virtual TerminalMacVerdict VerifyTerminalMac(const Terminal& terminal,
                                               const TapRecord& record) = 0;

  // Checks record.tac under the key of card record.card_no, card key version
  // record.tac_key_version. An all-zero TAC is `missing`, never checked.
  virtual TacVerdict VerifyTac(const TapRecord& record) = 0;

  // The card key version a new load authorisation uses when nothing better is known.
  virtual uint8_t CurrentCardKeyVersion() const = 0;

  // The host's load authorisation of `fields` for the card's key of `card_key_version`.
  // False when the issuer has no such key version.
  virtual bool LoadAuthorisation(uint8_t card_key_version, const LoadFields& fields,
                                 LoadMacBytes* out) = 0;

  // True when `proof` (8 bytes) is the first 8 bytes of the AES-CMAC under the key of card
  // `card_no`, version `card_key_version`, over `input`: the card-presence proof of an online
  // request (docs/protocol.md "Card proofs").
  virtual bool VerifyCardProof(uint64_t card_no, uint8_t card_key_version, ByteView input,
                               ByteView proof) = 0;

  // True when `mac` is the card's load confirmation of `fields` at balance_after_fen.
  virtual bool VerifyLoadConfirmation(uint8_t card_key_version, const LoadFields& fields,
                                      int64_t balance_after_fen, ByteView mac) = 0;
};

}  // namespace citycard
