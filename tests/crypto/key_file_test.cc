#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "crypto/key_file.h"

using namespace citycard;
using namespace citycard::crypto;

namespace {

// A fresh directory under the system's temporary directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "citycard-keys-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteSecure(const std::string& path, const std::string& text) {
  { std::ofstream(path) << text; }
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
}

unsigned ModeOf(const std::string& path) {
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  return info.st_mode & 07777;
}

// The key strings of a file, to check that no message ever contains one.
std::vector<std::string> KeyStrings(const std::string& text) {
  auto document = nlohmann::json::parse(text);
  std::vector<std::string> keys = {document["terminal_wrap_key"], document["national_id_hash_key"],
                                   document["core_signing_key"]};
  for (const auto& entry : document["card_master_keys"]) keys.push_back(entry["key"]);
  return keys;
}

}  // namespace

TEST_CASE("A created key file has mode 0600 and loads back with the same keys", "[crypto][key_file]") {
  TempDir dir;
  std::string path = dir.File("citycard.keys");
  auto created = KeyFile::Create(path);
  REQUIRE(created.ok());
  REQUIRE(ModeOf(path) == 0600);
  auto loaded = KeyFile::Load(path);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->CurrentCardKeyVersion() == 1);
  REQUIRE(created->CurrentCardKeyVersion() == 1);
  REQUIRE(loaded->CardMasterKey(1)->size() == kCardMasterKeyBytes);
  REQUIRE(Bytes(loaded->CardMasterKey(1)->begin(), loaded->CardMasterKey(1)->end()) ==
          Bytes(created->CardMasterKey(1)->begin(), created->CardMasterKey(1)->end()));
  REQUIRE(Bytes(loaded->WrapKey().begin(), loaded->WrapKey().end()) ==
          Bytes(created->WrapKey().begin(), created->WrapKey().end()));
  REQUIRE(loaded->WrapKey().size() == 32);
  REQUIRE(Bytes(loaded->IdHashKey().begin(), loaded->IdHashKey().end()) ==
          Bytes(created->IdHashKey().begin(), created->IdHashKey().end()));
  REQUIRE(loaded->CoreSigner().PublicKey() == created->CoreSigner().PublicKey());
  REQUIRE(loaded->path() == path);
  // The four kinds of key are distinct random values.
  REQUIRE(Bytes(loaded->WrapKey().begin(), loaded->WrapKey().end()) !=
          Bytes(loaded->IdHashKey().begin(), loaded->IdHashKey().end()));
  // No temporary file is left behind.
  size_t files = 0;
  for (auto& entry : std::filesystem::directory_iterator(dir.File(""))) {
    (void)entry;
    ++files;
  }
  REQUIRE(files == 1);
}

TEST_CASE("A key file is never overwritten by Create", "[crypto][key_file]") {
  TempDir dir;
  std::string path = dir.File("citycard.keys");
  REQUIRE(KeyFile::Create(path).ok());
  std::string before = ReadAll(path);
  auto again = KeyFile::Create(path);
  REQUIRE_FALSE(again.ok());
  REQUIRE(again.status().code() == "key_file_exists");
  REQUIRE(again.status().kind() == Kind::refused);
  REQUIRE(ReadAll(path) == before);
}

TEST_CASE("A key file with mode 0644 is refused with a message naming the mode and the fix",
          "[crypto][key_file]") {
  TempDir dir;
  std::string path = dir.File("citycard.keys");
  REQUIRE(KeyFile::Create(path).ok());
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  auto loaded = KeyFile::Load(path);
  REQUIRE_FALSE(loaded.ok());
  REQUIRE(loaded.status().code() == "key_file_insecure");
  REQUIRE(loaded.status().kind() == Kind::bad_input);
  const std::string message = loaded.status().message();
  REQUIRE(message.find("0644") != std::string::npos);
  REQUIRE(message.find("chmod 600 " + path) != std::string::npos);
  for (const std::string& key : KeyStrings(ReadAll(path))) {
    REQUIRE(message.find(key) == std::string::npos);
  }
}

TEST_CASE("A key file readable or writable by its group alone is refused too", "[crypto][key_file]") {
  TempDir dir;
  std::string path = dir.File("citycard.keys");
  REQUIRE(KeyFile::Create(path).ok());
  for (mode_t mode : {0640, 0620, 0604, 0602}) {
    REQUIRE(::chmod(path.c_str(), mode) == 0);
    REQUIRE(KeyFile::Load(path).status().code() == "key_file_insecure");
  }
  REQUIRE(::chmod(path.c_str(), 0400) == 0);
  REQUIRE(KeyFile::Load(path).ok());
}

TEST_CASE("A missing key file is reported as not found", "[crypto][key_file]") {
  TempDir dir;
  auto loaded = KeyFile::Load(dir.File("absent.keys"));
  REQUIRE(loaded.status().code() == "key_file_not_found");
  REQUIRE(loaded.status().kind() == Kind::not_found);
}

TEST_CASE("A damaged key file is refused without quoting any key", "[crypto][key_file]") {
  TempDir dir;
  std::string path = dir.File("citycard.keys");
  REQUIRE(KeyFile::Create(path).ok());
  std::string good = ReadAll(path);
  auto document = nlohmann::json::parse(good);
  std::vector<std::string> keys = KeyStrings(good);

  struct Damage {
    std::string text;
    std::string code;
    std::string named;  // a word the message must contain
  };
  auto with = [&](const char* field, nlohmann::json value) {
    auto d = document;
    d[field] = value;
    return d.dump();
  };
  auto without = [&](const char* field) {
    auto d = document;
    d.erase(field);
    return d.dump();
  };
  std::string truncated = good.substr(0, good.size() / 2);
  const Damage damages[] = {
      {truncated, "key_file_invalid", "JSON"},
      {"[]", "key_file_invalid", "JSON"},
      {with("format", "other"), "key_file_invalid", "format"},
      {with("version", 2), "key_file_version_unsupported", "version 2"},
      {without("terminal_wrap_key"), "key_file_invalid", "terminal_wrap_key"},
      {with("terminal_wrap_key", keys[0].substr(2)), "key_file_invalid", "terminal_wrap_key"},
      {with("national_id_hash_key", "zz"), "key_file_invalid", "national_id_hash_key"},
      {without("core_signing_key"), "key_file_invalid", "core_signing_key"},
      {with("core_public_key", std::string(64, '0')), "key_file_invalid", "core_public_key"},
      {with("current_card_key_version", 2), "key_file_invalid", "current_card_key_version"},
      {with("card_master_keys", nlohmann::json::array()), "key_file_invalid", "card_master_keys"},
  };
  for (const Damage& damage : damages) {
    WriteSecure(path, damage.text);
    auto loaded = KeyFile::Load(path);
    INFO(damage.code << " / " << damage.named);
    REQUIRE_FALSE(loaded.ok());
    REQUIRE(loaded.status().code() == damage.code);
    REQUIRE(loaded.status().kind() == Kind::bad_input);
    REQUIRE(loaded.status().message().find(damage.named) != std::string::npos);
    for (const std::string& key : keys) {
      REQUIRE(loaded.status().message().find(key) == std::string::npos);
      REQUIRE(loaded.status().message().find(key.substr(0, 16)) == std::string::npos);
    }
  }
}

TEST_CASE("Rotating the card key adds a version and keeps the old one", "[crypto][key_file]") {
  TempDir dir;
  std::string path = dir.File("citycard.keys");
  auto file = KeyFile::Create(path);
  REQUIRE(file.ok());
  Bytes v1(file->CardMasterKey(1)->begin(), file->CardMasterKey(1)->end());
  REQUIRE(file->RotateCardKey().ok());
  REQUIRE(file->CurrentCardKeyVersion() == 2);
  REQUIRE(ModeOf(path) == 0600);
  auto loaded = KeyFile::Load(path);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->CurrentCardKeyVersion() == 2);
  REQUIRE(Bytes(loaded->CardMasterKey(1)->begin(), loaded->CardMasterKey(1)->end()) == v1);
  REQUIRE(Bytes(loaded->CardMasterKey(2)->begin(), loaded->CardMasterKey(2)->end()) != v1);
  auto unknown = loaded->CardMasterKey(3);
  REQUIRE(unknown.status().code() == "card_key_version_unknown");
  REQUIRE(unknown.status().kind() == Kind::not_found);
}
