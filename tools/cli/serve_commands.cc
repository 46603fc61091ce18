// `citycard serve [--listen HOST:PORT]... [--serial DEVICE[:BAUD]]...`: the core server (tap
// ingest behind the terminal protocol) until SIGINT or SIGTERM, then a clean stop: nothing
// acknowledged is lost, nothing is half written (tools/server/ingest_server.h).
#include <fmt/format.h>
#include <signal.h>

#include <cstdio>
#include <iostream>

#include "db/sqlite_settlement_store.h"
#include "db/sqlite_tap_store.h"
#include "tools/cli/bills_online.h"
#include "tools/cli/commands.h"
#include "tools/cli/environment.h"
#include "tools/cli/fares_wiring.h"
#include "tools/cli/health_wiring.h"
#include "tools/server/ingest_server.h"

namespace citycard::cli {

namespace {

inline constexpr char kListenDefault[] = "127.0.0.1:7600";

struct ServeOptions {
  std::vector<std::string> listen;
  std::vector<std::string> serial;
  size_t io_threads = 1;
  size_t group_records = server::kGroupRecordsMaxDefault;
  int64_t card_keys_merge_at = db::kRecentCardTapsMergeAt;
};

Result<server::ListenAddress> ParseListen(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::Usage("invalid_listen", "--listen wants HOST:PORT, not \"" + text + "\"");
  }
  server::ListenAddress a;
  a.host = text.substr(0, colon);
  std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    return Status::Usage("invalid_listen", "--listen port must be 0..65535, not \"" + port + "\"");
  }
  a.port = static_cast<uint16_t>(std::stoul(port));
  return a;
}

Result<server::SerialLine> ParseSerial(const std::string& text) {
  server::SerialLine line;
  size_t colon = text.rfind(':');
  line.device = text.substr(0, colon);
  if (colon != std::string::npos) {
    std::string baud = text.substr(colon + 1);
    if (baud.empty() || baud.size() > 7 || baud.find_first_not_of("0123456789") != std::string::npos) {
      return Status::Usage("invalid_serial", "--serial wants DEVICE[:BAUD], not \"" + text + "\"");
    }
    line.baud = static_cast<unsigned>(std::stoul(baud));
  }
  return line;
}

Result<CommandOutput> Serve(Environment& env, const ServeOptions& o) {
  server::IngestServerOptions options;
  std::vector<std::string> listen = o.listen;
  if (listen.empty() && o.serial.empty()) listen.push_back(kListenDefault);
  for (const std::string& text : listen) {
    auto a = ParseListen(text);
    if (!a.ok()) return a.status();
    options.listen.push_back(*a);
  }
  for (const std::string& text : o.serial) {
    auto s = ParseSerial(text);
    if (!s.ok()) return s.status();
    options.serial.push_back(*s);
  }
  // Taps are given their clearing day (and marked late) by the same cut-off `settle` uses.
  auto settlement = db::SqliteSettlementStore::Open(env.database());
  if (!settlement.ok()) return settlement.status();
  auto cutoff = (*settlement)->ClearingCutoff();
  if (!cutoff.ok()) return cutoff.status();
  options.backend.ingest.clearing_cutoff_s = *cutoff;
  options.io_threads = o.io_threads;
  options.backend.group_records_max = o.group_records;
  options.card_keys_merge_at = o.card_keys_merge_at;
  options.backend.housekeeping = [&env] {
    auto moved = env.card_office().ProcessDueReplacements();
    if (!moved.ok()) {
      std::fprintf(stderr, "citycard: replacement moves failed: %s\n",
                   moved.status().ToString().c_str());
    }
  };
  // Identity checks and medical settlements from hospital readers (docs/medical.md).
  auto health = HealthRuntime::Open(env);
  if (!health.ok()) return health.status();
  // Bill payments from kiosks (docs/bills.md), the rest to the health service.
  auto bills = BillsRuntime::Open(env);
  if (!bills.ok()) return bills.status();
  KeyFileCardProofVerifier bill_card_proofs(env.keys());
  options.backend.online_fallback = WithBillPayments(
      (*bills)->service(), bill_card_proofs, HealthOnlineFallback((*health)->service()));
  // Identity checks are answered in the writer's online groups, their records committed with
  // the group's top-ups (tools/server/ingest_backend.h).
  JoinIdentityChecksToGroups(options.backend, (*health)->service());
  // Fare tables for download, and the core's re-pricing with the table current at start
  // (a table loaded while serving is downloaded at once, and re-prices after a restart).
  auto fares = FaresRuntime::Open(env);
  if (!fares.ok()) return fares.status();
  options.backend.fare_table = [f = fares->get()] { return CurrentFareTable(f->store()); };
  options.backend.tap_pricer = (*fares)->pricer();
  // Block the stop signals in every thread the server starts, and wait for them here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto started = server::StartIngestServer(env.database(), env.ledger(), env.registry(),
                                           env.keys(), env.digester(), env.clock(),
                                           std::move(options));
  if (!started.ok()) return started.status();
  server::IngestServer& srv = **started;
  for (size_t i = 0; i < srv.ports().size(); ++i) {
    std::fprintf(stderr, "citycard: listening on %s:%u\n", listen[i].substr(0, listen[i].rfind(':')).c_str(),
                 srv.ports()[i]);
  }
  std::fflush(stderr);
  int received = 0;
  sigwait(&signals, &received);
  std::fprintf(stderr, "citycard: stopping (signal %d)\n", received);
  srv.Stop();
  auto stats = srv.backend().stats();
  auto server_stats = srv.server_stats();
  CommandOutput out;
  out.json["stopped"] = true;
  out.json["ports"] = srv.ports();
  out.json["groups"] = stats.groups;
  out.json["batches"] = stats.batches;
  out.json["records"] = stats.records;
  out.json["failed_groups"] = stats.failures;
  out.json["sessions"] = server_stats.sessions_started;
  out.text = fmt::format("Stopped: {} records in {} batches, {} group commits, {} failed.\n",
                         stats.records, stats.batches, stats.groups, stats.failures);
  return out;
}

}  // namespace

void RegisterServeCommands(CLI::App& app, AppContext& context) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* serve = app.add_subcommand("serve", "serve card readers until SIGINT or SIGTERM");
  serve->add_option("--listen", o->listen, "HOST:PORT to accept TCP on (repeatable; port 0: any)");
  serve->add_option("--serial", o->serial, "DEVICE[:BAUD] to serve a serial line on (repeatable)");
  serve->add_option("--io-threads", o->io_threads, "I/O threads (default 1)")
      ->check(CLI::Range(size_t{1}, size_t{64}));
  serve->add_option("--group-records", o->group_records,
                    "most records per group commit (default 32768)")
      ->check(CLI::Range(size_t{1}, kIngestRecordsMax));
  serve->add_option("--card-keys-merge-at", o->card_keys_merge_at,
                    "merge the recent (card, CTC) keys once this many are recent (default "
                    "262144; docs/ingest.md \"Storage\")")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  serve->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return Serve(env, *o); });
  });
}

}  // namespace citycard::cli
