#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/card_office.h"
#include "core/national_id.h"
#include "tests/support/card_office_fixture_support.h"

using namespace citycard;
using citycard::testing::CardOfficeFixture;
using citycard::testing::kFixtureStartMs;

namespace {

const uint64_t kClearing = SystemAccountId(AccountKind::topup_clearing);
const uint64_t kDeposits = SystemAccountId(AccountKind::card_deposits);
const uint64_t kRefunds = SystemAccountId(AccountKind::refunds);
constexpr int64_t kHourMs = 3'600'000;

// Books a tap as the tap engine would: purse -> the operator's payable, floor ignored.
void BookTap(CardOfficeFixture& f, const Card& card, uint64_t payable, int64_t amount_fen,
             uint64_t n) {
  Transfer tap;
  tap.id = Id128{0xEE, n};
  tap.debit_account_id = card.purse_account_id;
  tap.credit_account_id = payable;
  tap.amount_fen = amount_fen;
  tap.code = static_cast<uint16_t>(TransferCode::tap);
  tap.flags = kTransferIgnoreFloor;
  auto outcomes = f.ledger.Apply(std::span<const Transfer>(&tap, 1));
  REQUIRE(outcomes.ok());
  REQUIRE((*outcomes)[0] == TransferOutcome::created);
}

uint64_t AddBusOperator(CardOfficeFixture& f) {
  auto op = f.terminals.AddOperator({"BUS01", "巴士集团", OperatorKind::bus, 50});
  REQUIRE(op.ok());
  return op->payable_account_id;
}

}  // namespace

TEST_CASE("Issuing a card creates the holder, the purse and books the deposit",
          "[core][card_office]") {
  CardOfficeFixture f;
  IssueRequest request{"321281199001011234", "张三", Profile::adult, 2000, std::nullopt};
  auto card = f.office.IssueCard(request);
  REQUIRE(card.ok());
  REQUIRE(card->card.card_no == "8607550000000012");
  REQUIRE(ValidateCardNumber(card->card.card_no).ok());
  REQUIRE(card->status == CardStatus::active);
  REQUIRE(card->balance_fen == 0);
  REQUIRE(card->card.deposit_fen == 2000);
  REQUIRE(card->card.holder_name == "张三");
  REQUIRE(card->card.holder_id_masked == "3212**********1234");
  REQUIRE(card->card.purse_account_id ==
          AccountIdFor(AccountKind::card_purse, 8607550000000012ULL));
  // Valid for ten years by default: through 2034-03-01.
  REQUIRE(FormatDay(card->card.expires_day) == "2034-03-01");
  REQUIRE(f.Balance(kDeposits) == 2000);
  REQUIRE(f.Balance(kClearing) == -2000);
  REQUIRE(f.LedgerSum() == 0);
  auto holder = f.registry.FindHolderByNumber(card->card.holder_number);
  REQUIRE(holder->has_value());
  REQUIRE((*holder)->in_registry == false);
  // The plain id is nowhere in the holder record.
  REQUIRE((*holder)->id_hash.find("321281199001011234") == std::string::npos);
}

TEST_CASE("A second card for the same person joins the same holder", "[core][card_office]") {
  CardOfficeFixture f;
  CardView first = f.IssueAdult();
  CardView second = f.IssueAdult();
  REQUIRE(first.card.holder_number == second.card.holder_number);
  REQUIRE(second.card.card_no == MakeCardNumber(2));
  auto list = f.office.ListCards(std::nullopt, std::string("321281199001011234"));
  REQUIRE(list->size() == 2);
}

TEST_CASE("Issuing refuses a bad national id, a bad name and a past expiry",
          "[core][card_office]") {
  CardOfficeFixture f;
  IssueRequest request{"321281199001011235", "张三", Profile::adult, std::nullopt, std::nullopt};
  REQUIRE(f.office.IssueCard(request).status().code() == "invalid_national_id");
  request.national_id = "321281199001011234";
  request.name = "";
  REQUIRE(f.office.IssueCard(request).status().code() == "invalid_name");
  request.name = "张三";
  request.expires_day = *ParseDay("2024-02-29");
  REQUIRE(f.office.IssueCard(request).status().code() == "invalid_expiry");
  REQUIRE(f.registry.ListCards({})->empty());
}

TEST_CASE("Purse floors follow the profile", "[core][card_office]") {
  CardOfficeConfig config;
  config.transit_overdraft_fen = 300;
  CardOfficeFixture f(config);
  IssueRequest request{"321281199001011234", "李四", Profile::student, std::nullopt, std::nullopt};
  auto student = f.office.IssueCard(request);
  request.profile = Profile::adult;
  auto adult = f.office.IssueCard(request);
  REQUIRE(f.ledger.LookupAccount(student->card.purse_account_id)->floor_fen == -300);
  REQUIRE(f.ledger.LookupAccount(adult->card.purse_account_id)->floor_fen == 0);
  REQUIRE(PurseFloorFen(Profile::elderly, config) == -300);
}

TEST_CASE("A failed write leaves neither a card nor a purse behind", "[core][card_office]") {
  CardOfficeFixture f;
  f.registry.FailNextWrite();  // the holder row
  IssueRequest request{"321281199001011234", "张三", Profile::adult, 1000, std::nullopt};
  auto card = f.office.IssueCard(request);
  REQUIRE(card.status().code() == "injected_fault");
  REQUIRE(f.registry.ListCards({})->empty());
  REQUIRE(f.Balance(kDeposits) == 0);
  REQUIRE_FALSE(f.ledger.LookupAccount(AccountIdFor(AccountKind::card_purse, 8607550000000012ULL)).ok());
  // The next issue works and gets a fresh number.
  REQUIRE(f.office.IssueCard(request).ok());
  REQUIRE(f.LedgerSum() == 0);
}

TEST_CASE("A top-up moves money from top-up clearing to the purse", "[core][card_office]") {
  CardOfficeFixture f;
  CardView card = f.IssueAdult();
  auto topup = f.office.Topup(card.card.card_no, 5000, "");
  REQUIRE(topup.ok());
  REQUIRE(topup->card.balance_fen == 5000);
  REQUIRE_FALSE(topup->repeated);
  REQUIRE(f.Balance(kClearing) == -5000);
  auto transfer = f.ledger.LookupTransfer(topup->transfer_id);
  REQUIRE(transfer->has_value());
  REQUIRE((*transfer)->code == static_cast<uint16_t>(TransferCode::topup));
  // Without a reference, two top-ups are two transfers.
  auto again = f.office.Topup(card.card.card_no, 5000, "");
  REQUIRE(again->card.balance_fen == 10000);
  REQUIRE_FALSE(again->transfer_id == topup->transfer_id);
}

TEST_CASE("A top-up repeated with the same reference moves money once", "[core][card_office]") {
  CardOfficeFixture f;
  CardView card = f.IssueAdult();
  auto first = f.office.Topup(card.card.card_no, 1250, "KIOSK7-000123");
  auto second = f.office.Topup(card.card.card_no, 1250, "KIOSK7-000123");
  REQUIRE(second.ok());
  REQUIRE(second->repeated);
  REQUIRE(second->transfer_id == first->transfer_id);
  REQUIRE(second->card.balance_fen == 1250);
  auto conflict = f.office.Topup(card.card.card_no, 1300, "KIOSK7-000123");
  REQUIRE(conflict.status().code() == "transfer_conflict");
  REQUIRE(conflict.status().exit_code() == 4);
  REQUIRE(f.Balance(card.card.purse_account_id) == 1250);
}

TEST_CASE("Top-ups are refused for bad input, unknown, unusable and full cards",
          "[core][card_office]") {
  CardOfficeFixture f;
  CardView card = f.IssueAdult();
  const std::string& no = card.card.card_no;
  REQUIRE(f.office.Topup("8607550000000013", 100, "").status().code() == "invalid_card_no");
  REQUIRE(f.office.Topup(MakeCardNumber(99), 100, "").status().code() == "card_not_found");
  REQUIRE(f.office.Topup(MakeCardNumber(99), 100, "").status().exit_code() == 3);
  REQUIRE(f.office.Topup(no, 0, "").status().code() == "invalid_amount");
  REQUIRE(f.office.Topup(no, 100, "has space").status().code() == "invalid_ref");
  auto full = f.office.Topup(no, kPurseBalanceFenMaxDefault + 1, "");
  REQUIRE(full.status().code() == "purse_limit_exceeded");
  REQUIRE(f.office.Topup(no, kPurseBalanceFenMaxDefault, "").ok());
  REQUIRE(f.office.Block(no, BlockReason::lost).ok());
  auto blocked = f.office.Topup(no, 100, "");
  REQUIRE(blocked.status().code() == "card_blocked");
  REQUIRE(blocked.status().exit_code() == 4);
  REQUIRE(f.Balance(card.card.purse_account_id) == kPurseBalanceFenMaxDefault);
}

TEST_CASE("An expired card shows as expired and takes no top-up", "[core][card_office]") {
  CardOfficeFixture f;
  IssueRequest request{"321281199001011234", "张三", Profile::adult, std::nullopt,
                       *ParseDay("2024-03-02")};
  auto card = f.office.IssueCard(request);
  f.clock.AdvanceMs(48 * kHourMs);  // 2024-03-03
  auto shown = f.office.ShowCard(card->card.card_no);
  REQUIRE(shown->status == CardStatus::expired);
  REQUIRE(shown->card.status == CardStatus::active);
  REQUIRE(f.office.Topup(card->card.card_no, 100, "").status().code() == "card_expired");
  REQUIRE(f.office.ListCards(CardStatus::expired, std::nullopt)->size() == 1);
  REQUIRE(f.office.ListCards(CardStatus::active, std::nullopt)->empty());
}

TEST_CASE("Blocking denylists the card at once and unblocking lifts it", "[core][card_office]") {
  CardOfficeFixture f;
  CardView card = f.IssueAdult();
  const std::string& no = card.card.card_no;
  auto blocked = f.office.Block(no, BlockReason::stolen);
  REQUIRE(blocked->status == CardStatus::blocked);
  REQUIRE(blocked->card.block_reason == BlockReason::stolen);
  auto list = f.registry.DenylistFull();
  REQUIRE(list->version == 1);
  REQUIRE(list->entries.size() == 1);
  REQUIRE(list->entries[0].card_no == no);
  REQUIRE(list->entries[0].reason == DenyReason::stolen);
  REQUIRE(f.office.Block(no, BlockReason::lost).status().code() == "card_blocked");
  auto unblocked = f.office.Unblock(no);
  REQUIRE(unblocked->status == CardStatus::active);
  REQUIRE(unblocked->card.block_reason == BlockReason::none);
  auto delta = f.registry.DenylistSince(1);
  REQUIRE(delta->to_version == 2);
  REQUIRE(delta->removed == std::vector<std::string>{no});
  REQUIRE(f.office.Unblock(no).status().code() == "card_not_blocked");
  REQUIRE(f.office.Block("123", BlockReason::lost).status().code() == "invalid_card_no");
}

TEST_CASE("A replaced card's balance moves once, after the hold period", "[core][card_office]") {
  CardOfficeFixture f;
  CardView old_card = f.IssueAdult();
  const std::string& old_no = old_card.card.card_no;
  REQUIRE(f.office.Topup(old_no, 3000, "").ok());
  REQUIRE(f.office.Block(old_no, BlockReason::lost).ok());
  auto replaced = f.office.Replace(old_no, false);
  REQUIRE(replaced.ok());
  REQUIRE_FALSE(replaced->balance_moved);
  const Card& new_card = replaced->new_card.card;
  REQUIRE(replaced->old_card.status == CardStatus::replaced);
  REQUIRE(replaced->old_card.card.replaced_by == new_card.card_no);
  REQUIRE(new_card.replaces == old_no);
  REQUIRE(replaced->new_card.status == CardStatus::active);
  REQUIRE(new_card.holder_number == old_card.card.holder_number);
  // The old card is on the denylist from the moment of replacement, still as lost.
  auto listed = f.registry.DenylistFind(old_no);
  REQUIRE(listed->has_value());
  REQUIRE((*listed)->reason == DenyReason::lost);
  REQUIRE(replaced->old_card.balance_fen == 3000);
  REQUIRE(replaced->new_card.balance_fen == 0);

  // An offline tap of the old card arrives during the hold period and is booked against it.
  uint64_t payable = AddBusOperator(f);
  BookTap(f, old_card.card, payable, 200, 1);

  f.clock.AdvanceMs(72 * kHourMs - 1000);  // one second short of three days
  REQUIRE(*f.office.ProcessDueReplacements() == 0);
  REQUIRE(f.Balance(new_card.purse_account_id) == 0);
  f.clock.AdvanceMs(1000);
  REQUIRE(*f.office.ProcessDueReplacements() == 1);
  REQUIRE(f.Balance(new_card.purse_account_id) == 2800);
  REQUIRE(f.Balance(old_card.card.purse_account_id) == 0);
  f.clock.AdvanceMs(72 * kHourMs);
  REQUIRE(*f.office.ProcessDueReplacements() == 0);
  REQUIRE(f.Balance(new_card.purse_account_id) == 2800);
  REQUIRE(f.office.ShowCard(old_no)->card.balance_moved_s > 0);
  REQUIRE(f.LedgerSum() == 0);
}

TEST_CASE("Due balances moved by another process just before this one's round are not moved "
          "or written again",
          "[core][card_office]") {
  CardOfficeFixture f;
  CardView old_card = f.IssueAdult();
  REQUIRE(f.office.Topup(old_card.card.card_no, 1200, "").ok());
  auto replaced = f.office.Replace(old_card.card.card_no, false);
  REQUIRE(replaced.ok());
  f.clock.AdvanceMs(73 * kHourMs);
  // `serve`'s housekeeping and `citycard settle` both move due balances: the other one moves
  // this card as this round's transaction is about to begin.
  Result<size_t> by_other = size_t{0};
  f.registry.before_begin = [&] { by_other = f.office.ProcessDueReplacements(); };
  REQUIRE(f.Balance(replaced->new_card.card.purse_account_id) == 0);
  auto by_this = f.office.ProcessDueReplacements();
  REQUIRE(by_other.ok());
  REQUIRE(*by_other == 1);
  REQUIRE(by_this.ok());
  CHECK(*by_this == 0);
  CHECK(f.Balance(replaced->new_card.card.purse_account_id) == 1200);
  CHECK(f.Balance(old_card.card.purse_account_id) == 0);
  CHECK(f.LedgerSum() == 0);
}

TEST_CASE("Replacing with move_now moves the balance at once and only once",
          "[core][card_office]") {
  CardOfficeFixture f;
  CardView old_card = f.IssueAdult();
  REQUIRE(f.office.Topup(old_card.card.card_no, 1500, "").ok());
  auto replaced = f.office.Replace(old_card.card.card_no, true);
  REQUIRE(replaced->balance_moved);
  REQUIRE(replaced->moved_fen == 1500);
  REQUIRE(replaced->new_card.balance_fen == 1500);
  REQUIRE(replaced->old_card.balance_fen == 0);
  REQUIRE(f.registry.DenylistFind(old_card.card.card_no)->value().reason == DenyReason::replaced);
  f.clock.AdvanceMs(100 * kHourMs);
  REQUIRE(*f.office.ProcessDueReplacements() == 0);
  REQUIRE(f.Balance(replaced->new_card.card.purse_account_id) == 1500);
  REQUIRE(f.office.Replace(old_card.card.card_no, true).status().code() == "card_replaced");
}

TEST_CASE("The deposit follows the replacement and is refunded once", "[core][card_office]") {
  CardOfficeFixture f;
  IssueRequest request{"321281199001011234", "张三", Profile::adult, 2000, std::nullopt};
  auto card = f.office.IssueCard(request);
  auto replaced = f.office.Replace(card->card.card_no, true);
  REQUIRE(replaced->old_card.card.deposit_fen == 0);
  REQUIRE(replaced->new_card.card.deposit_fen == 2000);
  auto closed = f.office.Close(replaced->new_card.card.card_no);
  REQUIRE(closed->deposit_refund_fen == 2000);
  REQUIRE(f.Balance(kDeposits) == 0);
  REQUIRE(f.Balance(kRefunds) == 2000);
}

TEST_CASE("A balance due from a replaced card follows the chain of replacements",
          "[core][card_office]") {
  CardOfficeFixture f;
  CardView a = f.IssueAdult();
  REQUIRE(f.office.Topup(a.card.card_no, 1000, "").ok());
  auto b = f.office.Replace(a.card.card_no, false);
  auto c = f.office.Replace(b->new_card.card.card_no, true);
  REQUIRE(f.office.Close(c->new_card.card.card_no).status().code() == "replacement_pending");
  f.clock.AdvanceMs(73 * kHourMs);
  REQUIRE(*f.office.ProcessDueReplacements() == 1);
  REQUIRE(f.Balance(c->new_card.card.purse_account_id) == 1000);
  REQUIRE(f.Balance(b->new_card.card.purse_account_id) == 0);
}

TEST_CASE("An overdrawn old card passes its debt to the new card, denied until topped up",
          "[core][card_office]") {
  CardOfficeFixture f;
  IssueRequest request{"321281199001011234", "王五", Profile::student, std::nullopt, std::nullopt};
  auto old_card = f.office.IssueCard(request);
  uint64_t payable = AddBusOperator(f);
  auto replaced = f.office.Replace(old_card->card.card_no, false);
  BookTap(f, old_card->card, payable, 200, 7);  // a late tap overdraws the old purse
  f.clock.AdvanceMs(73 * kHourMs);
  REQUIRE(*f.office.ProcessDueReplacements() == 1);
  const Card& new_card = replaced->new_card.card;
  REQUIRE(f.Balance(new_card.purse_account_id) == -200);
  REQUIRE(f.Balance(old_card->card.purse_account_id) == 0);
  REQUIRE(f.registry.DenylistFind(new_card.card_no)->value().reason == DenyReason::negative_balance);
  REQUIRE(f.office.Topup(new_card.card_no, 100, "")->card.balance_fen == -100);
  REQUIRE(f.registry.DenylistFind(new_card.card_no)->has_value());
  REQUIRE(f.office.Topup(new_card.card_no, 100, "")->card.balance_fen == 0);
  REQUIRE_FALSE(f.registry.DenylistFind(new_card.card_no)->has_value());
}

TEST_CASE("Closing a card refunds purse and deposit and denylists it", "[core][card_office]") {
  CardOfficeFixture f;
  IssueRequest request{"321281199001011234", "张三", Profile::adult, 2000, std::nullopt};
  auto card = f.office.IssueCard(request);
  const std::string& no = card->card.card_no;
  REQUIRE(f.office.Topup(no, 1234, "").ok());
  auto closed = f.office.Close(no);
  REQUIRE(closed.ok());
  REQUIRE(closed->card.status == CardStatus::closed);
  REQUIRE(closed->purse_refund_fen == 1234);
  REQUIRE(closed->deposit_refund_fen == 2000);
  REQUIRE(closed->transfer_ids.size() == 2);
  REQUIRE(closed->card.balance_fen == 0);
  REQUIRE(f.Balance(kRefunds) == 3234);
  REQUIRE(f.Balance(kDeposits) == 0);
  REQUIRE(f.ledger.LookupAccount(card->card.purse_account_id)->closed());
  REQUIRE(f.registry.DenylistFind(no)->value().reason == DenyReason::closed);
  REQUIRE(f.office.Topup(no, 100, "").status().code() == "card_closed");
  REQUIRE(f.office.Close(no).status().code() == "card_closed");
  REQUIRE(f.LedgerSum() == 0);
}

TEST_CASE("The deposit settles an overdrawn purse at close, unless the debt is larger",
          "[core][card_office]") {
  CardOfficeFixture f;
  IssueRequest request{"321281199001011234", "张三", Profile::student, 150, std::nullopt};
  auto card = f.office.IssueCard(request);
  uint64_t payable = AddBusOperator(f);
  BookTap(f, card->card, payable, 200, 1);
  REQUIRE(f.office.Close(card->card.card_no).status().code() == "card_in_debt");
  REQUIRE(f.office.Topup(card->card.card_no, 100, "").ok());  // now -100
  auto closed = f.office.Close(card->card.card_no);
  REQUIRE(closed.ok());
  REQUIRE(closed->purse_refund_fen == 0);
  REQUIRE(closed->deposit_refund_fen == 50);
  REQUIRE(f.Balance(card->card.purse_account_id) == 0);
  REQUIRE(f.LedgerSum() == 0);
}

TEST_CASE("History lists the purse's transfers newest first with their operator",
          "[core][card_office]") {
  CardOfficeFixture f;
  CardView card = f.IssueAdult();
  REQUIRE(f.office.Topup(card.card.card_no, 1000, "").ok());
  f.clock.AdvanceMs(60'000);
  uint64_t payable = AddBusOperator(f);
  BookTap(f, card.card, payable, 200, 1);
  auto history = f.office.History(card.card.card_no, 10);
  REQUIRE(history->size() == 2);
  const HistoryLine& tap = (*history)[0];
  REQUIRE(tap.kind == "tap");
  REQUIRE(tap.amount_fen == -200);
  REQUIRE(tap.balance_after_fen == 800);
  REQUIRE(tap.operator_id == "BUS01");
  REQUIRE(tap.transfer_id == Id128{0xEE, 1});
  const HistoryLine& topup = (*history)[1];
  REQUIRE(topup.kind == "topup");
  REQUIRE(topup.amount_fen == 1000);
  REQUIRE(topup.balance_after_fen == 1000);
  REQUIRE(topup.operator_id.empty());
  REQUIRE(topup.time_ms == kFixtureStartMs);
  REQUIRE(f.office.History(card.card.card_no, 1)->size() == 1);
}

TEST_CASE("A holder is shown by national id with their cards", "[core][card_office]") {
  CardOfficeFixture f;
  CardView card = f.IssueAdult();
  auto holder = f.office.ShowHolder("321281199001011234");
  REQUIRE(holder.ok());
  REQUIRE(holder->holder.id_masked == "3212**********1234");
  REQUIRE(holder->card_nos == std::vector<std::string>{card.card.card_no});
  REQUIRE(f.office.ShowHolder("11010519491231002X").status().code() == "holder_not_found");
  REQUIRE(f.office.ShowHolder("11010519491231002X").status().exit_code() == 3);
  REQUIRE(f.office.ShowHolder("110105194912310021").status().code() == "invalid_national_id");
}

TEST_CASE("Importing the registry creates holders and books medical openings",
          "[core][card_office]") {
  CardOfficeFixture f;
  std::string file =
      "national_id,name,schemes,groups,medical_account\n"
      "321281199001011234,张三,pension|medical,,120.50\n"
      "11010519491231002X,李四,medical,elderly|low_income,0\n";
  auto report = f.office.ImportHolders(file, false);
  REQUIRE(report.ok());
  REQUIRE(report->applied);
  REQUIRE(report->lines == 2);
  REQUIRE(report->created == 2);
  auto holder = f.office.ShowHolder("321281199001011234");
  REQUIRE(holder->holder.name == "张三");
  REQUIRE(holder->holder.schemes == std::vector<Scheme>{Scheme::pension, Scheme::medical});
  REQUIRE(holder->medical_balance_fen == 12050);
  auto elder = f.office.ShowHolder("11010519491231002x");
  REQUIRE(elder->holder.groups ==
          std::vector<SpecialGroup>{SpecialGroup::low_income, SpecialGroup::elderly});

  // The same file again changes nothing.
  auto again = f.office.ImportHolders(file, false);
  REQUIRE(again->unchanged == 2);
  REQUIRE(again->created == 0);
  REQUIRE(again->updated == 0);
  REQUIRE(f.office.ShowHolder("321281199001011234")->medical_balance_fen == 12050);

  // A changed line updates the holder; the opening balance is not booked twice.
  std::string changed =
      "national_id,name,schemes,groups,medical_account\n"
      "321281199001011234,张三丰,pension|medical,disabled,200\n";
  auto updated = f.office.ImportHolders(changed, false);
  REQUIRE(updated->updated == 1);
  holder = f.office.ShowHolder("321281199001011234");
  REQUIRE(holder->holder.name == "张三丰");
  REQUIRE(holder->holder.groups == std::vector<SpecialGroup>{SpecialGroup::disabled});
  REQUIRE(holder->holder.medical_opening_fen == 20000);
  REQUIRE(holder->medical_balance_fen == 12050);
  REQUIRE(f.LedgerSum() == 0);
}

TEST_CASE("A registry file with bad lines changes nothing unless bad lines are skipped",
          "[core][card_office]") {
  CardOfficeFixture f;
  std::string file =
      "national_id,name,schemes,groups,medical_account\n"
      "321281199001011234,张三,pension,,10\n"
      "321281199001011235,李四,pension,,10\n"
      "11010519491231002X,王五,pension,,12.345\n";
  auto report = f.office.ImportHolders(file, false);
  REQUIRE(report.ok());
  REQUIRE_FALSE(report->applied);
  REQUIRE(report->problems.size() == 2);
  REQUIRE(report->problems[0].line == 3);
  REQUIRE(report->problems[0].code == "invalid_national_id");
  REQUIRE(report->problems[1].line == 4);
  REQUIRE(report->problems[1].code == "invalid_amount");
  REQUIRE(f.office.ShowHolder("321281199001011234").status().code() == "holder_not_found");

  auto skipped = f.office.ImportHolders(file, true);
  REQUIRE(skipped->applied);
  REQUIRE(skipped->created == 1);
  REQUIRE(skipped->skipped == 2);
  REQUIRE(f.office.ShowHolder("321281199001011234").ok());
}

TEST_CASE("A holder first met at a card issue gets the opening balance when imported",
          "[core][card_office]") {
  CardOfficeFixture f;
  CardView card = f.IssueAdult();
  auto report = f.office.ImportHolders(
      "national_id,name,schemes,groups,medical_account\n321281199001011234,张三,medical,,50\n",
      false);
  REQUIRE(report->updated == 1);
  auto holder = f.office.ShowHolder("321281199001011234");
  REQUIRE(holder->holder.in_registry);
  REQUIRE(holder->holder.number == card.card.holder_number);
  REQUIRE(holder->medical_balance_fen == 5000);
}

TEST_CASE("A long import reports its progress every thousand lines and at the end",
          "[core][card_office]") {
  CardOfficeFixture f;
  std::string file = "national_id,name,schemes,groups,medical_account\n";
  for (int i = 0; i < 2500; ++i) {
    std::string first17 = fmt::format("110101199001{:02}{:03}", 1 + i / 1000, i % 1000);
    file += first17 + NationalIdCheckChar(first17) + ",某人,pension,,0\n";
  }
  std::vector<std::pair<int64_t, int64_t>> calls;
  auto report = f.office.ImportHolders(file, false, [&](int64_t done, int64_t total) {
    calls.emplace_back(done, total);
  });
  REQUIRE(report->created == 2500);
  REQUIRE(calls == std::vector<std::pair<int64_t, int64_t>>{
                       {1000, 2500}, {2000, 2500}, {2500, 2500}});
}
