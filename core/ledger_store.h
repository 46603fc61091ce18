// The storage interface of the ledger (core/ledger.h). The engine decides everything; a store
// only loads and writes what it is given, in batches: many accounts or transfers per call, and
// one Write per committed batch that appends its transfers and writes each touched account
// once. db/sqlite_ledger_store.h implements it over SQLite; tests/support has an in-memory
// fake. A PostgreSQL store implements the same interface. Record layouts: docs/ledger.md.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "core/digest.h"
#include "core/ledger.h"
#include "core/status.h"

namespace citycard {

// The state of a pending transfer. Stored numbers; never renumbered.
enum class PendingStatus : uint8_t {
  none = 0,  // not a pending transfer
  pending = 1,
  posted = 2,
  voided = 3,
  expired = 4,
};

// An account with the sequence number of the last transfer that touched it (0: none), the
// head of its history list.
struct AccountRecord {
  Account account;
  int64_t last_transfer_seq = 0;
};

// A committed transfer as stored. seq numbers transfers 1, 2, 3, … in commit order.
// debit_prev_seq/credit_prev_seq link each account's history backwards (0 ends it), so that
// history needs no secondary index.
struct TransferRecord {
  Transfer transfer;
  int64_t seq = 0;
  int64_t batch_seq = 0;
  PendingStatus pending_status = PendingStatus::none;
  int64_t expires_at_ms = 0;  // pending with a timeout: when it expires; 0 otherwise
  int64_t debit_balance_after_fen = 0;
  int64_t credit_balance_after_fen = 0;
  int64_t debit_prev_seq = 0;
  int64_t credit_prev_seq = 0;
};

// A declined transfer id and the outcome it was declined with.
struct FailedTransfer {
  Id128 id;
  TransferOutcome outcome = TransferOutcome::created;
  int64_t timestamp_ms = 0;
};

// One committed batch of the hash chain (docs/ledger.md "Hash chain").
struct BatchRecord {
  int64_t seq = 0;  // 1, 2, 3, …
  Sha256Digest prev_hash{};
  Sha256Digest hash{};
  int64_t first_transfer_seq = 0;
  int64_t transfer_count = 0;
  int64_t timestamp_ms = 0;
};

// The head of the ledger: where the next commit continues.
struct LedgerHead {
  int64_t last_transfer_seq = 0;
  std::optional<BatchRecord> last_batch;
};

// Everything one commit writes.
struct LedgerWrite {
  std::vector<Account> new_accounts;     // inserted; ids are new
  // Written back whole; each id at most once, all exist (the engine read them in the same
  // transaction), ascending id, so that a store walks its accounts in order.
  std::vector<AccountRecord> accounts;
  std::vector<TransferRecord> transfers; // appended, seq ascending and contiguous
  std::vector<FailedTransfer> failed;    // ids new to both transfers and failures
  // Status changes of earlier pending transfers (by seq); each seq at most once.
  std::vector<std::pair<int64_t, PendingStatus>> pending_updates;
  std::optional<BatchRecord> batch;  // present exactly when transfers is not empty
};

class LedgerStore {
 public:
  virtual ~LedgerStore() = default;

  // Storage transaction around one commit. Commit returns only when the transaction is
  // durable. Rollback undoes everything since Begin. The engine calls Begin/Commit itself,
  // except inside a caller-owned transaction (Ledger::JoinedTransaction).
  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual Status Rollback() = 0;

  // Appends to `out` the records of those of `ids` that exist (in any order; missing ids are
  // simply absent).
  virtual Status LoadAccounts(std::span<const uint64_t> ids, std::vector<AccountRecord>* out) = 0;
  virtual Status LoadTransfers(std::span<const Id128> ids, std::vector<TransferRecord>* out) = 0;
  virtual Status LoadFailed(std::span<const Id128> ids, std::vector<FailedTransfer>* out) = 0;
  // Transfers by seq (missing seqs absent).
  virtual Status LoadTransfersBySeq(std::span<const int64_t> seqs,
                                    std::vector<TransferRecord>* out) = 0;
  // Up to `limit` pending transfers still pending whose expires_at_ms <= now_ms, oldest
  // expiry first.
  virtual Status LoadExpiredPending(int64_t now_ms, size_t limit,
                                    std::vector<TransferRecord>* out) = 0;
  virtual Result<LedgerHead> LoadHead() = 0;

  // Whether anyone but this store's engine may have written the ledger's tables since the
  // previous call (the first call answers true). The engine caches accounts and the head of
  // the hash chain; when this answers true it drops those caches before it writes, so that a
  // second process (the CLI beside `serve`) never has its postings overwritten. Called inside
  // the write transaction, whose lock keeps others out until the commit. A store that no one
  // else can reach keeps the default.
  virtual Result<bool> ChangedElsewhere() { return false; }

  // Writes one commit (inside Begin/Commit).
  virtual Status Write(const LedgerWrite& write) = 0;

  // For the audit: every account, in no particular order, passed to `visit`; a failing
  // visit stops the scan and is returned. Then, in pages: transfers with seq > after_seq
  // ascending; batches with seq > after_seq ascending. A page shorter than `limit` is the last.
  virtual Status ScanAccounts(const std::function<Status(const AccountRecord&)>& visit) = 0;
  virtual Status ScanTransfers(int64_t after_seq, size_t limit,
                               std::vector<TransferRecord>* out) = 0;
  virtual Status ScanBatches(int64_t after_seq, size_t limit, std::vector<BatchRecord>* out) = 0;
};

// The canonical bytes of a transfer, hashed into the chain: kTransferCanonicalBytes bytes,
// big-endian, in the order of docs/ledger.md "Hash chain".
inline constexpr size_t kTransferCanonicalBytes = 100;
void AppendCanonicalTransfer(const Transfer& transfer, Bytes* out);
// hash = SHA-256(prev_hash || seq || transfer_count || canonical transfers…).
Sha256Digest BatchHash(const Digester& digester, const Sha256Digest& prev_hash, int64_t seq,
                       std::span<const Transfer> transfers);

}  // namespace citycard
