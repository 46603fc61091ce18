#include "crypto/terminal_keys.h"

#include "crypto/random.h"
#include "crypto/tap_auth.h"

namespace citycard::crypto {

Bytes GenerateTerminalKey() { return RandomBytes(kTerminalKeyBytes); }

std::string_view TerminalMacCheckName(TerminalMacCheck check) {
  switch (check) {
    case TerminalMacCheck::valid: return "valid";
    case TerminalMacCheck::unknown_key_version: return "unknown_key_version";
    case TerminalMacCheck::key_revoked: return "key_revoked";
    case TerminalMacCheck::mac_mismatch: return "mac_mismatch";
  }
  return "unknown";
}

Status TerminalKeyRing::Add(uint8_t version, ByteView key32) {
  if (key32.size() != kTerminalKeyBytes) {
    return Status::BadInput("invalid_terminal_key", "a terminal key must be 32 bytes");
  }
  if (entries_.count(version) != 0) {
    return Status::Refused("terminal_key_version_exists",
                           "terminal key version " + std::to_string(version) + " already exists");
  }
  entries_.emplace(version, Entry{HmacSha256(key32), false});
  return Status::Ok();
}

Status TerminalKeyRing::Revoke(uint8_t version) {
  auto it = entries_.find(version);
  if (it == entries_.end()) {
    return Status::NotFound("terminal_key_version_unknown",
                            "no terminal key version " + std::to_string(version));
  }
  it->second.revoked = true;
  return Status::Ok();
}

TerminalMacCheck TerminalKeyRing::Check(const TapRecord& record) const {
  auto it = entries_.find(record.terminal_key_version);
  if (it == entries_.end()) return TerminalMacCheck::unknown_key_version;
  if (it->second.revoked) return TerminalMacCheck::key_revoked;
  return VerifyTerminalMac(it->second.key, record) ? TerminalMacCheck::valid
                                                   : TerminalMacCheck::mac_mismatch;
}

const HmacSha256* TerminalKeyRing::Find(uint8_t version) const {
  auto it = entries_.find(version);
  if (it == entries_.end() || it->second.revoked) return nullptr;
  return &it->second.key;
}

}  // namespace citycard::crypto
