#include "crypto/signer.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/random.h"

namespace citycard::crypto {

namespace detail {
void PkeyDeleter::operator()(void* pkey) const { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey)); }
}  // namespace detail

namespace {

EVP_PKEY* Raw(const detail::Pkey& key) { return static_cast<EVP_PKEY*>(key.get()); }

using DigestContext = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

DigestContext NewDigestContext() {
  DigestContext context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  CITYCARD_ASSERT(context != nullptr);
  return context;
}

}  // namespace

Result<Ed25519Signer> Ed25519Signer::FromPrivateKey(ByteView seed32) {
  if (seed32.size() != kEd25519SeedBytes) {
    return Status::BadInput("invalid_ed25519_key", "an Ed25519 private key must be 32 bytes");
  }
  detail::Pkey key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed32.data(), seed32.size()));
  if (key == nullptr) {
    return Status::BadInput("invalid_ed25519_key", "OpenSSL rejected the Ed25519 private key");
  }
  return Ed25519Signer(std::move(key));
}

Ed25519Signer Ed25519Signer::Generate() {
  Bytes seed = RandomBytes(kEd25519SeedBytes);
  auto signer = FromPrivateKey(seed);
  OPENSSL_cleanse(seed.data(), seed.size());
  CITYCARD_ASSERT(signer.ok());
  return std::move(signer).value();
}

Ed25519Signature Ed25519Signer::Sign(ByteView message) const {
  DigestContext context = NewDigestContext();
  Ed25519Signature signature{};
  size_t length = signature.size();
  int ok = EVP_DigestSignInit(context.get(), nullptr, nullptr, nullptr, Raw(key_)) == 1 &&
           EVP_DigestSign(context.get(), signature.data(), &length, message.data(),
                          message.size()) == 1;
  CITYCARD_ASSERT(ok && length == kEd25519SignatureBytes);
  return signature;
}

Ed25519PublicKey Ed25519Signer::PublicKey() const {
  Ed25519PublicKey out{};
  size_t length = out.size();
  int ok = EVP_PKEY_get_raw_public_key(Raw(key_), out.data(), &length);
  CITYCARD_ASSERT(ok == 1 && length == kEd25519PublicKeyBytes);
  return out;
}

Bytes Ed25519Signer::PrivateKey() const {
  Bytes out(kEd25519SeedBytes);
  size_t length = out.size();
  int ok = EVP_PKEY_get_raw_private_key(Raw(key_), out.data(), &length);
  CITYCARD_ASSERT(ok == 1 && length == kEd25519SeedBytes);
  return out;
}

bool VerifyEd25519(ByteView public_key32, ByteView message, ByteView signature64) {
  if (public_key32.size() != kEd25519PublicKeyBytes) return false;
  if (signature64.size() != kEd25519SignatureBytes) return false;
  detail::Pkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key32.data(),
                                                public_key32.size()));
  if (key == nullptr) return false;
  DigestContext context = NewDigestContext();
  if (EVP_DigestVerifyInit(context.get(), nullptr, nullptr, nullptr, Raw(key)) != 1) return false;
  return EVP_DigestVerify(context.get(), signature64.data(), signature64.size(), message.data(),
                          message.size()) == 1;
}

}  // namespace citycard::crypto
