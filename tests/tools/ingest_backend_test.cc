// The ingest backend's checker thread (IngestBackendOptions::precheck_authenticator): batches
// are answered as the writer alone would answer them, and their proofs are checked ahead. Its
// online groups: top-up authorisations and identity checks answered after one commit.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <thread>

#include "core/account_plan.h"
#include "core/card_number.h"

#include "tests/support/ingest_fixture_support.h"
#include "tools/server/ingest_backend.h"

using namespace citycard;
using citycard::testing::FakeCard;
using citycard::testing::IngestFixture;

namespace {

const Bytes kWrapKey(16, 0x5a);

Result<std::vector<terminals::ResultCode>> Submit(server::IngestBackend& backend,
                                                  const std::string& terminal_id,
                                                  std::vector<TapRecord> records) {
  std::promise<Result<std::vector<terminals::ResultCode>>> answer;
  auto future = answer.get_future();
  terminals::BatchSubmission batch;
  batch.terminal.terminal_id = terminal_id;
  batch.terminal.operator_id = "BUS1";
  batch.records = std::move(records);
  backend.SubmitBatch(std::move(batch), [&answer](Result<std::vector<terminals::ResultCode>> r) {
    answer.set_value(std::move(r));
  });
  return future.get();
}

void Handshake(server::IngestBackend& backend, const std::string& terminal_id) {
  std::promise<bool> found;
  auto future = found.get_future();
  backend.LookupTerminal(terminal_id, [&found](Result<terminals::TerminalAuthInfo> info) {
    found.set_value(info.ok());
  });
  REQUIRE(future.get());
}

// Online requests handed to the backend before it starts: its writer then takes them all as
// one online group.
struct OnlineCalls {
  std::vector<std::promise<terminals::OnlineResponse>> answers;
  std::vector<std::future<terminals::OnlineResponse>> futures;
  explicit OnlineCalls(size_t n) : answers(n) {
    for (auto& a : answers) futures.push_back(a.get_future());
  }
};

void Ask(server::IngestBackend& backend, OnlineCalls& calls, size_t i,
         terminals::OnlineRequest request) {
  terminals::TerminalIdentity terminal;
  terminal.terminal_id = "K1";
  terminal.operator_id = "KIOSKS";
  backend.HandleOnline(terminal, std::move(request),
                       [&calls, i](terminals::OnlineResponse r) { calls.answers[i].set_value(r); });
}

// A top-up request with the fake card proof (testing::FakeTapAuthenticator::VerifyCardProof).
terminals::TopupRequest Topup(const FakeCard& card, uint64_t request_id, int64_t amount_fen,
                              bool good_proof = true) {
  terminals::TopupRequest r;
  r.request_id = request_id;
  r.card_no = card.card_no;
  r.card_counter = card.counter;
  r.balance_before_fen = card.balance_fen;
  r.amount_fen = amount_fen;
  r.time_s = 1'700'000'000;
  Bytes input = terminals::CardProofInput(terminals::OnlineRequest(r));
  Bytes all = {'p', 'r', 'o', 'o', 'f', 1};
  ByteWriter(&all).U64(card.card_no);
  all.insert(all.end(), input.begin(), input.end());
  Sha256Digest d = testing::FakeDigester().Sha256(all);
  std::copy_n(d.begin(), r.card_proof.size(), r.card_proof.begin());
  if (!good_proof) r.card_proof[0] ^= 1;
  return r;
}

terminals::IdentityCheckRequest Identity(const FakeCard& card, uint64_t request_id) {
  terminals::IdentityCheckRequest r;
  r.request_id = request_id;
  r.card_no = card.card_no;
  return r;
}

int64_t PendingOf(IngestFixture& x, uint64_t card_no) {
  auto account = x.ledger.LookupAccount(AccountIdFor(AccountKind::card_purse, card_no));
  REQUIRE(account.ok());
  return account->credits_pending;
}

// Identity checks answered in the online groups by a stand-in for the health service: each
// takes a registry sequence number inside the group's transaction (as the real one appends
// its audit record there).
void JoinFakeIdentityChecks(server::IngestBackendOptions& options, IngestFixture& x,
                            std::atomic<int>* calls) {
  options.joins_group = [](const terminals::OnlineRequest& r) {
    return std::holds_alternative<terminals::IdentityCheckRequest>(r);
  };
  options.online_in_group = [&x, calls](const terminals::TerminalIdentity&,
                                        const terminals::OnlineRequest& r) {
    ++*calls;
    terminals::IdentityCheckResponse out;
    out.request_id = terminals::RequestIdOf(r);
    out.code = x.registry.NextSequence("identity_check").ok() ? terminals::ResultCode::ok
                                                                : terminals::ResultCode::internal_error;
    return terminals::OnlineResponse(out);
  };
}

}  // namespace

TEST_CASE("The ingest backend's checker checks batches ahead and the answers are the writer's",
          "[tools][server][ingest]") {
  IngestFixture x;
  testing::FakeTapAuthenticator ahead;
  server::IngestBackendOptions options;
  options.precheck_authenticator = &ahead;
  // The records are made before the writer starts: from then on it alone uses the stores.
  FakeCard card = x.IssueCard(1000);
  TapRecord good = x.Tap(card, "T1", 200);
  TapRecord forged = x.Tap(card, "T1", 100);
  forged.terminal_mac[0] ^= 1;
  server::IngestBackend backend(x.registry, x.ledger, x.tap_store, x.auth, kWrapKey, x.digester,
                                x.clock, options);
  REQUIRE(backend.Start().ok());
  Handshake(backend, "T1");  // the checker knows the session's terminal from here on
  auto codes = Submit(backend, "T1", {good, forged});
  REQUIRE(codes.ok());
  CHECK(*codes == std::vector<terminals::ResultCode>{terminals::ResultCode::accepted,
                                                     terminals::ResultCode::bad_terminal_mac});
  auto again = Submit(backend, "T1", {good});
  REQUIRE(again.ok());
  CHECK(*again == std::vector<terminals::ResultCode>{terminals::ResultCode::duplicate});
  backend.Stop();
  CHECK(backend.stats().records_checked_ahead == 3);
  CHECK(backend.stats().records == 3);
  CHECK(x.Purse(card.card_no) == 800);
}

TEST_CASE("The ingest backend's writer checks the batches of a terminal its checker does not know",
          "[tools][server][ingest]") {
  IngestFixture x;
  testing::FakeTapAuthenticator ahead;
  server::IngestBackendOptions options;
  options.precheck_authenticator = &ahead;
  FakeCard card = x.IssueCard(1000);
  TapRecord tap = x.Tap(card, "T1", 200);
  server::IngestBackend backend(x.registry, x.ledger, x.tap_store, x.auth, kWrapKey, x.digester,
                                x.clock, options);
  REQUIRE(backend.Start().ok());
  auto codes = Submit(backend, "T1", {tap});
  REQUIRE(codes.ok());
  CHECK(*codes == std::vector<terminals::ResultCode>{terminals::ResultCode::accepted});
  backend.Stop();
  CHECK(backend.stats().records_checked_ahead == 0);
  CHECK(x.Purse(card.card_no) == 800);
}

TEST_CASE("Stopping the ingest backend answers every batch its checker still held",
          "[tools][server][ingest]") {
  IngestFixture x;
  testing::FakeTapAuthenticator ahead;
  server::IngestBackendOptions options;
  options.precheck_authenticator = &ahead;
  FakeCard card = x.IssueCard(10'000);
  constexpr int kBatches = 20;
  std::vector<TapRecord> taps;
  for (int i = 0; i < kBatches; ++i) taps.push_back(x.Tap(card, "T1", 10));
  server::IngestBackend backend(x.registry, x.ledger, x.tap_store, x.auth, kWrapKey, x.digester,
                                x.clock, options);
  REQUIRE(backend.Start().ok());
  Handshake(backend, "T1");
  std::vector<std::promise<bool>> answered(kBatches);
  for (int i = 0; i < kBatches; ++i) {
    terminals::BatchSubmission batch;
    batch.terminal.terminal_id = "T1";
    batch.records.push_back(taps[static_cast<size_t>(i)]);
    backend.SubmitBatch(std::move(batch),
                        [&answered, i](Result<std::vector<terminals::ResultCode>> r) {
                          answered[static_cast<size_t>(i)].set_value(r.ok() && r->size() == 1 &&
                                                (*r)[0] == terminals::ResultCode::accepted);
                        });
  }
  backend.Stop();
  for (auto& a : answered) CHECK(a.get_future().get());
  CHECK(backend.stats().records_checked_ahead == kBatches);
  CHECK(x.Purse(card.card_no) == 10'000 - 10 * kBatches);
}

TEST_CASE("The ingest backend authorises the top-ups queued together in one group, each as alone",
          "[tools][server][ingest]") {
  IngestFixture x;
  FakeCard card = x.IssueCard(0);
  FakeCard other = x.IssueCard(0);
  FakeCard ghost;
  ghost.card_no = CardNumberToInt(MakeCardNumber(4242));
  std::atomic<int> identity_calls{0};
  server::IngestBackendOptions options;
  JoinFakeIdentityChecks(options, x, &identity_calls);
  server::IngestBackend backend(x.registry, x.ledger, x.tap_store, x.auth, kWrapKey, x.digester,
                                x.clock, options);
  OnlineCalls calls(7);
  Ask(backend, calls, 0, Topup(card, 1, 500));
  Ask(backend, calls, 1, Topup(card, 1, 500));         // the same request again
  Ask(backend, calls, 2, Topup(card, 1, 700));         // another under the same id
  Ask(backend, calls, 3, Topup(other, 2, 300, false));  // a bad card proof
  Ask(backend, calls, 4, Topup(ghost, 3, 100));
  Ask(backend, calls, 5, Identity(other, 4));
  Ask(backend, calls, 6, Topup(other, 5, 300));
  REQUIRE(backend.Start().ok());
  std::vector<terminals::OnlineResponse> r;
  for (auto& f : calls.futures) r.push_back(f.get());
  using terminals::ResultCode;
  CHECK(terminals::CodeOf(r[0]) == ResultCode::ok);
  CHECK(terminals::CodeOf(r[1]) == ResultCode::ok);
  CHECK(std::get<terminals::TopupAuthorisation>(r[1]).authorisation_id ==
        std::get<terminals::TopupAuthorisation>(r[0]).authorisation_id);
  CHECK(std::get<terminals::TopupAuthorisation>(r[0]).balance_after_fen == 500);
  CHECK(terminals::CodeOf(r[2]) == ResultCode::duplicate_request);
  CHECK(terminals::CodeOf(r[3]) == ResultCode::bad_card_proof);
  CHECK(terminals::CodeOf(r[4]) == ResultCode::card_not_found);
  CHECK(terminals::CodeOf(r[5]) == ResultCode::ok);
  CHECK(std::holds_alternative<terminals::IdentityCheckResponse>(r[5]));
  CHECK(terminals::CodeOf(r[6]) == ResultCode::ok);
  backend.Stop();
  CHECK(identity_calls == 1);
  CHECK(backend.stats().online_groups == 1);
  CHECK(backend.stats().online_requests == 7);
  CHECK(backend.stats().online_max_in_group == 7);
  CHECK(backend.stats().online_failures == 0);
  CHECK(PendingOf(x, card.card_no) == 500);
  CHECK(PendingOf(x, other.card_no) == 300);
  // The identity check's write was committed with the group.
  CHECK(*x.registry.NextSequence("identity_check") == 2);
}

TEST_CASE("A failed online group commit answers every request of it with an error, posting nothing",
          "[tools][server][ingest]") {
  IngestFixture x;
  FakeCard card = x.IssueCard(0);
  FakeCard other = x.IssueCard(0);
  std::atomic<int> identity_calls{0};
  server::IngestBackendOptions options;
  JoinFakeIdentityChecks(options, x, &identity_calls);
  server::IngestBackend backend(x.registry, x.ledger, x.tap_store, x.auth, kWrapKey, x.digester,
                                x.clock, options);
  OnlineCalls calls(4);
  Ask(backend, calls, 0, Topup(card, 1, 500));
  Ask(backend, calls, 1, Topup(other, 2, 300));
  Ask(backend, calls, 2, Identity(other, 3));
  Ask(backend, calls, 3, Topup(card, 1, 500));
  x.ledger_store.FailNextCommit();
  REQUIRE(backend.Start().ok());
  for (auto& f : calls.futures) {
    CHECK(terminals::CodeOf(f.get()) == terminals::ResultCode::backend_unavailable);
  }
  backend.Stop();
  CHECK(identity_calls == 1);
  CHECK(backend.stats().online_failures == 1);
  CHECK(PendingOf(x, card.card_no) == 0);
  CHECK(PendingOf(x, other.card_no) == 0);
  CHECK_FALSE(x.tap_store.FindTopup("K1", 1)->has_value());
  CHECK_FALSE(x.tap_store.FindTopup("K1", 2)->has_value());
}

TEST_CASE("Online requests keep coming while a group commits and form the next group",
          "[tools][server][ingest]") {
  IngestFixture x;
  FakeCard card = x.IssueCard(0);
  std::atomic<int> identity_calls{0};
  server::IngestBackendOptions options;
  JoinFakeIdentityChecks(options, x, &identity_calls);
  // The first group's identity check holds the writer inside its transaction until the test
  // has queued more requests: those must wait for their own group, not be lost or mixed in.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> entered;
  auto inner = options.online_in_group;
  options.online_in_group = [&, inner, first = true](const terminals::TerminalIdentity& t,
                                                       const terminals::OnlineRequest& r) mutable {
    if (first) {
      first = false;
      entered.set_value();
      released.wait();
    }
    return inner(t, r);
  };
  server::IngestBackend backend(x.registry, x.ledger, x.tap_store, x.auth, kWrapKey, x.digester,
                                x.clock, options);
  REQUIRE(backend.Start().ok());
  OnlineCalls calls(4);
  Ask(backend, calls, 0, Identity(card, 1));
  Ask(backend, calls, 1, Topup(card, 2, 100));
  entered.get_future().wait();
  Ask(backend, calls, 2, Identity(card, 3));
  Ask(backend, calls, 3, Topup(card, 4, 100));
  CHECK(calls.futures[0].wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);
  release.set_value();
  for (auto& f : calls.futures) CHECK(terminals::CodeOf(f.get()) == terminals::ResultCode::ok);
  backend.Stop();
  CHECK(identity_calls == 2);
  CHECK(backend.stats().online_requests == 4);
  CHECK(backend.stats().online_groups >= 2);
  CHECK(PendingOf(x, card.card_no) == 200);
}

namespace {

// Waits up to 10 s for the backend's full terminal refreshes to reach `n`; their count then.
uint64_t WaitForRefreshes(server::IngestBackend& backend, uint64_t n) {
  for (int i = 0; i < 1'000 && backend.stats().terminal_refreshes < n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return backend.stats().terminal_refreshes;
}

}  // namespace

TEST_CASE("The ingest backend reads its terminals again only after another connection committed",
          "[tools][server][ingest]") {
  IngestFixture x;
  testing::FakeTapAuthenticator ahead;
  std::atomic<bool> committed_elsewhere{false};
  server::IngestBackendOptions options;
  options.precheck_authenticator = &ahead;
  options.housekeeping_interval_ms = 1;
  options.changed_elsewhere = [&committed_elsewhere]() -> Result<bool> {
    return committed_elsewhere.exchange(false);
  };
  server::IngestBackend backend(x.registry, x.ledger, x.tap_store, x.auth, kWrapKey, x.digester,
                                x.clock, options);
  REQUIRE(backend.Start().ok());
  Handshake(backend, "T1");
  // About a hundred housekeeping rounds with nothing changed: no terminal read again.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(backend.stats().terminal_refreshes == 0);
  committed_elsewhere = true;
  CHECK(WaitForRefreshes(backend, 1) == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(backend.stats().terminal_refreshes == 1);
  backend.Stop();
}

TEST_CASE("Without word of other connections the ingest backend reads its terminals each round",
          "[tools][server][ingest]") {
  IngestFixture x;
  testing::FakeTapAuthenticator ahead;
  server::IngestBackendOptions options;
  options.precheck_authenticator = &ahead;
  options.housekeeping_interval_ms = 1;
  server::IngestBackend backend(x.registry, x.ledger, x.tap_store, x.auth, kWrapKey, x.digester,
                                x.clock, options);
  REQUIRE(backend.Start().ok());
  CHECK(WaitForRefreshes(backend, 3) >= 3);
  backend.Stop();
}

TEST_CASE("The ingest backend's writer thread runs at the nice value asked for, when allowed",
          "[tools][server][ingest]") {
  // New threads inherit their creator's nice value: the process's, here.
  errno = 0;
  const int own = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  REQUIRE(errno == 0);
  const bool may_lower = ::geteuid() == 0;  // as CI runs; CAP_SYS_NICE would do as well
  const int asked = GENERATE(-3, 0, 5);
  IngestFixture x;
  server::IngestBackendOptions options;
  options.writer_nice = asked;
  server::IngestBackend backend(x.registry, x.ledger, x.tap_store, x.auth, kWrapKey, x.digester,
                                x.clock, options);
  REQUIRE(backend.Start().ok());
  int expected = asked == 0 ? own : asked;
  if (asked < own && !may_lower) expected = own;  // refused: the process's, and a warning
  CHECK(backend.stats().writer_nice == expected);
  // The thread that started it keeps its own.
  CHECK(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())) == own);
  backend.Stop();
}
