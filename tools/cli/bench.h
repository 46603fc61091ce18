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
  size_t group = 32'768;  // records per group commit at most (the server's --group-records)
  size_t batch = kBenchIngestBatchDefault;
  int64_t terminals = 256;
  bool via_server = false;     // through loopback TCP and the terminal protocol
  size_t client_threads = 0;   // --via-server: readers uploading at once (0: every reader)
  bool with_postgres = false;  // the same posting logic on PostgreSQL 15 as well
  int64_t cache_mb = 0;        // the connection's page cache, MB; 0: the server's default
                               // (tools/server/ingest_server.h kServerCacheBytesDefault)
  bool inline_checkpoints = false;  // SQLite's checkpoints in the writer's commits (to compare)
  bool no_cards_ahead = false;  // the writer reads every card itself (to compare)
  bool no_purses_ahead = false;  // the writer reads every purse itself (to compare)
  std::string dir;             // default /tmp/citycard-bench-ingest-<pid>
  bool keep = false;           // keep the scratch files
  unsigned seed = 1;
};

// `citycard bench ingest`. The JSON fields are listed in docs/benchmarks.md. Failures: the
// setup's (BenchWorld::Create), Kind::usage "invalid_bench_size", store and server failures.
// A run in which some tap is not accepted, or the ledger does not add up, fails with
// Kind::internal "bench_check_failed" (the message says what was wrong).
Result<CommandOutput> RunIngestBench(const IngestBenchOptions& options);

struct SettleBenchOptions {
  int64_t taps = 1'000'000;  // booked on one clearing day (untimed), then settled (timed)
  int64_t cards = 100'000;
  int64_t cap_fen = 1'000;   // the adult daily bus cap the settlement applies (0: none)
  std::string dir;           // default /tmp/citycard-bench-settle-<pid>
  bool keep = false;
  unsigned seed = 1;
  // For measuring settlement alone, again and again on copies of one booked day: book_only
  // books the day into `dir`, writes what was booked to dir/settle-day.json and keeps the
  // directory, settling nothing; booked_dir settles the day such a run kept there (taps and
  // cards are then read from that file; --taps, --cards and --seed are ignored).
  bool book_only = false;
  std::string booked_dir;
};

// `citycard bench settle`: a clearing day of `taps` taps, booked through the ingest backend
// with the clock two days back, then settled (tools/cli/settle.h's Settler, the same as
// `citycard settle`) with the adult bus cap. Reports the settlement's seconds and taps/s, and
// the time 10,000,000 taps would take at that rate. Checks: the report counts every tap and
// what they paid, and the operator's payable afterwards holds what was paid minus the rebates
// and the payout. Failures: as RunIngestBench, and the settlement's; with booked_dir, the
// environment's (Environment::Open) and Kind::not_found "booked_day_not_found" when the
// directory holds no settle-day.json.
Result<CommandOutput> RunSettleBench(const SettleBenchOptions& options);

inline constexpr size_t kBenchOnlineSessionsMax = 4'000;
inline constexpr size_t kBenchOnlineClientThreadsMax = 64;
inline constexpr size_t kBenchIdleSessionsMax = 16'000;

struct OnlineBenchOptions {
  size_t sessions = 1'000;
  double seconds = 10;
  int64_t cards = 10'000;
  unsigned topup_percent = 50;  // the rest are identity checks
  size_t io_threads = 2;        // the server's
  // The threads of the bench's own client, each driving its share of the sessions with
  // epoll (at most kBenchOnlineClientThreadsMax).
  size_t client_threads = 2;
  // 0: every session sends its next request as soon as the last is answered. Otherwise the
  // requests per second offered by all sessions together: each session sends at most one
  // every sessions / rate_per_s seconds (to measure latency at a given load).
  double rate_per_s = 0;
  std::string dir;              // default /tmp/citycard-bench-online-<pid>
  bool keep = false;
  unsigned seed = 1;
};

// `citycard bench online` (tools/cli/online_bench.cc). Failures: the setup's, the server's;
// Kind::internal "bench_check_failed" when a request was not answered ok or the pending
// top-ups do not add up.
Result<CommandOutput> RunOnlineBench(const OnlineBenchOptions& options);

struct IdleBenchOptions {
  size_t sessions = 10'000;
  std::string dir;  // default /tmp/citycard-bench-idle-<pid>
  bool keep = false;
};

// `citycard bench idle`: the server's resident memory with `sessions` authenticated idle
// sessions (the server runs in a forked child). Failures: the setup's; a session that could
// not connect or authenticate (its Status).
Result<CommandOutput> RunIdleBench(const IdleBenchOptions& options);

}  // namespace citycard::cli
