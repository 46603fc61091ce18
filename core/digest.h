// A SHA-256 interface for the core. The ledger's hash chain (docs/ledger.md "Hash chain") needs
// SHA-256, but core/ must not touch OpenSSL; crypto/digest.h implements this interface, and
// tests of pure core logic may substitute a fake.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "core/bytes.h"

namespace citycard {

inline constexpr size_t kSha256Bytes = 32;
using Sha256Digest = std::array<uint8_t, kSha256Bytes>;

class Digester {
 public:
  virtual ~Digester() = default;
  // The SHA-256 of `data`. Never fails: an implementation that cannot compute a digest has
  // lost its crypto library, which is a fatal programmer or installation error (it asserts).
  // Must be safe to call from several threads at once.
  virtual Sha256Digest Sha256(ByteView data) const = 0;
};

}  // namespace citycard
