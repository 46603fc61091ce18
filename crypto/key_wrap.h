// AES key wrap (RFC 3394) with a 256-bit key-encryption key: how terminal keys are stored in
// the database (docs/crypto.md, "Terminal keys"). The wrapped form is 8 bytes longer than
// the key and carries its own integrity check, so a changed byte or a wrong wrapping key is
// detected on unwrapping.
#pragma once

#include "core/bytes.h"
#include "core/status.h"

namespace citycard::crypto {

inline constexpr size_t kWrapKeyBytes = 32;          // AES-256
inline constexpr size_t kWrappedKeyBytesMin = 16;    // RFC 3394 wraps at least two 64-bit blocks
inline constexpr size_t kWrappedKeyBytesMax = 64;    // plenty for any key citycard wraps
inline constexpr size_t kKeyWrapOverheadBytes = 8;   // the integrity check value

// The RFC 3394 wrapping of `key` under `wrap_key`.
// Kind::bad_input "invalid_wrap_key" when wrap_key is not 32 bytes; "invalid_key_length" when
// key is shorter than 16 or longer than 64 bytes or not a multiple of 8.
Result<Bytes> WrapKey(ByteView wrap_key, ByteView key);

// The key inside `wrapped`. Kind::bad_input "invalid_wrap_key" as above; "key_unwrap_failed"
// when the wrapped bytes were changed, have an impossible length, or were wrapped under
// another key. The message never contains key material.
Result<Bytes> UnwrapKey(ByteView wrap_key, ByteView wrapped);

}  // namespace citycard::crypto
