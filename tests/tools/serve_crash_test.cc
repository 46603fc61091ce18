// Crash tests against the real program (CITYCARD_BIN), each process killed with SIGKILL at
// random moments and started again on the same database (docs/ingest.md "Crash and abuse
// tests"):
// - `serve` while `sim run --acked-log` uploads to it: afterwards every record the simulator
//   saw acknowledged is booked exactly once, with the very bytes it sent, `audit verify` is
//   clean and a re-upload of everything acknowledged (`sim reupload`) yields only duplicate;
// - `bills import` of a large file: after the re-import every bill is paid exactly once;
// - `settle`: the re-run gives the same report as an undisturbed run on a copy of the
//   database, and the ledger holds exactly the copy's transfers.
//
// Rounds: CITYCARD_CRASH_ROUNDS=N sets the serve rounds (default 20) and the bills and settle
// rounds (N / 4, at least 5); CITYCARD_CRASH_SEED=S repeats a run (the seed is printed when a
// check fails). The hidden [.slow] variant runs 200 serve rounds.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core/account_plan.h"
#include "core/ingest.h"
#include "core/time.h"
#include "db/database.h"
#include "db/sqlite_tap_store.h"
#include "tests/support/cli_runner_support.h"
#include "tools/cli/environment.h"

namespace citycard {
namespace {

using testing::CliResult;
using testing::CliSandbox;
using Env = std::map<std::string, std::string>;
using SteadyClock = std::chrono::steady_clock;

constexpr char kRoundsVariable[] = "CITYCARD_CRASH_ROUNDS";
constexpr char kSeedVariable[] = "CITYCARD_CRASH_SEED";
constexpr int kServeRoundsDefault = 20;
constexpr int kServeRoundsSlow = 200;
constexpr int kOtherRoundsMin = 5;
// How long a started server may take to say which port it listens on.
constexpr int kServeStartMsMax = 15'000;

int ServeRounds(int fallback) {
  const char* value = std::getenv(kRoundsVariable);
  int rounds = value && *value ? std::atoi(value) : 0;
  return rounds > 0 ? rounds : fallback;
}

int OtherRounds() { return std::max(kOtherRoundsMin, ServeRounds(kServeRoundsDefault) / 4); }

uint32_t Seed() {
  const char* value = std::getenv(kSeedVariable);
  if (value && *value) return static_cast<uint32_t>(std::strtoul(value, nullptr, 10));
  return std::random_device{}();
}

CliResult Require(CliResult result, int exit_code) {
  INFO(result.out << result.err);
  REQUIRE(result.exit_code == exit_code);
  return result;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A `citycard` process running in the sandbox's directory, its stdout and stderr going to
// files named after it; killed and reaped by the destructor when still running. Forks from
// this (single-threaded) test process.
class Child {
 public:
  Child(const CliSandbox& box, const std::vector<std::string>& args, const Env& env,
        const std::string& name)
      : out_path_(box.Path(name + ".out")), err_path_(box.Path(name + ".err")) {
    Env vars = {{"CITYCARD_DB", box.db_path()}, {"CITYCARD_KEYS", box.keys_path()}};
    for (const auto& [key, value] : env) vars[key] = value;
    std::string dir = std::filesystem::path(box.db_path()).parent_path().string();
    // The files of an earlier process of the same name must not be read as this one's.
    std::filesystem::remove(out_path_);
    std::filesystem::remove(err_path_);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int in = ::open("/dev/null", O_RDONLY);
      int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
      if (::chdir(dir.c_str()) != 0) ::_exit(126);
      for (const auto& [key, value] : vars) ::setenv(key.c_str(), value.c_str(), 1);
      std::vector<std::string> copies = {CITYCARD_BIN};
      copies.insert(copies.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (std::string& arg : copies) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void Signal(int signal) {
    if (!reaped_) ::kill(pid_, signal);
  }
  // Waits for the end; the exit code, or 128 + the signal that ended it.
  int Wait() {
    if (!reaped_) {
      int status = 0;
      REQUIRE(::waitpid(pid_, &status, 0) == pid_);
      reaped_ = true;
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return code_;
  }
  bool Running() {
    if (reaped_) return false;
    int status = 0;
    pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done != pid_) return true;
    reaped_ = true;
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  std::string Out() const { return ReadFile(out_path_); }
  std::string Err() const { return ReadFile(err_path_); }

 private:
  std::string out_path_;
  std::string err_path_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int code_ = -1;
};

// `citycard serve --listen 127.0.0.1:0` and the port it printed.
struct Serve {
  Serve(const CliSandbox& box, const Env& env, const std::string& name,
        const std::vector<std::string>& extra = {})
      : child(box, ServeArgs(extra), env, name) {
    static const std::regex kListening("listening on 127\\.0\\.0\\.1:([0-9]+)");
    auto deadline = SteadyClock::now() + std::chrono::milliseconds(kServeStartMsMax);
    while (SteadyClock::now() < deadline) {
      std::smatch match;
      std::string err = child.Err();
      if (std::regex_search(err, match, kListening)) {
        port = static_cast<uint16_t>(std::stoul(match[1].str()));
        return;
      }
      if (!child.Running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    INFO("serve: " << child.Err());
    FAIL("serve did not start listening");
  }
  static std::vector<std::string> ServeArgs(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"--json", "serve", "--listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  std::string Address() const { return fmt::format("127.0.0.1:{}", port); }
  Child child;
  uint16_t port = 0;
};

std::unique_ptr<cli::Environment> OpenEnvironment(const CliSandbox& box) {
  cli::GlobalOptions options;
  options.db_path = box.db_path();
  options.keys_path = box.keys_path();
  auto env = cli::Environment::Open(options);
  INFO(env.status().ToString());
  REQUIRE(env.ok());
  return std::move(*env);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// ---- serve ----------------------------------------------------------------------------

// The clock every process of the serve test runs on: one clearing day.
const Env kServeNow = {{"CITYCARD_NOW", "2026-11-02 10:00:00"}};
// Enough money for every round: a round books at most kSimTapsPerRound taps of at most ¥4.
constexpr int kServeCardsMin = 200;
constexpr int kServeCardsPerRound = 8;
constexpr int kServeTerminals = 4;
constexpr int kSimTapsPerRound = 1500;
constexpr int kKillAfterMsMax = 700;

// One line of `sim run --acked-records`: terminal_id,terminal_counter,result,record_hex.
struct AckedRecord {
  std::string terminal_id;
  uint32_t terminal_counter = 0;
  std::string result;
  Bytes encoded;
};

std::vector<AckedRecord> ReadAckedRecords(const std::string& path) {
  std::vector<AckedRecord> records;
  for (const std::string& line : Lines(ReadFile(path))) {
    INFO(line);
    size_t a = line.find(',');
    size_t b = line.find(',', a + 1);
    size_t c = line.find(',', b + 1);
    REQUIRE(c != std::string::npos);
    AckedRecord r;
    r.terminal_id = line.substr(0, a);
    r.terminal_counter = static_cast<uint32_t>(std::stoul(line.substr(a + 1, b - a - 1)));
    r.result = line.substr(b + 1, c - b - 1);
    REQUIRE(FromHex(line.substr(c + 1), &r.encoded));
    records.push_back(std::move(r));
  }
  return records;
}

// Every acknowledged record from index `from` on is booked once, as sent, with its one
// transfer. The acked log (terminal_id,terminal_counter,result) must say the same as the
// records file, and no terminal counter may be acknowledged twice.
void CheckAckedBooked(const CliSandbox& box, const std::vector<AckedRecord>& acked,
                      size_t from = 0) {
  std::vector<std::string> log = Lines(box.Read("acked.csv"));
  REQUIRE(log.size() == acked.size());
  auto env = OpenEnvironment(box);
  auto taps = db::SqliteTapStore::Open(env->database());
  REQUIRE(taps.ok());
  std::set<std::pair<std::string, uint32_t>> seen;
  for (size_t i = 0; i < acked.size(); ++i) {
    const AckedRecord& a = acked[i];
    INFO(a.terminal_id << " TTC " << a.terminal_counter << " " << a.result);
    REQUIRE(log[i] == fmt::format("{},{},{}", a.terminal_id, a.terminal_counter, a.result));
    // A terminal counter is acknowledged once: a reader never reuses one.
    REQUIRE(seen.insert({a.terminal_id, a.terminal_counter}).second);
    if (i < from) continue;
    REQUIRE((a.result == "accepted" || a.result == "accepted_late" ||
             a.result == "accepted_with_alert"));
    auto stored = (*taps)->FindByTerminalCounter(a.terminal_id, a.terminal_counter);
    REQUIRE(stored.ok());
    REQUIRE(stored->has_value());
    REQUIRE(IsBooked((*stored)->outcome));
    REQUIRE(EncodeTapRecord((*stored)->record) == a.encoded);
    if ((*stored)->record.amount_fen > 0) {
      auto transfer = env->ledger().LookupTransfer(
          TapTransferId(env->digester(), a.terminal_id, a.terminal_counter));
      REQUIRE(transfer.ok());
      REQUIRE(transfer->has_value());
      REQUIRE((*transfer)->amount_fen == (*stored)->record.amount_fen);
    }
  }
}

// Every booked tap of the day is there once and moved its amount once: the operator's payable
// holds exactly the sum of the booked amounts. Returns how many taps are booked.
int64_t CheckDayBooksOnce(const CliSandbox& box, int64_t day, const std::string& operator_id) {
  auto env = OpenEnvironment(box);
  auto taps = db::SqliteTapStore::Open(env->database());
  REQUIRE(taps.ok());
  std::set<std::pair<std::string, uint32_t>> by_terminal;
  std::set<std::pair<uint64_t, uint32_t>> by_card;
  int64_t paid_fen = 0;
  int64_t count = 0;
  int64_t after = 0;
  for (;;) {
    std::vector<StoredTap> page;
    REQUIRE((*taps)->ScanDayTaps(day, after, 4096, &page).ok());
    for (const StoredTap& t : page) {
      REQUIRE(by_terminal.insert({t.record.terminal_id, t.record.terminal_counter}).second);
      REQUIRE(by_card.insert({t.record.card_no, t.record.card_counter}).second);
      REQUIRE(IsBooked(t.outcome));
      paid_fen += t.record.amount_fen;
      ++count;
      after = t.seq;
    }
    if (page.size() < 4096) break;
  }
  auto op = env->registry().FindOperator(operator_id);
  REQUIRE(op.ok());
  REQUIRE(op->has_value());
  auto payable = env->ledger().LookupAccount((*op)->payable_account_id);
  REQUIRE(payable.ok());
  REQUIRE(payable->balance_fen() == paid_fen);
  return count;
}

void RequireAuditClean(const CliSandbox& box, const Env& env) {
  auto audit = Require(box.Json({"audit", "verify"}, env), 0);
  REQUIRE(audit.json()["ok"] == true);
  REQUIRE(audit.json()["problems"].empty());
}

void RunServeCrash(int rounds) {
  const uint32_t seed = Seed();
  INFO("seed " << seed << " (" << kSeedVariable << "), rounds " << rounds);
  std::mt19937 rng(seed);
  CliSandbox box(CITYCARD_BIN);
  Require(box.Run({"init"}, kServeNow), 0);
  const int cards = std::max(kServeCardsMin, kServeCardsPerRound * (rounds + 1));
  Require(box.Json({"sim", "provision", "--terminals", std::to_string(kServeTerminals), "--cards",
                    std::to_string(cards), "--balance", "900"},
                   kServeNow),
          0);
  const std::vector<std::string> sim_common = {"--acked-log", box.Path("acked.csv"),
                                               "--acked-records", box.Path("acked_records.csv"),
                                               "--batch", "16"};
  int sims_finished = 0;
  size_t acked_before = 0;
  auto started = SteadyClock::now();
  int killed_starting = 0;
  int killed_stopping = 0;
  for (int round = 0; round < rounds; ++round) {
    INFO("round " << round);
    if (round % 5 == 3) {
      // Killed while it starts: opening the database, recovering the log, binding.
      Child starting(box, {"serve", "--listen", "127.0.0.1:0"}, kServeNow, "serve-starting");
      std::this_thread::sleep_for(std::chrono::milliseconds(
          std::uniform_int_distribution<int>(0, 40)(rng)));
      starting.Signal(SIGKILL);
      int code = starting.Wait();
      INFO(starting.Err());
      REQUIRE(code == 128 + SIGKILL);
      ++killed_starting;
    }
    // Group commits of different sizes, one or two I/O threads, and the recent (card, CTC)
    // keys merged every few groups, so that some kills land in a merge.
    static const char* const kGroupRecords[] = {"1", "16", "100", "16384"};
    static const char* const kCardKeysMergeAt[] = {"1", "50", "400"};
    Serve serve(box, kServeNow, "serve",
                {"--io-threads", round % 2 == 0 ? "1" : "2", "--group-records",
                 kGroupRecords[rng() % 4], "--card-keys-merge-at", kCardKeysMergeAt[rng() % 3]});
    std::vector<std::string> args = {"--json", "sim", "run", "--server", serve.Address(),
                                     "--taps", std::to_string(kSimTapsPerRound), "--seed",
                                     std::to_string(rng())};
    args.insert(args.end(), sim_common.begin(), sim_common.end());
    Child sim(box, args, kServeNow, "sim");
    int kill_after_ms = std::uniform_int_distribution<int>(0, kKillAfterMsMax)(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
    bool stopping = round % 5 == 4;
    if (stopping) {
      // Killed in the middle of a clean stop (SIGTERM: answer what waits, commit, close).
      serve.child.Signal(SIGTERM);
      std::this_thread::sleep_for(std::chrono::milliseconds(
          std::uniform_int_distribution<int>(0, 30)(rng)));
    }
    serve.child.Signal(SIGKILL);
    int serve_code = serve.child.Wait();
    REQUIRE((serve_code == 128 + SIGKILL || (stopping && serve_code == 0)));
    killed_stopping += stopping && serve_code != 0 ? 1 : 0;
    int sim_code = sim.Wait();
    INFO("sim: " << sim.Out() << sim.Err());
    // The simulator finished before the kill, lost its connection (exit 1), or was told
    // server_shutting_down (exit 4, refused).
    REQUIRE((sim_code == 0 || sim_code == 1 || (stopping && sim_code == 4)));
    sims_finished += sim_code == 0 ? 1 : 0;
    std::vector<AckedRecord> acked = ReadAckedRecords(box.Path("acked_records.csv"));
    REQUIRE(acked.size() >= acked_before);
    CheckAckedBooked(box, acked, acked_before);  // the rest once at the end
    acked_before = acked.size();
  }
  // A last undisturbed run, then every acknowledged record once more.
  Serve serve(box, kServeNow, "serve");
  std::vector<std::string> args = {"--json", "sim", "run", "--server", serve.Address(), "--taps",
                                   "500", "--seed", std::to_string(rng())};
  args.insert(args.end(), sim_common.begin(), sim_common.end());
  Require(box.Run(args, kServeNow), 0);
  std::vector<AckedRecord> acked = ReadAckedRecords(box.Path("acked_records.csv"));
  auto again = Require(box.Json({"sim", "reupload", "--server", serve.Address(), "--records",
                                 box.Path("acked_records.csv")},
                                kServeNow),
                       0);
  INFO(again.out);
  REQUIRE(again.json()["records"] == acked.size());
  REQUIRE(again.json()["results"].size() == 1);
  REQUIRE(again.json()["results"]["duplicate"] == acked.size());
  serve.child.Signal(SIGTERM);
  REQUIRE(serve.child.Wait() == 0);

  CheckAckedBooked(box, acked);
  int64_t day = ClearingDay(*ParseLocalTime(kServeNow.at("CITYCARD_NOW")));
  int64_t booked = CheckDayBooksOnce(box, day, "SIM");
  REQUIRE(booked >= static_cast<int64_t>(acked.size()));
  RequireAuditClean(box, kServeNow);
  double seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
  WARN(fmt::format("serve crash (seed {}): {} rounds in {:.1f} s ({} kills while starting, {} "
                   "during a clean stop), {} records acknowledged, {} booked, {} runs of the "
                   "simulator finished before the kill",
                   seed, rounds, seconds, killed_starting, killed_stopping, acked.size(), booked,
                   sims_finished));
}

// ---- bills import ---------------------------------------------------------------------

const Env kBillsNow = {{"CITYCARD_NOW", "2026-11-02 10:00:00"}};
constexpr int kBillCards = 20;
constexpr int kBillsPerCard = 1'200;
constexpr int kBillCardBalanceFen = 50'000;
constexpr int kBillChunkBills = 200;
// Each round kills its run once it has committed 1 to kBillKillChunksMax chunks more than the
// runs before it (the import commits a bill_import_chunks row with each chunk), and then a
// pause of up to kBillKillJitterUs, so that the kill lands inside a chunk, at a point that
// does not depend on the machine's speed (a time-based kill came after the whole file on a
// fast machine, and before any payment on a loaded one). 5 rounds take at most 100 of the
// file's 120 chunks: the file is finished only by the re-import after the last round.
constexpr int kBillKillChunksMax = 20;
constexpr int kBillKillJitterUs = 3'000;
// A run that has not got to its chunk within this long is killed anyway (the round then
// counts for nothing unless it paid something).
constexpr int kBillKillWaitMsMax = 60'000;
constexpr int kBillRoundsFactorMax = 4;

struct Bill {
  std::string id;
  std::string card_no;
  int64_t amount_fen = 0;
};

// Σ over the cards of what left their purses equals what the utility's payable received:
// nothing is half applied.
void CheckBillMoneyWhole(const CliSandbox& box, const std::vector<std::string>& cards,
                         int64_t* paid_fen) {
  auto env = OpenEnvironment(box);
  int64_t spent = 0;
  for (const std::string& card_no : cards) {
    auto card = env->registry().FindCard(card_no);
    REQUIRE(card.ok());
    REQUIRE(card->has_value());
    auto purse = env->ledger().LookupAccount((*card)->purse_account_id);
    REQUIRE(purse.ok());
    spent += kBillCardBalanceFen - purse->balance_fen();
  }
  auto op = env->registry().FindOperator("water-x");
  REQUIRE(op.ok());
  auto payable = env->ledger().LookupAccount((*op)->payable_account_id);
  REQUIRE(payable.ok());
  REQUIRE(payable->balance_fen() == spent);
  *paid_fen = spent;
}

// Counts the chunks of bill imports committed so far (bill_import_chunks) over a connection
// of the test's own, while an import may be writing.
class ChunkCounter {
 public:
  explicit ChunkCounter(const CliSandbox& box) {
    auto db = db::Database::Open(box.db_path(), /*create=*/false);
    REQUIRE(db.ok());
    db_ = std::move(db).value();
    auto count = db_->Prepare("SELECT count(*) FROM bill_import_chunks");
    REQUIRE(count.ok());
    count_.emplace(std::move(count).value());
  }
  int64_t Count() {
    auto row = count_->Step();
    REQUIRE(row.ok());
    REQUIRE(*row);
    const int64_t n = count_->ColumnInt(0);
    count_->Reset();
    return n;
  }

 private:
  std::unique_ptr<db::Database> db_;
  std::optional<db::Statement> count_;
};

// Returns once `run` has committed `target` chunks in all, has ended, or has not got there
// within kBillKillWaitMsMax.
void WaitForChunks(ChunkCounter& chunks, Child& run, int64_t target) {
  const auto deadline = SteadyClock::now() + std::chrono::milliseconds(kBillKillWaitMsMax);
  while (run.Running() && SteadyClock::now() < deadline && chunks.Count() < target) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void RunBillsCrash(int rounds) {
  const uint32_t seed = Seed();
  INFO("seed " << seed << " (" << kSeedVariable << "), rounds " << rounds);
  std::mt19937 rng(seed);
  CliSandbox box(CITYCARD_BIN);
  Require(box.Run({"init"}, kBillsNow), 0);
  Require(box.Json({"operator", "add", "water-x", "--name", "Water", "--kind", "utility"},
                   kBillsNow),
          0);
  auto provisioned = Require(box.Json({"sim", "provision", "--terminals", "1", "--cards",
                                       std::to_string(kBillCards), "--balance", "500"},
                                      kBillsNow),
                             0);
  std::vector<std::string> cards = provisioned.json()["cards"].get<std::vector<std::string>>();
  REQUIRE(cards.size() == kBillCards);
  for (size_t i = 0; i < cards.size(); ++i) {
    Require(box.Json({"mandate", "add", cards[i], "water-x", fmt::format("ACC-{}", i)}, kBillsNow),
            0);
  }
  std::vector<Bill> bills;
  std::string text = "bill_id,utility,account_no,card_no,period,amount,due_date\n";
  std::map<std::string, int64_t> due_by_card;
  for (int i = 0; i < kBillCards * kBillsPerCard; ++i) {
    size_t card = static_cast<size_t>(i % kBillCards);
    Bill bill{fmt::format("B{:06d}", i), cards[card], 1 + static_cast<int64_t>(rng() % 8)};
    text += fmt::format("{},water-x,ACC-{},{},2026-10,{}.{:02d},2026-11-15\n", bill.id, card,
                        bill.card_no, bill.amount_fen / 100, bill.amount_fen % 100);
    due_by_card[bill.card_no] += bill.amount_fen;
    bills.push_back(std::move(bill));
  }
  box.Write("bills.csv", text);
  const std::vector<std::string> import = {"--json", "bills", "import", box.Path("bills.csv"),
                                           "--chunk-bills", std::to_string(kBillChunkBills),
                                           "--results", box.Path("results.csv")};
  auto started = SteadyClock::now();
  int killed_midway = 0;  // killed after paying some of the file and before the end
  int64_t paid_fen = 0;
  int64_t paid_before_fen = 0;
  ChunkCounter chunks(box);
  int64_t chunks_before = chunks.Count();
  // Rounds go on (up to kBillRoundsFactorMax times as many) until one kill has landed in the
  // middle of the file.
  for (int round = 0;
       round < rounds || (killed_midway == 0 && round < rounds * kBillRoundsFactorMax); ++round) {
    INFO("round " << round);
    const int64_t target =
        chunks_before + std::uniform_int_distribution<int>(1, kBillKillChunksMax)(rng);
    Child run(box, import, kBillsNow, "import");
    WaitForChunks(chunks, run, target);
    std::this_thread::sleep_for(
        std::chrono::microseconds(std::uniform_int_distribution<int>(0, kBillKillJitterUs)(rng)));
    run.Signal(SIGKILL);
    int code = run.Wait();
    INFO(run.Out() << run.Err());
    REQUIRE((code == 128 + SIGKILL || code == 0));
    CheckBillMoneyWhole(box, cards, &paid_fen);
    REQUIRE(paid_fen >= paid_before_fen);  // a crash never takes back what was committed
    killed_midway += code != 0 && paid_fen > paid_before_fen ? 1 : 0;
    paid_before_fen = paid_fen;
    chunks_before = chunks.Count();
  }
  // At least one run must have died in the middle of the file, or nothing was tested.
  REQUIRE(killed_midway >= 1);
  auto final_run = Require(box.Run(import, kBillsNow), 0);
  auto json = final_run.json();
  REQUIRE(json["bills"] == bills.size());
  REQUIRE(json["paid"] == bills.size());
  std::vector<std::string> results = Lines(box.Read("results.csv"));
  REQUIRE(results.size() == bills.size() + 1);
  std::set<std::string> transfers;
  for (size_t i = 0; i < bills.size(); ++i) {
    const std::string& line = results[i + 1];
    INFO(line);
    std::string prefix = fmt::format("{},paid,{}.{:02d},", bills[i].id, bills[i].amount_fen / 100,
                                     bills[i].amount_fen % 100);
    REQUIRE(line.rfind(prefix, 0) == 0);
    std::string transfer = line.substr(prefix.size(), 32);
    REQUIRE(transfer.size() == 32);
    REQUIRE(transfers.insert(transfer).second);  // one transfer per bill
  }
  CheckBillMoneyWhole(box, cards, &paid_fen);
  int64_t due_fen = 0;
  {
    auto env = OpenEnvironment(box);
    for (const auto& [card_no, due] : due_by_card) {
      auto card = env->registry().FindCard(card_no);
      auto purse = env->ledger().LookupAccount((*card)->purse_account_id);
      REQUIRE(purse->balance_fen() == kBillCardBalanceFen - due);
      due_fen += due;
    }
  }
  REQUIRE(paid_fen == due_fen);
  // Once more: the file is known, nothing moves, the same results.
  std::string kept = box.Read("results.csv");
  auto repeated = Require(box.Run(import, kBillsNow), 0);
  REQUIRE(repeated.json()["repeated"] == true);
  REQUIRE(repeated.json()["paid_now"] == 0);
  REQUIRE(box.Read("results.csv") == kept);
  CheckBillMoneyWhole(box, cards, &paid_fen);
  REQUIRE(paid_fen == due_fen);
  RequireAuditClean(box, kBillsNow);
  double seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
  WARN(fmt::format("bills crash (seed {}): {} rounds ({} killed in the middle of the file) of a "
                   "{}-bill file in {:.1f} s",
                   seed, rounds, killed_midway, bills.size(), seconds));
}

// ---- settle ---------------------------------------------------------------------------

constexpr int kSettleTapsPerOperator = 600;
constexpr int kSettleBalanceYuanMin = 500;
constexpr int kSettleBalanceYuanPerDay = 40;

// The clearing days of the settle test: one after another from 2026-11-03.
std::string SettleDayText(int day_index) {
  return FormatDay(DaysFromCivil(2026, 11, 3) + day_index);
}

// The report without what may differ between two runs of the same settlement.
nlohmann::json ReportFigures(const nlohmann::json& json) {
  return {{"day", json["day"]}, {"operators", json["operators"]}, {"totals", json["totals"]},
          {"transfers", json["transfers"]}};
}

void RequirePayablesEmpty(const CliSandbox& box, const std::vector<std::string>& operators) {
  auto env = OpenEnvironment(box);
  for (const std::string& id : operators) {
    auto op = env->registry().FindOperator(id);
    REQUIRE(op.ok());
    auto payable = env->ledger().LookupAccount((*op)->payable_account_id);
    REQUIRE(payable.ok());
    INFO(id);
    REQUIRE(payable->balance_fen() == 0);
  }
}

void RunSettleCrash(int days) {
  const uint32_t seed = Seed();
  INFO("seed " << seed << " (" << kSeedVariable << "), days " << days);
  std::mt19937 rng(seed);
  CliSandbox box(CITYCARD_BIN);
  // A card pays ~8 fares of ¥2 a day, and gets its capping rebates back only when the days
  // are settled, after the last one: its balance must last every day asked (with 50 days,
  // ¥500 ran out and the last days had no fares left to cap), under a purse maximum above it.
  const int balance_yuan = std::max(kSettleBalanceYuanMin, days * kSettleBalanceYuanPerDay);
  const std::string purse_max_yuan = std::to_string(2 * balance_yuan);
  // Settlement runs the day after the last clearing day.
  const Env now = {{"CITYCARD_NOW", SettleDayText(days) + " 10:00:00"},
                   {"CITYCARD_PURSE_MAX", purse_max_yuan}};
  const Env setup = {{"CITYCARD_NOW", "2026-11-01 10:00:00"},
                     {"CITYCARD_PURSE_MAX", purse_max_yuan}};
  Require(box.Run({"init"}, setup), 0);
  Require(box.Json({"operator", "add", "BUS-A", "--name", "Bus A", "--kind", "bus", "--fee-bp",
                    "150"},
                   setup),
          0);
  Require(box.Json({"operator", "add", "BUS-B", "--name", "Bus B", "--kind", "bus", "--fee-bp",
                    "85"},
                   setup),
          0);
  Require(box.Json({"sim", "provision", "--operator", "BUS-A", "--terminals", "2", "--cards",
                    "150", "--balance", std::to_string(balance_yuan)},
                   setup),
          0);
  Require(box.Json({"sim", "provision", "--operator", "BUS-B", "--terminals", "2", "--cards",
                    "0"},
                   setup),
          0);
  // A daily cap, so that settlement also books capping rebates to the cards.
  box.Write("fares.json", R"({
  "format": "citycard-fares", "format_version": 1, "version": 7, "name": "crash test",
  "operators": [
    {"id": "BUS-A", "name": "Bus A", "mode": "bus", "pricing": {"kind": "flat", "fare_fen": 200}},
    {"id": "BUS-B", "name": "Bus B", "mode": "bus", "pricing": {"kind": "flat", "fare_fen": 200}}
  ],
  "daily_caps": [{"profile": "adult", "modes": ["bus"], "cap_fen": 1000}]
})");
  Require(box.Json({"fares", "load", box.Path("fares.json")}, setup), 0);
  // Taps on each day, booked on the day by a server whose clock is in it.
  for (int d = 0; d < days; ++d) {
    const Env day_now = {{"CITYCARD_NOW", SettleDayText(d) + " 09:00:00"},
                         {"CITYCARD_PURSE_MAX", purse_max_yuan}};
    Serve serve(box, day_now, "serve");
    for (const char* op : {"BUS-A", "BUS-B"}) {
      Require(box.Json({"sim", "run", "--server", serve.Address(), "--operator", op, "--taps",
                        std::to_string(kSettleTapsPerOperator), "--seed", std::to_string(rng())},
                       day_now),
              0);
    }
    serve.child.Signal(SIGTERM);
    REQUIRE(serve.child.Wait() == 0);
  }
  // The reference: the same installation settled without a crash.
  CliSandbox reference(CITYCARD_BIN);
  std::filesystem::copy_file(box.db_path(), reference.db_path());
  std::filesystem::copy_file(box.keys_path(), reference.keys_path());
  if (std::filesystem::exists(box.db_path() + "-wal")) {
    std::filesystem::copy_file(box.db_path() + "-wal", reference.db_path() + "-wal");
  }
  std::vector<nlohmann::json> expected;
  std::vector<int> settle_ms;
  for (int d = 0; d < days; ++d) {
    auto t0 = SteadyClock::now();
    auto run = Require(reference.Json({"settle", "--day", SettleDayText(d)}, now), 0);
    settle_ms.push_back(static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0).count()));
    REQUIRE(run.json()["repeated"] == false);
    REQUIRE(run.json()["totals"]["taps"] > 0);
    REQUIRE(run.json()["totals"]["capping_rebate_fen"] > 0);
    expected.push_back(ReportFigures(run.json()));
  }
  auto reference_audit = Require(reference.Json({"audit", "verify"}, now), 0).json();
  REQUIRE(reference_audit["ok"] == true);

  auto started = SteadyClock::now();
  int committed_before_kill = 0;
  for (int d = 0; d < days; ++d) {
    INFO("day " << SettleDayText(d));
    Child run(box, {"--json", "settle", "--day", SettleDayText(d)}, now, "settle");
    // Anywhere from before the database is open to after the commit.
    int kill_after_ms = std::uniform_int_distribution<int>(0, settle_ms[d] * 13 / 10)(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
    run.Signal(SIGKILL);
    int code = run.Wait();
    REQUIRE((code == 128 + SIGKILL || code == 0));
    auto rerun = Require(box.Json({"settle", "--day", SettleDayText(d)}, now), 0);
    committed_before_kill += rerun.json()["repeated"] == true ? 1 : 0;
    REQUIRE(ReportFigures(rerun.json()) == expected[d]);
    auto third = Require(box.Json({"settle", "--day", SettleDayText(d)}, now), 0);
    REQUIRE(third.json()["repeated"] == true);
    REQUIRE(ReportFigures(third.json()) == expected[d]);
  }
  auto audit = Require(box.Json({"audit", "verify"}, now), 0).json();
  REQUIRE(audit["ok"] == true);
  // Nothing booked twice, nothing missing: the very transfers of the undisturbed run.
  REQUIRE(audit["transfers"] == reference_audit["transfers"]);
  RequirePayablesEmpty(box, {"BUS-A", "BUS-B"});
  RequirePayablesEmpty(reference, {"BUS-A", "BUS-B"});
  double seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
  WARN(fmt::format("settle crash (seed {}): {} days settled in {:.1f} s; {} kills came after the commit, "
                   "{} before it (an undisturbed settle took {} ms)",
                   seed, days, seconds, committed_before_kill, days - committed_before_kill,
                   settle_ms.empty() ? 0 : settle_ms[0]));
}

}  // namespace

TEST_CASE("serve killed at random moments loses no acknowledged tap and books none twice",
          "[tools][crash][serve]") {
  RunServeCrash(ServeRounds(kServeRoundsDefault));
}

TEST_CASE("serve survives 200 random kills", "[tools][.slow]") {
  RunServeCrash(ServeRounds(kServeRoundsSlow));
}

TEST_CASE("bills import killed at random moments pays every bill exactly once after the re-import",
          "[tools][crash][bills]") {
  RunBillsCrash(OtherRounds());
}

TEST_CASE("settle killed at random moments gives the same report and books nothing twice",
          "[tools][crash][settle]") {
  RunSettleCrash(OtherRounds());
}

}  // namespace citycard
