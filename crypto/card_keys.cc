#include "crypto/card_keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>

#include "core/status.h"

namespace citycard::crypto {

namespace {

constexpr size_t kBlockBytes = 16;
using Block = std::array<uint8_t, kBlockBytes>;

// The constant of the CMAC subkey doubling in GF(2^128) (NIST SP 800-38B, R_128).
constexpr uint8_t kRb = 0x87;

EVP_CIPHER* Aes128Ecb() {
  static EVP_CIPHER* const cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr);
    CITYCARD_ASSERT(c != nullptr);
    return c;
  }();
  return cipher;
}

// Encrypts single blocks under one key: a tiny wrapper around an ECB context, because
// AN10922 needs the raw block cipher (for the subkeys and the two CBC steps).
class BlockCipher {
 public:
  explicit BlockCipher(ByteView key16) : context_(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free) {
    CITYCARD_ASSERT(context_ != nullptr);
    int ok = EVP_EncryptInit_ex2(context_.get(), Aes128Ecb(), key16.data(), nullptr, nullptr) == 1 &&
             EVP_CIPHER_CTX_set_padding(context_.get(), 0) == 1;
    CITYCARD_ASSERT(ok);
  }

  Block Encrypt(const Block& in) const {
    Block out{};
    int length = 0;
    int ok = EVP_EncryptUpdate(context_.get(), out.data(), &length, in.data(),
                               static_cast<int>(in.size()));
    CITYCARD_ASSERT(ok == 1 && length == static_cast<int>(kBlockBytes));
    return out;
  }

 private:
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> context_;
};

// Multiplication by x in GF(2^128): shift left one bit, reduce with Rb on carry.
Block Double(const Block& in) {
  Block out{};
  for (size_t i = 0; i < kBlockBytes; ++i) {
    uint8_t next = i + 1 < kBlockBytes ? in[i + 1] : 0;
    out[i] = static_cast<uint8_t>((in[i] << 1) | (next >> 7));
  }
  if (in[0] & 0x80) out[kBlockBytes - 1] ^= kRb;
  return out;
}

Block Xor(const Block& a, const Block& b) {
  Block out{};
  for (size_t i = 0; i < kBlockBytes; ++i) out[i] = a[i] ^ b[i];
  return out;
}

}  // namespace

Mac16 DiversifyAn10922(ByteView master16, ByteView diversification_input) {
  CITYCARD_ASSERT(master16.size() == kAes128KeyBytes);
  CITYCARD_ASSERT(diversification_input.size() >= kDiversificationInputBytesMin &&
                  diversification_input.size() <= kDiversificationInputBytesMax);
  BlockCipher aes(master16);
  Block k1 = Double(aes.Encrypt(Block{}));
  Block k2 = Double(k1);

  // D = 0x01 || M, padded to two blocks when shorter.
  std::array<uint8_t, 2 * kBlockBytes> d{};
  d[0] = 0x01;
  std::copy(diversification_input.begin(), diversification_input.end(), d.begin() + 1);
  size_t used = 1 + diversification_input.size();
  bool padded = used < d.size();
  if (padded) d[used] = 0x80;

  Block first{}, last{};
  std::copy(d.begin(), d.begin() + kBlockBytes, first.begin());
  std::copy(d.begin() + kBlockBytes, d.end(), last.begin());
  last = Xor(last, padded ? k2 : k1);
  Block result = aes.Encrypt(Xor(aes.Encrypt(first), last));
  OPENSSL_cleanse(k1.data(), k1.size());
  OPENSSL_cleanse(k2.data(), k2.size());
  return result;
}

Mac16 DeriveCardKey(ByteView master16, uint64_t card_no) {
  Bytes input;
  input.reserve(kCardKeyDiversificationInputBytes);
  ByteWriter w(&input);
  w.U64(card_no);
  w.Raw(kCardKeyAid);
  w.Raw(kCardKeySystemId);
  return DiversifyAn10922(master16, input);
}

}  // namespace citycard::crypto
