#include "crypto/digest.h"

#include <openssl/evp.h>

#include "core/status.h"

namespace citycard::crypto {

Sha256Digester::Sha256Digester() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)) {
  CITYCARD_ASSERT(md_ != nullptr);
}

Sha256Digester::~Sha256Digester() { EVP_MD_free(md_); }

Sha256Digest Sha256Digester::Sha256(ByteView data) const {
  Sha256Digest out{};
  unsigned int size = 0;
  // EVP_Digest uses a fresh context per call, so concurrent calls share nothing mutable.
  int rc = EVP_Digest(data.data(), data.size(), out.data(), &size, md_, nullptr);
  CITYCARD_ASSERT(rc == 1 && size == kSha256Bytes);
  return out;
}

}  // namespace citycard::crypto
