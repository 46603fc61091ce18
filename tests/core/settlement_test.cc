#include "core/settlement.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/time.h"
#include "tests/support/memory_ledger_store_support.h"

using namespace citycard;
using citycard::testing::FakeDigester;
using citycard::testing::MemoryLedgerStore;

namespace {

int64_t At(const char* local) { return *ParseLocalTime(local); }
int64_t Day(const char* day) { return *ParseDay(day); }

// A registry of operators and cards only. Its transaction is the ledger store's, as in the
// SQLite store where both share one connection.
class FakeRegistry final : public RegistryStore {
 public:
  explicit FakeRegistry(MemoryLedgerStore& ledger_store) : ledger_store_(ledger_store) {}
  // `on_begin`, when set, runs before the transaction begins: another process changing the
  // registry just before the settlement's booking takes the write lock.
  Status Begin() override {
    if (on_begin) on_begin();
    return ledger_store_.Begin();
  }
  Status Commit() override { return ledger_store_.Commit(); }
  Status Rollback() override { return ledger_store_.Rollback(); }
  Result<int64_t> NextSequence(std::string_view) override { return Unused(); }
  Result<std::optional<Holder>> FindHolder(std::string_view) override { return Unused(); }
  Result<std::optional<Holder>> FindHolderByNumber(int64_t) override { return Unused(); }
  Status InsertHolder(const Holder&) override { return Unused(); }
  Status UpdateHolder(const Holder&) override { return Unused(); }
  Status InsertCard(const Card& card) override {
    cards_[card.card_no] = card;
    return Status::Ok();
  }
  Status UpdateCard(const Card& card) override {
    ++card_changes_;
    return InsertCard(card);
  }
  Result<int64_t> CardChanges() override { return card_changes_; }
  Result<std::optional<Card>> FindCard(std::string_view card_no) override {
    auto found = cards_.find(std::string(card_no));
    if (found == cards_.end()) return std::optional<Card>();
    return std::optional<Card>(found->second);
  }
  Result<std::vector<Card>> ListCards(const CardFilter&) override { return Unused(); }
  Result<std::vector<Card>> ListDueReplacements(int64_t, size_t) override { return Unused(); }
  Status InsertOperator(const Operator& op) override {
    operators_[op.id] = op;
    return Status::Ok();
  }
  Result<std::optional<Operator>> FindOperator(std::string_view id) override {
    auto found = operators_.find(std::string(id));
    if (found == operators_.end()) return std::optional<Operator>();
    return std::optional<Operator>(found->second);
  }
  Result<std::optional<Operator>> FindOperatorByNumber(int64_t) override { return Unused(); }
  Result<std::vector<Operator>> ListOperators() override {
    std::vector<Operator> all;
    for (const auto& [id, op] : operators_) all.push_back(op);
    return all;
  }
  Status InsertTerminal(const Terminal&) override { return Unused(); }
  Status SetTerminalStatus(std::string_view, TerminalStatus) override { return Unused(); }
  Status AddTerminalKey(std::string_view, const TerminalKey&) override { return Unused(); }
  Status RaiseTerminalCounter(std::string_view, int64_t) override { return Unused(); }
  Result<std::optional<Terminal>> FindTerminal(std::string_view) override { return Unused(); }
  Result<std::vector<Terminal>> ListTerminals() override { return Unused(); }
  Result<int64_t> DenylistAdd(std::string_view, DenyReason) override { return Unused(); }
  Result<int64_t> DenylistRemove(std::string_view) override { return Unused(); }
  Result<std::optional<DenylistEntry>> DenylistFind(std::string_view) override { return Unused(); }
  Result<Denylist> DenylistFull() override { return Unused(); }
  Result<DenylistDelta> DenylistSince(int64_t) override { return Unused(); }

 private:
  static Status Unused() { return Status::Internal("unused", "not used by settlement"); }
  MemoryLedgerStore& ledger_store_;
  std::map<std::string, Operator> operators_;
  std::map<std::string, Card> cards_;
  int64_t card_changes_ = 0;

 public:
  std::function<void()> on_begin;
};

class FakeSettlementStore final : public SettlementStore {
 public:
  Result<std::optional<SettlementRecord>> FindRun(int64_t day) override {
    auto found = runs_.find(day);
    if (found == runs_.end()) return std::optional<SettlementRecord>();
    return std::optional<SettlementRecord>(found->second);
  }
  Status SaveRun(const SettlementRecord& record) override {
    if (!runs_.emplace(record.report.day, record).second) {
      return Status::Refused("settlement_exists", "settled before");
    }
    return Status::Ok();
  }
  Result<int64_t> ClearingCutoff() override { return cutoff_s_; }
  Status SetClearingCutoff(int64_t cutoff_s) override {
    cutoff_s_ = cutoff_s;
    return Status::Ok();
  }
  size_t runs() const { return runs_.size(); }

 private:
  std::map<int64_t, SettlementRecord> runs_;
  int64_t cutoff_s_ = 0;
};

struct StoredTap {
  std::string card_no;
  Profile profile = Profile::adult;
  std::string operator_id;
  RideMode mode = RideMode::bus;
  int64_t full_fen = 0;
  int64_t concession_fen = 0;
  int64_t transfer_discount_fen = 0;
  int64_t paid_fen = 0;
  int64_t time_s = 0;
  int64_t received_s = 0;
};

// The world of one test: a ledger, a registry, a tap store that books each tap it is given
// (purse -> payable, at its received time) and aggregates as the ingest's tap store does.
class World final : public SettlementTapSource {
 public:
  World() : ledger_(ledger_store_, clock_, digester_), registry_(ledger_store_) {
    std::vector<Account> accounts;
    for (AccountKind kind : kSystemAccountKinds) {
      Account a;
      a.id = SystemAccountId(kind);
      a.kind = kind;
      accounts.push_back(a);
    }
    REQUIRE(ledger_.CreateAccounts(accounts).ok());
  }

  void AddOperator(const std::string& id, OperatorKind kind, int64_t fee_bp) {
    Operator op;
    op.number = static_cast<int64_t>(++operators_);
    op.id = id;
    op.name = "Operator " + id;
    op.kind = kind;
    op.fee_bp = fee_bp;
    op.payable_account_id = AccountIdFor(AccountKind::operator_payable, op.number);
    Account a;
    a.id = op.payable_account_id;
    a.kind = AccountKind::operator_payable;
    a.owner_ref = static_cast<uint64_t>(op.number);
    REQUIRE(ledger_.CreateAccounts(std::span<const Account>(&a, 1)).ok());
    REQUIRE(registry_.InsertOperator(op).ok());
  }

  std::string AddCard(Profile profile, int64_t balance_fen) {
    Card card;
    card.card_no = MakeCardNumber(++cards_);
    card.profile = profile;
    card.purse_account_id = AccountIdFor(AccountKind::card_purse, CardNumberToInt(card.card_no));
    Account a;
    a.id = card.purse_account_id;
    a.kind = AccountKind::card_purse;
    a.flags = kAccountEnforceFloor;
    REQUIRE(ledger_.CreateAccounts(std::span<const Account>(&a, 1)).ok());
    REQUIRE(registry_.InsertCard(card).ok());
    if (balance_fen > 0) Book(SystemAccountId(AccountKind::topup_clearing), a.id, balance_fen, 1);
    return card.card_no;
  }

  // Books a tap as ingest would, the clock at its arrival.
  void Tap(const std::string& card_no, Profile profile, const std::string& operator_id,
           RideMode mode, int64_t full_fen, int64_t concession_fen, int64_t transfer_fen,
           const char* made, const char* received) {
    StoredTap tap{card_no, profile, operator_id, mode, full_fen, concession_fen, transfer_fen,
                  full_fen - concession_fen - transfer_fen, At(made), At(received)};
    taps_.push_back(tap);
    if (tap.paid_fen == 0) return;
    auto op = registry_.FindOperator(operator_id);
    REQUIRE(op.ok());
    REQUIRE(op->has_value());
    clock_.SetMs(tap.received_s * 1000);
    Book(AccountIdFor(AccountKind::card_purse, CardNumberToInt(card_no)),
         (*op)->payable_account_id, tap.paid_fen, 16);
  }

  void Book(uint64_t debit, uint64_t credit, int64_t amount_fen, uint16_t code) {
    Transfer t;
    t.id = Id128{7, ++transfers_};
    t.debit_account_id = debit;
    t.credit_account_id = credit;
    t.amount_fen = amount_fen;
    t.code = code;
    t.flags = kTransferIgnoreFloor;
    auto outcomes = ledger_.Apply(std::span<const Transfer>(&t, 1));
    REQUIRE(outcomes.ok());
    REQUIRE((*outcomes)[0] == TransferOutcome::created);
  }

  int64_t Balance(uint64_t account_id) {
    auto account = ledger_.LookupAccount(account_id);
    REQUIRE(account.ok());
    return account->balance_fen();
  }
  int64_t Payable(const std::string& operator_id) {
    return Balance((*registry_.FindOperator(operator_id))->payable_account_id);
  }
  int64_t Purse(const std::string& card_no) {
    return Balance(AccountIdFor(AccountKind::card_purse, CardNumberToInt(card_no)));
  }

  Settler MakeSettlerWith(const SettlerConfig& config) {
    return Settler(registry_, ledger_, ledger_store_, store_, *this, digester_, clock_, config);
  }
  Settler MakeSettler(std::vector<DailyCap> caps, bool tap_source_apart = false) {
    SettlerConfig config;
    config.daily_caps = std::move(caps);
    config.tap_source_apart = tap_source_apart;
    return Settler(registry_, ledger_, ledger_store_, store_, *this, digester_, clock_, config);
  }

  // Records the thread that asked (the Settler's second one when the source is apart).
  Status ReadDay(int64_t) override {
    read_day_threads_.push_back(std::this_thread::get_id());
    return read_day_status_;
  }

  // SettlementTapSource over the stored taps.
  Result<std::vector<OperatorTapTotals>> OperatorTotals(int64_t day) override {
    int64_t cutoff = *store_.ClearingCutoff();
    std::map<std::string, OperatorTapTotals> by_operator;
    for (const StoredTap& tap : taps_) {
      if (ClearingDay(tap.received_s, cutoff) != day) continue;
      OperatorTapTotals& t = by_operator[tap.operator_id];
      t.operator_id = tap.operator_id;
      bool late = ClearingDay(tap.time_s, cutoff) < day;
      t.taps += 1;
      t.paid_taps += tap.paid_fen > 0 ? 1 : 0;
      t.gross_fen += tap.full_fen;
      t.concession_fen += tap.concession_fen;
      t.transfer_discount_fen += tap.transfer_discount_fen;
      t.paid_fen += tap.paid_fen;
      t.late_taps += late ? 1 : 0;
      t.late_paid_fen += late ? tap.paid_fen : 0;
    }
    std::vector<OperatorTapTotals> totals;
    for (auto& [id, t] : by_operator) totals.push_back(t);
    return totals;
  }
  Status ForEachCardDay(int64_t day,
                        const std::function<Status(const CardDayTaps&)>& visit) override {
    card_day_threads_.push_back(std::this_thread::get_id());
    int64_t cutoff = *store_.ClearingCutoff();
    std::map<std::string, CardDayTaps> by_card;
    for (const StoredTap& tap : taps_) {
      if (ClearingDay(tap.received_s, cutoff) != day || ClearingDay(tap.time_s, cutoff) != day ||
          tap.paid_fen == 0) {
        continue;
      }
      CardDayTaps& card = by_card[tap.card_no];
      card.card_no = tap.card_no;
      card.profile = tap.profile;
      card.taps.push_back(PaidTap{tap.operator_id, tap.mode, tap.paid_fen, tap.time_s});
    }
    for (const auto& [card_no, card] : by_card) CITYCARD_RETURN_IF_ERROR(visit(card));
    return Status::Ok();
  }

  ManualClock clock_{At("2024-03-04 07:00:00") * 1000};
  FakeDigester digester_;
  MemoryLedgerStore ledger_store_;
  Ledger ledger_;
  FakeRegistry registry_;
  FakeSettlementStore store_;
  std::vector<StoredTap> taps_;
  std::vector<std::thread::id> read_day_threads_;
  std::vector<std::thread::id> card_day_threads_;  // who asked for the card-days
  Status read_day_status_ = Status::Ok();
  uint64_t operators_ = 0;
  uint64_t cards_ = 0;
  uint64_t transfers_ = 0;
};

const std::vector<DailyCap> kCaps = {
    {Profile::adult, {RideMode::bus, RideMode::metro}, 1000},
};

// The hand-made day 2024-03-05: an adult card A that rides over its cap (1000 fen on bus and
// metro), a student card B with one tap of the day before that arrived late, zero-amount metro
// entries, and taps of the days before and after that must stay out.
struct HandMadeDay {
  World world;
  std::string a;
  std::string b;

  // `during_day` runs at the end of 2024-03-05, before the taps of the next day.
  explicit HandMadeDay(const std::function<void(HandMadeDay&)>& during_day = {}) {
    world.AddOperator("bus-1", OperatorKind::bus, 130);
    world.AddOperator("metro-1", OperatorKind::metro, 75);
    world.AddOperator("kiosk-1", OperatorKind::counter, 0);
    a = world.AddCard(Profile::adult, 5000);
    b = world.AddCard(Profile::student, 5000);
    World& w = world;
    // The day before: settled on its own day, not here.
    w.Tap(a, Profile::adult, "bus-1", RideMode::bus, 200, 0, 0, "2024-03-04 08:00:00",
          "2024-03-04 08:05:00");
    // Made the day before, received after midnight: late, cleared on 2024-03-05.
    w.Tap(b, Profile::student, "bus-1", RideMode::bus, 200, 100, 0, "2024-03-04 23:50:00",
          "2024-03-05 00:10:00");
    w.Tap(a, Profile::adult, "bus-1", RideMode::bus, 200, 0, 0, "2024-03-05 08:00:00",
          "2024-03-05 08:01:00");
    w.Tap(a, Profile::adult, "metro-1", RideMode::metro, 0, 0, 0, "2024-03-05 08:20:00",
          "2024-03-05 08:21:00");
    w.Tap(a, Profile::adult, "metro-1", RideMode::metro, 600, 30, 0, "2024-03-05 08:50:00",
          "2024-03-05 08:51:00");  // 770 paid so far
    w.Tap(b, Profile::student, "bus-1", RideMode::bus, 200, 100, 0, "2024-03-05 09:00:00",
          "2024-03-05 09:01:00");
    w.Tap(a, Profile::adult, "metro-1", RideMode::metro, 0, 0, 0, "2024-03-05 17:40:00",
          "2024-03-05 17:41:00");
    w.Tap(a, Profile::adult, "metro-1", RideMode::metro, 400, 20, 0, "2024-03-05 18:00:00",
          "2024-03-05 18:01:00");  // 1150: 150 above the cap, rebated by metro-1
    w.Tap(a, Profile::adult, "bus-1", RideMode::bus, 200, 0, 100, "2024-03-05 18:30:00",
          "2024-03-05 18:31:00");  // a transfer; all of its 100 above the cap, rebated by bus-1
    if (during_day) during_day(*this);
    // The day after.
    w.Tap(a, Profile::adult, "bus-1", RideMode::bus, 200, 0, 0, "2024-03-06 07:00:00",
          "2024-03-06 07:01:00");
    w.clock_.SetMs(At("2024-03-06 09:00:00") * 1000);
  }
};

void RequireLine(const OperatorSettlement& line, int64_t taps, int64_t paid_taps,
                 int64_t late_taps, int64_t gross, int64_t concession, int64_t transfer,
                 int64_t paid, int64_t late_paid, int64_t rebate, int64_t fee, int64_t net) {
  CHECK(line.taps == taps);
  CHECK(line.paid_taps == paid_taps);
  CHECK(line.late_taps == late_taps);
  CHECK(line.gross_fen == gross);
  CHECK(line.concession_fen == concession);
  CHECK(line.transfer_discount_fen == transfer);
  CHECK(line.other_discount_fen == 0);
  CHECK(line.paid_fen == paid);
  CHECK(line.late_paid_fen == late_paid);
  CHECK(line.capping_rebate_fen == rebate);
  CHECK(line.fee_base_fen == paid - rebate);
  CHECK(line.fee_fen == fee);
  CHECK(line.net_fen == net);
}

}  // namespace

TEST_CASE("one settlement's rebate ids share their upper half and sort by card number",
          "[core][settlement]") {
  testing::FakeDigester digester;
  const int64_t day = 19'800;
  std::string low = MakeCardNumber(1);
  std::string high = MakeCardNumber(2);
  Id128 a = SettlementRebateId(digester, day, "bus-1", low);
  Id128 b = SettlementRebateId(digester, day, "bus-1", high);
  CHECK(a == SettlementRebateId(digester, day, "bus-1", low));  // settling again: same id
  CHECK(a.hi == b.hi);
  CHECK(a.lo == CardNumberToInt(low));
  CHECK(a < b);
  CHECK(SettlementRebateId(digester, day + 1, "bus-1", low).hi != a.hi);
  CHECK(SettlementRebateId(digester, day, "bus-2", low).hi != a.hi);
  CHECK(SettlementPayoutId(digester, day, "bus-1") != a);
}

TEST_CASE("Fees are basis points of the fee base rounded half up to the fen",
          "[core][settlement]") {
  CHECK(SettlementFeeFen(0, 150) == 0);
  CHECK(SettlementFeeFen(400, 130) == 5);    // 5.2
  CHECK(SettlementFeeFen(800, 75) == 6);     // 6.0
  CHECK(SettlementFeeFen(50, 100) == 1);     // 0.5 rounds up
  CHECK(SettlementFeeFen(49, 100) == 0);     // 0.49 rounds down
  CHECK(SettlementFeeFen(150, 100) == 2);    // 1.5 rounds up
  CHECK(SettlementFeeFen(12345, 0) == 0);
  CHECK(SettlementFeeFen(12345, kFeeBasisPointsMax) == 12345);
  CHECK(SettlementFeeFen(kSettlementFenMax, kFeeBasisPointsMax) == kSettlementFenMax);
  CHECK(SettlementFeeFen(kSettlementFenMax, 1) == kSettlementFenMax / 10'000);
}

TEST_CASE("A hand-made day settles to exact figures with fees, late taps and a capping rebate",
          "[core][settlement]") {
  HandMadeDay day;
  World& w = day.world;
  Settler settler = w.MakeSettler(kCaps);
  Result<SettlementOutcome> outcome = settler.Settle(Day("2024-03-05"));
  REQUIRE(outcome.ok());
  CHECK_FALSE(outcome->repeated);
  const SettlementReport& report = outcome->record.report;
  CHECK(report.day == Day("2024-03-05"));
  CHECK(report.cutoff_s == 0);
  REQUIRE(report.operators.size() == 2);  // kiosk-1 had nothing
  CHECK(report.operators[0].operator_id == "bus-1");
  CHECK(report.operators[0].name == "Operator bus-1");
  CHECK(report.operators[0].kind == "bus");
  CHECK(report.operators[0].fee_bp == 130);
  CHECK(report.operators[0].capped_cards == 1);
  // bus-1: late B 100 + A 200 + B 100 + A transfer 100; rebate 100; fee 1.3 % of 400 = 5.2 -> 5.
  RequireLine(report.operators[0], 4, 4, 1, 800, 200, 100, 500, 100, 100, 5, 395);
  // metro-1: two free entries, exits 570 and 380; rebate 150; fee 0.75 % of 800 = 6.
  CHECK(report.operators[1].operator_id == "metro-1");
  RequireLine(report.operators[1], 4, 2, 0, 1000, 50, 0, 950, 0, 150, 6, 794);
  RequireLine(report.totals, 8, 6, 1, 1800, 250, 100, 1450, 100, 250, 11, 1189);
  CHECK(report.totals.capped_cards == 2);
  CHECK(outcome->record.transfers == 6);  // two rebates, two fees, two payouts

  // The ledger: the day's payables are paid out to zero (bus-1 keeps the next day's 200 and
  // the day before's, which is not settled), the rebate is back on A's purse.
  CHECK(w.Payable("bus-1") == 200 + 200);
  CHECK(w.Payable("metro-1") == 0);
  CHECK(w.Balance(SystemAccountId(AccountKind::fee_income)) == 11);
  CHECK(w.Balance(SystemAccountId(AccountKind::settlement)) == 1189);
  CHECK(w.Purse(day.a) == 5000 - 200 - 200 - 570 - 380 - 100 - 200 + 250);
  CHECK(w.Purse(day.b) == 5000 - 100 - 100);

  auto payout = w.ledger_.LookupTransfer(
      SettlementPayoutId(w.digester_, Day("2024-03-05"), "metro-1"));
  REQUIRE(payout.ok());
  REQUIRE(payout->has_value());
  CHECK((*payout)->amount_fen == 794);
  CHECK((*payout)->code == kTransferCodeSettlementPayout);
  CHECK((*payout)->debit_account_id == AccountIdFor(AccountKind::operator_payable, 2));
  CHECK((*payout)->credit_account_id == SystemAccountId(AccountKind::settlement));
  auto rebate = w.ledger_.LookupTransfer(
      SettlementRebateId(w.digester_, Day("2024-03-05"), "bus-1", day.a));
  REQUIRE(rebate.ok());
  REQUIRE(rebate->has_value());
  CHECK((*rebate)->amount_fen == 100);
  CHECK((*rebate)->code == kTransferCodeCappingRebate);
}

TEST_CASE("Settling the same day again returns the same report and books nothing",
          "[core][settlement]") {
  HandMadeDay day;
  World& w = day.world;
  Settler settler = w.MakeSettler(kCaps);
  auto first = settler.Settle(Day("2024-03-05"));
  REQUIRE(first.ok());
  auto head = w.ledger_store_.LoadHead();
  REQUIRE(head.ok());
  int64_t transfers = head->last_transfer_seq;
  w.clock_.AdvanceMs(3600 * 1000);
  auto second = settler.Settle(Day("2024-03-05"));
  REQUIRE(second.ok());
  CHECK(second->repeated);
  CHECK(second->record.report == first->record.report);
  CHECK(SettlementReportToJson(second->record.report).dump() ==
        SettlementReportToJson(first->record.report).dump());
  CHECK(w.ledger_store_.LoadHead()->last_transfer_seq == transfers);
  CHECK(w.store_.runs() == 1);
}

TEST_CASE("A first settlement books its transfers as new and searches none of their ids",
          "[core][settlement]") {
  HandMadeDay day;
  World& w = day.world;
  int64_t searches = w.ledger_store_.id_searches();
  int64_t transfers = w.ledger_store_.LoadHead()->last_transfer_seq;
  auto outcome = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE(outcome.ok());
  REQUIRE(outcome->record.transfers > 0);
  CHECK(w.ledger_store_.id_searches() == searches);
  CHECK(w.ledger_store_.LoadHead()->last_transfer_seq == transfers + outcome->record.transfers);
}

TEST_CASE("Settling a day twice books nothing twice even when the kept run was lost",
          "[core][settlement]") {
  HandMadeDay day;
  World& w = day.world;
  auto first = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE(first.ok());
  int64_t transfers = w.ledger_store_.LoadHead()->last_transfer_seq;
  int64_t searches = w.ledger_store_.id_searches();
  // A second card office with an empty settlement store (the run was never kept): the
  // transfer ids derive from (day, operator), so the ledger answers "exists" for each.
  FakeSettlementStore empty;
  SettlerConfig config;
  config.daily_caps = kCaps;
  Settler again(w.registry_, w.ledger_, w.ledger_store_, empty, w, w.digester_, w.clock_, config);
  auto second = again.Settle(Day("2024-03-05"));
  REQUIRE(second.ok());
  CHECK_FALSE(second->repeated);
  CHECK(second->record.report == first->record.report);
  CHECK(w.ledger_store_.LoadHead()->last_transfer_seq == transfers);
  // Booked as new, the stored ids were refused whole; booked again searching, each answered
  // `exists`.
  CHECK(w.ledger_store_.id_searches() - searches >= first->record.transfers);
}

TEST_CASE("A day that has not ended yet is refused", "[core][settlement]") {
  HandMadeDay day;
  World& w = day.world;
  w.clock_.SetMs(At("2024-03-05 23:59:59") * 1000);
  auto outcome = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.status().code() == "day_not_over");
  CHECK(outcome.status().kind() == Kind::refused);
}

// A tap transfer the tap store does not know of, booked on the day: reconciliation fails.
static void BookTapUnknownToTapStore(HandMadeDay& d) {
  d.world.clock_.SetMs(At("2024-03-05 20:00:00") * 1000);
  d.world.Book(AccountIdFor(AccountKind::card_purse, CardNumberToInt(d.a)),
               AccountIdFor(AccountKind::operator_payable, 2), 7, 16);
}

TEST_CASE("A tap booked in the ledger but missing from the tap store fails reconciliation",
          "[core][settlement]") {
  HandMadeDay day(BookTapUnknownToTapStore);
  World& w = day.world;
  int64_t transfers = w.ledger_store_.LoadHead()->last_transfer_seq;
  auto outcome = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.status().code() == "reconciliation_failed");
  CHECK(outcome.status().kind() == Kind::internal);
  CHECK(outcome.status().message() ==
        "operator metro-1: the ledger booked 957 fen in 3 tap transfers (0 fen debited back) on "
        "2024-03-05, the report has 950 fen in 2 paid taps");
  CHECK(w.ledger_store_.LoadHead()->last_transfer_seq == transfers);  // nothing booked
  CHECK(w.store_.runs() == 0);
}

TEST_CASE("A tap to an operator the report does not list fails reconciliation",
          "[core][settlement]") {
  HandMadeDay day([](HandMadeDay& d) {
    d.world.clock_.SetMs(At("2024-03-05 20:00:00") * 1000);
    d.world.Book(AccountIdFor(AccountKind::card_purse, CardNumberToInt(d.a)),
                 AccountIdFor(AccountKind::operator_payable, 3), 300, 16);  // kiosk-1
  });
  World& w = day.world;
  auto outcome = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.status().code() == "reconciliation_failed");
  CHECK(outcome.status().message().find("which the report does not list") != std::string::npos);
}

TEST_CASE("A payout id already booked with another amount fails and books nothing",
          "[core][settlement]") {
  HandMadeDay day;
  World& w = day.world;
  Transfer t;
  t.id = SettlementPayoutId(w.digester_, Day("2024-03-05"), "metro-1");
  t.debit_account_id = AccountIdFor(AccountKind::operator_payable, 2);
  t.credit_account_id = SystemAccountId(AccountKind::settlement);
  t.amount_fen = 1;
  t.code = kTransferCodeSettlementPayout;
  REQUIRE(w.ledger_.Apply(std::span<const Transfer>(&t, 1)).ok());
  int64_t transfers = w.ledger_store_.LoadHead()->last_transfer_seq;
  auto outcome = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.status().code() == "settlement_transfer_failed");
  CHECK(outcome.status().message().find("exists_with_different") != std::string::npos);
  CHECK(w.ledger_store_.LoadHead()->last_transfer_seq == transfers);
  CHECK(w.Payable("metro-1") == 950 - 1);
  CHECK(w.store_.runs() == 0);
}

TEST_CASE("Without daily caps nobody is rebated and the operators keep all they were paid",
          "[core][settlement]") {
  HandMadeDay day;
  auto outcome = day.world.MakeSettler({}).Settle(Day("2024-03-05"));
  REQUIRE(outcome.ok());
  const SettlementReport& report = outcome->record.report;
  RequireLine(report.operators[0], 4, 4, 1, 800, 200, 100, 500, 100, 0, 7, 493);  // 6.5 -> 7
  RequireLine(report.operators[1], 4, 2, 0, 1000, 50, 0, 950, 0, 0, 7, 943);      // 7.125 -> 7
}

TEST_CASE("A clearing cut-off moves taps after midnight into the day before",
          "[core][settlement]") {
  World w;
  w.AddOperator("bus-1", OperatorKind::bus, 0);
  std::string a = w.AddCard(Profile::adult, 5000);
  REQUIRE(w.store_.SetClearingCutoff(4 * 3600).ok());
  w.Tap(a, Profile::adult, "bus-1", RideMode::bus, 200, 0, 0, "2024-03-05 23:30:00",
        "2024-03-05 23:31:00");
  w.Tap(a, Profile::adult, "bus-1", RideMode::bus, 300, 0, 0, "2024-03-06 03:30:00",
        "2024-03-06 03:31:00");  // before the 04:00 cut-off: still 2024-03-05
  w.Tap(a, Profile::adult, "bus-1", RideMode::bus, 400, 0, 0, "2024-03-06 04:00:00",
        "2024-03-06 04:01:00");
  w.clock_.SetMs(At("2024-03-06 05:00:00") * 1000);
  // The cap (400) applies per clearing day: 200 + 300 pass it by 100.
  auto outcome = w.MakeSettler({{Profile::adult, {RideMode::bus}, 400}}).Settle(Day("2024-03-05"));
  REQUIRE(outcome.ok());
  const SettlementReport& report = outcome->record.report;
  CHECK(report.cutoff_s == 4 * 3600);
  REQUIRE(report.operators.size() == 1);
  RequireLine(report.operators[0], 2, 2, 0, 500, 0, 0, 500, 0, 100, 0, 400);
}

TEST_CASE("A rebate to a closed card goes to the refunds account", "[core][settlement]") {
  HandMadeDay day;
  World& w = day.world;
  Card card = **w.registry_.FindCard(day.a);
  card.status = CardStatus::closed;
  REQUIRE(w.registry_.UpdateCard(card).ok());
  auto outcome = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE(outcome.ok());
  CHECK(w.Balance(SystemAccountId(AccountKind::refunds)) == 250);
}

TEST_CASE("A rebate to a replaced card whose balance moved follows it to the new card",
          "[core][settlement]") {
  HandMadeDay day;
  World& w = day.world;
  std::string c = w.AddCard(Profile::adult, 0);
  Card old_card = **w.registry_.FindCard(day.a);
  old_card.status = CardStatus::replaced;
  old_card.replaced_by = c;
  old_card.balance_moved_s = At("2024-03-06 08:00:00");
  REQUIRE(w.registry_.UpdateCard(old_card).ok());
  auto outcome = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE(outcome.ok());
  CHECK(w.Purse(c) == 250);
}

TEST_CASE("A rebate to a replaced card whose balance has not moved stays on its own purse",
          "[core][settlement]") {
  HandMadeDay day;
  World& w = day.world;
  std::string c = w.AddCard(Profile::adult, 0);
  Card old_card = **w.registry_.FindCard(day.a);
  old_card.status = CardStatus::replaced;
  old_card.replaced_by = c;
  REQUIRE(w.registry_.UpdateCard(old_card).ok());
  int64_t before = w.Purse(day.a);
  auto outcome = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE(outcome.ok());
  CHECK(w.Purse(day.a) == before + 250);
  CHECK(w.Purse(c) == 0);
}

TEST_CASE("A rebate whose replacement chain leads to a card not in the registry fails and books "
          "nothing",
          "[core][settlement]") {
  HandMadeDay day;
  World& w = day.world;
  Card old_card = **w.registry_.FindCard(day.a);
  old_card.status = CardStatus::replaced;
  old_card.replaced_by = "8607559999999999";
  old_card.balance_moved_s = At("2024-03-06 08:00:00");
  REQUIRE(w.registry_.UpdateCard(old_card).ok());
  const int64_t payable = w.Payable("bus-1");
  auto outcome = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.status().code() == "settlement_card_missing");
  CHECK(outcome.status().message() ==
        "card 8607559999999999 paid taps but is not in the registry");
  CHECK(w.store_.runs() == 0);
  CHECK(w.Payable("bus-1") == payable);
  CHECK(w.Payable("bus-1") == 900);
}

TEST_CASE("A rebate whose replacement chain loops fails as too long and books nothing",
          "[core][settlement]") {
  HandMadeDay day;
  World& w = day.world;
  // Card a is replaced by b and b by a, both with their balance moved: b, not rebated itself,
  // is read from the registry on the way.
  Card a = **w.registry_.FindCard(day.a);
  Card b = **w.registry_.FindCard(day.b);
  a.status = b.status = CardStatus::replaced;
  a.replaced_by = day.b;
  b.replaced_by = day.a;
  a.balance_moved_s = b.balance_moved_s = At("2024-03-06 08:00:00");
  REQUIRE(w.registry_.UpdateCard(a).ok());
  REQUIRE(w.registry_.UpdateCard(b).ok());
  auto outcome = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.status().code() == "replacement_chain_too_long");
  CHECK(outcome.status().message() == "card " + day.a + " has more than 64 replacements");
  CHECK(w.store_.runs() == 0);
}

TEST_CASE("With the tap source apart its day is read on a second thread and settles the same",
          "[core][settlement]") {
  HandMadeDay together;
  HandMadeDay apart;
  auto one = together.world.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  auto two = apart.world.MakeSettler(kCaps, true).Settle(Day("2024-03-05"));
  REQUIRE(one.ok());
  REQUIRE(two.ok());
  CHECK(one->record.report == two->record.report);
  CHECK(one->record.transfers == 6);
  CHECK(two->record.transfers == 6);
  CHECK(apart.world.Payable("bus-1") == together.world.Payable("bus-1"));
  CHECK(apart.world.Purse(apart.a) == together.world.Purse(together.a));
  // Not read ahead when the source shares the Settler's connection.
  CHECK(together.world.read_day_threads_.empty());
  REQUIRE(apart.world.read_day_threads_.size() == 1);
  CHECK(apart.world.read_day_threads_[0] != std::this_thread::get_id());
}

TEST_CASE("A tap source apart that fails to read its day fails the settlement and books nothing",
          "[core][settlement]") {
  HandMadeDay day;
  World& w = day.world;
  w.read_day_status_ = Status::Internal("tap_store_corrupt", "tap 7: not a tap record");
  const int64_t payable = w.Payable("bus-1");
  auto outcome = w.MakeSettler(kCaps, true).Settle(Day("2024-03-05"));
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.status().code() == "tap_store_corrupt");
  CHECK(w.store_.runs() == 0);
  CHECK(w.Payable("bus-1") == payable);
  CHECK(w.Payable("bus-1") == 900);
}

// Card reads over a registry of their own, as over a second connection (the CLI's tap source's),
// recording the thread and the number of cards of each read.
class ApartCardReads final : public SettlementReads {
 public:
  explicit ApartCardReads(const FakeRegistry& registry) : registry_(registry) {}
  Status SumPostedMovements(int64_t, int64_t, std::optional<AccountKind>,
                            std::vector<AccountCodeSum>*) override {
    return Unused();
  }
  Status ForEachDayTap(int64_t, const std::function<Status(const DayTapSummary&)>&) override {
    return Unused();
  }
  Result<std::optional<SeqRange>> DayTapSeqs(int64_t) override { return Unused(); }
  Status ForEachDayTapIn(int64_t, SeqRange,
                         const std::function<Status(const DayTapSummary&)>&) override {
    return Unused();
  }
  Status FindRebateCards(std::span<const std::string> card_nos,
                         std::vector<RebateCardState>* out) override {
    std::lock_guard lock(mutex_);
    reads_.emplace_back(std::this_thread::get_id(), card_nos.size());
    return FindRebateCardsFromRegistry(registry_, card_nos, out);
  }
  Result<int64_t> CardChanges() override {
    std::lock_guard lock(mutex_);
    return registry_.CardChanges();
  }
  // Another process's change, seen over this connection too; from any thread (Catch2's
  // macros are not, hence the assertion).
  void UpdateCard(const Card& card) {
    std::lock_guard lock(mutex_);
    CITYCARD_ASSERT(registry_.UpdateCard(card).ok());
  }
  std::vector<std::pair<std::thread::id, size_t>> Reads() {
    std::lock_guard lock(mutex_);
    return reads_;
  }

 private:
  static Status Unused() { return Status::Internal("unused", "not read apart"); }
  FakeRegistry registry_;
  std::mutex mutex_;
  std::vector<std::pair<std::thread::id, size_t>> reads_;
};

// 2024-03-05 with 30 adult cards over their cap: each rides bus 400, metro 500 and a last 400
// (bus, or metro for every third card), so that the last tap is rebated 300 by its operator.
// Card 7 was replaced by `successor` (not rebated itself) and its balance moved; card 11 is
// closed.
struct BusyDay {
  World world;
  std::vector<std::string> cards;
  std::string successor;

  BusyDay() {
    World& w = world;
    w.AddOperator("bus-1", OperatorKind::bus, 130);
    w.AddOperator("metro-1", OperatorKind::metro, 75);
    for (int i = 0; i < 30; ++i) {
      std::string card = w.AddCard(Profile::adult, 5000);
      cards.push_back(card);
      auto at = [i](int hour) { return fmt::format("2024-03-05 {:02}:{:02}:00", hour, i); };
      w.Tap(card, Profile::adult, "bus-1", RideMode::bus, 400, 0, 0, at(8).c_str(),
            at(8).c_str());
      w.Tap(card, Profile::adult, "metro-1", RideMode::metro, 500, 0, 0, at(12).c_str(),
            at(12).c_str());
      bool metro = i % 3 == 0;
      w.Tap(card, Profile::adult, metro ? "metro-1" : "bus-1",
            metro ? RideMode::metro : RideMode::bus, 400, 0, 0, at(18).c_str(), at(18).c_str());
    }
    successor = w.AddCard(Profile::adult, 0);
    Card replaced = **w.registry_.FindCard(cards[7]);
    replaced.status = CardStatus::replaced;
    replaced.replaced_by = successor;
    replaced.balance_moved_s = At("2024-03-06 08:00:00");
    REQUIRE(w.registry_.UpdateCard(replaced).ok());
    Card closed = **w.registry_.FindCard(cards[11]);
    closed.status = CardStatus::closed;
    REQUIRE(w.registry_.UpdateCard(closed).ok());
    w.clock_.SetMs(At("2024-03-06 09:00:00") * 1000);
  }
};

TEST_CASE("With plan reads apart the transfers are planned on a second thread a stretch at a "
          "time, and the booking writes the same ledger batches as when they were planned first",
          "[core][settlement]") {
  BusyDay first;
  BusyDay second;
  SettlerConfig together;
  together.daily_caps = kCaps;
  together.book_batch = 7;
  auto one = first.world.MakeSettlerWith(together).Settle(Day("2024-03-05"));
  REQUIRE(one.ok());

  ApartCardReads reads(second.world.registry_);
  SettlerConfig apart = together;
  apart.plan_reads = &reads;
  apart.plan_stretch = 4;
  auto two = second.world.MakeSettlerWith(apart).Settle(Day("2024-03-05"));
  REQUIRE(two.ok());

  CHECK(one->record.report == two->record.report);
  // 30 rebates, and a fee and a payout per operator.
  CHECK(one->record.transfers == 34);
  CHECK(two->record.transfers == 34);
  // The same batches of 7, chained the same: the same head of the hash chain.
  auto head_one = first.world.ledger_store_.LoadHead();
  auto head_two = second.world.ledger_store_.LoadHead();
  REQUIRE(head_one.ok());
  REQUIRE(head_two.ok());
  CHECK(head_one->last_transfer_seq == head_two->last_transfer_seq);
  REQUIRE(head_one->last_batch.has_value());
  REQUIRE(head_two->last_batch.has_value());
  CHECK(head_one->last_batch->seq == head_two->last_batch->seq);
  CHECK(head_one->last_batch->hash == head_two->last_batch->hash);
  CHECK(head_two->last_batch->transfer_count == 34 % 7);
  for (size_t i = 0; i < second.cards.size(); ++i) {
    CHECK(second.world.Purse(second.cards[i]) == first.world.Purse(first.cards[i]));
  }
  CHECK(second.world.Purse(second.successor) == 300);
  CHECK(second.world.Balance(SystemAccountId(AccountKind::refunds)) == 300);
  // Each rebate under its own operator's id, though the operators alternate in card order.
  for (size_t i = 0; i < second.cards.size(); ++i) {
    const char* op = i % 3 == 0 ? "metro-1" : "bus-1";
    auto rebate = second.world.ledger_.LookupTransfer(
        SettlementRebateId(second.world.digester_, Day("2024-03-05"), op, second.cards[i]));
    REQUIRE(rebate.ok());
    REQUIRE(rebate->has_value());
    CHECK((*rebate)->amount_fen == 300);
    CHECK((*rebate)->debit_account_id == (*second.world.registry_.FindOperator(op))->payable_account_id);
  }
  CHECK(second.world.Payable("bus-1") == 0);
  CHECK(second.world.Payable("metro-1") == 0);

  // Every card was read on the planning thread: the 30 rebated ones in stretches of at most
  // 4, and the successor alone.
  auto asked = reads.Reads();
  size_t cards_read = 0;
  size_t largest = 0;
  for (const auto& [thread, count] : asked) {
    CHECK(thread != std::this_thread::get_id());
    cards_read += count;
    largest = std::max(largest, count);
  }
  CHECK(asked.size() == 30 / 4 + 1 + 1);
  CHECK(cards_read == 31);
  CHECK(largest == 4);
  // The caps too: the card-days were asked for on the planning thread, and without plan reads
  // on the calling one.
  REQUIRE(second.world.card_day_threads_.size() == 1);
  CHECK(second.world.card_day_threads_[0] != std::this_thread::get_id());
  REQUIRE(first.world.card_day_threads_.size() == 1);
  CHECK(first.world.card_day_threads_[0] == std::this_thread::get_id());
}

TEST_CASE("With plan reads apart a day that fails reconciliation on the planning thread books "
          "nothing, though its rebates may have been booked before the check",
          "[core][settlement]") {
  // As "A tap booked in the ledger but missing from the tap store fails reconciliation", with
  // the caps, the report and its check on the planning thread, and a batch per transfer.
  HandMadeDay day(BookTapUnknownToTapStore);
  World& w = day.world;
  const int64_t transfers = w.ledger_store_.LoadHead()->last_transfer_seq;
  const int64_t purse = w.Purse(day.a);
  ApartCardReads reads(w.registry_);
  SettlerConfig apart;
  apart.daily_caps = kCaps;
  apart.plan_reads = &reads;
  apart.plan_stretch = 1;
  apart.book_batch = 1;
  auto outcome = w.MakeSettlerWith(apart).Settle(Day("2024-03-05"));
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.status().code() == "reconciliation_failed");
  CHECK(outcome.status().message() ==
        "operator metro-1: the ledger booked 957 fen in 3 tap transfers (0 fen debited back) on "
        "2024-03-05, the report has 950 fen in 2 paid taps");
  // The rebate was planned (its card read apart) before the check failed.
  CHECK(reads.Reads().size() == 1);
  CHECK(w.ledger_store_.LoadHead()->last_transfer_seq == transfers);  // nothing booked
  CHECK(w.Purse(day.a) == purse);
  CHECK(w.store_.runs() == 0);
}

TEST_CASE("A planning that fails on its thread books nothing, whatever was booked before it, "
          "and gives its own failure",
          "[core][settlement]") {
  BusyDay day;
  World& w = day.world;
  // The last card in the plan's order leads to a card nobody registered: the planning fails
  // at its last stretch, after the booking may have written batches of the ones before.
  Card last = **w.registry_.FindCard(day.cards.back());
  last.status = CardStatus::replaced;
  last.replaced_by = "8607559999999999";
  last.balance_moved_s = At("2024-03-06 08:00:00");
  REQUIRE(w.registry_.UpdateCard(last).ok());
  ApartCardReads reads(w.registry_);
  SettlerConfig apart;
  apart.daily_caps = kCaps;
  apart.plan_reads = &reads;
  apart.plan_stretch = 2;
  apart.book_batch = 3;
  const int64_t first_purse = w.Purse(day.cards.front());
  const int64_t bus_payable = w.Payable("bus-1");
  auto outcome = w.MakeSettlerWith(apart).Settle(Day("2024-03-05"));
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.status().code() == "settlement_card_missing");
  CHECK(outcome.status().message() ==
        "card 8607559999999999 paid taps but is not in the registry");
  CHECK(w.store_.runs() == 0);
  CHECK(w.Purse(day.cards.front()) == first_purse);
  CHECK(w.Payable("bus-1") == bus_payable);
  CHECK(w.Purse(day.successor) == 0);
  // And the same day settles once the registry is mended.
  last.status = CardStatus::active;
  REQUIRE(w.registry_.UpdateCard(last).ok());
  ApartCardReads mended(w.registry_);
  apart.plan_reads = &mended;
  auto again = w.MakeSettlerWith(apart).Settle(Day("2024-03-05"));
  REQUIRE(again.ok());
  CHECK(again->record.transfers == 34);
  CHECK(w.Purse(day.cards.front()) == first_purse + 300);
}

// Closes `card_no` in `registry` (and over `apart` too, when given): another process's card
// office closing the card.
void CloseCard(FakeRegistry& registry, const std::string& card_no, ApartCardReads* apart,
               CardStatus status = CardStatus::closed) {
  Card card = **registry.FindCard(card_no);
  card.status = status;
  CITYCARD_ASSERT(registry.UpdateCard(card).ok());
  if (apart != nullptr) apart->UpdateCard(card);
}

// The busy day settled with `closing` (card 3, rebated 300) closed before the booking: its
// purse kept `purse`, its rebate and card 11's are on the refunds account, the payables paid.
void CheckRebatedOnRefunds(World& w, const SettlementOutcome& outcome, const std::string& closing,
                           int64_t purse) {
  CHECK(outcome.record.transfers == 34);
  CHECK(w.Purse(closing) == purse);
  CHECK(w.Balance(SystemAccountId(AccountKind::refunds)) == 600);
  CHECK(w.Payable("bus-1") == 0);
  CHECK(w.Payable("metro-1") == 0);
}

TEST_CASE("A card closed by another process after the plan read it, before the booking began, "
          "gets its rebate on the refunds account: the booking sees the change and plans again",
          "[core][settlement]") {
  BusyDay day;
  World& w = day.world;
  const std::string closing = day.cards[3];  // rebated 300 by metro-1
  const int64_t purse = w.Purse(closing);
  int begins = 0;
  w.registry_.on_begin = [&] {
    if (++begins == 1) CloseCard(w.registry_, closing, nullptr);
  };
  SettlerConfig config;
  config.daily_caps = kCaps;
  auto outcome = w.MakeSettlerWith(config).Settle(Day("2024-03-05"));
  REQUIRE(outcome.ok());
  CHECK(begins == 2);  // the first booking was rolled back and the day planned again
  CheckRebatedOnRefunds(w, *outcome, closing, purse);
  CHECK(w.Purse(day.successor) == 300);
  CHECK(w.store_.runs() == 1);
}

TEST_CASE("With plan reads apart a card closed by another process after the planning thread "
          "read the cards, before the booking began, gets its rebate on the refunds account",
          "[core][settlement]") {
  BusyDay day;
  World& w = day.world;
  const std::string closing = day.cards[3];
  const int64_t purse = w.Purse(closing);
  ApartCardReads reads(w.registry_);
  int begins = 0;
  w.registry_.on_begin = [&] {
    if (++begins > 1) return;
    // The change comes once the planning thread has read its first stretch of cards.
    while (reads.Reads().empty()) std::this_thread::yield();
    CloseCard(w.registry_, closing, &reads);
  };
  SettlerConfig apart;
  apart.daily_caps = kCaps;
  apart.plan_reads = &reads;
  apart.plan_stretch = 4;
  apart.book_batch = 3;
  auto outcome = w.MakeSettlerWith(apart).Settle(Day("2024-03-05"));
  REQUIRE(outcome.ok());
  CHECK(begins == 2);  // planned again
  CheckRebatedOnRefunds(w, *outcome, closing, purse);
}

TEST_CASE("A day whose cards change before every booking is refused after three plans, and "
          "nothing is booked",
          "[core][settlement]") {
  BusyDay day;
  World& w = day.world;
  const std::string changing = day.cards[3];
  const int64_t transfers = w.ledger_store_.LoadHead()->last_transfer_seq;
  const int64_t purse = w.Purse(changing);
  const int64_t metro_payable = w.Payable("metro-1");
  int begins = 0;
  w.registry_.on_begin = [&] {
    ++begins;
    CloseCard(w.registry_, changing, nullptr,
              begins % 2 == 1 ? CardStatus::blocked : CardStatus::active);
  };
  SettlerConfig config;
  config.daily_caps = kCaps;
  auto outcome = w.MakeSettlerWith(config).Settle(Day("2024-03-05"));
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.status().kind() == Kind::refused);
  CHECK(outcome.status().code() == "settlement_cards_changed");
  CHECK(outcome.status().message() ==
        "cards changed while the settlement of 2024-03-05 was planned, 3 times in a row; "
        "nothing was booked; settle the day again");
  CHECK(begins == kSettlementCardChangeTriesMax);
  CHECK(w.ledger_store_.LoadHead()->last_transfer_seq == transfers);
  CHECK(w.Purse(changing) == purse);
  CHECK(w.Payable("metro-1") == metro_payable);
  CHECK(w.store_.runs() == 0);
  // Once the cards stay still, the day settles.
  w.registry_.on_begin = nullptr;
  auto again = w.MakeSettlerWith(config).Settle(Day("2024-03-05"));
  REQUIRE(again.ok());
  CHECK(again->record.transfers == 34);
}

TEST_CASE("The report's pure builder refuses operators it does not know and impossible figures",
          "[core][settlement]") {
  Operator op;
  op.number = 1;
  op.id = "bus-1";
  op.name = "Bus";
  op.payable_account_id = AccountIdFor(AccountKind::operator_payable, 1);
  OperatorTapTotals unknown;
  unknown.operator_id = "ghost";
  auto report = BuildSettlementReport(1, 0, {op}, {unknown}, {}, {});
  REQUIRE_FALSE(report.ok());
  CHECK(report.status().code() == "unknown_operator");

  OperatorTapTotals overpaid;
  overpaid.operator_id = "bus-1";
  overpaid.taps = 1;
  overpaid.paid_taps = 1;
  overpaid.gross_fen = 100;
  overpaid.paid_fen = 150;
  report = BuildSettlementReport(1, 0, {op}, {overpaid}, {}, {});
  REQUIRE_FALSE(report.ok());
  CHECK(report.status().code() == "invalid_settlement_input");

  OperatorTapTotals paid;
  paid.operator_id = "bus-1";
  paid.taps = 1;
  paid.paid_taps = 1;
  paid.gross_fen = 100;
  paid.paid_fen = 100;
  report = BuildSettlementReport(1, 0, {op}, {paid}, {}, {{"8607550000000013", "bus-1", 101}});
  REQUIRE_FALSE(report.ok());
  CHECK(report.status().code() == "invalid_settlement_input");

  report = BuildSettlementReport(1, 0, {op}, {paid}, {}, {{"8607550000000013", "bus-1", 0}});
  REQUIRE_FALSE(report.ok());
  CHECK(report.status().code() == "invalid_settlement_input");
}

TEST_CASE("Service hooks appear on their operator's line; only bills are paid out",
          "[core][settlement]") {
  Operator kiosk;
  kiosk.number = 1;
  kiosk.id = "kiosk-1";
  kiosk.name = "Kiosk";
  kiosk.kind = OperatorKind::counter;
  OperatorServiceTotals services;
  services.operator_id = "kiosk-1";
  services.topups = 3;
  services.topup_fen = 15000;
  services.bills = 2;
  services.bills_amount_fen = 9900;
  auto report = BuildSettlementReport(1, 0, {kiosk}, {}, {services}, {});
  REQUIRE(report.ok());
  REQUIRE(report->operators.size() == 1);
  CHECK(report->operators[0].topups == 3);
  CHECK(report->operators[0].topup_fen == 15000);
  CHECK(report->operators[0].net_fen == 9900);  // the bills; the top-ups are reported only
  CHECK(report->operators[0].fee_base_fen == 9900);
  CHECK(report->totals.bills_amount_fen == 9900);
}

TEST_CASE("The report's JSON has CLI.md's keys, amounts twice, and reads back",
          "[core][settlement]") {
  HandMadeDay day;
  auto outcome = day.world.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE(outcome.ok());
  nlohmann::json json = SettlementReportToJson(outcome->record.report);
  CHECK(json["day"] == "2024-03-05");
  CHECK(json["cutoff"] == "00:00");
  REQUIRE(json["operators"].size() == 2);
  const nlohmann::json& bus = json["operators"][0];
  for (const char* key : {"operator", "name", "taps", "gross_fen", "concession_fen",
                          "transfer_discount_fen", "fee_fen", "net_fen", "late_taps",
                          "capping_rebate_fen"}) {
    CHECK(bus.contains(key));
  }
  CHECK(bus["operator"] == "bus-1");
  CHECK(bus["net_fen"] == 395);
  CHECK(bus["net"] == "3.95");
  CHECK(json["totals"]["gross_fen"] == 1800);
  CHECK(json["totals"]["gross"] == "18.00");
  CHECK_FALSE(json["totals"].contains("operator"));
  auto back = SettlementReportFromJson(json);
  INFO(back.status().ToString());
  REQUIRE(back.ok());
  CHECK(*back == outcome->record.report);

  json["operators"][0].erase("taps");
  auto broken = SettlementReportFromJson(json);
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.status().code() == "invalid_settlement_record");
}

TEST_CASE("Ledger movements of a window are summed per account and code",
          "[core][settlement]") {
  HandMadeDay day;
  World& w = day.world;
  auto movements = CollectLedgerMovements(w.ledger_store_, At("2024-03-05 00:00:00") * 1000,
                                          At("2024-03-06 00:00:00") * 1000);
  REQUIRE(movements.ok());
  AccountCodeMovement bus = (*movements)[{AccountIdFor(AccountKind::operator_payable, 1), 16}];
  CHECK(bus.transfers == 4);
  CHECK(bus.credits_fen == 500);
  AccountCodeMovement purse =
      (*movements)[{AccountIdFor(AccountKind::card_purse, CardNumberToInt(day.a)), 16}];
  CHECK(purse.transfers == 4);
  CHECK(purse.debits_fen == 1250);
  // An empty window, and one after every transfer.
  auto none = CollectLedgerMovements(w.ledger_store_, At("2024-03-07 00:00:00") * 1000,
                                     At("2024-03-08 00:00:00") * 1000);
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("Utility bills paid on the day are paid out to the utility with its fee",
          "[core][settlement]") {
  HandMadeDay day([](HandMadeDay& d) {
    d.world.AddOperator("water-1", OperatorKind::utility, 50);
    d.world.clock_.SetMs(At("2024-03-05 20:00:00") * 1000);
    d.world.Book(AccountIdFor(AccountKind::card_purse, CardNumberToInt(d.b)),
                 AccountIdFor(AccountKind::operator_payable, 4), 3000, 32);
    d.world.Book(AccountIdFor(AccountKind::card_purse, CardNumberToInt(d.a)),
                 AccountIdFor(AccountKind::operator_payable, 4), 1001, 32);
  });
  World& w = day.world;
  auto outcome = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE(outcome.ok());
  const SettlementReport& report = outcome->record.report;
  REQUIRE(report.operators.size() == 3);
  const OperatorSettlement& water = report.operators[2];
  CHECK(water.operator_id == "water-1");
  CHECK(water.kind == "utility");
  CHECK(water.taps == 0);
  CHECK(water.bills == 2);
  CHECK(water.bills_amount_fen == 4001);
  CHECK(water.fee_base_fen == 4001);
  CHECK(water.fee_fen == 20);  // 0.5 % of 40.01 = 20.005 fen -> 20
  CHECK(water.net_fen == 3981);
  CHECK(report.totals.bills_amount_fen == 4001);
  CHECK(report.totals.net_fen == 1189 + 3981);
  CHECK(w.Payable("water-1") == 0);
}

TEST_CASE("Medical shares and their reversals, and pass sales, are paid out to their operators",
          "[core][settlement]") {
  HandMadeDay day([](HandMadeDay& d) {
    d.world.AddOperator("hosp-1", OperatorKind::hospital, 0);   // number 4
    d.world.AddOperator("park-1", OperatorKind::scenic, 100);   // number 5
    d.world.clock_.SetMs(At("2024-03-05 20:00:00") * 1000);
    uint64_t hospital = AccountIdFor(AccountKind::operator_payable, 4);
    uint64_t fund = SystemAccountId(AccountKind::medical_fund);
    uint64_t purse_a = AccountIdFor(AccountKind::card_purse, CardNumberToInt(d.a));
    d.world.Book(fund, hospital, 500, 64);      // the fund's share
    d.world.Book(purse_a, hospital, 300, 67);   // the holder's share, from the purse
    d.world.Book(hospital, fund, 200, 72);      // an earlier bill's fund share reversed
    d.world.Book(purse_a, AccountIdFor(AccountKind::operator_payable, 5), 12000, 48);
  });
  World& w = day.world;
  auto outcome = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE(outcome.ok());
  const SettlementReport& report = outcome->record.report;
  REQUIRE(report.operators.size() == 4);
  const OperatorSettlement& hospital = report.operators[1];
  CHECK(hospital.operator_id == "hosp-1");
  CHECK(hospital.medical_fund_fen == 300);
  CHECK(hospital.medical_holder_fen == 300);
  CHECK(hospital.net_fen == 600);
  const OperatorSettlement& park = report.operators[3];
  CHECK(park.operator_id == "park-1");
  CHECK(park.passes == 1);
  CHECK(park.passes_amount_fen == 12000);
  CHECK(park.fee_fen == 120);
  CHECK(park.net_fen == 11880);
  CHECK(w.Payable("hosp-1") == 0);
  CHECK(w.Payable("park-1") == 0);
}

TEST_CASE("A reversal larger than the day's takings is owed back by the operator",
          "[core][settlement]") {
  HandMadeDay day([](HandMadeDay& d) {
    d.world.AddOperator("hosp-1", OperatorKind::hospital, 100);
    d.world.clock_.SetMs(At("2024-03-05 20:00:00") * 1000);
    d.world.Book(AccountIdFor(AccountKind::operator_payable, 4),
                 SystemAccountId(AccountKind::medical_fund), 700, 72);
  });
  World& w = day.world;
  auto outcome = w.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE(outcome.ok());
  const OperatorSettlement& hospital = outcome->record.report.operators[1];
  CHECK(hospital.medical_fund_fen == -700);
  CHECK(hospital.fee_fen == 0);
  CHECK(hospital.net_fen == -700);
  CHECK(w.Payable("hosp-1") == 0);
  CHECK(w.Balance(SystemAccountId(AccountKind::settlement)) == 1189 - 700);
}

TEST_CASE("A payable moved under a code settlement does not know fails reconciliation",
          "[core][settlement]") {
  HandMadeDay day([](HandMadeDay& d) {
    d.world.clock_.SetMs(At("2024-03-05 20:00:00") * 1000);
    d.world.Book(AccountIdFor(AccountKind::card_purse, CardNumberToInt(d.a)),
                 AccountIdFor(AccountKind::operator_payable, 1), 10, 5);
  });
  auto outcome = day.world.MakeSettler(kCaps).Settle(Day("2024-03-05"));
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.status().code() == "reconciliation_failed");
  CHECK(outcome.status().message().find("which settlement does not know") != std::string::npos);
}
