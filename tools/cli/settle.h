// Settlement for the citycard program: the settlement of one clearing day over an open
// Environment, as `citycard settle` runs it, for the demo and the tests to call in-process.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/fares.h"
#include "core/settlement.h"
#include "core/settlement_tap_source.h"
#include "db/database.h"
#include "db/sqlite_registry_store.h"
#include "db/sqlite_settlement_reads.h"
#include "db/sqlite_tap_store.h"
#include "tools/cli/environment.h"

namespace citycard::cli {

// Moves the balances of replaced cards that are due (CardOffice::ProcessDueReplacements), then
// settles clearing day `day` (Settler::Settle) over the environment's database: the tap store,
// the settlement store and the daily caps of the current fare table. Failures: Settler::Settle's
// and the stores'.
Result<SettlementOutcome> SettleDay(Environment& env, int64_t day);

// The settlement's tap source on a connection of its own to the database at `db_path`, so
// that the Settler reads the day's taps on a second thread while it sums the ledger's day on
// the environment's connection (SettlerConfig::tap_source_apart). Members are declared in the
// order they are built and destroyed in reverse. nullptr for ":memory:" (a second connection
// would open another database): then the source shares the environment's connection.
// Failures: Database::Open's and the stores' Open.
struct ApartTapSource {
  std::unique_ptr<db::Database> db;
  std::unique_ptr<db::SqliteTapStore> taps;
  std::unique_ptr<db::SqliteRegistryStore> registry;
  std::unique_ptr<db::SqliteSettlementReads> reads;
  // A third connection, which reads the second half of a large day on a thread of its own
  // (TapStoreSettlementSource's second_reads).
  std::unique_ptr<db::Database> second_db;
  std::unique_ptr<db::SqliteSettlementReads> second_reads;
  std::unique_ptr<TapStoreSettlementSource> source;
};
Result<std::unique_ptr<ApartTapSource>> OpenApartTapSource(const std::string& db_path);

// The daily caps of the current fare table (`citycard fares load`); empty when no table is
// loaded (then nobody is capped).
Result<std::vector<DailyCap>> CurrentDailyCaps(Environment& env);

}  // namespace citycard::cli
