#include "tools/cli/app.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace citycard::cli {

namespace {

std::string EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

void PrintError(const GlobalOptions& options, const Status& status) {
  if (options.json) {
    nlohmann::json error = {{"error", {{"code", status.code()}, {"message", status.message()}}}};
    std::cout << error.dump() << std::endl;
  } else {
    std::cerr << "citycard: " << status.code() << ": " << status.message() << std::endl;
  }
}

}  // namespace

int Emit(const GlobalOptions& options, const Result<CommandOutput>& result) {
  if (!result.ok()) {
    PrintError(options, result.status());
    return result.status().exit_code();
  }
  if (options.json) {
    std::cout << result->json.dump(2) << std::endl;
  } else if (!options.quiet && !result->text.empty()) {
    std::cout << result->text;
    if (result->text.back() != '\n') std::cout << '\n';
  }
  std::cout.flush();
  return 0;
}

CLI::App* CommandGroup(CLI::App& parent, const std::string& name, const std::string& help) {
  for (CLI::App* existing : parent.get_subcommands([](CLI::App*) { return true; })) {
    if (existing->get_name() == name) return existing;
  }
  CLI::App* group = parent.add_subcommand(name, help);
  group->require_subcommand(1);
  return group;
}

int RunMain(int argc, char** argv) {
  AppContext context;
  CLI::App app("citycard: the transaction core behind a city's citizen card", "citycard");
  app.require_subcommand(1);
  // Global options may also follow the command (`citycard card show N --json`): subcommands
  // created after this pass options they do not know up to the program.
  app.fallthrough();
  app.add_option("--db", context.options.db_path, "database path or URL ($CITYCARD_DB)");
  app.add_option("--keys", context.options.keys_path, "key file ($CITYCARD_KEYS)");
  app.add_flag("--json", context.options.json, "print one JSON document on stdout");
  app.add_flag("--quiet", context.options.quiet, "print nothing but errors");
  app.preparse_callback([&context](size_t) {
    if (context.options.db_path.empty()) context.options.db_path = EnvOr("CITYCARD_DB", "./citycard.db");
    if (context.options.keys_path.empty()) {
      context.options.keys_path = EnvOr("CITYCARD_KEYS", "./citycard.keys");
    }
  });
  RegisterAllCommands(app, context);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // --json may not have been parsed yet when the error came; look for it by hand.
    for (int i = 1; i < argc; ++i) {
      if (std::string(argv[i]) == "--json") context.options.json = true;
    }
    PrintError(context.options, Status::Usage("usage", e.what()));
    return static_cast<int>(Kind::usage);
  }
  return context.exit_code;
}

}  // namespace citycard::cli
