// Card keys: each card's AES-128 key is diversified from the issuer's master key and the
// card number with the AES-128 scheme of NXP AN10922 (section 2.2), so the core never stores
// a card key: it derives it again from the master key when it verifies a TAC. The
// diversification input of a citycard card is documented in docs/crypto.md, "Card keys".
#pragma once

#include <array>
#include <cstdint>

#include "core/bytes.h"
#include "crypto/mac.h"

namespace citycard::crypto {

// AN10922 allows 1 to 31 bytes of diversification input (M); with the 0x01 constant in
// front, one CMAC over at most two AES blocks.
inline constexpr size_t kDiversificationInputBytesMin = 1;
inline constexpr size_t kDiversificationInputBytesMax = 31;

// The application id and system identifier citycard puts after the card number (see
// docs/crypto.md). They are constants of the issuing scheme: changing them changes every
// card's key.
inline constexpr std::array<uint8_t, 3> kCardKeyAid = {0xCC, 0x01, 0x01};
inline constexpr std::array<uint8_t, 7> kCardKeySystemId = {'C', 'I', 'T', 'Y', 'C', 'R', 'D'};
inline constexpr size_t kCardKeyDiversificationInputBytes =
    8 + kCardKeyAid.size() + kCardKeySystemId.size();
static_assert(kCardKeyDiversificationInputBytes <= kDiversificationInputBytesMax);

// AN10922 AES-128 key diversification: AES-CMAC under master16 over 0x01 || M, where M is
// `diversification_input`, padded (0x80 then zeros) to 32 bytes and finished with CMAC
// subkey K2 whenever 0x01 || M is shorter than 32 bytes, else finished with K1. (This differs
// from a plain CMAC of 0x01 || M when that is 16 bytes or shorter.)
// master16 must be 16 bytes and the input 1 to 31 bytes: other sizes are programmer errors
// (asserted), since both come from fixed-size fields.
Mac16 DiversifyAn10922(ByteView master16, ByteView diversification_input);

// The key of card `card_no`: DiversifyAn10922(master16, card_no as 8 bytes big-endian ||
// kCardKeyAid || kCardKeySystemId).
Mac16 DeriveCardKey(ByteView master16, uint64_t card_no);

}  // namespace citycard::crypto
