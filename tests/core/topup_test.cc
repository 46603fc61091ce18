// Online top-up, two-phase (core/ingest.h AuthoriseTopup, ConfirmTopup, ExpireTopups).
#include <catch2/catch.hpp>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/ingest.h"
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
  CHECK(f.IngestMany({load, ride}) ==
        std::vector{IngestOutcome::accepted, IngestOutcome::accepted});
  CHECK(f.Purse(card.card_no) == 400);
  CHECK((*f.tap_store.FindTopup("K1", 1))->status == TopupStatus::posted);
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
