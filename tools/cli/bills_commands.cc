// `citycard mandate add|list|remove`, `citycard bills import|pay|show` and `citycard bench bills`
// (docs/bills.md, docs/benchmarks.md).
//
// Test hook (docs/bills.md "Atomicity"): when CITYCARD_TEST_BILLS_KILL_AFTER=N is set, an
// import kills its own process with SIGKILL right after deciding its N-th bill, in the middle
// of a chunk's open transaction, so that tests can prove a crash leaves whole chunks only; with
// CITYCARD_TEST_BILLS_CHECK_FIRST set, a new file is checked whole before any chunk is paid.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/account_plan.h"
#include "core/bills.h"
#include "core/card_number.h"
#include "core/money.h"
#include "core/time.h"
#include "crypto/digest.h"
#include "db/sqlite_bill_store.h"
#include "db/sqlite_ledger_store.h"
#include "db/sqlite_registry_store.h"
#include "db/wal_checkpointer.h"
#include "tools/cli/commands.h"
#include "tools/cli/environment.h"
#include "tools/cli/files.h"
#include "tools/cli/format.h"

namespace citycard::cli {

namespace {

// The largest bill file read (a 10-million-line file of ~100-byte lines fits).
constexpr size_t kBillFileBytesMax = size_t{2} << 30;
// How many bad lines an error message lists before it only counts the rest.
constexpr size_t kBadLinesListedMax = 100;
constexpr char kKillAfterVariable[] = "CITYCARD_TEST_BILLS_KILL_AFTER";
// Test hook: when set (to anything), a new file is checked whole before its first chunk is
// paid (BillImportOptions::check_while_paying = false). Checked while paid, the first chunks
// commit only when the checking thread has finished, which a loaded machine may delay past
// the kill; checked first, the chunk the kill lands in is known.
constexpr char kCheckFirstVariable[] = "CITYCARD_TEST_BILLS_CHECK_FIRST";
}  // namespace

// The page cache an import runs with (db/sqlite_bill_store.h SetCacheBytes).
extern const int64_t kBillImportCacheBytes = int64_t{256} << 20;

namespace {

struct BillsOptions {
  std::string card_no;
  std::string utility;
  std::string account_no;
  std::string file;
  std::string results;
  bool skip_bad = false;
  size_t chunk_bills = kBillChunkBillsDefault;
  std::string bill_id;
  std::string amount;
  // bench
  int64_t bench_bills = 1'000'000;
  int64_t bench_cards = 200'000;
  std::string bench_dir;
  bool bench_inline_checkpoints = false;
};

// The bill service over the command's installation.
struct BillsContext {
  std::unique_ptr<db::SqliteBillStore> store;
  std::unique_ptr<BillService> service;
};

Result<BillsContext> OpenBills(Environment& env) {
  auto store = db::SqliteBillStore::Open(env.database());
  if (!store.ok()) return store.status();
  BillsContext context;
  context.store = std::move(*store);
  context.service = std::make_unique<BillService>(*context.store, env.registry(), env.ledger(),
                                                  env.digester(), env.clock());
  return context;
}

// A one-line progress bar on stderr, drawn only when stderr is a terminal.
class ProgressBar {
 public:
  explicit ProgressBar(bool wanted) : enabled_(wanted && isatty(STDERR_FILENO)) {}
  void Update(int64_t done, int64_t total) {
    if (!enabled_ || total <= 0) return;
    int64_t permille = done * 1000 / total;
    if (permille == last_permille_) return;
    last_permille_ = permille;
    constexpr int kWidth = 40;
    int filled = static_cast<int>(permille * kWidth / 1000);
    std::fprintf(stderr, "\r[%s%s] %5.1f%% %lld/%lld bills", std::string(filled, '#').c_str(),
                 std::string(kWidth - filled, ' ').c_str(), permille / 10.0,
                 static_cast<long long>(done), static_cast<long long>(total));
    std::fflush(stderr);
  }
  void Finish() {
    if (enabled_ && last_permille_ >= 0) std::fputs("\n", stderr);
  }

 private:
  bool enabled_;
  int64_t last_permille_ = -1;
};

nlohmann::json MandateJson(const Mandate& m) {
  return {{"card_no", m.card_no}, {"utility", m.utility}, {"account_no", m.account_no},
          {"created", FormatLocalTime(m.created_s)}};
}

std::string MandatesTable(const std::vector<Mandate>& mandates) {
  Table table({"card", "utility", "account", "created"});
  for (const Mandate& m : mandates) {
    table.Add({m.card_no, m.utility, m.account_no, FormatLocalTime(m.created_s)});
  }
  return table.Render();
}

Result<CommandOutput> AddMandate(Environment& env, const BillsOptions& o) {
  auto bills = OpenBills(env);
  if (!bills.ok()) return bills.status();
  auto mandate = bills->service->AddMandate(o.card_no, o.utility, o.account_no);
  if (!mandate.ok()) return mandate.status();
  return CommandOutput{MandateJson(*mandate), "Added mandate\n" + MandatesTable({*mandate})};
}

Result<CommandOutput> ListMandates(Environment& env, const BillsOptions& o) {
  auto bills = OpenBills(env);
  if (!bills.ok()) return bills.status();
  MandateFilter filter;
  if (!o.card_no.empty()) filter.card_no = o.card_no;
  if (!o.utility.empty()) filter.utility = o.utility;
  auto mandates = bills->service->ListMandates(filter);
  if (!mandates.ok()) return mandates.status();
  nlohmann::json list = nlohmann::json::array();
  for (const Mandate& m : *mandates) list.push_back(MandateJson(m));
  return CommandOutput{{{"mandates", list}}, MandatesTable(*mandates)};
}

Result<CommandOutput> RemoveMandate(Environment& env, const BillsOptions& o) {
  auto bills = OpenBills(env);
  if (!bills.ok()) return bills.status();
  CITYCARD_RETURN_IF_ERROR(bills->service->RemoveMandate(o.card_no, o.utility, o.account_no));
  nlohmann::json json = {{"removed", {{"card_no", o.card_no}, {"utility", o.utility},
                                      {"account_no", o.account_no}}}};
  return CommandOutput{json, fmt::format("Removed the mandate of card {} for {} account {}\n",
                                         o.card_no, o.utility, o.account_no)};
}

// ---- Import ------------------------------------------------------------------------------

Status BadFile(const BillImportReport& report) {
  std::string message = fmt::format("{} bad line(s); nothing was imported (--skip-bad imports "
                                    "the good lines)",
                                    report.errors.size());
  for (size_t i = 0; i < report.errors.size() && i < kBadLinesListedMax; ++i) {
    const LineError& e = report.errors[i];
    message += fmt::format("\nline {}: {}: {}", e.line, e.reason_code, e.message);
  }
  if (report.errors.size() > kBadLinesListedMax) {
    message += fmt::format("\n… and {} more", report.errors.size() - kBadLinesListedMax);
  }
  return Status::BadInput("invalid_bill_file", message);
}

nlohmann::json SummaryJson(const UtilitySummary& s) {
  nlohmann::json json = {{"utility", s.utility}, {"bills", s.bills}};
  PutAmount(json, "billed", s.billed_fen);
  PutAmount(json, "paid", s.paid_fen);
  PutAmount(json, "unpaid", s.unpaid_fen);
  nlohmann::json statuses = nlohmann::json::object();
  for (size_t i = 1; i <= kBillStatusCount; ++i) {
    BillStatus status = static_cast<BillStatus>(i);
    statuses[std::string(BillStatusName(status))] = s.count(status);
  }
  json["statuses"] = statuses;
  return json;
}

std::string SummaryTable(const std::vector<UtilitySummary>& summary) {
  Table table({"utility", ">bills", ">billed", ">paid", ">unpaid", ">paid#", ">insufficient",
               ">blocked", ">unknown_card", ">no_mandate", ">already_paid"});
  for (const UtilitySummary& s : summary) {
    table.Add({s.utility, std::to_string(s.bills), FormatYuanSign(s.billed_fen),
               FormatYuanSign(s.paid_fen), FormatYuanSign(s.unpaid_fen),
               std::to_string(s.count(BillStatus::paid)),
               std::to_string(s.count(BillStatus::insufficient_funds)),
               std::to_string(s.count(BillStatus::card_blocked)),
               std::to_string(s.count(BillStatus::unknown_card)),
               std::to_string(s.count(BillStatus::no_mandate)),
               std::to_string(s.count(BillStatus::already_paid))});
  }
  return table.Render();
}

// Writes the results file beside its final path and moves it there only when the import
// succeeded, so that a results file is never half written.
class ResultsWriter {
 public:
  explicit ResultsWriter(std::string path) : path_(std::move(path)), temp_(path_ + ".part") {}
  ~ResultsWriter() {
    if (open_) {
      out_.close();
      std::error_code error;
      std::filesystem::remove(temp_, error);
    }
  }
  Status Open() {
    out_.open(temp_, std::ios::binary | std::ios::trunc);
    if (!out_) return Status::Internal("file_write_failed", "cannot write " + temp_);
    open_ = true;
    out_ << kBillResultsHeader << '\n';
    return Status::Ok();
  }
  Status Append(std::span<const BillResult> results) {
    std::string text = FormatBillResults(results);
    out_ << std::string_view(text).substr(text.find('\n') + 1);
    if (!out_) return Status::Internal("file_write_failed", "cannot write " + temp_);
    return Status::Ok();
  }
  Status Finish() {
    out_.close();
    open_ = false;
    if (!out_) return Status::Internal("file_write_failed", "cannot write " + temp_);
    std::error_code error;
    std::filesystem::rename(temp_, path_, error);
    if (error) return Status::Internal("file_write_failed", "cannot move results to " + path_);
    return Status::Ok();
  }

 private:
  std::string path_;
  std::string temp_;
  std::ofstream out_;
  bool open_ = false;
};

int64_t KillAfterFromEnvironment() {
  const char* value = std::getenv(kKillAfterVariable);
  return value && *value ? std::atoll(value) : 0;
}

bool CheckFirstFromEnvironment() {
  const char* value = std::getenv(kCheckFirstVariable);
  return value && *value;
}

CommandOutput ImportOutput(const BillImportReport& report, const std::string& results_path) {
  CommandOutput out;
  nlohmann::json utilities = nlohmann::json::array();
  int64_t paid_count = 0;
  for (const UtilitySummary& s : report.summary) {
    utilities.push_back(SummaryJson(s));
    paid_count += s.count(BillStatus::paid);
  }
  nlohmann::json errors = nlohmann::json::array();
  for (const LineError& e : report.errors) {
    errors.push_back({{"line", e.line}, {"code", e.reason_code}, {"message", e.message}});
  }
  out.json = {{"file_sha256", report.file_sha256}, {"lines", report.lines},
              {"bills", report.bills},             {"skipped", report.errors.size()},
              {"repeated", report.repeated},       {"resumed", report.resumed},
              {"paid", paid_count},                {"paid_now", report.bills_paid_now},
              {"utilities", utilities},            {"errors", errors}};
  PutAmount(out.json, "paid_now_amount", report.paid_now_fen);
  if (!results_path.empty()) out.json["results_file"] = results_path;
  out.text = fmt::format("{} bill(s) in {} line(s); {} paid now ({}){}{}\n", report.bills,
                         report.lines, report.bills_paid_now, FormatYuanSign(report.paid_now_fen),
                         report.repeated ? "; this file was imported before: nothing moved now"
                                         : "",
                         report.resumed ? "; an interrupted earlier run was completed" : "");
  for (const LineError& e : report.errors) {
    out.text += fmt::format("skipped line {}: {}: {}\n", e.line, e.reason_code, e.message);
  }
  out.text += SummaryTable(report.summary);
  if (!results_path.empty()) out.text += "Results written to " + results_path + "\n";
  return out;
}

Result<CommandOutput> Import(Environment& env, const BillsOptions& o) {
  auto text = ReadTextFile(o.file, kBillFileBytesMax);
  if (!text.ok()) return text.status();
  auto bills = OpenBills(env);
  if (!bills.ok()) return bills.status();
  CITYCARD_RETURN_IF_ERROR(bills->store->SetCacheBytes(kBillImportCacheBytes));
  // The import's commits copy nothing back into the database file themselves: a thread of
  // its own does (db/wal_checkpointer.h), while the next chunk is paid.
  auto checkpointer = db::WalCheckpointer::Start(env.database());
  if (!checkpointer.ok()) return checkpointer.status();
  std::unique_ptr<ResultsWriter> writer;
  if (!o.results.empty()) {
    writer = std::make_unique<ResultsWriter>(o.results);
    CITYCARD_RETURN_IF_ERROR(writer->Open());
  }
  ProgressBar bar(!env.options().quiet);
  const int64_t kill_after = KillAfterFromEnvironment();
  BillImportOptions options;
  options.skip_bad = o.skip_bad;
  options.chunk_bills = o.chunk_bills;
  if (CheckFirstFromEnvironment()) options.check_while_paying = false;
  options.on_results = [&](std::span<const BillResult> results) {
    return writer ? writer->Append(results) : Status::Ok();
  };
  options.on_progress = [&](int64_t done, int64_t total) {
    if (kill_after > 0 && done >= kill_after) std::raise(SIGKILL);
    bar.Update(done, total);
  };
  auto report = bills->service->ImportBills(*text, options);
  bar.Finish();
  if (!report.ok()) return report.status();
  if (!report->applied) return BadFile(*report);
  if (writer) CITYCARD_RETURN_IF_ERROR(writer->Finish());
  return ImportOutput(*report, o.results);
}

// ---- Pay and show ------------------------------------------------------------------------

nlohmann::json StoredBillJson(const StoredBill& b) {
  nlohmann::json json = {{"bill_id", b.bill_id},       {"utility", b.utility},
                         {"account_no", b.account_no}, {"card_no", b.card_no},
                         {"period", b.period},         {"due_date", FormatDay(b.due_day)},
                         {"status", BillStatusName(b.status)},
                         {"transfer_id", b.paid() ? b.transfer_id.ToHex() : ""},
                         {"paid_by", b.paid_by}};
  PutAmount(json, "amount", b.amount_fen);
  PutAmount(json, "amount_paid", b.amount_paid_fen);
  if (b.paid()) json["paid_at"] = FormatLocalTime(b.paid_ms / 1000);
  return json;
}

std::string StoredBillText(const StoredBill& b) {
  std::vector<std::pair<std::string, std::string>> pairs = {
      {"Bill", b.bill_id},          {"Utility", b.utility},
      {"Account", b.account_no},    {"Card", b.card_no},
      {"Period", b.period},         {"Amount", FormatYuanSign(b.amount_fen)},
      {"Due", FormatDay(b.due_day)}, {"Status", std::string(BillStatusName(b.status))}};
  if (b.paid()) {
    pairs.push_back({"Paid", FormatYuanSign(b.amount_paid_fen) + " on " +
                                 FormatLocalTime(b.paid_ms / 1000) + " (" + b.paid_by + ")"});
    pairs.push_back({"Transfer", b.transfer_id.ToHex()});
  }
  return KeyValues(pairs);
}

Result<CommandOutput> Pay(Environment& env, const BillsOptions& o) {
  BillPayRequest request;
  request.bill_id = o.bill_id;
  if (!o.utility.empty()) request.utility = o.utility;
  if (!o.card_no.empty()) request.card_no = o.card_no;
  if (!o.amount.empty()) {
    auto amount = ParseYuan(o.amount);
    if (!amount.ok()) return amount.status();
    request.amount_fen = *amount;
  }
  request.channel = "counter";
  auto bills = OpenBills(env);
  if (!bills.ok()) return bills.status();
  auto outcome = bills->service->PayBill(request);
  if (!outcome.ok()) return outcome.status();
  nlohmann::json json = StoredBillJson(outcome->bill);
  json["status"] = BillStatusName(outcome->status);
  PutAmount(json, "balance_after", outcome->balance_after_fen);
  std::string text = outcome->status == BillStatus::paid
                         ? fmt::format("Paid bill {} ({})\n", outcome->bill.bill_id,
                                       FormatYuanSign(outcome->bill.amount_paid_fen))
                         : fmt::format("Bill {} was paid before; nothing moved now\n",
                                       outcome->bill.bill_id);
  return CommandOutput{json, text + StoredBillText(outcome->bill)};
}

Result<CommandOutput> Show(Environment& env, const BillsOptions& o) {
  auto bills = OpenBills(env);
  if (!bills.ok()) return bills.status();
  auto found = bills->service->ShowBill(o.bill_id);
  if (!found.ok()) return found.status();
  nlohmann::json list = nlohmann::json::array();
  std::string text;
  for (const StoredBill& b : *found) {
    list.push_back(StoredBillJson(b));
    text += StoredBillText(b) + "\n";
  }
  return CommandOutput{{{"bills", list}}, text};
}

}  // namespace

// Defined in tools/cli/bills_bench.cc.
Result<CommandOutput> RunBillsBench(const GlobalOptions& global, int64_t bills, int64_t cards,
                                    const std::string& dir, bool inline_checkpoints,
                                    size_t chunk_bills);

void RegisterBillsCommands(CLI::App& app, AppContext& context) {
  auto o = std::make_shared<BillsOptions>();

  CLI::App* mandate = app.add_subcommand("mandate", "cards' mandates to pay utility bills");
  mandate->require_subcommand(1);
  CLI::App* add = mandate->add_subcommand("add", "let a card pay the bills of a utility account");
  add->add_option("CARD_NO", o->card_no, "the paying card")->required();
  add->add_option("UTILITY", o->utility, "the utility's operator id")->required();
  add->add_option("ACCOUNT_NO", o->account_no, "the account with the utility")->required();
  add->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return AddMandate(env, *o); });
  });
  CLI::App* list = mandate->add_subcommand("list", "list mandates");
  list->add_option("--card", o->card_no, "only this card's");
  list->add_option("--utility", o->utility, "only this utility's");
  list->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return ListMandates(env, *o); });
  });
  CLI::App* remove = mandate->add_subcommand("remove", "remove a mandate");
  remove->add_option("CARD_NO", o->card_no, "the paying card")->required();
  remove->add_option("UTILITY", o->utility, "the utility's operator id")->required();
  remove->add_option("ACCOUNT_NO", o->account_no, "the account with the utility")->required();
  remove->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return RemoveMandate(env, *o); });
  });

  CLI::App* bills = app.add_subcommand("bills", "utility bill files and payments");
  bills->require_subcommand(1);
  CLI::App* import = bills->add_subcommand("import", "pay a utility's bill file (docs/bills.md)");
  import->add_option("FILE", o->file, "the bill file (CSV)")->required();
  import->add_option("--results", o->results, "write the results file here");
  import->add_flag("--skip-bad", o->skip_bad, "import the good lines when some are bad");
  import->add_option("--chunk-bills", o->chunk_bills, "bills per transaction")->group("");
  import->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return Import(env, *o); });
  });
  CLI::App* pay = bills->add_subcommand("pay", "pay an unpaid bill now (at a counter)");
  pay->add_option("BILL_ID", o->bill_id, "the bill")->required();
  pay->add_option("--utility", o->utility, "the utility, when several use the bill id");
  pay->add_option("--card", o->card_no, "pay from this card (default: the bill's)");
  pay->add_option("--amount", o->amount, "the amount shown to the payer, yuan (checked)");
  pay->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return Pay(env, *o); });
  });
  CLI::App* show = bills->add_subcommand("show", "show a bill as kept");
  show->add_option("BILL_ID", o->bill_id, "the bill")->required();
  show->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return Show(env, *o); });
  });
  CLI::App* bench = CommandGroup(app, "bench", "benchmarks")
                        ->add_subcommand("bills", "import a generated bill file into a new "
                                                  "scratch database (docs/benchmarks.md)");
  bench->add_option("--bills", o->bench_bills, "bills in the file (default 1000000)");
  bench->add_option("--cards", o->bench_cards, "cards paying them (default 200000)");
  bench->add_option("--dir", o->bench_dir, "scratch directory (default: a new one under /tmp)");
  bench->add_option("--chunk-bills", o->chunk_bills, "bills per transaction (default 50000)");
  bench->add_flag("--inline-checkpoints", o->bench_inline_checkpoints,
                  "checkpoint in the importing thread, as SQLite does by itself (to compare)");
  bench->callback([&context, o] {
    RunCommand(context, [&] {
      return RunBillsBench(context.options, o->bench_bills, o->bench_cards, o->bench_dir,
                           o->bench_inline_checkpoints, o->chunk_bills);
    });
  });
}

}  // namespace citycard::cli
