// `citycard bench ingest|online|settle|idle` (docs/benchmarks.md); `bench bills` lives in
// tools/cli/bills_commands.cc.
#include "tools/cli/bench.h"
#include "tools/cli/commands.h"

namespace citycard::cli {

void RegisterBenchCommands(CLI::App& app, AppContext& context) {
  CLI::App* group = CommandGroup(app, "bench", "benchmarks");
  auto ingest = std::make_shared<IngestBenchOptions>();
  CLI::App* sub = group->add_subcommand(
      "ingest", "taps signed by simulated cards and readers through the whole ingest path, on a "
                "new scratch database (docs/benchmarks.md)");
  sub->add_option("--cards", ingest->cards, "cards (default 10000)");
  sub->add_option("--taps", ingest->taps, "taps (default max(1000000, cards))");
  sub->add_option("--group", ingest->group, "most records per group commit (default 16384)");
  sub->add_option("--batch", ingest->batch, "records per reader upload (default 64)");
  sub->add_option("--terminals", ingest->terminals, "readers (default 256)");
  sub->add_flag("--via-server", ingest->via_server,
                "upload through the terminal protocol over loopback TCP");
  sub->add_option("--client-threads", ingest->client_threads,
                  "--via-server: readers uploading at once (default 64)");
  sub->add_flag("--with-postgres", ingest->with_postgres,
                "the same posting logic on a throwaway PostgreSQL 15 cluster as well");
  sub->add_option("--dir", ingest->dir, "scratch directory (default: a new one under /tmp)");
  sub->add_flag("--keep", ingest->keep, "keep the scratch database and key file");
  sub->add_option("--seed", ingest->seed, "random seed (default 1)");
  sub->callback([&context, ingest] {
    RunCommand(context, [&] { return RunIngestBench(*ingest); });
  });
}

}  // namespace citycard::cli
