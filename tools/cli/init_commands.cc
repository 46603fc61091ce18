// `citycard init` (a new database and key file, never overwriting either) and
// `citycard keys public` (the core's Ed25519 public key, for terminals and auditors).
#include "core/bytes.h"
#include "tools/cli/commands.h"
#include "tools/cli/environment.h"

namespace citycard::cli {

namespace {

std::string CorePublicKeyHex(const Environment& env) {
  auto key = env.keys().CoreSigner().PublicKey();
  return ToHex(ByteView(key.data(), key.size()));
}

Result<CommandOutput> Init(const GlobalOptions& options) {
  auto env = Environment::Create(options);
  if (!env.ok()) return env.status();
  CommandOutput out;
  std::string public_key = CorePublicKeyHex(**env);
  out.json = {{"database", options.db_path},
              {"keys", options.keys_path},
              {"core_public_key", public_key}};
  out.text = "Created database " + options.db_path + " and key file " + options.keys_path +
             " (mode 0600).\nCore public key (Ed25519): " + public_key + "\n";
  return out;
}

}  // namespace

void RegisterInitCommands(CLI::App& app, AppContext& context) {
  app.add_subcommand("init", "create a new database and key file (never overwrites either)")
      ->callback([&context] { RunCommand(context, [&] { return Init(context.options); }); });

  CLI::App* keys = app.add_subcommand("keys", "the installation's keys");
  keys->require_subcommand(1);
  keys->add_subcommand("public", "print the core's Ed25519 public key (hex)")->callback([&context] {
    RunWithEnvironment(context, [](Environment& env) -> Result<CommandOutput> {
      CommandOutput out;
      std::string public_key = CorePublicKeyHex(env);
      out.json = {{"algorithm", "ed25519"}, {"public_key", public_key}};
      out.text = public_key + "\n";
      return out;
    });
  });
}

}  // namespace citycard::cli
