#include "tools/cli/commands.h"

namespace citycard::cli {

void RegisterVersionCommand(CLI::App& app, AppContext& context) {
  app.add_subcommand("version", "print the program's version")->callback([&context] {
    RunCommand(context, []() -> Result<CommandOutput> {
      CommandOutput out;
      out.json = {{"version", "0.1.0"}};
      out.text = "citycard 0.1.0";
      return out;
    });
  });
}

}  // namespace citycard::cli
