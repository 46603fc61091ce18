// Tap ingest (core/ingest.h): one test per outcome and per alert, with records forged or bent
// the way a reader, a card or an attacker could, over in-memory stores and fake MACs.
#include "core/ingest.h"

#include <catch2/catch.hpp>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/time.h"
#include "tests/support/ingest_fixture_support.h"

namespace citycard {
namespace {

using testing::FakeCard;
using testing::IngestFixture;

TEST_CASE("a valid tap is accepted and moves its amount from the purse to the operator",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  TapRecord r = f.Tap(card, "T1", 200);
  CHECK(f.IngestOne(r) == IngestOutcome::accepted);
  CHECK(f.Purse(card.card_no) == 800);
  CHECK(f.Payable("BUS1") == 200);
  CHECK(f.LedgerSum() == 0);
  auto stored = f.tap_store.FindByTerminalCounter("T1", r.terminal_counter);
  REQUIRE(stored.ok());
  REQUIRE(stored->has_value());
  CHECK((*stored)->record == r);
  CHECK((*stored)->received_ms == testing::kFixtureStartMs);
  CHECK((*stored)->clearing_day == ClearingDay(testing::kFixtureStartMs / 1000));
  CHECK_FALSE((*stored)->late);
  CHECK((*stored)->charged_card_no == card.card_no);
  CHECK((*stored)->transfer_id == TapTransferId(f.digester, "T1", r.terminal_counter));
  CHECK(f.Alerts().empty());
}

TEST_CASE("a tap uploaded on a later clearing day is booked on the arrival day and marked late",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  TapRecord r = f.Tap(card, "T1", 200);
  f.clock.AdvanceMs(kSecondsPerDay * 1000);
  CHECK(f.IngestOne(r) == IngestOutcome::accepted_late);
  auto stored = f.tap_store.FindByTerminalCounter("T1", r.terminal_counter);
  REQUIRE(stored->has_value());
  CHECK((*stored)->late);
  int64_t today = ClearingDay(f.clock.NowSeconds());
  CHECK((*stored)->clearing_day == today);
  auto totals = f.tap_store.DayTotals(today);
  REQUIRE(totals.ok());
  REQUIRE(totals->size() == 1);
  CHECK((*totals)[0].operator_id == "BUS1");
  CHECK((*totals)[0].taps == 1);
  CHECK((*totals)[0].paid_fen == 200);
  CHECK((*totals)[0].late_taps == 1);
}

TEST_CASE("the same record uploaded again is a duplicate and moves nothing", "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  TapRecord r = f.Tap(card, "T1", 200);
  CHECK(f.IngestOne(r) == IngestOutcome::accepted);
  CHECK(f.IngestOne(r) == IngestOutcome::duplicate);
  // Also within one group.
  TapRecord s = f.Tap(card, "T1", 100);
  CHECK(f.IngestMany({s, s}) == std::vector{IngestOutcome::accepted, IngestOutcome::duplicate});
  CHECK(f.Purse(card.card_no) == 700);
  CHECK(f.Payable("BUS1") == 300);
  CHECK(f.tap_store.tap_count() == 2);
}

TEST_CASE("another record under a booked terminal counter is a conflict with an alert",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  FakeCard other = f.IssueCard(1000);
  TapRecord r = f.Tap(card, "T1", 200);
  CHECK(f.IngestOne(r) == IngestOutcome::accepted);
  TapRecord s = f.Tap(other, "T1", 300);
  s.terminal_counter = r.terminal_counter;
  f.Sign(&s);
  CHECK(f.IngestOne(s) == IngestOutcome::conflict);
  CHECK(f.Purse(other.card_no) == 1000);
  auto alerts = f.Alerts(AlertKind::conflict);
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].terminal_id == "T1");
  CHECK(alerts[0].card_no == other.card_no);
}

TEST_CASE("records that fail the terminal checks are refused, each with its own outcome",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);

  TapRecord bad_text = f.Tap(card, "T1", 100);
  bad_text.operator_id = "BAD OP";
  CHECK(f.IngestOne(bad_text) == IngestOutcome::invalid_record);

  TapRecord wrong = f.Tap(card, "T1", 100);
  CHECK(f.IngestOne(wrong, "T2") == IngestOutcome::wrong_terminal);

  TapRecord unknown = f.Tap(card, "T1", 100);
  unknown.terminal_id = "NOPE";
  CHECK(f.IngestOne(unknown) == IngestOutcome::unknown_terminal);

  TapRecord op = f.Tap(card, "T1", 100);
  op.operator_id = "METRO";
  f.Sign(&op);
  CHECK(f.IngestOne(op) == IngestOutcome::wrong_operator);

  TapRecord mac = f.Tap(card, "T1", 100);
  mac.terminal_mac[0] ^= 1;
  CHECK(f.IngestOne(mac) == IngestOutcome::bad_terminal_mac);

  TapRecord changed = f.Tap(card, "T1", 100);
  changed.amount_fen = 1;  // changed after the terminal signed it
  CHECK(f.IngestOne(changed) == IngestOutcome::bad_terminal_mac);

  TapRecord version = f.Tap(card, "T1", 100);
  version.terminal_key_version = 9;
  CHECK(f.IngestOne(version) == IngestOutcome::unknown_terminal_key);

  REQUIRE(f.terminals.DisableTerminal("T2").ok());
  TapRecord disabled = f.Tap(card, "T2", 100);
  CHECK(f.IngestOne(disabled) == IngestOutcome::terminal_disabled);

  CHECK(f.Purse(card.card_no) == 1000);
  CHECK(f.tap_store.tap_count() == 0);
}

TEST_CASE("a record signed with a revoked terminal key is refused", "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  Terminal t;
  t.id = "R1";
  t.operator_id = "BUS1";
  t.keys.push_back(TerminalKey{1, Bytes(33, 7), 0, true});
  t.keys.push_back(TerminalKey{2, Bytes(33, 8), 0, false});
  REQUIRE(f.registry.InsertTerminal(t).ok());
  TapRecord r = f.Tap(card, "R1", 100);  // signed with the current version, 2
  CHECK(r.terminal_key_version == 2);
  TapRecord old = r;
  old.terminal_key_version = 1;
  f.Sign(&old);
  CHECK(f.IngestOne(old) == IngestOutcome::terminal_key_revoked);
  CHECK(f.IngestOne(r) == IngestOutcome::accepted);
}

TEST_CASE("records that fail the card checks are refused, each with its own outcome",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);

  TapRecord unknown = f.Tap(card, "T1", 100);
  unknown.card_no = CardNumberToInt(MakeCardNumber(999'999));
  f.Sign(&unknown);
  CHECK(f.IngestOne(unknown) == IngestOutcome::unknown_card);

  TapRecord tac = f.Tap(card, "T1", 100);
  tac.tac[3] ^= 0x10;
  f.Sign(&tac, /*keep_tac=*/true);
  CHECK(f.IngestOne(tac) == IngestOutcome::bad_tac);

  TapRecord forged_amount = f.Tap(card, "T1", 100);
  TapRecord original = forged_amount;
  forged_amount.amount_fen = 10;  // the terminal signs what the card did not
  f.Sign(&forged_amount, /*keep_tac=*/true);
  CHECK(f.IngestOne(forged_amount) == IngestOutcome::bad_tac);

  TapRecord version = f.Tap(card, "T1", 100);
  version.tac_key_version = 7;
  f.Sign(&version, /*keep_tac=*/true);
  CHECK(f.IngestOne(version) == IngestOutcome::unknown_card_key);

  CHECK(f.Purse(card.card_no) == 1000);
}

TEST_CASE("a torn transaction is booked once: missing TAC first, recovered TAC later",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  TapRecord full = f.Tap(card, "T1", 200);
  TapRecord torn = full;
  torn.tac = {};
  f.Sign(&torn, /*keep_tac=*/true);
  CHECK(f.IngestOne(torn) == IngestOutcome::tac_missing);
  CHECK(f.Purse(card.card_no) == 1000);
  CHECK(f.IngestOne(full) == IngestOutcome::accepted);
  CHECK(f.IngestOne(full) == IngestOutcome::duplicate);
  // The torn version arriving after the recovered one is the same transaction, not a conflict.
  CHECK(f.IngestOne(torn) == IngestOutcome::duplicate);
  CHECK(f.Purse(card.card_no) == 800);
  CHECK(f.Alerts().empty());
}

TEST_CASE("a second transaction under a booked card counter is a cloned card",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  FakeCard clone = card;
  TapRecord r = f.Tap(card, "T1", 200);
  f.Tap(card, "T1", 100);  // the genuine card goes on: its next record is not uploaded here
  CHECK(f.IngestOne(r) == IngestOutcome::accepted);
  TapRecord c = f.Tap(clone, "T2", 200);  // the clone spends the same counter elsewhere
  CHECK(c.card_counter == r.card_counter);
  // The counter is not above the highest booked one, so it is checked against the booked one.
  CHECK(f.IngestOne(c) == IngestOutcome::cloned_card);
  CHECK(f.Purse(card.card_no) == 800);
  REQUIRE(f.Alerts(AlertKind::cloned_card).size() == 1);
}

TEST_CASE("a card counter older than the window is refused", "[core][ingest]") {
  IngestConfig config;
  config.card_counter_window = 3;
  IngestFixture f(config);
  FakeCard card = f.IssueCard(1000);
  TapRecord old = f.Tap(card, "T1", 10);
  for (int i = 0; i < 3; ++i) f.Tap(card, "T1", 10);
  TapRecord last = f.Tap(card, "T1", 10);
  CHECK(f.IngestOne(last) == IngestOutcome::accepted);
  CHECK(last.card_counter - old.card_counter == 4);
  CHECK(f.IngestOne(old) == IngestOutcome::card_counter_too_old);
}

TEST_CASE("a gap in card counters is recorded as missing taps and filled when they arrive",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  TapRecord a = f.Tap(card, "T1", 100);
  TapRecord b = f.Tap(card, "T2", 100);
  TapRecord c = f.Tap(card, "T2", 100);
  TapRecord d = f.Tap(card, "T1", 100);
  CHECK(f.IngestOne(a) == IngestOutcome::accepted);
  CHECK(f.IngestOne(d) == IngestOutcome::accepted);
  auto alerts = f.Alerts(AlertKind::missing_card_taps);
  REQUIRE(alerts.size() == 1);
  auto gaps = f.tap_store.ListGaps(GapKind::card);
  REQUIRE(gaps->size() == 1);
  CHECK((*gaps)[0].from == b.card_counter);
  CHECK((*gaps)[0].to == c.card_counter);
  // Out of order, and not forged: the bound adds back what the card paid after them.
  CHECK(f.IngestOne(c) == IngestOutcome::accepted);
  gaps = f.tap_store.ListGaps(GapKind::card);
  REQUIRE(gaps->size() == 1);
  CHECK((*gaps)[0].from == b.card_counter);
  CHECK((*gaps)[0].to == b.card_counter);
  CHECK(f.IngestOne(b) == IngestOutcome::accepted);
  CHECK(f.tap_store.ListGaps(GapKind::card)->empty());
  CHECK(f.Purse(card.card_no) == 600);
  CHECK(f.Purse(card.card_no) == card.balance_fen);
}

TEST_CASE("a gap in terminal counters is recorded as possibly lost uploads", "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  TapRecord a = f.Tap(card, "T1", 100);
  f.ttc["T1"] += 5;  // five records the terminal made and never uploaded
  FakeCard other = f.IssueCard(1000);
  TapRecord b = f.Tap(other, "T1", 100);
  CHECK(f.IngestOne(a) == IngestOutcome::accepted);
  CHECK(f.IngestOne(b) == IngestOutcome::accepted);
  auto alerts = f.Alerts(AlertKind::lost_uploads);
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].terminal_id == "T1");
  auto gaps = f.tap_store.ListGaps(GapKind::terminal);
  REQUIRE(gaps->size() == 1);
  CHECK((*gaps)[0].terminal_id == "T1");
  CHECK((*gaps)[0].from == a.terminal_counter + 1);
  CHECK((*gaps)[0].to == b.terminal_counter - 1);
  auto terminal = f.GetTerminal("T1");
  CHECK(terminal.counter == b.terminal_counter);
}

TEST_CASE("a balance that rose without a load is a forged card: refused and denylisted",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(500);
  TapRecord a = f.Tap(card, "T1", 100);
  CHECK(f.IngestOne(a) == IngestOutcome::accepted);
  card.balance_fen += 10'000;  // the chip was tampered with
  TapRecord b = f.Tap(card, "T1", 100);
  CHECK(f.IngestOne(b) == IngestOutcome::forged_balance);
  CHECK(f.Purse(card.card_no) == 400);
  REQUIRE(f.Alerts(AlertKind::forged_balance).size() == 1);
  auto listed = f.Listed(card.card_no);
  REQUIRE(listed.has_value());
  CHECK(listed->reason == DenyReason::fraud);
}

TEST_CASE("a first record claiming more than the ledger's purse is a forged card",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(500);
  card.balance_fen = 50'000;
  CHECK(f.IngestOne(f.Tap(card, "T1", 100)) == IngestOutcome::forged_balance);
  CHECK(f.Listed(card.card_no).has_value());
}

TEST_CASE("a card holding less than its previous record left raises a balance mismatch",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(500);
  CHECK(f.IngestOne(f.Tap(card, "T1", 100)) == IngestOutcome::accepted);
  card.balance_fen -= 50;
  CHECK(f.IngestOne(f.Tap(card, "T1", 100)) == IngestOutcome::accepted);
  REQUIRE(f.Alerts(AlertKind::balance_mismatch).size() == 1);
  CHECK(f.Purse(card.card_no) == 300);
}

TEST_CASE("a blocked card's tap made before the terminal knew is honoured silently",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  TapRecord r = f.Tap(card, "T1", 100);
  REQUIRE(f.office.Block(CardNumberFromInt(card.card_no), BlockReason::lost).ok());
  auto listed = f.Listed(card.card_no);
  REQUIRE(listed.has_value());
  // The terminal learns the new version only after the tap.
  REQUIRE(f.engine.NoteTerminalDenylistVersion("T1", listed->version,
                                               f.clock.NowMs() + 60'000).ok());
  CHECK(f.IngestOne(r) == IngestOutcome::accepted);
  CHECK(f.Alerts().empty());
  CHECK(f.Purse(card.card_no) == 900);
}

TEST_CASE("a blocked card's tap made after the terminal knew is honoured with an alert",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  REQUIRE(f.office.Block(CardNumberFromInt(card.card_no), BlockReason::stolen).ok());
  auto listed = f.Listed(card.card_no);
  REQUIRE(f.engine.NoteTerminalDenylistVersion("T1", listed->version, f.clock.NowMs()).ok());
  f.clock.AdvanceMs(60'000);
  CHECK(f.IngestOne(f.Tap(card, "T1", 100)) == IngestOutcome::accepted_with_alert);
  CHECK(f.Purse(card.card_no) == 900);
  CHECK(f.Payable("BUS1") == 100);
  REQUIRE(f.Alerts(AlertKind::blocked_card_tap).size() == 1);
}

TEST_CASE("an overdrawn purse goes on the denylist and a denylisted card's later tap alerts",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(100, Profile::student);  // may overdraw by 200 on the chip
  CHECK(f.IngestOne(f.Tap(card, "T1", 250)) == IngestOutcome::accepted);
  CHECK(f.Purse(card.card_no) == -150);
  auto listed = f.Listed(card.card_no);
  REQUIRE(listed.has_value());
  CHECK(listed->reason == DenyReason::negative_balance);
  REQUIRE(f.Alerts(AlertKind::negative_balance).size() == 1);

  REQUIRE(f.engine.NoteTerminalDenylistVersion("M1", listed->version, f.clock.NowMs()).ok());
  f.clock.AdvanceMs(1000);
  card.balance_fen = -150;
  TapRecord entry = f.Tap(card, "M1", 0, TapType::metro_entry);
  CHECK(f.IngestOne(entry) == IngestOutcome::accepted_with_alert);
  REQUIRE(f.Alerts(AlertKind::denylisted_card_tap).size() == 1);

  // A top-up that brings the purse back takes the card off the list.
  f.TopupAtCounter(card, 500);
  CHECK_FALSE(f.Listed(card.card_no).has_value());
}

TEST_CASE("a closed card's tap is refused with an alert", "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  TapRecord r = f.Tap(card, "T1", 100);
  REQUIRE(f.office.Close(CardNumberFromInt(card.card_no)).ok());
  CHECK(f.IngestOne(r) == IngestOutcome::card_closed);
  REQUIRE(f.Alerts(AlertKind::closed_card_tap).size() == 1);
  CHECK(f.Payable("BUS1") == 0);
}

TEST_CASE("a replaced card's taps charge the old purse in the hold period and the new one after",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  TapRecord during = f.Tap(card, "T1", 100);
  TapRecord after = f.Tap(card, "T1", 100);
  auto replaced = f.office.Replace(CardNumberFromInt(card.card_no), /*move_now=*/false);
  REQUIRE(replaced.ok());
  uint64_t new_no = CardNumberToInt(replaced->new_card.card.card_no);
  auto listed = f.Listed(card.card_no);
  REQUIRE(listed.has_value());

  CHECK(f.IngestOne(during) == IngestOutcome::accepted);
  CHECK(f.Purse(card.card_no) == 900);

  f.clock.AdvanceMs((f.office.config().replacement_hold_s + 1) * 1000);
  auto moved = f.office.ProcessDueReplacements();
  REQUIRE(moved.ok());
  CHECK(*moved == 1);
  CHECK(f.Purse(card.card_no) == 0);
  CHECK(f.Purse(new_no) == 900);

  // The terminal learnt of the replacement after the tap was made: honoured, no alert.
  REQUIRE(f.engine.NoteTerminalDenylistVersion("T1", listed->version, f.clock.NowMs()).ok());
  CHECK(f.IngestOne(after) == IngestOutcome::accepted_late);
  CHECK(f.Purse(card.card_no) == 0);
  CHECK(f.Purse(new_no) == 800);
  auto stored = f.tap_store.FindByTerminalCounter("T1", after.terminal_counter);
  CHECK((*stored)->charged_card_no == new_no);

  // A tap made by the old card after the terminal knew: honoured with an alert.
  f.clock.AdvanceMs(1000);
  CHECK(f.IngestOne(f.Tap(card, "T1", 100)) == IngestOutcome::accepted_with_alert);
  REQUIRE(f.Alerts(AlertKind::replaced_card_tap).size() == 1);
  CHECK(f.Purse(new_no) == 700);
  CHECK(f.LedgerSum() == 0);
}

TEST_CASE("a zero-amount tap is booked without a transfer", "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  TapRecord r = f.Tap(card, "M1", 0, TapType::metro_entry);
  CHECK(f.IngestOne(r) == IngestOutcome::accepted);
  auto stored = f.tap_store.FindByTerminalCounter("M1", r.terminal_counter);
  CHECK((*stored)->transfer_id.IsZero());
  auto totals = f.tap_store.DayTotals(ClearingDay(f.clock.NowSeconds()));
  REQUIRE(totals->size() == 1);
  CHECK((*totals)[0].taps == 1);
  CHECK((*totals)[0].paid_fen == 0);
}

TEST_CASE("a posting the ledger declines leaves its record for a retry and books the rest",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard good = f.IssueCard(1000);
  // A card row without a purse account: the ledger declines its tap (account_not_found).
  Card orphan;
  orphan.card_no = MakeCardNumber(777);
  orphan.purse_account_id = AccountIdFor(AccountKind::card_purse, CardNumberToInt(orphan.card_no));
  orphan.expires_day = 99'999;
  REQUIRE(f.registry.InsertCard(orphan).ok());
  FakeCard bad;
  bad.card_no = CardNumberToInt(orphan.card_no);
  auto out = f.IngestMany({f.Tap(good, "T1", 100), f.Tap(bad, "T1", 0 + 50),
                           f.Tap(good, "T1", 100)});
  CHECK(out == std::vector{IngestOutcome::accepted, IngestOutcome::retry_later,
                           IngestOutcome::accepted});
  CHECK(f.Purse(good.card_no) == 800);
  CHECK(f.tap_store.tap_count() == 2);
}

TEST_CASE("a failed store write leaves nothing of the group and the group can be sent again",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  std::vector<TapRecord> records = {f.Tap(card, "T1", 100), f.Tap(card, "T1", 100)};
  f.tap_store.FailNextWrite();
  std::vector<UploadedBatch> batches = {UploadedBatch{"T1", records}};
  auto failed = f.engine.Ingest(batches);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == "injected_fault");
  CHECK(f.Purse(card.card_no) == 1000);
  CHECK(f.tap_store.tap_count() == 0);
  CHECK(f.GetTerminal("T1").counter == 0);
  CHECK(f.IngestMany(records) == std::vector{IngestOutcome::accepted, IngestOutcome::accepted});
  CHECK(f.Purse(card.card_no) == 800);
}

TEST_CASE("a group from many terminals is one store write and one ledger batch",
          "[core][ingest]") {
  IngestFixture f;
  std::vector<FakeCard> cards;
  for (int i = 0; i < 5; ++i) cards.push_back(f.IssueCard(1000));
  std::vector<UploadedBatch> batches;
  for (const char* t : {"T1", "T2", "M1"}) {
    UploadedBatch b{t, {}};
    for (FakeCard& c : cards) b.records.push_back(f.Tap(c, t, 10));
    batches.push_back(b);
  }
  int writes = f.tap_store.writes();
  int ledger_writes = f.ledger_store.writes();
  auto out = f.engine.Ingest(batches);
  REQUIRE(out.ok());
  for (const auto& b : *out) {
    for (IngestOutcome o : b) CHECK(o == IngestOutcome::accepted);
  }
  CHECK(f.tap_store.writes() == writes + 1);
  CHECK(f.ledger_store.writes() == ledger_writes + 1);
  for (const FakeCard& c : cards) CHECK(f.Purse(c.card_no) == c.balance_fen);
  CHECK(f.Payable("BUS1") == 100);
  CHECK(f.Payable("METRO") == 50);
}

TEST_CASE("alerts are listed newest first and filtered by kind, card and terminal",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  FakeCard other = f.IssueCard(1000);
  TapRecord a = f.Tap(card, "T1", 100);
  f.Tap(card, "T1", 100);
  CHECK(f.IngestOne(a) == IngestOutcome::accepted);
  CHECK(f.IngestOne(f.Tap(card, "T2", 100)) == IngestOutcome::accepted);  // gap on the card
  TapRecord s = f.Tap(other, "T2", 100);
  s.terminal_counter = 1;
  f.Sign(&s);
  CHECK(f.IngestOne(s) == IngestOutcome::conflict);
  CHECK(f.Alerts().size() == 2);  // missing taps (card at T2), conflict (T2)
  AlertFilter filter;
  filter.card_no = other.card_no;
  auto by_card = f.tap_store.ListAlerts(filter);
  REQUIRE(by_card->size() == 1);
  CHECK((*by_card)[0].kind == AlertKind::conflict);
  filter = {};
  filter.terminal_id = "T2";
  CHECK(f.tap_store.ListAlerts(filter)->size() == 2);
  filter.terminal_id = "T1";
  CHECK(f.tap_store.ListAlerts(filter)->empty());
  filter = {};
  filter.kind = AlertKind::missing_card_taps;
  CHECK(f.tap_store.ListAlerts(filter)->size() == 1);
  CHECK(f.Alerts()[0].kind == AlertKind::conflict);  // newest first
}

TEST_CASE("outcome and alert names are stable and parse back", "[core][ingest]") {
  for (uint8_t n = 0; n <= kIngestOutcomeMax; ++n) {
    auto o = static_cast<IngestOutcome>(n);
    CHECK(ParseIngestOutcome(IngestOutcomeName(o)) == o);
  }
  for (uint8_t n = 1; n <= kAlertKindMax; ++n) {
    auto k = static_cast<AlertKind>(n);
    CHECK(ParseAlertKind(AlertKindName(k)) == k);
  }
  CHECK(IngestOutcomeName(IngestOutcome::card_counter_too_old) == "card_counter_too_old");
  CHECK(AlertKindName(AlertKind::lost_uploads) == "lost_uploads");
}

// ---- Proofs checked ahead (PrecheckProofs) ----

// Counts the checks the engine makes itself; the verdicts are the fake's.
class CountingAuthenticator final : public TapAuthenticator {
 public:
  TerminalMacVerdict VerifyTerminalMac(const Terminal& terminal, const TapRecord& record) override {
    ++macs;
    return inner.VerifyTerminalMac(terminal, record);
  }
  TacVerdict VerifyTac(const TapRecord& record) override {
    ++tacs;
    return inner.VerifyTac(record);
  }
  uint8_t CurrentCardKeyVersion() const override { return inner.CurrentCardKeyVersion(); }
  bool LoadAuthorisation(uint8_t version, const LoadFields& fields, LoadMacBytes* out) override {
    return inner.LoadAuthorisation(version, fields, out);
  }
  bool VerifyLoadConfirmation(uint8_t version, const LoadFields& fields, int64_t balance_after_fen,
                              ByteView mac) override {
    return inner.VerifyLoadConfirmation(version, fields, balance_after_fen, mac);
  }
  bool VerifyCardProof(uint64_t card_no, uint8_t version, ByteView input,
                       ByteView proof) override {
    return inner.VerifyCardProof(card_no, version, input, proof);
  }

  testing::FakeTapAuthenticator inner;
  int macs = 0;
  int tacs = 0;
};

std::vector<IngestOutcome> IngestChecked(IngestEngine& engine, const UploadedBatch& batch,
                                         const PrecheckedProofs& proofs) {
  auto out = engine.Ingest(std::span<const UploadedBatch>(&batch, 1),
                           std::span<const PrecheckedProofs>(&proofs, 1));
  REQUIRE(out.ok());
  return (*out)[0];
}

TEST_CASE("records whose proofs were checked ahead get the engine's outcomes without a second check",
          "[core][ingest]") {
  IngestFixture f;
  CountingAuthenticator counting;
  IngestEngine engine(f.registry, f.ledger, f.tap_store, counting, f.digester, f.clock, {});
  FakeCard card = f.IssueCard(1000);
  TapRecord good = f.Tap(card, "T1", 200);
  TapRecord bad_mac = f.Tap(card, "T1", 100);
  bad_mac.terminal_mac[0] ^= 1;
  TapRecord bad_tac = f.Tap(card, "T1", 50);
  bad_tac.amount_fen = 40;
  f.Sign(&bad_tac, /*keep_tac=*/true);
  UploadedBatch batch{"T1", {good, bad_mac, bad_tac}};

  testing::FakeTapAuthenticator ahead;
  PrecheckedProofs proofs = PrecheckProofs(ahead, f.GetTerminal("T1"), batch.records);
  REQUIRE(proofs.records.size() == 3);
  CHECK(proofs.records[0].checked);
  CHECK(proofs.records[0].mac == TerminalMacVerdict::valid);
  CHECK(proofs.records[0].tac == TacVerdict::valid);
  CHECK(proofs.records[1].mac == TerminalMacVerdict::mac_mismatch);
  CHECK(proofs.records[2].tac == TacVerdict::mismatch);

  CHECK(IngestChecked(engine, batch, proofs) ==
        std::vector<IngestOutcome>{IngestOutcome::accepted, IngestOutcome::bad_terminal_mac,
                                   IngestOutcome::bad_tac});
  CHECK(counting.macs == 0);
  CHECK(counting.tacs == 0);
  CHECK(f.Purse(card.card_no) == 800);
  CHECK(f.Payable("BUS1") == 200);
}

TEST_CASE("a batch checked ahead under keys its terminal no longer has is checked again",
          "[core][ingest]") {
  IngestFixture f;
  CountingAuthenticator counting;
  IngestEngine engine(f.registry, f.ledger, f.tap_store, counting, f.digester, f.clock, {});
  FakeCard card = f.IssueCard(1000);
  TapRecord forged = f.Tap(card, "T1", 200);
  forged.terminal_mac[0] ^= 1;
  UploadedBatch batch{"T1", {forged}};
  testing::FakeTapAuthenticator ahead;
  PrecheckedProofs proofs = PrecheckProofs(ahead, f.GetTerminal("T1"), batch.records);
  // Verdicts that would accept the record, under keys that are no longer the terminal's: the
  // engine must not take them.
  proofs.records[0].mac = TerminalMacVerdict::valid;
  proofs.records[0].tac = TacVerdict::valid;
  REQUIRE(f.terminals.RotateKey("T1").ok());

  CHECK(IngestChecked(engine, batch, proofs) ==
        std::vector<IngestOutcome>{IngestOutcome::bad_terminal_mac});
  CHECK(counting.macs == 1);
  CHECK(f.Purse(card.card_no) == 1000);
}

TEST_CASE("an invalid record and another terminal's record are not checked ahead",
          "[core][ingest]") {
  IngestFixture f;
  CountingAuthenticator counting;
  IngestEngine engine(f.registry, f.ledger, f.tap_store, counting, f.digester, f.clock, {});
  FakeCard card = f.IssueCard(1000);
  TapRecord invalid = f.Tap(card, "T1", 100);
  invalid.format_version = 99;
  TapRecord other = f.Tap(card, "T2", 100);
  UploadedBatch batch{"T1", {invalid, other}};
  testing::FakeTapAuthenticator ahead;
  PrecheckedProofs proofs = PrecheckProofs(ahead, f.GetTerminal("T1"), batch.records);
  REQUIRE(proofs.records.size() == 2);
  CHECK_FALSE(proofs.records[0].checked);
  CHECK_FALSE(proofs.records[1].checked);
  CHECK(IngestChecked(engine, batch, proofs) ==
        std::vector<IngestOutcome>{IngestOutcome::invalid_record, IngestOutcome::wrong_terminal});
  CHECK(counting.macs == 0);
}

// ---- Cards read ahead (CardPrefetcher) ----

// A batch of `records` checked and its cards read ahead, as the server's checker thread does.
PrecheckedProofs ReadAhead(IngestFixture& f, CardPrefetcher& prefetcher,
                           const UploadedBatch& batch) {
  testing::FakeTapAuthenticator ahead;
  PrecheckedProofs proofs = PrecheckProofs(ahead, f.GetTerminal(batch.terminal_id), batch.records);
  REQUIRE(prefetcher.Prefetch(batch.records, &proofs).ok());
  REQUIRE(proofs.cards.cards.size() == batch.records.size());
  return proofs;
}

TEST_CASE("a card read ahead under the registry's current stamps is taken without a registry read",
          "[core][ingest]") {
  IngestFixture f;
  IngestEngine engine(f.registry, f.ledger, f.tap_store, f.auth, f.digester, f.clock, {});
  FakeCard card = f.IssueCard(1000);
  UploadedBatch batch{"T1", {f.Tap(card, "T1", 200)}};
  CardPrefetcher prefetcher(f.registry);
  PrecheckedProofs proofs = ReadAhead(f, prefetcher, batch);
  REQUIRE(proofs.cards.cards[0] != nullptr);
  CHECK(proofs.cards.cards[0]->card.card_no == CardNumberFromInt(card.card_no));
  CHECK(proofs.cards.denylist_version >= 0);
  // Were the engine to read the card, this read would fail the group.
  f.registry.FailNextCardRead();
  CHECK(IngestChecked(engine, batch, proofs) == std::vector<IngestOutcome>{IngestOutcome::accepted});
  CHECK(f.Purse(card.card_no) == 800);
}

TEST_CASE("a card whose row or denylist entry changed after it was read ahead is read again",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  const std::string card_no = CardNumberFromInt(card.card_no);
  CardPrefetcher prefetcher(f.registry);

  SECTION("a card row changed: the engine sees it closed") {
    IngestEngine engine(f.registry, f.ledger, f.tap_store, f.auth, f.digester, f.clock, {});
    UploadedBatch batch{"T1", {f.Tap(card, "T1", 200)}};
    PrecheckedProofs proofs = ReadAhead(f, prefetcher, batch);
    REQUIRE(proofs.cards.cards[0] != nullptr);
    // A row change alone, no denylist change: only the card change count moves.
    auto row = f.registry.FindCard(card_no);
    REQUIRE(row.ok());
    REQUIRE(row->has_value());
    Card closed = **row;
    closed.status = CardStatus::closed;
    REQUIRE(f.registry.UpdateCard(closed).ok());
    CHECK(IngestChecked(engine, batch, proofs) ==
          std::vector<IngestOutcome>{IngestOutcome::card_closed});
    CHECK(f.Purse(card.card_no) == 1000);
  }
  SECTION("a denylist entry added: the engine reads the registry itself") {
    IngestEngine engine(f.registry, f.ledger, f.tap_store, f.auth, f.digester, f.clock, {});
    UploadedBatch batch{"T1", {f.Tap(card, "T1", 200)}};
    PrecheckedProofs proofs = ReadAhead(f, prefetcher, batch);
    REQUIRE(f.registry.DenylistAdd(card_no, DenyReason::lost).ok());
    f.registry.FailNextCardRead();
    auto out = engine.Ingest(std::span<const UploadedBatch>(&batch, 1),
                             std::span<const PrecheckedProofs>(&proofs, 1));
    REQUIRE_FALSE(out.ok());
    CHECK(out.status().code() == "injected_fault");
    CHECK(f.Purse(card.card_no) == 1000);
  }
}

TEST_CASE("the prefetcher reads the cards of authentic records only and keeps them while nothing changes",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  FakeCard other = f.IssueCard(1000);
  TapRecord good = f.Tap(card, "T1", 100);
  TapRecord bad_mac = f.Tap(other, "T1", 100);
  bad_mac.terminal_mac[0] ^= 1;
  TapRecord unknown = f.Tap(card, "T1", 100);
  unknown.card_no = CardNumberToInt(MakeCardNumber(999'999));
  f.Sign(&unknown);
  CardPrefetcher prefetcher(f.registry);
  PrecheckedProofs first = ReadAhead(f, prefetcher, UploadedBatch{"T1", {good, bad_mac, unknown}});
  REQUIRE(first.cards.cards[0] != nullptr);
  CHECK(first.cards.cards[1] == nullptr);  // its MAC is not the terminal's: never looked up
  CHECK(first.cards.cards[2] == nullptr);  // no such card

  // The same card again: the entry kept, not read again.
  f.registry.FailNextCardRead();
  PrecheckedProofs second = ReadAhead(f, prefetcher, UploadedBatch{"T1", {f.Tap(card, "T1", 50)}});
  CHECK(second.cards.cards[0] == first.cards.cards[0]);
  CHECK_FALSE(f.registry.FindCard("").ok());  // the injected fault was still pending

  // A card row changed: everything kept is dropped and read again.
  auto row = f.registry.FindCard(CardNumberFromInt(card.card_no));
  REQUIRE(row.ok());
  Card blocked = **row;
  blocked.status = CardStatus::blocked;
  REQUIRE(f.registry.UpdateCard(blocked).ok());
  PrecheckedProofs third = ReadAhead(f, prefetcher, UploadedBatch{"T1", {f.Tap(card, "T1", 50)}});
  REQUIRE(third.cards.cards[0] != nullptr);
  CHECK(third.cards.cards[0] != first.cards.cards[0]);
  CHECK(third.cards.cards[0]->card.status == CardStatus::blocked);
  CHECK(third.cards.card_changes == first.cards.card_changes + 1);
}

TEST_CASE("cards not read ahead after a failed read are read by the engine",
          "[core][ingest]") {
  IngestFixture f;
  IngestEngine engine(f.registry, f.ledger, f.tap_store, f.auth, f.digester, f.clock, {});
  FakeCard card = f.IssueCard(1000);
  UploadedBatch batch{"T1", {f.Tap(card, "T1", 200)}};
  testing::FakeTapAuthenticator ahead;
  PrecheckedProofs proofs = PrecheckProofs(ahead, f.GetTerminal("T1"), batch.records);
  CardPrefetcher prefetcher(f.registry);
  f.registry.FailNextCardRead();
  Status read = prefetcher.Prefetch(batch.records, &proofs);
  CHECK(read.code() == "injected_fault");
  CHECK(proofs.cards.denylist_version == -1);
  CHECK(proofs.cards.cards.empty());
  CHECK_FALSE(f.registry.in_read_scope());
  CHECK(IngestChecked(engine, batch, proofs) == std::vector<IngestOutcome>{IngestOutcome::accepted});
  CHECK(f.Purse(card.card_no) == 800);
}

// ---- Purses read ahead with the cards (CardPrefetcher::ReadPursesToo) ----

// Drops the card's purse from the ledger's cache the way a failed group does: a joined scope
// that changed it and was rolled back (one of the removals Ledger::CacheRemovals counts).
void DropPurseFromCache(IngestFixture& f, uint64_t card_no) {
  Ledger::JoinedTransaction joined(f.ledger);
  REQUIRE(f.joint.Begin().ok());
  Transfer t;
  t.id = Id128{0xD0, card_no};
  t.debit_account_id = AccountIdFor(AccountKind::card_purse, card_no);
  t.credit_account_id = SystemAccountId(AccountKind::topup_clearing);
  t.amount_fen = 1;
  t.code = 1;
  auto out = f.ledger.Apply(std::vector<Transfer>{t});
  REQUIRE(out.ok());
  REQUIRE(out->at(0) == TransferOutcome::created);
  REQUIRE(f.joint.Rollback().ok());
}

TEST_CASE("a purse read ahead with its card is taken by the ledger instead of read by the writer",
          "[core][ingest]") {
  IngestFixture f;
  IngestEngine engine(f.registry, f.ledger, f.tap_store, f.auth, f.digester, f.clock, {});
  FakeCard card = f.IssueCard(1000);
  DropPurseFromCache(f, card.card_no);  // as for a card not seen since a restart
  UploadedBatch batch{"T1", {f.Tap(card, "T1", 200)}};
  CardPrefetcher prefetcher(f.registry);
  prefetcher.ReadPursesToo(f.ledger_store, f.ledger);
  PrecheckedProofs proofs = ReadAhead(f, prefetcher, batch);
  REQUIRE(proofs.cards.purses_read);
  REQUIRE(proofs.cards.purses.size() == 1);
  CHECK(proofs.cards.purses[0].account.id == AccountIdFor(AccountKind::card_purse, card.card_no));
  CHECK(proofs.cards.purses[0].account.balance_fen() == 1000);
  CHECK(proofs.cards.account_removals == f.ledger.CacheRemovals());
  const uint64_t taken = f.ledger.AccountsTakenAhead();
  CHECK(IngestChecked(engine, batch, proofs) == std::vector<IngestOutcome>{IngestOutcome::accepted});
  CHECK(f.ledger.AccountsTakenAhead() == taken + 1);
  CHECK(f.Purse(card.card_no) == 800);
  CHECK(f.LedgerSum() == 0);
  // The card again: the prefetcher kept its entry, and reads no purse for it (a card seen
  // lately has its purse in the writer's cache; at ten thousand cards, every one).
  PrecheckedProofs again = ReadAhead(f, prefetcher, UploadedBatch{"T1", {f.Tap(card, "T1", 100)}});
  CHECK(again.cards.cards[0] != nullptr);
  CHECK(again.cards.purses.empty());
}

TEST_CASE("a purse read ahead before the writer booked a tap of the card is not taken over "
          "what the writer booked",
          "[core][ingest]") {
  IngestFixture f;
  IngestEngine engine(f.registry, f.ledger, f.tap_store, f.auth, f.digester, f.clock, {});
  FakeCard card = f.IssueCard(1000);
  UploadedBatch first{"T1", {f.Tap(card, "T1", 200)}};
  UploadedBatch second{"T2", {f.Tap(card, "T2", 100)}};
  CardPrefetcher prefetcher(f.registry);
  prefetcher.ReadPursesToo(f.ledger_store, f.ledger);
  // The checker reads the second batch's purse (1000) while the writer books the first.
  PrecheckedProofs ahead = ReadAhead(f, prefetcher, second);
  REQUIRE(ahead.cards.purses.size() == 1);
  REQUIRE(ahead.cards.purses[0].account.balance_fen() == 1000);
  CHECK(f.IngestOne(first.records[0], "T1") == IngestOutcome::accepted);
  const uint64_t taken = f.ledger.AccountsTakenAhead();

  SECTION("the purse still cached: the cache's newer value stays") {
    CHECK(IngestChecked(engine, second, ahead) ==
          std::vector<IngestOutcome>{IngestOutcome::accepted});
  }
  SECTION("the purse dropped from the cache since: the old row is refused and the purse read") {
    DropPurseFromCache(f, card.card_no);
    CHECK(IngestChecked(engine, second, ahead) ==
          std::vector<IngestOutcome>{IngestOutcome::accepted});
  }
  CHECK(f.ledger.AccountsTakenAhead() == taken);
  // Taken, the old row would have undone the first tap's 200 fen.
  CHECK(f.Purse(card.card_no) == 700);
  CHECK(f.Payable("BUS1") == 300);
  CHECK(f.LedgerSum() == 0);
}

TEST_CASE("a group of tap transfers is posted without searching the ledger for their ids",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  TapRecord first = f.Tap(card, "T1", 200);
  TapRecord second = f.Tap(card, "T1", 100);
  const int64_t searches_before = f.ledger_store.id_searches();
  CHECK(f.IngestMany({first, second}) ==
        std::vector{IngestOutcome::accepted, IngestOutcome::accepted});
  CHECK(f.ledger_store.id_searches() == searches_before);
  CHECK(f.Purse(card.card_no) == 700);
  CHECK(f.Payable("BUS1") == 300);
  // The duplicate is found by the tap store, before any transfer is made.
  CHECK(f.IngestOne(first) == IngestOutcome::duplicate);
  CHECK(f.Purse(card.card_no) == 700);
}

TEST_CASE("a tap whose transfer id the ledger already holds fails its group and books nothing",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  TapRecord first = f.Tap(card, "T1", 200);
  TapRecord second = f.Tap(card, "T1", 100);
  // A transfer under the second tap's derived id, written without its tap row: the promise
  // ApplyNew relies on is broken, which only a damaged database could do.
  Transfer squatter;
  squatter.id = TapTransferId(f.digester, "T1", second.terminal_counter);
  squatter.debit_account_id = SystemAccountId(AccountKind::topup_clearing);
  squatter.credit_account_id = AccountIdFor(AccountKind::card_purse, card.card_no);
  squatter.amount_fen = 1;
  auto squatted = f.ledger.Apply(std::span<const Transfer>(&squatter, 1));
  REQUIRE(squatted.ok());
  REQUIRE((*squatted)[0] == TransferOutcome::created);

  std::vector<UploadedBatch> batches{UploadedBatch{"T1", {first, second}}};
  auto out = f.engine.Ingest(batches);
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().kind() == Kind::internal);
  CHECK(out.status().code() == "transfer_id_taken");
  CHECK(f.tap_store.tap_count() == 0);
  CHECK(f.Purse(card.card_no) == 1001);
  CHECK(f.Payable("BUS1") == 0);
  CHECK(f.LedgerSum() == 0);
}

TEST_CASE("a group's registry reads are one read scope, closed before the group is booked",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard a = f.IssueCard(1000);
  FakeCard b = f.IssueCard(1000);
  f.engine.ClearCaches();  // the cards are read from the registry, not from the cache
  int before = f.registry.read_scopes_begun();
  std::vector<UploadedBatch> batches = {UploadedBatch{"T1", {f.Tap(a, "T1", 100)}},
                                        UploadedBatch{"T2", {f.Tap(b, "T2", 200)}}};
  auto out = f.engine.Ingest(batches);
  REQUIRE(out.ok());
  CHECK((*out)[0] == std::vector{IngestOutcome::accepted});
  CHECK((*out)[1] == std::vector{IngestOutcome::accepted});
  // One scope for the whole group; the fake asserts that nothing was written inside it and
  // that the booking's transaction began only after it was closed.
  CHECK(f.registry.read_scopes_begun() == before + 1);
  CHECK_FALSE(f.registry.in_read_scope());
  CHECK(f.Purse(a.card_no) == 900);
  CHECK(f.Purse(b.card_no) == 800);
}

TEST_CASE("a registry read that fails during the checks closes the read scope and books nothing",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  f.engine.ClearCaches();
  std::vector<TapRecord> records = {f.Tap(card, "T1", 100)};
  f.registry.FailNextCardRead();
  std::vector<UploadedBatch> batches = {UploadedBatch{"T1", records}};
  auto failed = f.engine.Ingest(batches);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == "injected_fault");
  CHECK_FALSE(f.registry.in_read_scope());
  CHECK(f.Purse(card.card_no) == 1000);
  CHECK(f.tap_store.tap_count() == 0);
  CHECK(f.IngestMany(records) == std::vector{IngestOutcome::accepted});
  CHECK(f.Purse(card.card_no) == 900);
}

TEST_CASE("a terminal's tap transfer ids share their upper half and sort by terminal counter",
          "[core][ingest]") {
  testing::FakeDigester digester;
  Id128 t1_5 = TapTransferId(digester, "T1", 5);
  Id128 t1_6 = TapTransferId(digester, "T1", 6);
  Id128 t1_big = TapTransferId(digester, "T1", 0xFFFF'FFF0u);
  Id128 t2_5 = TapTransferId(digester, "T2", 5);
  CHECK(t1_5 == TapTransferId(digester, "T1", 5));  // derived, so a retry finds the same id
  CHECK(t1_5.hi == t1_6.hi);
  CHECK(t1_5.hi == t1_big.hi);
  CHECK(t1_5 < t1_6);
  CHECK(t1_6 < t1_big);
  CHECK((t1_6.lo >> 32) == 6);
  CHECK(t1_5.hi != t2_5.hi);  // another terminal: another run of the index
  CHECK(t1_5 != t2_5);
  CHECK_FALSE(t1_5.IsZero());
  // The halves the engine uses to make one digest per terminal give the same ids.
  Id128 base = TapTransferIdBase(digester, "T1");
  CHECK(TapTransferIdAt(base, 5) == t1_5);
  CHECK(TapTransferIdAt(base, 0xFFFF'FFF0u) == t1_big);
}

TEST_CASE("a card's taps out of order within one group are checked against each other",
          "[core][ingest]") {
  IngestFixture f;
  FakeCard card = f.IssueCard(1000);
  FakeCard clone = card;
  TapRecord a = f.Tap(card, "T1", 100);
  TapRecord b = f.Tap(card, "T2", 100);
  TapRecord c = f.Tap(card, "T2", 100);
  TapRecord d = f.Tap(card, "T1", 100);
  TapRecord cloned = f.Tap(clone, "T1", 300);  // spends a's counter again
  REQUIRE(cloned.card_counter == a.card_counter);
  // One group: d before b and c, then c before b. Each early counter's bound adds back what
  // the card paid after it in this same group, so none of them looks forged; the clone meets
  // a's counter booked earlier in the group.
  CHECK(f.IngestMany({a, d, c, b, cloned}) ==
        std::vector{IngestOutcome::accepted, IngestOutcome::accepted, IngestOutcome::accepted,
                    IngestOutcome::accepted, IngestOutcome::cloned_card});
  CHECK(f.Purse(card.card_no) == 600);
  CHECK(f.Alerts(AlertKind::forged_balance).empty());
  CHECK(f.Alerts(AlertKind::cloned_card).size() == 1);
  CHECK(f.tap_store.ListGaps(GapKind::card)->empty());
  // Every one of them again: duplicates, found in the store this time.
  CHECK(f.IngestMany({b, c, a, d}) ==
        std::vector{IngestOutcome::duplicate, IngestOutcome::duplicate,
                    IngestOutcome::duplicate, IngestOutcome::duplicate});
  CHECK(f.Purse(card.card_no) == 600);
}

}  // namespace
}  // namespace citycard
