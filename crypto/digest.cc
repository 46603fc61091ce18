#include "crypto/digest.h"

#include <openssl/evp.h>

#include "core/status.h"

namespace citycard::crypto {

Sha256Digester::Sha256Digester() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)) {
  CITYCARD_ASSERT(md_ != nullptr);
}

Sha256Digester::~Sha256Digester() { EVP_MD_free(md_); }

namespace {

// A digest context per thread, made once and reused: EVP_Digest makes and frees one per call,
// which costs several times more than hashing a short input (a transfer id's key, a tap).
// Per thread, so that concurrent calls still share nothing mutable.
EVP_MD_CTX* ThreadContext() {
  struct Owner {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Owner() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Owner owner;
  CITYCARD_ASSERT(owner.ctx != nullptr);
  return owner.ctx;
}

}  // namespace

Sha256Digest Sha256Digester::Sha256(ByteView data) const {
  Sha256Digest out{};
  unsigned int size = 0;
  EVP_MD_CTX* ctx = ThreadContext();
  int rc = EVP_DigestInit_ex2(ctx, md_, nullptr);
  if (rc == 1) rc = EVP_DigestUpdate(ctx, data.data(), data.size());
  if (rc == 1) rc = EVP_DigestFinal_ex(ctx, out.data(), &size);
  CITYCARD_ASSERT(rc == 1 && size == kSha256Bytes);
  return out;
}

}  // namespace citycard::crypto
