// What a command works with: the database (--db), the key file (--keys), the clock, the
// ledger and the registry over that database, and the card and terminal offices over them.
// Every command group (card, holder, operator, terminal, settle, replay, serve, demo) opens
// one Environment and takes what it needs; components with stores of their own open them on
// database().
//
// Configuration from the process environment (docs/configuration.md):
// - CITYCARD_NOW: the time every clock-asking part of the command sees, "YYYY-MM-DD HH:MM:SS"
//   (Asia/Shanghai) or "@<unix seconds>"; unset: the system clock. Tests and replays use it to
//   step through hold periods and clearing days.
// - CITYCARD_REPLACEMENT_HOLD_S: seconds before a replaced card's balance moves (default
//   259200, three days).
// - CITYCARD_TRANSIT_OVERDRAFT: the overdraft (yuan) of non-adult purses (default 2.00).
// - CITYCARD_PURSE_MAX: the most a purse may hold (yuan, default 1000.00).
// - CITYCARD_DEFAULT_DEPOSIT: the deposit taken at issue when none is given (yuan, default 0).
#pragma once

#include <memory>
#include <string>

#include "core/card_office.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/ledger.h"
#include "core/ledger_store.h"
#include "core/registry.h"
#include "core/status.h"
#include "core/terminal_office.h"
#include "crypto/key_file.h"
#include "db/database.h"
#include "tools/cli/app.h"

namespace citycard::cli {

inline constexpr char kNowVariable[] = "CITYCARD_NOW";
inline constexpr char kReplacementHoldVariable[] = "CITYCARD_REPLACEMENT_HOLD_S";
inline constexpr char kTransitOverdraftVariable[] = "CITYCARD_TRANSIT_OVERDRAFT";
inline constexpr char kPurseMaxVariable[] = "CITYCARD_PURSE_MAX";
inline constexpr char kDefaultDepositVariable[] = "CITYCARD_DEFAULT_DEPOSIT";

// The clock the command runs on: a fixed clock at CITYCARD_NOW when it is set, else the
// system clock. Kind::usage "invalid_environment" when CITYCARD_NOW is set but malformed.
Result<std::unique_ptr<Clock>> ClockFromEnvironment();

// The card office's configuration: defaults, overridden by the variables above.
// Kind::usage "invalid_environment" when one is set but malformed.
Result<CardOfficeConfig> ConfigFromEnvironment();

class Environment {
 public:
  // Opens an existing installation: the database at options.db_path (Kind::not_found
  // "db_not_found" when there is none: run `citycard init`), brings the ledger's and the
  // registry's schemas up to date, and loads the key file at options.keys_path
  // (crypto::KeyFile::Load's failures: "key_file_not_found", "key_file_insecure", …).
  static Result<std::unique_ptr<Environment>> Open(const GlobalOptions& options);

  // Creates a new installation for `citycard init`: the key file (mode 0600), the database with
  // every schema, and the system accounts. Refuses, before creating anything, when either file
  // exists: Kind::refused "database_exists" or "key_file_exists".
  static Result<std::unique_ptr<Environment>> Create(const GlobalOptions& options);

  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  db::Database& database() { return *database_; }
  const crypto::KeyFile& keys() const { return *keys_; }
  const Clock& clock() const { return *clock_; }
  const Digester& digester() const { return *digester_; }
  LedgerStore& ledger_store() { return *ledger_store_; }
  Ledger& ledger() { return *ledger_; }
  RegistryStore& registry() { return *registry_; }
  CardOffice& card_office() { return *card_office_; }
  TerminalOffice& terminal_office() { return *terminal_office_; }
  const CardOfficeConfig& config() const { return card_office_->config(); }
  const GlobalOptions& options() const { return options_; }

 private:
  explicit Environment(GlobalOptions options);
  Status Assemble(std::unique_ptr<db::Database> database, crypto::KeyFile keys);

  GlobalOptions options_;
  std::unique_ptr<Clock> clock_;
  std::unique_ptr<Digester> digester_;
  std::unique_ptr<crypto::KeyFile> keys_;
  std::unique_ptr<NationalIdHasher> hasher_;
  std::unique_ptr<TerminalKeyMaker> key_maker_;
  std::unique_ptr<db::Database> database_;
  std::unique_ptr<LedgerStore> ledger_store_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<RegistryStore> registry_;
  std::unique_ptr<CardOffice> card_office_;
  std::unique_ptr<TerminalOffice> terminal_office_;
};

// Runs a command body that needs an installation: opens the Environment from the global
// options, calls body(Environment&) -> Result<CommandOutput>, and stores the exit code in the
// context (app.h RunCommand). A failure to open is the command's failure.
template <typename Body>
void RunWithEnvironment(AppContext& context, Body&& body) {
  RunCommand(context, [&]() -> Result<CommandOutput> {
    auto env = Environment::Open(context.options);
    if (!env.ok()) return env.status();
    return body(**env);
  });
}

// Adds subcommand `name` to `parent` whose callback runs body(Environment&) ->
// Result<CommandOutput> through RunWithEnvironment. The body is copied into the callback.
template <typename Body>
CLI::App* AddEnvironmentCommand(CLI::App* parent, AppContext& context, const std::string& name,
                                const std::string& help, Body body) {
  CLI::App* sub = parent->add_subcommand(name, help);
  sub->callback([&context, body] {
    RunWithEnvironment(context, [&](Environment& env) { return body(env); });
  });
  return sub;
}

}  // namespace citycard::cli
