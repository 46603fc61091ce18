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
  sub->add_option("--group", ingest->group, "most records per group commit (default 32768)");
  sub->add_option("--batch", ingest->batch, "records per reader upload (default 64)");
  sub->add_option("--terminals", ingest->terminals, "readers (default 256)");
  sub->add_flag("--via-server", ingest->via_server,
                "upload through the terminal protocol over loopback TCP");
  sub->add_option("--client-threads", ingest->client_threads,
                  "--via-server: readers uploading at once (default: every reader)");
  sub->add_flag("--with-postgres", ingest->with_postgres,
                "the same posting logic on a throwaway PostgreSQL 15 cluster as well");
  sub->add_option("--cache-mb", ingest->cache_mb,
                  "SQLite page cache of the ingest connection, MB (default: the server's, 512)");
  sub->add_flag("--inline-checkpoints", ingest->inline_checkpoints,
                "checkpoint in the writer's commits, as SQLite does by itself (to compare)");
  sub->add_flag("--no-cards-ahead", ingest->no_cards_ahead,
                "the writer reads every card itself, none read ahead by the checker (to compare)");
  sub->add_flag("--no-purses-ahead", ingest->no_purses_ahead,
                "the writer reads every purse itself, none read ahead with the cards (to compare)");
  sub->add_option("--dir", ingest->dir, "scratch directory (default: a new one under /tmp)");
  sub->add_flag("--keep", ingest->keep, "keep the scratch database and key file");
  sub->add_option("--seed", ingest->seed, "random seed (default 1)");
  sub->callback([&context, ingest] {
    RunCommand(context, [&] { return RunIngestBench(*ingest); });
  });

  auto settle = std::make_shared<SettleBenchOptions>();
  sub = group->add_subcommand("settle", "a clearing day of taps booked, then settled (timed)");
  sub->add_option("--taps", settle->taps, "taps on the day (default 1000000)");
  sub->add_option("--cards", settle->cards, "cards (default 100000)");
  sub->add_option("--cap-fen", settle->cap_fen, "adult daily bus cap, fen (default 1000; 0: none)");
  sub->add_option("--dir", settle->dir, "scratch directory (default: a new one under /tmp)");
  sub->add_flag("--keep", settle->keep, "keep the scratch database and key file");
  sub->add_option("--seed", settle->seed, "random seed (default 1)");
  sub->add_flag("--book-only", settle->book_only,
                "book the day into --dir and keep it, settling nothing");
  sub->add_option("--booked-dir", settle->booked_dir,
                  "settle the day a --book-only run kept in this directory");
  sub->callback([&context, settle] {
    RunCommand(context, [&] { return RunSettleBench(*settle); });
  });

  auto online = std::make_shared<OnlineBenchOptions>();
  sub = group->add_subcommand("online", "concurrent terminal sessions making identity checks "
                                        "and top-ups over loopback TCP");
  sub->add_option("--sessions", online->sessions, "concurrent sessions (default 1000)");
  sub->add_option("--seconds", online->seconds, "how long (default 10)");
  sub->add_option("--cards", online->cards, "cards (default 10000)");
  sub->add_option("--topup-percent", online->topup_percent,
                  "share of top-ups, the rest identity checks (default 50)");
  sub->add_option("--io-threads", online->io_threads, "server I/O threads (default 2)");
  sub->add_option("--client-threads", online->client_threads,
                  "the bench client's threads, each driving its share of the sessions (default 2)");
  sub->add_option("--rate", online->rate_per_s,
                  "requests/s offered by all sessions together (default 0: back to back)");
  sub->add_option("--dir", online->dir, "scratch directory (default: a new one under /tmp)");
  sub->add_flag("--keep", online->keep, "keep the scratch database and key file");
  sub->add_option("--seed", online->seed, "random seed (default 1)");
  sub->callback([&context, online] {
    RunCommand(context, [&] { return RunOnlineBench(*online); });
  });

  auto idle = std::make_shared<IdleBenchOptions>();
  sub = group->add_subcommand("idle", "server memory with many authenticated idle sessions");
  sub->add_option("--sessions", idle->sessions, "idle sessions (default 10000)");
  sub->add_option("--dir", idle->dir, "scratch directory (default: a new one under /tmp)");
  sub->add_flag("--keep", idle->keep, "keep the scratch database and key file");
  sub->callback([&context, idle] {
    RunCommand(context, [&] { return RunIdleBench(*idle); });
  });
}

}  // namespace citycard::cli
