// Settlement's reads of a clearing day (core/settlement_reads.h) in SQL over one connection:
// the ledger's posted movements summed from four columns of ledger_transfers, and the day's
// taps read from ingest_taps taking only the record bytes settlement needs. Read-only queries
// over the tables of the ledger's and the ingest's stores (db/sqlite_ledger_store.cc,
// db/sqlite_tap_store.cc, whose schemas they follow); they live here so that settlement's
// reads change without touching those stores' interfaces. docs/settlement.md "Reading the day".
#pragma once

#include "core/settlement_reads.h"
#include "db/database.h"

namespace citycard::db {

class SqliteSettlementReads final : public SettlementReads {
 public:
  // The Database must outlive this, and hold the ledger's and the ingest's schemas (opened by
  // SqliteLedgerStore::Open and SqliteTapStore::Open).
  explicit SqliteSettlementReads(Database& db) : db_(db) {}

  // One pass over the rowid range reading four columns per transfer, summed in a hash map
  // (a GROUP BY would sort every row of the day).
  Status SumPostedMovements(int64_t first_seq, int64_t last_seq,
                            std::vector<AccountCodeSum>* out) override;
  // The day's rows between its first and last seq (found on the clearing_day index) in table
  // order, with only the record's type, profile, amount, time and operator taken from its
  // bytes (docs/protocol.md "Tap record"): no whole decode (nor its checks, made when the tap
  // was booked).
  Status ForEachDayTap(int64_t clearing_day,
                       const std::function<Status(const DayTapSummary&)>& visit) override;

 private:
  Database& db_;
};

}  // namespace citycard::db
