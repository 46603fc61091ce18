#include "core/bills.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>
#include <map>
#include <unordered_map>
#include <utility>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/money.h"
#include "core/time.h"

namespace citycard {

namespace {

constexpr std::string_view kPaidByFilePrefix = "file:";

std::string StatusReasonForCard(const Card& card, CardStatus status) {
  switch (status) {
    case CardStatus::blocked:
      return fmt::format("card {} is blocked ({})", card.card_no, BlockReasonName(card.block_reason));
    case CardStatus::replaced:
      return fmt::format("card {} was replaced by {}", card.card_no, card.replaced_by);
    case CardStatus::closed: return fmt::format("card {} is closed", card.card_no);
    case CardStatus::expired:
      return fmt::format("card {} expired on {}", card.card_no, FormatDay(card.expires_day));
    case CardStatus::active: break;
  }
  return "";
}

// The refusal code of a card that cannot pay (CardOffice's CheckCardUsable names).
std::string RefusalCodeFor(CardStatus status) {
  switch (status) {
    case CardStatus::blocked: return "card_blocked";
    case CardStatus::replaced: return "card_replaced";
    case CardStatus::closed: return "card_closed";
    case CardStatus::expired: return "card_expired";
    case CardStatus::active: break;
  }
  return "card_status_unknown";
}

// The card's status as of `today`: an active card past its expiry is expired.
CardStatus EffectiveStatus(const Card& card, int64_t today) {
  if (card.status == CardStatus::active && card.expires_day < today) return CardStatus::expired;
  return card.status;
}

void MergeSummaries(std::map<std::string, UtilitySummary>* totals,
                    std::span<const BillResult> results) {
  for (const UtilitySummary& part : SummarizeBillResults(results)) {
    UtilitySummary& total = (*totals)[part.utility];
    total.utility = part.utility;
    total.bills += part.bills;
    total.billed_fen += part.billed_fen;
    total.paid_fen += part.paid_fen;
    total.unpaid_fen += part.unpaid_fen;
    for (size_t i = 0; i < kBillStatusCount; ++i) total.by_status[i] += part.by_status[i];
  }
}

StoredBill StoredFromBill(const Bill& bill, const std::string& sha) {
  StoredBill stored;
  stored.bill_id = bill.bill_id;
  stored.utility = bill.utility;
  stored.account_no = bill.account_no;
  stored.card_no = bill.card_no;
  stored.period = bill.period;
  stored.amount_fen = bill.amount_fen;
  stored.due_day = bill.due_day;
  stored.file_sha256 = sha;
  return stored;
}

// Puts a chunk's transfers in the order of their ids, keeping the two index maps between
// bills and transfers in step. The ids are hashes, so in file order every transfer's entry in
// the ledger's unique id index (and its existence check) lands on a random page; in id order
// consecutive entries share pages that are still in the processor's cache. The order changes
// nothing else: every payment was checked against the purse's balance after all the chunk's
// earlier payments, so each succeeds in any order.
void OrderTransfersById(std::vector<Transfer>* transfers, std::vector<size_t>* transfer_bill,
                        std::vector<size_t>* bill_transfer) {
  std::vector<size_t> order(transfers->size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return (*transfers)[a].id < (*transfers)[b].id; });
  std::vector<Transfer> sorted;
  std::vector<size_t> sorted_bill;
  sorted.reserve(order.size());
  sorted_bill.reserve(order.size());
  for (size_t k : order) {
    (*bill_transfer)[(*transfer_bill)[k]] = sorted.size();
    sorted.push_back((*transfers)[k]);
    sorted_bill.push_back((*transfer_bill)[k]);
  }
  *transfers = std::move(sorted);
  *transfer_bill = std::move(sorted_bill);
}

}  // namespace

Id128 BillTransferId(const Digester& digester, std::string_view utility,
                     std::string_view bill_id) {
  std::string key;
  key.reserve(utility.size() + 1 + bill_id.size());
  key.append(utility).append(":").append(bill_id);
  return DeriveTransferId(digester, kBillTransferIdDomain, key);
}

std::string BillPaidByFile(std::string_view file_sha256) {
  return std::string(kPaidByFilePrefix) + std::string(file_sha256);
}

std::string FileSha256Hex(const Digester& digester, std::string_view text) {
  Sha256Digest digest = digester.Sha256(
      ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  return ToHex(digest);
}

// A card's mandates as one list, read once per chunk: a file usually bills a card once per
// utility, and one lookup of the card's mandates is cheaper than one lookup per bill.
struct BillService::CardMandates {
  std::vector<Mandate> mandates;
  bool complete = false;  // false: the list was cut at kMandateListMax
};

// Cards by number (nullopt: no such card) and each card's mandates, as read by the chunks of
// one import. An import changes no card and no mandate, so what one chunk read stays true for
// the next as long as no other connection has committed in between: each chunk compares
// BillStore::ChangesByOthers, read inside its transaction, with the previous chunk's and
// starts afresh when it moved (or when kImportCacheCardsMax cards are held).
struct BillService::ImportCache {
  std::unordered_map<std::string, std::optional<Card>> cards;
  std::unordered_map<std::string, CardMandates> mandates;
  std::optional<int64_t> changes_by_others;
};

// What one chunk has looked up so far: the import's cards and mandates, and the available
// balance of each purse after the payments planned so far in the chunk.
struct BillService::ChunkState {
  ImportCache* cache = nullptr;
  // Every kept bill in the range of the chunk's bill ids, by (utility, bill id), when one
  // range read them all (LoadEarlierBills); nullopt: each bill is looked up on its own.
  std::optional<std::map<std::pair<std::string, std::string>, StoredBill>> earlier;
  std::unordered_map<uint64_t, int64_t> available_fen;
  const std::unordered_map<std::string, Operator>* utilities = nullptr;
  int64_t today = 0;
};

BillService::BillService(BillStore& store, RegistryStore& registry, Ledger& ledger,
                         const Digester& digester, const Clock& clock)
    : store_(store), registry_(registry), ledger_(ledger), digester_(digester), clock_(clock) {}

BillService::~BillService() = default;

int64_t BillService::Today() const { return ClearingDay(clock_.NowSeconds()); }

Status BillService::RunUnit(const std::function<Status()>& body) {
  CITYCARD_RETURN_IF_ERROR(store_.Begin());
  Ledger::JoinedTransaction joined(ledger_);
  Status status = body();
  if (status.ok()) status = store_.Commit();
  if (!status.ok()) {
    // The body's failure is what the caller needs; a failing rollback adds nothing to it.
    (void)store_.Rollback();
    return status;
  }
  joined.Committed();
  return Status::Ok();
}

Result<std::vector<Operator>> BillService::Utilities() {
  auto operators = registry_.ListOperators();
  if (!operators.ok()) return operators.status();
  std::vector<Operator> utilities;
  for (Operator& op : *operators) {
    if (op.kind == OperatorKind::utility) utilities.push_back(std::move(op));
  }
  return utilities;
}

// ---- Mandates ----------------------------------------------------------------------------

Result<Mandate> BillService::AddMandate(std::string_view card_no, std::string_view utility,
                                        std::string_view account_no) {
  CITYCARD_RETURN_IF_ERROR(ValidateCardNumber(card_no));
  bool account_ok = !account_no.empty() && account_no.size() <= kBillAccountNoBytesMax &&
                    IsValidUtf8(account_no);
  for (unsigned char c : account_no) account_ok = account_ok && c >= 0x20 && c != 0x7f;
  if (!account_ok) {
    return Status::BadInput("invalid_account_no",
                            fmt::format("an account number is 1 to {} bytes of UTF-8 without "
                                        "control characters",
                                        kBillAccountNoBytesMax));
  }
  Mandate mandate{std::string(card_no), std::string(utility), std::string(account_no),
                  clock_.NowSeconds()};
  Status status = RunUnit([&]() -> Status {
    auto op = registry_.FindOperator(utility);
    if (!op.ok()) return op.status();
    if (!op->has_value()) {
      return Status::NotFound("operator_not_found", fmt::format("no operator '{}'", utility));
    }
    if ((*op)->kind != OperatorKind::utility) {
      return Status::Refused("not_a_utility",
                             fmt::format("operator '{}' is a {}, not a utility", utility,
                                         OperatorKindName((*op)->kind)));
    }
    auto card = registry_.FindCard(card_no);
    if (!card.ok()) return card.status();
    if (!card->has_value()) {
      return Status::NotFound("card_not_found", fmt::format("no card {}", card_no));
    }
    CardStatus card_status = (*card)->status;
    if (card_status == CardStatus::closed || card_status == CardStatus::replaced) {
      return Status::Refused(RefusalCodeFor(card_status), StatusReasonForCard(**card, card_status));
    }
    return store_.InsertMandate(mandate);
  });
  if (!status.ok()) return status;
  return mandate;
}

Status BillService::RemoveMandate(std::string_view card_no, std::string_view utility,
                                  std::string_view account_no) {
  return RunUnit([&] { return store_.DeleteMandate(card_no, utility, account_no); });
}

Result<std::vector<Mandate>> BillService::ListMandates(const MandateFilter& filter) {
  return store_.ListMandates(filter);
}

// ---- Import ------------------------------------------------------------------------------

// Reads the kept bills whose ids lie between the chunk's least and greatest bill id in one
// range. A new file's bills are mostly new, so the range is usually empty and one read
// replaces a lookup per bill; a range crowded with other bills is given up.
Status BillService::LoadEarlierBills(std::span<const Bill> bills, ChunkState* state) {
  CITYCARD_ASSERT(!bills.empty());
  std::string_view first = bills.front().bill_id;
  std::string_view last = first;
  for (const Bill& bill : bills) {
    first = std::min<std::string_view>(first, bill.bill_id);
    last = std::max<std::string_view>(last, bill.bill_id);
  }
  const size_t limit = kEarlierBillsRangeFactor * bills.size();
  auto listed = store_.ListBillsByIdRange(first, last, limit);
  if (!listed.ok()) return listed.status();
  if (listed->size() >= limit) return Status::Ok();  // perhaps cut: look up one by one
  state->earlier.emplace();
  for (StoredBill& kept : *listed) {
    auto key = std::make_pair(kept.utility, kept.bill_id);
    state->earlier->emplace(std::move(key), std::move(kept));
  }
  return Status::Ok();
}

Result<std::optional<StoredBill>> BillService::FindEarlierBill(const Bill& bill,
                                                               ChunkState* state) {
  if (!state->earlier) return store_.FindBill(bill.utility, bill.bill_id);
  auto found = state->earlier->find(std::make_pair(bill.utility, bill.bill_id));
  if (found == state->earlier->end()) return std::optional<StoredBill>();
  return std::optional<StoredBill>(found->second);
}

Result<bool> BillService::HasMandate(const Bill& bill, ChunkState* state) {
  auto cached = state->cache->mandates.find(bill.card_no);
  if (cached == state->cache->mandates.end()) {
    MandateFilter filter;
    filter.card_no = bill.card_no;
    auto listed = store_.ListMandates(filter);
    if (!listed.ok()) return listed.status();
    CardMandates card;
    card.complete = listed->size() < kMandateListMax;
    card.mandates = std::move(*listed);
    cached = state->cache->mandates.emplace(bill.card_no, std::move(card)).first;
  }
  for (const Mandate& m : cached->second.mandates) {
    if (m.utility == bill.utility && m.account_no == bill.account_no) return true;
  }
  if (cached->second.complete) return false;
  return store_.HasMandate(bill.card_no, bill.utility, bill.account_no);
}

Status BillService::DecideBill(const Bill& bill, const std::string& sha, ChunkState* state,
                               BillResult* result, std::optional<Transfer>* transfer) {
  result->bill_id = bill.bill_id;
  result->utility = bill.utility;
  result->amount_fen = bill.amount_fen;
  auto earlier = FindEarlierBill(bill, state);
  if (!earlier.ok()) return earlier.status();
  if (earlier->has_value() && (*earlier)->paid()) {
    const StoredBill& paid = **earlier;
    // Paid by this very file: only an earlier run of it can have done that, and its results
    // are kept, so this is a bill paid twice in one file (impossible after the check); say
    // paid all the same, which is the truth.
    result->status = paid.paid_by == BillPaidByFile(sha) ? BillStatus::paid : BillStatus::already_paid;
    result->amount_paid_fen = paid.amount_paid_fen;
    result->transfer_id = paid.transfer_id.ToHex();
    result->reason = fmt::format("paid on {} ({})", FormatLocalTime(paid.paid_ms / 1000), paid.paid_by);
    return Status::Ok();
  }
  auto cached = state->cache->cards.find(bill.card_no);
  if (cached == state->cache->cards.end()) {
    auto card = registry_.FindCard(bill.card_no);
    if (!card.ok()) return card.status();
    if (card->has_value()) {
      // Only what deciding a bill reads is kept (the memory is per card of the file).
      (*card)->holder_name.clear();
      (*card)->holder_id_masked.clear();
      (*card)->replaces.clear();
    }
    cached = state->cache->cards.emplace(bill.card_no, std::move(*card)).first;
  }
  if (!cached->second.has_value()) {
    result->status = BillStatus::unknown_card;
    result->reason = fmt::format("no card {}", bill.card_no);
    return Status::Ok();
  }
  const Card& card = *cached->second;
  auto mandate = HasMandate(bill, state);
  if (!mandate.ok()) return mandate.status();
  if (!*mandate) {
    result->status = BillStatus::no_mandate;
    result->reason = fmt::format("card {} has no mandate for {} account {}", bill.card_no,
                                 bill.utility, bill.account_no);
    return Status::Ok();
  }
  CardStatus card_status = EffectiveStatus(card, state->today);
  if (card_status != CardStatus::active) {
    result->status = BillStatus::card_blocked;
    result->reason = StatusReasonForCard(card, card_status);
    return Status::Ok();
  }
  auto available = state->available_fen.find(card.purse_account_id);
  if (available == state->available_fen.end()) {
    auto account = ledger_.LookupAccount(card.purse_account_id);
    if (!account.ok()) return account.status();
    available = state->available_fen.emplace(card.purse_account_id, account->available_fen()).first;
  }
  if (available->second < bill.amount_fen) {
    result->status = BillStatus::insufficient_funds;
    result->reason = fmt::format("balance {} is below {}", FormatYuanSign(available->second),
                                 FormatYuanSign(bill.amount_fen));
    return Status::Ok();
  }
  available->second -= bill.amount_fen;
  const Operator& utility = state->utilities->at(bill.utility);
  Transfer t;
  t.id = BillTransferId(digester_, bill.utility, bill.bill_id);
  t.debit_account_id = card.purse_account_id;
  t.credit_account_id = utility.payable_account_id;
  t.amount_fen = bill.amount_fen;
  t.code = static_cast<uint16_t>(TransferCode::bill_payment);
  t.user_data_64 = static_cast<uint64_t>(bill.due_day);
  t.user_data_32 = static_cast<uint32_t>(utility.number);
  *transfer = t;
  result->status = BillStatus::paid;
  result->amount_paid_fen = bill.amount_fen;
  result->transfer_id = t.id.ToHex();
  return Status::Ok();
}

// Called first in each chunk's transaction: keeps the cards and mandates of earlier chunks
// only while nobody else has committed since they were read (see ImportCache).
Status BillService::RefreshImportCache() {
  auto changes = store_.ChangesByOthers();
  if (!changes.ok()) return changes.status();
  if (!cache_ || cache_->changes_by_others != *changes ||
      cache_->cards.size() >= kImportCacheCardsMax) {
    cache_ = std::make_unique<ImportCache>();
  }
  cache_->changes_by_others = *changes;
  return Status::Ok();
}

Status BillService::ProcessChunk(std::span<const Bill> bills, const std::string& sha,
                                 BillImportProgress* progress, std::vector<BillResult>* results,
                                 BillImportReport* report) {
  CITYCARD_RETURN_IF_ERROR(RefreshImportCache());
  ChunkState state;
  state.cache = cache_.get();
  state.utilities = &utilities_;
  state.today = Today();
  results->assign(bills.size(), BillResult{});
  CITYCARD_RETURN_IF_ERROR(LoadEarlierBills(bills, &state));
  std::vector<Transfer> transfers;
  std::vector<size_t> transfer_bill;  // the index of the bill each transfer pays
  std::vector<size_t> bill_transfer(bills.size(), 0);  // and the other way round
  for (size_t i = 0; i < bills.size(); ++i) {
    std::optional<Transfer> transfer;
    CITYCARD_RETURN_IF_ERROR(DecideBill(bills[i], sha, &state, &(*results)[i], &transfer));
    if (transfer) {
      bill_transfer[i] = transfers.size();
      transfers.push_back(*transfer);
      transfer_bill.push_back(i);
    }
    if (progress_) progress_(decided_ + static_cast<int64_t>(i) + 1, ProgressTotal(*progress));
  }
  OrderTransfersById(&transfers, &transfer_bill, &bill_transfer);
  std::vector<TransferOutcome> outcomes;
  if (!transfers.empty()) {
    // Each transfer pays a bill whose kept row is absent or unpaid, and a bill's transfer is
    // only ever written in the transaction that marks its row paid (here and in PayBill), so
    // its id is new to the ledger: ApplyNew need not search for it.
    auto applied = ledger_.ApplyNew(transfers);
    if (!applied.ok()) return applied.status();
    outcomes = std::move(*applied);
  }
  int64_t now_ms = clock_.NowMs();
  int64_t paid_now = 0;
  int64_t paid_now_fen = 0;
  for (size_t k = 0; k < transfers.size(); ++k) {
    TransferOutcome outcome = outcomes[k];
    BillResult& result = (*results)[transfer_bill[k]];
    if (outcome == TransferOutcome::created) {
      ++paid_now;
      paid_now_fen += transfers[k].amount_fen;
    } else if (outcome != TransferOutcome::exists) {
      // The balances were checked under this very transaction, so the ledger can only decline
      // what another writer changed behind this one's back: stop rather than guess.
      return Status::Internal("bill_transfer_failed",
                              fmt::format("the ledger declined the payment of bill {}: {}",
                                          result.bill_id, TransferOutcomeName(outcome)));
    }
  }
  for (size_t i = 0; i < bills.size(); ++i) {
    const BillResult& result = (*results)[i];
    if (result.status == BillStatus::already_paid) continue;  // the kept bill stays as paid
    StoredBill stored = StoredFromBill(bills[i], sha);
    stored.status = result.status;
    if (result.status == BillStatus::paid) {
      // Every paid result of this chunk is one of its transfers (decided or repeated).
      stored.transfer_id = transfers[bill_transfer[i]].id;
      stored.amount_paid_fen = result.amount_paid_fen;
      stored.paid_ms = now_ms;
      stored.paid_by = BillPaidByFile(sha);
    }
    CITYCARD_RETURN_IF_ERROR(store_.PutBill(stored));
  }
  CITYCARD_RETURN_IF_ERROR(store_.AppendImportResults(sha, progress->chunks_done, *results));
  progress->bills_done += static_cast<int64_t>(bills.size());
  progress->chunks_done += 1;
  if (progress->bills_done == progress->bills_total) {
    progress->complete = true;
    progress->finished_ms = now_ms;
  }
  CITYCARD_RETURN_IF_ERROR(store_.PutImport(*progress));
  report->bills_paid_now += paid_now;
  report->paid_now_fen += paid_now_fen;
  return Status::Ok();
}

// Pays one chunk as its own transaction, then passes its results on.
Status BillService::PayChunk(std::span<const Bill> chunk, const BillImportOptions& options,
                             BillImportProgress* progress, BillImportReport* report,
                             std::map<std::string, UtilitySummary>* totals) {
  std::vector<BillResult> results;
  CITYCARD_RETURN_IF_ERROR(RunUnit(
      [&] { return ProcessChunk(chunk, report->file_sha256, progress, &results, report); }));
  decided_ += static_cast<int64_t>(chunk.size());
  MergeSummaries(totals, results);
  return options.on_results ? options.on_results(results) : Status::Ok();
}

// ---- Checking while paying ---------------------------------------------------------------

namespace {
// bills_total of a new file's progress while its checking pass has not finished.
constexpr int64_t kBillsTotalUnknown = std::numeric_limits<int64_t>::max();
// The largest file checked while it is paid. The first transaction holds the database's write
// lock until the check has finished (a few seconds for a million bills, ~80 MB); other
// writers (a running `serve`) wait up to kBusyTimeoutMs for it. A larger file is checked
// first, so that no one waits longer than one chunk (docs/bills.md "Checking while paying").
constexpr size_t kCheckWhilePayingBytesMax = size_t{128} << 20;
}  // namespace

// The good bills of a file being checked, handed from the checking thread to the paying one
// in blocks of one chunk each.
struct BillService::CheckedBlocks {
  std::mutex mu;
  std::condition_variable changed;
  std::deque<std::vector<Bill>> ready;  // published, not yet taken (guarded by mu)
  bool done = false;                    // the checker has returned (guarded by mu)
  Status status;                        // what it returned (guarded by mu)
  bool kept_all = true;                 // false: past kept_bills_max, bills were not kept (mu)
  std::atomic<bool> bad_line{false};    // a bad line was found
  std::atomic<bool> cancel{false};      // the payer gave up: stop checking
  std::atomic<int64_t> good{0};         // good bills found so far

  void Publish(std::vector<Bill>* block) {
    std::lock_guard<std::mutex> lock(mu);
    ready.push_back(std::move(*block));
    block->clear();
    changed.notify_all();
  }
};

// The checking thread's pass: CheckFile's, except that the good bills go out in blocks as
// they are found. *report is this thread's alone until it returns.
Status BillService::CheckIntoBlocks(std::string_view text,
                                    const std::unordered_set<std::string>& known,
                                    const BillImportOptions& options, BillImportReport* report,
                                    CheckedBlocks* blocks) {
  BillFileReader reader(text, known);
  CITYCARD_RETURN_IF_ERROR(reader.ReadHeader());
  Bill bill;
  LineError error;
  std::vector<Bill> block;
  bool keeping = true;
  while (!blocks->cancel.load(std::memory_order_relaxed)) {
    auto step = reader.Next(&bill, &error);
    if (!step.ok()) return step.status();
    if (*step == BillFileReader::Step::end) break;
    if (*step == BillFileReader::Step::bad_line) {
      report->errors.push_back(error);
      blocks->bad_line.store(true);
      continue;
    }
    ++report->bills;
    blocks->good.store(report->bills, std::memory_order_relaxed);
    if (options.on_checked) options.on_checked(report->bills);
    if (!keeping) continue;
    if (report->bills > options.kept_bills_max) {
      // Memory stays bounded: the rest is read again by the paying pass (PayFile).
      keeping = false;
      std::vector<Bill>().swap(block);
      std::lock_guard<std::mutex> lock(blocks->mu);
      blocks->kept_all = false;
      continue;
    }
    block.push_back(std::move(bill));
    if (block.size() == options.chunk_bills) blocks->Publish(&block);
  }
  if (keeping && !block.empty()) blocks->Publish(&block);
  report->lines = reader.lines();
  return Status::Ok();
}

int64_t BillService::ProgressTotal(const BillImportProgress& progress) const {
  if (progress.bills_total == kBillsTotalUnknown && checked_so_far_ != nullptr) {
    return checked_so_far_->load(std::memory_order_relaxed);
  }
  return progress.bills_total;
}

// The body of the first transaction of a new file: pays the blocks the checker publishes
// until it has finished, holding their results (they are handed on only once committed).
// With bad lines and !skip_bad whatever it pays is rolled back by the caller, so it stops
// paying as soon as the checker has found one.
Status BillService::PayCheckedBlocks(CheckedBlocks* blocks, const BillImportOptions& options,
                                     BillImportProgress* progress, BillImportReport* report,
                                     std::vector<std::vector<BillResult>>* held) {
  while (true) {
    std::vector<Bill> block;
    {
      std::unique_lock<std::mutex> lock(blocks->mu);
      blocks->changed.wait(lock, [&] { return !blocks->ready.empty() || blocks->done; });
      // Once the file is known good, every further chunk is its own transaction again.
      if (blocks->done) break;
      block = std::move(blocks->ready.front());
      blocks->ready.pop_front();
    }
    if (blocks->bad_line.load() && !options.skip_bad) continue;  // all of it will be undone
    std::vector<BillResult> results;
    CITYCARD_RETURN_IF_ERROR(
        ProcessChunk(block, report->file_sha256, progress, &results, report));
    decided_ += static_cast<int64_t>(block.size());
    held->push_back(std::move(results));
  }
  return Status::Ok();
}

// A new file: checked on a second thread while its first chunks are paid in one transaction
// that commits only when the check has finished and found the file good (docs/bills.md
// "Checking while paying"). The rest is paid chunk by chunk as in PayFile.
Status BillService::ImportWhileChecking(std::string_view text,
                                        const std::unordered_set<std::string>& known,
                                        const BillImportOptions& options,
                                        BillImportProgress* progress, BillImportReport* report,
                                        std::map<std::string, UtilitySummary>* totals) {
  CheckedBlocks blocks;
  BillImportReport checked;  // the checker's until it is joined
  checked_so_far_ = &blocks.good;
  std::thread checker([&] {
    Status status = CheckIntoBlocks(text, known, options, &checked, &blocks);
    std::lock_guard<std::mutex> lock(blocks.mu);
    blocks.status = std::move(status);
    blocks.done = true;
    blocks.changed.notify_all();
  });
  // However this function ends, the checker is stopped and joined first: it reads `text`.
  struct Joiner {
    CheckedBlocks& blocks;
    std::thread& thread;
    ~Joiner() {
      blocks.cancel.store(true);
      if (thread.joinable()) thread.join();
    }
  } joiner{blocks, checker};

  std::vector<std::vector<BillResult>> held;
  bool abandoned = false;
  Status first = RunUnit([&]() -> Status {
    CITYCARD_RETURN_IF_ERROR(
        PayCheckedBlocks(&blocks, options, progress, report, &held));
    checker.join();  // it has finished (blocks.done)
    CITYCARD_RETURN_IF_ERROR(blocks.status);
    report->lines = checked.lines;
    report->bills = checked.bills;
    report->errors = std::move(checked.errors);
    if (!report->errors.empty() && !options.skip_bad) {
      abandoned = true;
      return Status::Refused("bad_lines", "the file has bad lines: nothing is paid");
    }
    progress->bills_total = report->bills;
    if (progress->bills_done == progress->bills_total) {
      progress->complete = true;
      progress->finished_ms = clock_.NowMs();
    }
    return store_.PutImport(*progress);
  });
  checked_so_far_ = nullptr;
  if (abandoned) return Status::Ok();  // report->applied stays false
  CITYCARD_RETURN_IF_ERROR(first);
  report->applied = true;
  for (const std::vector<BillResult>& results : held) {
    MergeSummaries(totals, results);
    if (options.on_results) CITYCARD_RETURN_IF_ERROR(options.on_results(results));
  }
  std::vector<std::vector<BillResult>>().swap(held);
  while (!progress->complete) {
    std::vector<Bill> block;
    {
      std::lock_guard<std::mutex> lock(blocks.mu);
      if (blocks.ready.empty()) break;
      block = std::move(blocks.ready.front());
      blocks.ready.pop_front();
    }
    CITYCARD_RETURN_IF_ERROR(PayChunk(block, options, progress, report, totals));
  }
  if (progress->complete) return Status::Ok();
  // The checker stopped keeping bills (kept_all false): the rest is read from the file again.
  return PayFile(text, known, {}, options, progress, report, totals);
}

// Pass 1 of an import: checks every line. The good bills are kept in *kept for pass 2, which
// then need not parse the file again, while there are at most kept_bills_max of them; past
// that *kept is emptied and pass 2 reads the file again, so that memory stays bounded
// whatever the file's size.
Status BillService::CheckFile(std::string_view text, const std::unordered_set<std::string>& known,
                              int64_t kept_bills_max, BillImportReport* report,
                              std::vector<Bill>* kept) {
  BillFileReader reader(text, known);
  CITYCARD_RETURN_IF_ERROR(reader.ReadHeader());
  Bill bill;
  LineError error;
  bool keeping = true;
  while (true) {
    auto step = reader.Next(&bill, &error);
    if (!step.ok()) return step.status();
    if (*step == BillFileReader::Step::end) break;
    if (*step == BillFileReader::Step::bad_line) report->errors.push_back(error);
    if (*step != BillFileReader::Step::bill) continue;
    ++report->bills;
    if (keeping && report->bills > kept_bills_max) {
      keeping = false;
      std::vector<Bill>().swap(*kept);
    }
    if (keeping) kept->push_back(std::move(bill));
  }
  report->lines = reader.lines();
  return Status::Ok();
}

// Pass 2 of an import: decides and pays the good bills after the `progress.bills_done` kept
// by an earlier run, chunk by chunk, each chunk one unit. The bills come from `kept` when
// pass 1 kept them all, else from reading the file again.
Status BillService::PayFile(std::string_view text, const std::unordered_set<std::string>& known,
                            const std::vector<Bill>& kept, const BillImportOptions& options,
                            BillImportProgress* progress, BillImportReport* report,
                            std::map<std::string, UtilitySummary>* totals) {
  const size_t kept_bills = static_cast<size_t>(progress->bills_done);
  auto pay = [&](std::span<const Bill> chunk) {
    return PayChunk(chunk, options, progress, report, totals);
  };
  if (static_cast<int64_t>(kept.size()) == report->bills) {
    for (size_t from = kept_bills; from < kept.size() && !progress->complete;
         from += options.chunk_bills) {
      size_t count = std::min(options.chunk_bills, kept.size() - from);
      CITYCARD_RETURN_IF_ERROR(pay(std::span<const Bill>(kept).subspan(from, count)));
    }
    return Status::Ok();
  }
  BillFileReader reader(text, known);
  CITYCARD_RETURN_IF_ERROR(reader.ReadHeader());
  std::vector<Bill> chunk;
  size_t skipped = 0;  // good bills read past: an earlier run decided them
  Bill bill;
  LineError error;
  bool more = true;
  while (more && !progress->complete) {
    auto step = reader.Next(&bill, &error);
    if (!step.ok()) return step.status();
    more = *step != BillFileReader::Step::end;
    if (*step == BillFileReader::Step::bill) {
      if (skipped < kept_bills) {
        ++skipped;
        continue;
      }
      chunk.push_back(std::move(bill));
    }
    if (chunk.size() == options.chunk_bills || (!more && !chunk.empty())) {
      CITYCARD_RETURN_IF_ERROR(pay(chunk));
      chunk.clear();
    }
  }
  return Status::Ok();
}

Result<BillImportReport> BillService::ImportBills(std::string_view text,
                                                  const BillImportOptions& options) {
  if (options.chunk_bills == 0 || options.chunk_bills > kBillChunkBillsMax) {
    return Status::Usage("invalid_chunk_size",
                         fmt::format("a chunk holds 1 to {} bills", kBillChunkBillsMax));
  }
  auto utilities = Utilities();
  if (!utilities.ok()) return utilities.status();
  cache_.reset();  // nothing is remembered from one import to the next
  utilities_.clear();
  std::unordered_set<std::string> known;
  for (const Operator& op : *utilities) {
    known.insert(op.id);
    utilities_.emplace(op.id, op);
  }
  BillImportReport report;
  report.file_sha256 = FileSha256Hex(digester_, text);
  // Looked up before pass 1: a file imported whole before pays nothing, so pass 1 keeps none
  // of its bills (a repeat of a large file would otherwise hold them all in memory for nothing).
  auto found = store_.FindImport(report.file_sha256);
  if (!found.ok()) return found.status();
  const bool imported_whole = found->has_value() && (*found)->complete;
  if (!found->has_value() && options.check_while_paying &&
      text.size() <= kCheckWhilePayingBytesMax) {
    BillImportProgress progress;
    progress.file_sha256 = report.file_sha256;
    progress.bills_total = kBillsTotalUnknown;
    progress.started_ms = clock_.NowMs();
    std::map<std::string, UtilitySummary> totals;
    progress_ = options.on_progress;
    decided_ = 0;
    Status paid = ImportWhileChecking(text, known, options, &progress, &report, &totals);
    progress_ = nullptr;
    CITYCARD_RETURN_IF_ERROR(paid);
    if (!report.applied) return report;
    CITYCARD_ASSERT(progress.complete);
    for (auto& [utility, summary] : totals) report.summary.push_back(summary);
    return report;
  }
  std::vector<Bill> kept;
  CITYCARD_RETURN_IF_ERROR(CheckFile(text, known, imported_whole ? 0 : options.kept_bills_max,
                                     &report, &kept));
  if (!report.errors.empty() && !options.skip_bad) return report;
  report.applied = true;

  // Results kept by an earlier run of the same file come first.
  BillImportProgress progress;
  if (found->has_value()) {
    progress = **found;
    report.repeated = progress.complete;
    report.resumed = !progress.complete;
  } else {
    progress.file_sha256 = report.file_sha256;
    progress.bills_total = report.bills;
    progress.started_ms = clock_.NowMs();
  }
  std::map<std::string, UtilitySummary> totals;
  CITYCARD_RETURN_IF_ERROR(store_.ForEachImportResult(
      report.file_sha256, [&](std::span<const BillResult> results) -> Status {
        MergeSummaries(&totals, results);
        return options.on_results ? options.on_results(results) : Status::Ok();
      }));

  if (!progress.complete && progress.bills_total == 0) {
    // A file with no good bill is complete at once, and kept so that it is known again.
    progress.complete = true;
    progress.finished_ms = clock_.NowMs();
    CITYCARD_RETURN_IF_ERROR(RunUnit([&] { return store_.PutImport(progress); }));
  }
  if (!progress.complete) {
    progress_ = options.on_progress;
    decided_ = progress.bills_done;
    Status paid = PayFile(text, known, kept, options, &progress, &report, &totals);
    progress_ = nullptr;
    CITYCARD_RETURN_IF_ERROR(paid);
    CITYCARD_ASSERT(progress.complete);
  }
  for (auto& [utility, summary] : totals) report.summary.push_back(summary);
  return report;
}

// ---- Counter and kiosk -------------------------------------------------------------------

Result<std::vector<StoredBill>> BillService::ShowBill(std::string_view bill_id) {
  auto bills = store_.FindBillsById(bill_id);
  if (!bills.ok()) return bills.status();
  if (bills->empty()) {
    return Status::NotFound("bill_not_found", fmt::format("no bill '{}'", bill_id));
  }
  return bills;
}

Result<StoredBill> BillService::FindPayableBill(const BillPayRequest& request) {
  if (request.utility) {
    auto bill = store_.FindBill(*request.utility, request.bill_id);
    if (!bill.ok()) return bill.status();
    if (!bill->has_value()) {
      return Status::NotFound("bill_not_found", fmt::format("no bill '{}' of {}", request.bill_id,
                                                            *request.utility));
    }
    return **bill;
  }
  auto bills = ShowBill(request.bill_id);
  if (!bills.ok()) return bills.status();
  if (bills->size() > 1) {
    return Status::Refused("ambiguous_bill_id",
                           fmt::format("{} utilities use bill id '{}': name the utility",
                                       bills->size(), request.bill_id));
  }
  return bills->front();
}

Result<BillPayOutcome> BillService::PayBill(const BillPayRequest& request) {
  if (request.card_no) CITYCARD_RETURN_IF_ERROR(ValidateCardNumber(*request.card_no));
  BillPayOutcome outcome;
  Status status = RunUnit([&]() -> Status {
    auto found = FindPayableBill(request);
    if (!found.ok()) return found.status();
    StoredBill bill = std::move(*found);
    if (request.amount_fen && *request.amount_fen != bill.amount_fen) {
      return Status::Refused("amount_mismatch",
                             fmt::format("bill {} is for {}, not {}", bill.bill_id,
                                         FormatYuanSign(bill.amount_fen),
                                         FormatYuanSign(*request.amount_fen)));
    }
    std::string card_no = request.card_no.value_or(bill.card_no);
    auto card = registry_.FindCard(card_no);
    if (!card.ok()) return card.status();
    if (!card->has_value()) return Status::NotFound("card_not_found", fmt::format("no card {}", card_no));
    if (bill.paid()) {
      outcome.status = BillStatus::already_paid;
      outcome.bill = bill;
      auto account = ledger_.LookupAccount((*card)->purse_account_id);
      if (!account.ok()) return account.status();
      outcome.balance_after_fen = account->balance_fen();
      return Status::Ok();
    }
    auto mandate = store_.HasMandate(card_no, bill.utility, bill.account_no);
    if (!mandate.ok()) return mandate.status();
    if (!*mandate) {
      return Status::Refused("no_mandate", fmt::format("card {} has no mandate for {} account {}",
                                                       card_no, bill.utility, bill.account_no));
    }
    CardStatus card_status = EffectiveStatus(**card, Today());
    if (card_status != CardStatus::active) {
      return Status::Refused(RefusalCodeFor(card_status), StatusReasonForCard(**card, card_status));
    }
    auto account = ledger_.LookupAccount((*card)->purse_account_id);
    if (!account.ok()) return account.status();
    if (account->available_fen() < bill.amount_fen) {
      return Status::Refused("insufficient_funds",
                             fmt::format("balance {} is below {}",
                                         FormatYuanSign(account->available_fen()),
                                         FormatYuanSign(bill.amount_fen)));
    }
    auto op = registry_.FindOperator(bill.utility);
    if (!op.ok()) return op.status();
    if (!op->has_value()) {
      return Status::Internal("unknown_operator", "utility " + bill.utility + " is not registered");
    }
    Transfer t;
    t.id = BillTransferId(digester_, bill.utility, bill.bill_id);
    t.debit_account_id = (*card)->purse_account_id;
    t.credit_account_id = (*op)->payable_account_id;
    t.amount_fen = bill.amount_fen;
    t.code = static_cast<uint16_t>(TransferCode::bill_payment);
    t.user_data_64 = static_cast<uint64_t>(bill.due_day);
    t.user_data_32 = static_cast<uint32_t>((*op)->number);
    auto outcomes = ledger_.Apply(std::span<const Transfer>(&t, 1));
    if (!outcomes.ok()) return outcomes.status();
    if (!IsSuccess(outcomes->front())) {
      return Status::Internal("bill_transfer_failed",
                              fmt::format("the ledger declined the payment of bill {}: {}",
                                          bill.bill_id, TransferOutcomeName(outcomes->front())));
    }
    bill.status = BillStatus::paid;
    bill.transfer_id = t.id;
    bill.amount_paid_fen = bill.amount_fen;
    bill.paid_ms = clock_.NowMs();
    bill.paid_by = request.channel;
    CITYCARD_RETURN_IF_ERROR(store_.PutBill(bill));
    auto after = ledger_.LookupAccount((*card)->purse_account_id);
    if (!after.ok()) return after.status();
    outcome.bill = bill;
    outcome.status = BillStatus::paid;
    outcome.balance_after_fen = after->balance_fen();
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return outcome;
}

}  // namespace citycard
