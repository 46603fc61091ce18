// Message authentication codes and key derivation over OpenSSL 3 (EVP_MAC, EVP_KDF).
//
// The algorithms are fetched once per process (a fetch per call costs about five times
// more, see ../shared/design/PERFORMANCE.md) and each object keeps one keyed context that
// it re-initialises for every message. Because of that context an object is NOT safe to
// use from two threads at once; give each thread its own object (they are cheap to make
// and movable). Keys are copied into OpenSSL's context and never logged. Format notes and
// measured rates: docs/crypto.md.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "core/bytes.h"

namespace citycard::crypto {

using Mac32 = std::array<uint8_t, 32>;
using Mac16 = std::array<uint8_t, 16>;

inline constexpr size_t kAes128KeyBytes = 16;

namespace detail {
struct MacContextDeleter {
  void operator()(void* context) const;
};
using MacContext = std::unique_ptr<void, MacContextDeleter>;
}  // namespace detail

// HMAC-SHA256 (RFC 2104 / FIPS 198-1) under a fixed key of any length.
class HmacSha256 {
 public:
  // Keys the context. Any key length is accepted (HMAC hashes keys longer than a block).
  // Asserts if OpenSSL cannot create the context (out of memory: not recoverable).
  explicit HmacSha256(ByteView key);

  // The full 32-byte HMAC of `data`. Not thread-safe per object (reuses one context).
  Mac32 Compute(ByteView data) const;

 private:
  detail::MacContext context_;
};

// AES-128-CMAC (NIST SP 800-38B, RFC 4493) under a fixed 16-byte key.
class AesCmac {
 public:
  // `key16` must be exactly kAes128KeyBytes bytes long; anything else is a programmer error
  // (asserted), because key sizes are fixed by the key file and the diversification.
  explicit AesCmac(ByteView key16);

  // The full 16-byte CMAC of `data`. Not thread-safe per object (reuses one context).
  Mac16 Compute(ByteView data) const;

 private:
  detail::MacContext context_;
};

// True when a and b have the same length and the same bytes. The time taken depends only on
// the lengths, never on where the first difference is (CRYPTO_memcmp), so a forger cannot
// learn a MAC byte by byte from response times. Lengths are not secret.
bool ConstantTimeEqual(ByteView a, ByteView b);

// HKDF-SHA256 (RFC 5869): extract with `salt` (an empty salt means HashLen zero bytes, as the
// RFC says), then expand with `info` to exactly 32 bytes. Used for session keys.
Mac32 HkdfSha256(ByteView key, ByteView salt, ByteView info);

}  // namespace citycard::crypto
