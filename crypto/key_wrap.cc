#include "crypto/key_wrap.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>

namespace citycard::crypto {

namespace {

constexpr size_t kSemiblockBytes = 8;

EVP_CIPHER* Aes256Wrap() {
  static EVP_CIPHER* const cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-WRAP", nullptr);
    CITYCARD_ASSERT(c != nullptr);
    return c;
  }();
  return cipher;
}

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

// Runs one wrap (encrypt) or unwrap (decrypt); false when OpenSSL refuses, which for an
// unwrap means the integrity check failed.
bool RunWrap(ByteView wrap_key, ByteView in, bool encrypt, Bytes* out) {
  CipherContext context(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  CITYCARD_ASSERT(context != nullptr);
  EVP_CIPHER_CTX_set_flags(context.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_CipherInit_ex2(context.get(), Aes256Wrap(), wrap_key.data(), nullptr, encrypt ? 1 : 0,
                         nullptr) != 1) {
    return false;
  }
  out->assign(in.size() + kKeyWrapOverheadBytes, 0);
  int length = 0;
  int final_length = 0;
  bool ok = EVP_CipherUpdate(context.get(), out->data(), &length, in.data(),
                             static_cast<int>(in.size())) == 1 &&
            EVP_CipherFinal_ex(context.get(), out->data() + length, &final_length) == 1;
  if (!ok) {
    OPENSSL_cleanse(out->data(), out->size());
    out->clear();
    return false;
  }
  out->resize(static_cast<size_t>(length + final_length));
  return true;
}

Status CheckWrapKey(ByteView wrap_key) {
  if (wrap_key.size() != kWrapKeyBytes) {
    return Status::BadInput("invalid_wrap_key", "the key-wrapping key must be 32 bytes (AES-256)");
  }
  return Status::Ok();
}

}  // namespace

Result<Bytes> WrapKey(ByteView wrap_key, ByteView key) {
  CITYCARD_RETURN_IF_ERROR(CheckWrapKey(wrap_key));
  if (key.size() < kWrappedKeyBytesMin || key.size() > kWrappedKeyBytesMax ||
      key.size() % kSemiblockBytes != 0) {
    return Status::BadInput("invalid_key_length",
                            "a wrapped key must be 16 to 64 bytes long, a multiple of 8");
  }
  Bytes out;
  bool ok = RunWrap(wrap_key, key, /*encrypt=*/true, &out);
  CITYCARD_ASSERT(ok);  // wrapping a well-sized key cannot fail
  CITYCARD_ASSERT(out.size() == key.size() + kKeyWrapOverheadBytes);
  return out;
}

Result<Bytes> UnwrapKey(ByteView wrap_key, ByteView wrapped) {
  CITYCARD_RETURN_IF_ERROR(CheckWrapKey(wrap_key));
  Status failed = Status::BadInput("key_unwrap_failed",
                                   "the wrapped key does not unwrap under this wrapping key "
                                   "(changed, truncated, or wrapped under another key)");
  if (wrapped.size() < kWrappedKeyBytesMin + kKeyWrapOverheadBytes ||
      wrapped.size() > kWrappedKeyBytesMax + kKeyWrapOverheadBytes ||
      wrapped.size() % kSemiblockBytes != 0) {
    return failed;
  }
  Bytes out;
  if (!RunWrap(wrap_key, wrapped, /*encrypt=*/false, &out)) return failed;
  if (out.size() != wrapped.size() - kKeyWrapOverheadBytes) return failed;
  return out;
}

}  // namespace citycard::crypto
