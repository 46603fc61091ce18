#include "tools/cli/environment.h"

#include <cstdlib>
#include <filesystem>

#include "core/money.h"
#include "core/time.h"
#include "crypto/digest.h"
#include "crypto/key_wrap.h"
#include "crypto/national_id_hash.h"
#include "crypto/terminal_keys.h"
#include "db/sqlite_ledger_store.h"
#include "db/sqlite_registry_store.h"

namespace citycard::cli {

namespace {

// The card office's national id hash: HMAC-SHA256 under the key file's id-hash key.
class KeyFileIdHasher final : public NationalIdHasher {
 public:
  explicit KeyFileIdHasher(const crypto::KeyFile& keys) : keys_(keys) {}
  std::string Hash(std::string_view normalized_id) const override {
    return crypto::HashNationalId(keys_.IdHashKey(), normalized_id);
  }

 private:
  const crypto::KeyFile& keys_;
};

// Fresh random terminal keys, wrapped under the key file's wrap key.
class KeyFileTerminalKeyMaker final : public TerminalKeyMaker {
 public:
  explicit KeyFileTerminalKeyMaker(const crypto::KeyFile& keys) : keys_(keys) {}
  Result<NewTerminalKey> Make() const override {
    NewTerminalKey key;
    key.plain_key = crypto::GenerateTerminalKey();
    auto wrapped = crypto::WrapKey(keys_.WrapKey(), key.plain_key);
    if (!wrapped.ok()) return wrapped.status();
    key.wrapped_key = std::move(*wrapped);
    return key;
  }

 private:
  const crypto::KeyFile& keys_;
};

Status InvalidEnvironment(const char* name, std::string_view why) {
  return Status::Usage("invalid_environment", std::string(name) + ": " + std::string(why));
}

const char* Variable(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

// Reads a yuan amount from the variable `name` into *fen when it is set.
Status ReadYuanVariable(const char* name, int64_t* fen) {
  const char* value = Variable(name);
  if (!value) return Status::Ok();
  auto parsed = ParseYuan(value);
  if (!parsed.ok()) return InvalidEnvironment(name, "not an amount in yuan");
  *fen = *parsed;
  return Status::Ok();
}

Result<int64_t> ParseNow(const char* text) {
  std::string_view view(text);
  if (!view.empty() && view[0] == '@') {
    char* end = nullptr;
    long long seconds = std::strtoll(text + 1, &end, 10);
    if (end == text + 1 || *end != '\0' || seconds < 0) {
      return InvalidEnvironment(kNowVariable, "'@' must be followed by Unix seconds");
    }
    return static_cast<int64_t>(seconds);
  }
  auto local = ParseLocalTime(view);
  if (!local.ok()) {
    return InvalidEnvironment(kNowVariable, "expected YYYY-MM-DD HH:MM:SS or @<unix seconds>");
  }
  return *local;
}

}  // namespace

Result<std::unique_ptr<Clock>> ClockFromEnvironment() {
  const char* now = Variable(kNowVariable);
  if (!now) return std::unique_ptr<Clock>(new SystemClock());
  auto seconds = ParseNow(now);
  if (!seconds.ok()) return seconds.status();
  return std::unique_ptr<Clock>(new ManualClock(*seconds * 1000));
}

Result<CardOfficeConfig> ConfigFromEnvironment() {
  CardOfficeConfig config;
  if (const char* hold = Variable(kReplacementHoldVariable)) {
    char* end = nullptr;
    long long seconds = std::strtoll(hold, &end, 10);
    if (*end != '\0' || seconds < 0) {
      return InvalidEnvironment(kReplacementHoldVariable, "not a number of seconds");
    }
    config.replacement_hold_s = seconds;
  }
  CITYCARD_RETURN_IF_ERROR(
      ReadYuanVariable(kTransitOverdraftVariable, &config.transit_overdraft_fen));
  CITYCARD_RETURN_IF_ERROR(ReadYuanVariable(kPurseMaxVariable, &config.purse_balance_max_fen));
  CITYCARD_RETURN_IF_ERROR(ReadYuanVariable(kDefaultDepositVariable, &config.default_deposit_fen));
  return config;
}

Environment::Environment(GlobalOptions options) : options_(std::move(options)) {}
Environment::~Environment() = default;

Status Environment::Assemble(std::unique_ptr<db::Database> database, crypto::KeyFile keys) {
  auto clock = ClockFromEnvironment();
  if (!clock.ok()) return clock.status();
  auto config = ConfigFromEnvironment();
  if (!config.ok()) return config.status();
  clock_ = std::move(*clock);
  digester_ = std::make_unique<crypto::Sha256Digester>();
  keys_ = std::make_unique<crypto::KeyFile>(std::move(keys));
  hasher_ = std::make_unique<KeyFileIdHasher>(*keys_);
  key_maker_ = std::make_unique<KeyFileTerminalKeyMaker>(*keys_);
  database_ = std::move(database);
  auto ledger_store = db::SqliteLedgerStore::Open(*database_);
  if (!ledger_store.ok()) return ledger_store.status();
  ledger_store_ = std::move(*ledger_store);
  auto registry = db::SqliteRegistryStore::Open(*database_);
  if (!registry.ok()) return registry.status();
  registry_ = std::move(*registry);
  ledger_ = std::make_unique<Ledger>(*ledger_store_, *clock_, *digester_);
  card_office_ =
      std::make_unique<CardOffice>(*registry_, *ledger_, *hasher_, *digester_, *clock_, *config);
  terminal_office_ = std::make_unique<TerminalOffice>(*registry_, *ledger_, *key_maker_, *clock_);
  return Status::Ok();
}

Result<std::unique_ptr<Environment>> Environment::Open(const GlobalOptions& options) {
  auto database = db::Database::Open(options.db_path, false);
  if (!database.ok()) return database.status();
  auto keys = crypto::KeyFile::Load(options.keys_path);
  if (!keys.ok()) return keys.status();
  std::unique_ptr<Environment> env(new Environment(options));
  CITYCARD_RETURN_IF_ERROR(env->Assemble(std::move(*database), std::move(*keys)));
  return env;
}

Result<std::unique_ptr<Environment>> Environment::Create(const GlobalOptions& options) {
  std::error_code error;
  if (std::filesystem::exists(options.db_path, error)) {
    return Status::Refused("database_exists", "a database exists at " + options.db_path +
                                                  "; init never overwrites one");
  }
  if (std::filesystem::exists(options.keys_path, error)) {
    return Status::Refused("key_file_exists", "a key file exists at " + options.keys_path +
                                                  "; init never overwrites one");
  }
  auto keys = crypto::KeyFile::Create(options.keys_path);
  if (!keys.ok()) return keys.status();
  auto database = db::Database::Open(options.db_path, true);
  std::unique_ptr<Environment> env(new Environment(options));
  Status status = database.ok() ? env->Assemble(std::move(*database), std::move(*keys))
                                : database.status();
  if (status.ok()) status = env->card_office().CreateSystemAccounts();
  if (!status.ok()) {
    // Leave nothing half made behind: a later init must be able to start again.
    env.reset();
    std::filesystem::remove(options.keys_path, error);
    std::filesystem::remove(options.db_path, error);
    std::filesystem::remove(options.db_path + "-wal", error);
    std::filesystem::remove(options.db_path + "-shm", error);
    return status;
  }
  return env;
}

}  // namespace citycard::cli
