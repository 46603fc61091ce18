#include "core/audit.h"

#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

namespace citycard {

namespace {

// Pages of the audit's scans: large enough that the store's per-call cost disappears, small
// enough to keep memory flat.
constexpr size_t kAuditTransferPage = 4'096;
constexpr size_t kAuditBatchPage = 1'024;
// How many transfer ids a hash-mismatch problem lists before it gives only the seq range.
constexpr size_t kAuditIdsPerBatchProblemMax = 16;

struct Replayed {
  int64_t debits_posted = 0;
  int64_t credits_posted = 0;
  int64_t debits_pending = 0;
  int64_t credits_pending = 0;
  int64_t last_seq = 0;
  int64_t balance() const { return credits_posted - debits_posted; }
};

struct PendingSeen {
  uint64_t debit = 0;
  uint64_t credit = 0;
  int64_t amount = 0;
  int64_t seq = 0;
  PendingStatus recomputed = PendingStatus::pending;
  PendingStatus stored = PendingStatus::pending;
};

std::string Name(const TransferRecord& r) {
  return fmt::format("transfer {} (seq {})", r.transfer.id.ToHex(), r.seq);
}

class Auditor {
 public:
  Auditor(LedgerStore& store, const Digester& digester) : store_(store), digester_(digester) {}

  Result<AuditReport> Run() {
    CITYCARD_RETURN_IF_ERROR(store_.ScanAccounts([&](const AccountRecord& r) {
      stored_[r.account.id] = r;
      return Status::Ok();
    }));
    report_.accounts = static_cast<int64_t>(stored_.size());
    CITYCARD_RETURN_IF_ERROR(VerifyChainAndReplay());
    CompareAccounts();
    ComparePending();
    if (omitted_ > 0) {
      report_.problems.push_back(fmt::format("… and {} more problems", omitted_));
    }
    report_.ok = report_.problems.empty();
    return report_;
  }

 private:
  void Problem(std::string text) {
    if (report_.problems.size() < kAuditProblemsMax) {
      report_.problems.push_back(std::move(text));
    } else {
      ++omitted_;
    }
  }

  Status NextTransfer(std::optional<TransferRecord>* out) {
    if (transfer_pos_ == transfer_page_.size()) {
      if (transfers_done_) {
        out->reset();
        return Status::Ok();
      }
      transfer_page_.clear();
      transfer_pos_ = 0;
      CITYCARD_RETURN_IF_ERROR(store_.ScanTransfers(transfer_cursor_, kAuditTransferPage, &transfer_page_));
      transfers_done_ = transfer_page_.size() < kAuditTransferPage;
      if (transfer_page_.empty()) {
        out->reset();
        return Status::Ok();
      }
      transfer_cursor_ = transfer_page_.back().seq;
    }
    *out = std::move(transfer_page_[transfer_pos_++]);
    return Status::Ok();
  }

  Status NextBatch(std::optional<BatchRecord>* out) {
    if (batch_pos_ == batch_page_.size()) {
      if (batches_done_) {
        out->reset();
        return Status::Ok();
      }
      batch_page_.clear();
      batch_pos_ = 0;
      CITYCARD_RETURN_IF_ERROR(store_.ScanBatches(batch_cursor_, kAuditBatchPage, &batch_page_));
      batches_done_ = batch_page_.size() < kAuditBatchPage;
      if (batch_page_.empty()) {
        out->reset();
        return Status::Ok();
      }
      batch_cursor_ = batch_page_.back().seq;
    }
    *out = batch_page_[batch_pos_++];
    return Status::Ok();
  }

  Status VerifyChainAndReplay() {
    std::optional<TransferRecord> t;
    CITYCARD_RETURN_IF_ERROR(NextTransfer(&t));
    std::optional<BatchRecord> b;
    int64_t expected_batch = 1;
    Sha256Digest prev_hash{};
    while (true) {
      CITYCARD_RETURN_IF_ERROR(NextBatch(&b));
      if (!b) break;
      if (b->seq != expected_batch) {
        Problem(fmt::format("batch {}: expected batch {} here; the chain has a gap", b->seq,
                            expected_batch));
      }
      if (b->prev_hash != prev_hash) {
        Problem(fmt::format("batch {}: prev_hash does not match the hash of the batch before",
                            b->seq));
      }
      std::vector<TransferRecord> group;
      int64_t end = b->first_transfer_seq + b->transfer_count;
      while (t && t->seq < end) {
        if (t->seq < b->first_transfer_seq) {
          Problem(fmt::format("{}: belongs to no batch", Name(*t)));
        } else {
          if (t->batch_seq != b->seq) {
            Problem(fmt::format("{}: says batch {} but lies in batch {}", Name(*t), t->batch_seq,
                                b->seq));
          }
          group.push_back(*t);
        }
        Replay(*t);
        CITYCARD_RETURN_IF_ERROR(NextTransfer(&t));
      }
      CheckBatchHash(*b, group);
      prev_hash = b->hash;
      expected_batch = b->seq + 1;
    }
    while (t) {
      Problem(fmt::format("{}: belongs to no batch", Name(*t)));
      Replay(*t);
      CITYCARD_RETURN_IF_ERROR(NextTransfer(&t));
    }
    return Status::Ok();
  }

  void CheckBatchHash(const BatchRecord& b, const std::vector<TransferRecord>& group) {
    if (static_cast<int64_t>(group.size()) != b.transfer_count) {
      Problem(fmt::format("batch {}: records {} transfers from seq {}, found {}", b.seq,
                          b.transfer_count, b.first_transfer_seq, group.size()));
    }
    std::vector<Transfer> transfers;
    transfers.reserve(group.size());
    for (const TransferRecord& r : group) transfers.push_back(r.transfer);
    if (BatchHash(digester_, b.prev_hash, b.seq, transfers) == b.hash) return;
    std::string ids;
    for (size_t i = 0; i < group.size() && i < kAuditIdsPerBatchProblemMax; ++i) {
      ids += (i ? ", " : "") + group[i].transfer.id.ToHex();
    }
    if (group.size() > kAuditIdsPerBatchProblemMax) ids += ", …";
    Problem(fmt::format(
        "batch {}: hash mismatch: one of its transfers (seq {}..{}: {}) was altered", b.seq,
        b.first_transfer_seq, b.first_transfer_seq + b.transfer_count - 1, ids));
  }

  Replayed* AccountFor(const TransferRecord& r, uint64_t id) {
    if (!stored_.contains(id)) {
      Problem(fmt::format("{}: account {} does not exist", Name(r), id));
      return nullptr;
    }
    return &replayed_[id];
  }

  void Replay(const TransferRecord& r) {
    ++report_.transfers;
    const Transfer& t = r.transfer;
    if (r.seq != expected_transfer_seq_) {
      Problem(fmt::format("{}: expected seq {}; transfers are missing", Name(r), expected_transfer_seq_));
    }
    expected_transfer_seq_ = r.seq + 1;
    if (t.id.IsZero() || !ids_.insert(t.id).second) {
      Problem(fmt::format("{}: the id is zero or used twice", Name(r)));
    }
    if (t.debit_account_id == t.credit_account_id || t.amount_fen <= 0 ||
        t.amount_fen > kTransferAmountFenMax) {
      Problem(fmt::format("{}: accounts {} -> {}, amount_fen {} is not a valid transfer", Name(r),
                          t.debit_account_id, t.credit_account_id, t.amount_fen));
      return;
    }
    Replayed* debit = AccountFor(r, t.debit_account_id);
    Replayed* credit = AccountFor(r, t.credit_account_id);
    if (debit == nullptr || credit == nullptr) return;
    if ((t.flags & (kTransferPostPending | kTransferVoidPending)) != 0) {
      if (!ReplayResolution(r, *debit, *credit)) return;
    } else if ((t.flags & kTransferPending) != 0) {
      debit->debits_pending += t.amount_fen;
      credit->credits_pending += t.amount_fen;
      pending_[t.id] = PendingSeen{t.debit_account_id, t.credit_account_id, t.amount_fen, r.seq,
                                   PendingStatus::pending, r.pending_status};
      CheckFloor(r, *debit);
    } else {
      debit->debits_posted += t.amount_fen;
      credit->credits_posted += t.amount_fen;
      CheckFloor(r, *debit);
    }
    if (r.debit_balance_after_fen != debit->balance() ||
        r.credit_balance_after_fen != credit->balance()) {
      Problem(fmt::format("{}: stored balances after ({}, {}) differ from the replay ({}, {})",
                          Name(r), r.debit_balance_after_fen, r.credit_balance_after_fen,
                          debit->balance(), credit->balance()));
    }
    if (r.debit_prev_seq != debit->last_seq || r.credit_prev_seq != credit->last_seq) {
      Problem(fmt::format("{}: history links ({}, {}) differ from the replay ({}, {})", Name(r),
                          r.debit_prev_seq, r.credit_prev_seq, debit->last_seq, credit->last_seq));
    }
    debit->last_seq = r.seq;
    credit->last_seq = r.seq;
  }

  bool ReplayResolution(const TransferRecord& r, Replayed& debit, Replayed& credit) {
    const Transfer& t = r.transfer;
    auto it = pending_.find(t.pending_id);
    if (it == pending_.end()) {
      Problem(fmt::format("{}: resolves {}, which is no earlier pending transfer", Name(r),
                          t.pending_id.ToHex()));
      return false;
    }
    PendingSeen& p = it->second;
    bool post = (t.flags & kTransferPostPending) != 0;
    if (p.recomputed != PendingStatus::pending || p.debit != t.debit_account_id ||
        p.credit != t.credit_account_id || t.amount_fen > p.amount ||
        (!post && t.amount_fen != p.amount)) {
      Problem(fmt::format("{}: does not match its pending transfer {} or resolves it twice",
                          Name(r), t.pending_id.ToHex()));
      return false;
    }
    debit.debits_pending -= p.amount;
    credit.credits_pending -= p.amount;
    if (post) {
      debit.debits_posted += t.amount_fen;
      credit.credits_posted += t.amount_fen;
    }
    p.recomputed = post ? PendingStatus::posted
                        : ((t.flags & kTransferExpiry) ? PendingStatus::expired : PendingStatus::voided);
    return true;
  }

  void CheckFloor(const TransferRecord& r, const Replayed& debit) {
    const Account& a = stored_.at(r.transfer.debit_account_id).account;
    if (!a.enforces_floor() || (r.transfer.flags & kTransferIgnoreFloor) != 0) return;
    int64_t available = debit.balance() - debit.debits_pending;
    if (available < a.floor_fen) {
      Problem(fmt::format("{}: takes account {} to {} fen available, below its floor {}", Name(r),
                          a.id, available, a.floor_fen));
    }
  }

  void CompareAccounts() {
    int64_t stored_sum = 0;
    int64_t replayed_sum = 0;
    for (const auto& [id, record] : stored_) {
      const Account& a = record.account;
      Replayed r;
      if (auto it = replayed_.find(id); it != replayed_.end()) r = it->second;
      if (a.debits_posted != r.debits_posted || a.credits_posted != r.credits_posted ||
          a.debits_pending != r.debits_pending || a.credits_pending != r.credits_pending ||
          record.last_transfer_seq != r.last_seq) {
        Problem(fmt::format(
            "account {}: stored (debits_posted {}, credits_posted {}, debits_pending {}, "
            "credits_pending {}, last seq {}) differ from the transfers ({}, {}, {}, {}, {})",
            id, a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending,
            record.last_transfer_seq, r.debits_posted, r.credits_posted, r.debits_pending,
            r.credits_pending, r.last_seq));
      }
      if (__builtin_add_overflow(stored_sum, a.balance_fen(), &stored_sum) ||
          __builtin_add_overflow(replayed_sum, r.balance(), &replayed_sum)) {
        Problem(fmt::format("account {}: the sum of balances overflows", id));
        return;
      }
    }
    if (stored_sum != 0) {
      Problem(fmt::format("the stored account balances sum to {} fen, not zero", stored_sum));
    }
    if (replayed_sum != 0) {
      Problem(fmt::format("the balances replayed from the transfers sum to {} fen, not zero",
                          replayed_sum));
    }
  }

  void ComparePending() {
    for (const auto& [id, p] : pending_) {
      if (p.recomputed != p.stored) {
        Problem(fmt::format("transfer {} (seq {}): stored pending status {} differs from the "
                            "replay ({})",
                            id.ToHex(), p.seq, static_cast<int>(p.stored),
                            static_cast<int>(p.recomputed)));
      }
    }
  }

  LedgerStore& store_;
  const Digester& digester_;
  AuditReport report_;
  size_t omitted_ = 0;
  std::unordered_map<uint64_t, AccountRecord> stored_;
  std::unordered_map<uint64_t, Replayed> replayed_;
  std::unordered_map<Id128, PendingSeen, Id128Hash> pending_;
  std::unordered_set<Id128, Id128Hash> ids_;
  int64_t expected_transfer_seq_ = 1;

  std::vector<TransferRecord> transfer_page_;
  size_t transfer_pos_ = 0;
  int64_t transfer_cursor_ = 0;
  bool transfers_done_ = false;
  std::vector<BatchRecord> batch_page_;
  size_t batch_pos_ = 0;
  int64_t batch_cursor_ = 0;
  bool batches_done_ = false;
};

}  // namespace

Result<AuditReport> VerifyLedger(LedgerStore& store, const Digester& digester) {
  return Auditor(store, digester).Run();
}

}  // namespace citycard
