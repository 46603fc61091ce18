// Abuse of a live server (the in-process server of tools/server/ingest_server.h on a real
// SQLite database, over loopback TCP, with small limits so that timeouts come fast) while a
// well-behaved terminal keeps uploading on a thread of its own and must keep getting
// acknowledgements: forged TAC, forged MAC, replayed frame, replayed batch, counter rollback,
// cloned card, unknown and disabled terminal, blocked card, oversize frame, random garbage,
// a client sending one byte a second, and 2,000 connections opened and left idle. Each is
// refused with its own code or cut off within the limits, and the ledger and the tap store
// hold, afterwards, exactly what the well-behaved terminal and the attacks' honest set-up taps
// booked (docs/ingest.md "Crash and abuse tests").
#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/ingest.h"
#include "core/national_id.h"
#include "crypto/mac.h"
#include "db/sqlite_tap_store.h"
#include "terminals/client.h"
#include "terminals/crc32.h"
#include "terminals/frame_codec.h"
#include "tests/support/cli_runner_support.h"
#include "tools/cli/environment.h"
#include "tools/server/ingest_server.h"
#include "tools/sim/sim_card.h"
#include "tools/sim/sim_terminal.h"

namespace citycard {
namespace {

using terminals::ResultCode;
using SteadyClock = std::chrono::steady_clock;

// Small limits, so that the timeouts of the test come within seconds.
constexpr int64_t kHandshakeTimeoutMs = 2'000;
constexpr int64_t kIdleTimeoutMs = 2'500;
constexpr size_t kSessionsMax = 256;
constexpr uint32_t kCardCounterWindow = 8;
constexpr int kIdleConnections = 2'000;
// Slack for a loaded 2-core machine on top of each limit (and its error-write grace).
constexpr int64_t kSlackMs = 2'000;
// The longest the well-behaved terminal may wait for an acknowledgement.
constexpr int64_t kGoodAckGapMsMax = 5'000;

int64_t MsSince(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

Bytes RandomBytes(std::mt19937& rng, size_t n) {
  Bytes bytes(n);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  return bytes;
}

// ---- raw sockets ----------------------------------------------------------------------

int ConnectRaw(uint16_t port, bool non_blocking) {
  int fd = ::socket(AF_INET, SOCK_STREAM | (non_blocking ? SOCK_NONBLOCK : 0), 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  REQUIRE((rc == 0 || (non_blocking && errno == EINPROGRESS)));
  return fd;
}

void SendAll(int fd, ByteView bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    REQUIRE(n > 0);
    sent += static_cast<size_t>(n);
  }
}

// What the server said on a plain (not yet secured) connection before it closed it.
struct RawEnd {
  std::optional<ResultCode> code;  // the code of its error frame, if it sent one
  bool closed = false;             // it closed the connection
  int64_t after_ms = 0;            // when it closed, after the start of the wait
};

// Reads from each fd until the server closes it or `timeout_ms` passes.
std::vector<RawEnd> ReadUntilClosed(const std::vector<int>& fds, int64_t timeout_ms) {
  std::vector<RawEnd> ends(fds.size());
  std::vector<terminals::FrameDecoder> decoders(fds.size());
  std::vector<bool> open(fds.size(), true);
  size_t open_count = fds.size();
  auto start = SteadyClock::now();
  std::vector<pollfd> polls;
  std::vector<size_t> index;
  uint8_t buffer[4096];
  while (open_count > 0 && MsSince(start) < timeout_ms) {
    polls.clear();
    index.clear();
    for (size_t i = 0; i < fds.size(); ++i) {
      if (!open[i]) continue;
      polls.push_back(pollfd{fds[i], POLLIN, 0});
      index.push_back(i);
    }
    int ready = ::poll(polls.data(), polls.size(), 100);
    if (ready <= 0) continue;
    for (size_t k = 0; k < polls.size(); ++k) {
      if (polls[k].revents == 0) continue;
      size_t i = index[k];
      ssize_t n = ::recv(fds[i], buffer, sizeof buffer, MSG_DONTWAIT);
      if (n > 0) {
        decoders[i].Feed(ByteView(buffer, static_cast<size_t>(n)));
        terminals::Frame frame;
        terminals::DecodeError error;
        while (decoders[i].Next(&frame, &error) == terminals::DecodeStatus::complete) {
          if (frame.type != static_cast<uint8_t>(terminals::FrameType::error)) continue;
          auto message = terminals::ErrorMessage::Decode(frame.payload);
          if (message.ok()) ends[i].code = message->code;
        }
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      ends[i].closed = true;  // EOF, or a reset
      ends[i].after_ms = MsSince(start);
      open[i] = false;
      --open_count;
    }
  }
  return ends;
}

// ---- the installation -----------------------------------------------------------------

struct Installation {
  Installation() {
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
    uint8_t version = env->keys().CurrentCardKeyVersion();
    auto master = env->keys().CardMasterKey(version);
    REQUIRE(master.ok());
    card_master.assign(master->begin(), master->end());
    card_key_version = version;
  }

  Bytes AddTerminal(const std::string& id) {
    TerminalRequest request;
    request.id = id;
    request.operator_id = "BUS1";
    auto issued = env->terminal_office().RegisterTerminal(request);
    REQUIRE(issued.ok());
    keys[id] = issued->plain_key;
    return issued->plain_key;
  }

  sim::SimTerminal Terminal(const std::string& id) {
    return sim::SimTerminal(id, "BUS1", keys.at(id), 1);
  }

  sim::SimCard AddCard(int64_t balance_fen) {
    std::string first17 = fmt::format("32128119900101{:03d}", ++holders);
    IssueRequest request;
    request.national_id = first17 + NationalIdCheckChar(first17);
    request.name = "张三";
    auto card = env->card_office().IssueCard(request);
    REQUIRE(card.ok());
    REQUIRE(env->card_office().Topup(card->card.card_no, balance_fen, fmt::format("r{}", holders)).ok());
    return sim::SimCard::Issue(card_master, card_key_version, CardNumberToInt(card->card.card_no),
                               Profile::adult, balance_fen);
  }

  int64_t Purse(uint64_t card_no) {
    auto account = env->ledger().LookupAccount(AccountIdFor(AccountKind::card_purse, card_no));
    REQUIRE(account.ok());
    return account->balance_fen();
  }

  int64_t Payable() {
    auto op = env->registry().FindOperator("BUS1");
    REQUIRE(op.ok());
    auto account = env->ledger().LookupAccount((*op)->payable_account_id);
    REQUIRE(account.ok());
    return account->balance_fen();
  }

  int64_t BookedTaps() {
    auto taps = db::SqliteTapStore::Open(env->database());
    REQUIRE(taps.ok());
    int64_t day = ClearingDay(env->clock().NowSeconds());
    auto totals = (*taps)->DayTotals(day);
    REQUIRE(totals.ok());
    int64_t count = 0;
    for (const DayOperatorTotals& t : *totals) count += t.taps;
    return count;
  }

  terminals::ClientOptions Options(const std::string& id, int64_t timeout_ms = 10'000) {
    terminals::ClientOptions options;
    options.terminal_id = id;
    options.terminal_key = keys.count(id) ? keys.at(id) : Bytes(32, 0x42);
    options.core_public_key = env->keys().CoreSigner().PublicKey();
    options.timeout_ms = timeout_ms;
    return options;
  }

  std::unique_ptr<terminals::TerminalClient> Connect(const std::string& id, int64_t timeout_ms = 10'000) {
    auto client = terminals::TerminalClient::ConnectTcp("127.0.0.1", port, Options(id, timeout_ms));
    REQUIRE(client.ok());
    return std::move(*client);
  }

  std::unique_ptr<terminals::TerminalClient> Authenticated(const std::string& id) {
    auto client = Connect(id);
    Status status = client->Handshake();
    INFO(status.ToString());
    REQUIRE(status.ok());
    return client;
  }

  testing::CliSandbox box{CITYCARD_BIN};
  std::unique_ptr<cli::Environment> env;
  std::map<std::string, Bytes> keys;
  Bytes card_master;
  uint8_t card_key_version = 1;
  int holders = 0;
  uint16_t port = 0;
};

// ---- the well-behaved terminal --------------------------------------------------------

// Uploads batches of honest taps on its own thread until stopped; every record must be
// accepted. Catch's assertions are not thread-safe: problems are kept and checked later.
class GoodTerminal {
 public:
  GoodTerminal(Installation& w, const std::string& id, std::vector<sim::SimCard> cards)
      : reader_(w.Terminal(id)), cards_(std::move(cards)), client_(w.Authenticated(id)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~GoodTerminal() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int64_t acks() const { return acks_; }
  int64_t records() const { return records_; }
  int64_t paid_fen() const { return paid_fen_; }
  int64_t ack_gap_ms_max() const { return gap_ms_max_; }
  std::string problem() const {
    std::lock_guard lock(mutex_);
    return problem_;
  }

 private:
  void Fail(std::string text) {
    std::lock_guard lock(mutex_);
    if (problem_.empty()) problem_ = std::move(text);
  }

  void Run() {
    std::mt19937 rng(7);
    auto last_ack = SteadyClock::now();
    uint32_t batch_id = 0;
    while (!stop_) {
      int64_t batch_fen = 0;
      for (int i = 0; i < 8; ++i) {
        sim::TapRequest request;
        request.amount_fen = 100 + static_cast<int64_t>(rng() % 200);
        request.full_fare_fen = request.amount_fen;
        request.time_s = std::time(nullptr);
        if (reader_.Tap(cards_[next_card_++ % cards_.size()], request).ok()) {
          batch_fen += request.amount_fen;
        }
      }
      std::vector<TapRecord> batch = reader_.TakeBatch(terminals::kRecordsPerBatchMax);
      if (batch.empty()) {
        Fail("the good terminal's cards ran out of money");
        return;
      }
      auto ack = client_->UploadBatch(++batch_id, batch);
      if (!ack.ok()) {
        Fail("upload failed: " + ack.status().ToString());
        return;
      }
      std::vector<uint32_t> done;
      for (size_t i = 0; i < batch.size(); ++i) {
        if (ack->results[i] != ResultCode::accepted) {
          Fail(fmt::format("record TTC {} answered {}", batch[i].terminal_counter,
                           terminals::ResultCodeName(ack->results[i])));
          return;
        }
        done.push_back(batch[i].terminal_counter);
      }
      reader_.Acknowledge(done);
      gap_ms_max_ = std::max<int64_t>(gap_ms_max_, MsSince(last_ack));
      last_ack = SteadyClock::now();
      records_ += static_cast<int64_t>(batch.size());
      paid_fen_ += batch_fen;
      ++acks_;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    client_->Close();
  }

  sim::SimTerminal reader_;
  std::vector<sim::SimCard> cards_;
  size_t next_card_ = 0;
  std::unique_ptr<terminals::TerminalClient> client_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acks_{0};
  std::atomic<int64_t> records_{0};
  std::atomic<int64_t> paid_fen_{0};
  std::atomic<int64_t> gap_ms_max_{0};
  mutable std::mutex mutex_;
  std::string problem_;
  std::thread thread_;
};

// Each attack's phase must see the good terminal acknowledged at least once more.
void RequireGoodProgress(GoodTerminal& good, int64_t acks_before) {
  INFO(good.problem());
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(kGoodAckGapMsMax);
  while (good.acks() <= acks_before && SteadyClock::now() < deadline && good.problem().empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(good.problem().empty());
  REQUIRE(good.acks() > acks_before);
}

// Uploads one batch and returns its per-record results.
std::vector<ResultCode> Upload(terminals::TerminalClient& client, uint32_t batch_id,
                               const std::vector<TapRecord>& records) {
  auto ack = client.UploadBatch(batch_id, records);
  INFO(ack.status().ToString());
  REQUIRE(ack.ok());
  return ack->results;
}

void RequireRefusal(terminals::TerminalClient& client, const std::string& code) {
  auto message = client.ReceiveMessage();
  REQUIRE_FALSE(message.ok());
  REQUIRE(message.status().code() == code);
}

sim::TapRequest Fare(int64_t amount_fen) {
  sim::TapRequest request;
  request.amount_fen = amount_fen;
  request.full_fare_fen = amount_fen;
  request.time_s = std::time(nullptr);
  return request;
}

}  // namespace

TEST_CASE("a live server refuses every abuse, posts nothing for it, and keeps serving an honest "
          "terminal",
          "[tools][abuse][serve]") {
  // The 2,000 idle connections are both ends in this process.
  rlimit files{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &files) == 0);
  if (files.rlim_cur < 8192 && files.rlim_max > files.rlim_cur) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, 8192);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &files) == 0);
  }
  // Both ends of each idle connection, and room for the rest. A hard limit too low for that
  // (not so on the project's machines) makes the test open fewer, and say so.
  const int idle_connections = static_cast<int>(std::min<rlim_t>(
      kIdleConnections, files.rlim_cur > 512 ? (files.rlim_cur - 512) / 2 : 0));
  if (idle_connections < kIdleConnections) {
    WARN("RLIMIT_NOFILE " << files.rlim_cur << " allows only " << idle_connections
                          << " idle connections");
  }
  REQUIRE(idle_connections > static_cast<int>(kSessionsMax));

  Installation w;
  w.AddTerminal("T-GOOD");
  w.AddTerminal("T-EVIL");
  w.AddTerminal("T-OFF");
  REQUIRE(w.env->terminal_office().DisableTerminal("T-OFF").ok());
  std::vector<sim::SimCard> good_cards;
  for (int i = 0; i < 40; ++i) good_cards.push_back(w.AddCard(80'000));
  sim::SimCard forged_tac_victim = w.AddCard(10'000);
  sim::SimCard forged_mac_victim = w.AddCard(10'000);
  sim::SimCard replay_card = w.AddCard(10'000);
  sim::SimCard rollback_card = w.AddCard(10'000);
  sim::SimCard cloned = w.AddCard(10'000);
  sim::SimCard blocked = w.AddCard(10'000);
  sim::SimCard race_card = w.AddCard(10'000);
  sim::SimCard race_clone = w.AddCard(10'000);
  REQUIRE(w.env->card_office().Block(CardNumberFromInt(blocked.card_no()), BlockReason::stolen).ok());
  const std::vector<const sim::SimCard*> attacked = {&forged_tac_victim, &forged_mac_victim,
                                                     &replay_card,       &rollback_card,
                                                     &cloned,            &blocked,
                                                     &race_card,         &race_clone};
  std::map<uint64_t, int64_t> purse_before;
  for (const sim::SimCard* card : attacked) purse_before[card->card_no()] = w.Purse(card->card_no());
  const int64_t payable_before = w.Payable();
  const int64_t booked_before = w.BookedTaps();

  server::IngestServerOptions options;
  options.listen.push_back(server::ListenAddress{});
  options.io_threads = 2;
  options.limits.handshake_timeout_ms = kHandshakeTimeoutMs;
  options.limits.idle_timeout_ms = kIdleTimeoutMs;
  options.limits.sessions_max = kSessionsMax;
  options.limits.shutdown_grace_ms = 2'000;
  options.backend.ingest.card_counter_window = kCardCounterWindow;
  auto started = server::StartIngestServer(w.env->database(), w.env->ledger(), w.env->registry(),
                                           w.env->keys(), w.env->digester(), w.env->clock(),
                                           std::move(options));
  REQUIRE(started.ok());
  server::IngestServer& srv = **started;
  w.port = srv.ports()[0];
  auto test_start = SteadyClock::now();

  GoodTerminal good(w, "T-GOOD", good_cards);
  std::mt19937 rng(20261102);
  sim::SimTerminal evil = w.Terminal("T-EVIL");
  uint32_t batch_id = 1000;
  // What the attacks booked honestly (their set-up taps) and what must not be booked.
  int64_t honest_fen = 0;
  int64_t honest_taps = 0;
  std::vector<uint32_t> refused_ttcs;
  std::map<std::string, std::string> outcomes;  // attack -> how it ended, for the summary

  {
    INFO("forged TAC: a card made with a key that is not the card's");
    int64_t acks = good.acks();
    Bytes wrong_key(16, 0x5a);
    sim::SimCard forged(forged_tac_victim.card_no(), wrong_key, w.card_key_version, Profile::adult,
                        forged_tac_victim.balance_fen());
    auto record = evil.Tap(forged, Fare(200));
    REQUIRE(record.ok());
    auto client = w.Authenticated("T-EVIL");
    REQUIRE(Upload(*client, ++batch_id, {*record}) == std::vector<ResultCode>{ResultCode::bad_tac});
    evil.Acknowledge(std::vector<uint32_t>{record->terminal_counter});
    refused_ttcs.push_back(record->terminal_counter);
    outcomes["forged TAC"] = "bad_tac";
    RequireGoodProgress(good, acks);
  }
  {
    INFO("forged MAC: a record signed with a key that is not the terminal's");
    int64_t acks = good.acks();
    // Far above the terminal's own counters, so that no honest record ever takes its TTC.
    sim::SimTerminal impostor("T-EVIL", "BUS1", Bytes(32, 0x17), 1, evil.counter() + 5'000);
    auto record = impostor.Tap(forged_mac_victim, Fare(200));
    REQUIRE(record.ok());
    auto client = w.Authenticated("T-EVIL");
    REQUIRE(Upload(*client, ++batch_id, {*record}) ==
            std::vector<ResultCode>{ResultCode::bad_terminal_mac});
    refused_ttcs.push_back(record->terminal_counter);
    // A forged MAC is not the terminal's word: its counter does not move.
    outcomes["forged MAC"] = "bad_terminal_mac";
    RequireGoodProgress(good, acks);
  }
  std::vector<TapRecord> replayed;
  {
    INFO("replayed frame: the same secured frame sent twice in one session");
    int64_t acks = good.acks();
    for (int i = 0; i < 3; ++i) {
      auto record = evil.Tap(replay_card, Fare(150));
      REQUIRE(record.ok());
      replayed.push_back(*record);
      honest_fen += 150;
      ++honest_taps;
    }
    auto client = w.Authenticated("T-EVIL");
    REQUIRE(Upload(*client, ++batch_id, replayed) ==
            std::vector<ResultCode>(3, ResultCode::accepted));
    Bytes frame = client->last_sent_frame();
    REQUIRE(client->SendRawBytes(frame).ok());
    RequireRefusal(*client, "sequence_error");
    outcomes["replayed frame"] = "sequence_error (session closed)";
    RequireGoodProgress(good, acks);
  }
  {
    INFO("replayed batch: the same records in a new session");
    int64_t acks = good.acks();
    auto client = w.Authenticated("T-EVIL");
    REQUIRE(Upload(*client, ++batch_id, replayed) ==
            std::vector<ResultCode>(3, ResultCode::duplicate));
    evil.Acknowledge(std::vector<uint32_t>{replayed[0].terminal_counter,
                                           replayed[1].terminal_counter,
                                           replayed[2].terminal_counter});
    outcomes["replayed batch"] = "duplicate";
    RequireGoodProgress(good, acks);
  }
  {
    INFO("counter rollback: a card counter far below the highest booked one");
    int64_t acks = good.acks();
    sim::SimCard old_self = rollback_card;  // the chip as it was, before 40 more taps
    for (int i = 0; i < 40; ++i) {
      REQUIRE(evil.Tap(rollback_card, Fare(10)).ok());
      honest_fen += 10;
      ++honest_taps;
    }
    auto client = w.Authenticated("T-EVIL");
    std::vector<TapRecord> honest = evil.TakeBatch(terminals::kRecordsPerBatchMax);
    REQUIRE(Upload(*client, ++batch_id, honest) ==
            std::vector<ResultCode>(honest.size(), ResultCode::accepted));
    std::vector<uint32_t> done;
    for (const TapRecord& r : honest) done.push_back(r.terminal_counter);
    evil.Acknowledge(done);
    auto rollback = evil.Tap(old_self, Fare(10));
    REQUIRE(rollback.ok());
    REQUIRE(rollback->card_counter + kCardCounterWindow < rollback_card.counter());
    REQUIRE(Upload(*client, ++batch_id, {*rollback}) ==
            std::vector<ResultCode>{ResultCode::card_counter_too_old});
    evil.Acknowledge(std::vector<uint32_t>{rollback->terminal_counter});
    refused_ttcs.push_back(rollback->terminal_counter);
    outcomes["counter rollback"] = "card_counter_too_old";
    RequireGoodProgress(good, acks);
  }
  {
    INFO("cloned card: two transactions under one card counter");
    int64_t acks = good.acks();
    sim::SimCard clone = cloned;
    auto original = evil.Tap(cloned, Fare(300));
    REQUIRE(original.ok());
    honest_fen += 300;
    ++honest_taps;
    auto copy = evil.Tap(clone, Fare(120));
    REQUIRE(copy.ok());
    REQUIRE(copy->card_counter == original->card_counter);
    auto client = w.Authenticated("T-EVIL");
    REQUIRE(Upload(*client, ++batch_id, {*original, *copy}) ==
            std::vector<ResultCode>{ResultCode::accepted, ResultCode::cloned_card});
    evil.Acknowledge(std::vector<uint32_t>{original->terminal_counter, copy->terminal_counter});
    refused_ttcs.push_back(copy->terminal_counter);
    outcomes["cloned card"] = "cloned_card";
    RequireGoodProgress(good, acks);
  }
  {
    INFO("unknown and disabled terminals cannot open a session");
    int64_t acks = good.acks();
    auto unknown = w.Connect("T-NOBODY");
    REQUIRE(unknown->Handshake().code() == "unknown_terminal");
    auto disabled = w.Connect("T-OFF");
    REQUIRE(disabled->Handshake().code() == "terminal_disabled");
    // A wrong key for a real terminal is refused in the handshake too.
    terminals::ClientOptions wrong = w.Options("T-EVIL");
    wrong.terminal_key = Bytes(32, 0x99);
    auto impostor = terminals::TerminalClient::ConnectTcp("127.0.0.1", w.port, wrong);
    REQUIRE(impostor.ok());
    REQUIRE((*impostor)->Handshake().code() == "authentication_failed");
    outcomes["unknown terminal"] = "unknown_terminal";
    outcomes["disabled terminal"] = "terminal_disabled";
    RequireGoodProgress(good, acks);
  }
  {
    INFO("blocked card: its online top-up is refused; its offline ride is honoured with an alert");
    int64_t acks = good.acks();
    auto client = w.Authenticated("T-EVIL");
    terminals::TopupRequest topup;
    topup.request_id = 1;
    topup.card_no = blocked.card_no();
    topup.card_counter = blocked.counter();
    topup.balance_before_fen = blocked.balance_fen();
    topup.amount_fen = 5'000;
    topup.time_s = std::time(nullptr);
    Bytes body = topup.Encode();
    body.resize(body.size() - terminals::kCardProofBytes);
    crypto::Mac16 proof = crypto::AesCmac(blocked.key()).Compute(body);
    std::copy_n(proof.begin(), topup.card_proof.size(), topup.card_proof.begin());
    auto answer = client->SendOnline(topup);
    REQUIRE(answer.ok());
    const auto* refused = std::get_if<terminals::TopupAuthorisation>(&*answer);
    REQUIRE(refused != nullptr);
    REQUIRE(refused->code == ResultCode::card_blocked);
    REQUIRE(refused->authorisation_id == 0);
    // The reader says it holds the denylist that lists the card; its tap after that is still
    // booked (the ride happened, the card paid offline) but raises an alert.
    auto beat = client->SendHeartbeat(terminals::Heartbeat{});
    REQUIRE(beat.ok());
    terminals::Heartbeat holds;
    holds.terminal_time_ms = static_cast<int64_t>(std::time(nullptr)) * 1000 - 5'000;
    holds.versions = beat->versions;
    REQUIRE(client->SendHeartbeat(holds).ok());
    auto ride = evil.Tap(blocked, Fare(250));
    REQUIRE(ride.ok());
    REQUIRE(Upload(*client, ++batch_id, {*ride}) ==
            std::vector<ResultCode>{ResultCode::accepted_with_alert});
    evil.Acknowledge(std::vector<uint32_t>{ride->terminal_counter});
    honest_fen += 250;
    ++honest_taps;
    outcomes["blocked card"] = "card_blocked (top-up); accepted_with_alert (offline ride)";
    RequireGoodProgress(good, acks);
  }
  {
    INFO("oversize frame: a header announcing more than the frame limit");
    int64_t acks = good.acks();
    Bytes header = {terminals::kFrameMagic0, terminals::kFrameMagic1, terminals::kProtocolVersion,
                    static_cast<uint8_t>(terminals::FrameType::batch_upload)};
    ByteWriter writer(&header);
    writer.U32(static_cast<uint32_t>(terminals::kFramePayloadBytesMax + 1));
    writer.U32(terminals::Crc32(ByteView(header).first(8)));
    auto secured = w.Authenticated("T-EVIL");
    REQUIRE(secured->SendRawBytes(header).ok());
    RequireRefusal(*secured, "frame_too_large");
    int raw = ConnectRaw(w.port, false);
    SendAll(raw, header);
    auto ends = ReadUntilClosed({raw}, kSlackMs);
    ::close(raw);
    REQUIRE(ends[0].closed);
    REQUIRE(ends[0].code == ResultCode::frame_too_large);
    outcomes["oversize frame"] = "frame_too_large";
    RequireGoodProgress(good, acks);
  }
  {
    INFO("random garbage: skipped as line noise, and the session cut at its deadline");
    int64_t acks = good.acks();
    // Before the handshake: garbage never makes a hello, so the handshake time runs out.
    int raw = ConnectRaw(w.port, false);
    Bytes garbage = RandomBytes(rng, 64 * 1024);
    SendAll(raw, garbage);
    auto ends = ReadUntilClosed({raw}, kHandshakeTimeoutMs + 1'000 + kSlackMs);
    ::close(raw);
    REQUIRE(ends[0].closed);
    REQUIRE(ends[0].code == ResultCode::handshake_timeout);
    // After it: garbage is no frame, so the idle time runs out.
    auto secured = w.Authenticated("T-EVIL");
    auto t0 = SteadyClock::now();
    REQUIRE(secured->SendRawBytes(RandomBytes(rng, 64 * 1024)).ok());
    RequireRefusal(*secured, "idle_timeout");
    REQUIRE(MsSince(t0) <= kIdleTimeoutMs + 1'000 + kSlackMs);
    // A frame with a valid header whose body is garbage fails its CRC.
    Bytes frame = terminals::EncodeFrame(static_cast<uint8_t>(terminals::FrameType::hello),
                                         RandomBytes(rng, 40));
    frame[20] ^= 0xff;
    raw = ConnectRaw(w.port, false);
    SendAll(raw, frame);
    ends = ReadUntilClosed({raw}, kSlackMs);
    ::close(raw);
    REQUIRE(ends[0].code == ResultCode::malformed_frame);
    outcomes["random garbage"] = "handshake_timeout / idle_timeout; malformed_frame for a bad CRC";
    RequireGoodProgress(good, acks);
  }
  {
    INFO("one byte a second: only complete frames count, so the deadline does not move");
    int64_t acks = good.acks();
    // Before the handshake, literally one byte a second until the server hangs up.
    Bytes hello = terminals::EncodeFrame(static_cast<uint8_t>(terminals::FrameType::hello),
                                         terminals::Hello{"T-EVIL", 1, {}}.Encode());
    int raw = ConnectRaw(w.port, false);
    auto t0 = SteadyClock::now();
    RawEnd end;
    for (size_t i = 0; i < hello.size() && !end.closed; ++i) {
      if (::send(raw, hello.data() + i, 1, MSG_NOSIGNAL) != 1) break;
      end = ReadUntilClosed({raw}, 1'000)[0];
    }
    ::close(raw);
    int64_t cut_ms = MsSince(t0);
    REQUIRE(end.closed);
    // The server sends handshake_timeout and closes; a byte sent after its close makes the
    // kernel answer with a reset, which may discard the error frame before it is read. The
    // cut itself, and when it came, is what must hold.
    if (end.code.has_value()) REQUIRE(*end.code == ResultCode::handshake_timeout);
    REQUIRE(cut_ms >= kHandshakeTimeoutMs - 100);
    REQUIRE(cut_ms <= kHandshakeTimeoutMs + 1'000 + kSlackMs);
    // After it, a heartbeat trickled a byte a second: cut at the idle limit after the last
    // complete frame (the handshake's), not after the last byte (2 s later), which would be
    // at kIdleTimeoutMs + 2,000.
    auto secured = w.Authenticated("T-EVIL");
    auto t1 = SteadyClock::now();
    Bytes beat = *secured->SealFrame(terminals::FrameType::heartbeat, terminals::Heartbeat{}.Encode());
    for (size_t i = 0; i < 3; ++i) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
      REQUIRE(secured->SendRawBytes(ByteView(beat).subspan(i, 1)).ok());
    }
    RequireRefusal(*secured, "idle_timeout");
    int64_t idle_cut_ms = MsSince(t1);
    REQUIRE(idle_cut_ms >= kIdleTimeoutMs - 100);
    REQUIRE(idle_cut_ms < kIdleTimeoutMs + 2'000);
    outcomes["one byte a second"] = fmt::format(
        "handshake_timeout after {} ms; idle_timeout after {} ms", cut_ms, idle_cut_ms);
    RequireGoodProgress(good, acks);
  }
  {
    INFO("a batch replayed at the same moment on a second session, and a clone racing its card");
    int64_t acks = good.acks();
    auto first = w.Authenticated("T-EVIL");
    auto second = w.Authenticated("T-EVIL");
    auto upload_both = [&](const std::vector<TapRecord>& a, const std::vector<TapRecord>& b) {
      std::vector<ResultCode> results_b;
      std::string problem_b;
      std::thread other([&] {
        auto ack = second->UploadBatch(++batch_id + 50'000, b);
        if (ack.ok()) results_b = ack->results;
        else problem_b = ack.status().ToString();
      });
      auto ack = first->UploadBatch(++batch_id, a);
      other.join();
      INFO(problem_b << " " << ack.status().ToString());
      REQUIRE(ack.ok());
      REQUIRE(problem_b.empty());
      return std::make_pair(ack->results, results_b);
    };
    for (int round = 0; round < 20; ++round) {
      std::vector<TapRecord> batch;
      std::vector<uint32_t> done;
      for (int i = 0; i < 8; ++i) {
        auto record = evil.Tap(race_card, Fare(20));
        REQUIRE(record.ok());
        batch.push_back(*record);
        done.push_back(record->terminal_counter);
      }
      evil.Acknowledge(done);
      auto [a, b] = upload_both(batch, batch);
      for (size_t i = 0; i < batch.size(); ++i) {
        INFO("round " << round << " record " << i);
        bool one_each = (a[i] == ResultCode::accepted && b[i] == ResultCode::duplicate) ||
                        (a[i] == ResultCode::duplicate && b[i] == ResultCode::accepted);
        REQUIRE(one_each);
      }
      honest_fen += 8 * 20;
      honest_taps += 8;
    }
    for (int round = 0; round < 10; ++round) {
      // Same amount, so that whichever is booked the card's chain goes on the same.
      sim::SimCard twin = race_clone;
      auto original = evil.Tap(race_clone, Fare(30));
      auto copy = evil.Tap(twin, Fare(30));
      REQUIRE(original.ok());
      REQUIRE(copy.ok());
      evil.Acknowledge(std::vector<uint32_t>{original->terminal_counter, copy->terminal_counter});
      auto [a, b] = upload_both({*original}, {*copy});
      INFO("round " << round << ": " << terminals::ResultCodeName(a[0]) << ", "
                    << terminals::ResultCodeName(b[0]));
      bool one_booked = (a[0] == ResultCode::accepted && b[0] == ResultCode::cloned_card) ||
                        (a[0] == ResultCode::cloned_card && b[0] == ResultCode::accepted);
      REQUIRE(one_booked);
      refused_ttcs.push_back(a[0] == ResultCode::accepted ? copy->terminal_counter
                                                          : original->terminal_counter);
      honest_fen += 30;
      honest_taps += 1;
    }
    outcomes["concurrent replay"] = "one accepted, one duplicate (20 batches of 8)";
    outcomes["concurrent clone"] = "one accepted, one cloned_card (10 pairs)";
    RequireGoodProgress(good, acks);
  }
  {
    INFO("2,000 connections opened and left idle");
    int64_t acks = good.acks();
    // Only the honest terminal's session is left from the attacks before.
    auto quiet_deadline = SteadyClock::now() + std::chrono::milliseconds(kIdleTimeoutMs + kSlackMs);
    while (srv.server_stats().sessions_active > 1 && SteadyClock::now() < quiet_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(srv.server_stats().sessions_active == 1);
    terminals::ServerStats stats_before = srv.server_stats();
    // First every free session: the server is then full.
    const int fill = static_cast<int>(kSessionsMax) - 1;
    std::vector<int> fds;
    for (int i = 0; i < fill; ++i) fds.push_back(ConnectRaw(w.port, true));
    auto full_deadline = SteadyClock::now() + std::chrono::milliseconds(kHandshakeTimeoutMs / 2);
    while (srv.server_stats().sessions_active < kSessionsMax && SteadyClock::now() < full_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    REQUIRE(srv.server_stats().sessions_active == kSessionsMax);
    // While it is full, a newcomer is told so at once, and the terminal already in keeps going.
    auto newcomer = w.Connect("T-EVIL");
    REQUIRE(newcomer->Handshake().code() == "too_many_sessions");
    RequireGoodProgress(good, good.acks());
    // Then the rest, all turned away while the first ones hold the sessions. (On a machine
    // slow enough that turning them away outlasts the handshake limit, freed sessions admit
    // some of them: they end with handshake_timeout; never more than the limit at once.)
    uint64_t active_max = 0;
    for (int i = fill; i < idle_connections; ++i) {
      fds.push_back(ConnectRaw(w.port, true));
      if (i % 50 == 0) active_max = std::max(active_max, srv.server_stats().sessions_active);
    }
    auto settle_deadline = SteadyClock::now() + std::chrono::milliseconds(kHandshakeTimeoutMs);
    while (SteadyClock::now() < settle_deadline) {
      terminals::ServerStats s = srv.server_stats();
      active_max = std::max(active_max, s.sessions_active);
      if (s.sessions_refused - stats_before.sessions_refused >=
          static_cast<uint64_t>(idle_connections - fill)) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    REQUIRE(active_max <= kSessionsMax);
    RequireGoodProgress(good, good.acks());
    auto ends = ReadUntilClosed(fds, kHandshakeTimeoutMs + 1'000 + 2 * kSlackMs);
    for (int fd : fds) ::close(fd);
    std::map<std::string, int> codes;
    for (const RawEnd& end : ends) {
      REQUIRE(end.closed);
      codes[end.code ? std::string(terminals::ResultCodeName(*end.code)) : "none"]++;
    }
    INFO(nlohmann::json(codes).dump());
    for (const auto& [code, count] : codes) {
      REQUIRE((code == "too_many_sessions" || code == "handshake_timeout"));
    }
    REQUIRE(codes["too_many_sessions"] + codes["handshake_timeout"] == idle_connections);
    REQUIRE(codes["handshake_timeout"] >= fill);
    REQUIRE(codes["too_many_sessions"] >= 1);
    terminals::ServerStats after = srv.server_stats();
    REQUIRE(after.sessions_refused - stats_before.sessions_refused >=
            static_cast<uint64_t>(codes["too_many_sessions"]));
    // The idle ones are gone; a new terminal gets in at once.
    auto fresh = w.Authenticated("T-EVIL");
    REQUIRE(fresh->SendHeartbeat(terminals::Heartbeat{}).ok());
    outcomes[fmt::format("{} idle connections", idle_connections)] =
        fmt::format("{} too_many_sessions, {} handshake_timeout, at most {} sessions at once",
                    codes["too_many_sessions"], codes["handshake_timeout"], active_max);
    RequireGoodProgress(good, acks);
  }

  good.Stop();
  INFO(good.problem());
  REQUIRE(good.problem().empty());
  REQUIRE(good.ack_gap_ms_max() <= kGoodAckGapMsMax);
  terminals::ServerStats final_stats = srv.server_stats();
  REQUIRE(final_stats.security_events > 0);
  srv.Stop();
  REQUIRE(srv.backend().stats().failures == 0);

  // Nothing of the attacks was posted: the payable and the tap store moved by exactly what the
  // honest taps paid, and each attacked card lost exactly its honest rides.
  REQUIRE(w.Payable() - payable_before == good.paid_fen() + honest_fen);
  REQUIRE(w.BookedTaps() - booked_before == good.records() + honest_taps);
  REQUIRE(w.Purse(forged_tac_victim.card_no()) == purse_before[forged_tac_victim.card_no()]);
  REQUIRE(w.Purse(forged_mac_victim.card_no()) == purse_before[forged_mac_victim.card_no()]);
  REQUIRE(w.Purse(replay_card.card_no()) == purse_before[replay_card.card_no()] - 450);
  REQUIRE(w.Purse(rollback_card.card_no()) == purse_before[rollback_card.card_no()] - 400);
  REQUIRE(w.Purse(cloned.card_no()) == purse_before[cloned.card_no()] - 300);
  REQUIRE(w.Purse(blocked.card_no()) == purse_before[blocked.card_no()] - 250);
  REQUIRE(w.Purse(race_card.card_no()) == purse_before[race_card.card_no()] - 20 * 8 * 20);
  REQUIRE(w.Purse(race_clone.card_no()) == purse_before[race_clone.card_no()] - 10 * 30);
  auto taps = db::SqliteTapStore::Open(w.env->database());
  REQUIRE(taps.ok());
  for (uint32_t ttc : refused_ttcs) {
    INFO("T-EVIL TTC " << ttc);
    auto stored = (*taps)->FindByTerminalCounter("T-EVIL", ttc);
    REQUIRE(stored.ok());
    REQUIRE_FALSE(stored->has_value());
  }
  std::string summary = fmt::format(
      "abuse: {:.1f} s; the honest terminal had {} batches ({} records) acknowledged, longest "
      "wait {} ms\n",
      MsSince(test_start) / 1000.0, good.acks(), good.records(), good.ack_gap_ms_max());
  for (const auto& [attack, how] : outcomes) summary += fmt::format("  {}: {}\n", attack, how);
  WARN(summary);
}

}  // namespace citycard
