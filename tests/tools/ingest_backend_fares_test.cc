// The ingest backend's fare-table hook (IngestBackendOptions::fare_table, tap_pricer): readers
// download the current table through the protocol's document download, heartbeats announce its
// version, and booked taps are re-priced.
#include <catch2/catch.hpp>

#include <future>

#include "core/tap_pricer.h"
#include "tests/support/ingest_fixture_support.h"
#include "tools/server/ingest_backend.h"

using namespace citycard;
using citycard::testing::IngestFixture;

namespace {

Result<terminals::Document> Download(server::IngestBackend& backend, uint32_t known_version) {
  std::promise<Result<terminals::Document>> answer;
  auto future = answer.get_future();
  backend.GetDocument(terminals::DocumentKind::fare_table, known_version,
                      [&answer](Result<terminals::Document> d) { answer.set_value(std::move(d)); });
  return future.get();
}

const Bytes kWrapKey(16, 0x5a);

}  // namespace

TEST_CASE("The ingest backend serves the current fare table and announces its version",
          "[tools][server][fares]") {
  IngestFixture x;
  FareTableBlob current{20180831, R"({"version": 20180831})"};
  server::IngestBackendOptions options;
  options.fare_table = [&current]() -> Result<FareTableBlob> { return current; };
  server::IngestBackend backend(x.registry, x.ledger, x.tap_store, x.auth, kWrapKey, x.digester,
                                x.clock, options);
  REQUIRE(backend.Start().ok());
  CHECK(backend.CurrentVersions().fare_version == 20180831u);

  auto fresh = Download(backend, 0);
  REQUIRE(fresh.ok());
  CHECK(fresh->kind == terminals::DocumentKind::fare_table);
  CHECK(fresh->version == 20180831u);
  CHECK_FALSE(fresh->up_to_date);
  CHECK(std::string(fresh->content.begin(), fresh->content.end()) == current.json);

  auto same = Download(backend, 20180831);
  REQUIRE(same.ok());
  CHECK(same->up_to_date);
  CHECK(same->content.empty());

  // A table loaded while serving is served at the next download and announced from then on.
  current = FareTableBlob{20180901, R"({"version": 20180901})"};
  auto newer = Download(backend, 20180831);
  REQUIRE(newer.ok());
  CHECK(newer->version == 20180901u);
  CHECK_FALSE(newer->up_to_date);
  CHECK(backend.CurrentVersions().fare_version == 20180901u);
  backend.Stop();
}

TEST_CASE("The ingest backend without a fare table answers version 0", "[tools][server][fares]") {
  IngestFixture x;
  server::IngestBackend backend(x.registry, x.ledger, x.tap_store, x.auth, kWrapKey, x.digester,
                                x.clock, server::IngestBackendOptions{});
  REQUIRE(backend.Start().ok());
  CHECK(backend.CurrentVersions().fare_version == 0u);
  auto none = Download(backend, 0);
  REQUIRE(none.ok());
  CHECK(none->version == 0u);
  CHECK(none->content.empty());
  backend.Stop();
}

TEST_CASE("A failing fare-table source fails the download", "[tools][server][fares]") {
  IngestFixture x;
  bool fail = false;
  server::IngestBackendOptions options;
  options.fare_table = [&fail]() -> Result<FareTableBlob> {
    if (fail) return Status::Internal("db_error", "disk gone");
    return FareTableBlob{};
  };
  server::IngestBackend backend(x.registry, x.ledger, x.tap_store, x.auth, kWrapKey, x.digester,
                                x.clock, options);
  REQUIRE(backend.Start().ok());
  fail = true;
  auto failed = Download(backend, 0);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == "db_error");
  backend.Stop();
}
