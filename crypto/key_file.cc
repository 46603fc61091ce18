#include "crypto/key_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "crypto/random.h"

namespace citycard::crypto {

namespace {

using nlohmann::json;

std::string ErrnoText(int error) { return std::strerror(error); }

Status WriteFailed(const std::string& what, const std::string& path, int error) {
  return Status::Internal("key_file_write_failed",
                          what + " " + path + " failed: " + ErrnoText(error));
}

Status Invalid(const std::string& path, const std::string& why) {
  return Status::BadInput("key_file_invalid", "key file " + path + ": " + why);
}

std::string OctalMode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Makes a rename or link in `directory` durable.
Status SyncDirectory(const std::string& directory) {
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return WriteFailed("opening directory", directory, errno);
  int rc = ::fsync(fd);
  int error = errno;
  ::close(fd);
  if (rc != 0) return WriteFailed("fsync of directory", directory, error);
  return Status::Ok();
}

// Writes `text` to a new temporary file beside `path` (mode 0600, O_EXCL, fsync'ed) and
// stores its name in *temporary.
Status WriteTemporary(const std::string& path, const std::string& text, std::string* temporary) {
  *temporary = path + ".tmp-" + ToHex(RandomBytes(8));
  int fd = ::open(temporary->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kKeyFileMode);
  if (fd < 0) return WriteFailed("creating", *temporary, errno);
  // The umask can only remove bits; fchmod makes the mode exact whatever the umask is.
  bool ok = ::fchmod(fd, kKeyFileMode) == 0;
  size_t written = 0;
  while (ok && written < text.size()) {
    ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  int error = errno;
  ok = (::close(fd) == 0) && ok;
  if (!ok) {
    ::unlink(temporary->c_str());
    return WriteFailed("writing", *temporary, error);
  }
  return Status::Ok();
}

Result<std::string> ReadSecureFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    int error = errno;
    if (error == ENOENT) {
      return Status::NotFound("key_file_not_found",
                              "no key file at " + path + " (create one with `citycard init`)");
    }
    return Status::Internal("key_file_unreadable", "cannot open key file " + path + ": " +
                                                       ErrnoText(error));
  }
  struct stat info {};
  // The checks are on the open descriptor, so the file checked is the file read.
  if (::fstat(fd, &info) != 0) {
    int error = errno;
    ::close(fd);
    return Status::Internal("key_file_unreadable", "cannot stat key file " + path + ": " +
                                                       ErrnoText(error));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return Invalid(path, "not a regular file");
  }
  if ((info.st_mode & 077) != 0) {
    ::close(fd);
    return Status::BadInput(
        "key_file_insecure",
        "key file " + path + " has mode " + OctalMode(info.st_mode) +
            ", so users other than its owner may read it; it must be readable by its owner "
            "alone: run `chmod 600 " + path + "` (and consider rotating the keys if others read it)");
  }
  if (static_cast<size_t>(info.st_size) > kKeyFileBytesMax) {
    ::close(fd);
    return Invalid(path, "larger than " + std::to_string(kKeyFileBytesMax) + " bytes");
  }
  std::string text(static_cast<size_t>(info.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (got != text.size()) {
    return Status::Internal("key_file_unreadable", "short read of key file " + path);
  }
  return text;
}

// A hex key field of exactly `bytes` bytes. The message names the field, never its value.
Status ReadKeyField(const json& document, const char* field, size_t bytes,
                    const std::string& path, Bytes* out) {
  auto it = document.find(field);
  if (it == document.end() || !it->is_string()) return Invalid(path, std::string("missing ") + field);
  if (!FromHex(it->get<std::string>(), out) || out->size() != bytes) {
    return Invalid(path, std::string(field) + " must be " + std::to_string(bytes * 2) +
                             " hex characters");
  }
  return Status::Ok();
}

void Cleanse(Bytes& bytes) {
  if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
}

}  // namespace

KeyFile::~KeyFile() {
  for (auto& [version, key] : card_master_keys_) Cleanse(key);
  Cleanse(wrap_key_);
  Cleanse(id_hash_key_);
}

Result<ByteView> KeyFile::CardMasterKey(uint8_t version) const {
  auto it = card_master_keys_.find(version);
  if (it == card_master_keys_.end()) {
    return Status::NotFound("card_key_version_unknown",
                            "the key file has no card master key version " +
                                std::to_string(version));
  }
  return ByteView(it->second);
}

std::string KeyFile::Serialize() const {
  json keys = json::array();
  for (const auto& [version, key] : card_master_keys_) {
    keys.push_back({{"version", version}, {"key", ToHex(key)}});
  }
  Bytes seed = core_signer_->PrivateKey();
  json document = {
      {"format", kKeyFileFormatName},
      {"version", kKeyFileFormatVersion},
      {"card_master_keys", keys},
      {"current_card_key_version", current_card_key_version_},
      {"terminal_wrap_key", ToHex(wrap_key_)},
      {"national_id_hash_key", ToHex(id_hash_key_)},
      {"core_signing_key", ToHex(seed)},
      {"core_public_key", ToHex(core_signer_->PublicKey())},
  };
  Cleanse(seed);
  return document.dump(2) + "\n";
}

Result<KeyFile> KeyFile::Parse(const std::string& path, const std::string& text) {
  // No exception text is passed on: a parse error message may quote the bytes near the error,
  // which in this file are keys.
  json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) return Invalid(path, "not a JSON object");
  if (document.value("format", "") != kKeyFileFormatName) {
    return Invalid(path, std::string("format is not \"") + kKeyFileFormatName + "\"");
  }
  auto version = document.find("version");
  if (version == document.end() || !version->is_number_integer()) return Invalid(path, "missing version");
  if (version->get<int64_t>() != kKeyFileFormatVersion) {
    return Status::BadInput("key_file_version_unsupported",
                            "key file " + path + " has format version " +
                                std::to_string(version->get<int64_t>()) + "; this program reads version " +
                                std::to_string(kKeyFileFormatVersion));
  }
  KeyFile file;
  file.path_ = path;
  auto keys = document.find("card_master_keys");
  if (keys == document.end() || !keys->is_array() || keys->empty()) {
    return Invalid(path, "card_master_keys must be a non-empty array");
  }
  for (const json& entry : *keys) {
    if (!entry.is_object() || !entry.contains("version") || !entry["version"].is_number_integer()) {
      return Invalid(path, "a card_master_keys entry has no integer version");
    }
    int64_t v = entry["version"].get<int64_t>();
    if (v < 1 || v > 255) return Invalid(path, "card key versions must be 1 to 255");
    Bytes key;
    CITYCARD_RETURN_IF_ERROR(ReadKeyField(entry, "key", kCardMasterKeyBytes, path, &key));
    if (!file.card_master_keys_.emplace(static_cast<uint8_t>(v), std::move(key)).second) {
      return Invalid(path, "card key version " + std::to_string(v) + " appears twice");
    }
  }
  auto current = document.find("current_card_key_version");
  if (current == document.end() || !current->is_number_integer() ||
      current->get<int64_t>() < 1 || current->get<int64_t>() > 255 ||
      file.card_master_keys_.count(static_cast<uint8_t>(current->get<int64_t>())) == 0) {
    return Invalid(path, "current_card_key_version must name a version in card_master_keys");
  }
  file.current_card_key_version_ = static_cast<uint8_t>(current->get<int64_t>());
  CITYCARD_RETURN_IF_ERROR(
      ReadKeyField(document, "terminal_wrap_key", kKeyFileWrapKeyBytes, path, &file.wrap_key_));
  CITYCARD_RETURN_IF_ERROR(ReadKeyField(document, "national_id_hash_key", kKeyFileIdHashKeyBytes,
                                        path, &file.id_hash_key_));
  Bytes seed;
  CITYCARD_RETURN_IF_ERROR(
      ReadKeyField(document, "core_signing_key", kEd25519SeedBytes, path, &seed));
  auto signer = Ed25519Signer::FromPrivateKey(seed);
  Cleanse(seed);
  if (!signer.ok()) return Invalid(path, "core_signing_key is not an Ed25519 private key");
  file.core_signer_.emplace(std::move(signer).value());
  // The public key is written for people to read; when present it must match.
  if (document.contains("core_public_key") &&
      document["core_public_key"] != ToHex(file.core_signer_->PublicKey())) {
    return Invalid(path, "core_public_key does not belong to core_signing_key");
  }
  return file;
}

Result<KeyFile> KeyFile::Create(const std::string& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) == 0) {
    return Status::Refused("key_file_exists", "a file already exists at " + path +
                                                  "; it is never overwritten (move it away first "
                                                  "if you really mean to replace the keys)");
  }
  KeyFile file;
  file.path_ = path;
  file.card_master_keys_.emplace(1, RandomBytes(kCardMasterKeyBytes));
  file.current_card_key_version_ = 1;
  file.wrap_key_ = RandomBytes(kKeyFileWrapKeyBytes);
  file.id_hash_key_ = RandomBytes(kKeyFileIdHashKeyBytes);
  file.core_signer_.emplace(Ed25519Signer::Generate());

  std::string text = file.Serialize();
  std::string temporary;
  Status written = WriteTemporary(path, text, &temporary);
  OPENSSL_cleanse(text.data(), text.size());
  CITYCARD_RETURN_IF_ERROR(written);
  // link() never replaces an existing name, unlike rename(): two concurrent `init`s cannot
  // both succeed, and a file created since the check above is not overwritten.
  int rc = ::link(temporary.c_str(), path.c_str());
  int error = errno;
  ::unlink(temporary.c_str());
  if (rc != 0) {
    if (error == EEXIST) {
      return Status::Refused("key_file_exists", "a file already exists at " + path +
                                                    "; it is never overwritten");
    }
    return WriteFailed("linking", path, error);
  }
  CITYCARD_RETURN_IF_ERROR(SyncDirectory(DirectoryOf(path)));
  return file;
}

Result<KeyFile> KeyFile::Load(const std::string& path) {
  auto text = ReadSecureFile(path);
  if (!text.ok()) return text.status();
  auto file = Parse(path, *text);
  OPENSSL_cleanse(text->data(), text->size());
  return file;
}

Status KeyFile::RotateCardKey() {
  if (current_card_key_version_ == 255) {
    return Status::Refused("card_key_versions_exhausted",
                           "card key version 255 is the last one the tap record can carry");
  }
  uint8_t next = static_cast<uint8_t>(current_card_key_version_ + 1);
  card_master_keys_.emplace(next, RandomBytes(kCardMasterKeyBytes));
  current_card_key_version_ = next;
  std::string text = Serialize();
  std::string temporary;
  Status written = WriteTemporary(path_, text, &temporary);
  OPENSSL_cleanse(text.data(), text.size());
  if (written.ok() && ::rename(temporary.c_str(), path_.c_str()) != 0) {
    written = WriteFailed("renaming over", path_, errno);
    ::unlink(temporary.c_str());
  }
  if (!written.ok()) {
    // Keep memory and disk in agreement: the new version exists in neither.
    Cleanse(card_master_keys_[next]);
    card_master_keys_.erase(next);
    current_card_key_version_ = static_cast<uint8_t>(next - 1);
    return written;
  }
  // The rename happened: the new file is what a reader sees now, durable or not yet.
  return SyncDirectory(DirectoryOf(path_));
}

}  // namespace citycard::crypto
