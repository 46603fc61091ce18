// The citycard command: global options, how a command's result is printed, and the list of
// command groups. Each group lives in its own file (tools/cli/<group>_commands.cc) and adds
// its subcommands with a Register* function listed in RegisterAllCommands.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>

#include "core/status.h"

namespace citycard::cli {

struct GlobalOptions {
  std::string db_path;    // --db, else $CITYCARD_DB, else ./citycard.db
  std::string keys_path;  // --keys, else $CITYCARD_KEYS, else ./citycard.keys
  bool json = false;      // --json: one JSON document on stdout, errors included
  bool quiet = false;     // --quiet: no human output beyond errors
};

// What a command produced: the JSON document for --json, and the text for people.
struct CommandOutput {
  nlohmann::json json = nlohmann::json::object();
  std::string text;
};

// The state a command callback writes its exit code into.
struct AppContext {
  GlobalOptions options;
  int exit_code = 0;
};

// Prints a command's result as --json or human text asks and returns the exit code: 0 on
// success, else the Status kind's code (CLI.md "Exit codes"). Errors go to stdout as
// {"error": {"code", "message"}} with --json, to stderr as "citycard: code: message" without.
int Emit(const GlobalOptions& options, const Result<CommandOutput>& result);

// Runs a command body and stores its exit code in the context.
template <typename Body>
void RunCommand(AppContext& context, Body&& body) {
  context.exit_code = Emit(context.options, body());
}

// The subcommand `name` of `parent`, created with `help` when it does not exist yet, so that
// several files can add commands to one group (e.g. `audit verify` and `audit identity`).
CLI::App* CommandGroup(CLI::App& parent, const std::string& name, const std::string& help);

// Every command group's registration.
void RegisterAllCommands(CLI::App& app, AppContext& context);

// Parses argv and runs the chosen command; returns the process exit code.
int RunMain(int argc, char** argv);

}  // namespace citycard::cli
