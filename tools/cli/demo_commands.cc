// `citycard demo [--dir DIR] [--short] [--json]` (docs/demo.md).
#include <iostream>
#include <memory>

#include "tools/cli/commands.h"
#include "tools/cli/demo.h"

namespace citycard::cli {

void RegisterDemoCommands(CLI::App& app, AppContext& context) {
  auto o = std::make_shared<DemoOptions>();
  CLI::App* demo = app.add_subcommand("demo", "a city day on a fresh installation, checked");
  demo->add_option("--dir", o->dir, "the working folder (default: a fresh one)");
  demo->add_flag("--short", o->short_run, "a shorter day (a tenth of the replayed evening)");
  demo->callback([&context, o] {
    o->json = context.options.json;
    auto result = RunDemo(*o);
    if (!result.ok()) {
      context.exit_code = Emit(context.options, result.status());
      return;
    }
    // The summary is printed either way; the exit status says whether every step did what it
    // expected (1, like a failed audit, when one did not).
    Emit(context.options, CommandOutput{result->summary, result->text});
    context.exit_code = result->ok ? 0 : static_cast<int>(Kind::internal);
  });
}

}  // namespace citycard::cli
