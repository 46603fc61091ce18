// `citycard bench ingest`: the tap-ingest benchmark of docs/benchmarks.md.
//
// A scratch installation (tools/cli/bench_world.h) with `cards` cards and `terminals`
// readers; then, BEFORE timing, every tap is made by a simulated card at a simulated reader
// (tools/sim: TAC by the card, MAC by the reader) and cut into upload batches. Taps come in
// rounds: in each round every card (in a new random order) taps once at a random reader, and
// each reader uploads a batch when it holds `batch` records and at the end of the round, so a
// card's taps reach the core in their counter order, as readers that upload often deliver them.
// Timed: pushing every batch through the server's group-commit backend
// (tools/server/ingest_backend.h, the same code `citycard serve` runs: MAC and TAC checked,
// duplicates, counters, shadow balance, posting, one durable SQLite transaction per group with
// synchronous=FULL before the answer), in process; or, with --via-server, through the terminal
// protocol over loopback TCP to an in-process server (tools/server/ingest_server.h).
// Afterwards it checks that every tap was accepted and that the ledger adds up: the operator's
// payable holds what the cards paid, and each purse (every one, or a sample of 10,000 above
// kBenchSimCardsKeptMax cards) holds what its simulated card holds.
#include <fmt/format.h>

#include <algorithm>
#include <barrier>
#include <condition_variable>
#include <future>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <thread>

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/account_plan.h"
#include "core/ingest.h"
#include "core/settlement.h"
#include "core/settlement_tap_source.h"
#include "core/time.h"
#include "db/postgres_tap_bench.h"
#include "db/sqlite_settlement_reads.h"
#include "db/sqlite_settlement_store.h"
#include "tools/cli/pg_cluster.h"
#include "crypto/keyed_tap_authenticator.h"
#include "db/sqlite_registry_store.h"
#include "db/sqlite_tap_store.h"
#include "db/wal_checkpointer.h"
#include "terminals/client.h"
#include "tools/cli/bench.h"
#include "tools/cli/bench_world.h"
#include "tools/cli/settle.h"
#include "tools/server/ingest_backend.h"
#include "tools/server/ingest_server.h"
#include "tools/sim/sim_terminal.h"

namespace citycard::cli {

namespace {

// How many purses are compared with their simulated cards when there are too many to compare
// every one.
constexpr int64_t kPurseSampleCount = 10'000;
// The least fare a bench tap costs, and the spread above it (fen).
constexpr int64_t kBenchFareMinFen = 100;
constexpr uint64_t kBenchFareSpreadFen = 300;

double ProcessCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// The CPU time of the calling thread.
double ThreadCpuSeconds() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

struct BenchBatch {
  size_t terminal = 0;
  size_t round = 0;
  std::vector<TapRecord> records;
};

// The taps made before timing, and what they should do to the ledger.
struct Workload {
  std::vector<BenchBatch> batches;
  size_t rounds = 0;
  int64_t taps = 0;          // made (signed and queued)
  int64_t refused = 0;       // the card could not pay (none with the bench's fares)
  int64_t spent_fen = 0;     // Σ amount of the taps made
  std::vector<int64_t> balance_fen;  // per card, what its chip holds at the end
};

Workload MakeWorkload(const BenchWorld& world, const IngestBenchOptions& o, int64_t taps) {
  const int64_t cards = world.cards();
  const size_t terminals = world.terminals().size();
  Workload w;
  w.balance_fen.assign(static_cast<size_t>(cards), kBenchPurseFen);
  std::vector<uint32_t> counters(static_cast<size_t>(cards), 0);
  std::vector<sim::SimCard> kept;
  if (cards <= kBenchSimCardsKeptMax) {
    kept.reserve(static_cast<size_t>(cards));
    for (int64_t i = 0; i < cards; ++i) kept.push_back(world.Card(i, 0, kBenchPurseFen));
  }
  std::vector<sim::SimTerminal> readers;
  for (const BenchTerminal& t : world.terminals()) {
    readers.emplace_back(t.id, kBenchOperatorId, t.plain_key, t.key_version);
  }
  std::vector<std::vector<TapRecord>> pending(terminals);
  std::vector<uint32_t> order(static_cast<size_t>(cards));
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937_64 rng(o.seed);
  const int64_t now_s = world.clock().NowSeconds();
  auto flush = [&](size_t t, size_t round) {
    std::vector<uint32_t> ttcs;
    for (const TapRecord& r : pending[t]) ttcs.push_back(r.terminal_counter);
    readers[t].Acknowledge(ttcs);
    w.batches.push_back(BenchBatch{t, round, std::move(pending[t])});
    pending[t].clear();
  };
  int64_t done = 0;
  for (size_t round = 0; done < taps; ++round) {
    std::shuffle(order.begin(), order.end(), rng);
    int64_t n = std::min(cards, taps - done);
    for (int64_t k = 0; k < n; ++k) {
      size_t idx = order[static_cast<size_t>(k)];
      size_t t = rng() % terminals;
      sim::TapRequest request;
      request.amount_fen = kBenchFareMinFen + static_cast<int64_t>(rng() % kBenchFareSpreadFen);
      request.full_fare_fen = request.amount_fen;
      request.time_s = now_s;
      std::optional<sim::SimCard> made;
      if (kept.empty()) made.emplace(world.Card(static_cast<int64_t>(idx), counters[idx], w.balance_fen[idx]));
      sim::SimCard& card = kept.empty() ? *made : kept[idx];
      auto tap = readers[t].Tap(card, request);
      if (!tap.ok()) {
        ++w.refused;
        continue;
      }
      ++w.taps;
      w.spent_fen += request.amount_fen;
      counters[idx] = card.counter();
      w.balance_fen[idx] = card.balance_fen();
      pending[t].push_back(std::move(*tap));
      if (pending[t].size() >= o.batch) flush(t, round);
    }
    for (size_t t = 0; t < terminals; ++t) {
      if (!pending[t].empty()) flush(t, round);
    }
    done += n;
    w.rounds = round + 1;
  }
  return w;
}

// What the timed part saw.
struct PushResult {
  double seconds = 0;
  double cpu_seconds = 0;         // the whole process's user + system time while timed
  double writer_cpu_seconds = 0;  // the backend's writer thread (in process only)
  std::map<std::string, int64_t> results;  // by protocol result code name
  int64_t failed_batches = 0;
  server::IngestBackendStats stats;
};

// The page cache of the ingest connection: --cache-mb, or what `citycard serve` gives it.
int64_t CacheBytes(const IngestBenchOptions& o) {
  return o.cache_mb > 0 ? o.cache_mb << 20 : server::kServerCacheBytesDefault;
}

Result<PushResult> PushInProcess(BenchWorld& world, Workload& w, const IngestBenchOptions& o) {
  Environment& env = world.env();
  auto store = db::SqliteTapStore::Open(env.database());
  if (!store.ok()) return store.status();
  CITYCARD_RETURN_IF_ERROR((*store)->SetCacheBytes(CacheBytes(o)));
  // As StartIngestServer does, unless asked to compare with SQLite's own checkpoints.
  std::unique_ptr<db::WalCheckpointer> checkpointer;
  if (!o.inline_checkpoints) {
    auto started = db::WalCheckpointer::Start(env.database());
    if (!started.ok()) return started.status();
    checkpointer = std::move(started).value();
  }
  crypto::KeyedTapAuthenticator auth(env.keys());
  crypto::KeyedTapAuthenticator precheck_auth(env.keys());  // as StartIngestServer's backend
  server::IngestBackendOptions options;
  options.group_records_max = o.group;
  options.precheck_authenticator = &precheck_auth;
  // As StartIngestServer does: the checker reads the cards on a connection of its own.
  db::RegistryReader reader;
  if (!o.no_cards_ahead) {
    auto opened = db::OpenRegistryReader(env.database().path(), server::kCheckerCacheBytes);
    if (!opened.ok()) return opened.status();
    reader = std::move(opened).value();
    options.precheck_registry = reader.store.get();
    if (!o.no_purses_ahead) options.precheck_ledger = reader.ledger.get();
  }
  server::IngestBackend backend(env.registry(), env.ledger(), **store, auth, env.keys().WrapKey(),
                                env.digester(), env.clock(), options);
  CITYCARD_RETURN_IF_ERROR(backend.Start());
  // The backend refuses batches beyond its queue limit; the bench keeps a few groups queued,
  // as busy readers would, so that every group commit is full.
  const size_t window = std::min(server::kQueueRecordsMax / 2, std::max<size_t>(4 * o.group, 65'536));
  std::mutex mutex;
  std::condition_variable answered;
  size_t in_flight = 0;
  double writer_cpu_start = -1;
  double writer_cpu_end = 0;
  // Each reader's session looks its terminal up at its handshake, as with `citycard serve`
  // (the backend's checker learns the terminal from it). The writer's CPU clock when the
  // timing starts is read on the writer thread itself, after the last of them.
  std::promise<double> cpu_at_start;
  const size_t readers = world.terminals().size();
  for (size_t t = 0; t < readers; ++t) {
    backend.LookupTerminal(world.terminals()[t].id, [&, t](Result<terminals::TerminalAuthInfo>) {
      if (t + 1 == readers) cpu_at_start.set_value(ThreadCpuSeconds());
    });
  }
  writer_cpu_start = cpu_at_start.get_future().get();
  PushResult out;
  double cpu_start = ProcessCpuSeconds();
  int64_t start = BenchNowNs();
  for (BenchBatch& b : w.batches) {
    size_t n = b.records.size();
    {
      std::unique_lock lock(mutex);
      answered.wait(lock, [&] { return in_flight + n <= window; });
      in_flight += n;
    }
    terminals::BatchSubmission submission;
    submission.terminal.terminal_id = world.terminals()[b.terminal].id;
    submission.terminal.operator_id = kBenchOperatorId;
    submission.terminal.key_version = world.terminals()[b.terminal].key_version;
    submission.records = std::move(b.records);
    backend.SubmitBatch(std::move(submission),
                        [&, n](Result<std::vector<terminals::ResultCode>> codes) {
                          std::lock_guard lock(mutex);
                          in_flight -= n;
                          writer_cpu_end = ThreadCpuSeconds();
                          if (!codes.ok()) {
                            ++out.failed_batches;
                          } else {
                            for (terminals::ResultCode c : *codes) {
                              out.results[std::string(terminals::ResultCodeName(c))]++;
                            }
                          }
                          answered.notify_all();
                        });
  }
  {
    std::unique_lock lock(mutex);
    answered.wait(lock, [&] { return in_flight == 0; });
  }
  out.seconds = BenchSecondsSince(start);
  out.cpu_seconds = ProcessCpuSeconds() - cpu_start;
  out.writer_cpu_seconds = writer_cpu_end - writer_cpu_start;
  backend.Stop();
  out.stats = backend.stats();
  return out;
}

Result<PushResult> PushViaServer(BenchWorld& world, Workload& w, const IngestBenchOptions& o) {
  Environment& env = world.env();
  server::IngestServerOptions options;
  options.cache_bytes = CacheBytes(o);
  options.checkpoints_apart = !o.inline_checkpoints;
  options.cards_read_ahead = !o.no_cards_ahead;
  options.purses_read_ahead = !o.no_purses_ahead;
  options.listen.push_back(server::ListenAddress{});
  options.io_threads = 2;
  options.backend.group_records_max = o.group;
  options.limits.sessions_max = std::max<size_t>(options.limits.sessions_max,
                                                 world.terminals().size() + 16);
  auto started = server::StartIngestServer(env.database(), env.ledger(), env.registry(),
                                           env.keys(), env.digester(), env.clock(),
                                           std::move(options));
  if (!started.ok()) return started.status();
  server::IngestServer& srv = **started;
  const size_t wanted = o.client_threads == 0 ? world.terminals().size() : o.client_threads;
  const size_t threads = std::max<size_t>(1, std::min(wanted, world.terminals().size()));
  std::vector<std::unique_ptr<terminals::TerminalClient>> clients;
  for (const BenchTerminal& t : world.terminals()) {
    terminals::ClientOptions co;
    co.terminal_id = t.id;
    co.key_version = t.key_version;
    co.terminal_key = t.plain_key;
    co.core_public_key = env.keys().CoreSigner().PublicKey();
    auto client = terminals::TerminalClient::ConnectTcp("127.0.0.1", srv.ports()[0], co);
    if (!client.ok()) return client.status();
    CITYCARD_RETURN_IF_ERROR((*client)->Handshake());
    clients.push_back(std::move(*client));
  }
  // Per round and thread, the batches of that thread's readers in their order: a reader's
  // batches go one after the other on its own connection; all readers finish a round before
  // the next begins.
  std::vector<std::vector<std::vector<size_t>>> plan(w.rounds, std::vector<std::vector<size_t>>(threads));
  for (size_t i = 0; i < w.batches.size(); ++i) {
    plan[w.batches[i].round][w.batches[i].terminal % threads].push_back(i);
  }
  std::mutex mutex;
  PushResult out;
  std::barrier sync(static_cast<std::ptrdiff_t>(threads));
  auto work = [&](size_t k) {
    std::map<std::string, int64_t> results;
    int64_t failed = 0;
    uint32_t batch_id = 0;
    for (size_t round = 0; round < w.rounds; ++round) {
      for (size_t i : plan[round][k]) {
        const BenchBatch& b = w.batches[i];
        auto ack = clients[b.terminal]->UploadBatch(++batch_id, b.records);
        if (!ack.ok()) {
          ++failed;
          continue;
        }
        for (terminals::ResultCode c : ack->results) {
          results[std::string(terminals::ResultCodeName(c))]++;
        }
      }
      sync.arrive_and_wait();
    }
    std::lock_guard lock(mutex);
    for (const auto& [name, count] : results) out.results[name] += count;
    out.failed_batches += failed;
  };
  double cpu_start = ProcessCpuSeconds();
  int64_t start = BenchNowNs();
  std::vector<std::thread> pool;
  for (size_t k = 0; k < threads; ++k) pool.emplace_back(work, k);
  for (std::thread& t : pool) t.join();
  out.seconds = BenchSecondsSince(start);
  out.cpu_seconds = ProcessCpuSeconds() - cpu_start;
  for (auto& c : clients) c->Close();
  srv.Stop();
  out.stats = srv.backend().stats();
  return out;
}

struct LedgerCheck {
  bool ok = true;
  int64_t payable_fen = 0;
  int64_t purses_checked = 0;
  int64_t purses_wrong = 0;
  std::string first_problem;
};

Result<LedgerCheck> CheckLedger(BenchWorld& world, const Workload& w) {
  Environment& env = world.env();
  LedgerCheck check;
  auto op = env.registry().FindOperator(kBenchOperatorId);
  if (!op.ok()) return op.status();
  auto payable = env.ledger().LookupAccount((*op)->payable_account_id);
  if (!payable.ok()) return payable.status();
  check.payable_fen = payable->balance_fen();
  if (check.payable_fen != w.spent_fen) {
    check.ok = false;
    check.first_problem = fmt::format("operator payable {} fen, taps paid {} fen",
                                      check.payable_fen, w.spent_fen);
  }
  const int64_t cards = world.cards();
  const int64_t step = cards <= kBenchSimCardsKeptMax ? 1 : std::max<int64_t>(1, cards / kPurseSampleCount);
  for (int64_t i = 0; i < cards; i += step) {
    uint64_t no = BenchWorld::CardNo(i);
    auto purse = env.ledger().LookupAccount(AccountIdFor(AccountKind::card_purse, no));
    if (!purse.ok()) return purse.status();
    ++check.purses_checked;
    if (purse->balance_fen() != w.balance_fen[static_cast<size_t>(i)]) {
      ++check.purses_wrong;
      if (check.ok) {
        check.first_problem = fmt::format("card {}: purse {} fen, card holds {} fen", no,
                                          purse->balance_fen(), w.balance_fen[static_cast<size_t>(i)]);
      }
      check.ok = false;
    }
  }
  return check;
}

// The 1-minute load average when the run ended (the machine is shared).
double LoadAverage() {
  double loads[1] = {0};
  return ::getloadavg(loads, 1) == 1 ? loads[0] : -1;
}

int64_t FileBytes(const std::string& path) {
  std::error_code error;
  auto size = std::filesystem::file_size(path, error);
  return error ? 0 : static_cast<int64_t>(size);
}

// The PostgreSQL run (db/postgres_tap_bench.h): the same records, in the same order, in groups
// of the same size; each group's MACs and TACs checked by the same authenticator, then booked
// in one durable PostgreSQL transaction.
struct PgRun {
  double seconds = 0;
  double setup_seconds = 0;
  int64_t booked = 0;
  int64_t groups = 0;
  bool ledger_ok = false;
  std::string problem;
};

Result<PgRun> RunPostgres(BenchWorld& world, const std::vector<TapRecord>& records,
                          const Workload& w, const IngestBenchOptions& o) {
  Environment& env = world.env();
  PgRun run;
  int64_t setup_start = BenchNowNs();
  // Not under the bench's directory, which the postgres user may not be able to enter.
  auto cluster = PgCluster::Start(fmt::format("/tmp/citycard-bench-pg-{}", ::getpid()));
  if (!cluster.ok()) return cluster.status();
  auto pg = db::PostgresTapBench::Connect((*cluster)->conninfo());
  if (!pg.ok()) return pg.status();
  std::vector<uint64_t> card_nos;
  card_nos.reserve(static_cast<size_t>(world.cards()));
  for (int64_t i = 0; i < world.cards(); ++i) card_nos.push_back(BenchWorld::CardNo(i));
  CITYCARD_RETURN_IF_ERROR((*pg)->Setup(card_nos, kBenchPurseFen));
  std::map<std::string, Terminal> terminals;
  // The tap transfer ids' terminal halves, one digest per terminal as the engine makes them.
  std::map<std::string, Id128> tap_id_bases;
  for (const BenchTerminal& t : world.terminals()) {
    auto found = env.registry().FindTerminal(t.id);
    if (!found.ok()) return found.status();
    terminals.emplace(t.id, **found);
    tap_id_bases.emplace(t.id, TapTransferIdBase(env.digester(), t.id));
  }
  crypto::KeyedTapAuthenticator auth(env.keys());
  run.setup_seconds = BenchSecondsSince(setup_start);

  int64_t start = BenchNowNs();
  std::vector<db::PgTap> group;
  std::vector<bool> booked;
  for (size_t from = 0; from < records.size(); from += o.group) {
    size_t to = std::min(records.size(), from + o.group);
    group.clear();
    for (size_t i = from; i < to; ++i) {
      const TapRecord& r = records[i];
      auto ti = terminals.find(r.terminal_id);
      if (ti == terminals.end() || auth.VerifyTerminalMac(ti->second, r) != TerminalMacVerdict::valid ||
          auth.VerifyTac(r) != TacVerdict::valid) {
        continue;
      }
      db::PgTap tap;
      tap.record = &r;
      tap.encoded = EncodeTapRecord(r);
      Id128 id = TapTransferIdAt(tap_id_bases.at(r.terminal_id), r.terminal_counter);
      for (int b = 0; b < 8; ++b) {
        tap.transfer_id[b] = static_cast<uint8_t>(id.hi >> (56 - 8 * b));
        tap.transfer_id[8 + b] = static_cast<uint8_t>(id.lo >> (56 - 8 * b));
      }
      group.push_back(std::move(tap));
    }
    CITYCARD_RETURN_IF_ERROR((*pg)->BookGroup(group, &booked));
    for (bool b : booked) run.booked += b ? 1 : 0;
    ++run.groups;
  }
  run.seconds = BenchSecondsSince(start);
  auto totals = (*pg)->Totals();
  if (!totals.ok()) return totals.status();
  int64_t purses_expected = world.cards() * kBenchPurseFen - w.spent_fen;
  run.ledger_ok = totals->taps == w.taps && totals->transfers == w.taps &&
                  totals->payable_fen == w.spent_fen && totals->purse_sum_fen == purses_expected;
  if (!run.ledger_ok) {
    run.problem = fmt::format("postgres holds {} taps, {} transfers, payable {} fen, purses {} fen; "
                              "expected {}, {}, {}, {}",
                              totals->taps, totals->transfers, totals->payable_fen,
                              totals->purse_sum_fen, w.taps, w.taps, w.spent_fen, purses_expected);
  }
  return run;
}

}  // namespace

Result<CommandOutput> RunIngestBench(const IngestBenchOptions& o) {
  int64_t taps = o.taps > 0 ? o.taps : std::max<int64_t>(1'000'000, o.cards);
  taps = std::min(taps, kBenchIngestTapsMax);
  if (o.taps > kBenchIngestTapsMax || o.batch < 1 || o.batch > terminals::kRecordsPerBatchMax ||
      o.group < 1 || o.group > kIngestRecordsMax) {
    return Status::Usage("invalid_bench_size",
                         fmt::format("--taps 1..{}, --batch 1..{}, --group 1..{}",
                                     kBenchIngestTapsMax, terminals::kRecordsPerBatchMax,
                                     kIngestRecordsMax));
  }
  BenchWorldOptions wo;
  wo.dir = o.dir.empty() ? fmt::format("/tmp/citycard-bench-ingest-{}", ::getpid()) : o.dir;
  wo.cards = o.cards;
  wo.terminals = o.terminals;
  auto world = BenchWorld::Create(wo);
  if (!world.ok()) return world.status();
  BenchWorld& bw = **world;

  int64_t generate_start = BenchNowNs();
  Workload w = MakeWorkload(bw, o, taps);
  double generate_s = BenchSecondsSince(generate_start);

  std::vector<TapRecord> pg_records;  // a copy, since the push hands its records over
  if (o.with_postgres) {
    pg_records.reserve(static_cast<size_t>(w.taps));
    for (const BenchBatch& b : w.batches) {
      pg_records.insert(pg_records.end(), b.records.begin(), b.records.end());
    }
  }

  auto pushed = o.via_server ? PushViaServer(bw, w, o) : PushInProcess(bw, w, o);
  if (!pushed.ok()) return pushed.status();
  auto check = CheckLedger(bw, w);
  if (!check.ok()) return check.status();
  int64_t accepted = pushed->results["accepted"];
  bool all_accepted = accepted == w.taps && pushed->failed_batches == 0;
  const std::string& db_path = bw.env().options().db_path;
  int64_t db_bytes = FileBytes(db_path) + FileBytes(db_path + "-wal");

  CommandOutput out;
  const double rate = static_cast<double>(w.taps) / pushed->seconds;
  out.json = {{"benchmark", "ingest"},
              {"mode", o.via_server ? "server" : "in_process"},
              {"cards", bw.cards()},
              {"terminals", bw.terminals().size()},
              {"taps", w.taps},
              {"refused_by_cards", w.refused},
              {"rounds", w.rounds},
              {"batch", o.batch},
              {"batches", w.batches.size()},
              {"group", o.group},
              {"cache_mb", CacheBytes(o) >> 20},
              {"checkpoints", o.inline_checkpoints ? "inline" : "own_thread"},
              {"groups", pushed->stats.groups},
              {"records_max_in_group", pushed->stats.records_max_in_group},
              {"records_checked_ahead", pushed->stats.records_checked_ahead},
              {"cards_ahead", !o.no_cards_ahead},
              {"batches_cards_ahead", pushed->stats.batches_cards_ahead},
              {"purses_ahead", !o.no_cards_ahead && !o.no_purses_ahead},
              {"purses_taken_ahead", bw.env().ledger().AccountsTakenAhead()},
              {"seconds", pushed->seconds},
              {"taps_per_s", rate},
              {"cpu_seconds", pushed->cpu_seconds},
              {"writer_cpu_seconds", pushed->writer_cpu_seconds},
              {"load_average", LoadAverage()},
              {"accepted", accepted},
              {"results", pushed->results},
              {"failed_batches", pushed->failed_batches},
              {"all_accepted", all_accepted},
              {"spent_fen", w.spent_fen},
              {"payable_fen", check->payable_fen},
              {"purses_checked", check->purses_checked},
              {"purses_wrong", check->purses_wrong},
              {"ledger_ok", check->ok},
              {"setup_seconds", bw.setup_seconds()},
              {"generate_seconds", generate_s},
              {"db_bytes", db_bytes},
              {"dir", bw.dir()}};
  out.text = fmt::format(
      "bench ingest ({}): {} taps by {} cards at {} readers in {:.2f} s: {:.0f} taps/s\n"
      "  CPU {:.1f} s (writer thread {:.1f} s); load average {:.1f}\n"
      "  accepted {} of {}; {} group commits (largest {} records); ledger {}\n"
      "  setup {:.1f} s, taps made in {:.1f} s; database {:.0f} MB in {}\n",
      o.via_server ? "over loopback TCP" : "in process", w.taps, bw.cards(), bw.terminals().size(),
      pushed->seconds, rate, pushed->cpu_seconds, pushed->writer_cpu_seconds, LoadAverage(),
      accepted, w.taps, pushed->stats.groups,
      pushed->stats.records_max_in_group, check->ok ? "adds up" : "WRONG: " + check->first_problem,
      bw.setup_seconds(), generate_s, static_cast<double>(db_bytes) / 1e6, bw.dir());

  bool pg_ok = true;
  std::string pg_problem;
  if (o.with_postgres) {
    auto pg = RunPostgres(bw, pg_records, w, o);
    if (!pg.ok()) return pg.status();
    const double pg_rate = static_cast<double>(pg->booked) / pg->seconds;
    out.json["postgres"] = {{"seconds", pg->seconds},
                            {"taps_per_s", pg_rate},
                            {"booked", pg->booked},
                            {"groups", pg->groups},
                            {"setup_seconds", pg->setup_seconds},
                            {"ledger_ok", pg->ledger_ok}};
    out.json["ratio"] = rate / pg_rate;
    out.text += fmt::format(
        "  PostgreSQL 15, same taps, same group size: {:.2f} s, {:.0f} taps/s ({} booked, ledger "
        "{}); citycard / PostgreSQL = {:.2f}\n",
        pg->seconds, pg_rate, pg->booked, pg->ledger_ok ? "adds up" : "WRONG", rate / pg_rate);
    pg_ok = pg->ledger_ok && pg->booked == w.taps;
    pg_problem = pg->problem;
  }
  if (!o.keep) {
    bw.RemoveFiles();
    out.json["dir"] = nullptr;
  }
  if (!all_accepted || !check->ok || !pg_ok) {
    return Status::Internal("bench_check_failed",
                            fmt::format("accepted {} of {} taps ({} batches failed); ledger: {}{}",
                                        accepted, w.taps, pushed->failed_batches,
                                        check->ok ? "ok" : check->first_problem,
                                        pg_ok ? "" : "; postgres: " + pg_problem));
  }
  return out;
}

}  // namespace citycard::cli

namespace citycard::cli {

namespace {

// What a settle bench booked: the day and what its taps paid, for the checks after settling.
struct BookedDay {
  int64_t day = 0;
  int64_t taps = 0;
  int64_t cards = 0;
  int64_t spent_fen = 0;
  double ingest_seconds = 0;
  double setup_seconds = 0;
};

constexpr char kBookedDayFile[] = "/settle-day.json";

// Books the bench's clearing day through the ingest backend with the clock two days back, so
// that the day is over (whatever the clearing cut-off) when it is settled at the real time.
Result<BookedDay> BookSettleDay(const SettleBenchOptions& o, std::unique_ptr<BenchWorld>* out) {
  const int64_t booked_s = SystemClock().NowSeconds() - 2 * kSecondsPerDay;
  ::setenv(kNowVariable, fmt::format("@{}", booked_s).c_str(), 1);
  BenchWorldOptions wo;
  wo.dir = o.dir.empty() ? fmt::format("/tmp/citycard-bench-settle-{}", ::getpid()) : o.dir;
  wo.cards = o.cards;
  wo.terminals = 256;
  auto world = BenchWorld::Create(wo);
  ::unsetenv(kNowVariable);
  if (!world.ok()) return world.status();
  BenchWorld& bw = **world;
  IngestBenchOptions io;
  io.cards = o.cards;
  io.taps = o.taps;
  io.seed = o.seed;
  Workload w = MakeWorkload(bw, io, o.taps);
  auto pushed = PushInProcess(bw, w, io);
  if (!pushed.ok()) return pushed.status();
  if (pushed->results["accepted"] != w.taps) {
    return Status::Internal("bench_check_failed", "not every tap of the day was booked");
  }
  auto store = db::SqliteSettlementStore::Open(bw.env().database());
  if (!store.ok()) return store.status();
  auto cutoff = (*store)->ClearingCutoff();
  if (!cutoff.ok()) return cutoff.status();
  BookedDay booked{ClearingDay(booked_s, *cutoff), w.taps,          bw.cards(),
                   w.spent_fen,                    pushed->seconds, bw.setup_seconds()};
  *out = std::move(*world);
  return booked;
}

Status SaveBookedDay(const BookedDay& b, const std::string& dir) {
  nlohmann::json j = {{"day", b.day},       {"taps", b.taps},
                      {"cards", b.cards},   {"spent_fen", b.spent_fen},
                      {"ingest_seconds", b.ingest_seconds}, {"setup_seconds", b.setup_seconds}};
  std::ofstream file(dir + kBookedDayFile);
  file << j.dump() << "\n";
  if (!file) return Status::Internal("write_failed", "cannot write " + dir + kBookedDayFile);
  return Status::Ok();
}

Result<BookedDay> LoadBookedDay(const std::string& dir) {
  std::ifstream file(dir + kBookedDayFile);
  if (!file) {
    return Status::NotFound("booked_day_not_found",
                            dir + kBookedDayFile + " is missing: book with --book-only first");
  }
  nlohmann::json j = nlohmann::json::parse(file, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Internal("booked_day_not_found", dir + kBookedDayFile + " is not JSON");
  }
  BookedDay b;
  b.day = j.value("day", int64_t{0});
  b.taps = j.value("taps", int64_t{0});
  b.cards = j.value("cards", int64_t{0});
  b.spent_fen = j.value("spent_fen", int64_t{0});
  b.ingest_seconds = j.value("ingest_seconds", 0.0);
  b.setup_seconds = j.value("setup_seconds", 0.0);
  return b;
}

// Settles the booked day on `env` (timed) and checks the report against what was booked.
Result<CommandOutput> SettleBookedDay(const SettleBenchOptions& o, const BookedDay& booked,
                                      Environment& env, const std::string& dir) {
  auto store = db::SqliteSettlementStore::Open(env.database());
  if (!store.ok()) return store.status();
  auto taps = db::SqliteTapStore::Open(env.database());
  if (!taps.ok()) return taps.status();
  // The page cache the day was booked with (a --booked-dir run opens a new connection).
  CITYCARD_RETURN_IF_ERROR((*taps)->SetCacheBytes(server::kServerCacheBytesDefault));
  const int64_t day = booked.day;
  // The bench has no medical bills, so the tap store's view is the whole day (`citycard
  // settle` adds the health store's bill count to it).
  // As `citycard settle` wires it (tools/cli/settle_commands.cc): the day's taps are read on
  // a connection of their own, on a second thread.
  db::SqliteSettlementReads reads(env.database());
  auto apart = OpenApartTapSource(env.database().path());
  if (!apart.ok()) return apart.status();
  // The taps' connection keeps SQLite's default page cache, as in `citycard settle`: the day's
  // taps are read once, and filling a large cache from a second thread cost more than the read.
  std::optional<TapStoreSettlementSource> shared;
  if (*apart == nullptr) shared.emplace(**taps, env.registry(), &reads);
  TapStoreSettlementSource& source = *apart != nullptr ? *(*apart)->source : *shared;
  SettlerConfig config;
  config.reads = &reads;
  config.tap_source_apart = *apart != nullptr;
  // The tap source's connection is idle once the day is read: the rebated cards are read and
  // the transfers planned over it on a second thread while the booking writes.
  config.plan_reads = *apart != nullptr ? (*apart)->reads.get() : nullptr;
  if (o.cap_fen > 0) config.daily_caps.push_back(DailyCap{Profile::adult, {RideMode::bus}, o.cap_fen});
  // Each step's wall seconds, from the end of the step before, and the process's CPU seconds
  // in it (all threads): on this shared machine the CPU seconds of a step vary less between
  // runs than its wall seconds (docs/benchmarks.md).
  nlohmann::json steps = nlohmann::json::object();
  nlohmann::json step_cpu = nlohmann::json::object();
  int64_t step_start = 0;
  double step_cpu_start = 0;
  config.on_step = [&steps, &step_cpu, &step_start, &step_cpu_start](std::string_view step) {
    steps[std::string(step)] = BenchSecondsSince(step_start);
    const double cpu_now = ProcessCpuSeconds();
    step_cpu[std::string(step)] = cpu_now - step_cpu_start;
    step_cpu_start = cpu_now;
    step_start = BenchNowNs();
  };
  SystemClock now;
  Settler settler(env.registry(), env.ledger(), env.ledger_store(), **store, source,
                  env.digester(), now, std::move(config));
  // As `citycard settle` does: the clock stops when the settlement is durable, and the WAL's
  // copy into the database file after it is timed apart (checkpoint_seconds).
  db::DeferredCheckpoint deferred(env.database());
  double cpu_start = ProcessCpuSeconds();
  int64_t start = BenchNowNs();
  step_start = start;
  step_cpu_start = cpu_start;
  auto outcome = settler.Settle(day);
  if (!outcome.ok()) return outcome.status();
  double seconds = BenchSecondsSince(start);
  double cpu = ProcessCpuSeconds() - cpu_start;
  const int64_t checkpoint_start = BenchNowNs();
  CITYCARD_RETURN_IF_ERROR(deferred.Finish());
  const double checkpoint_seconds = BenchSecondsSince(checkpoint_start);

  const OperatorSettlement& totals = outcome->record.report.totals;
  auto op = env.registry().FindOperator(kBenchOperatorId);
  if (!op.ok()) return op.status();
  auto payable = env.ledger().LookupAccount((*op)->payable_account_id);
  if (!payable.ok()) return payable.status();
  bool ok = totals.taps == booked.taps && totals.paid_fen == booked.spent_fen &&
            payable->balance_fen() == 0 && !outcome->repeated;
  const double rate = static_cast<double>(booked.taps) / seconds;
  CommandOutput out;
  out.json = {{"benchmark", "settle"},
              {"day", FormatDay(day)},
              {"cards", booked.cards},
              {"taps", booked.taps},
              {"seconds", seconds},
              {"cpu_seconds", cpu},
              {"taps_per_s", rate},
              {"seconds_for_10m_taps", 1e7 / rate},
              {"report_taps", totals.taps},
              {"paid_fen", totals.paid_fen},
              {"spent_fen", booked.spent_fen},
              {"capping_rebate_fen", totals.capping_rebate_fen},
              {"capped_cards", totals.capped_cards},
              {"net_fen", totals.net_fen},
              {"transfers", outcome->record.transfers},
              {"payable_after_fen", payable->balance_fen()},
              {"checks_ok", ok},
              {"checkpoint_seconds", checkpoint_seconds},
              {"step_seconds", steps},
              {"step_cpu_seconds", step_cpu},
              {"ingest_seconds", booked.ingest_seconds},
              {"setup_seconds", booked.setup_seconds},
              {"load_average", LoadAverage()},
              {"dir", dir}};
  out.text = fmt::format(
      "bench settle: clearing day {} of {} taps by {} cards settled in {:.2f} s ({:.0f} taps/s; "
      "10,000,000 taps at that rate: {:.1f} s), then the WAL checkpointed in {:.2f} s\n"
      "  {} cards capped, rebates {} fen, {} transfers; "
      "checks {}\n  setup {:.1f} s, day booked in {:.1f} s; load average {:.1f}\n",
      FormatDay(day), booked.taps, booked.cards, seconds, rate, 1e7 / rate, checkpoint_seconds,
      totals.capped_cards,
      totals.capping_rebate_fen, outcome->record.transfers, ok ? "ok" : "FAILED",
      booked.setup_seconds, booked.ingest_seconds, LoadAverage());
  if (!ok) {
    return Status::Internal("bench_check_failed",
                            fmt::format("report: {} taps, {} fen paid{}; booked {} taps, {} fen; "
                                        "payable after {} fen",
                                        totals.taps, totals.paid_fen,
                                        outcome->repeated ? " (settled before)" : "", booked.taps,
                                        booked.spent_fen, payable->balance_fen()));
  }
  return out;
}

}  // namespace

Result<CommandOutput> RunSettleBench(const SettleBenchOptions& o) {
  if (o.taps < 1 || o.taps > kBenchIngestTapsMax || o.cap_fen < 0) {
    return Status::Usage("invalid_bench_size",
                         fmt::format("--taps 1..{} and --cap-fen >= 0", kBenchIngestTapsMax));
  }
  if (!o.booked_dir.empty()) {
    auto booked = LoadBookedDay(o.booked_dir);
    if (!booked.ok()) return booked.status();
    GlobalOptions global;
    global.db_path = o.booked_dir + "/bench.db";
    global.keys_path = o.booked_dir + "/bench.keys";
    auto env = Environment::Open(global);
    if (!env.ok()) return env.status();
    return SettleBookedDay(o, *booked, **env, o.booked_dir);
  }
  std::unique_ptr<BenchWorld> world;
  auto booked = BookSettleDay(o, &world);
  if (!booked.ok()) return booked.status();
  BenchWorld& bw = *world;
  if (o.book_only) {
    CITYCARD_RETURN_IF_ERROR(SaveBookedDay(*booked, bw.dir()));
    CommandOutput out;
    out.json = {{"benchmark", "settle"}, {"booked_only", true},
                {"day", FormatDay(booked->day)}, {"taps", booked->taps},
                {"cards", booked->cards}, {"spent_fen", booked->spent_fen},
                {"ingest_seconds", booked->ingest_seconds}, {"dir", bw.dir()}};
    out.text = fmt::format("bench settle: clearing day {} of {} taps by {} cards booked in {:.1f} s "
                           "into {} (not settled)\n",
                           FormatDay(booked->day), booked->taps, booked->cards,
                           booked->ingest_seconds, bw.dir());
    return out;
  }
  auto out = SettleBookedDay(o, *booked, bw.env(), bw.dir());
  if (!o.keep) bw.RemoveFiles();
  if (out.ok() && !o.keep) out->json["dir"] = nullptr;
  return out;
}

}  // namespace citycard::cli
