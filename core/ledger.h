// The double-entry ledger: accounts, immutable transfers, and the engine that applies batches
// of transfers to a LedgerStore (core/ledger_store.h), TigerBeetle-style. The rules, the
// outcomes, two-phase and linked transfers, the hash chain and durability are described in
// docs/ledger.md; this header is the contract.
//
// Every movement of money is a transfer of amount_fen from a debit account to a credit
// account, so the sum of all balances is zero at every moment. Balances follow TigerBeetle's
// convention from the credit side: balance = credits_posted - debits_posted, and
// available = balance - debits_pending. A purse is credited by a top-up and debited by a tap.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/digest.h"
#include "core/money.h"
#include "core/status.h"

namespace citycard {

// A 128-bit identifier (transfer ids, pending ids, user data). Ordered as (hi, lo).
struct Id128 {
  uint64_t hi = 0;
  uint64_t lo = 0;

  bool IsZero() const { return hi == 0 && lo == 0; }
  // 32 lower-case hex digits, hi first.
  std::string ToHex() const;
  // Exactly 32 hex digits (either case). Refuses anything else with Kind::bad_input,
  // code "invalid_id".
  static Result<Id128> FromHex(std::string_view hex);

  friend bool operator==(const Id128&, const Id128&) = default;
  friend auto operator<=>(const Id128&, const Id128&) = default;
};

struct Id128Hash {
  size_t operator()(const Id128& id) const {
    // The ids are mostly derived by hashing already; a multiply-xor mix spreads the rest.
    uint64_t h = id.hi * 0x9E3779B97F4A7C15ULL ^ (id.lo + 0x632BE59BD9B4E019ULL + (id.hi << 6));
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

// Stable numbers: they are stored in the database and never renumbered.
enum class AccountKind : uint8_t {
  card_purse = 1,
  medical_account = 2,
  operator_payable = 3,
  topup_clearing = 4,
  medical_fund = 5,
  fee_income = 6,
  card_deposits = 7,
  concession_subsidy = 8,
  settlement = 9,
  refunds = 10,
  medical_assistance_fund = 11,
};
inline constexpr uint8_t kAccountKindMax = 11;

// "card_purse", "medical_account", …; "unknown" for a number outside the enum.
std::string_view AccountKindName(AccountKind kind);
// The inverse of AccountKindName; std::nullopt for an unknown name.
std::optional<AccountKind> AccountKindFromName(std::string_view name);
// True for the numbers 1..kAccountKindMax.
bool IsValidAccountKind(AccountKind kind);

// Account flags.
// The account's available balance (balance - debits_pending) may not go below floor_fen
// through a debit (purses, medical accounts). System accounts have no floor.
inline constexpr uint32_t kAccountEnforceFloor = 1u << 0;
// The account takes part in no new transfer except the void of a pending transfer.
inline constexpr uint32_t kAccountClosed = 1u << 1;
inline constexpr uint32_t kAccountFlagsKnown = kAccountEnforceFloor | kAccountClosed;

struct Account {
  uint64_t id = 0;  // never 0
  AccountKind kind = AccountKind::card_purse;
  uint64_t owner_ref = 0;  // the card, holder or operator it belongs to; opaque to the ledger
  int64_t floor_fen = 0;   // only with kAccountEnforceFloor; 0 or negative (an overdraft)
  uint32_t flags = 0;
  int64_t debits_posted = 0;
  int64_t credits_posted = 0;
  int64_t debits_pending = 0;
  int64_t credits_pending = 0;

  int64_t balance_fen() const { return credits_posted - debits_posted; }
  int64_t available_fen() const { return balance_fen() - debits_pending; }
  bool closed() const { return (flags & kAccountClosed) != 0; }
  bool enforces_floor() const { return (flags & kAccountEnforceFloor) != 0; }

  friend bool operator==(const Account&, const Account&) = default;
};

// Transfer flags.
// Links this transfer with the next in the batch: a chain ends at the first transfer without
// the flag, and succeeds or fails as a whole.
inline constexpr uint16_t kTransferLinked = 1u << 0;
// Reserves amount_fen (debits_pending/credits_pending) until posted, voided or expired.
inline constexpr uint16_t kTransferPending = 1u << 1;
// Posts the pending transfer pending_id, fully (amount_fen 0) or partly; the rest is released.
inline constexpr uint16_t kTransferPostPending = 1u << 2;
// Voids the pending transfer pending_id: releases its whole amount.
inline constexpr uint16_t kTransferVoidPending = 1u << 3;
// Debits even below the debit account's floor: an offline tap that already happened on the
// card is booked although it overdraws the shadow purse (PRODUCT.md "Money and the ledger").
inline constexpr uint16_t kTransferIgnoreFloor = 1u << 4;
// Set by the ledger alone on the void it writes when a pending transfer times out
// (Ledger::ExpirePending); a caller's transfer carrying it is refused (reserved_flag).
inline constexpr uint16_t kTransferExpiry = 1u << 5;
inline constexpr uint16_t kTransferFlagsCaller =
    kTransferLinked | kTransferPending | kTransferPostPending | kTransferVoidPending |
    kTransferIgnoreFloor;

// The largest amount a single transfer may move (the same bound as a typed amount), so that
// no sum of transfers on one account can overflow int64 in any realistic lifetime.
inline constexpr int64_t kTransferAmountFenMax = kAmountFenMax;
// The most transfers Apply accepts in one batch (one storage transaction).
inline constexpr size_t kTransferBatchMax = 65'536;
// The most accounts CreateAccounts accepts in one call.
inline constexpr size_t kAccountBatchMax = 65'536;
// The most entries AccountHistory returns.
inline constexpr size_t kAccountHistoryMax = 10'000;
// How many expired pending transfers ExpirePending voids per storage transaction.
inline constexpr size_t kExpireBatchMax = 4'096;
// How many accounts the engine keeps in its cache between writes by default. Beyond it the
// cache is emptied at the start of the next write or lookup and refilled from the store as
// accounts are used again (correct, only slower): a city of ten million purses would
// otherwise keep every purse ever touched, ~140 bytes each (1.4 GB). Inside a joined
// transaction it may hold more while the scope lasts (a settlement credits a million purses).
inline constexpr size_t kAccountCacheMaxDefault = size_t{1} << 20;

struct Transfer {
  Id128 id;  // never zero; derived from where the transfer came from
  uint64_t debit_account_id = 0;
  uint64_t credit_account_id = 0;
  int64_t amount_fen = 0;
  Id128 pending_id;        // post/void: the pending transfer; zero otherwise
  uint32_t timeout_s = 0;  // pending only: seconds until it expires; 0 = never
  uint16_t code = 0;       // what kind of movement (tap, top-up, …); opaque to the ledger
  uint16_t flags = 0;
  Id128 user_data_128;     // references to where it came from; opaque to the ledger
  uint64_t user_data_64 = 0;
  uint32_t user_data_32 = 0;
  int64_t timestamp_ms = 0;  // assigned by the ledger; ignored on input

  friend bool operator==(const Transfer&, const Transfer&) = default;
};

// One value per outcome of one transfer. The numbers are stored (declined transfers are
// remembered with their outcome) and never renumbered.
enum class TransferOutcome : uint8_t {
  created = 0,
  exists = 1,  // same id, same content: nothing moves, the original stands
  exists_with_different_flags = 2,
  exists_with_different_debit_account_id = 3,
  exists_with_different_credit_account_id = 4,
  exists_with_different_amount = 5,
  exists_with_different_pending_id = 6,
  exists_with_different_timeout = 7,
  exists_with_different_code = 8,
  exists_with_different_user_data = 9,
  id_already_failed = 10,        // this id was declined before; it stays declined
  linked_event_failed = 11,      // another transfer of its linked chain failed
  linked_event_chain_open = 12,  // the batch's last transfer carries kTransferLinked
  insufficient_funds = 13,       // the debit would take a floored account below its floor
  account_not_found = 14,
  account_closed = 15,
  accounts_must_be_different = 16,
  amount_must_not_be_zero = 17,
  amount_out_of_range = 18,  // negative, or above kTransferAmountFenMax
  id_must_not_be_zero = 19,
  reserved_flag = 20,  // an unknown flag or kTransferExpiry
  flags_are_mutually_exclusive = 21,  // more than one of pending, post, void
  pending_id_must_be_zero = 22,
  pending_id_must_not_be_zero = 23,
  pending_id_must_be_different = 24,
  timeout_reserved_for_pending_transfer = 25,
  pending_transfer_not_found = 26,
  pending_transfer_not_pending = 27,
  pending_transfer_has_different_debit_account_id = 28,
  pending_transfer_has_different_credit_account_id = 29,
  pending_transfer_has_different_amount = 30,  // a void naming an amount other than the pending one
  pending_transfer_already_posted = 31,
  pending_transfer_already_voided = 32,
  pending_transfer_expired = 33,
  exceeds_pending_transfer_amount = 34,
};
inline constexpr uint8_t kTransferOutcomeMax = 34;

// The stable snake_case name of an outcome: "created", "insufficient_funds", …
std::string_view TransferOutcomeName(TransferOutcome outcome);
// created or exists: the transfer is in the ledger.
inline bool IsSuccess(TransferOutcome outcome) {
  return outcome == TransferOutcome::created || outcome == TransferOutcome::exists;
}

struct HistoryEntry {
  Transfer transfer;
  int64_t balance_after_fen = 0;  // the history's account's posted balance after the transfer
};

class LedgerStore;
struct AccountRecord;  // core/ledger_store.h

// The engine. Not thread-safe: one Ledger per store, used from one thread at a time. It caches
// account state and the head of the hash chain in memory, loaded from the store on first use
// and written through on every commit; inside every write transaction (and before every
// account lookup) it asks the store whether anyone else wrote since, and if so drops the
// caches, so that two processes (the CLI beside `serve`) may write the same ledger.
class Ledger {
 public:
  // The store, clock and digester must outlive the Ledger. `account_cache_max` (at least 1)
  // bounds the account cache between writes (kAccountCacheMaxDefault).
  Ledger(LedgerStore& store, const Clock& clock, const Digester& digester,
         size_t account_cache_max = kAccountCacheMaxDefault);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Creates accounts, all or none, in one storage transaction. Balances on input must be
  // zero. An account whose id exists with identical fields is accepted again (idempotent).
  // Failures: Kind::bad_input "invalid_account" (id 0, unknown kind or flags, a non-zero
  // balance, a floor above zero, more than kAccountBatchMax accounts); Kind::refused
  // "account_exists_with_different_fields"; store failures (Kind::internal).
  Status CreateAccounts(std::span<const Account> accounts);

  // Applies a batch in order, in one storage transaction, and returns one outcome per
  // transfer (same order). Returns only after the commit is durable; nothing of the batch is
  // visible before. Declined transfers (every outcome but created/exists/linked_event_*) are
  // remembered, so that their id later gives id_already_failed.
  // Failures (then nothing is applied and the ledger's state is unchanged): Kind::bad_input
  // "batch_too_large" (more than kTransferBatchMax); store failures (Kind::internal).
  Result<std::vector<TransferOutcome>> Apply(std::span<const Transfer> batch);

  // Apply for a caller that knows that no transfer of `batch` has an id the ledger has stored
  // or declined before: it keeps rows of its own, written in the same transactions as its
  // transfers, that say which ids it has used (the bill import: a bill's transfer is written
  // only with the bill's row marked paid). The ids are then not searched for in the store,
  // which saves one index search per transfer on a large import. Everything else is Apply's:
  // the same checks and outcomes, ids repeated inside the batch give `exists`, pending ids
  // are loaded. A broken promise for an id stored as a transfer is caught by the store's
  // unique index: Kind::internal "transfer_id_taken", and nothing of the batch is applied (as
  // with any store failure). An id only declined before is not caught (Apply would answer
  // id_already_failed): the caller's promise covers it, as the bill import's does (a declined
  // bill transfer fails its chunk, so its record is rolled back with it).
  Result<std::vector<TransferOutcome>> ApplyNew(std::span<const Transfer> batch);

  // ApplyNew for a stream of batches inside an open JoinedTransaction (asserted), each batch
  // booked as ApplyNew would book it on its own, in the order `next` gives them, with the
  // same outcomes, records and hash chain. The rules of batch N+1 run on a second thread while
  // batch N is written to the store on this one, which alone touches the store: a large
  // booking (a settlement's million rebates) spends most of its time in the store's writes,
  // and the rules then leave the writer's thread (docs/ledger.md "Streamed batches").
  // `next` is called on this thread and gives the next batch (empty: the stream is over); the
  // span must stay valid until `next` is called again (the batch is copied). `check` is called
  // on this thread with each batch and its outcomes, in order, before the batch is written; a
  // failure it returns ends the stream with that failure. A batch that names a pending
  // transfer (post or void) waits for the batch before it to be written, so that it reads the
  // pending transfer as it stands.
  // Failures (then the stream stops; the caller must roll back, and its JoinedTransaction
  // then drops what the stream put in the ledger's cache): those of `next`
  // and `check`; Kind::bad_input "batch_too_large"; store failures (Kind::internal), among
  // them "transfer_id_taken" as ApplyNew.
  using BatchSupplier = std::function<Result<std::span<const Transfer>>()>;
  using OutcomeCheck =
      std::function<Status(std::span<const Transfer>, std::span<const TransferOutcome>)>;
  Status ApplyNewStream(const BatchSupplier& next, const OutcomeCheck& check);

  // The account, as committed. Kind::not_found "account_not_found".
  Result<Account> LookupAccount(uint64_t id);
  // The committed transfer with this id (timestamp filled), std::nullopt when there is none
  // (declined ids are not transfers).
  Result<std::optional<Transfer>> LookupTransfer(const Id128& id);
  // The outcome a declined id was remembered with; std::nullopt when it was not declined.
  Result<std::optional<TransferOutcome>> LookupFailure(const Id128& id);
  // The account's transfers, newest first, at most `limit` (capped at kAccountHistoryMax),
  // each with the account's posted balance after it. Kind::not_found "account_not_found".
  Result<std::vector<HistoryEntry>> AccountHistory(uint64_t account_id, size_t limit);
  // Voids, with a transfer flagged kTransferExpiry whose id is derived from the pending id
  // (ExpiryTransferId), every pending transfer whose timeout has passed by the clock. Returns
  // how many were voided.
  Result<size_t> ExpirePending();
  // Marks an account closed (idempotent). Kind::not_found "account_not_found".
  Status SetAccountClosed(uint64_t id);

  // Accounts read ahead by another thread (the ingest checker's CardPrefetcher, core/ingest.h),
  // so that this engine's thread need not read them (docs/ledger.md "Accounts read ahead").
  // CacheRemovals is a count that rises each time accounts leave the cache: emptied at its
  // bound, emptied because another connection wrote, dropped by a joined scope's rollback. It
  // may be read from any thread.
  uint64_t CacheRemovals() const { return cache_removals_.load(std::memory_order_acquire); }
  // Puts into the cache each of `records` that the cache lacks, and returns how many it took;
  // takes none unless the cache lost no account since CacheRemovals() returned `removals_seen`.
  // `records` must be the store's committed rows, read in one read transaction that began
  // after that call. Why that is enough: every account this engine writes stays in the cache
  // from its write until a removal, so an account the cache lacks, with no removal since, was
  // not written by this engine after the rows were read; and a write by another connection
  // after they were read is found by SyncWithStore, which empties the cache before the next
  // lookup or write uses it (and so refuses later offers). Never replaces a cached account.
  size_t OfferAccounts(std::span<const AccountRecord> records, uint64_t removals_seen);
  // How many accounts OfferAccounts took since the engine was made.
  uint64_t AccountsTakenAhead() const { return accounts_taken_ahead_; }

  // The id of the void that ExpirePending writes for `pending_id`: the first 16 bytes of
  // SHA-256("citycard.expiry" || pending_id).
  Id128 ExpiryTransferId(const Id128& pending_id) const;

  // Caller-owned transactions. A caller that must make ledger changes atomic with rows of its
  // own on the same connection (a card issue: the purse account and the card row) begins the
  // storage transaction itself, then opens a JoinedTransaction; while it is open,
  // CreateAccounts, Apply and SetAccountClosed write into the caller's transaction and
  // neither begin nor commit. Their results are then NOT durable until the caller commits.
  // After committing, the caller calls Committed(); destroying the scope without it (the
  // caller rolled back, or returned early on an error) drops what the ledger cached of the
  // scope's changes (each account it changed, and the head of the hash chain), so that they
  // are read again from the store as the rollback left it.
  // At most one is open at a time.
  class JoinedTransaction {
   public:
    explicit JoinedTransaction(Ledger& ledger);
    ~JoinedTransaction();
    JoinedTransaction(const JoinedTransaction&) = delete;
    JoinedTransaction& operator=(const JoinedTransaction&) = delete;
    // The caller's commit succeeded: keep the ledger's cached state.
    void Committed();

   private:
    Ledger& ledger_;
    bool done_ = false;
  };

 private:
  struct Head;
  struct BatchState;
  struct BatchReads;
  struct BatchResult;
  // One cached account: its committed values, the seq of its last transfer (the head of its
  // history list), and the joined scope that last remembered it for a rollback, so that a
  // scope remembers each account once without a second map to ask (0: none).
  struct CachedAccount {
    Account account;
    int64_t last_seq = 0;
    uint64_t remembered_in = 0;
  };
  Status LoadHead();
  std::vector<uint64_t> AccountIdsToRead(std::span<const uint64_t> ids, bool cached_skipped) const;
  Status LoadAccountsIntoCache(std::span<const uint64_t> ids);
  Status BeginWrite();
  // Drops the cached accounts and head when the store says someone else wrote since
  // (LedgerStore::ChangedElsewhere), so that what this engine writes starts from the store.
  Status SyncWithStore();
  // Empties the account cache when it holds more than account_cache_max_ accounts and no
  // joined scope is open.
  void KeepCacheBound();
  Status FinishWrite();
  void AbortWrite();
  // How ApplyInternal treats the batch's own ids: searched in the store (Apply), or known
  // new (ApplyNew).
  enum class OwnIds : uint8_t { search, known_new };
  Result<std::vector<TransferOutcome>> ApplyInternal(std::span<const Transfer> batch,
                                                     bool internal,
                                                     OwnIds own_ids = OwnIds::search);
  // The phases of one batch. ReadForBatch only reads the store: the transfers and declined
  // ids the batch names, and its accounts (with `cached_skipped`, only those the cache lacks;
  // a stream, whose cache another thread is changing, reads them all). RunRules only touches
  // the cache: it adds the read accounts the cache lacks (a cached account is newer than the
  // store's row while a stream has writes outstanding), then runs the rules. WriteBatch only
  // writes the store. Publish puts the batch's accounts and head into the cache.
  Status ReadForBatch(std::span<const Transfer> batch, OwnIds own_ids, bool cached_skipped,
                      BatchReads* reads);
  BatchResult RunRules(std::span<const Transfer> batch, bool internal, BatchReads reads);
  Status WriteBatch(const BatchResult& result);
  void Publish(const BatchResult& result);
  std::future<BatchResult> StartRules(std::span<const Transfer> batch, BatchReads reads);
  // Sets the cached values of account `id` after a durable (or joined) write; inside a joined
  // scope it first remembers what the cache held, once per account and scope.
  void CachePut(uint64_t id, const Account& account, int64_t last_seq);

  LedgerStore& store_;
  const Clock& clock_;
  const Digester& digester_;
  std::unique_ptr<Head> head_;
  // One map for an account's values and its history head: a settlement touches a million
  // purses, and every further map asked per account was a hash lookup per transfer
  // (docs/benchmarks.md, session of 13:21).
  std::unordered_map<uint64_t, CachedAccount> accounts_;
  size_t account_cache_max_;
  // Joined-transaction rollback state: the id of each account the scope changed, once (the
  // scope's number marks the accounts already remembered, CachedAccount::remembered_in). A
  // rollback drops them from the cache rather than putting back their values before: outside
  // a scope the cache holds what the store holds, so dropping an entry is always right, and a
  // settlement's scope changes a million purses, whose copies cost more than its rules did.
  bool joined_ = false;
  uint64_t joined_scope_ = 0;
  std::vector<uint64_t> joined_undo_;
  // Read ahead (OfferAccounts): raised after every removal from accounts_, read by the
  // thread that reads ahead before it begins its read.
  std::atomic<uint64_t> cache_removals_{0};
  uint64_t accounts_taken_ahead_ = 0;
  // Empties accounts_ and counts the removal.
  void ClearAccountCache();
};

}  // namespace citycard

template <>
struct std::hash<citycard::Id128> {
  size_t operator()(const citycard::Id128& id) const { return citycard::Id128Hash{}(id); }
};
