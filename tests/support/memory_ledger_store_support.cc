#include "tests/support/memory_ledger_store_support.h"

#include <algorithm>

namespace citycard::testing {

Sha256Digest FakeDigester::Sha256(ByteView data) const {
  Sha256Digest out{};
  for (size_t lane = 0; lane < 4; ++lane) {
    uint64_t h = 0xcbf29ce484222325ULL ^ (lane * 0x9E3779B97F4A7C15ULL);
    for (uint8_t b : data) {
      h ^= b;
      h *= 0x100000001b3ULL;
    }
    for (size_t i = 0; i < 8; ++i) out[lane * 8 + i] = static_cast<uint8_t>(h >> (8 * i));
  }
  return out;
}

Status MemoryLedgerStore::Begin() {
  CITYCARD_ASSERT(!snapshot_);
  snapshot_ = state_;
  return Status::Ok();
}

Status MemoryLedgerStore::Commit() {
  CITYCARD_ASSERT(snapshot_);
  if (fail_next_commit_) {
    fail_next_commit_ = false;
    return Status::Internal("injected_fault", "commit failed on purpose");
  }
  snapshot_.reset();
  return Status::Ok();
}

Status MemoryLedgerStore::Rollback() {
  if (!snapshot_) return Status::Internal("db_error", "no transaction is active");
  state_ = std::move(*snapshot_);
  snapshot_.reset();
  return Status::Ok();
}

Status MemoryLedgerStore::LoadAccounts(std::span<const uint64_t> ids,
                                       std::vector<AccountRecord>* out) {
  ++account_loads_;
  for (uint64_t id : ids) {
    if (auto it = state_.accounts.find(id); it != state_.accounts.end()) out->push_back(it->second);
  }
  return Status::Ok();
}

Status MemoryLedgerStore::LoadTransfers(std::span<const Id128> ids,
                                        std::vector<TransferRecord>* out) {
  id_searches_ += static_cast<int64_t>(ids.size());
  for (const Id128& id : ids) {
    if (auto it = state_.seq_by_id.find(id); it != state_.seq_by_id.end()) {
      out->push_back(state_.transfers.at(it->second));
    }
  }
  return Status::Ok();
}

Status MemoryLedgerStore::LoadFailed(std::span<const Id128> ids, std::vector<FailedTransfer>* out) {
  id_searches_ += static_cast<int64_t>(ids.size());
  for (const Id128& id : ids) {
    if (auto it = state_.failed.find(id); it != state_.failed.end()) out->push_back(it->second);
  }
  return Status::Ok();
}

Status MemoryLedgerStore::LoadTransfersBySeq(std::span<const int64_t> seqs,
                                             std::vector<TransferRecord>* out) {
  for (int64_t seq : seqs) {
    if (auto it = state_.transfers.find(seq); it != state_.transfers.end()) out->push_back(it->second);
  }
  return Status::Ok();
}

Status MemoryLedgerStore::LoadExpiredPending(int64_t now_ms, size_t limit,
                                             std::vector<TransferRecord>* out) {
  std::vector<TransferRecord> found;
  for (const auto& [seq, r] : state_.transfers) {
    if (r.pending_status == PendingStatus::pending && r.expires_at_ms != 0 &&
        r.expires_at_ms <= now_ms) {
      found.push_back(r);
    }
  }
  std::stable_sort(found.begin(), found.end(), [](const TransferRecord& a, const TransferRecord& b) {
    return a.expires_at_ms < b.expires_at_ms;
  });
  if (found.size() > limit) found.resize(limit);
  out->insert(out->end(), found.begin(), found.end());
  return Status::Ok();
}

Result<LedgerHead> MemoryLedgerStore::LoadHead() {
  LedgerHead head;
  if (!state_.transfers.empty()) head.last_transfer_seq = state_.transfers.rbegin()->first;
  if (!state_.batches.empty()) head.last_batch = state_.batches.rbegin()->second;
  return head;
}

Status MemoryLedgerStore::Write(const LedgerWrite& write) {
  CITYCARD_ASSERT(snapshot_);
  ++writes_;
  if (fail_next_write_) {
    fail_next_write_ = false;
    return Status::Internal("injected_fault", "write failed on purpose");
  }
  // As the SQLite store's unique indexes do: a taken id (a broken ApplyNew promise) fails the
  // write before anything of it is kept.
  for (const TransferRecord& r : write.transfers) {
    if (state_.seq_by_id.contains(r.transfer.id)) {
      return Status::Internal("transfer_id_taken", "transfer id " + r.transfer.id.ToHex() + " is already stored");
    }
  }
  for (const FailedTransfer& f : write.failed) {
    if (state_.failed.contains(f.id)) {
      return Status::Internal("transfer_id_taken", "declined id " + f.id.ToHex() + " is already stored");
    }
  }
  for (const Account& a : write.new_accounts) {
    CITYCARD_ASSERT(!state_.accounts.contains(a.id));
    state_.accounts[a.id] = AccountRecord{a, 0};
  }
  for (const AccountRecord& r : write.accounts) {
    CITYCARD_ASSERT(state_.accounts.contains(r.account.id));
    state_.accounts[r.account.id] = r;
  }
  for (const TransferRecord& r : write.transfers) {
    CITYCARD_ASSERT(!state_.transfers.contains(r.seq) && !state_.seq_by_id.contains(r.transfer.id));
    state_.transfers[r.seq] = r;
    state_.seq_by_id[r.transfer.id] = r.seq;
  }
  for (const FailedTransfer& f : write.failed) {
    CITYCARD_ASSERT(!state_.failed.contains(f.id));
    state_.failed[f.id] = f;
  }
  for (const auto& [seq, status] : write.pending_updates) state_.transfers.at(seq).pending_status = status;
  if (write.batch) state_.batches[write.batch->seq] = *write.batch;
  return Status::Ok();
}

Status MemoryLedgerStore::ScanAccounts(const std::function<Status(const AccountRecord&)>& visit) {
  for (const auto& [id, r] : state_.accounts) CITYCARD_RETURN_IF_ERROR(visit(r));
  return Status::Ok();
}

Status MemoryLedgerStore::ScanTransfers(int64_t after_seq, size_t limit,
                                        std::vector<TransferRecord>* out) {
  for (auto it = state_.transfers.upper_bound(after_seq);
       it != state_.transfers.end() && out->size() < limit; ++it) {
    out->push_back(it->second);
  }
  return Status::Ok();
}

Status MemoryLedgerStore::ScanBatches(int64_t after_seq, size_t limit, std::vector<BatchRecord>* out) {
  for (auto it = state_.batches.upper_bound(after_seq);
       it != state_.batches.end() && out->size() < limit; ++it) {
    out->push_back(it->second);
  }
  return Status::Ok();
}

}  // namespace citycard::testing
