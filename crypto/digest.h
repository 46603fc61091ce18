// SHA-256 over OpenSSL, implementing core's Digester (core/digest.h).
#pragma once

#include "core/digest.h"

struct evp_md_st;

namespace citycard::crypto {

class Sha256Digester final : public Digester {
 public:
  // Fetches OpenSSL's SHA-256 once (fetching per call is several times slower, see
  // PERFORMANCE.md). Asserts when OpenSSL has no SHA-256, which only a broken installation causes.
  Sha256Digester();
  ~Sha256Digester() override;
  Sha256Digester(const Sha256Digester&) = delete;
  Sha256Digester& operator=(const Sha256Digester&) = delete;

  Sha256Digest Sha256(ByteView data) const override;

 private:
  evp_md_st* md_;
};

}  // namespace citycard::crypto
