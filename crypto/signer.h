// Ed25519 signatures (RFC 8032) over OpenSSL 3: the core signs batch acknowledgements and
// medical settlement vouchers; terminals and auditors verify with the exported public key.
// Signing is about 31 k/s per core, verifying 12 k/s: sign per batch, never per tap.
// Key and signature formats: docs/crypto.md, "Core signatures".
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "core/bytes.h"
#include "core/status.h"

namespace citycard::crypto {

inline constexpr size_t kEd25519SeedBytes = 32;
inline constexpr size_t kEd25519PublicKeyBytes = 32;
inline constexpr size_t kEd25519SignatureBytes = 64;

using Ed25519Signature = std::array<uint8_t, kEd25519SignatureBytes>;
using Ed25519PublicKey = std::array<uint8_t, kEd25519PublicKeyBytes>;

namespace detail {
struct PkeyDeleter {
  void operator()(void* pkey) const;
};
using Pkey = std::unique_ptr<void, PkeyDeleter>;
}  // namespace detail

// An Ed25519 private key. Movable, not copyable. Signing is thread-safe (each call makes its
// own digest context; the key object is only read).
class Ed25519Signer {
 public:
  // The key whose RFC 8032 private key (the 32-byte seed) is `seed32`.
  // Kind::bad_input "invalid_ed25519_key" when seed32 is not exactly 32 bytes. The message
  // never contains key bytes.
  static Result<Ed25519Signer> FromPrivateKey(ByteView seed32);

  // A fresh key from the system's random source (asserts if that source fails).
  static Ed25519Signer Generate();

  // The 64-byte signature of `message` (Ed25519 is deterministic: same key, same message,
  // same signature).
  Ed25519Signature Sign(ByteView message) const;

  Ed25519PublicKey PublicKey() const;

  // The 32-byte seed, for writing into the key file only. The caller must not log it.
  Bytes PrivateKey() const;

 private:
  explicit Ed25519Signer(detail::Pkey key) : key_(std::move(key)) {}
  detail::Pkey key_;
};

// True when signature64 is a valid Ed25519 signature of `message` under public_key32.
// False (never an error) for a key or signature of the wrong size or an invalid point.
bool VerifyEd25519(ByteView public_key32, ByteView message, ByteView signature64);

}  // namespace citycard::crypto
