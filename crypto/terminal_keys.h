// Terminal keys: each terminal has its own random 256-bit HMAC-SHA256 key, issued at
// registration and stored wrapped (crypto/key_wrap.h). A key has a version (the record's
// terminal_key_version); rotation adds a new version and keeps the old ones, so that records
// signed before the rotation still verify, until an old version is revoked. See
// docs/crypto.md, "Terminal keys".
#pragma once

#include <cstdint>
#include <map>
#include <string_view>

#include "core/bytes.h"
#include "core/status.h"
#include "core/tap_record.h"
#include "crypto/mac.h"

namespace citycard::crypto {

inline constexpr size_t kTerminalKeyBytes = 32;

// 32 fresh random bytes (asserts if the system's random source fails).
Bytes GenerateTerminalKey();

// The outcome of checking a record's terminal MAC against a terminal's keys.
enum class TerminalMacCheck : uint8_t {
  valid = 0,
  unknown_key_version = 1,  // the record names a key version the terminal never had
  key_revoked = 2,          // the version existed but was revoked: what it signs is refused
  mac_mismatch = 3,         // the MAC does not match: the record was changed or forged
};
// "valid", "unknown_key_version", "key_revoked", "mac_mismatch".
std::string_view TerminalMacCheckName(TerminalMacCheck check);

// The key versions of one terminal, each ready to verify. Movable, not copyable. Not safe
// for concurrent use (the HMAC contexts are reused).
class TerminalKeyRing {
 public:
  // Adds `key32` as `version`. Kind::bad_input "invalid_terminal_key" when the key is not
  // kTerminalKeyBytes long; Kind::refused "terminal_key_version_exists" when the version is
  // already present (a version is never re-keyed).
  Status Add(uint8_t version, ByteView key32);

  // Marks `version` revoked: records claiming it fail with key_revoked from now on.
  // Kind::not_found "terminal_key_version_unknown" when the ring has no such version.
  Status Revoke(uint8_t version);

  // Checks record.terminal_mac under the key of record.terminal_key_version (constant time).
  TerminalMacCheck Check(const TapRecord& record) const;

  // The key of `version` for signing or verifying; nullptr when absent or revoked.
  const HmacSha256* Find(uint8_t version) const;

 private:
  struct Entry {
    HmacSha256 key;
    bool revoked = false;
  };
  std::map<uint8_t, Entry> entries_;
};

}  // namespace citycard::crypto
