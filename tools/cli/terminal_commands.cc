// `citycard terminal register|list|show|disable|rotate-key`.
#include <fmt/format.h>

#include "core/bytes.h"
#include "tools/cli/commands.h"
#include "tools/cli/environment.h"
#include "tools/cli/files.h"
#include "tools/cli/registry_output.h"

namespace citycard::cli {

namespace {

struct TerminalOptions {
  std::string id;
  std::string operator_id;
  std::string kind;
  std::string route;
  std::string key_out;
};

const std::vector<std::string> kTerminalKinds = {"bus",      "metro",  "taxi",    "parking",
                                                 "utility",  "hospital", "scenic", "counter",
                                                 "gate",     "kiosk"};

// The output of a command that issued a key: the terminal, the key version, and where the
// plain key went. The key is written to --key-out (hex, mode 0600) and never printed.
Result<CommandOutput> IssuedOutput(const IssuedTerminalKey& issued, const std::string& key_out,
                                   const std::string& verb) {
  CommandOutput out{TerminalJson(issued.terminal), ""};
  out.json["issued_key_version"] = issued.version;
  std::string where = "not written (no --key-out); rotate the key to provision a reader";
  if (!key_out.empty()) {
    CITYCARD_RETURN_IF_ERROR(WriteSecretFile(key_out, ToHex(issued.plain_key) + "\n"));
    out.json["key_file"] = key_out;
    where = "written to " + key_out + " (mode 0600)";
  }
  out.text = fmt::format("{} terminal {}; key version {} {}\n", verb, issued.terminal.id,
                         issued.version, where) +
             TerminalText(issued.terminal);
  return out;
}

Result<CommandOutput> Register(Environment& env, const TerminalOptions& o) {
  if (!o.key_out.empty()) CITYCARD_RETURN_IF_ERROR(CheckFileAbsent(o.key_out));
  TerminalRequest request{o.id, o.operator_id, *ParseTerminalKind(o.kind), o.route};
  auto issued = env.terminal_office().RegisterTerminal(request);
  if (!issued.ok()) return issued.status();
  return IssuedOutput(*issued, o.key_out, "Registered");
}

Result<CommandOutput> RotateKey(Environment& env, const TerminalOptions& o) {
  if (!o.key_out.empty()) CITYCARD_RETURN_IF_ERROR(CheckFileAbsent(o.key_out));
  auto issued = env.terminal_office().RotateKey(o.id);
  if (!issued.ok()) return issued.status();
  return IssuedOutput(*issued, o.key_out, "Rotated the key of");
}

Result<CommandOutput> List(Environment& env) {
  auto terminals = env.terminal_office().ListTerminals();
  if (!terminals.ok()) return terminals.status();
  nlohmann::json list = nlohmann::json::array();
  for (const Terminal& t : *terminals) list.push_back(TerminalJson(t));
  return CommandOutput{{{"terminals", list}}, TerminalsTable(*terminals)};
}

Result<CommandOutput> Show(Environment& env, const TerminalOptions& o) {
  auto terminal = env.terminal_office().ShowTerminal(o.id);
  if (!terminal.ok()) return terminal.status();
  return CommandOutput{TerminalJson(*terminal), TerminalText(*terminal)};
}

Result<CommandOutput> Disable(Environment& env, const TerminalOptions& o) {
  auto terminal = env.terminal_office().DisableTerminal(o.id);
  if (!terminal.ok()) return terminal.status();
  return CommandOutput{TerminalJson(*terminal), "Disabled terminal " + o.id + "\n"};
}

void AddId(CLI::App* sub, TerminalOptions& o) {
  sub->add_option("TERMINAL_ID", o.id, "1 to 16 characters A-Z a-z 0-9 - _")->required();
}

}  // namespace

void RegisterTerminalCommands(CLI::App& app, AppContext& context) {
  auto o = std::make_shared<TerminalOptions>();
  CLI::App* group = app.add_subcommand("terminal", "card readers: registration and keys");
  group->require_subcommand(1);

  CLI::App* reg = AddEnvironmentCommand(group, context, "register", "register a terminal with a fresh key",
                          [o](Environment& env) { return Register(env, *o); });
  AddId(reg, *o);
  reg->add_option("--operator", o->operator_id, "the operator it belongs to")->required();
  reg->add_option("--kind", o->kind, "bus, metro, taxi, parking, utility, hospital, scenic, "
                                     "counter, gate, kiosk")
      ->required()
      ->check(CLI::IsMember(kTerminalKinds));
  reg->add_option("--route", o->route, "route or location");
  reg->add_option("--key-out", o->key_out, "write the plain key here (hex, mode 0600)");

  AddEnvironmentCommand(group, context, "list", "list the terminals",
          [](Environment& env) { return List(env); });
  AddId(AddEnvironmentCommand(group, context, "show", "show a terminal",
                [o](Environment& env) { return Show(env, *o); }),
        *o);
  AddId(AddEnvironmentCommand(group, context, "disable", "disable a terminal",
                [o](Environment& env) { return Disable(env, *o); }),
        *o);
  CLI::App* rotate = AddEnvironmentCommand(group, context, "rotate-key",
                             "add a new key version; older versions still verify",
                             [o](Environment& env) { return RotateKey(env, *o); });
  AddId(rotate, *o);
  rotate->add_option("--key-out", o->key_out, "write the plain key here (hex, mode 0600)");
}

}  // namespace citycard::cli
