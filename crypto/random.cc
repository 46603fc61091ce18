#include "crypto/random.h"

#include <openssl/rand.h>

#include <climits>

namespace citycard::crypto {

Status FillRandom(std::span<uint8_t> out) {
  CITYCARD_ASSERT(out.size() <= static_cast<size_t>(INT_MAX));
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    return Status::Internal("random_failed", "the system's random number generator failed");
  }
  return Status::Ok();
}

Bytes RandomBytes(size_t n) {
  Bytes out(n);
  Status s = FillRandom(out);
  CITYCARD_ASSERT(s.ok());
  return out;
}

}  // namespace citycard::crypto
