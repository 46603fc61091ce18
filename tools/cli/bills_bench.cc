// `citycard bench bills`: the bill-import benchmark of docs/benchmarks.md. It builds a scratch
// installation (its own database in a new directory; no key file is needed), with five
// utilities and `cards` cards that each hold ¥1,000 and a mandate per utility, writes a bill
// file of `bills` bills (one per card and utility in turn, amounts from ¥10.00 to ¥209.99, one
// bill in 50 for a card that does not exist, one in 40 for an account without a mandate), then
// times importing it with the same service `bills import` uses (both passes, SHA-256, results
// formatted as the results file) and importing it again (the repeated file).
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <sys/resource.h>
#include <unistd.h>

#include "core/account_plan.h"
#include "core/bills.h"
#include "core/card_number.h"
#include "core/time.h"
#include "core/terminal_office.h"
#include "crypto/digest.h"
#include "db/sqlite_bill_store.h"
#include "db/sqlite_ledger_store.h"
#include "db/sqlite_registry_store.h"
#include "db/wal_checkpointer.h"
#include "tools/cli/app.h"

namespace citycard::cli {

extern const int64_t kBillImportCacheBytes;  // tools/cli/bills_commands.cc

namespace {

constexpr int64_t kBenchBillsMax = kBillFileLinesMax;
constexpr int64_t kBenchCardsMax = 10'000'000;
// Cards set up per storage transaction.
constexpr int64_t kSetupCardsPerCommit = 20'000;
constexpr int64_t kBenchPurseFen = 100'000;
const char* const kBenchUtilities[] = {"water", "power", "gas", "cabletv", "telecom"};
constexpr int64_t kBenchUtilityCount = 5;

class NoTerminalKeys final : public TerminalKeyMaker {
 public:
  Result<NewTerminalKey> Make() const override {
    return Status::Internal("no_keys", "the benchmark registers no terminals");
  }
};

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The user and system CPU time of the process so far: the import runs on this thread alone,
// so the difference around it is its CPU time, which a loaded machine does not inflate the
// way it inflates the wall time.
double ProcessCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::string BenchCardNo(int64_t i) { return MakeCardNumber(static_cast<uint64_t>(i) + 1); }

Status AddCards(RegistryStore& registry, Ledger& ledger, BillStore& bills,
                const Digester& digester, int64_t from, int64_t to, int64_t now_s) {
  std::vector<Account> purses;
  std::vector<Transfer> topups;
  for (int64_t i = from; i < to; ++i) {
    std::string card_no = BenchCardNo(i);
    Holder holder;
    holder.number = i + 1;
    holder.id_hash = fmt::format("bench-holder-{}", i);
    holder.id_masked = "3212**********1234";
    holder.name = "测试用户";
    CITYCARD_RETURN_IF_ERROR(registry.InsertHolder(holder));
    Card card;
    card.card_no = card_no;
    card.holder_number = i + 1;
    card.holder_name = "测试用户";
    card.holder_id_masked = "3212**********1234";
    card.expires_day = ClearingDay(now_s) + 3650;
    card.purse_account_id = AccountIdFor(AccountKind::card_purse, CardNumberToInt(card_no));
    card.issued_s = now_s;
    CITYCARD_RETURN_IF_ERROR(registry.InsertCard(card));
    Account purse;
    purse.id = card.purse_account_id;
    purse.kind = AccountKind::card_purse;
    purse.owner_ref = CardNumberToInt(card_no);
    purse.flags = kAccountEnforceFloor;
    purses.push_back(purse);
    Transfer topup;
    topup.id = DeriveTransferId(digester, "citycard.bench.topup", card_no);
    topup.debit_account_id = SystemAccountId(AccountKind::topup_clearing);
    topup.credit_account_id = purse.id;
    topup.amount_fen = kBenchPurseFen;
    topup.code = static_cast<uint16_t>(TransferCode::topup);
    topups.push_back(topup);
    for (int64_t u = 0; u < kBenchUtilityCount; ++u) {
      Mandate mandate{card_no, kBenchUtilities[u], fmt::format("{}-账户-{}", kBenchUtilities[u], i),
                      now_s};
      CITYCARD_RETURN_IF_ERROR(bills.InsertMandate(mandate));
    }
  }
  CITYCARD_RETURN_IF_ERROR(ledger.CreateAccounts(purses));
  auto outcomes = ledger.Apply(topups);
  return outcomes.status();
}

// Cards [from, to) with their purses, top-ups and mandates, in one transaction.
Status SetupCards(RegistryStore& registry, Ledger& ledger, BillStore& bills,
                  const Digester& digester, int64_t from, int64_t to, int64_t now_s) {
  CITYCARD_RETURN_IF_ERROR(bills.Begin());
  Ledger::JoinedTransaction joined(ledger);
  Status status = AddCards(registry, ledger, bills, digester, from, to, now_s);
  if (status.ok()) status = bills.Commit();
  if (!status.ok()) {
    (void)bills.Rollback();
    return status;
  }
  joined.Committed();
  return Status::Ok();
}

std::string BenchFile(int64_t bills, int64_t cards) {
  std::string text(kBillFileHeader);
  text += '\n';
  text.reserve(static_cast<size_t>(bills) * 90);
  for (int64_t n = 0; n < bills; ++n) {
    int64_t card = (n / kBenchUtilityCount) % cards;
    int64_t u = n % kBenchUtilityCount;
    std::string card_no = n % 50 == 49 ? MakeCardNumber(static_cast<uint64_t>(cards) + 1 + n)
                                       : BenchCardNo(card);
    std::string account = n % 40 == 39 ? "无此账户" : fmt::format("{}-账户-{}", kBenchUtilities[u], card);
    int64_t amount_fen = 1000 + (n * 7919) % 20000;
    text += fmt::format("B{:09d},{},\"{}\",{},2026-10,{}.{:02d},2026-11-15\n", n, kBenchUtilities[u],
                        account, card_no, amount_fen / 100, amount_fen % 100);
  }
  return text;
}

}  // namespace

Result<CommandOutput> RunBillsBench(const GlobalOptions& global, int64_t bills, int64_t cards,
                                    const std::string& dir_option, bool inline_checkpoints,
                                    size_t chunk_bills) {
  (void)global;
  if (bills < 1 || bills > kBenchBillsMax || cards < 1 || cards > kBenchCardsMax) {
    return Status::Usage("invalid_bench_size", "--bills 1..10000000 and --cards 1..10000000");
  }
  std::error_code error;
  std::string dir = dir_option;
  if (dir.empty()) {
    dir = fmt::format("/tmp/citycard-bills-bench-{}", ::getpid());
  }
  std::filesystem::create_directories(dir, error);
  std::string db_path = dir + "/bench.db";
  if (std::filesystem::exists(db_path, error)) {
    return Status::Refused("database_exists", "the benchmark needs a new database; remove " + db_path);
  }
  auto database = db::Database::Open(db_path, true);
  if (!database.ok()) return database.status();
  auto ledger_store = db::SqliteLedgerStore::Open(**database);
  if (!ledger_store.ok()) return ledger_store.status();
  auto registry = db::SqliteRegistryStore::Open(**database);
  if (!registry.ok()) return registry.status();
  auto bill_store = db::SqliteBillStore::Open(**database);
  if (!bill_store.ok()) return bill_store.status();
  crypto::Sha256Digester digester;
  SystemClock clock;
  Ledger ledger(**ledger_store, clock, digester);
  NoTerminalKeys keys;
  TerminalOffice office(**registry, ledger, keys, clock);

  auto setup_start = std::chrono::steady_clock::now();
  Account clearing;
  clearing.id = SystemAccountId(AccountKind::topup_clearing);
  clearing.kind = AccountKind::topup_clearing;
  CITYCARD_RETURN_IF_ERROR(ledger.CreateAccounts(std::span<const Account>(&clearing, 1)));
  for (const char* utility : kBenchUtilities) {
    auto op = office.AddOperator({utility, std::string("公用事业 ") + utility, OperatorKind::utility, 0});
    if (!op.ok()) return op.status();
  }
  for (int64_t from = 0; from < cards; from += kSetupCardsPerCommit) {
    CITYCARD_RETURN_IF_ERROR(SetupCards(**registry, ledger, **bill_store, digester, from,
                                        std::min(cards, from + kSetupCardsPerCommit),
                                        clock.NowSeconds()));
  }
  std::string text = BenchFile(bills, cards);
  std::string file_path = dir + "/bills.csv";
  {
    std::ofstream out(file_path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  double setup_s = SecondsSince(setup_start);

  CITYCARD_RETURN_IF_ERROR((*bill_store)->SetCacheBytes(kBillImportCacheBytes));
  // As `bills import` does, unless asked to compare with SQLite's own checkpoints.
  std::unique_ptr<db::WalCheckpointer> checkpointer;
  if (!inline_checkpoints) {
    auto started = db::WalCheckpointer::Start(**database);
    if (!started.ok()) return started.status();
    checkpointer = std::move(started).value();
  }
  BillService service(**bill_store, **registry, ledger, digester, clock);
  size_t results_bytes = 0;
  BillImportOptions options;
  options.chunk_bills = chunk_bills;
  options.on_results = [&](std::span<const BillResult> results) {
    results_bytes += FormatBillResults(results).size();
    return Status::Ok();
  };
  auto start = std::chrono::steady_clock::now();
  double cpu_start_s = ProcessCpuSeconds();
  auto report = service.ImportBills(text, options);
  if (!report.ok()) return report.status();
  double import_s = SecondsSince(start);
  double import_cpu_s = ProcessCpuSeconds() - cpu_start_s;
  start = std::chrono::steady_clock::now();
  cpu_start_s = ProcessCpuSeconds();
  auto again = service.ImportBills(text, options);
  if (!again.ok()) return again.status();
  double repeat_s = SecondsSince(start);
  double repeat_cpu_s = ProcessCpuSeconds() - cpu_start_s;
  const int64_t checkpoints = checkpointer ? checkpointer->checkpoints() : 0;
  if (checkpointer) CITYCARD_RETURN_IF_ERROR(checkpointer->first_error());

  CommandOutput out;
  out.json = {{"bills", bills},
              {"cards", cards},
              {"file_bytes", text.size()},
              {"setup_seconds", setup_s},
              {"seconds", import_s},
              {"cpu_seconds", import_cpu_s},
              {"bills_per_s", static_cast<double>(bills) / import_s},
              {"paid", report->bills_paid_now},
              {"repeat_seconds", repeat_s},
              {"repeat_cpu_seconds", repeat_cpu_s},
              {"repeat_paid", again->bills_paid_now},
              {"results_bytes", results_bytes},
              {"checkpoints", inline_checkpoints ? "inline" : "own_thread"},
              {"chunk_bills", chunk_bills},
              {"background_checkpoints", checkpoints},
              {"dir", dir}};
  out.text = fmt::format(
      "bills import of {} bills ({} paid) for {} cards: {:.2f} s, {:.2f} s CPU ({:.0f} bills/s); "
      "the same file again: {:.2f} s\nsetup {:.1f} s; file and database in {}\n",
      bills, report->bills_paid_now, cards, import_s, import_cpu_s,
      static_cast<double>(bills) / import_s, repeat_s, setup_s, dir);
  return out;
}

}  // namespace citycard::cli
