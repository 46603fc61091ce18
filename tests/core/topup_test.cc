// Online top-up, two-phase (core/ingest.h AuthoriseTopup, AuthoriseTopups, ConfirmTopup,
// ExpireTopups).
#include <catch2/catch.hpp>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/ingest.h"
#include "core/ingest_impl.h"
#include "core/national_id.h"
#include "core/time.h"
#include "tests/support/ingest_fixture_support.h"

namespace citycard {
namespace {

using testing::FakeCard;
using testing::IngestFixture;

TopupAsk Ask(const FakeCard& card, int64_t amount_fen, uint64_t request_id = 1) {
  TopupAsk ask;
  ask.terminal_id = "K1";
  ask.request_id = request_id;
  ask.card_no = card.card_no;
  ask.card_counter = card.counter;
  ask.balance_before_fen = card.balance_fen;
  ask.amount_fen = amount_fen;
  return ask;
}

int64_t Pending(IngestFixture& f, uint64_t card_no) {
  auto account = f.ledger.LookupAccount(AccountIdFor(AccountKind::card_purse, card_no));
  REQUIRE(account.ok());
  return account->credits_pending;
}

TopupRecord OpenTopup(std::string terminal, uint64_t request_id, uint64_t card_no) {
  TopupRecord t;
  t.terminal_id = std::move(terminal);
  t.request_id = request_id;
  t.card_no = card_no;
  t.status = TopupStatus::pending;
  return t;
}

TEST_CASE("open top-ups are found by card in key order, and leave when erased", "[core][topup]") {
  OpenTopups open;
  open.Put(OpenTopup("K2", 1, 11));
  open.Put(OpenTopup("K1", 7, 11));
  open.Put(OpenTopup("K1", 3, 22));
  open.Put(OpenTopup("K1", 5, 11));
  CHECK(open.KeysOf(11) == std::vector<TopupKey>{{"K1", 5}, {"K1", 7}, {"K2", 1}});
  CHECK(open.KeysOf(22) == std::vector<TopupKey>{{"K1", 3}});
  CHECK(open.KeysOf(33).empty());
  CHECK(open.all().size() == 4);

  TopupRecord expired = OpenTopup("K1", 7, 11);
  expired.status = TopupStatus::expired;
  open.Put(expired);  // replaced, not added
  CHECK(open.KeysOf(11).size() == 3);
  CHECK(open.At({"K1", 7}).status == TopupStatus::expired);

  open.Erase({"K1", 5});
  open.Erase({"K9", 9});  // not open: nothing happens
  CHECK(open.KeysOf(11) == std::vector<TopupKey>{{"K1", 7}, {"K2", 1}});
  open.Erase({"K1", 3});
  CHECK(open.KeysOf(22).empty());
  CHECK(open.all().size() == 2);

  // A record under a key that named another card moves to that card.
  open.Put(OpenTopup("K2", 1, 22));
  CHECK(open.KeysOf(11) == std::vector<TopupKey>{{"K1", 7}});
  CHECK(open.KeysOf(22) == std::vector<TopupKey>{{"K2", 1}});
  open.Clear();
  CHECK(open.all().empty());
  CHECK(open.KeysOf(11).empty());
}

TEST_CASE("open top-ups give the pending ones due by a time, in key order, and no expired one",
          "[core][topup]") {
  OpenTopups open;
  auto with_expiry = [](TopupRecord t, int64_t expires_ms, TopupStatus status) {
    t.expires_ms = expires_ms;
    t.status = status;
    return t;
  };
  open.Put(with_expiry(OpenTopup("K2", 1, 11), 100, TopupStatus::pending));
  open.Put(with_expiry(OpenTopup("K1", 2, 22), 300, TopupStatus::pending));
  open.Put(with_expiry(OpenTopup("K1", 3, 33), 50, TopupStatus::expired));
  open.Put(with_expiry(OpenTopup("K1", 4, 44), 100, TopupStatus::pending));
  CHECK(open.PendingExpiringBy(99).empty());
  auto due = open.PendingExpiringBy(100);
  REQUIRE(due.size() == 2);
  CHECK(due[0].terminal_id == "K1");
  CHECK(due[0].request_id == 4);
  CHECK(due[1].terminal_id == "K2");
  CHECK(open.PendingExpiringBy(1'000).size() == 3);

  // Expired, confirmed (erased) or given a later deadline: no longer due by 100.
  open.Put(with_expiry(OpenTopup("K2", 1, 11), 100, TopupStatus::expired));
  open.Erase({"K1", 4});
  open.Put(with_expiry(OpenTopup("K1", 2, 22), 900, TopupStatus::pending));
  CHECK(open.PendingExpiringBy(899).empty());
  CHECK(open.PendingExpiringBy(900).size() == 1);
  open.Clear();
  CHECK(open.PendingExpiringBy(1'000).empty());
}

TEST_CASE("a card's load settles its own top-up, not another card's with the same amounts",
          "[core][topup]") {
  IngestFixture f;
  FakeCard a = f.IssueCard(100);
  FakeCard b = f.IssueCard(100);
  REQUIRE(a.counter == b.counter);  // the two asks differ only by card
  REQUIRE(f.engine.AuthoriseTopup(Ask(a, 500, 1)).ok());
  REQUIRE(f.engine.AuthoriseTopup(Ask(b, 500, 2)).ok());
  // Other cards' open top-ups, which b's records must not be compared with.
  for (uint64_t r = 3; r < 40; ++r) {
    FakeCard other = f.IssueCard(100);
    REQUIRE(f.engine.AuthoriseTopup(Ask(other, 500, r)).ok());
  }
  f.engine.ClearCaches();  // the open top-ups are read back from the store, by card again
  TapRecord load = f.Tap(b, "K1", 500, TapType::load);
  TapRecord ride = f.Tap(b, "T1", 200);
  CHECK(f.IngestMany({load, ride}) ==
        std::vector{IngestOutcome::accepted, IngestOutcome::accepted});
  CHECK((*f.tap_store.FindTopup("K1", 2))->status == TopupStatus::posted);
  CHECK((*f.tap_store.FindTopup("K1", 1))->status == TopupStatus::pending);
  CHECK(f.Purse(b.card_no) == 400);
  CHECK(f.Purse(a.card_no) == 100);
  CHECK(Pending(f, a.card_no) == 500);
  CHECK(f.LedgerSum() == 0);
}

TEST_CASE("an online top-up is pending until the card confirms it, then posted once",
          "[core][topup]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(300);
  auto d = f.engine.AuthoriseTopup(Ask(card, 1000));
  REQUIRE(d.ok());
  CHECK(d->outcome == TopupOutcome::authorised);
  CHECK(d->authorisation_id != 0);
  CHECK(d->balance_after_fen == 1300);
  LoadMacBytes expected{};
  REQUIRE(f.auth.LoadAuthorisation(1, LoadFields{card.card_no, card.counter, 300, 1000, "K1", 1},
                                   &expected));
  CHECK(d->host_mac == expected);
  CHECK(f.Purse(card.card_no) == 300);
  CHECK(Pending(f, card.card_no) == 1000);

  TapRecord load = f.Tap(card, "K1", 1000, TapType::load);
  auto c = f.engine.ConfirmTopup("K1", d->authorisation_id, EncodeTapRecord(load));
  REQUIRE(c.ok());
  CHECK(c->outcome == TopupOutcome::confirmed);
  CHECK(c->record_outcome == IngestOutcome::accepted);
  CHECK(f.Purse(card.card_no) == 1300);
  CHECK(Pending(f, card.card_no) == 0);

  auto again = f.engine.ConfirmTopup("K1", d->authorisation_id, EncodeTapRecord(load));
  REQUIRE(again.ok());
  CHECK(again->outcome == TopupOutcome::confirmed);
  CHECK(again->record_outcome == IngestOutcome::duplicate);
  CHECK(f.Purse(card.card_no) == 1300);
  auto topup = f.tap_store.FindTopup("K1", 1);
  CHECK((*topup)->status == TopupStatus::posted);
  auto totals = f.tap_store.DayTotals(ClearingDay(f.clock.NowSeconds()));
  REQUIRE(totals->size() == 1);
  CHECK((*totals)[0].operator_id == "KIOSKS");
  CHECK((*totals)[0].loads == 1);
  CHECK((*totals)[0].load_fen == 1000);
  CHECK((*totals)[0].taps == 0);
  // Taps after the load chain on from the loaded balance.
  CHECK(f.IngestOne(f.Tap(card, "T1", 200)) == IngestOutcome::accepted);
  CHECK(f.Purse(card.card_no) == 1100);
  CHECK(f.LedgerSum() == 0);
}

TEST_CASE("the same top-up request again gets the same authorisation; another is refused",
          "[core][topup]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(0);
  auto first = f.engine.AuthoriseTopup(Ask(card, 500));
  auto second = f.engine.AuthoriseTopup(Ask(card, 500));
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(second->outcome == TopupOutcome::authorised);
  CHECK(second->authorisation_id == first->authorisation_id);
  CHECK(second->host_mac == first->host_mac);
  CHECK(Pending(f, card.card_no) == 500);
  auto other = f.engine.AuthoriseTopup(Ask(card, 700));
  REQUIRE(other.ok());
  CHECK(other->outcome == TopupOutcome::duplicate_request);
}

TEST_CASE("a top-up is refused for an unknown or blocked card and an amount out of range",
          "[core][topup]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(0);
  FakeCard ghost;
  ghost.card_no = CardNumberToInt(MakeCardNumber(4242));
  CHECK(f.engine.AuthoriseTopup(Ask(ghost, 100))->outcome == TopupOutcome::card_not_found);
  CHECK(f.engine.AuthoriseTopup(Ask(card, 0, 2))->outcome == TopupOutcome::amount_out_of_range);
  CHECK(f.engine.AuthoriseTopup(Ask(card, 200'000, 3))->outcome ==
        TopupOutcome::amount_out_of_range);
  REQUIRE(f.office.Block(CardNumberFromInt(card.card_no), BlockReason::lost).ok());
  CHECK(f.engine.AuthoriseTopup(Ask(card, 100, 4))->outcome == TopupOutcome::card_blocked);
  CHECK(Pending(f, card.card_no) == 0);
}

TEST_CASE("a confirmation for an unknown authorisation or another load is refused",
          "[core][topup]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(0);
  auto d = f.engine.AuthoriseTopup(Ask(card, 500));
  REQUIRE(d.ok());
  FakeCard copy = card;
  TapRecord wrong = f.Tap(copy, "K1", 400, TapType::load);
  auto c = f.engine.ConfirmTopup("K1", d->authorisation_id, EncodeTapRecord(wrong));
  CHECK(c->outcome == TopupOutcome::amount_mismatch);
  TapRecord load = f.Tap(card, "K1", 500, TapType::load);
  c = f.engine.ConfirmTopup("K1", d->authorisation_id + 2, EncodeTapRecord(load));
  CHECK(c->outcome == TopupOutcome::authorisation_not_found);
  load.tac[0] ^= 1;
  f.Sign(&load, /*keep_tac=*/true);
  c = f.engine.ConfirmTopup("K1", d->authorisation_id, EncodeTapRecord(load));
  CHECK(c->outcome == TopupOutcome::bad_record);
  CHECK(c->record_outcome == IngestOutcome::bad_tac);
  CHECK(f.Purse(card.card_no) == 0);
}

TEST_CASE("the card's load record in a later batch posts the pending top-up",
          "[core][topup]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(100);
  REQUIRE(f.engine.AuthoriseTopup(Ask(card, 500)).ok());
  TapRecord load = f.Tap(card, "K1", 500, TapType::load);
  TapRecord ride = f.Tap(card, "T1", 200);
  const int64_t searches_before = f.ledger_store.id_searches();
  CHECK(f.IngestMany({load, ride}) ==
        std::vector{IngestOutcome::accepted, IngestOutcome::accepted});
  CHECK(f.Purse(card.card_no) == 400);
  CHECK((*f.tap_store.FindTopup("K1", 1))->status == TopupStatus::posted);
  // A group with a top-up's transfer is posted with the searching Apply (docs/ingest.md
  // "Posting"): both transfers' ids, their failures and the pending transfer were looked up.
  CHECK(f.ledger_store.id_searches() - searches_before == 5);
}

TEST_CASE("a load record that no authorised top-up matches is refused with an alert",
          "[core][topup]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(100);
  TapRecord load = f.Tap(card, "K1", 500, TapType::load);
  CHECK(f.IngestOne(load) == IngestOutcome::unmatched_load);
  REQUIRE(f.Alerts(AlertKind::unmatched_load).size() == 1);
  CHECK(f.Purse(card.card_no) == 100);
}

TEST_CASE("an unconfirmed top-up is voided at its timeout", "[core][topup]") {
  IngestConfig config;
  config.topup_timeout_s = 600;
  IngestFixture f(config);
  FakeCard card = f.IssueCard(100);
  REQUIRE(f.engine.AuthoriseTopup(Ask(card, 500)).ok());
  f.clock.AdvanceMs(599'000);
  CHECK(*f.engine.ExpireTopups() == 0);
  f.clock.AdvanceMs(2'000);
  CHECK(*f.engine.ExpireTopups() == 1);
  CHECK(Pending(f, card.card_no) == 0);
  CHECK(f.Purse(card.card_no) == 100);
  CHECK((*f.tap_store.FindTopup("K1", 1))->status == TopupStatus::expired);
  CHECK(*f.engine.ExpireTopups() == 0);
  // The card never applied it: its next tap starts from the old balance.
  CHECK(f.IngestOne(f.Tap(card, "T1", 50)) == IngestOutcome::accepted);
  CHECK(f.Purse(card.card_no) == 50);
  CHECK(f.LedgerSum() == 0);
}

TEST_CASE("an expired top-up that a later tap proves the card holds is booked once, recovered",
          "[core][topup]") {
  IngestConfig config;
  config.topup_timeout_s = 600;
  IngestFixture f(config);
  FakeCard card = f.IssueCard(100);
  REQUIRE(f.engine.AuthoriseTopup(Ask(card, 500)).ok());
  f.Tap(card, "K1", 500, TapType::load);  // the card loaded; its confirmation never arrives
  f.clock.AdvanceMs(700'000);
  CHECK(*f.engine.ExpireTopups() == 1);
  CHECK(f.Purse(card.card_no) == 100);

  TapRecord ride = f.Tap(card, "T1", 200);
  CHECK(ride.balance_before_fen == 600);
  CHECK(f.IngestOne(ride) == IngestOutcome::accepted);  // not forged: the load was authorised
  CHECK(f.Purse(card.card_no) == 400);
  CHECK((*f.tap_store.FindTopup("K1", 1))->status == TopupStatus::recovered);
  REQUIRE(f.Alerts(AlertKind::topup_recovered).size() == 1);

  CHECK(f.IngestOne(ride) == IngestOutcome::duplicate);
  CHECK(*f.engine.ExpireTopups() == 0);
  CHECK(f.Purse(card.card_no) == 400);
  CHECK(f.LedgerSum() == 0);
}

TEST_CASE("a tap proving a load before its timeout posts the pending top-up",
          "[core][topup]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(100);
  REQUIRE(f.engine.AuthoriseTopup(Ask(card, 500)).ok());
  f.Tap(card, "K1", 500, TapType::load);
  CHECK(f.IngestOne(f.Tap(card, "T1", 200)) == IngestOutcome::accepted);
  CHECK(f.Purse(card.card_no) == 400);
  CHECK(Pending(f, card.card_no) == 0);
  CHECK((*f.tap_store.FindTopup("K1", 1))->status == TopupStatus::posted);
  CHECK(f.Alerts(AlertKind::topup_recovered).empty());
}

}  // namespace
}  // namespace citycard

// ---- Grouped authorisations (IngestEngine::AuthoriseTopups) ----

namespace citycard {
namespace {

// The cards of the grouped tests, issued the same way in every fixture (so with the same
// numbers): one for each outcome an ask can have.
struct GroupCards {
  FakeCard good;
  FakeCard other;
  FakeCard blocked;
  FakeCard expiring;  // valid until tomorrow: expired once the clock moved two days on
  FakeCard ghost;     // never issued
};

IngestConfig GroupConfig() {
  IngestConfig config;
  config.purse_balance_max_fen = 1'000;  // two asks of 600 for one purse: the second is refused
  return config;
}

GroupCards IssueGroupCards(IngestFixture& f) {
  GroupCards c;
  c.good = f.IssueCard(0);
  c.other = f.IssueCard(0);
  c.blocked = f.IssueCard(0);
  REQUIRE(f.office.Block(CardNumberFromInt(c.blocked.card_no), BlockReason::lost).ok());
  IssueRequest expiring;
  std::string first17 = "32128119900101999";
  expiring.national_id = first17 + NationalIdCheckChar(first17);
  expiring.name = "李四";
  expiring.expires_day = ClearingDay(f.clock.NowSeconds()) + 1;
  auto view = f.office.IssueCard(expiring);
  REQUIRE(view.ok());
  c.expiring.card_no = CardNumberToInt(view->card.card_no);
  c.ghost.card_no = CardNumberToInt(MakeCardNumber(4242));
  f.clock.AdvanceMs(2 * 86'400'000);
  return c;
}

// Every outcome an authorisation can have, and repeats inside the group.
std::vector<TopupAsk> GroupAsks(const GroupCards& c) {
  return {
      Ask(c.good, 600, 1),       // authorised
      Ask(c.good, 600, 1),       // the same request again in the group: the same answer
      Ask(c.good, 700, 1),       // another top-up under that request id: duplicate_request
      Ask(c.good, 600, 2),       // the purse limit counts the group's first 600: out of range
      Ask(c.other, 300, 3),      // authorised
      Ask(c.ghost, 100, 4),      // card_not_found
      Ask(c.blocked, 100, 5),    // card_blocked
      Ask(c.expiring, 100, 6),   // card_expired
      Ask(c.other, 0, 7),        // amount_out_of_range
      Ask(c.other, 200, 8),      // authorised: 500 of the 1,000 the purse may hold
  };
}

}  // namespace

TEST_CASE("grouped top-up authorisations give each ask what it would get one by one",
          "[core][topup]") {
  IngestFixture grouped(GroupConfig());
  IngestFixture single(GroupConfig());
  GroupCards gc = IssueGroupCards(grouped);
  GroupCards sc = IssueGroupCards(single);
  REQUIRE(gc.good.card_no == sc.good.card_no);
  // A request stored before the group is answered from the store inside it.
  REQUIRE(grouped.engine.AuthoriseTopup(Ask(gc.other, 100, 9)).ok());
  REQUIRE(single.engine.AuthoriseTopup(Ask(sc.other, 100, 9)).ok());
  std::vector<TopupAsk> asks = GroupAsks(gc);
  asks.push_back(Ask(gc.other, 100, 9));  // authorised again (stored), nothing more pending
  asks.push_back(Ask(gc.other, 150, 9));  // duplicate_request against the stored one

  auto answers = grouped.engine.AuthoriseTopups(asks);
  REQUIRE(answers.ok());
  REQUIRE(answers->size() == asks.size());
  std::vector<TopupOutcome> outcomes;
  for (size_t i = 0; i < asks.size(); ++i) {
    auto one = single.engine.AuthoriseTopup(asks[i]);
    REQUIRE(one.ok());
    REQUIRE((*answers)[i].ok());
    const TopupDecision& g = *(*answers)[i];
    CHECK(g.outcome == one->outcome);
    CHECK(g.authorisation_id == one->authorisation_id);
    CHECK(g.balance_after_fen == one->balance_after_fen);
    CHECK(g.amount_fen == one->amount_fen);
    CHECK(g.host_mac == one->host_mac);
    outcomes.push_back(g.outcome);
  }
  using O = TopupOutcome;
  CHECK(outcomes == std::vector<O>{O::authorised, O::authorised, O::duplicate_request,
                                   O::amount_out_of_range, O::authorised, O::card_not_found,
                                   O::card_blocked, O::card_expired, O::amount_out_of_range,
                                   O::authorised, O::authorised, O::duplicate_request});
  CHECK((*answers)[1]->authorisation_id == (*answers)[0]->authorisation_id);
  CHECK(Pending(grouped, gc.good.card_no) == 600);
  CHECK(Pending(grouped, gc.other.card_no) == 600);
  CHECK(Pending(single, sc.good.card_no) == 600);
  CHECK(Pending(single, sc.other.card_no) == 600);
  CHECK(grouped.LedgerSum() == 0);
  // The group's top-ups are stored as one by one, and confirm as they do.
  auto stored = grouped.tap_store.FindTopup("K1", 3);
  REQUIRE(stored.ok());
  REQUIRE(stored->has_value());
  CHECK((*stored)->status == TopupStatus::pending);
  CHECK((*stored)->authorisation_id == (*answers)[4]->authorisation_id);
  TapRecord load = grouped.Tap(gc.other, "K1", 300, TapType::load);
  load.card_counter = 1;  // the counter the ask named
  load.balance_before_fen = 0;
  grouped.Sign(&load);
  auto confirmed =
      grouped.engine.ConfirmTopup("K1", (*answers)[4]->authorisation_id, EncodeTapRecord(load));
  REQUIRE(confirmed.ok());
  CHECK(confirmed->outcome == TopupOutcome::confirmed);
}

TEST_CASE("a top-up the ledger declines in a group fails alone; the others are booked",
          "[core][topup]") {
  IngestFixture f;
  FakeCard good = f.IssueCard(0);
  FakeCard closed = f.IssueCard(0);
  // The purse account closed while the card is still active: the pending credit is declined.
  REQUIRE(f.ledger.SetAccountClosed(AccountIdFor(AccountKind::card_purse, closed.card_no)).ok());
  int calls = 0;
  auto answers = f.engine.AuthoriseTopups(
      std::vector<TopupAsk>{Ask(good, 100, 1), Ask(closed, 100, 2), Ask(closed, 100, 2),
                            Ask(good, 200, 3)},
      [&calls] {
        ++calls;
        return Status::Ok();
      });
  REQUIRE(answers.ok());
  CHECK((*answers)[0].ok());
  REQUIRE_FALSE((*answers)[1].ok());
  CHECK((*answers)[1].status().code() == "topup_declined");
  REQUIRE_FALSE((*answers)[2].ok());
  CHECK((*answers)[2].status().code() == "topup_declined");
  REQUIRE((*answers)[3].ok());
  CHECK((*answers)[3]->outcome == TopupOutcome::authorised);
  CHECK(calls == 3);  // the first attempt, one without each declined ask
  CHECK(Pending(f, good.card_no) == 300);
  CHECK(Pending(f, closed.card_no) == 0);
  CHECK_FALSE(f.tap_store.FindTopup("K1", 2)->has_value());
  // Declined asks are not remembered as declined: the ledger took none of their transfers.
  CHECK(f.LedgerSum() == 0);
}

TEST_CASE("a group of top-ups whose commit fails books nothing and answers nothing",
          "[core][topup]") {
  IngestFixture f;
  FakeCard a = f.IssueCard(0);
  FakeCard b = f.IssueCard(0);
  std::vector<TopupAsk> asks{Ask(a, 100, 1), Ask(b, 200, 2), Ask(a, 100, 1)};
  f.ledger_store.FailNextCommit();
  auto failed = f.engine.AuthoriseTopups(asks);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == "injected_fault");
  CHECK(Pending(f, a.card_no) == 0);
  CHECK(Pending(f, b.card_no) == 0);
  CHECK_FALSE(f.tap_store.FindTopup("K1", 1)->has_value());
  CHECK_FALSE(f.tap_store.FindTopup("K1", 2)->has_value());
  // Nothing was kept in memory either: the same group again is booked whole.
  auto again = f.engine.AuthoriseTopups(asks);
  REQUIRE(again.ok());
  CHECK((*again)[0]->outcome == TopupOutcome::authorised);
  CHECK((*again)[1]->outcome == TopupOutcome::authorised);
  CHECK(Pending(f, a.card_no) == 100);
  CHECK(Pending(f, b.card_no) == 200);
}

TEST_CASE("a group fails whole when the caller's writes inside its transaction fail",
          "[core][topup]") {
  IngestFixture f;
  FakeCard a = f.IssueCard(0);
  auto failed = f.engine.AuthoriseTopups(std::vector<TopupAsk>{Ask(a, 100, 1)}, [] {
    return Status::Internal("audit_write_failed", "injected");
  });
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == "audit_write_failed");
  CHECK(Pending(f, a.card_no) == 0);
  CHECK_FALSE(f.tap_store.FindTopup("K1", 1)->has_value());
  // With no asks at all, the caller's writes still get their transaction.
  int calls = 0;
  auto empty = f.engine.AuthoriseTopups({}, [&calls] {
    ++calls;
    return Status::Ok();
  });
  REQUIRE(empty.ok());
  CHECK(empty->empty());
  CHECK(calls == 1);
}

TEST_CASE("more top-ups than a group may hold are refused whole", "[core][topup]") {
  IngestFixture f;
  FakeCard a = f.IssueCard(0);
  std::vector<TopupAsk> asks(kTopupGroupMax + 1, Ask(a, 1, 1));
  auto refused = f.engine.AuthoriseTopups(asks);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == "too_many_topups");
  CHECK(Pending(f, a.card_no) == 0);
}

}  // namespace citycard
