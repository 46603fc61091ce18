// `citycard replay --format szt FILE [--server HOST:PORT] [--provision]` (docs/replay.md).
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "core/szt_file.h"
#include "tools/cli/commands.h"
#include "tools/cli/files.h"
#include "tools/cli/progress.h"
#include "tools/cli/replay.h"

namespace citycard::cli {

namespace {

struct ReplayCommandOptions {
  std::string format;
  std::string path;
  std::string server;
  bool provision = false;
};

std::string SummaryText(const ReplaySummary& s) {
  std::string text = fmt::format(
      "Replayed {} taps of {} operators on {} terminals and {} cards in {} batches\n"
      "  accepted   {}{}\n  duplicates {}\n  rejected   {}\n",
      s.taps, s.operators, s.terminals, s.cards, s.batches, s.accepted,
      s.late > 0 ? fmt::format(" ({} late)", s.late) : std::string(), s.duplicates, s.rejected);
  for (const auto& [code, count] : s.rejected_by_code) {
    text += fmt::format("    {:<24} {}\n", code, count);
  }
  if (s.ledger_ahead) {
    text += "  warning: the ledger already held later transfers; what was booked now is stamped "
            "later and its days will not reconcile\n";
  }
  if (!s.days.empty()) {
    text += "  clearing days:";
    for (const std::string& day : s.days) text += " " + day;
    text += "\n";
  }
  return text;
}

Result<CommandOutput> Replay(const GlobalOptions& global, const ReplayCommandOptions& o) {
  auto text = ReadTextFile(o.path, kReplayFileBytesMax);
  if (!text.ok()) return text.status();
  auto rows = ParseSztFile(*text);
  if (!rows.ok()) return rows.status();
  ReplayOptions replay;
  replay.server = o.server;
  replay.provision = o.provision;
  std::optional<ProgressBar> bar;
  if (!global.quiet) bar.emplace("replay");
  replay.progress = [&bar](size_t done, size_t total) {
    if (bar) bar->Update(static_cast<int64_t>(done), static_cast<int64_t>(total));
  };
  auto summary = ReplaySzt(global, *rows, replay);
  if (!summary.ok()) return summary.status();
  return CommandOutput{ReplaySummaryJson(*summary), SummaryText(*summary)};
}

}  // namespace

void RegisterReplayCommands(CLI::App& app, AppContext& context) {
  auto o = std::make_shared<ReplayCommandOptions>();
  CLI::App* replay = app.add_subcommand("replay", "re-live a recorded day through the protocol");
  replay->add_option("--format", o->format, "the file's format: szt (Shenzhen Tong)")
      ->required()
      ->check(CLI::IsMember({"szt"}));
  replay->add_option("FILE", o->path, "the file")->required();
  replay->add_option("--server", o->server, "HOST:PORT of a running server (default: in-process)");
  replay->add_flag("--provision", o->provision,
                   "create the operators, terminals and cards the file needs");
  replay->callback([&context, o] {
    RunCommand(context, [&]() { return Replay(context.options, *o); });
  });
}

}  // namespace citycard::cli
