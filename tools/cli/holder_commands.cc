// `citycard holder import FILE.csv [--skip-bad]` and `citycard holder show NATIONAL_ID`.
#include <fmt/format.h>

#include "core/holder_registry.h"
#include "tools/cli/commands.h"
#include "tools/cli/environment.h"
#include "tools/cli/files.h"
#include "tools/cli/progress.h"
#include "tools/cli/registry_output.h"

namespace citycard::cli {

namespace {

// How many bad lines an error message lists before it only counts the rest.
constexpr size_t kProblemsListedMax = 100;

struct HolderOptions {
  std::string file;
  bool skip_bad = false;
  std::string national_id;
};

nlohmann::json ProblemsJson(const std::vector<RegistryProblem>& problems) {
  nlohmann::json out = nlohmann::json::array();
  for (const RegistryProblem& p : problems) {
    out.push_back({{"line", p.line}, {"code", p.code}, {"message", p.message}});
  }
  return out;
}

Status BadFile(const ImportReport& report) {
  std::string message = fmt::format("{} bad line(s); nothing was imported (--skip-bad imports "
                                    "the good lines)",
                                    report.problems.size());
  for (size_t i = 0; i < report.problems.size() && i < kProblemsListedMax; ++i) {
    const RegistryProblem& p = report.problems[i];
    message += fmt::format("\nline {}: {}: {}", p.line, p.code, p.message);
  }
  if (report.problems.size() > kProblemsListedMax) {
    message += fmt::format("\n… and {} more", report.problems.size() - kProblemsListedMax);
  }
  return Status::BadInput("invalid_registry_file", message);
}

Result<CommandOutput> Import(Environment& env, const HolderOptions& options) {
  auto text = ReadTextFile(options.file, kHolderRegistryBytesMax);
  if (!text.ok()) return text.status();
  ProgressBar bar("import");
  auto report = env.card_office().ImportHolders(
      *text, options.skip_bad, [&bar](int64_t done, int64_t total) { bar.Update(done, total); });
  if (!report.ok()) return report.status();
  if (!report->applied) return BadFile(*report);
  CommandOutput out;
  out.json = {{"lines", report->lines},     {"created", report->created},
              {"updated", report->updated}, {"unchanged", report->unchanged},
              {"skipped", report->skipped}, {"problems", ProblemsJson(report->problems)}};
  out.text = fmt::format("{} line(s): {} created, {} updated, {} unchanged, {} skipped\n",
                         report->lines, report->created, report->updated, report->unchanged,
                         report->skipped);
  for (const RegistryProblem& p : report->problems) {
    out.text += fmt::format("skipped line {}: {}: {}\n", p.line, p.code, p.message);
  }
  return out;
}

Result<CommandOutput> Show(Environment& env, const HolderOptions& options) {
  auto holder = env.card_office().ShowHolder(options.national_id);
  if (!holder.ok()) return holder.status();
  return CommandOutput{HolderJson(*holder), HolderText(*holder)};
}

}  // namespace

void RegisterHolderCommands(CLI::App& app, AppContext& context) {
  auto options = std::make_shared<HolderOptions>();
  CLI::App* holder = app.add_subcommand("holder", "card holders from the social-security registry");
  holder->require_subcommand(1);

  CLI::App* import = holder->add_subcommand("import", "import the holder registry (CSV)");
  import->add_option("FILE", options->file, "registry file, docs/registry-format.md")->required();
  import->add_flag("--skip-bad", options->skip_bad, "import the good lines when some are bad");
  import->callback([&context, options] {
    RunWithEnvironment(context, [&](Environment& env) { return Import(env, *options); });
  });

  CLI::App* show = holder->add_subcommand("show", "show a holder by national id");
  show->add_option("NATIONAL_ID", options->national_id, "18-character national id")->required();
  show->callback([&context, options] {
    RunWithEnvironment(context, [&](Environment& env) { return Show(env, *options); });
  });
}

}  // namespace citycard::cli
