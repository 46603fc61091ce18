// The replay of a recorded day (docs/replay.md): every row of a Shenzhen Tong file becomes a
// tap made by a simulated card (tools/sim) on a simulated reader and uploaded through the
// terminal protocol to a server, either a live one (--server) or one started in-process on a
// loopback port whose clock follows the replayed taps (CLI.md "Replay and time").
// `citycard replay` and `citycard demo` call ReplaySzt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/szt_file.h"
#include "tools/cli/app.h"

namespace citycard::cli {

// The largest file `citycard replay` reads.
inline constexpr size_t kReplayFileBytesMax = size_t{512} << 20;
// Provisioning: how long before the first tap the in-process clock starts, and how many cards
// one storage transaction provisions.
inline constexpr int64_t kReplayProvisionLeadSeconds = 3600;
inline constexpr size_t kReplayProvisionCardsPerCommit = 2'000;

struct ReplayOptions {
  // "HOST:PORT" of a running `citycard serve`; empty: an in-process server on 127.0.0.1.
  std::string server;
  // Create the operators, terminals and cards the file needs (each card topped up with what
  // its taps pay plus kReplayCardFloatFen); what exists already is left as it is.
  bool provision = false;
  // Called after each uploaded batch with the taps uploaded so far and the total; may be empty.
  std::function<void(size_t done, size_t total)> progress;
};

struct ReplaySummary {
  int64_t taps = 0;        // rows replayed
  int64_t accepted = 0;    // booked now (accepted, accepted_late, accepted_with_alert)
  int64_t duplicates = 0;  // booked before: nothing moved
  int64_t rejected = 0;    // everything else (never uploaded, refused, left for later)
  int64_t operators = 0;   // operators in the file
  int64_t terminals = 0;
  int64_t cards = 0;
  int64_t batches = 0;
  int64_t late = 0;        // of accepted: cleared on a later day than they were made
  std::map<std::string, int64_t> rejected_by_code;  // ResultCodeName or a local reason
  std::vector<std::string> days;  // the clearing days the batches arrived on, ascending
  bool ledger_ahead = false;      // see ReplaySzt
};

// Replays `rows` (ParseSztFile). Opens the database and key file of `options` itself (a
// connection, ledger and stores of its own, on the replay's clock): a caller holding an
// Environment on the same database must not write through it meanwhile, and must reopen it
// afterwards (the ledger caches its head).
// With the in-process server, the clock starts kReplayProvisionLeadSeconds before the first tap
// and follows the arrivals of the batches. The ledger's timestamps never go back: when it
// already holds transfers stamped later than that start, what the replay books is stamped
// later too and its days cannot be settled (the summary says ledger_ahead; replay into a fresh
// database, or into a running server with --server). Replaying a file again books nothing, so
// it is not affected.
// Failures: Kind::usage "invalid_server" (not HOST:PORT); the plan's (PlanReplay) and provisioning's
// failures; the database's and key file's; "connection_failed" when the server cannot be
// reached at all. Refusals of single taps or terminals are counted, not failures.
Result<ReplaySummary> ReplaySzt(const GlobalOptions& options, const std::vector<SztRow>& rows,
                                const ReplayOptions& replay);

// The summary as CLI.md's `replay` JSON: {"taps","accepted","duplicates","rejected",
// "operators", ...}.
nlohmann::json ReplaySummaryJson(const ReplaySummary& summary);

}  // namespace citycard::cli
