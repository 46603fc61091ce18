// The PostgreSQL side of `citycard bench ingest --with-postgres` (docs/benchmarks.md): the
// same posting a tap gets from the core, written as a PostgreSQL 15 installation would do it,
// over libpq. Only for the benchmark; the core never runs on PostgreSQL.
//
// Per tap, inside ONE transaction per group (synchronous_commit=on: COMMIT returns when the
// WAL is flushed), in libpq's pipeline mode so that no statement waits for a round trip:
// - INSERT the tap (terminal, TTC, card, CTC, the record's 138 bytes, amount, time) into a
//   table with UNIQUE (terminal_id, ttc) and UNIQUE (card_no, ctc): the duplicate checks;
// - UPDATE the card's purse row (balance, last counter) WHERE the record's counter follows the
//   last one and its balance before equals the purse's: the counter and shadow-balance check;
// - INSERT the transfer purse -> operator payable (16-byte id, UNIQUE).
// Per group: UPDATE the operator's payable by the group's sum, then COMMIT. A tap whose insert
// hit a duplicate or whose purse update matched no row is refused (the group is rolled back
// and run again without it, as the core does).
//
// The cluster itself (initdb, pg_ctl) is started by the caller; see tools/cli/pg_cluster.h.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tap_record.h"

namespace citycard::db {

// True when this build has libpq (find_package(PostgreSQL) found it).
bool PostgresAvailable();

// One tap as the benchmark books it: the record, its encoding and its transfer id.
struct PgTap {
  const TapRecord* record = nullptr;
  Bytes encoded;    // EncodeTapRecord(*record)
  uint8_t transfer_id[16] = {};
};

struct PgTotals {
  int64_t taps = 0;
  int64_t transfers = 0;
  int64_t purse_sum_fen = 0;
  int64_t payable_fen = 0;
};

class PostgresTapBench {
 public:
  // Connects with a libpq connection string. Kind::internal "postgres_unavailable" when the
  // build has no libpq; "postgres_connect_failed" with the server's message.
  static Result<std::unique_ptr<PostgresTapBench>> Connect(const std::string& conninfo);
  ~PostgresTapBench();
  PostgresTapBench(const PostgresTapBench&) = delete;
  PostgresTapBench& operator=(const PostgresTapBench&) = delete;

  // Creates the tables (dropping earlier ones) and loads `card_nos` with `purse_fen` each, in
  // one COPY, and the operator's payable at zero. Kind::internal "postgres_error".
  Status Setup(std::span<const uint64_t> card_nos, int64_t purse_fen);

  // Books one group in one durable transaction. `booked[i]` says whether taps[i] was booked
  // (false: a duplicate or a counter/balance mismatch). Kind::internal "postgres_error".
  Status BookGroup(std::span<const PgTap> taps, std::vector<bool>* booked);

  // What the tables hold (for the benchmark's checks).
  Result<PgTotals> Totals();

 private:
  struct Impl;
  explicit PostgresTapBench(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace citycard::db
