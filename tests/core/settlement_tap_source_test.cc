#include "core/settlement_tap_source.h"

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <future>
#include <map>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/time.h"
#include "tests/support/ingest_fixture_support.h"

using namespace citycard;
using citycard::testing::FakeCard;
using citycard::testing::IngestFixture;

namespace {

int64_t At(const char* local) { return *ParseLocalTime(local); }
int64_t Day(const char* day) { return *ParseDay(day); }

class KeptRuns final : public SettlementStore {
 public:
  Result<std::optional<SettlementRecord>> FindRun(int64_t day) override {
    auto found = runs_.find(day);
    if (found == runs_.end()) return std::optional<SettlementRecord>();
    return std::optional<SettlementRecord>(found->second);
  }
  Status SaveRun(const SettlementRecord& record) override {
    runs_.emplace(record.report.day, record);
    return Status::Ok();
  }
  Result<int64_t> ClearingCutoff() override { return int64_t{0}; }
  Status SetClearingCutoff(int64_t) override { return Status::Ok(); }

 private:
  std::map<int64_t, SettlementRecord> runs_;
};

// Taps go through the real ingest engine (fake MACs, in-memory stores), then the day is
// settled from the tap store: the reconciliation checks the ingest's totals, its taps and the
// ledger against each other.
struct IngestedDay {
  IngestFixture f;
  FakeCard a;
  FakeCard b;
  KeptRuns runs;

  IngestedDay() {
    a = f.IssueCard(2000);
    b = f.IssueCard(2000, Profile::student);
    Ride(a, "T1", 200, TapType::purchase, "2024-03-01 10:00:00");
    Ride(a, "M1", 0, TapType::metro_entry, "2024-03-01 10:30:00");
    Ride(a, "M1", 500, TapType::metro_exit, "2024-03-01 11:00:00");
    Ride(b, "T2", 100, TapType::purchase, "2024-03-01 12:00:00");
    // Made before midnight, uploaded after: late, cleared on 2024-03-02.
    f.clock.SetMs(At("2024-03-01 23:59:00") * 1000);
    TapRecord late = f.Tap(b, "T2", 100);
    f.clock.SetMs(At("2024-03-02 00:05:00") * 1000);
    REQUIRE(f.IngestOne(late) == IngestOutcome::accepted_late);
    f.clock.SetMs(At("2024-03-03 01:00:00") * 1000);
  }

  void Ride(FakeCard& card, const std::string& terminal, int64_t amount, TapType type,
            const char* when) {
    f.clock.SetMs(At(when) * 1000);
    REQUIRE(f.IngestOne(f.Tap(card, terminal, amount, type)) == IngestOutcome::accepted);
  }

  Result<SettlementOutcome> Settle(const char* day, std::vector<DailyCap> caps) {
    TapStoreSettlementSource source(f.tap_store, f.registry);
    SettlerConfig config;
    config.daily_caps = std::move(caps);
    Settler settler(f.registry, f.ledger, f.ledger_store, runs, source, f.digester, f.clock,
                    config);
    return settler.Settle(Day(day));
  }
};

}  // namespace

TEST_CASE("A day ingested through the engine settles from the tap store and reconciles",
          "[core][settlement]") {
  IngestedDay d;
  auto outcome = d.Settle("2024-03-01", {{Profile::adult, {RideMode::bus, RideMode::metro}, 600}});
  REQUIRE(outcome.ok());
  const SettlementReport& report = outcome->record.report;
  REQUIRE(report.operators.size() == 2);
  const OperatorSettlement& bus = report.operators[0];
  CHECK(bus.operator_id == "BUS1");
  CHECK(bus.taps == 2);
  CHECK(bus.paid_taps == 2);
  CHECK(bus.late_taps == 0);
  CHECK(bus.paid_fen == 300);
  CHECK(bus.capping_rebate_fen == 0);
  CHECK(bus.net_fen == 300);
  const OperatorSettlement& metro = report.operators[1];
  CHECK(metro.operator_id == "METRO");
  CHECK(metro.taps == 2);  // the entry carries no money but counts
  CHECK(metro.paid_taps == 1);
  CHECK(metro.paid_fen == 500);
  CHECK(metro.capping_rebate_fen == 100);  // card a paid 700 against a cap of 600
  CHECK(metro.net_fen == 400);
  CHECK(report.totals.paid_fen == 800);
  CHECK(d.f.Payable("METRO") == 0);
  CHECK(d.f.Payable("BUS1") == 100);  // the late tap belongs to the next day
  CHECK(d.f.Purse(d.a.card_no) == 2000 - 700 + 100);
  CHECK(d.f.LedgerSum() == 0);
}

TEST_CASE("A late tap is settled on the day it arrived and counted late", "[core][settlement]") {
  IngestedDay d;
  auto outcome = d.Settle("2024-03-02", {});
  REQUIRE(outcome.ok());
  const SettlementReport& report = outcome->record.report;
  REQUIRE(report.operators.size() == 1);
  CHECK(report.operators[0].operator_id == "BUS1");
  CHECK(report.operators[0].taps == 1);
  CHECK(report.operators[0].late_taps == 1);
  CHECK(report.operators[0].late_paid_fen == 100);
  CHECK(report.operators[0].net_fen == 100);
}

TEST_CASE("A day without taps settles to an empty report", "[core][settlement]") {
  IngestedDay d;
  auto outcome = d.Settle("2024-02-28", {});
  REQUIRE(outcome.ok());
  CHECK(outcome->record.report.operators.empty());
  CHECK(outcome->record.report.totals.taps == 0);
  CHECK(outcome->record.transfers == 0);
}

TEST_CASE("One scan of the day gives the operator totals and the card-days in card order",
          "[core][settlement]") {
  IngestedDay d;
  TapStoreSettlementSource source(d.f.tap_store, d.f.registry);
  auto totals = source.OperatorTotals(Day("2024-03-01"));
  REQUIRE(totals.ok());
  REQUIRE(totals->size() == 2);
  CHECK((*totals)[0].operator_id == "BUS1");
  CHECK((*totals)[0].taps == 2);
  CHECK((*totals)[0].paid_taps == 2);
  CHECK((*totals)[0].paid_fen == 300);
  CHECK((*totals)[1].operator_id == "METRO");
  CHECK((*totals)[1].taps == 2);
  CHECK((*totals)[1].paid_taps == 1);
  CHECK((*totals)[1].paid_fen == 500);

  // A tap booked on the day after the first question is in no answer of the source: the
  // card-days come from the scan the totals were made from, not from a second one.
  d.f.clock.SetMs(At("2024-03-01 18:00:00") * 1000);
  REQUIRE(d.f.IngestOne(d.f.Tap(d.b, "T2", 100)) == IngestOutcome::accepted);
  std::vector<std::pair<std::string, std::vector<int64_t>>> seen;
  REQUIRE(source
              .ForEachCardDay(Day("2024-03-01"),
                              [&](const CardDayTaps& card) -> Status {
                                std::vector<int64_t> amounts;
                                for (const PaidTap& tap : card.taps) amounts.push_back(tap.amount_fen);
                                seen.emplace_back(card.card_no, amounts);
                                return Status::Ok();
                              })
              .ok());
  std::string a = CardNumberFromInt(d.a.card_no);
  std::string b = CardNumberFromInt(d.b.card_no);
  REQUIRE(a < b);
  // Card a: the bus ride and the metro exit (the entry paid nothing); card b: one ride.
  CHECK(seen == std::vector<std::pair<std::string, std::vector<int64_t>>>{{a, {200, 500}},
                                                                          {b, {100}}});
  // A new source reads the day again and sees the tap.
  TapStoreSettlementSource fresh(d.f.tap_store, d.f.registry);
  auto again = fresh.OperatorTotals(Day("2024-03-01"));
  REQUIRE(again.ok());
  CHECK((*again)[0].paid_taps == 3);
}

TEST_CASE("A day read ahead is the day the source's questions answer from",
          "[core][settlement]") {
  IngestedDay d;
  TapStoreSettlementSource source(d.f.tap_store, d.f.registry);
  REQUIRE(source.ReadDay(Day("2024-03-01")).ok());
  // Booked after the day was read: in no answer of this source.
  d.f.clock.SetMs(At("2024-03-01 18:00:00") * 1000);
  REQUIRE(d.f.IngestOne(d.f.Tap(d.b, "T2", 100)) == IngestOutcome::accepted);
  auto totals = source.OperatorTotals(Day("2024-03-01"));
  REQUIRE(totals.ok());
  REQUIRE(totals->size() == 2);
  CHECK((*totals)[0].operator_id == "BUS1");
  CHECK((*totals)[0].paid_taps == 2);
  CHECK((*totals)[0].paid_fen == 300);
  int cards = 0;
  REQUIRE(source
              .ForEachCardDay(Day("2024-03-01"),
                              [&](const CardDayTaps&) -> Status {
                                ++cards;
                                return Status::Ok();
                              })
              .ok());
  CHECK(cards == 2);
}

namespace {

// StoreSettlementReads that notes the stretches of the day it was asked to read.
class NotedReads final : public SettlementReads {
 public:
  explicit NotedReads(IngestFixture& f) : reads_(f.ledger_store, f.tap_store, f.registry) {}
  Status SumPostedMovements(int64_t first_seq, int64_t last_seq,
                            std::optional<AccountKind> only_kind,
                            std::vector<AccountCodeSum>* out) override {
    return reads_.SumPostedMovements(first_seq, last_seq, only_kind, out);
  }
  Status ForEachDayTap(int64_t day, const std::function<Status(const DayTapSummary&)>& visit) override {
    stretches.push_back(std::nullopt);
    return reads_.ForEachDayTap(day, visit);
  }
  Result<std::optional<SeqRange>> DayTapSeqs(int64_t day) override { return reads_.DayTapSeqs(day); }
  Status ForEachDayTapIn(int64_t day, SeqRange seqs,
                         const std::function<Status(const DayTapSummary&)>& visit) override {
    stretches.push_back(seqs);
    return reads_.ForEachDayTapIn(day, seqs, visit);
  }
  Status FindRebateCards(std::span<const std::string> card_nos,
                         std::vector<RebateCardState>* out) override {
    return reads_.FindRebateCards(card_nos, out);
  }
  Result<int64_t> CardChanges() override { return reads_.CardChanges(); }

  std::vector<std::optional<SeqRange>> stretches;

 private:
  StoreSettlementReads reads_;
};

// Everything a source answers of a day, in order, as text.
std::vector<std::string> Answers(TapStoreSettlementSource& source, int64_t day) {
  std::vector<std::string> answers;
  auto totals = source.OperatorTotals(day);
  REQUIRE(totals.ok());
  for (const OperatorTapTotals& t : *totals) {
    answers.push_back(fmt::format("{} taps {} paid {} fen {} late {}", t.operator_id, t.taps,
                                  t.paid_taps, t.paid_fen, t.late_paid_fen));
  }
  REQUIRE(source
              .ForEachCardDay(day,
                              [&](const CardDayTaps& card) -> Status {
                                std::string line = fmt::format("{} {}", card.card_no, ProfileName(card.profile));
                                for (const PaidTap& tap : card.taps) {
                                  line += fmt::format(" {}/{}/{}/{}", tap.operator_id,
                                                      static_cast<int>(tap.mode), tap.amount_fen,
                                                      tap.time_s);
                                }
                                answers.push_back(line);
                                return Status::Ok();
                              })
              .ok());
  return answers;
}

// One part of a read day's card-days, a line per card: its number and each tap's amount and
// time. On the calling thread only (Catch's assertions).
std::vector<std::string> CardDayLines(TapStoreSettlementSource& source, int64_t day, size_t part,
                                      size_t parts) {
  std::vector<std::string> lines;
  REQUIRE(source
              .ForEachCardDayPart(day, part, parts,
                                  [&](const CardDayTaps& card) -> Status {
                                    std::string line = card.card_no;
                                    for (const PaidTap& tap : card.taps) {
                                      line += fmt::format(" {}/{}", tap.amount_fen, tap.time_s);
                                    }
                                    lines.push_back(line);
                                    return Status::Ok();
                                  })
              .ok());
  return lines;
}

}  // namespace

TEST_CASE("A day read in two halves on two threads answers as the day read in one",
          "[core][settlement]") {
  IngestedDay d;
  // More cards riding both operators through the day, so that each half holds taps of both
  // operators and of the same cards.
  std::vector<FakeCard> riders;
  for (int i = 0; i < 6; ++i) riders.push_back(d.f.IssueCard(5000, i % 3 == 0 ? Profile::student : Profile::adult));
  const char* hours[] = {"2024-03-01 07:00:00", "2024-03-01 09:00:00", "2024-03-01 13:00:00",
                         "2024-03-01 17:00:00", "2024-03-01 21:00:00"};
  for (const char* when : hours) {
    for (size_t i = 0; i < riders.size(); ++i) {
      d.Ride(riders[i], i % 2 == 0 ? "T1" : "T2", 100 + 10 * static_cast<int64_t>(i),
             TapType::purchase, when);
      d.Ride(riders[i], "M1", 0, TapType::metro_entry, when);
      d.Ride(riders[i], "M1", 300, TapType::metro_exit, when);
    }
  }
  d.f.clock.SetMs(At("2024-03-03 01:00:00") * 1000);
  const int64_t day = Day("2024-03-01");

  TapStoreSettlementSource whole(d.f.tap_store, d.f.registry);
  NotedReads first(d.f);
  NotedReads second(d.f);
  TapStoreSettlementSource halves(d.f.tap_store, d.f.registry, &first, &second, 0);
  std::vector<std::string> expected = Answers(whole, day);
  REQUIRE(expected.size() == 2 + 8);  // two operators, eight cards
  CHECK(Answers(halves, day) == expected);
  // Its card-days in two parts (the runs of the two halves cut at one card) are the same.
  std::vector<std::string> parts = CardDayLines(halves, day, 0, 2);
  const std::vector<std::string> second_part = CardDayLines(halves, day, 1, 2);
  parts.insert(parts.end(), second_part.begin(), second_part.end());
  CHECK(parts == CardDayLines(whole, day, 0, 1));

  // The two halves were read, one each, and together they are the day.
  auto seqs = first.DayTapSeqs(day);
  REQUIRE(seqs.ok());
  REQUIRE(seqs->has_value());
  REQUIRE(first.stretches.size() == 1);
  REQUIRE(second.stretches.size() == 1);
  REQUIRE(first.stretches[0].has_value());
  REQUIRE(second.stretches[0].has_value());
  CHECK(first.stretches[0]->first == (*seqs)->first);
  CHECK(second.stretches[0]->first == first.stretches[0]->last + 1);
  CHECK(second.stretches[0]->last == (*seqs)->last);

  // Below the least split, the day is read in one part by the first reads alone.
  NotedReads one(d.f);
  NotedReads unused(d.f);
  TapStoreSettlementSource small(d.f.tap_store, d.f.registry, &one, &unused,
                                 (*seqs)->last - (*seqs)->first + 1);
  CHECK(Answers(small, day) == expected);
  CHECK(one.stretches.size() == 1);
  CHECK(unused.stretches.empty());
}

TEST_CASE("The card-days in two parts, read on two threads, are those of one pass, split "
          "between two cards",
          "[core][settlement]") {
  IngestedDay d;
  std::vector<FakeCard> riders;
  // Four riders of three taps each after the day's cards (two taps and one): 15 taps, whose
  // middle falls inside a rider's card-day.
  for (int i = 0; i < 4; ++i) riders.push_back(d.f.IssueCard(5000, Profile::adult));
  for (const char* when : {"2024-03-01 07:00:00", "2024-03-01 12:00:00", "2024-03-01 19:00:00"}) {
    for (size_t i = 0; i < riders.size(); ++i) {
      d.Ride(riders[i], "T1", 100 + 10 * static_cast<int64_t>(i), TapType::purchase, when);
    }
  }
  d.f.clock.SetMs(At("2024-03-03 01:00:00") * 1000);
  const int64_t day = Day("2024-03-01");
  TapStoreSettlementSource source(d.f.tap_store, d.f.registry);
  REQUIRE(source.CardDayPartsMax() == 2);
  REQUIRE(source.OperatorTotals(day).ok());  // the day is read before the parts run
  // No Catch assertion inside: the second part runs on a thread of its own, and Catch's
  // assertions are not thread-safe. A failed part gives a line that matches nothing.
  auto lines = [&](size_t part, size_t parts) {
    std::vector<std::string> out;
    Status s = source.ForEachCardDayPart(day, part, parts, [&](const CardDayTaps& card) -> Status {
      std::string line = card.card_no;
      for (const PaidTap& tap : card.taps) {
        line += fmt::format(" {}/{}", tap.amount_fen, tap.time_s);
      }
      out.push_back(line);
      return Status::Ok();
    });
    if (!s.ok()) out.push_back("failed: " + s.ToString());
    return out;
  };
  std::vector<std::string> whole = lines(0, 1);
  REQUIRE(whole.size() == 2 + 4);  // the day's two cards and the four riders
  auto second = std::async(std::launch::async, [&] { return lines(1, 2); });
  std::vector<std::string> first = lines(0, 2);
  std::vector<std::string> rest = second.get();
  CHECK_FALSE(first.empty());
  CHECK_FALSE(rest.empty());
  std::vector<std::string> joined = first;
  joined.insert(joined.end(), rest.begin(), rest.end());
  // Every card-day once, whole (a card cut in two would be two lines, each with part of its
  // taps), in card order.
  CHECK(joined == whole);
}
