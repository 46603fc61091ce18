// Settlement's bulk reads (core/settlement_reads.h) in SQL over one connection: the ledger's
// posted movements summed from four columns of ledger_transfers, the day's taps read from
// their writes' packs (or from ingest_taps, taking only the record bytes settlement needs), and the rebated cards' states
// read from cards in one walk. Read-only queries over the tables of the ledger's, the
// ingest's and the registry's stores (db/sqlite_ledger_store.cc, db/sqlite_tap_store.cc,
// db/sqlite_registry_store.cc, whose schemas they follow); they live here so that
// settlement's reads change without touching those stores' interfaces. docs/settlement.md
// "Reading the day".
#pragma once

#include "core/settlement_reads.h"
#include "db/database.h"

namespace citycard::db {

class SqliteSettlementReads final : public SettlementReads {
 public:
  // The Database must outlive this, and hold the ledger's, the ingest's and the registry's
  // schemas (opened by SqliteLedgerStore::Open, SqliteTapStore::Open and
  // SqliteRegistryStore::Open) for the reads that use them.
  explicit SqliteSettlementReads(Database& db) : db_(db) {}

  // One pass over the rowid range reading four columns per transfer, summed in a hash map
  // (a GROUP BY would sort every row of the day); with `only_kind`, the other accounts' sides
  // are never entered in it.
  Status SumPostedMovements(int64_t first_seq, int64_t last_seq,
                            std::optional<AccountKind> only_kind,
                            std::vector<AccountCodeSum>* out) override;
  // The packs of the writes that booked the day's taps (ingest_tap_packs, db/tap_pack.h,
  // docs/tap-packs.md) between its first and last seq (found on the clearing_day index);
  // taps booked without a pack (before ingest schema version 3) from their rows of
  // ingest_taps in table order, with only the record's card, type, profile, amount, time and
  // operator taken from its bytes (docs/protocol.md "Tap record"): no whole decode (nor its
  // checks, made when the tap was booked).
  Status ForEachDayTap(int64_t clearing_day,
                       const std::function<Status(const DayTapSummary&)>& visit) override;
  // Two lookups on the clearing_day index.
  Result<std::optional<SeqRange>> DayTapSeqs(int64_t clearing_day) override;
  Status ForEachDayTapIn(int64_t clearing_day, SeqRange seqs,
                         const std::function<Status(const DayTapSummary&)>& visit) override;
  // One walk of the registry's cards table (db/sqlite_registry_store.cc) in card_no order from
  // the first card asked for to the last, reading five columns, merged with the cards asked
  // for. Where more than kRebateCardRowsSkippedMax rows in a row were not asked for, the walk
  // seeks to the next card asked for instead: a dense set of cards costs one pass over their
  // stretch of the table, a sparse one about a lookup per card.
  Status FindRebateCards(std::span<const std::string> card_nos,
                         std::vector<RebateCardState>* out) override;

  // db::ReadCardChanges over this connection.
  Result<int64_t> CardChanges() override;

  static constexpr size_t kRebateCardRowsSkippedMax = 32;

 private:
  // The day's taps of `seqs` read from their rows of ingest_taps, whether packed or not.
  Status ForEachDayTapRow(int64_t clearing_day, SeqRange seqs,
                          const std::function<Status(const DayTapSummary&)>& visit);

  Database& db_;
};

}  // namespace citycard::db
