// Test fakes for the ledger: an in-memory LedgerStore with fault injection, and a
// deterministic non-cryptographic Digester, so that core tests need no disk and no OpenSSL.
#pragma once

#include <map>
#include <optional>
#include <unordered_map>

#include "core/digest.h"
#include "core/ledger_store.h"

namespace citycard::testing {

// Not SHA-256: a deterministic 32-byte mix (FNV-1a per lane), good enough to make a hash
// chain break when a byte changes. Core tests only; everything durable uses crypto/digest.h.
class FakeDigester final : public Digester {
 public:
  Sha256Digest Sha256(ByteView data) const override;
};

// An in-memory LedgerStore. Begin snapshots the whole state and Rollback restores it, which is
// slow but simple and exactly right for tests. Faults: the next Write or Commit can be made to
// fail (Kind::internal "injected_fault"), to test that a failed commit changes nothing.
class MemoryLedgerStore final : public LedgerStore {
 public:
  Status Begin() override;
  Status Commit() override;
  Status Rollback() override;
  Status LoadAccounts(std::span<const uint64_t> ids, std::vector<AccountRecord>* out) override;
  Status LoadTransfers(std::span<const Id128> ids, std::vector<TransferRecord>* out) override;
  Status LoadFailed(std::span<const Id128> ids, std::vector<FailedTransfer>* out) override;
  Status LoadTransfersBySeq(std::span<const int64_t> seqs, std::vector<TransferRecord>* out) override;
  Status LoadExpiredPending(int64_t now_ms, size_t limit, std::vector<TransferRecord>* out) override;
  Result<LedgerHead> LoadHead() override;
  Status Write(const LedgerWrite& write) override;
  Status ScanAccounts(const std::function<Status(const AccountRecord&)>& visit) override;
  Status ScanTransfers(int64_t after_seq, size_t limit, std::vector<TransferRecord>* out) override;
  Status ScanBatches(int64_t after_seq, size_t limit, std::vector<BatchRecord>* out) override;

  void FailNextWrite() { fail_next_write_ = true; }
  void FailNextCommit() { fail_next_commit_ = true; }
  // Counters, to check that the engine batches its work.
  int writes() const { return writes_; }
  int account_loads() const { return account_loads_; }
  // Ids searched by LoadTransfers and LoadFailed, to check that ApplyNew searches none.
  int64_t id_searches() const { return id_searches_; }
  // Direct access, for tamper tests of the audit.
  std::map<int64_t, TransferRecord>& transfers() { return state_.transfers; }
  std::map<uint64_t, AccountRecord>& accounts() { return state_.accounts; }
  std::map<int64_t, BatchRecord>& batches() { return state_.batches; }

 private:
  struct State {
    std::map<uint64_t, AccountRecord> accounts;
    std::map<int64_t, TransferRecord> transfers;  // by seq
    std::unordered_map<Id128, int64_t, Id128Hash> seq_by_id;
    std::unordered_map<Id128, FailedTransfer, Id128Hash> failed;
    std::map<int64_t, BatchRecord> batches;
  };
  State state_;
  std::optional<State> snapshot_;
  bool fail_next_write_ = false;
  bool fail_next_commit_ = false;
  int writes_ = 0;
  int account_loads_ = 0;
  int64_t id_searches_ = 0;
};

}  // namespace citycard::testing
