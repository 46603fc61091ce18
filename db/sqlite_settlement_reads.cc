#include "db/sqlite_settlement_reads.h"

#include "core/account_plan.h"
#include "db/sqlite_ledger_store.h"
#include "db/sqlite_registry_store.h"
#include "db/tap_pack.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <utility>

namespace citycard::db {

namespace {

// A reset on every path out of a read, so that a statement never stays mid-step.
struct ResetOnExit {
  Statement& statement;
  ~ResetOnExit() { statement.Reset(); }
};

// Sums per (account, code) in one flat table with open addressing: one probe into contiguous
// memory per transfer, where a node-based hash map's search (bucket, node, key) was the largest
// part of the sums' time (docs/benchmarks.md). A slot is free while its transfers are 0.
class AccountCodeTable {
 public:
  AccountCodeTable() : slots_(kInitialSlots) {}

  AccountCodeSum& At(uint64_t account, uint16_t code) {
    if ((used_ + 1) * 2 > slots_.size()) Grow();
    AccountCodeSum& slot = Find(slots_, account, code);
    if (slot.transfers == 0) {
      slot.account_id = account;
      slot.code = code;
      ++used_;
    }
    return slot;
  }

  void AppendTo(std::vector<AccountCodeSum>* out) const {
    out->reserve(out->size() + used_);
    for (const AccountCodeSum& slot : slots_) {
      if (slot.transfers != 0) out->push_back(slot);
    }
  }

 private:
  static constexpr size_t kInitialSlots = 1024;  // a power of two

  static AccountCodeSum& Find(std::vector<AccountCodeSum>& slots, uint64_t account,
                              uint16_t code) {
    const size_t mask = slots.size() - 1;
    uint64_t h = (account ^ (uint64_t{code} << 48)) * 0x9E3779B97F4A7C15ull;
    size_t i = static_cast<size_t>(h >> 20) & mask;
    while (slots[i].transfers != 0 && (slots[i].account_id != account || slots[i].code != code)) {
      i = (i + 1) & mask;
    }
    return slots[i];
  }

  void Grow() {
    std::vector<AccountCodeSum> bigger(slots_.size() * 2);
    for (const AccountCodeSum& slot : slots_) {
      if (slot.transfers != 0) Find(bigger, slot.account_id, slot.code) = slot;
    }
    slots_ = std::move(bigger);
  }

  std::vector<AccountCodeSum> slots_;
  size_t used_ = 0;
};

// Adds the posted movements of the transfers with seq in [first_seq, last_seq] to `sums`,
// reading every transfer. A range of the rowid: the transfers are read in table order, no
// index involved.
Status ScanMovements(Database& db, int64_t first_seq, int64_t last_seq,
                     std::optional<AccountKind> only_kind, AccountCodeTable* sums) {
  auto stmt = db.Prepare(
      "SELECT debit_account_id, credit_account_id, amount_fen, code FROM ledger_transfers "
      "WHERE seq BETWEEN ? AND ? AND (flags & ?) = 0");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, first_seq).Bind(2, last_seq).Bind(3, int64_t{kTransferNotPostedFlags});
  ResetOnExit reset{*stmt};
  // The run of one credited pair: a day's tap transfers credit the same payable one after
  // another, so most credits are added up here and enter the table once per run.
  AccountCodeSum run;
  for (;;) {
    auto row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const uint64_t debit = static_cast<uint64_t>(stmt->ColumnInt(0));
    const uint64_t credit = static_cast<uint64_t>(stmt->ColumnInt(1));
    const int64_t amount = stmt->ColumnInt(2);
    const uint16_t code = static_cast<uint16_t>(stmt->ColumnInt(3));
    if (!only_kind.has_value() || AccountIdKind(credit) == *only_kind) {
      if (run.transfers != 0 && (run.account_id != credit || run.code != code)) {
        AccountCodeSum& kept = sums->At(run.account_id, run.code);
        kept.transfers += run.transfers;
        kept.credits_fen += run.credits_fen;
        run = AccountCodeSum{};
      }
      run.account_id = credit;
      run.code = code;
      run.transfers += 1;
      run.credits_fen += amount;
    }
    // A day's tap transfers debit a purse each: left out (only_kind), they cost no search in
    // a table as large as the day's cards.
    if (!only_kind.has_value() || AccountIdKind(debit) == *only_kind) {
      AccountCodeSum& d = sums->At(debit, code);
      d.transfers += 1;
      d.debits_fen += amount;
    }
  }
  if (run.transfers != 0) {
    AccountCodeSum& kept = sums->At(run.account_id, run.code);
    kept.transfers += run.transfers;
    kept.credits_fen += run.credits_fen;
  }
  return Status::Ok();
}

// The batch that wrote transfer `seq`; nullopt when no transfer has that seq.
Result<std::optional<int64_t>> BatchOf(Database& db, int64_t seq) {
  auto stmt = db.Prepare("SELECT batch_seq FROM ledger_transfers WHERE seq = ?");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, seq);
  ResetOnExit reset{*stmt};
  auto row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<int64_t>();
  return std::optional(stmt->ColumnInt(0));
}

// Adds the batch sums of the batches in [first_batch, last_batch] to `sums`, for accounts of
// `kind` only.
Status AddBatchSums(Database& db, int64_t first_batch, int64_t last_batch, AccountKind kind,
                    AccountCodeTable* sums) {
  auto stmt = db.Prepare(
      "SELECT account_id, code, transfers, debits_fen, credits_fen FROM ledger_batch_sums "
      "WHERE batch_seq BETWEEN ? AND ?");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, first_batch).Bind(2, last_batch);
  ResetOnExit reset{*stmt};
  for (;;) {
    auto row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
    const uint64_t account = static_cast<uint64_t>(stmt->ColumnInt(0));
    if (AccountIdKind(account) != kind) continue;
    AccountCodeSum& sum = sums->At(account, static_cast<uint16_t>(stmt->ColumnInt(1)));
    sum.transfers += stmt->ColumnInt(2);
    sum.debits_fen += stmt->ColumnInt(3);
    sum.credits_fen += stmt->ColumnInt(4);
  }
}

// The movements of accounts of `kind` (one that KeepsBatchSums) over [first_seq, last_seq]:
// each batch that lies wholly in the stretch and kept its sums gives them; the transfers of
// the others (a batch cut by an end of the stretch, a batch written before the sums were
// kept) are read one by one.
Status SumFromBatches(Database& db, int64_t first_seq, int64_t last_seq, AccountKind kind,
                      AccountCodeTable* sums) {
  auto first_batch = BatchOf(db, first_seq);
  if (!first_batch.ok()) return first_batch.status();
  auto last_batch = BatchOf(db, last_seq);
  if (!last_batch.ok()) return last_batch.status();
  if (!first_batch->has_value() || !last_batch->has_value()) {
    return ScanMovements(db, first_seq, last_seq, kind, sums);
  }
  auto stmt = db.Prepare(
      "SELECT seq, first_transfer_seq, transfer_count, sums_kept FROM ledger_batches "
      "WHERE seq BETWEEN ? AND ? ORDER BY seq");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, **first_batch).Bind(2, **last_batch);
  std::optional<int64_t> summed_first;  // the batches whose sums are taken, first and last
  int64_t summed_last = 0;
  int64_t next_seq = first_seq;  // the first transfer not yet read nor summed
  {
    ResetOnExit reset{*stmt};
    for (;;) {
      auto row = stmt->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      const int64_t batch = stmt->ColumnInt(0);
      const int64_t from = stmt->ColumnInt(1);
      const int64_t to = from + stmt->ColumnInt(2) - 1;
      if (stmt->ColumnInt(3) == 0 || from < first_seq || to > last_seq) continue;
      if (next_seq < from) CITYCARD_RETURN_IF_ERROR(ScanMovements(db, next_seq, from - 1, kind, sums));
      next_seq = to + 1;
      if (!summed_first.has_value()) summed_first = batch;
      summed_last = batch;
    }
  }
  if (next_seq <= last_seq) CITYCARD_RETURN_IF_ERROR(ScanMovements(db, next_seq, last_seq, kind, sums));
  if (!summed_first.has_value()) return Status::Ok();
  // Between the first and the last batch summed, every batch that kept sums lies wholly in
  // the stretch (only the end batches can be cut), and one that kept none has no rows.
  return AddBatchSums(db, *summed_first, summed_last, kind, sums);
}

}  // namespace

Status SqliteSettlementReads::SumPostedMovements(int64_t first_seq, int64_t last_seq,
                                                 std::optional<AccountKind> only_kind,
                                                 std::vector<AccountCodeSum>* out) {
  if (first_seq > last_seq) return Status::Ok();
  AccountCodeTable sums;
  if (only_kind.has_value() && KeepsBatchSums(*only_kind)) {
    CITYCARD_RETURN_IF_ERROR(SumFromBatches(db_, first_seq, last_seq, *only_kind, &sums));
  } else {
    CITYCARD_RETURN_IF_ERROR(ScanMovements(db_, first_seq, last_seq, only_kind, &sums));
  }
  sums.AppendTo(out);
  return Status::Ok();
}

Status SqliteSettlementReads::ForEachDayTap(
    int64_t clearing_day, const std::function<Status(const DayTapSummary&)>& visit) {
  auto seqs = DayTapSeqs(clearing_day);
  if (!seqs.ok()) return seqs.status();
  if (!seqs->has_value()) return Status::Ok();
  return ForEachDayTapIn(clearing_day, **seqs, visit);
}

Result<std::optional<SeqRange>> SqliteSettlementReads::DayTapSeqs(int64_t clearing_day) {
  auto bounds = db_.Prepare(
      "SELECT (SELECT seq FROM ingest_taps WHERE clearing_day = ?1 ORDER BY seq LIMIT 1), "
      "(SELECT seq FROM ingest_taps WHERE clearing_day = ?1 ORDER BY seq DESC LIMIT 1)");
  if (!bounds.ok()) return bounds.status();
  bounds->Bind(1, clearing_day);
  ResetOnExit reset{*bounds};
  auto found = bounds->Step();
  if (!found.ok()) return found.status();
  if (!*found || bounds->ColumnIsNull(0)) return std::optional<SeqRange>();
  return std::optional(SeqRange{bounds->ColumnInt(0), bounds->ColumnInt(1)});
}

Status SqliteSettlementReads::ForEachDayTapIn(
    int64_t clearing_day, SeqRange seqs, const std::function<Status(const DayTapSummary&)>& visit) {
  // The packs that hold a tap of the stretch: the last one starting at or before its first seq,
  // and every one starting inside it.
  auto packs = db_.Prepare(
      "SELECT first_seq, taps, pack FROM ingest_tap_packs WHERE first_seq BETWEEN "
      "coalesce((SELECT max(first_seq) FROM ingest_tap_packs WHERE first_seq <= ?1), ?1) AND ?2 "
      "ORDER BY first_seq");
  if (!packs.ok()) return packs.status();
  packs->Bind(1, seqs.first).Bind(2, seqs.last);
  ResetOnExit reset{*packs};
  int64_t next = seqs.first;  // the first seq of the stretch neither packed nor read yet
  for (;;) {
    auto row = packs->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const int64_t first = packs->ColumnInt(0);
    const int64_t taps = packs->ColumnInt(1);
    // Taps between two packs were booked without one (before ingest schema version 3, or by
    // a write whose taps could not be packed).
    if (first > next) {
      CITYCARD_RETURN_IF_ERROR(ForEachDayTapRow(clearing_day, {next, first - 1}, visit));
    }
    const int64_t from = std::max(first, next);
    if (from <= seqs.last && first + taps - 1 >= from) {
      CITYCARD_RETURN_IF_ERROR(ForEachPackedTap(packs->ColumnBlobView(2), first, taps,
                                                {from, seqs.last}, clearing_day, visit));
    }
    next = std::max(next, first + taps);
  }
  if (next <= seqs.last) {
    CITYCARD_RETURN_IF_ERROR(ForEachDayTapRow(clearing_day, {next, seqs.last}, visit));
  }
  return Status::Ok();
}

Status SqliteSettlementReads::ForEachDayTapRow(
    int64_t clearing_day, SeqRange seqs, const std::function<Status(const DayTapSummary&)>& visit) {
  // The day's taps were booked one after another, so they lie between its first and last seq;
  // reading that stretch of the table in order costs no index lookup per row, and the
  // clearing_day test (kept off the index by the unary +) drops any other day's rows in it.
  auto s = db_.Prepare(
      "SELECT seq, record, late, transfer_id IS NOT NULL FROM ingest_taps "
      "WHERE seq BETWEEN ? AND ? AND +clearing_day = ? ORDER BY seq");
  if (!s.ok()) return s.status();
  s->Bind(1, seqs.first).Bind(2, seqs.last).Bind(3, clearing_day);
  ResetOnExit reset{*s};
  for (;;) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
    DayTapSummary tap;
    // A view of the record's bytes, valid until the next step (the visit is done by then; the
    // operator id points into it): a copy per tap was a malloc and a free each.
    CITYCARD_RETURN_IF_ERROR(SummaryFromRecord(s->ColumnInt(0), s->ColumnBlobView(1), &tap));
    tap.late = s->ColumnInt(2) != 0;
    tap.paid = s->ColumnInt(3) != 0;
    CITYCARD_RETURN_IF_ERROR(visit(tap));
  }
}

Status SqliteSettlementReads::FindRebateCards(std::span<const std::string> card_nos,
                                              std::vector<RebateCardState>* out) {
  CITYCARD_ASSERT(std::adjacent_find(card_nos.begin(), card_nos.end(),
                                     std::greater_equal<>()) == card_nos.end());
  if (card_nos.empty()) return Status::Ok();
  // card_no is the table's key (WITHOUT ROWID): the rows come in key order with no sort, and
  // SQLite's text order (memcmp) is std::string's.
  auto s = db_.Prepare(
      "SELECT card_no, status, purse_account_id, replaced_by, balance_moved_s FROM cards "
      "WHERE card_no >= ?1 AND card_no <= ?2 ORDER BY card_no");
  if (!s.ok()) return s.status();
  ResetOnExit reset{*s};
  size_t next = 0;  // the first card asked for that the walk has not passed yet
  while (next < card_nos.size()) {
    s->Reset();
    s->Bind(1, card_nos[next]).Bind(2, card_nos.back());
    size_t skipped = 0;
    for (;;) {
      auto row = s->Step();
      if (!row.ok()) return row.status();
      if (!*row) return Status::Ok();  // the cards not met are not registered
      std::string card_no = s->ColumnText(0);
      // Cards asked for that sort before this row are not registered.
      while (next < card_nos.size() && card_nos[next] < card_no) ++next;
      if (next == card_nos.size()) return Status::Ok();
      if (card_nos[next] != card_no) {
        if (++skipped > kRebateCardRowsSkippedMax) break;  // seek to card_nos[next]
        continue;
      }
      skipped = 0;
      out->push_back(RebateCardState{std::move(card_no), static_cast<CardStatus>(s->ColumnInt(1)),
                                     static_cast<uint64_t>(s->ColumnInt(2)), s->ColumnText(3),
                                     s->ColumnInt(4)});
      if (++next == card_nos.size()) return Status::Ok();
    }
  }
  return Status::Ok();
}

Result<int64_t> SqliteSettlementReads::CardChanges() { return ReadCardChanges(db_); }

}  // namespace citycard::db
