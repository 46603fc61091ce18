// The scratch installation the benchmarks of `citycard bench` run on (docs/benchmarks.md): a
// new key file and database in a directory of their own, one operator, `terminals` terminals
// registered through the terminal office (their plain keys kept for simulated readers), and
// `cards` cards provisioned in bulk: holder, card, purse account and an opening top-up, many
// cards per storage transaction. Nothing here is timed; the benchmarks time what follows.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"
#include "tools/cli/environment.h"
#include "tools/sim/sim_card.h"

namespace citycard::cli {

// The most cards and terminals a benchmark installation may have.
inline constexpr int64_t kBenchWorldCardsMax = 10'000'000;
inline constexpr int64_t kBenchWorldTerminalsMax = 10'000;
// Cards provisioned per storage transaction (each a holder, a card, a purse, a top-up).
inline constexpr int64_t kBenchWorldCardsPerCommit = 50'000;
// The benchmark operator's id and each card's opening balance (¥1,000, a purse's limit).
inline constexpr char kBenchOperatorId[] = "BENCH";
inline constexpr int64_t kBenchPurseFen = 100'000;

struct BenchTerminal {
  std::string id;
  Bytes plain_key;  // the 32-byte HMAC key, for a simulated reader
  uint8_t key_version = 1;
};

struct BenchWorldOptions {
  std::string dir;  // created if missing; must not hold bench.db or bench.keys
  int64_t cards = 10'000;
  int64_t terminals = 256;
  int64_t purse_fen = kBenchPurseFen;  // each card's opening balance, 1..kBenchPurseFen
};

class BenchWorld {
 public:
  // Creates the installation. Failures: Kind::usage "invalid_bench_size" (cards or terminals
  // out of 1..max); Kind::refused "database_exists" / "key_file_exists" (Environment::Create);
  // store failures.
  static Result<std::unique_ptr<BenchWorld>> Create(const BenchWorldOptions& options);

  // Removes the installation's files (the directory too when it is then empty). The
  // environment must not be used afterwards.
  void RemoveFiles();

  Environment& env() { return *env_; }
  const Clock& clock() const { return env_->clock(); }
  const std::string& dir() const { return dir_; }
  const std::vector<BenchTerminal>& terminals() const { return terminals_; }
  int64_t cards() const { return cards_; }
  double setup_seconds() const { return setup_seconds_; }

  // The number of bench card `index` (0-based): MakeCardNumber(index + 1) as an integer.
  static uint64_t CardNo(int64_t index);
  // The simulated card of bench card `index` with the given counter and balance (its key
  // diversified from the key file's current card master key).
  sim::SimCard Card(int64_t index, uint32_t counter, int64_t balance_fen) const;

 private:
  BenchWorld() = default;
  Status AddCards(int64_t from, int64_t to, int64_t purse_fen);

  std::string dir_;
  std::unique_ptr<Environment> env_;
  std::vector<BenchTerminal> terminals_;
  int64_t cards_ = 0;
  double setup_seconds_ = 0;
  Bytes master_;
  uint8_t card_key_version_ = 1;
};

// Seconds since `start` on the steady clock.
double BenchSecondsSince(int64_t start_ns);
// The steady clock now, in nanoseconds.
int64_t BenchNowNs();

}  // namespace citycard::cli
