// `citycard bench ingest|online|settle|idle` at tiny sizes (docs/benchmarks.md): the JSON has
// its fields, every tap or request was accepted, and the ledger adds up. No timing is
// asserted: these machines are shared.
#include <catch2/catch.hpp>

#include "tests/support/cli_runner_support.h"

namespace citycard {
namespace {

void CheckIngestReport(const nlohmann::json& j, int64_t cards, int64_t taps) {
  CHECK(j.at("benchmark") == "ingest");
  CHECK(j.at("cards") == cards);
  CHECK(j.at("taps") == taps);
  CHECK(j.at("refused_by_cards") == 0);
  CHECK(j.at("accepted") == taps);
  CHECK(j.at("results").size() == 1);
  CHECK(j.at("results").at("accepted") == taps);
  CHECK(j.at("failed_batches") == 0);
  CHECK(j.at("all_accepted") == true);
  CHECK(j.at("ledger_ok") == true);
  CHECK(j.at("purses_checked") == cards);
  CHECK(j.at("purses_wrong") == 0);
  CHECK(j.at("payable_fen") == j.at("spent_fen"));
  // 100 to 399 fen a tap.
  CHECK(j.at("spent_fen").get<int64_t>() >= 100 * taps);
  CHECK(j.at("spent_fen").get<int64_t>() <= 399 * taps);
  CHECK(j.at("seconds").get<double>() > 0);
  CHECK(j.at("taps_per_s").get<double>() > 0);
  CHECK(j.at("groups").get<int64_t>() >= 1);
  CHECK(j.at("rounds") == (taps + cards - 1) / cards);
  CHECK(j.contains("cpu_seconds"));
  CHECK(j.contains("setup_seconds"));
  CHECK(j.at("dir").is_null());  // removed without --keep
}

TEST_CASE("bench ingest in process books every tap of 200 cards and the ledger adds up",
          "[tools][bench][ingest]") {
  testing::CliSandbox box{CITYCARD_BIN};
  auto r = box.Json({"bench", "ingest", "--cards", "200", "--taps", "2000", "--terminals", "8",
                     "--group", "500", "--dir", box.Path("scratch")});
  REQUIRE(r.exit_code == 0);
  auto j = r.json();
  CheckIngestReport(j, 200, 2000);
  CHECK(j.at("mode") == "in_process");
  CHECK(j.at("groups").get<int64_t>() >= 4);
  CHECK(j.at("records_max_in_group").get<int64_t>() <= 500);
  // The checker knew every reader's terminal (each session's handshake came first), so it
  // checked every batch and read its cards.
  CHECK(j.at("cards_ahead") == true);
  CHECK(j.at("records_checked_ahead") == 2000);
  CHECK(j.at("batches_cards_ahead") == j.at("batches"));
}

TEST_CASE("bench ingest with no cards read ahead books the same taps, the writer reading the cards",
          "[tools][bench][ingest]") {
  testing::CliSandbox box{CITYCARD_BIN};
  auto r = box.Json({"bench", "ingest", "--cards", "200", "--taps", "2000", "--terminals", "8",
                     "--group", "500", "--no-cards-ahead", "--dir", box.Path("scratch")});
  REQUIRE(r.exit_code == 0);
  auto j = r.json();
  CheckIngestReport(j, 200, 2000);
  CHECK(j.at("cards_ahead") == false);
  CHECK(j.at("batches_cards_ahead") == 0);
}

TEST_CASE("bench ingest through the server over loopback TCP books every tap",
          "[tools][bench][ingest]") {
  testing::CliSandbox box{CITYCARD_BIN};
  auto r = box.Json({"bench", "ingest", "--cards", "200", "--taps", "2000", "--terminals", "8",
                     "--via-server", "--dir", box.Path("scratch")});
  REQUIRE(r.exit_code == 0);
  auto j = r.json();
  CheckIngestReport(j, 200, 2000);
  CHECK(j.at("mode") == "server");
  // The server's checker reads the cards over its own connection (StartIngestServer).
  CHECK(j.at("batches_cards_ahead").get<int64_t>() > 0);
}

TEST_CASE("bench ingest refuses sizes out of range", "[tools][bench][ingest]") {
  testing::CliSandbox box{CITYCARD_BIN};
  auto r = box.Json({"bench", "ingest", "--cards", "0", "--dir", box.Path("scratch")});
  CHECK(r.exit_code == 2);
  CHECK(r.json().at("error").at("code") == "invalid_bench_size");
  r = box.Json({"bench", "ingest", "--cards", "10", "--batch", "257", "--dir", box.Path("s2")});
  CHECK(r.exit_code == 2);
  CHECK(r.json().at("error").at("code") == "invalid_bench_size");
}

TEST_CASE("bench ingest with PostgreSQL books the same taps on a throwaway cluster",
          "[tools][bench][ingest][postgres][.slow]") {
  testing::CliSandbox box{CITYCARD_BIN};
  auto r = box.Json({"bench", "ingest", "--cards", "200", "--taps", "2000", "--terminals", "8",
                     "--with-postgres", "--dir", box.Path("scratch")});
  REQUIRE(r.exit_code == 0);
  auto j = r.json();
  CheckIngestReport(j, 200, 2000);
  CHECK(j.at("postgres").at("booked") == 2000);
  CHECK(j.at("postgres").at("ledger_ok") == true);
  CHECK(j.at("ratio").get<double>() > 0);
}

}  // namespace
}  // namespace citycard

namespace citycard {
namespace {

TEST_CASE("bench settle settles a day of 2,000 taps and leaves the payable at zero",
          "[tools][bench][settle]") {
  testing::CliSandbox box{CITYCARD_BIN};
  auto r = box.Json({"bench", "settle", "--taps", "2000", "--cards", "200", "--dir",
                     box.Path("scratch")});
  REQUIRE(r.exit_code == 0);
  auto j = r.json();
  CHECK(j.at("benchmark") == "settle");
  CHECK(j.at("taps") == 2000);
  CHECK(j.at("report_taps") == 2000);
  CHECK(j.at("paid_fen") == j.at("spent_fen"));
  CHECK(j.at("payable_after_fen") == 0);
  CHECK(j.at("checks_ok") == true);
  // Ten taps of at least 100 fen each: every card passes the 1,000 fen cap.
  CHECK(j.at("capped_cards") == 200);
  CHECK(j.at("capping_rebate_fen").get<int64_t>() ==
        j.at("paid_fen").get<int64_t>() - 200 * 1000);
  CHECK(j.at("net_fen") == 200 * 1000);
  CHECK(j.at("seconds").get<double>() > 0);
  CHECK(j.contains("seconds_for_10m_taps"));
  CHECK(j.at("dir").is_null());
}

TEST_CASE("bench settle books a day once and settles it from the kept directory, once",
          "[tools][bench][settle]") {
  testing::CliSandbox box{CITYCARD_BIN};
  auto booked = box.Json({"bench", "settle", "--taps", "2000", "--cards", "200", "--book-only",
                          "--dir", box.Path("day")});
  REQUIRE(booked.exit_code == 0);
  auto b = booked.json();
  CHECK(b.at("booked_only") == true);
  CHECK(b.at("taps") == 2000);
  CHECK(b.at("cards") == 200);
  CHECK(b.at("dir") == box.Path("day"));

  auto settled = box.Json({"bench", "settle", "--booked-dir", box.Path("day")});
  REQUIRE(settled.exit_code == 0);
  auto j = settled.json();
  CHECK(j.at("taps") == 2000);
  CHECK(j.at("report_taps") == 2000);
  CHECK(j.at("day") == b.at("day"));
  CHECK(j.at("paid_fen") == b.at("spent_fen"));
  CHECK(j.at("payable_after_fen") == 0);
  CHECK(j.at("capped_cards") == 200);
  CHECK(j.at("net_fen") == 200 * 1000);
  CHECK(j.at("checks_ok") == true);
  CHECK(j.at("dir") == box.Path("day"));

  // The day is settled now: settling the directory again books nothing and is refused as a
  // failed check (the bench measures a first settlement only).
  auto again = box.Json({"bench", "settle", "--booked-dir", box.Path("day")});
  CHECK(again.exit_code != 0);
  CHECK(again.json().at("error").at("code") == "bench_check_failed");

  auto missing = box.Json({"bench", "settle", "--booked-dir", box.Path("nothing")});
  CHECK(missing.exit_code != 0);
  CHECK(missing.json().at("error").at("code") == "booked_day_not_found");
}

}  // namespace
}  // namespace citycard

namespace citycard {
namespace {

TEST_CASE("bench online answers every identity check and top-up ok and the pending top-ups add up",
          "[tools][bench][online]") {
  testing::CliSandbox box{CITYCARD_BIN};
  auto r = box.Json({"bench", "online", "--sessions", "10", "--seconds", "1", "--cards", "100",
                     "--dir", box.Path("scratch")});
  REQUIRE(r.exit_code == 0);
  auto j = r.json();
  CHECK(j.at("benchmark") == "online");
  CHECK(j.at("sessions") == 10);
  int64_t requests = j.at("requests");
  CHECK(requests > 0);
  CHECK(j.at("identity_checks").get<int64_t>() + j.at("topups").get<int64_t>() == requests);
  CHECK(j.at("topups_authorised") == j.at("topups"));
  CHECK(j.at("results").size() == 1);
  CHECK(j.at("results").at("ok") == requests);
  CHECK(j.at("failures") == 0);
  CHECK(j.at("pending_topup_fen") == j.at("topups").get<int64_t>() * 100);
  CHECK(j.at("checks_ok") == true);
  CHECK(j.at("latency_ms").at("p50").get<double>() > 0);
  CHECK(j.at("latency_ms").at("p99").get<double>() >= j.at("latency_ms").at("p50").get<double>());
  CHECK(j.at("latency_ms").at("max").get<double>() >= j.at("latency_ms").at("p99").get<double>());
  CHECK(j.at("requests_per_s").get<double>() > 0);
  // Every top-up and identity check is a write: the writer's commits appended WAL frames.
  CHECK(j.at("pages_written").get<int64_t>() > 0);
  CHECK(j.at("pages_written_per_request").get<double>() ==
        Approx(j.at("pages_written").get<double>() / static_cast<double>(requests)));
}

TEST_CASE("bench idle reports the server's memory with authenticated idle sessions",
          "[tools][bench][idle]") {
  testing::CliSandbox box{CITYCARD_BIN};
  auto r = box.Json({"bench", "idle", "--sessions", "50", "--dir", box.Path("scratch")});
  REQUIRE(r.exit_code == 0);
  auto j = r.json();
  CHECK(j.at("benchmark") == "idle");
  CHECK(j.at("sessions") == 50);
  CHECK(j.at("rss_before_bytes").get<int64_t>() > 0);
  CHECK(j.at("rss_with_sessions_bytes").get<int64_t>() >= j.at("rss_before_bytes").get<int64_t>());
  CHECK(j.contains("bytes_per_session"));
}

}  // namespace
}  // namespace citycard
