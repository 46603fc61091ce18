// Paying utility bills from citizen cards: mandates, importing a checked bill file
// (core/bill_file.h), and paying one bill at a counter or a kiosk. Pure logic over the
// registry (core/registry.h), the ledger (core/ledger.h) and BillStore, the storage interface
// that db/sqlite_bill_store.h implements over SQLite (tests/support has an in-memory fake).
// The file formats and the statuses are described in docs/bills.md.
//
// Money: a bill is paid by one ledger transfer, the card's purse -> the utility's operator
// payable, with code TransferCode::bill_payment (so settlement can count what each utility was
// paid) and an id derived from the utility and the bill id alone (BillTransferId), so that no
// bill can ever be paid twice, whichever way (file, counter, kiosk) it is paid.
//
// Atomicity: an import works in chunks of at most BillImportOptions::chunk_bills bills. Each
// chunk is one storage transaction holding the chunk's transfers, the bills' rows, the chunk's
// results and the file's progress; a crash leaves whole chunks only, and running the same file
// again resumes after the last committed chunk (docs/bills.md "Atomicity"). A new file is
// checked on a second thread while the first chunks are paid: those chunks share one
// transaction that commits only once the whole file is known to be good (or is rolled back),
// so that a file with bad lines still changes nothing (docs/bills.md "Checking while paying").
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/bill_file.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/ledger.h"
#include "core/registry.h"
#include "core/status.h"

namespace citycard {

// The domain of bill transfer ids (core/account_plan.h DeriveTransferId).
inline constexpr std::string_view kBillTransferIdDomain = "citycard.bill";
// Bills per storage transaction of an import: large enough that the per-commit cost (a WAL
// flush) is spread thin, small enough that a chunk's transfers fit one ledger batch and that a
// crash loses little work.
inline constexpr size_t kBillChunkBillsDefault = 50'000;
inline constexpr size_t kBillChunkBillsMax = kTransferBatchMax;
// The most good bills an import keeps in memory between its checking pass and its paying pass
// (a Bill takes about 250 bytes, so about 500 MB); a file with more is read a second time.
inline constexpr int64_t kBillImportKeptBillsMax = 2'000'000;
// An import reads the kept bills in its chunk's range of bill ids, at most this many times the
// chunk's size (ListBillsByIdRange); a range holding more (other bills between the chunk's
// ids) is given up for one lookup per bill, so that no chunk scans much more than it needs.
inline constexpr size_t kEarlierBillsRangeFactor = 2;
// The most cards an import remembers across chunks (with their mandates; about 200 bytes
// each): past it the memory is emptied and cards are read again.
inline constexpr size_t kImportCacheCardsMax = 1'000'000;
// The most mandates ListMandates returns.
inline constexpr size_t kMandateListMax = 100'000;

// The transfer id of the payment of bill `bill_id` of `utility`: DeriveTransferId(
// kBillTransferIdDomain, utility + ":" + bill_id). Utility ids never hold ':' (registry ids
// are A-Z a-z 0-9 - _), so the key is unambiguous.
Id128 BillTransferId(const Digester& digester, std::string_view utility, std::string_view bill_id);

// ---- Values ----------------------------------------------------------------------------

// A card's standing order to pay the bills of one account with one utility.
struct Mandate {
  std::string card_no;
  std::string utility;     // operator id of kind utility
  std::string account_no;  // as on the bills (UTF-8)
  int64_t created_s = 0;

  friend bool operator==(const Mandate&, const Mandate&) = default;
};

struct MandateFilter {
  std::optional<std::string> card_no;
  std::optional<std::string> utility;
};

// A bill as kept: its latest fields (a later file may correct an unpaid bill), its latest
// outcome, and, once paid, the payment. Keyed by (utility, bill_id).
struct StoredBill {
  std::string bill_id;
  std::string utility;
  std::string account_no;
  std::string card_no;
  std::string period;      // "YYYY-MM"
  int64_t amount_fen = 0;
  int64_t due_day = 0;
  BillStatus status = BillStatus::no_mandate;  // the latest outcome; paid once paid
  Id128 transfer_id;          // zero until paid
  int64_t amount_paid_fen = 0;
  int64_t paid_ms = 0;        // when it was paid (ledger clock), 0 until paid
  std::string paid_by;        // "file:<sha256 hex>", "counter" or "kiosk:<terminal id>"
  std::string file_sha256;    // the last file that carried the bill, or empty

  bool paid() const { return !transfer_id.IsZero(); }
  friend bool operator==(const StoredBill&, const StoredBill&) = default;
};

// How far the import of one file (by its SHA-256) has come.
struct BillImportProgress {
  std::string file_sha256;  // 64 lower-case hex digits
  int64_t bills_total = 0;  // the file's good bills
  int64_t bills_done = 0;   // bills whose results are kept (whole chunks)
  int64_t chunks_done = 0;
  bool complete = false;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;  // 0 until complete

  friend bool operator==(const BillImportProgress&, const BillImportProgress&) = default;
};

// ---- Storage ---------------------------------------------------------------------------

// The bills' storage. Every method may fail with Kind::internal (the store's I/O); the other
// failures are named per method. In the SQLite store this shares the connection of the
// registry and the ledger, so Begin/Commit here is also their transaction
// (Ledger::JoinedTransaction). Not thread-safe.
class BillStore {
 public:
  virtual ~BillStore() = default;

  // A storage transaction (see above). Commit returns only when the transaction is durable.
  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual Status Rollback() = 0;
  // A number that changes whenever another connection (or process) commits to the storage,
  // and never for this store's own commits (SQLite's data_version). Read inside two
  // transactions, equal values mean that nobody else changed anything in between: what the
  // first read and this store did not change itself is still as read.
  virtual Result<int64_t> ChangesByOthers() = 0;

  // Mandates. Insert: Kind::refused "mandate_exists" for the same (card, utility, account).
  // Delete: Kind::not_found "mandate_not_found". List: ascending (card, utility, account),
  // at most kMandateListMax.
  virtual Status InsertMandate(const Mandate& mandate) = 0;
  virtual Status DeleteMandate(std::string_view card_no, std::string_view utility,
                               std::string_view account_no) = 0;
  virtual Result<bool> HasMandate(std::string_view card_no, std::string_view utility,
                                  std::string_view account_no) = 0;
  virtual Result<std::vector<Mandate>> ListMandates(const MandateFilter& filter) = 0;

  // Bills. Put inserts or replaces by (utility, bill_id). FindById: every utility's bill with
  // this id (ascending utility).
  virtual Result<std::optional<StoredBill>> FindBill(std::string_view utility,
                                                     std::string_view bill_id) = 0;
  virtual Result<std::vector<StoredBill>> FindBillsById(std::string_view bill_id) = 0;
  // Every utility's bills with first_bill_id <= bill id <= last_bill_id (byte order),
  // ascending (bill id, utility), at most `limit` of them: an import reads the earlier bills
  // of a whole chunk with one range instead of one lookup per bill.
  virtual Result<std::vector<StoredBill>> ListBillsByIdRange(std::string_view first_bill_id,
                                                             std::string_view last_bill_id,
                                                             size_t limit) = 0;
  virtual Status PutBill(const StoredBill& bill) = 0;

  // Imports. PutImport inserts or replaces by file_sha256. AppendImportResults keeps one
  // chunk's results (chunk numbers 0, 1, 2, … per file; Kind::internal "chunk_exists" when the
  // number is taken); ForEachImportResult calls `visit` with each kept chunk's results in chunk
  // order and stops at the first failing visit.
  virtual Result<std::optional<BillImportProgress>> FindImport(std::string_view file_sha256) = 0;
  virtual Status PutImport(const BillImportProgress& progress) = 0;
  virtual Status AppendImportResults(std::string_view file_sha256, int64_t chunk,
                                     std::span<const BillResult> results) = 0;
  virtual Status ForEachImportResult(
      std::string_view file_sha256,
      const std::function<Status(std::span<const BillResult>)>& visit) = 0;
};

// ---- The service -----------------------------------------------------------------------

struct BillImportOptions {
  // Import the good lines of a file with bad lines (the bad ones are reported and left out).
  bool skip_bad = false;
  size_t chunk_bills = kBillChunkBillsDefault;  // 1..kBillChunkBillsMax
  // The most good bills kept in memory from the checking pass for the paying pass; a file
  // with more is read a second time (tests lower it to take that path).
  int64_t kept_bills_max = kBillImportKeptBillsMax;
  // Called with each chunk's results, in file order, once per import run: first the chunks
  // kept by an earlier run (a repeated or resumed file), then the new ones after they commit.
  std::function<Status(std::span<const BillResult>)> on_results;
  // Called after each bill is decided (bills decided in this run, total good bills; while the
  // file is still being checked, the good bills found so far), e.g. for a progress bar. A
  // test hook may stop the process here (mid-chunk, transaction open).
  std::function<void(int64_t done, int64_t total)> on_progress;
  // Check a new file on a second thread while its first chunks are paid (see the top of this
  // file). false: check the whole file first, then pay (the way a resumed file always goes).
  bool check_while_paying = true;
  // Test hook: called on the checking thread after each good bill it finds (good bills so
  // far), e.g. to hold the check back until the first chunks have been paid.
  std::function<void(int64_t good)> on_checked;
};

struct BillImportReport {
  std::string file_sha256;
  int64_t lines = 0;               // bill lines in the file (good and bad)
  int64_t bills = 0;               // good lines
  std::vector<LineError> errors;   // bad lines, in file order
  bool applied = false;            // false: bad lines stopped it and nothing changed
  bool repeated = false;           // the file had been imported completely before: nothing moved now
  bool resumed = false;            // an interrupted earlier run was completed by this one
  int64_t bills_paid_now = 0;      // bills paid by this run
  int64_t paid_now_fen = 0;
  std::vector<UtilitySummary> summary;  // over all the file's results, ordered by utility
};

// What a counter or kiosk payment asks for.
struct BillPayRequest {
  std::string bill_id;
  std::optional<std::string> utility;   // needed only when several utilities use the bill id
  std::optional<std::string> card_no;   // the paying card; default: the bill's card
  std::optional<int64_t> amount_fen;    // when given, must be the bill's amount (a kiosk shows it)
  std::string channel = "counter";      // "counter" or "kiosk:<terminal id>", kept as paid_by
};

struct BillPayOutcome {
  StoredBill bill;                  // as kept after the payment
  BillStatus status = BillStatus::paid;  // paid (now) or already_paid (earlier)
  int64_t balance_after_fen = 0;    // the paying purse's balance after
};

class BillService {
 public:
  // Everything passed must outlive the service. `store`, `registry` and `ledger` must share
  // one storage transaction (BillStore::Begin).
  BillService(BillStore& store, RegistryStore& registry, Ledger& ledger, const Digester& digester,
              const Clock& clock);
  ~BillService();

  // Adds a mandate. Failures: "invalid_card_no", "invalid_account_no" (Kind::bad_input);
  // "card_not_found", "operator_not_found" (Kind::not_found); Kind::refused "not_a_utility",
  // "card_closed", "card_replaced", "mandate_exists".
  Result<Mandate> AddMandate(std::string_view card_no, std::string_view utility,
                             std::string_view account_no);
  // Removes one. Kind::not_found "mandate_not_found".
  Status RemoveMandate(std::string_view card_no, std::string_view utility,
                       std::string_view account_no);
  Result<std::vector<Mandate>> ListMandates(const MandateFilter& filter);

  // Imports a bill file. Every line is checked first (CheckBillFile's rules; utilities are the
  // registry's operators of kind utility). With bad lines and !skip_bad nothing changes and
  // the report lists them (applied false). Otherwise every good bill gets one BillResult
  // (passed to options.on_results) and the file's SHA-256 is kept with its results: the same
  // file again pays nothing twice and passes the kept results again (repeated); a file whose
  // earlier run was interrupted is completed (resumed). Per bill, in this order:
  // already_paid (paid before by another file, a counter or a kiosk), unknown_card,
  // no_mandate, card_blocked (blocked, replaced, closed or expired), insufficient_funds (the
  // purse's available balance is below the amount; bills never use a transit overdraft),
  // else paid. Failures: "invalid_bill_header", "bill_file_too_large" (Kind::bad_input);
  // Kind::usage "invalid_chunk_size"; on_results' failures; the stores'.
  Result<BillImportReport> ImportBills(std::string_view text, const BillImportOptions& options);

  // Pays one kept bill now (a counter's `bills pay`, a kiosk's online request), in one
  // transaction. A bill paid before gives status already_paid and moves nothing.
  // Failures: Kind::not_found "bill_not_found", "card_not_found"; Kind::refused
  // "ambiguous_bill_id" (several utilities use the id: name the utility), "amount_mismatch",
  // "no_mandate", "card_blocked", "card_replaced", "card_closed", "card_expired",
  // "insufficient_funds"; "invalid_card_no" (Kind::bad_input).
  Result<BillPayOutcome> PayBill(const BillPayRequest& request);

  // The kept bill(s) with this id (one per utility using it). Kind::not_found "bill_not_found".
  Result<std::vector<StoredBill>> ShowBill(std::string_view bill_id);

 private:
  struct ChunkState;
  struct CardMandates;
  struct ImportCache;
  Status RefreshImportCache();
  Result<bool> HasMandate(const Bill& bill, ChunkState* state);
  Status LoadEarlierBills(std::span<const Bill> bills, ChunkState* state);
  Result<std::optional<StoredBill>> FindEarlierBill(const Bill& bill, ChunkState* state);
  Result<std::vector<Operator>> Utilities();
  Status RunUnit(const std::function<Status()>& body);
  Status CheckFile(std::string_view text, const std::unordered_set<std::string>& known,
                   int64_t kept_bills_max, BillImportReport* report, std::vector<Bill>* kept);
  Status PayFile(std::string_view text, const std::unordered_set<std::string>& known,
                 const std::vector<Bill>& kept, const BillImportOptions& options,
                 BillImportProgress* progress, BillImportReport* report,
                 std::map<std::string, UtilitySummary>* totals);
  struct CheckedBlocks;
  static Status CheckIntoBlocks(std::string_view text, const std::unordered_set<std::string>& known,
                                const BillImportOptions& options, BillImportReport* report,
                                CheckedBlocks* blocks);
  Status ImportWhileChecking(std::string_view text, const std::unordered_set<std::string>& known,
                             const BillImportOptions& options, BillImportProgress* progress,
                             BillImportReport* report,
                             std::map<std::string, UtilitySummary>* totals);
  Status PayCheckedBlocks(CheckedBlocks* blocks, const BillImportOptions& options,
                          BillImportProgress* progress, BillImportReport* report,
                          std::vector<std::vector<BillResult>>* held);
  int64_t ProgressTotal(const BillImportProgress& progress) const;
  Status PayChunk(std::span<const Bill> chunk, const BillImportOptions& options,
                  BillImportProgress* progress, BillImportReport* report,
                  std::map<std::string, UtilitySummary>* totals);
  Status ProcessChunk(std::span<const Bill> bills, const std::string& sha,
                      BillImportProgress* progress, std::vector<BillResult>* results,
                      BillImportReport* report);
  Status DecideBill(const Bill& bill, const std::string& sha, ChunkState* state,
                    BillResult* result, std::optional<Transfer>* transfer);
  Result<StoredBill> FindPayableBill(const BillPayRequest& request);
  int64_t Today() const;

  BillStore& store_;
  RegistryStore& registry_;
  Ledger& ledger_;
  const Digester& digester_;
  const Clock& clock_;
  // The state of the import in progress: the registry's utilities by id, the progress
  // callback and how many bills this run has decided in chunks already committed.
  std::unordered_map<std::string, Operator> utilities_;
  std::function<void(int64_t, int64_t)> progress_;
  int64_t decided_ = 0;
  // While a file is checked and paid at once: the good bills found so far (else nullptr).
  const std::atomic<int64_t>* checked_so_far_ = nullptr;
  // Cards and mandates read by the earlier chunks of the import in progress.
  std::unique_ptr<ImportCache> cache_;
};

// "file:<sha>" paid_by of an import.
std::string BillPaidByFile(std::string_view file_sha256);

// The lower-case hex SHA-256 of a file's bytes.
std::string FileSha256Hex(const Digester& digester, std::string_view text);

}  // namespace citycard
