// The master key file: every long-lived secret of a citycard installation, in one file that
// only its owner can read. Created by `citycard init`, read by every command that needs a key.
// Format (JSON, versioned) and handling rules: docs/crypto.md, "Key file".
//
// No key ever appears in an error message or a log line: messages name the file, the field
// and what is wrong with it, never the bytes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/bytes.h"
#include "core/status.h"
#include "crypto/signer.h"

namespace citycard::crypto {

inline constexpr int kKeyFileFormatVersion = 1;
inline constexpr char kKeyFileFormatName[] = "citycard-keys";
inline constexpr size_t kKeyFileBytesMax = 64 * 1024;     // a sane file is about 1 KiB
inline constexpr size_t kCardMasterKeyBytes = 16;         // AES-128 (AN10922)
inline constexpr size_t kKeyFileWrapKeyBytes = 32;        // AES-256 key wrap
inline constexpr size_t kKeyFileIdHashKeyBytes = 32;      // HMAC-SHA256
inline constexpr unsigned kKeyFileMode = 0600;

class KeyFile {
 public:
  // Generates fresh keys (card master key version 1, the wrapping key, the id-hashing key, the
  // core's Ed25519 key) and writes them to `path` with mode 0600, atomically: a temporary file
  // in the same directory (O_CREAT|O_EXCL, fsync) is hard-linked to `path`, which fails rather
  // than replaces when `path` exists; then the directory is fsync'ed.
  // Failures: Kind::refused "key_file_exists" when `path` exists (it is never overwritten);
  // Kind::internal "key_file_write_failed" on an I/O error (the message names the call and
  // errno text; nothing is left at `path`).
  static Result<KeyFile> Create(const std::string& path);

  // Reads and checks the key file at `path`.
  // Failures: Kind::not_found "key_file_not_found" when there is no such file;
  // Kind::bad_input "key_file_insecure" when group or others have any permission on it (the
  // message names the mode and the fix, chmod 600); Kind::bad_input "key_file_invalid" when
  // it is not a regular file, too large, not valid JSON, or a field is missing or malformed
  // (the message names the field); Kind::bad_input "key_file_version_unsupported" for a
  // format version this program does not know; Kind::internal "key_file_unreadable" on an
  // I/O error.
  static Result<KeyFile> Load(const std::string& path);

  // Adds card master key version CurrentCardKeyVersion() + 1, makes it current, and rewrites
  // the file atomically (temporary file, fsync, rename, fsync of the directory). Older
  // versions stay, so cards issued under them keep verifying. Kind::refused
  // "card_key_versions_exhausted" after version 255; "key_file_write_failed" on I/O errors
  // (the file on disk is then unchanged).
  Status RotateCardKey();

  KeyFile(KeyFile&&) = default;
  KeyFile& operator=(KeyFile&&) = default;
  KeyFile(const KeyFile&) = delete;
  KeyFile& operator=(const KeyFile&) = delete;
  ~KeyFile();

  // The issuer master key of card key `version` (16 bytes); Kind::not_found
  // "card_key_version_unknown" when the file has no such version. The view lives as long
  // as this object.
  Result<ByteView> CardMasterKey(uint8_t version) const;
  // The version new cards are issued under (the highest).
  uint8_t CurrentCardKeyVersion() const { return current_card_key_version_; }
  // The AES-256 key that wraps terminal keys (32 bytes).
  ByteView WrapKey() const { return wrap_key_; }
  // The HMAC-SHA256 key of national id hashes (32 bytes).
  ByteView IdHashKey() const { return id_hash_key_; }
  // The core's Ed25519 signing key.
  const Ed25519Signer& CoreSigner() const { return *core_signer_; }
  const std::string& path() const { return path_; }

 private:
  KeyFile() = default;
  static Result<KeyFile> Parse(const std::string& path, const std::string& text);
  std::string Serialize() const;

  std::string path_;
  std::map<uint8_t, Bytes> card_master_keys_;
  uint8_t current_card_key_version_ = 0;
  Bytes wrap_key_;
  Bytes id_hash_key_;
  std::optional<Ed25519Signer> core_signer_;
};

}  // namespace citycard::crypto
