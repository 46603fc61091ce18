// The keyed hash of a national id number: the database stores this (and a masked form, see
// core/national_id.h), never the number itself, so that a stolen database does not give away
// who the holders are, while the same number always finds the same holder. A plain hash would
// not do: there are few enough valid id numbers to hash them all. See docs/crypto.md,
// "National id hash".
#pragma once

#include <string>
#include <string_view>

#include "core/bytes.h"

namespace citycard::crypto {

inline constexpr size_t kIdHashKeyBytes = 32;

// The lower-case hex HMAC-SHA256 (64 characters) of the id's bytes under id_hash_key. The id
// is hashed exactly as given: the caller passes the validated canonical form (18 characters,
// a final check character 'X' in upper case; core/national_id.h), so that one person has one
// hash. The key must be kIdHashKeyBytes bytes (asserted: it comes from the key file).
std::string HashNationalId(ByteView id_hash_key, std::string_view national_id);

}  // namespace citycard::crypto
