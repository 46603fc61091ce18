// Cryptographically secure random bytes (OpenSSL's DRBG), for keys and nonces.
#pragma once

#include <cstddef>

#include "core/bytes.h"
#include "core/status.h"

namespace citycard::crypto {

// Fills `out` with random bytes. Fails (Kind::internal, "random_failed") only when the
// operating system's entropy source fails, which callers must treat as fatal for the request.
Status FillRandom(std::span<uint8_t> out);

// n random bytes; asserts on failure of the entropy source (keys must never be weak).
Bytes RandomBytes(size_t n);

}  // namespace citycard::crypto
