// `citycard bench online` and `citycard bench idle` (docs/benchmarks.md).
//
// online: a scratch installation and an in-process server (tools/server/ingest_server.h, with
// the health service's identity checks wired as `citycard serve` wires them) on loopback TCP;
// `sessions` authenticated terminal sessions, driven by a few client threads with epoll, send
// online requests one after the other (or at a given total rate) for `seconds`: identity checks (hospital purpose) and top-up authorisations
// (phase one of the two-phase top-up: a durable pending transfer), each with its card proof.
// Reports requests/s and the latency of each request as its session saw it (send to answer):
// p50, p99, max. Checks that every request was answered ok and that the top-up clearing
// account holds exactly the authorised top-ups as pending debits.
//
// idle: the server in a child process (forked after the installation is made, so that its
// memory is its own), `sessions` sessions opened and authenticated by this process and left
// idle; reports the child's resident memory before and with the sessions.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <thread>

#include <pthread.h>
#include <sys/epoll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/account_plan.h"
#include "crypto/card_keys.h"
#include "crypto/mac.h"
#include "terminals/client.h"
#include "tools/cli/bench.h"
#include "tools/cli/bench_world.h"
#include "tools/cli/health_wiring.h"
#include "tools/server/ingest_server.h"

namespace citycard::cli {

namespace {

// Online benchmark cards hold ¥100, so that top-ups of kOnlineTopupFen stay under the purse
// limit for thousands of authorisations per card.
constexpr int64_t kOnlinePurseFen = 10'000;
constexpr int64_t kOnlineTopupFen = 100;
constexpr int64_t kOnlineTerminals = 256;
// Request ids are unique per terminal; sessions share terminals, so each session numbers its
// requests in a range of its own.
constexpr uint64_t kRequestIdsPerSession = 1'000'000'000;
// Sessions one client process of `bench idle` opens.
constexpr size_t kIdleSessionsPerClient = 2'000;

double Percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

double LoadAverageNow() {
  double loads[1] = {0};
  return ::getloadavg(loads, 1) == 1 ? loads[0] : -1;
}

Result<std::unique_ptr<terminals::TerminalClient>> ConnectSession(BenchWorld& world, size_t i,
                                                                   uint16_t port) {
  const BenchTerminal& t = world.terminals()[i % world.terminals().size()];
  terminals::ClientOptions co;
  co.terminal_id = t.id;
  co.key_version = t.key_version;
  co.terminal_key = t.plain_key;
  co.core_public_key = world.env().keys().CoreSigner().PublicKey();
  auto client = terminals::TerminalClient::ConnectTcp("127.0.0.1", port, co);
  if (!client.ok()) return client.status();
  CITYCARD_RETURN_IF_ERROR((*client)->Handshake());
  return std::move(*client);
}

// The card proof of `request` under the card's key.
void Prove(const crypto::Mac16& key, terminals::OnlineRequest& request) {
  crypto::AesCmac cmac(key);
  Bytes input = terminals::CardProofInput(request);
  crypto::Mac16 full = cmac.Compute(input);
  terminals::CardProof proof{};
  std::copy_n(full.begin(), proof.size(), proof.begin());
  std::visit([&](auto& r) {
    if constexpr (requires { r.card_proof; }) r.card_proof = proof;
  }, request);
}

struct SessionTally {
  std::vector<double> latency_ms;
  std::map<std::string, int64_t> codes;
  int64_t identity = 0;
  int64_t topups = 0;
  int64_t topups_ok = 0;
  int64_t failures = 0;  // transport failures
};

terminals::ResultCode ResponseCode(const terminals::OnlineResponse& response) {
  return std::visit([](const auto& r) { return r.code; }, response);
}

// How long a client thread waits without any answer before it calls its sessions broken.
constexpr int64_t kAnswerWaitNsMax = 30'000'000'000;

// One session as a client thread drives it.
struct BenchSession {
  terminals::TerminalClient* client = nullptr;
  std::mt19937_64 rng;
  uint64_t request_id = 0;
  terminals::OnlineRequest request;  // the one outstanding, when `outstanding`
  bool topup = false;
  bool outstanding = false;
  bool broken = false;
  int64_t sent_ns = 0;
  int64_t next_send_ns = 0;  // not before (with a rate)
};

struct DriveContext {
  BenchWorld& world;
  const Clock& clock;
  const std::vector<crypto::Mac16>& card_keys;
  const OnlineBenchOptions& options;
  int64_t deadline_ns;
};

// Makes and sends the session's next request. False when the send failed (tallied).
bool SendNext(const DriveContext& c, BenchSession& s, SessionTally& tally) {
  size_t card = s.rng() % c.card_keys.size();
  uint64_t card_no = BenchWorld::CardNo(static_cast<int64_t>(card));
  s.topup = s.rng() % 100 < c.options.topup_percent;
  if (s.topup) {
    terminals::TopupRequest r;
    r.request_id = ++s.request_id;
    r.card_no = card_no;
    r.balance_before_fen = kOnlinePurseFen;
    r.amount_fen = kOnlineTopupFen;
    r.time_s = c.clock.NowSeconds();
    s.request = r;
  } else {
    terminals::IdentityCheckRequest r;
    r.request_id = ++s.request_id;
    r.card_no = card_no;
    r.time_s = c.clock.NowSeconds();
    s.request = r;
  }
  Prove(c.card_keys[card], s.request);
  s.sent_ns = BenchNowNs();
  Status sent = s.client->SendMessage(terminals::TypeOf(s.request),
                                      terminals::EncodeOnline(s.request));
  if (!sent.ok()) {
    ++tally.failures;
    tally.codes[sent.code()]++;
    s.broken = true;
    return false;
  }
  s.outstanding = true;
  return true;
}

// Reads the answer of the session's outstanding request (its socket is readable).
void ReceiveAnswer(const DriveContext& c, BenchSession& s, SessionTally& tally) {
  auto message = s.client->ReceiveMessage();
  Result<terminals::OnlineResponse> response =
      message.ok() ? terminals::DecodeOnlineResponse(message->type, message->body)
                   : Result<terminals::OnlineResponse>(message.status());
  const int64_t now = BenchNowNs();
  s.outstanding = false;
  if (response.ok() && (!terminals::Answers(*response, s.request) ||
                        terminals::RequestIdOf(*response) != terminals::RequestIdOf(s.request))) {
    response = Status::BadInput("unexpected_message", "the response does not answer the request");
  }
  if (!response.ok()) {
    ++tally.failures;
    tally.codes[response.status().code()]++;
    s.broken = true;
    return;
  }
  tally.latency_ms.push_back(static_cast<double>(now - s.sent_ns) / 1e6);
  terminals::ResultCode code = ResponseCode(*response);
  tally.codes[std::string(terminals::ResultCodeName(code))]++;
  (s.topup ? tally.topups : tally.identity)++;
  if (s.topup && code == terminals::ResultCode::ok) ++tally.topups_ok;
  // With a rate, the session's next request is due one interval after this one was sent.
  const double rate = c.options.rate_per_s;
  const int64_t interval_ns =
      rate > 0 ? static_cast<int64_t>(static_cast<double>(c.options.sessions) * 1e9 / rate) : 0;
  s.next_send_ns = std::max(now, s.sent_ns + interval_ns);
}

// One client thread: its sessions each keep one request outstanding (or wait for their next
// slot, with a rate) until the deadline; the answers of the last requests are waited for.
// The thread waits for any of its sessions with epoll, so that a few threads carry a
// thousand sessions (a thread per session made the client the bottleneck).
void DriveSessions(const DriveContext& c, std::vector<BenchSession>& sessions,
                   SessionTally& tally) {
  ::pthread_setname_np(::pthread_self(), "cc-bench-client");
  const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) {
    tally.failures += static_cast<int64_t>(sessions.size());
    tally.codes["epoll_failed"] += static_cast<int64_t>(sessions.size());
    return;
  }
  for (size_t i = 0; i < sessions.size(); ++i) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = i;
    if (::epoll_ctl(epoll, EPOLL_CTL_ADD, sessions[i].client->descriptor(), &e) != 0) {
      ++tally.failures;
      tally.codes["epoll_failed"]++;
      sessions[i].broken = true;
    }
  }
  // Sessions waiting for their next slot, earliest first.
  using Due = std::pair<int64_t, size_t>;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due;
  const double interval_ns =
      c.options.rate_per_s > 0 ? static_cast<double>(c.options.sessions) * 1e9 / c.options.rate_per_s
                               : 0;
  for (size_t i = 0; i < sessions.size(); ++i) {
    if (sessions[i].broken) continue;
    // With a rate, the first requests are spread over one interval.
    int64_t offset = static_cast<int64_t>(static_cast<double>(sessions[i].rng() % 1'000'000) /
                                          1e6 * interval_ns);
    due.push({BenchNowNs() + offset, i});
  }
  size_t outstanding = 0;
  int64_t last_progress_ns = BenchNowNs();
  std::vector<epoll_event> events(std::max<size_t>(sessions.size(), 1));
  while (true) {
    int64_t now = BenchNowNs();
    while (!due.empty() && due.top().first <= now && now < c.deadline_ns) {
      BenchSession& s = sessions[due.top().second];
      due.pop();
      if (SendNext(c, s, tally)) ++outstanding;
    }
    if (outstanding == 0 && (now >= c.deadline_ns || due.empty())) break;
    if (now - last_progress_ns > kAnswerWaitNsMax) {
      tally.failures += static_cast<int64_t>(outstanding);
      tally.codes["timeout"] += static_cast<int64_t>(outstanding);
      break;
    }
    int64_t wait_ns = 100'000'000;
    if (!due.empty() && now < c.deadline_ns) wait_ns = std::min(wait_ns, due.top().first - now);
    // A timeout in nanoseconds (epoll_pwait2), not epoll_wait's milliseconds: rounded up to a
    // millisecond, every send due in the meantime left late and at once, in bursts of up to a
    // millisecond's worth of requests, which the server then queued.
    wait_ns = std::max<int64_t>(0, wait_ns);
    const timespec timeout{static_cast<time_t>(wait_ns / 1'000'000'000),
                           static_cast<long>(wait_ns % 1'000'000'000)};
    int n = ::epoll_pwait2(epoll, events.data(), static_cast<int>(events.size()), &timeout,
                           nullptr);
    for (int k = 0; k < n; ++k) {
      BenchSession& s = sessions[events[k].data.u64];
      if (!s.outstanding) continue;
      ReceiveAnswer(c, s, tally);
      --outstanding;
      last_progress_ns = BenchNowNs();
      if (s.broken) {
        ::epoll_ctl(epoll, EPOLL_CTL_DEL, s.client->descriptor(), nullptr);
        continue;
      }
      due.push({s.next_send_ns, static_cast<size_t>(events[k].data.u64)});
    }
  }
  ::close(epoll);
}

}  // namespace

Result<CommandOutput> RunOnlineBench(const OnlineBenchOptions& o) {
  if (o.sessions < 1 || o.sessions > kBenchOnlineSessionsMax || o.seconds <= 0 ||
      o.seconds > 3600 || o.topup_percent > 100 || o.client_threads < 1 ||
      o.client_threads > kBenchOnlineClientThreadsMax || !(o.rate_per_s >= 0)) {
    return Status::Usage("invalid_bench_size",
                         fmt::format("--sessions 1..{}, --seconds up to 3600, --topup-percent "
                                     "0..100, --client-threads 1..{}, --rate at least 0",
                                     kBenchOnlineSessionsMax, kBenchOnlineClientThreadsMax));
  }
  BenchWorldOptions wo;
  wo.dir = o.dir.empty() ? fmt::format("/tmp/citycard-bench-online-{}", ::getpid()) : o.dir;
  wo.cards = o.cards;
  wo.terminals = kOnlineTerminals;
  wo.purse_fen = kOnlinePurseFen;
  auto world = BenchWorld::Create(wo);
  if (!world.ok()) return world.status();
  BenchWorld& bw = **world;
  Environment& env = bw.env();
  std::vector<crypto::Mac16> card_keys;
  {
    auto master = env.keys().CardMasterKey(env.keys().CurrentCardKeyVersion());
    if (!master.ok()) return master.status();
    for (int64_t i = 0; i < bw.cards(); ++i) {
      card_keys.push_back(crypto::DeriveCardKey(*master, BenchWorld::CardNo(i)));
    }
  }
  auto health = HealthRuntime::Open(env);
  if (!health.ok()) return health.status();
  server::IngestServerOptions options;
  options.listen.push_back(server::ListenAddress{});
  options.io_threads = o.io_threads;
  options.limits.sessions_max = o.sessions + 16;
  options.backend.online_fallback = HealthOnlineFallback((*health)->service());
  JoinIdentityChecksToGroups(options.backend, (*health)->service());
  // Read before the writer thread owns the connection; the sessions' handshakes write nothing.
  const int64_t pages_before = env.database().PagesWritten();
  auto started = server::StartIngestServer(env.database(), env.ledger(), env.registry(),
                                           env.keys(), env.digester(), env.clock(),
                                           std::move(options));
  if (!started.ok()) return started.status();
  server::IngestServer& srv = **started;
  std::vector<std::unique_ptr<terminals::TerminalClient>> clients;
  for (size_t i = 0; i < o.sessions; ++i) {
    auto client = ConnectSession(bw, i, srv.ports()[0]);
    if (!client.ok()) return client.status();
    clients.push_back(std::move(*client));
  }

  const int64_t start = BenchNowNs();
  const int64_t deadline = start + static_cast<int64_t>(o.seconds * 1e9);
  DriveContext drive{bw, env.clock(), card_keys, o, deadline};
  const size_t client_threads = std::min(o.client_threads, o.sessions);
  std::vector<SessionTally> tallies(client_threads);
  std::vector<std::vector<BenchSession>> shares(client_threads);
  for (size_t k = 0; k < o.sessions; ++k) {
    BenchSession s;
    s.client = clients[k].get();
    s.rng.seed(o.seed * 1'000'003 + k);
    s.request_id = k * kRequestIdsPerSession;
    shares[k % client_threads].push_back(std::move(s));
  }
  std::vector<std::thread> threads;
  threads.reserve(client_threads);
  int64_t timed_start = BenchNowNs();
  for (size_t t = 0; t < client_threads; ++t) {
    threads.emplace_back([&, t] { DriveSessions(drive, shares[t], tallies[t]); });
  }
  for (std::thread& t : threads) t.join();
  double seconds = BenchSecondsSince(timed_start);
  for (auto& c : clients) c->Close();
  srv.Stop();
  const server::IngestBackendStats backend = srv.backend().stats();
  const int64_t pages_written = env.database().PagesWritten() - pages_before;

  SessionTally all;
  for (SessionTally& t : tallies) {
    all.latency_ms.insert(all.latency_ms.end(), t.latency_ms.begin(), t.latency_ms.end());
    for (const auto& [code, n] : t.codes) all.codes[code] += n;
    all.identity += t.identity;
    all.topups += t.topups;
    all.topups_ok += t.topups_ok;
    all.failures += t.failures;
  }
  std::sort(all.latency_ms.begin(), all.latency_ms.end());
  const int64_t requests = static_cast<int64_t>(all.latency_ms.size());
  auto clearing = env.ledger().LookupAccount(SystemAccountId(AccountKind::topup_clearing));
  if (!clearing.ok()) return clearing.status();
  const int64_t pending_fen = clearing->debits_pending;
  const bool ok = all.failures == 0 && all.codes["ok"] == requests &&
                  pending_fen == all.topups_ok * kOnlineTopupFen;
  const double rate = static_cast<double>(requests) / seconds;
  CommandOutput out;
  out.json = {{"benchmark", "online"},
              {"sessions", o.sessions},
              {"cards", bw.cards()},
              {"seconds", seconds},
              {"requests", requests},
              {"requests_per_s", rate},
              {"identity_checks", all.identity},
              {"topups", all.topups},
              {"topups_authorised", all.topups_ok},
              {"latency_ms", {{"p50", Percentile(all.latency_ms, 0.50)},
                              {"p99", Percentile(all.latency_ms, 0.99)},
                              {"max", all.latency_ms.empty() ? 0 : all.latency_ms.back()}}},
              {"results", all.codes},
              {"failures", all.failures},
              {"pending_topup_fen", pending_fen},
              {"checks_ok", ok},
              {"online_groups", backend.online_groups},
              {"online_requests_max_in_group", backend.online_max_in_group},
              {"writer_nice", backend.writer_nice},
              {"pages_written", pages_written},
              {"pages_written_per_request",
               requests > 0 ? static_cast<double>(pages_written) / static_cast<double>(requests)
                            : 0.0},
              {"setup_seconds", bw.setup_seconds()},
              {"load_average", LoadAverageNow()},
              {"dir", bw.dir()}};
  out.text = fmt::format(
      "bench online: {} sessions for {:.1f} s: {} requests ({} identity checks, {} top-ups), "
      "{:.0f} requests/s\n  latency p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms; checks {}; "
      "load average {:.1f}\n",
      o.sessions, seconds, requests, all.identity, all.topups, rate,
      Percentile(all.latency_ms, 0.50), Percentile(all.latency_ms, 0.99),
      all.latency_ms.empty() ? 0 : all.latency_ms.back(), ok ? "ok" : "FAILED", LoadAverageNow());
  health->reset();
  if (!o.keep) {
    bw.RemoveFiles();
    out.json["dir"] = nullptr;
  }
  if (!ok) {
    std::string codes;
    for (const auto& [code, n] : all.codes) codes += fmt::format(" {}={}", code, n);
    return Status::Internal("bench_check_failed",
                            fmt::format("{} requests answered:{}; pending top-ups {} fen for {} "
                                        "authorised",
                                        requests, codes, pending_fen, all.topups_ok));
  }
  return out;
}

namespace {

// The resident memory of process `pid` in bytes (VmRSS), or -1.
int64_t ResidentBytes(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

// The child: serves until its end of `stop` is closed; writes its port into `ready` first.
[[noreturn]] void ServeInChild(BenchWorld& world, size_t sessions, int ready, int stop) {
  Environment& env = world.env();
  server::IngestServerOptions options;
  options.listen.push_back(server::ListenAddress{});
  options.io_threads = 1;
  options.limits.sessions_max = sessions + 16;
  options.limits.idle_timeout_ms = 3'600'000;
  auto started = server::StartIngestServer(env.database(), env.ledger(), env.registry(),
                                           env.keys(), env.digester(), env.clock(),
                                           std::move(options));
  uint16_t port = started.ok() ? (*started)->ports()[0] : 0;
  if (::write(ready, &port, sizeof port) != sizeof port) ::_exit(3);
  char byte = 0;
  while (::read(stop, &byte, 1) > 0) {
  }
  if (started.ok()) (*started)->Stop();
  ::_exit(started.ok() ? 0 : 4);
}

}  // namespace

Result<CommandOutput> RunIdleBench(const IdleBenchOptions& o) {
  if (o.sessions < 1 || o.sessions > kBenchIdleSessionsMax) {
    return Status::Usage("invalid_bench_size",
                         fmt::format("--sessions 1..{}", kBenchIdleSessionsMax));
  }
  // Each session is a descriptor here (and one in the child).
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < o.sessions + 64) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, o.sessions + 64);
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  BenchWorldOptions wo;
  wo.dir = o.dir.empty() ? fmt::format("/tmp/citycard-bench-idle-{}", ::getpid()) : o.dir;
  wo.cards = 100;
  wo.terminals = kOnlineTerminals;
  auto world = BenchWorld::Create(wo);
  if (!world.ok()) return world.status();
  BenchWorld& bw = **world;
  int ready[2];
  int stop[2];
  if (::pipe(ready) != 0 || ::pipe(stop) != 0) return Status::Internal("fork_failed", "pipe()");
  pid_t child = ::fork();
  if (child < 0) return Status::Internal("fork_failed", "fork()");
  if (child == 0) {
    ::close(ready[0]);
    ::close(stop[1]);
    ServeInChild(bw, o.sessions, ready[1], stop[0]);
  }
  ::close(ready[1]);
  ::close(stop[0]);
  uint16_t port = 0;
  bool have_port = ::read(ready[0], &port, sizeof port) == sizeof port && port != 0;
  ::close(ready[0]);
  auto finish = [&] {
    ::close(stop[1]);
    int status = 0;
    ::waitpid(child, &status, 0);
  };
  if (!have_port) {
    finish();
    return Status::Internal("server_start_failed", "the server child did not start");
  }
  int64_t rss_before = ResidentBytes(child);
  // The sessions are opened by client processes of kIdleSessionsPerClient each (a client
  // needs several descriptors per session), forked now that no thread runs here.
  int64_t start = BenchNowNs();
  std::vector<pid_t> client_pids;
  std::vector<int> client_ready;
  int client_stop[2];
  if (::pipe(client_stop) != 0) {
    finish();
    return Status::Internal("fork_failed", "pipe()");
  }
  for (size_t from = 0; from < o.sessions; from += kIdleSessionsPerClient) {
    size_t to = std::min(o.sessions, from + kIdleSessionsPerClient);
    int fds[2];
    if (::pipe(fds) != 0) break;
    pid_t pid = ::fork();
    if (pid < 0) break;
    if (pid == 0) {
      ::close(fds[0]);
      ::close(client_stop[1]);
      std::vector<std::unique_ptr<terminals::TerminalClient>> mine;
      uint32_t connected = 0;
      for (size_t i = from; i < to; ++i) {
        auto client = ConnectSession(bw, i, port);
        if (!client.ok()) break;
        mine.push_back(std::move(*client));
        ++connected;
      }
      if (::write(fds[1], &connected, sizeof connected) != sizeof connected) ::_exit(3);
      char byte = 0;
      while (::read(client_stop[0], &byte, 1) > 0) {
      }
      for (auto& c : mine) c->Close();
      ::_exit(0);
    }
    ::close(fds[1]);
    client_pids.push_back(pid);
    client_ready.push_back(fds[0]);
  }
  ::close(client_stop[0]);
  size_t open = 0;
  for (int fd : client_ready) {
    uint32_t connected = 0;
    if (::read(fd, &connected, sizeof connected) == sizeof connected) open += connected;
    ::close(fd);
  }
  double connect_s = BenchSecondsSince(start);
  // Let the server settle (buffers released after the handshakes), then look.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  int64_t rss_with = ResidentBytes(child);
  ::close(client_stop[1]);
  for (pid_t pid : client_pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  finish();
  Status failed = open == o.sessions
                      ? Status::Ok()
                      : Status::Internal("connection_failed",
                                         fmt::format("only {} of {} sessions opened", open,
                                                     o.sessions));
  if (!failed.ok()) return failed;
  const double per_session = static_cast<double>(rss_with - rss_before) / static_cast<double>(open);
  CommandOutput out;
  out.json = {{"benchmark", "idle"},
              {"sessions", open},
              {"rss_before_bytes", rss_before},
              {"rss_with_sessions_bytes", rss_with},
              {"bytes_per_session", per_session},
              {"connect_seconds", connect_s},
              {"load_average", LoadAverageNow()},
              {"dir", bw.dir()}};
  out.text = fmt::format(
      "bench idle: {} authenticated idle sessions; server RSS {:.1f} MB before, {:.1f} MB with "
      "them ({:.1f} KB a session); connected in {:.1f} s\n",
      open, static_cast<double>(rss_before) / 1e6, static_cast<double>(rss_with) / 1e6,
      per_session / 1e3, connect_s);
  if (!o.keep) {
    bw.RemoveFiles();
    out.json["dir"] = nullptr;
  }
  return out;
}

}  // namespace citycard::cli
