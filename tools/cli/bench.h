// The benchmarks of `citycard bench` (docs/benchmarks.md), each on a scratch installation
// (tools/cli/bench_world.h) in its own directory, removed afterwards unless --keep.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tools/cli/app.h"

namespace citycard::cli {

// The most taps one `bench ingest` run makes (they are all held in memory before timing).
inline constexpr int64_t kBenchIngestTapsMax = 20'000'000;
// Records per uploaded batch (a reader's upload), at most terminals::kRecordsPerBatchMax.
inline constexpr size_t kBenchIngestBatchDefault = 64;
// Cards whose simulated card objects are kept between taps; above it each tap re-derives its
// card's key (slower to generate, and it is not timed).
inline constexpr int64_t kBenchSimCardsKeptMax = 200'000;

struct IngestBenchOptions {
  int64_t cards = 10'000;
  int64_t taps = 0;  // 0: max(1,000,000, cards) capped at kBenchIngestTapsMax
  size_t group = 16'384;  // records per group commit at most (the server's --group-records)
  size_t batch = kBenchIngestBatchDefault;
  int64_t terminals = 256;
  bool via_server = false;     // through loopback TCP and the terminal protocol
  size_t client_threads = 64;  // --via-server: uploading readers at once
  bool with_postgres = false;  // the same posting logic on PostgreSQL 15 as well
  std::string dir;             // default /tmp/citycard-bench-ingest-<pid>
  bool keep = false;           // keep the scratch files
  unsigned seed = 1;
};

// `citycard bench ingest`. The JSON fields are listed in docs/benchmarks.md. Failures: the
// setup's (BenchWorld::Create), Kind::usage "invalid_bench_size", store and server failures.
// A run in which some tap is not accepted, or the ledger does not add up, fails with
// Kind::internal "bench_check_failed" (the message says what was wrong).
Result<CommandOutput> RunIngestBench(const IngestBenchOptions& options);

}  // namespace citycard::cli
