#include "crypto/mac.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "core/status.h"

namespace citycard::crypto {

namespace detail {
void MacContextDeleter::operator()(void* context) const {
  EVP_MAC_CTX_free(static_cast<EVP_MAC_CTX*>(context));
}
}  // namespace detail

namespace {

// Fetched once per process and never freed: the algorithm objects are immutable and shared,
// and freeing them at exit would race with threads still computing MACs.
EVP_MAC* FetchMac(const char* name) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, name, nullptr);
  CITYCARD_ASSERT(mac != nullptr);
  return mac;
}

EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* const mac = FetchMac(OSSL_MAC_NAME_HMAC);
  return mac;
}

EVP_MAC* CmacAlgorithm() {
  static EVP_MAC* const mac = FetchMac(OSSL_MAC_NAME_CMAC);
  return mac;
}

EVP_MAC_CTX* Raw(const detail::MacContext& context) {
  return static_cast<EVP_MAC_CTX*>(context.get());
}

detail::MacContext NewKeyedContext(EVP_MAC* algorithm, ByteView key, const OSSL_PARAM* params) {
  detail::MacContext context(EVP_MAC_CTX_new(algorithm));
  CITYCARD_ASSERT(context != nullptr);
  // A null key pointer means "keep the current key" to OpenSSL, so an empty key must still
  // be passed as a valid pointer.
  static const uint8_t kNoKeyBytes[1] = {0};
  const uint8_t* key_data = key.empty() ? kNoKeyBytes : key.data();
  int ok = EVP_MAC_init(Raw(context), key_data, key.size(), params);
  CITYCARD_ASSERT(ok == 1);
  return context;
}

// Re-initialising with a null key keeps the key already set (OpenSSL 3 HMAC and CMAC both
// restart from the keyed state), which avoids a context allocation per message.
template <size_t N>
std::array<uint8_t, N> ComputeWith(EVP_MAC_CTX* context, ByteView data) {
  std::array<uint8_t, N> out{};
  size_t written = 0;
  int ok = EVP_MAC_init(context, nullptr, 0, nullptr) == 1 &&
           EVP_MAC_update(context, data.data(), data.size()) == 1 &&
           EVP_MAC_final(context, out.data(), &written, out.size()) == 1;
  CITYCARD_ASSERT(ok && written == N);
  return out;
}

}  // namespace

HmacSha256::HmacSha256(ByteView key) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  context_ = NewKeyedContext(HmacAlgorithm(), key, params);
}

Mac32 HmacSha256::Compute(ByteView data) const {
  return ComputeWith<32>(Raw(context_), data);
}

AesCmac::AesCmac(ByteView key16) {
  CITYCARD_ASSERT(key16.size() == kAes128KeyBytes);
  char cipher[] = "AES-128-CBC";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
      OSSL_PARAM_construct_end(),
  };
  context_ = NewKeyedContext(CmacAlgorithm(), key16, params);
}

Mac16 AesCmac::Compute(ByteView data) const {
  return ComputeWith<16>(Raw(context_), data);
}

bool ConstantTimeEqual(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Mac32 HkdfSha256(ByteView key, ByteView salt, ByteView info) {
  static EVP_KDF* const hkdf = [] {
    EVP_KDF* kdf = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr);
    CITYCARD_ASSERT(kdf != nullptr);
    return kdf;
  }();
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> context(EVP_KDF_CTX_new(hkdf),
                                                                     &EVP_KDF_CTX_free);
  CITYCARD_ASSERT(context != nullptr);
  char digest[] = "SHA256";
  // OSSL_PARAM takes non-const pointers but only reads the key, salt and info.
  auto* key_data = const_cast<uint8_t*>(key.data());
  auto* salt_data = const_cast<uint8_t*>(salt.data());
  auto* info_data = const_cast<uint8_t*>(info.data());
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key_data, key.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt_data, salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info_data, info.size());
  }
  params[n] = OSSL_PARAM_construct_end();
  Mac32 out{};
  int ok = EVP_KDF_derive(context.get(), out.data(), out.size(), params);
  CITYCARD_ASSERT(ok == 1);
  return out;
}

}  // namespace citycard::crypto
