#include "core/ledger.h"

#include <algorithm>
#include <array>
#include <bit>
#include <future>
#include <memory_resource>
#include <system_error>

#include "core/ledger_store.h"

namespace citycard {

// ---------------------------------------------------------------------------------------------
// Names and encodings.

std::string Id128::ToHex() const {
  // Written digit by digit into one string: an import formats a million of them.
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int k = 0; k < 16; ++k) {
    out[static_cast<size_t>(15 - k)] = kDigits[(hi >> (4 * k)) & 15];
    out[static_cast<size_t>(31 - k)] = kDigits[(lo >> (4 * k)) & 15];
  }
  return out;
}

Result<Id128> Id128::FromHex(std::string_view hex) {
  Bytes bytes;
  if (hex.size() != 32 || !citycard::FromHex(hex, &bytes)) {
    return Status::BadInput("invalid_id", "an id is 32 hex digits, not '" + std::string(hex) + "'");
  }
  ByteReader r(bytes);
  Id128 id;
  id.hi = r.U64();
  id.lo = r.U64();
  return id;
}

namespace {

constexpr std::array<std::string_view, kAccountKindMax + 1> kAccountKindNames = {
    "unknown",          "card_purse",         "medical_account", "operator_payable",
    "topup_clearing",   "medical_fund",       "fee_income",      "card_deposits",
    "concession_subsidy", "settlement",       "refunds",         "medical_assistance_fund",
};

constexpr std::array<std::string_view, kTransferOutcomeMax + 1> kOutcomeNames = {
    "created",
    "exists",
    "exists_with_different_flags",
    "exists_with_different_debit_account_id",
    "exists_with_different_credit_account_id",
    "exists_with_different_amount",
    "exists_with_different_pending_id",
    "exists_with_different_timeout",
    "exists_with_different_code",
    "exists_with_different_user_data",
    "id_already_failed",
    "linked_event_failed",
    "linked_event_chain_open",
    "insufficient_funds",
    "account_not_found",
    "account_closed",
    "accounts_must_be_different",
    "amount_must_not_be_zero",
    "amount_out_of_range",
    "id_must_not_be_zero",
    "reserved_flag",
    "flags_are_mutually_exclusive",
    "pending_id_must_be_zero",
    "pending_id_must_not_be_zero",
    "pending_id_must_be_different",
    "timeout_reserved_for_pending_transfer",
    "pending_transfer_not_found",
    "pending_transfer_not_pending",
    "pending_transfer_has_different_debit_account_id",
    "pending_transfer_has_different_credit_account_id",
    "pending_transfer_has_different_amount",
    "pending_transfer_already_posted",
    "pending_transfer_already_voided",
    "pending_transfer_expired",
    "exceeds_pending_transfer_amount",
};

constexpr uint16_t kTransferPhaseFlags = kTransferPending | kTransferPostPending | kTransferVoidPending;

}  // namespace

bool IsValidAccountKind(AccountKind kind) {
  auto n = static_cast<uint8_t>(kind);
  return n >= 1 && n <= kAccountKindMax;
}

std::string_view AccountKindName(AccountKind kind) {
  return IsValidAccountKind(kind) ? kAccountKindNames[static_cast<uint8_t>(kind)] : "unknown";
}

std::optional<AccountKind> AccountKindFromName(std::string_view name) {
  for (uint8_t n = 1; n <= kAccountKindMax; ++n) {
    if (kAccountKindNames[n] == name) return static_cast<AccountKind>(n);
  }
  return std::nullopt;
}

std::string_view TransferOutcomeName(TransferOutcome outcome) {
  auto n = static_cast<uint8_t>(outcome);
  return n <= kTransferOutcomeMax ? kOutcomeNames[n] : "unknown";
}

// Written into a fixed array and appended once: a push_back per byte was 4 % of a
// settlement's booking (docs/benchmarks.md, session of 13:21).
void AppendCanonicalTransfer(const Transfer& t, Bytes* out) {
  std::array<uint8_t, kTransferCanonicalBytes> b;
  size_t at = 0;
  auto put = [&b, &at](uint64_t v, size_t n) {
    for (size_t i = 0; i < n; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
    at += n;
  };
  put(t.id.hi, 8);
  put(t.id.lo, 8);
  put(t.debit_account_id, 8);
  put(t.credit_account_id, 8);
  put(static_cast<uint64_t>(t.amount_fen), 8);
  put(t.pending_id.hi, 8);
  put(t.pending_id.lo, 8);
  put(t.timeout_s, 4);
  put(t.code, 2);
  put(t.flags, 2);
  put(t.user_data_128.hi, 8);
  put(t.user_data_128.lo, 8);
  put(t.user_data_64, 8);
  put(t.user_data_32, 4);
  put(static_cast<uint64_t>(t.timestamp_ms), 8);
  CITYCARD_ASSERT(at == kTransferCanonicalBytes);
  out->insert(out->end(), b.begin(), b.end());
}

Sha256Digest BatchHash(const Digester& digester, const Sha256Digest& prev_hash, int64_t seq,
                       std::span<const Transfer> transfers) {
  Bytes bytes;
  bytes.reserve(kSha256Bytes + 16 + transfers.size() * kTransferCanonicalBytes);
  bytes.insert(bytes.end(), prev_hash.begin(), prev_hash.end());
  ByteWriter w(&bytes);
  w.I64(seq);
  w.I64(static_cast<int64_t>(transfers.size()));
  for (const Transfer& t : transfers) AppendCanonicalTransfer(t, &bytes);
  return digester.Sha256(bytes);
}

// ---------------------------------------------------------------------------------------------
// The engine's state.

struct Ledger::Head {
  bool loaded = false;
  int64_t last_transfer_seq = 0;
  int64_t last_batch_seq = 0;
  Sha256Digest last_hash{};
  int64_t last_timestamp_ms = 0;
};

namespace {

// An account as one batch sees it: the committed value plus this batch's changes.
struct WorkingAccount {
  Account account;
  int64_t last_seq = 0;
};

// One entry of the undo log that lets a failed linked chain leave no trace in the batch.
struct Undo {
  uint64_t account_id = 0;                     // an account change, when pending_id is zero
  std::optional<WorkingAccount> before;        // nullopt: not in the working set before
  Id128 pending_id;                            // a pending status change otherwise
  PendingStatus status_before = PendingStatus::none;
};

bool IsRemembered(TransferOutcome outcome) {
  switch (outcome) {
    case TransferOutcome::created:
    case TransferOutcome::exists:
    case TransferOutcome::exists_with_different_flags:
    case TransferOutcome::exists_with_different_debit_account_id:
    case TransferOutcome::exists_with_different_credit_account_id:
    case TransferOutcome::exists_with_different_amount:
    case TransferOutcome::exists_with_different_pending_id:
    case TransferOutcome::exists_with_different_timeout:
    case TransferOutcome::exists_with_different_code:
    case TransferOutcome::exists_with_different_user_data:
    case TransferOutcome::id_already_failed:
    case TransferOutcome::linked_event_failed:
    case TransferOutcome::linked_event_chain_open:
    case TransferOutcome::id_must_not_be_zero:
      return false;
    default:
      return true;
  }
}

bool IsPostOrVoid(const Transfer& t) {
  return (t.flags & (kTransferPostPending | kTransferVoidPending)) != 0;
}

// The outcome of a transfer whose id is already taken by `stored`. For a post or void, zero
// accounts and a zero amount mean "as the pending transfer" and match whatever was resolved.
TransferOutcome CompareWithExisting(const Transfer& t, const Transfer& stored) {
  bool inherit = IsPostOrVoid(t);
  if (t.flags != stored.flags) return TransferOutcome::exists_with_different_flags;
  if (t.debit_account_id != stored.debit_account_id && !(inherit && t.debit_account_id == 0)) {
    return TransferOutcome::exists_with_different_debit_account_id;
  }
  if (t.credit_account_id != stored.credit_account_id && !(inherit && t.credit_account_id == 0)) {
    return TransferOutcome::exists_with_different_credit_account_id;
  }
  if (t.amount_fen != stored.amount_fen && !(inherit && t.amount_fen == 0)) {
    return TransferOutcome::exists_with_different_amount;
  }
  if (t.pending_id != stored.pending_id) return TransferOutcome::exists_with_different_pending_id;
  if (t.timeout_s != stored.timeout_s) return TransferOutcome::exists_with_different_timeout;
  if (t.code != stored.code) return TransferOutcome::exists_with_different_code;
  if (t.user_data_128 != stored.user_data_128 || t.user_data_64 != stored.user_data_64 ||
      t.user_data_32 != stored.user_data_32) {
    return TransferOutcome::exists_with_different_user_data;
  }
  return TransferOutcome::exists;
}

int64_t CheckedAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  // Unreachable with amounts bounded by kTransferAmountFenMax in any realistic lifetime;
  // a wrapped balance would be worse than stopping.
  CITYCARD_ASSERT(!__builtin_add_overflow(a, b, &sum));
  return sum;
}

}  // namespace

// Everything one Apply computes before it writes: working copies of touched accounts, the
// transfers it creates, the ids it declines, and the undo log of the current linked chain.
struct Ledger::BatchState {
  // The maps are sized for the batch up front: a settlement books batches of 65,536, and
  // growing them bucket by bucket was rehashing each several times (docs/benchmarks.md).
  BatchState(const std::unordered_map<uint64_t, CachedAccount>& cache, const Head& head,
             int64_t now, size_t batch_size)
      : cache_(cache), head_(head), now_ms(now) {
    working.reserve(2 * batch_size);
    created.reserve(batch_size);
    created_index.reserve(batch_size);
  }

  const std::unordered_map<uint64_t, CachedAccount>& cache_;
  const Head& head_;
  int64_t now_ms;

  // The maps' nodes live as long as the batch: they are taken from one arena, a pointer bump
  // each, and given back all at once when the batch ends, where a malloc and a free per
  // account and per transfer were about a tenth of a settlement's booking (docs/benchmarks.md,
  // session of 16:52, 2026-11-27). Declared before the maps, so that it outlives them.
  std::pmr::monotonic_buffer_resource arena;
  std::pmr::unordered_map<uint64_t, WorkingAccount> working{&arena};
  // Committed, from the store.
  std::pmr::unordered_map<Id128, TransferRecord, Id128Hash> loaded{&arena};
  std::pmr::unordered_map<Id128, PendingStatus, Id128Hash> loaded_status{&arena};  // as loaded
  // Before and in this batch.
  std::pmr::unordered_map<Id128, TransferOutcome, Id128Hash> failed{&arena};
  std::vector<FailedTransfer> failed_now;
  std::vector<TransferRecord> created;
  std::pmr::unordered_map<Id128, size_t, Id128Hash> created_index{&arena};
  std::vector<Undo> undo;

  const Account* Peek(uint64_t id) const {
    if (auto it = working.find(id); it != working.end()) return &it->second.account;
    if (auto it = cache_.find(id); it != cache_.end()) return &it->second.account;
    return nullptr;
  }

  WorkingAccount& Mutable(uint64_t id) {
    auto it = working.find(id);
    if (it == working.end()) {
      undo.push_back(Undo{id, std::nullopt, {}, PendingStatus::none});
      const CachedAccount& cached = cache_.at(id);
      it = working.emplace(id, WorkingAccount{cached.account, cached.last_seq}).first;
    } else {
      undo.push_back(Undo{id, it->second, {}, PendingStatus::none});
    }
    return it->second;
  }

  TransferRecord* Find(const Id128& id) {
    if (auto it = created_index.find(id); it != created_index.end()) return &created[it->second];
    if (auto it = loaded.find(id); it != loaded.end()) return &it->second;
    return nullptr;
  }

  void SetStatus(TransferRecord& pending, PendingStatus status) {
    undo.push_back(Undo{0, std::nullopt, pending.transfer.id, pending.pending_status});
    pending.pending_status = status;
  }

  struct Mark {
    size_t undo = 0;
    size_t created = 0;
  };
  Mark MarkNow() const { return Mark{undo.size(), created.size()}; }

  void RollbackTo(const Mark& mark) {
    while (undo.size() > mark.undo) {
      Undo& u = undo.back();
      if (!u.pending_id.IsZero()) {
        TransferRecord* record = Find(u.pending_id);
        CITYCARD_ASSERT(record != nullptr);
        record->pending_status = u.status_before;
      } else if (u.before) {
        working[u.account_id] = *u.before;
      } else {
        working.erase(u.account_id);
      }
      undo.pop_back();
    }
    while (created.size() > mark.created) {
      created_index.erase(created.back().transfer.id);
      created.pop_back();
    }
  }

  // Appends a created transfer, linking it into both accounts' history lists.
  void Append(const Transfer& t, PendingStatus status, int64_t expires_at_ms) {
    TransferRecord record;
    record.transfer = t;
    record.transfer.timestamp_ms = now_ms;
    record.seq = head_.last_transfer_seq + static_cast<int64_t>(created.size()) + 1;
    record.batch_seq = head_.last_batch_seq + 1;
    record.pending_status = status;
    record.expires_at_ms = expires_at_ms;
    WorkingAccount& debit = Mutable(t.debit_account_id);
    WorkingAccount& credit = Mutable(t.credit_account_id);
    record.debit_prev_seq = debit.last_seq;
    record.credit_prev_seq = credit.last_seq;
    debit.last_seq = record.seq;
    credit.last_seq = record.seq;
    record.debit_balance_after_fen = debit.account.balance_fen();
    record.credit_balance_after_fen = credit.account.balance_fen();
    created_index[t.id] = created.size();
    created.push_back(record);
  }
};

// ---------------------------------------------------------------------------------------------
// One transfer's rules.

namespace {

template <typename BatchState>
TransferOutcome ApplyRegular(BatchState& s, const Transfer& t) {
  if (!t.pending_id.IsZero()) return TransferOutcome::pending_id_must_be_zero;
  bool pending = (t.flags & kTransferPending) != 0;
  if (t.timeout_s != 0 && !pending) return TransferOutcome::timeout_reserved_for_pending_transfer;
  if (t.debit_account_id == t.credit_account_id) return TransferOutcome::accounts_must_be_different;
  if (t.amount_fen == 0) return TransferOutcome::amount_must_not_be_zero;
  if (t.amount_fen < 0 || t.amount_fen > kTransferAmountFenMax) {
    return TransferOutcome::amount_out_of_range;
  }
  const Account* debit = s.Peek(t.debit_account_id);
  const Account* credit = s.Peek(t.credit_account_id);
  if (debit == nullptr || credit == nullptr) return TransferOutcome::account_not_found;
  if (debit->closed() || credit->closed()) return TransferOutcome::account_closed;
  if (debit->enforces_floor() && (t.flags & kTransferIgnoreFloor) == 0 &&
      debit->available_fen() - t.amount_fen < debit->floor_fen) {
    return TransferOutcome::insufficient_funds;
  }
  Account& d = s.Mutable(t.debit_account_id).account;
  Account& c = s.Mutable(t.credit_account_id).account;
  if (pending) {
    d.debits_pending = CheckedAdd(d.debits_pending, t.amount_fen);
    c.credits_pending = CheckedAdd(c.credits_pending, t.amount_fen);
  } else {
    d.debits_posted = CheckedAdd(d.debits_posted, t.amount_fen);
    c.credits_posted = CheckedAdd(c.credits_posted, t.amount_fen);
  }
  int64_t expires_at_ms =
      pending && t.timeout_s != 0 ? s.now_ms + int64_t{t.timeout_s} * 1000 : 0;
  s.Append(t, pending ? PendingStatus::pending : PendingStatus::none, expires_at_ms);
  return TransferOutcome::created;
}

template <typename BatchState>
TransferOutcome ApplyPostOrVoid(BatchState& s, const Transfer& t, bool internal) {
  bool post = (t.flags & kTransferPostPending) != 0;
  if (t.pending_id.IsZero()) return TransferOutcome::pending_id_must_not_be_zero;
  if (t.pending_id == t.id) return TransferOutcome::pending_id_must_be_different;
  if (t.timeout_s != 0) return TransferOutcome::timeout_reserved_for_pending_transfer;
  TransferRecord* p = s.Find(t.pending_id);
  if (p == nullptr) return TransferOutcome::pending_transfer_not_found;
  const Transfer& pt = p->transfer;
  if ((pt.flags & kTransferPending) == 0) return TransferOutcome::pending_transfer_not_pending;
  if (t.debit_account_id != 0 && t.debit_account_id != pt.debit_account_id) {
    return TransferOutcome::pending_transfer_has_different_debit_account_id;
  }
  if (t.credit_account_id != 0 && t.credit_account_id != pt.credit_account_id) {
    return TransferOutcome::pending_transfer_has_different_credit_account_id;
  }
  if (t.amount_fen < 0) return TransferOutcome::amount_out_of_range;
  if (post && t.amount_fen > pt.amount_fen) return TransferOutcome::exceeds_pending_transfer_amount;
  if (!post && t.amount_fen != 0 && t.amount_fen != pt.amount_fen) {
    return TransferOutcome::pending_transfer_has_different_amount;
  }
  switch (p->pending_status) {
    case PendingStatus::posted: return TransferOutcome::pending_transfer_already_posted;
    case PendingStatus::voided: return TransferOutcome::pending_transfer_already_voided;
    case PendingStatus::expired: return TransferOutcome::pending_transfer_expired;
    case PendingStatus::pending: break;
    case PendingStatus::none: CITYCARD_ASSERT(false);
  }
  if (!internal && p->expires_at_ms != 0 && s.now_ms >= p->expires_at_ms) {
    return TransferOutcome::pending_transfer_expired;
  }
  const Account* debit = s.Peek(pt.debit_account_id);
  const Account* credit = s.Peek(pt.credit_account_id);
  if (debit == nullptr || credit == nullptr) return TransferOutcome::account_not_found;
  // A void only releases a reservation, so it is allowed on a closed account.
  if (post && (debit->closed() || credit->closed())) return TransferOutcome::account_closed;

  int64_t amount = post ? (t.amount_fen == 0 ? pt.amount_fen : t.amount_fen) : pt.amount_fen;
  Account& d = s.Mutable(pt.debit_account_id).account;
  Account& c = s.Mutable(pt.credit_account_id).account;
  d.debits_pending -= pt.amount_fen;
  c.credits_pending -= pt.amount_fen;
  CITYCARD_ASSERT(d.debits_pending >= 0 && c.credits_pending >= 0);
  if (post) {
    d.debits_posted = CheckedAdd(d.debits_posted, amount);
    c.credits_posted = CheckedAdd(c.credits_posted, amount);
  }
  bool expiry = (t.flags & kTransferExpiry) != 0;
  s.SetStatus(*p, post ? PendingStatus::posted
                       : (expiry ? PendingStatus::expired : PendingStatus::voided));
  Transfer resolved = t;
  resolved.debit_account_id = pt.debit_account_id;
  resolved.credit_account_id = pt.credit_account_id;
  resolved.amount_fen = amount;
  s.Append(resolved, PendingStatus::none, 0);
  return TransferOutcome::created;
}

template <typename BatchState>
TransferOutcome ApplyOne(BatchState& s, const Transfer& t, bool internal) {
  // The id first: a transfer sent again, or sent again with other content, is answered by
  // what the id already stands for, and an id is remembered at most once.
  if (t.id.IsZero()) return TransferOutcome::id_must_not_be_zero;
  if (const TransferRecord* existing = s.Find(t.id)) {
    return CompareWithExisting(t, existing->transfer);
  }
  if (s.failed.contains(t.id)) return TransferOutcome::id_already_failed;
  uint16_t allowed = internal ? static_cast<uint16_t>(kTransferVoidPending | kTransferExpiry)
                              : kTransferFlagsCaller;
  if ((t.flags & ~allowed) != 0) return TransferOutcome::reserved_flag;
  if (std::popcount(static_cast<unsigned>(t.flags & kTransferPhaseFlags)) > 1) {
    return TransferOutcome::flags_are_mutually_exclusive;
  }
  return IsPostOrVoid(t) ? ApplyPostOrVoid(s, t, internal) : ApplyRegular(s, t);
}

// The batch's outcomes, chain by chain: a linked chain applies whole or not at all, and a
// chain left open at the end of the batch fails whole.
template <typename BatchState>
std::vector<TransferOutcome> ApplyChains(BatchState& s, std::span<const Transfer> batch,
                                         bool internal) {
  std::vector<TransferOutcome> outcomes(batch.size(), TransferOutcome::created);
  size_t i = 0;
  while (i < batch.size()) {
    size_t end = i;  // the chain is batch[i..end]
    while (end < batch.size() && (batch[end].flags & kTransferLinked) != 0) ++end;
    if (end == batch.size()) {
      for (size_t k = i; k < batch.size(); ++k) outcomes[k] = TransferOutcome::linked_event_failed;
      outcomes.back() = TransferOutcome::linked_event_chain_open;
      break;
    }
    auto mark = s.MarkNow();
    for (size_t k = i; k <= end; ++k) {
      TransferOutcome outcome = ApplyOne(s, batch[k], internal);
      outcomes[k] = outcome;
      if (IsSuccess(outcome)) continue;
      s.RollbackTo(mark);
      for (size_t m = i; m <= end; ++m) {
        if (m != k) outcomes[m] = TransferOutcome::linked_event_failed;
      }
      if (IsRemembered(outcome)) {
        CITYCARD_ASSERT(!s.failed.contains(batch[k].id));
        s.failed[batch[k].id] = outcome;
        s.failed_now.push_back(FailedTransfer{batch[k].id, outcome, s.now_ms});
      }
      break;
    }
    s.undo.clear();
    i = end + 1;
  }
  return outcomes;
}

// What a batch writes but its created transfers and batch record: the accounts it changed,
// the ids it declined, the status changes of the pending transfers it resolved.
template <typename BatchState>
LedgerWrite WriteOf(const BatchState& s) {
  LedgerWrite write;
  write.accounts.reserve(s.working.size());
  for (const auto& [id, w] : s.working) write.accounts.push_back(AccountRecord{w.account, w.last_seq});
  // In id order (LedgerWrite): a batch of a settlement's or an ingest's purses then touches
  // each page of the accounts' table once, in order, instead of in the hash map's order.
  std::sort(write.accounts.begin(), write.accounts.end(),
            [](const AccountRecord& a, const AccountRecord& b) {
              return a.account.id < b.account.id;
            });
  write.failed = s.failed_now;
  for (const auto& [id, before] : s.loaded_status) {
    const TransferRecord& r = s.loaded.at(id);
    if (r.pending_status != before) write.pending_updates.emplace_back(r.seq, r.pending_status);
  }
  return write;
}

Status CheckBatchSize(std::span<const Transfer> batch) {
  if (batch.size() <= kTransferBatchMax) return Status::Ok();
  return Status::BadInput("batch_too_large", std::to_string(batch.size()) +
                                                 " transfers in one batch; at most " +
                                                 std::to_string(kTransferBatchMax));
}

bool NamesPending(std::span<const Transfer> batch) {
  return std::any_of(batch.begin(), batch.end(),
                     [](const Transfer& t) { return !t.pending_id.IsZero(); });
}

}  // namespace

// What one batch read from the store before its rules run.
struct Ledger::BatchReads {
  std::vector<TransferRecord> records;   // the transfers it names (own ids, pending ids)
  std::vector<FailedTransfer> failures;  // its own ids declined before
  std::vector<AccountRecord> accounts;
};

// What the rules made of one batch: an outcome per transfer, what to write, and the head of
// the hash chain after it.
struct Ledger::BatchResult {
  std::vector<TransferOutcome> outcomes;
  LedgerWrite write;
  Head next;
};

// ---------------------------------------------------------------------------------------------
// The Ledger.

Ledger::Ledger(LedgerStore& store, const Clock& clock, const Digester& digester,
               size_t account_cache_max)
    : store_(store),
      clock_(clock),
      digester_(digester),
      head_(std::make_unique<Head>()),
      account_cache_max_(account_cache_max) {
  CITYCARD_ASSERT(account_cache_max > 0);
}

Ledger::~Ledger() { CITYCARD_ASSERT(!joined_); }

Status Ledger::LoadHead() {
  if (head_->loaded) return Status::Ok();
  auto head = store_.LoadHead();
  if (!head.ok()) return head.status();
  head_->last_transfer_seq = head->last_transfer_seq;
  if (head->last_batch) {
    head_->last_batch_seq = head->last_batch->seq;
    head_->last_hash = head->last_batch->hash;
    head_->last_timestamp_ms = head->last_batch->timestamp_ms;
  }
  head_->loaded = true;
  return Status::Ok();
}

// The ids of `ids` to read from the store: not zero, each once, ascending (the store walks
// them in order), and with `cached_skipped` only those the cache lacks.
std::vector<uint64_t> Ledger::AccountIdsToRead(std::span<const uint64_t> ids,
                                               bool cached_skipped) const {
  std::vector<uint64_t> wanted;
  wanted.reserve(ids.size());
  for (uint64_t id : ids) {
    if (id != 0 && !(cached_skipped && accounts_.contains(id))) wanted.push_back(id);
  }
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  return wanted;
}

Status Ledger::LoadAccountsIntoCache(std::span<const uint64_t> ids) {
  std::vector<uint64_t> missing = AccountIdsToRead(ids, /*cached_skipped=*/true);
  if (missing.empty()) return Status::Ok();
  std::vector<AccountRecord> records;
  CITYCARD_RETURN_IF_ERROR(store_.LoadAccounts(missing, &records));
  // Loaded values are the store's, not the scope's changes: nothing to remember for a rollback.
  for (const AccountRecord& r : records) {
    accounts_.insert_or_assign(r.account.id, CachedAccount{r.account, r.last_transfer_seq, 0});
  }
  return Status::Ok();
}

Status Ledger::BeginWrite() {
  if (!joined_) CITYCARD_RETURN_IF_ERROR(store_.Begin());
  // Checked inside the write transaction: its lock keeps other writers out until the commit,
  // so what the caches hold from here on stays true.
  Status synced = SyncWithStore();
  if (!synced.ok()) AbortWrite();
  return synced;
}

void Ledger::KeepCacheBound() {
  // Outside a joined scope the cache holds what the store holds, so emptying it is always
  // right; before a write, a lookup or a scope touches it is where it is kept to its bound.
  // Never inside a scope: a stream's rules read from the cache what its batch not yet written
  // made of an account, and a rollback drops the scope's accounts from it.
  if (!joined_ && accounts_.size() > account_cache_max_) ClearAccountCache();
}

Status Ledger::SyncWithStore() {
  KeepCacheBound();
  auto changed = store_.ChangedElsewhere();
  if (!changed.ok()) return changed.status();
  if (!*changed) return Status::Ok();
  ClearAccountCache();
  *head_ = Head{};
  if (joined_) {
    // The cache is empty now: a rollback has nothing of it to drop.
    joined_undo_.clear();
  }
  return Status::Ok();
}

Status Ledger::FinishWrite() {
  if (joined_) return Status::Ok();
  Status s = store_.Commit();
  // A failed COMMIT may leave the transaction open; it must not linger.
  if (!s.ok()) (void)store_.Rollback();
  return s;
}

void Ledger::AbortWrite() {
  if (!joined_) (void)store_.Rollback();
}

void Ledger::ClearAccountCache() {
  accounts_.clear();
  cache_removals_.fetch_add(1, std::memory_order_acq_rel);
}

size_t Ledger::OfferAccounts(std::span<const AccountRecord> records, uint64_t removals_seen) {
  if (removals_seen != cache_removals_.load(std::memory_order_acquire)) return 0;
  size_t taken = 0;
  for (const AccountRecord& r : records) {
    // A committed row, not a change of a joined scope: nothing to remember for a rollback,
    // as with LoadAccountsIntoCache.
    auto [it, inserted] = accounts_.try_emplace(r.account.id,
                                                CachedAccount{r.account, r.last_transfer_seq, 0});
    taken += inserted ? 1 : 0;
  }
  accounts_taken_ahead_ += taken;
  return taken;
}

void Ledger::CachePut(uint64_t id, const Account& account, int64_t last_seq) {
  auto [it, inserted] = accounts_.try_emplace(id);
  CachedAccount& cached = it->second;
  if (joined_ && (inserted || cached.remembered_in != joined_scope_)) {
    joined_undo_.push_back(id);
    cached.remembered_in = joined_scope_;
  }
  cached.account = account;
  cached.last_seq = last_seq;
}

namespace {

Status ValidateNewAccount(const Account& a) {
  auto bad = [&](std::string why) {
    return Status::BadInput("invalid_account", "account " + std::to_string(a.id) + ": " + why);
  };
  if (a.id == 0) return bad("the id must not be 0");
  if (!IsValidAccountKind(a.kind)) return bad("unknown kind");
  if ((a.flags & ~kAccountFlagsKnown) != 0) return bad("unknown flags");
  if (a.debits_posted != 0 || a.credits_posted != 0 || a.debits_pending != 0 ||
      a.credits_pending != 0) {
    return bad("a new account starts with zero balances");
  }
  if (a.floor_fen > 0) return bad("the floor must be 0 or negative");
  return Status::Ok();
}

bool SameDefinition(const Account& a, const Account& b) {
  return a.id == b.id && a.kind == b.kind && a.owner_ref == b.owner_ref &&
         a.floor_fen == b.floor_fen &&
         (a.flags & kAccountEnforceFloor) == (b.flags & kAccountEnforceFloor);
}

}  // namespace

Status Ledger::CreateAccounts(std::span<const Account> accounts) {
  if (accounts.size() > kAccountBatchMax) {
    return Status::BadInput("invalid_account", "more than " + std::to_string(kAccountBatchMax) +
                                                   " accounts in one call");
  }
  std::vector<uint64_t> ids;
  for (const Account& a : accounts) {
    CITYCARD_RETURN_IF_ERROR(ValidateNewAccount(a));
    ids.push_back(a.id);
  }
  CITYCARD_RETURN_IF_ERROR(BeginWrite());
  Status loaded = LoadAccountsIntoCache(ids);
  if (!loaded.ok()) {
    AbortWrite();
    return loaded;
  }
  LedgerWrite write;
  std::unordered_map<uint64_t, const Account*> fresh;
  for (const Account& a : accounts) {
    const Account* existing = nullptr;
    if (auto it = accounts_.find(a.id); it != accounts_.end()) existing = &it->second.account;
    if (auto it = fresh.find(a.id); it != fresh.end()) existing = it->second;
    if (existing != nullptr) {
      if (SameDefinition(*existing, a)) continue;
      AbortWrite();
      return Status::Refused("account_exists_with_different_fields",
                             "account " + std::to_string(a.id) + " exists with other fields");
    }
    fresh[a.id] = &a;
    write.new_accounts.push_back(a);
  }
  if (write.new_accounts.empty()) {
    AbortWrite();
    return Status::Ok();
  }
  Status written = store_.Write(write);
  if (!written.ok()) {
    AbortWrite();
    return written;
  }
  CITYCARD_RETURN_IF_ERROR(FinishWrite());
  for (const Account& a : write.new_accounts) CachePut(a.id, a, 0);
  return Status::Ok();
}

Result<std::vector<TransferOutcome>> Ledger::Apply(std::span<const Transfer> batch) {
  return ApplyInternal(batch, /*internal=*/false);
}

Result<std::vector<TransferOutcome>> Ledger::ApplyNew(std::span<const Transfer> batch) {
  return ApplyInternal(batch, /*internal=*/false, OwnIds::known_new);
}

Result<std::vector<TransferOutcome>> Ledger::ApplyInternal(std::span<const Transfer> batch,
                                                           bool internal, OwnIds own_ids_are) {
  CITYCARD_RETURN_IF_ERROR(CheckBatchSize(batch));
  CITYCARD_RETURN_IF_ERROR(BeginWrite());
  if (Status head = LoadHead(); !head.ok()) {
    AbortWrite();
    return head;
  }
  // Whatever fails below leaves the store's transaction rolled back and the cache untouched
  // but for accounts read as the store holds them.
  bool finished = false;
  auto result = [&]() -> Result<std::vector<TransferOutcome>> {
    BatchReads reads;
    CITYCARD_RETURN_IF_ERROR(ReadForBatch(batch, own_ids_are, /*cached_skipped=*/true, &reads));
    BatchResult computed = RunRules(batch, internal, std::move(reads));
    CITYCARD_RETURN_IF_ERROR(WriteBatch(computed));
    finished = true;
    CITYCARD_RETURN_IF_ERROR(FinishWrite());
    // Durable: now the cache may follow.
    Publish(computed);
    return std::move(computed.outcomes);
  }();
  if (!result.ok() && !finished) AbortWrite();
  return result;
}

Status Ledger::ReadForBatch(std::span<const Transfer> batch, OwnIds own_ids_are,
                            bool cached_skipped, BatchReads* reads) {
  // Every transfer the batch names and every account it touches, in one call each. Ids known
  // to be new (ApplyNew) are not searched: the store's unique index still refuses a broken
  // promise at the write.
  const bool search_own = own_ids_are == OwnIds::search;
  std::vector<Id128> ids;
  std::vector<Id128> own_ids;
  for (const Transfer& t : batch) {
    if (!t.id.IsZero() && search_own) {
      ids.push_back(t.id);
      own_ids.push_back(t.id);
    }
    if (!t.pending_id.IsZero()) ids.push_back(t.pending_id);
  }
  if (!ids.empty()) CITYCARD_RETURN_IF_ERROR(store_.LoadTransfers(ids, &reads->records));
  if (!own_ids.empty()) CITYCARD_RETURN_IF_ERROR(store_.LoadFailed(own_ids, &reads->failures));
  std::vector<uint64_t> account_ids;
  account_ids.reserve(2 * (batch.size() + reads->records.size()));
  for (const Transfer& t : batch) {
    account_ids.push_back(t.debit_account_id);
    account_ids.push_back(t.credit_account_id);
  }
  for (const TransferRecord& r : reads->records) {
    account_ids.push_back(r.transfer.debit_account_id);
    account_ids.push_back(r.transfer.credit_account_id);
  }
  std::vector<uint64_t> wanted = AccountIdsToRead(account_ids, cached_skipped);
  if (wanted.empty()) return Status::Ok();
  return store_.LoadAccounts(wanted, &reads->accounts);
}

Ledger::BatchResult Ledger::RunRules(std::span<const Transfer> batch, bool internal,
                                     BatchReads reads) {
  // What was read is the store's: nothing to remember for a rollback. A cached account is as
  // new as the store's row or newer (a stream's batches not yet written), so it stays.
  for (const AccountRecord& r : reads.accounts) {
    accounts_.try_emplace(r.account.id, CachedAccount{r.account, r.last_transfer_seq, 0});
  }
  BatchState s(accounts_, *head_, std::max(clock_.NowMs(), head_->last_timestamp_ms),
               batch.size());
  for (TransferRecord& r : reads.records) {
    s.loaded_status[r.transfer.id] = r.pending_status;
    s.loaded[r.transfer.id] = std::move(r);
  }
  for (const FailedTransfer& f : reads.failures) s.failed[f.id] = f.outcome;
  BatchResult result;
  result.outcomes = ApplyChains(s, batch, internal);
  result.write = WriteOf(s);
  result.next = *head_;
  if (!s.created.empty()) {
    std::vector<Transfer> transfers;
    transfers.reserve(s.created.size());
    for (const TransferRecord& r : s.created) transfers.push_back(r.transfer);
    BatchRecord b;
    b.seq = head_->last_batch_seq + 1;
    b.prev_hash = head_->last_hash;
    b.hash = BatchHash(digester_, b.prev_hash, b.seq, transfers);
    b.first_transfer_seq = s.created.front().seq;
    b.transfer_count = static_cast<int64_t>(s.created.size());
    b.timestamp_ms = s.now_ms;
    result.next.last_batch_seq = b.seq;
    result.next.last_hash = b.hash;
    result.next.last_transfer_seq = s.created.back().seq;
    result.next.last_timestamp_ms = s.now_ms;
    result.write.batch = b;
  }
  result.write.transfers = std::move(s.created);
  return result;
}

Status Ledger::WriteBatch(const BatchResult& result) {
  const LedgerWrite& write = result.write;
  if (write.transfers.empty() && write.failed.empty() && write.accounts.empty() &&
      write.pending_updates.empty()) {
    return Status::Ok();
  }
  return store_.Write(write);
}

void Ledger::Publish(const BatchResult& result) {
  for (const AccountRecord& r : result.write.accounts) {
    CachePut(r.account.id, r.account, r.last_transfer_seq);
  }
  *head_ = result.next;
}

// The stream keeps at most two batches in flight: one whose rules run on the second thread
// (`computing`), and the one computed before it, checked, waiting to be written (`computed`).
// The threads never share the store or the cache at the same moment: the rules thread touches
// only the cache and the batch's reads, this thread only the store, the batches' copies and
// the results it has collected; a future's get() passes each result from one to the other.
// The store's account rows read for batch N+1 while batch N is unwritten may be older than
// the cache, which holds what batch N made of them: RunRules keeps the cached values.
Status Ledger::ApplyNewStream(const BatchSupplier& next, const OutcomeCheck& check) {
  CITYCARD_ASSERT(joined_);
  CITYCARD_RETURN_IF_ERROR(BeginWrite());
  CITYCARD_RETURN_IF_ERROR(LoadHead());
  std::array<std::vector<Transfer>, 2> held;  // the batches in flight, copied
  size_t computing_slot = 0;
  std::optional<BatchResult> computed;
  // Declared after `held`, so that a way out while the rules run waits for them (the future's
  // destructor) before the batch they read goes.
  std::future<BatchResult> computing;
  auto collect = [&]() -> Status {
    BatchResult result = computing.get();
    CITYCARD_RETURN_IF_ERROR(check(held[computing_slot], result.outcomes));
    computed = std::move(result);
    return Status::Ok();
  };
  auto write = [&]() -> Status {
    if (!computed) return Status::Ok();
    Status written = WriteBatch(*computed);
    computed.reset();
    return written;
  };
  for (size_t taken = 0;; ++taken) {
    auto batch = next();
    if (!batch.ok()) return batch.status();
    if (batch->empty()) break;
    CITYCARD_RETURN_IF_ERROR(CheckBatchSize(*batch));
    const size_t slot = taken % 2;
    held[slot].assign(batch->begin(), batch->end());
    if (NamesPending(held[slot]) && computing.valid()) {
      // A pending transfer is read as the store holds it: the batches before are written first.
      CITYCARD_RETURN_IF_ERROR(collect());
      CITYCARD_RETURN_IF_ERROR(write());
    }
    BatchReads reads;
    CITYCARD_RETURN_IF_ERROR(ReadForBatch(held[slot], OwnIds::known_new,
                                          /*cached_skipped=*/!computing.valid(), &reads));
    if (computing.valid()) CITYCARD_RETURN_IF_ERROR(collect());
    computing = StartRules(held[slot], std::move(reads));
    computing_slot = slot;
    CITYCARD_RETURN_IF_ERROR(write());
  }
  if (computing.valid()) CITYCARD_RETURN_IF_ERROR(collect());
  return write();
}

// The rules of a stream's batch and its cache update, on a thread of their own; on this one,
// when get() is called, if no thread is to be had.
std::future<Ledger::BatchResult> Ledger::StartRules(std::span<const Transfer> batch,
                                                    BatchReads reads) {
  // The reads are shared, not moved into the callable: a failed std::async may have moved
  // from the callable it was given, and the fallback needs it whole.
  auto shared = std::make_shared<BatchReads>(std::move(reads));
  auto rules = [this, batch, shared]() {
    BatchResult result = RunRules(batch, /*internal=*/false, std::move(*shared));
    // Inside the caller's transaction (joined): a failed write fails the caller's unit, and its
    // rollback drops what is published here.
    Publish(result);
    return result;
  };
  try {
    return std::async(std::launch::async, rules);
  } catch (const std::system_error&) {
    return std::async(std::launch::deferred, rules);
  }
}

Result<Account> Ledger::LookupAccount(uint64_t id) {
  CITYCARD_RETURN_IF_ERROR(SyncWithStore());
  uint64_t ids[] = {id};
  CITYCARD_RETURN_IF_ERROR(LoadAccountsIntoCache(ids));
  auto it = accounts_.find(id);
  if (it == accounts_.end()) {
    return Status::NotFound("account_not_found", "no account " + std::to_string(id));
  }
  return it->second.account;
}

Result<std::optional<Transfer>> Ledger::LookupTransfer(const Id128& id) {
  Id128 ids[] = {id};
  std::vector<TransferRecord> records;
  CITYCARD_RETURN_IF_ERROR(store_.LoadTransfers(ids, &records));
  if (records.empty()) return std::optional<Transfer>();
  return std::optional<Transfer>(records.front().transfer);
}

Result<std::optional<TransferOutcome>> Ledger::LookupFailure(const Id128& id) {
  Id128 ids[] = {id};
  std::vector<FailedTransfer> failures;
  CITYCARD_RETURN_IF_ERROR(store_.LoadFailed(ids, &failures));
  if (failures.empty()) return std::optional<TransferOutcome>();
  return std::optional<TransferOutcome>(failures.front().outcome);
}

Result<std::vector<HistoryEntry>> Ledger::AccountHistory(uint64_t account_id, size_t limit) {
  auto account = LookupAccount(account_id);
  if (!account.ok()) return account.status();
  limit = std::min(limit, kAccountHistoryMax);
  std::vector<HistoryEntry> entries;
  int64_t seq = accounts_.at(account_id).last_seq;
  // Each step follows one link backwards; the loop is bounded by `limit`.
  while (seq != 0 && entries.size() < limit) {
    int64_t seqs[] = {seq};
    std::vector<TransferRecord> records;
    CITYCARD_RETURN_IF_ERROR(store_.LoadTransfersBySeq(seqs, &records));
    if (records.size() != 1) {
      return Status::Internal("ledger_corrupt", "transfer seq " + std::to_string(seq) +
                                                    " of account " + std::to_string(account_id) +
                                                    " is missing");
    }
    const TransferRecord& r = records.front();
    bool debit = r.transfer.debit_account_id == account_id;
    CITYCARD_ASSERT(debit || r.transfer.credit_account_id == account_id);
    entries.push_back(HistoryEntry{
        r.transfer, debit ? r.debit_balance_after_fen : r.credit_balance_after_fen});
    int64_t prev = debit ? r.debit_prev_seq : r.credit_prev_seq;
    CITYCARD_ASSERT(prev < seq);
    seq = prev;
  }
  return entries;
}

Id128 Ledger::ExpiryTransferId(const Id128& pending_id) const {
  constexpr std::string_view kDomain = "citycard.expiry";
  Bytes bytes(kDomain.begin(), kDomain.end());
  ByteWriter w(&bytes);
  w.U64(pending_id.hi);
  w.U64(pending_id.lo);
  Sha256Digest digest = digester_.Sha256(bytes);
  ByteReader r(digest);
  Id128 id;
  id.hi = r.U64();
  id.lo = r.U64();
  return id;
}

Result<size_t> Ledger::ExpirePending() {
  CITYCARD_RETURN_IF_ERROR(LoadHead());
  size_t voided = 0;
  // Each round voids what it loaded (every loaded transfer is still pending), so the rounds
  // end; a round that voids nothing stops the loop in any case.
  while (true) {
    std::vector<TransferRecord> expired;
    CITYCARD_RETURN_IF_ERROR(store_.LoadExpiredPending(
        std::max(clock_.NowMs(), head_->last_timestamp_ms), kExpireBatchMax, &expired));
    if (expired.empty()) break;
    std::vector<Transfer> voids;
    for (const TransferRecord& r : expired) {
      Transfer v;
      v.id = ExpiryTransferId(r.transfer.id);
      v.pending_id = r.transfer.id;
      v.flags = kTransferVoidPending | kTransferExpiry;
      v.code = r.transfer.code;
      voids.push_back(v);
    }
    auto outcomes = ApplyInternal(voids, /*internal=*/true);
    if (!outcomes.ok()) return outcomes.status();
    size_t created = static_cast<size_t>(
        std::count(outcomes->begin(), outcomes->end(), TransferOutcome::created));
    voided += created;
    if (created == 0 || expired.size() < kExpireBatchMax) break;
  }
  return voided;
}

Status Ledger::SetAccountClosed(uint64_t id) {
  // The account is read inside the write transaction: its whole record is written back.
  CITYCARD_RETURN_IF_ERROR(BeginWrite());
  auto account = LookupAccount(id);
  if (!account.ok() || account->closed()) {
    AbortWrite();
    return account.ok() ? Status::Ok() : account.status();
  }
  LedgerWrite write;
  AccountRecord record{*account, accounts_.at(id).last_seq};
  record.account.flags |= kAccountClosed;
  write.accounts.push_back(record);
  Status written = store_.Write(write);
  if (!written.ok()) {
    AbortWrite();
    return written;
  }
  CITYCARD_RETURN_IF_ERROR(FinishWrite());
  CachePut(id, record.account, record.last_transfer_seq);
  return Status::Ok();
}

Ledger::JoinedTransaction::JoinedTransaction(Ledger& ledger) : ledger_(ledger) {
  CITYCARD_ASSERT(!ledger_.joined_);
  // The last moment outside the scope: the ingest writer works in scopes only.
  ledger_.KeepCacheBound();
  ledger_.joined_ = true;
  ++ledger_.joined_scope_;
  ledger_.joined_undo_.clear();
}

Ledger::JoinedTransaction::~JoinedTransaction() {
  if (!done_) {
    // The caller's transaction did not commit: what the scope changed is dropped from the
    // cache, to be read again from the store as the rollback left it.
    for (uint64_t id : ledger_.joined_undo_) ledger_.accounts_.erase(id);
    // Counted even when nothing was dropped: a count that moves too often costs a read
    // ahead, one that moves too seldom would let a stale row in.
    ledger_.cache_removals_.fetch_add(1, std::memory_order_acq_rel);
    *ledger_.head_ = Head{};
  }
  ledger_.joined_undo_.clear();
  ledger_.joined_ = false;
}

void Ledger::JoinedTransaction::Committed() { done_ = true; }

}  // namespace citycard
