#include <catch2/catch.hpp>

#include "core/capping.h"
#include "core/time.h"

using namespace citycard;

namespace {

int64_t At(const char* local) { return *ParseLocalTime(local); }

PaidTap Tap(const char* operator_id, RideMode mode, int64_t amount_fen, const char* when) {
  return PaidTap{operator_id, mode, amount_fen, At(when)};
}

const std::vector<DailyCap> kCaps = {
    {Profile::adult, {RideMode::bus, RideMode::metro}, 1000},
    {Profile::adult, {RideMode::ferry}, 500},
    {Profile::student, {RideMode::bus}, 300},
};

int64_t Net(const OperatorRebate& entry) { return entry.paid_fen - entry.rebate_fen; }

}  // namespace

TEST_CASE("A card under its cap gets nothing back", "[core][capping]") {
  Result<CapRebates> rebates = ComputeCapRebates(
      {Tap("bus1", RideMode::bus, 400, "2024-05-01 08:00:00"),
       Tap("metro1", RideMode::metro, 600, "2024-05-01 09:00:00")},
      Profile::adult, kCaps);
  REQUIRE(rebates.ok());
  REQUIRE(rebates->paid_fen == 1000);  // exactly at the cap: nothing above it
  REQUIRE(rebates->rebate_fen == 0);
  REQUIRE(rebates->rebate_fen_by_tap == std::vector<int64_t>{0, 0});
  REQUIRE(rebates->operators.size() == 2);
  REQUIRE(rebates->operators[0].rebate_fen == 0);
}

TEST_CASE("A card over its cap gets back exactly the excess from the operators paid last",
          "[core][capping]") {
  const std::vector<PaidTap> taps = {
      Tap("metro1", RideMode::metro, 400, "2024-05-01 08:00:00"),
      Tap("bus2", RideMode::bus, 300, "2024-05-01 18:00:00"),     // 1000 reached here: 100 back
      Tap("bus1", RideMode::bus, 400, "2024-05-01 12:00:00"),     // listed out of time order
      Tap("metro1", RideMode::metro, 250, "2024-05-01 19:00:00"), // all back
      Tap("taxi1", RideMode::taxi, 3000, "2024-05-01 20:00:00"),  // no cap on taxis
  };
  Result<CapRebates> rebates = ComputeCapRebates(taps, Profile::adult, kCaps);
  REQUIRE(rebates.ok());
  REQUIRE(rebates->paid_fen == 4350);
  REQUIRE(rebates->rebate_fen == 350);  // 1350 paid on capped modes, cap 1000
  REQUIRE(rebates->rebate_fen_by_tap == std::vector<int64_t>{0, 100, 0, 250, 0});
  REQUIRE(rebates->operators.size() == 4);
  REQUIRE(rebates->operators[0].operator_id == "bus1");
  REQUIRE(rebates->operators[0].rebate_fen == 0);
  REQUIRE(rebates->operators[1].operator_id == "bus2");
  REQUIRE(rebates->operators[1].paid_fen == 300);
  REQUIRE(rebates->operators[1].rebate_fen == 100);
  REQUIRE(rebates->operators[2].operator_id == "metro1");
  REQUIRE(rebates->operators[2].paid_fen == 650);
  REQUIRE(rebates->operators[2].rebate_fen == 250);
  REQUIRE(rebates->operators[3].operator_id == "taxi1");
  REQUIRE(rebates->operators[3].rebate_fen == 0);
  // Operator totals go down by exactly the rebate, and what the card paid net is its cap plus
  // what it paid on modes without a cap.
  int64_t net_fen = 0;
  for (const OperatorRebate& entry : rebates->operators) net_fen += Net(entry);
  REQUIRE(net_fen == rebates->paid_fen - rebates->rebate_fen);
  REQUIRE(net_fen == 1000 + 3000);
}

TEST_CASE("The tap that reaches the cap keeps all it paid and the next gives all back", "[core][capping]") {
  Result<CapRebates> rebates = ComputeCapRebates(
      {Tap("bus1", RideMode::bus, 700, "2024-05-01 08:00:00"),
       Tap("bus2", RideMode::bus, 300, "2024-05-01 09:00:00"),
       Tap("bus1", RideMode::bus, 200, "2024-05-01 10:00:00")},
      Profile::adult, kCaps);
  REQUIRE(rebates->rebate_fen_by_tap == std::vector<int64_t>{0, 0, 200});
  REQUIRE(rebates->rebate_fen == 200);
}

TEST_CASE("Taps at the same second reach the cap in the order given", "[core][capping]") {
  Result<CapRebates> rebates = ComputeCapRebates(
      {Tap("bus1", RideMode::bus, 800, "2024-05-01 08:00:00"),
       Tap("bus2", RideMode::bus, 300, "2024-05-01 08:00:00"),
       Tap("bus3", RideMode::bus, 300, "2024-05-01 08:00:00")},
      Profile::adult, kCaps);
  REQUIRE(rebates->rebate_fen_by_tap == std::vector<int64_t>{0, 100, 300});
}

TEST_CASE("Each cap counts only its own modes and profile", "[core][capping]") {
  const std::vector<PaidTap> taps = {
      Tap("ferry1", RideMode::ferry, 400, "2024-05-01 08:00:00"),
      Tap("ferry1", RideMode::ferry, 400, "2024-05-01 18:00:00"),
      Tap("bus1", RideMode::bus, 900, "2024-05-01 19:00:00"),
  };
  Result<CapRebates> adult = ComputeCapRebates(taps, Profile::adult, kCaps);
  REQUIRE(adult->rebate_fen_by_tap == std::vector<int64_t>{0, 300, 0});
  Result<CapRebates> student = ComputeCapRebates(taps, Profile::student, kCaps);
  REQUIRE(student->rebate_fen_by_tap == std::vector<int64_t>{0, 0, 600});
  Result<CapRebates> elderly = ComputeCapRebates(taps, Profile::elderly, kCaps);
  REQUIRE(elderly->rebate_fen == 0);
}

TEST_CASE("A day with no taps has no rebate", "[core][capping]") {
  Result<CapRebates> rebates = ComputeCapRebates({}, Profile::adult, kCaps);
  REQUIRE(rebates.ok());
  REQUIRE(rebates->rebate_fen == 0);
  REQUIRE(rebates->operators.empty());
}

TEST_CASE("Taps of two days, bad amounts and unnamed operators are refused", "[core][capping]") {
  Result<CapRebates> two_days = ComputeCapRebates(
      {Tap("bus1", RideMode::bus, 100, "2024-05-01 23:59:59"),
       Tap("bus1", RideMode::bus, 100, "2024-05-02 00:00:00")},
      Profile::adult, kCaps);
  REQUIRE(two_days.status().code() == "invalid_cap_input");
  REQUIRE(two_days.status().message() == "tap 1 is on 2024-05-02, tap 0 on 2024-05-01: one day at a time");
  REQUIRE(ComputeCapRebates({Tap("bus1", RideMode::bus, -1, "2024-05-01 08:00:00")}, Profile::adult, kCaps)
              .status()
              .message() == "tap 0: amount -1 is outside 0..1000000");
  REQUIRE(ComputeCapRebates({Tap("", RideMode::bus, 1, "2024-05-01 08:00:00")}, Profile::adult, kCaps)
              .status()
              .message() == "tap 0: no operator");
  std::vector<PaidTap> many(kCapTapsPerDayMax + 1, Tap("bus1", RideMode::bus, 1, "2024-05-01 08:00:00"));
  REQUIRE(ComputeCapRebates(many, Profile::adult, kCaps).status().code() == "invalid_cap_input");
}
