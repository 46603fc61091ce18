// Tap ingest end to end: simulated cards and readers (tools/sim) upload thousands of taps,
// duplicates and re-uploads mixed in, through the real protocol over loopback TCP to the
// in-process server (tools/server/ingest_server.h) on a real SQLite database; afterwards every
// purse in the ledger equals what the simulated card itself holds, to the fen.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <map>
#include <random>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/national_id.h"
#include "terminals/client.h"
#include "tests/support/cli_runner_support.h"
#include "tools/cli/environment.h"
#include "tools/server/ingest_server.h"
#include "tools/sim/sim_card.h"
#include "tools/sim/sim_terminal.h"

namespace citycard {
namespace {

// An in-process server over `env`'s database, listening on a free loopback port.
std::unique_ptr<server::IngestServer> StartServer(cli::Environment& env, size_t io_threads = 1) {
  server::IngestServerOptions options;
  options.listen.push_back(server::ListenAddress{});
  options.io_threads = io_threads;
  auto started = server::StartIngestServer(env.database(), env.ledger(), env.registry(),
                                           env.keys(), env.digester(), env.clock(),
                                           std::move(options));
  REQUIRE(started.ok());
  return std::move(*started);
}

struct World {
  World() {
    cli::GlobalOptions options;
    options.db_path = box.db_path();
    options.keys_path = box.keys_path();
    auto created = cli::Environment::Create(options);
    REQUIRE(created.ok());
    env = std::move(*created);
    OperatorRequest op;
    op.id = "BUS1";
    op.name = "Bus company";
    REQUIRE(env->terminal_office().AddOperator(op).ok());
  }

  sim::SimTerminal AddTerminal(const std::string& id) {
    TerminalRequest request;
    request.id = id;
    request.operator_id = "BUS1";
    auto issued = env->terminal_office().RegisterTerminal(request);
    REQUIRE(issued.ok());
    keys[id] = issued->plain_key;
    return sim::SimTerminal(id, "BUS1", issued->plain_key, static_cast<uint8_t>(issued->version));
  }

  sim::SimCard AddCard(int64_t balance_fen) {
    std::string first17 = fmt::format("32128119900101{:03d}", ++holders);
    IssueRequest request;
    request.national_id = first17 + NationalIdCheckChar(first17);
    request.name = "张三";
    auto card = env->card_office().IssueCard(request);
    REQUIRE(card.ok());
    REQUIRE(env->card_office().Topup(card->card.card_no, balance_fen, fmt::format("r{}", holders)).ok());
    uint8_t version = env->keys().CurrentCardKeyVersion();
    auto master = env->keys().CardMasterKey(version);
    REQUIRE(master.ok());
    return sim::SimCard::Issue(*master, version, CardNumberToInt(card->card.card_no),
                               Profile::adult, balance_fen);
  }

  std::unique_ptr<terminals::TerminalClient> Connect(const std::string& id, uint16_t port) {
    terminals::ClientOptions options;
    options.terminal_id = id;
    options.terminal_key = keys[id];
    options.core_public_key = env->keys().CoreSigner().PublicKey();
    auto client = terminals::TerminalClient::ConnectTcp("127.0.0.1", port, options);
    REQUIRE(client.ok());
    REQUIRE((*client)->Handshake().ok());
    return std::move(*client);
  }

  int64_t Purse(uint64_t card_no) {
    auto account = env->ledger().LookupAccount(AccountIdFor(AccountKind::card_purse, card_no));
    REQUIRE(account.ok());
    return account->balance_fen();
  }

  testing::CliSandbox box{CITYCARD_BIN};
  std::unique_ptr<cli::Environment> env;
  std::map<std::string, Bytes> keys;
  int holders = 0;
};

TEST_CASE("thousands of simulated taps with duplicates and re-uploads leave every purse exact",
          "[tools][ingest][e2e]") {
  World w;
  std::vector<sim::SimTerminal> readers;
  for (int i = 0; i < 4; ++i) readers.push_back(w.AddTerminal(fmt::format("T{}", i + 1)));
  std::vector<sim::SimCard> cards;
  for (int i = 0; i < 60; ++i) cards.push_back(w.AddCard(20'000));

  auto started = StartServer(*w.env, /*io_threads=*/2);
  auto& srv = *started;
  std::vector<std::unique_ptr<terminals::TerminalClient>> clients;
  for (auto& r : readers) clients.push_back(w.Connect(r.terminal_id(), srv.ports()[0]));

  std::mt19937 rng(20240301);
  std::map<std::string, std::vector<TapRecord>> acked;  // per terminal, for re-uploads
  std::map<terminals::ResultCode, int> results;
  int64_t taps = 0;
  int64_t spent_fen = 0;
  uint32_t batch_id = 0;
  auto upload = [&](size_t t, bool flush) {
    sim::SimTerminal& reader = readers[t];
    while (reader.queued() >= 48 || (flush && reader.queued() > 0)) {
      std::vector<TapRecord> batch = reader.TakeBatch(48);
      // Mix in records acknowledged before: a reader that lost its acknowledgement.
      auto& old = acked[reader.terminal_id()];
      if (!old.empty() && rng() % 3 == 0) batch.push_back(old[rng() % old.size()]);
      auto ack = clients[t]->UploadBatch(++batch_id, batch);
      REQUIRE(ack.ok());
      REQUIRE(ack->results.size() == batch.size());
      // Sometimes the acknowledgement is "lost" and the same batch goes again.
      if (rng() % 4 == 0) {
        auto again = clients[t]->UploadBatch(++batch_id, batch);
        REQUIRE(again.ok());
        for (terminals::ResultCode code : again->results) {
          CHECK(code == terminals::ResultCode::duplicate);
        }
      }
      std::vector<uint32_t> done;
      for (size_t i = 0; i < batch.size(); ++i) {
        results[ack->results[i]]++;
        REQUIRE(terminals::IsFinalRecordResult(ack->results[i]));
        done.push_back(batch[i].terminal_counter);
        old.push_back(batch[i]);
      }
      reader.Acknowledge(done);
    }
  };
  for (int i = 0; i < 4000; ++i) {
    size_t t = rng() % readers.size();
    sim::SimCard& card = cards[rng() % cards.size()];
    sim::TapRequest request;
    request.amount_fen = 100 + static_cast<int64_t>(rng() % 300);
    request.full_fare_fen = request.amount_fen;
    request.time_s = w.env->clock().NowSeconds();
    auto tap = readers[t].Tap(card, request);
    if (!tap.ok()) continue;  // the card cannot pay: the reader refuses the ride
    ++taps;
    spent_fen += request.amount_fen;
    upload(t, false);
  }
  for (size_t t = 0; t < readers.size(); ++t) upload(t, true);
  for (auto& c : clients) c->Close();
  srv.Stop();

  int64_t accepted = results[terminals::ResultCode::accepted];
  CHECK(accepted == taps);
  CHECK(results[terminals::ResultCode::duplicate] > 0);
  CHECK(accepted + results[terminals::ResultCode::duplicate] ==
        static_cast<int64_t>([&] {
          int64_t n = 0;
          for (auto& [code, count] : results) n += count;
          return n;
        }()));
  for (const sim::SimCard& card : cards) {
    INFO(CardNumberFromInt(card.card_no()));
    CHECK(w.Purse(card.card_no()) == card.balance_fen());
  }
  auto op = w.env->registry().FindOperator("BUS1");
  auto payable = w.env->ledger().LookupAccount((*op)->payable_account_id);
  CHECK(payable->balance_fen() == spent_fen);
  auto stats = srv.backend().stats();
  CHECK(stats.failures == 0);
  CHECK(stats.records > static_cast<uint64_t>(taps));
}

TEST_CASE("after a restart the server's checker reads the cold purses ahead and every purse "
          "stays exact",
          "[tools][ingest][e2e]") {
  World w;
  std::vector<sim::SimTerminal> readers;
  for (int i = 0; i < 2; ++i) readers.push_back(w.AddTerminal(fmt::format("T{}", i + 1)));
  std::vector<sim::SimCard> cards;
  for (int i = 0; i < 40; ++i) cards.push_back(w.AddCard(5'000));
  // A second environment over the same files: a ledger with nothing cached, as a server
  // started afresh has.
  cli::GlobalOptions reopen;
  reopen.db_path = w.box.db_path();
  reopen.keys_path = w.box.keys_path();
  auto restarted = cli::Environment::Open(reopen);
  REQUIRE(restarted.ok());
  cli::Environment& env = **restarted;

  auto started = StartServer(env);
  auto& srv = *started;
  std::vector<std::unique_ptr<terminals::TerminalClient>> clients;
  for (auto& r : readers) clients.push_back(w.Connect(r.terminal_id(), srv.ports()[0]));
  int64_t spent_fen = 0;
  uint32_t batch_id = 0;
  // Every card taps three times, at alternating readers, eight records a batch.
  for (int round = 0; round < 3; ++round) {
    for (size_t c = 0; c < cards.size(); ++c) {
      size_t t = (c + static_cast<size_t>(round)) % readers.size();
      sim::TapRequest request;
      request.amount_fen = 100 + static_cast<int64_t>(c);
      request.full_fare_fen = request.amount_fen;
      request.time_s = env.clock().NowSeconds();
      REQUIRE(readers[t].Tap(cards[c], request).ok());
      spent_fen += request.amount_fen;
    }
    for (size_t t = 0; t < readers.size(); ++t) {
      while (readers[t].queued() > 0) {
        std::vector<TapRecord> batch = readers[t].TakeBatch(8);
        auto ack = clients[t]->UploadBatch(++batch_id, batch);
        REQUIRE(ack.ok());
        std::vector<uint32_t> done;
        for (size_t i = 0; i < batch.size(); ++i) {
          CHECK(ack->results[i] == terminals::ResultCode::accepted);
          done.push_back(batch[i].terminal_counter);
        }
        readers[t].Acknowledge(done);
      }
    }
  }
  for (auto& c : clients) c->Close();
  srv.Stop();
  // The first batch of each reader is checked by the writer (the checker had not read its
  // terminal yet); most cards' first taps came later, their purses read ahead.
  CHECK(srv.backend().stats().batches_cards_ahead > 0);
  CHECK(env.ledger().AccountsTakenAhead() > 20);
  for (const sim::SimCard& card : cards) {
    INFO(CardNumberFromInt(card.card_no()));
    auto account = env.ledger().LookupAccount(AccountIdFor(AccountKind::card_purse, card.card_no()));
    REQUIRE(account.ok());
    CHECK(account->balance_fen() == card.balance_fen());
    CHECK(w.Purse(card.card_no()) == card.balance_fen());  // as another process reads it
  }
  auto op = env.registry().FindOperator("BUS1");
  auto payable = env.ledger().LookupAccount((*op)->payable_account_id);
  CHECK(payable->balance_fen() == spent_fen);
}

}  // namespace
TEST_CASE("A reader's heartbeat tells the core which denylist it holds, so a blocked card's "
          "later tap is honoured with an alert",
          "[tools][ingest][e2e]") {
  World w;
  sim::SimTerminal reader = w.AddTerminal("T1");
  sim::SimCard card = w.AddCard(1'000);
  REQUIRE(w.env->card_office().Block(fmt::format("{}", card.card_no()), BlockReason::lost).ok());

  auto started = StartServer(*w.env);
  auto& srv = *started;
  auto client = w.Connect("T1", srv.ports()[0]);
  // The reader learns the current denylist (with the block) and says so, at its time `knew_s`.
  auto current = client->SendHeartbeat(terminals::Heartbeat{});
  REQUIRE(current.ok());
  REQUIRE(current->versions.denylist_version > 0);
  const int64_t knew_s = w.env->clock().NowMs() / 1000 - 60;
  terminals::Heartbeat told;
  told.terminal_time_ms = knew_s * 1000;
  told.versions = current->versions;
  REQUIRE(client->SendHeartbeat(told).ok());

  sim::TapRequest before;
  before.amount_fen = 200;
  before.full_fare_fen = 200;
  before.time_s = knew_s - 120;  // before the reader could have known: honoured quietly
  sim::TapRequest after = before;
  after.time_s = knew_s + 30;  // after: honoured (the ride happened), with an alert
  std::vector<TapRecord> batch = {*reader.Tap(card, before), *reader.Tap(card, after)};
  auto ack = client->UploadBatch(1, batch);
  REQUIRE(ack.ok());
  CHECK(ack->results == std::vector<terminals::ResultCode>{
                            terminals::ResultCode::accepted,
                            terminals::ResultCode::accepted_with_alert});
  client->Close();
  srv.Stop();

  AlertFilter filter;
  filter.card_no = card.card_no();
  auto alerts = srv.tap_store().ListAlerts(filter);
  REQUIRE(alerts.ok());
  REQUIRE(alerts->size() == 1);
  CHECK(alerts->front().kind == AlertKind::blocked_card_tap);
  CHECK(alerts->front().terminal_id == "T1");
  CHECK(w.Purse(card.card_no()) == 600);
}

}  // namespace citycard
