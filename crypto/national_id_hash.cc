#include "crypto/national_id_hash.h"

#include "core/status.h"
#include "crypto/mac.h"

namespace citycard::crypto {

std::string HashNationalId(ByteView id_hash_key, std::string_view national_id) {
  CITYCARD_ASSERT(id_hash_key.size() == kIdHashKeyBytes);
  HmacSha256 hmac(id_hash_key);
  const auto* bytes = reinterpret_cast<const uint8_t*>(national_id.data());
  return ToHex(hmac.Compute(ByteView(bytes, national_id.size())));
}

}  // namespace citycard::crypto
