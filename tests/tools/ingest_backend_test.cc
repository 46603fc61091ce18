// The ingest backend's checker thread (IngestBackendOptions::precheck_authenticator): batches
// are answered as the writer alone would answer them, and their proofs are checked ahead.
#include <catch2/catch.hpp>

#include <future>

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
