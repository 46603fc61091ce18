#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "core/account_plan.h"
#include "core/bills.h"
#include "core/card_number.h"
#include "core/national_id.h"
#include "tests/support/card_office_fixture_support.h"
#include "tests/support/memory_bill_store_support.h"

using namespace citycard;
using citycard::testing::CardOfficeFixture;
using citycard::testing::MemoryBillStore;

namespace {

// A valid national id for holder n (17 digits and the ISO 7064 check character).
std::string NationalIdFor(int n) {
  std::string first17 = fmt::format("32128119900101{:03d}", n);
  return first17 + NationalIdCheckChar(first17);
}

struct BillsFixture {
  BillsFixture() {
    REQUIRE(f.terminals.AddOperator({"water-hz", "杭州水务", OperatorKind::utility, 0}).ok());
    REQUIRE(f.terminals.AddOperator({"power-hz", "国网杭州供电", OperatorKind::utility, 0}).ok());
    REQUIRE(f.terminals.AddOperator({"BUS01", "巴士集团", OperatorKind::bus, 0}).ok());
  }

  // Issues an adult card with `balance_fen` on its purse.
  Card NewCard(int holder, int64_t balance_fen) {
    CardView view = f.IssueAdult(NationalIdFor(holder));
    if (balance_fen > 0) {
      REQUIRE(f.office.Topup(view.card.card_no, balance_fen, fmt::format("init{}", holder)).ok());
    }
    return view.card;
  }

  void Mandate(const Card& card, const std::string& utility, const std::string& account) {
    auto added = service.AddMandate(card.card_no, utility, account);
    INFO(added.status().message());
    REQUIRE(added.ok());
  }

  uint64_t Payable(const std::string& utility) {
    auto op = f.registry.FindOperator(utility);
    REQUIRE(op.ok());
    REQUIRE(op->has_value());
    return (*op)->payable_account_id;
  }

  // Imports `text`, collecting the results in order.
  Result<BillImportReport> Import(const std::string& text, std::vector<BillResult>* results,
                                  bool skip_bad = false, size_t chunk = kBillChunkBillsDefault) {
    BillImportOptions options;
    options.skip_bad = skip_bad;
    options.chunk_bills = chunk;
    options.on_results = [results](std::span<const BillResult> chunk_results) {
      results->insert(results->end(), chunk_results.begin(), chunk_results.end());
      return Status::Ok();
    };
    return service.ImportBills(text, options);
  }

  CardOfficeFixture f;
  MemoryBillStore store{f.registry};
  BillService service{store, f.registry, f.ledger, f.digester, f.clock};
};

const std::string kHeader = "bill_id,utility,account_no,card_no,period,amount,due_date\n";

std::string Line(const std::string& id, const std::string& utility, const std::string& account,
                 const std::string& card, const std::string& amount) {
  return fmt::format("{},{},\"{}\",{},2024-02,{},2024-03-15\n", id, utility, account, card, amount);
}

}  // namespace

TEST_CASE("An import gives every bill one of the six statuses", "[core][bills]") {
  BillsFixture b;
  Card rich = b.NewCard(1, 50000);
  Card poor = b.NewCard(2, 1200);
  Card blocked = b.NewCard(3, 50000);
  b.Mandate(rich, "water-hz", "杭州市西湖区文三路 12 号, 张三");
  b.Mandate(poor, "water-hz", "W-2");
  b.Mandate(blocked, "power-hz", "P-3");
  REQUIRE(b.f.office.Block(blocked.card_no, BlockReason::lost).ok());
  // A bill paid at a counter before the file arrives.
  std::string first = kHeader + Line("E0", "power-hz", "P-1", rich.card_no, "10.00");
  b.Mandate(rich, "power-hz", "P-1");
  std::vector<BillResult> ignored;
  REQUIRE(b.Import(first, &ignored).ok());
  REQUIRE(ignored.at(0).status == BillStatus::paid);

  std::string text = kHeader + Line("W1", "water-hz", "杭州市西湖区文三路 12 号, 张三", rich.card_no, "123.45") +
                     Line("W2", "water-hz", "W-2", poor.card_no, "50.00") +
                     Line("P3", "power-hz", "P-3", blocked.card_no, "8.00") +
                     Line("P4", "power-hz", "P-4", MakeCardNumber(9999), "8.00") +
                     Line("W5", "water-hz", "W-5", rich.card_no, "1.00") +
                     Line("E0", "power-hz", "P-1", rich.card_no, "10.00");
  std::vector<BillResult> results;
  auto report = b.Import(text, &results);
  REQUIRE(report.ok());
  REQUIRE(report->applied);
  REQUIRE_FALSE(report->repeated);
  REQUIRE(report->bills == 6);
  REQUIRE(report->bills_paid_now == 1);
  REQUIRE(report->paid_now_fen == 12345);
  REQUIRE(results.size() == 6);
  Id128 w1 = BillTransferId(b.f.digester, "water-hz", "W1");
  Id128 e0 = BillTransferId(b.f.digester, "power-hz", "E0");
  REQUIRE(results[0] == BillResult{"W1", "water-hz", BillStatus::paid, 12345, 12345, w1.ToHex(), ""});
  REQUIRE(results[1] == BillResult{"W2", "water-hz", BillStatus::insufficient_funds, 5000, 0, "",
                                   "balance ¥12.00 is below ¥50.00"});
  REQUIRE(results[2] == BillResult{"P3", "power-hz", BillStatus::card_blocked, 800, 0, "",
                                   "card " + blocked.card_no + " is blocked (lost)"});
  REQUIRE(results[3] == BillResult{"P4", "power-hz", BillStatus::unknown_card, 800, 0, "",
                                   "no card " + MakeCardNumber(9999)});
  REQUIRE(results[4] == BillResult{"W5", "water-hz", BillStatus::no_mandate, 100, 0, "",
                                   "card " + rich.card_no + " has no mandate for water-hz account W-5"});
  REQUIRE(results[5].status == BillStatus::already_paid);
  REQUIRE(results[5].amount_paid_fen == 1000);
  REQUIRE(results[5].transfer_id == e0.ToHex());

  // The money went purse -> the utility's payable under the bill-payment code.
  REQUIRE(b.f.Balance(rich.purse_account_id) == 50000 - 1000 - 12345);
  REQUIRE(b.f.Balance(b.Payable("water-hz")) == 12345);
  REQUIRE(b.f.Balance(b.Payable("power-hz")) == 1000);
  auto transfer = b.f.ledger.LookupTransfer(w1);
  REQUIRE(transfer.ok());
  REQUIRE(transfer->has_value());
  REQUIRE((*transfer)->code == static_cast<uint16_t>(TransferCode::bill_payment));
  REQUIRE(b.f.LedgerSum() == 0);

  // The summary per utility, ordered by id.
  REQUIRE(report->summary.size() == 2);
  const UtilitySummary& power = report->summary[0];
  REQUIRE(power.utility == "power-hz");
  REQUIRE(power.bills == 3);
  REQUIRE(power.billed_fen == 2600);
  REQUIRE(power.paid_fen == 0);
  REQUIRE(power.unpaid_fen == 1600);
  REQUIRE(power.count(BillStatus::already_paid) == 1);
  const UtilitySummary& water = report->summary[1];
  REQUIRE(water.bills == 3);
  REQUIRE(water.paid_fen == 12345);
  REQUIRE(water.unpaid_fen == 5100);
  REQUIRE(water.count(BillStatus::paid) == 1);
}

TEST_CASE("An expired card's bill is card_blocked", "[core][bills]") {
  BillsFixture b;
  IssueRequest request{NationalIdFor(7), "李四", Profile::adult, std::nullopt, std::nullopt};
  request.expires_day = ClearingDay(b.f.clock.NowSeconds());
  auto card = b.f.office.IssueCard(request);
  REQUIRE(card.ok());
  b.Mandate(card->card, "water-hz", "W");
  b.f.clock.AdvanceMs(int64_t{kSecondsPerDay} * 1000);
  std::vector<BillResult> results;
  REQUIRE(b.Import(kHeader + Line("X", "water-hz", "W", card->card.card_no, "1.00"), &results).ok());
  REQUIRE(results.at(0).status == BillStatus::card_blocked);
  REQUIRE(results.at(0).reason == "card " + card->card.card_no + " expired on 2024-03-01");
}

TEST_CASE("Two bills of one card are paid while the purse lasts", "[core][bills]") {
  BillsFixture b;
  Card card = b.NewCard(1, 1000);
  b.Mandate(card, "water-hz", "W");
  std::vector<BillResult> results;
  auto report = b.Import(kHeader + Line("A", "water-hz", "W", card.card_no, "6.00") +
                             Line("B", "water-hz", "W", card.card_no, "6.00") +
                             Line("C", "water-hz", "W", card.card_no, "4.00"),
                         &results);
  REQUIRE(report.ok());
  REQUIRE(results[0].status == BillStatus::paid);
  REQUIRE(results[1].status == BillStatus::insufficient_funds);
  REQUIRE(results[1].reason == "balance ¥4.00 is below ¥6.00");
  REQUIRE(results[2].status == BillStatus::paid);
  REQUIRE(b.f.Balance(card.purse_account_id) == 0);
}

TEST_CASE("A file with bad lines changes nothing unless bad lines are skipped", "[core][bills]") {
  BillsFixture b;
  Card card = b.NewCard(1, 10000);
  b.Mandate(card, "water-hz", "W");
  std::string text = kHeader + Line("A", "water-hz", "W", card.card_no, "1.00") +
                     Line("B", "gas-hz", "W", card.card_no, "1.00") +
                     Line("C", "water-hz", "W", card.card_no, "1.005") +
                     Line("A", "water-hz", "W", card.card_no, "2.00");
  std::vector<BillResult> results;
  auto report = b.Import(text, &results);
  REQUIRE(report.ok());
  REQUIRE_FALSE(report->applied);
  REQUIRE(report->lines == 4);
  REQUIRE(report->bills == 1);
  REQUIRE(report->errors.size() == 3);
  REQUIRE(report->errors[0].line == 3);
  REQUIRE(report->errors[0].reason_code == "unknown_utility");
  REQUIRE(report->errors[1].line == 4);
  REQUIRE(report->errors[1].reason_code == "invalid_amount");
  REQUIRE(report->errors[2].line == 5);
  REQUIRE(report->errors[2].reason_code == "duplicate_bill_id");
  REQUIRE(results.empty());
  REQUIRE(b.f.Balance(card.purse_account_id) == 10000);
  auto kept = b.store.FindImport(report->file_sha256);
  REQUIRE(kept.ok());
  REQUIRE_FALSE(kept->has_value());

  auto skipped = b.Import(text, &results, true);
  REQUIRE(skipped.ok());
  REQUIRE(skipped->applied);
  REQUIRE(skipped->errors.size() == 3);
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].bill_id == "A");
  REQUIRE(results[0].status == BillStatus::paid);
  REQUIRE(b.f.Balance(card.purse_account_id) == 9900);
}

TEST_CASE("A file whose header is wrong is refused as a whole", "[core][bills]") {
  BillsFixture b;
  std::vector<BillResult> results;
  auto report = b.Import("bill,utility\n", &results);
  REQUIRE(report.status().code() == "invalid_bill_header");
  REQUIRE(report.status().kind() == Kind::bad_input);
}

TEST_CASE("The same file twice pays nothing twice and gives the same results", "[core][bills]") {
  BillsFixture b;
  Card card = b.NewCard(1, 10000);
  Card poor = b.NewCard(2, 0);
  b.Mandate(card, "water-hz", "W");
  b.Mandate(poor, "water-hz", "P");
  std::string text = kHeader + Line("A", "water-hz", "W", card.card_no, "12.00") +
                     Line("B", "water-hz", "P", poor.card_no, "3.00") +
                     Line("C", "water-hz", "W", card.card_no, "4.00");
  std::vector<BillResult> first;
  auto one = b.Import(text, &first, false, 2);
  REQUIRE(one.ok());
  // The poor card is topped up in between: the kept results still stand for this file.
  REQUIRE(b.f.office.Topup(poor.card_no, 500, "later").ok());
  std::vector<BillResult> second;
  auto two = b.Import(text, &second, false, 2);
  REQUIRE(two.ok());
  REQUIRE(two->repeated);
  REQUIRE(two->bills_paid_now == 0);
  REQUIRE(second == first);
  REQUIRE(two->summary == one->summary);
  REQUIRE(b.f.Balance(card.purse_account_id) == 10000 - 1600);
  REQUIRE(b.f.Balance(poor.purse_account_id) == 500);

  // A different file with the same bills: the paid ones are already_paid, the unpaid one is
  // tried again and paid now.
  std::vector<BillResult> third;
  auto other = b.Import(text + "\n", &third);
  REQUIRE(other.ok());
  REQUIRE_FALSE(other->repeated);
  REQUIRE(third[0].status == BillStatus::already_paid);
  REQUIRE(third[0].transfer_id == first[0].transfer_id);
  REQUIRE(third[1].status == BillStatus::paid);
  REQUIRE(third[2].status == BillStatus::already_paid);
  REQUIRE(b.f.Balance(poor.purse_account_id) == 200);
  REQUIRE(b.f.LedgerSum() == 0);
}

TEST_CASE("An import that fails in the middle keeps whole chunks and a rerun completes it",
          "[core][bills]") {
  BillsFixture b;
  Card card = b.NewCard(1, 100000);
  b.Mandate(card, "water-hz", "W");
  std::string text = kHeader;
  for (int i = 0; i < 7; ++i) text += Line(fmt::format("B{}", i), "water-hz", "W", card.card_no, "1.00");

  // Chunks of 3: the first commits, the second fails before its commit. The file is checked
  // before it is paid: checked while paid, how many chunks share the first transaction would
  // depend on the checker thread's pace (that path has its own tests below).
  int chunks_seen = 0;
  BillImportOptions options;
  options.chunk_bills = 3;
  options.check_while_paying = false;
  options.on_results = [&](std::span<const BillResult>) {
    if (++chunks_seen == 1) b.store.FailNextPutImport();
    return Status::Ok();
  };
  auto failed = b.service.ImportBills(text, options);
  REQUIRE(failed.status().code() == "injected_fault");
  REQUIRE(b.f.Balance(card.purse_account_id) == 100000 - 300);
  auto progress = b.store.FindImport(FileSha256Hex(b.f.digester, text));
  REQUIRE(progress.ok());
  REQUIRE(progress->has_value());
  REQUIRE((*progress)->bills_done == 3);
  REQUIRE_FALSE((*progress)->complete);

  std::vector<BillResult> results;
  auto rerun = b.Import(text, &results, false, 3);
  REQUIRE(rerun.ok());
  REQUIRE(rerun->resumed);
  REQUIRE(rerun->bills_paid_now == 4);
  REQUIRE(results.size() == 7);
  for (int i = 0; i < 7; ++i) {
    REQUIRE(results[static_cast<size_t>(i)].bill_id == fmt::format("B{}", i));
    REQUIRE(results[static_cast<size_t>(i)].status == BillStatus::paid);
  }
  REQUIRE(b.f.Balance(card.purse_account_id) == 100000 - 700);
  REQUIRE(b.f.LedgerSum() == 0);
}

TEST_CASE("A file with more good bills than an import keeps is read twice and gives the same "
          "results",
          "[core][bills]") {
  BillsFixture b;
  Card card = b.NewCard(1, 100000);
  b.Mandate(card, "water-hz", "W");
  std::string text = kHeader;
  for (int i = 0; i < 7; ++i) {
    text += Line(fmt::format("B{}", i), "water-hz", "W", card.card_no, "1.00");
    if (i == 2) text += Line("B1", "water-hz", "W", card.card_no, "1.00");  // a duplicate, line 5
  }
  // Chunks of 3, at most 2 bills kept: the first chunk commits, the second fails before its
  // commit, and the rerun reads the file again past the 3 decided bills and the bad line.
  int chunks_seen = 0;
  BillImportOptions options;
  options.skip_bad = true;
  options.chunk_bills = 3;
  options.kept_bills_max = 2;
  options.on_results = [&](std::span<const BillResult>) {
    if (++chunks_seen == 1) b.store.FailNextPutImport();
    return Status::Ok();
  };
  auto failed = b.service.ImportBills(text, options);
  REQUIRE(failed.status().code() == "injected_fault");
  REQUIRE(b.f.Balance(card.purse_account_id) == 100000 - 300);

  std::vector<BillResult> results;
  options.on_results = [&](std::span<const BillResult> chunk) {
    results.insert(results.end(), chunk.begin(), chunk.end());
    return Status::Ok();
  };
  auto rerun = b.service.ImportBills(text, options);
  REQUIRE(rerun.ok());
  REQUIRE(rerun->resumed);
  REQUIRE(rerun->bills == 7);
  REQUIRE(rerun->errors.size() == 1);
  REQUIRE(rerun->errors[0].line == 5);
  REQUIRE(rerun->errors[0].reason_code == "duplicate_bill_id");
  REQUIRE(rerun->bills_paid_now == 4);
  REQUIRE(results.size() == 7);
  for (int i = 0; i < 7; ++i) {
    REQUIRE(results[static_cast<size_t>(i)].bill_id == fmt::format("B{}", i));
    REQUIRE(results[static_cast<size_t>(i)].status == BillStatus::paid);
  }
  REQUIRE(b.f.Balance(card.purse_account_id) == 100000 - 700);

  // The same file imported again with every bill kept gives the same results.
  std::vector<BillResult> again;
  auto repeated = b.Import(text, &again, true, 3);
  REQUIRE(repeated.ok());
  REQUIRE(repeated->repeated);
  REQUIRE(again == results);
  REQUIRE(b.f.LedgerSum() == 0);
}

TEST_CASE("A card with more mandates than one list holds still pays the bills of the ones left "
          "out",
          "[core][bills]") {
  BillsFixture b;
  Card card = b.NewCard(1, 100000);
  // The mandates of a card are listed in account order, so the last account is left out of
  // the import's list of the card's mandates and must be looked up on its own.
  for (size_t i = 0; i <= kMandateListMax; ++i) {
    REQUIRE(b.store.InsertMandate({card.card_no, "water-hz", fmt::format("A{:06d}", i), 0}).ok());
  }
  std::string last = fmt::format("A{:06d}", kMandateListMax);
  std::string text = kHeader + Line("W1", "water-hz", "A000000", card.card_no, "1.00") +
                     Line("W2", "water-hz", last, card.card_no, "2.00") +
                     Line("W3", "water-hz", "B", card.card_no, "4.00");
  std::vector<BillResult> results;
  auto report = b.Import(text, &results);
  REQUIRE(report.ok());
  REQUIRE(results.size() == 3);
  REQUIRE(results[0].status == BillStatus::paid);
  REQUIRE(results[1].status == BillStatus::paid);
  REQUIRE(results[2].status == BillStatus::no_mandate);
  REQUIRE(b.f.Balance(card.purse_account_id) == 100000 - 300);
}

TEST_CASE("A chunk whose range of bill ids is crowded with other bills finds its earlier "
          "payments one by one",
          "[core][bills]") {
  BillsFixture b;
  Card card = b.NewCard(1, 100000);
  b.Mandate(card, "water-hz", "W");
  b.Mandate(card, "power-hz", "P");
  // Power bills B1..B9 are paid first; then a water file with B1 and B9 (a chunk of 2 whose
  // range holds 9 kept bills, more than kEarlierBillsRangeFactor times 2) and power's B5.
  std::string power = kHeader;
  for (int i = 1; i <= 9; ++i) power += Line(fmt::format("B{}", i), "power-hz", "P", card.card_no, "1.00");
  std::vector<BillResult> ignored;
  REQUIRE(b.Import(power, &ignored).ok());
  std::string text = kHeader + Line("B1", "water-hz", "W", card.card_no, "2.00") +
                     Line("B9", "water-hz", "W", card.card_no, "2.00");
  std::string again = kHeader + Line("B5", "power-hz", "P", card.card_no, "1.00") +
                      Line("B6", "water-hz", "W", card.card_no, "2.00");
  std::vector<BillResult> results;
  REQUIRE(b.Import(text, &results, false, 2).ok());
  REQUIRE(b.Import(again, &results, false, 2).ok());
  REQUIRE(results.size() == 4);
  REQUIRE(results[0].status == BillStatus::paid);
  REQUIRE(results[1].status == BillStatus::paid);
  REQUIRE(results[2].status == BillStatus::already_paid);
  REQUIRE(results[2].transfer_id == BillTransferId(b.f.digester, "power-hz", "B5").ToHex());
  REQUIRE(results[3].status == BillStatus::paid);
  REQUIRE(b.f.Balance(card.purse_account_id) == 100000 - 900 - 600);
  REQUIRE(b.f.LedgerSum() == 0);
}

namespace {

// Holds the checking thread of an import at its `hold_at`-th good bill until the paying
// thread has decided `decided_first` bills, so that the first chunks are surely paid while
// the file is still being checked. The wait is bounded, and `held` says whether it ended
// because the payer got there (a test asserts it: otherwise it tested nothing).
struct CheckGate {
  int64_t hold_at = 0;
  int64_t decided_first = 0;
  std::mutex mu;
  std::condition_variable cv;
  int64_t decided = 0;
  bool held = false;

  void Install(BillImportOptions* options) {
    options->on_checked = [this](int64_t good) {
      if (good != hold_at) return;
      std::unique_lock<std::mutex> lock(mu);
      held = cv.wait_for(lock, std::chrono::seconds(20), [&] { return decided >= decided_first; });
    };
    auto previous = options->on_progress;
    options->on_progress = [this, previous](int64_t done, int64_t total) {
      if (previous) previous(done, total);
      std::lock_guard<std::mutex> lock(mu);
      decided = done;
      cv.notify_all();
    };
  }
};

// Cards of three kinds and a file of 30 bills over them: paid, then insufficient_funds as the
// second card runs dry, and no_mandate; `tail` is appended after them.
struct MixedFile {
  MixedFile(BillsFixture& b, const std::string& tail = "")
      : rich(b.NewCard(1, 1500)), poor(b.NewCard(2, 100)), unbound(b.NewCard(3, 10000)) {
    b.Mandate(rich, "water-hz", "W1");
    b.Mandate(poor, "water-hz", "W2");
    text = kHeader;
    for (int i = 0; i < 30; ++i) {
      const std::string id = fmt::format("M{:02d}", i);
      if (i % 3 == 0) text += Line(id, "water-hz", "W1", rich.card_no, "1.00");
      if (i % 3 == 1) text += Line(id, "water-hz", "W2", poor.card_no, "0.60");
      if (i % 3 == 2) text += Line(id, "water-hz", "W3", unbound.card_no, "1.00");
    }
    text += tail;
  }

  Card rich;
  Card poor;
  Card unbound;
  std::string text;
};

}  // namespace

TEST_CASE("A file checked while its first chunks are paid gives the results of one checked first",
          "[core][bills]") {
  BillsFixture serial;
  BillsFixture overlapped;
  const std::string text = MixedFile(serial).text;
  REQUIRE(MixedFile(overlapped).text == text);  // the fixtures issue the same card numbers

  std::vector<BillResult> serial_results;
  BillImportOptions first;
  first.chunk_bills = 4;
  first.check_while_paying = false;
  first.on_results = [&](std::span<const BillResult> chunk) {
    serial_results.insert(serial_results.end(), chunk.begin(), chunk.end());
    return Status::Ok();
  };
  auto serial_report = serial.service.ImportBills(text, first);
  REQUIRE(serial_report.ok());

  std::vector<BillResult> results;
  std::vector<int64_t> totals_seen;
  BillImportOptions options;
  options.chunk_bills = 4;
  options.on_results = [&](std::span<const BillResult> chunk) {
    results.insert(results.end(), chunk.begin(), chunk.end());
    return Status::Ok();
  };
  options.on_progress = [&](int64_t, int64_t total) { totals_seen.push_back(total); };
  CheckGate gate;
  gate.hold_at = 9;        // two blocks of 4 are out
  gate.decided_first = 8;  // and paid before the check goes on
  gate.Install(&options);
  auto report = overlapped.service.ImportBills(text, options);
  REQUIRE(report.ok());
  REQUIRE(gate.held);
  // While the file was being checked, the progress total was the good bills found so far.
  REQUIRE(totals_seen.front() >= 4);
  REQUIRE(totals_seen.front() <= 9);
  REQUIRE(totals_seen.back() == 30);

  REQUIRE(report->applied);
  REQUIRE(report->bills == 30);
  REQUIRE(report->lines == 30);
  REQUIRE(report->bills_paid_now == serial_report->bills_paid_now);
  REQUIRE(report->paid_now_fen == serial_report->paid_now_fen);
  REQUIRE(report->summary == serial_report->summary);
  REQUIRE(results == serial_results);
  REQUIRE(results.size() == 30);
  REQUIRE(results[1].status == BillStatus::paid);
  REQUIRE(results[4].status == BillStatus::insufficient_funds);
  REQUIRE(results[2].status == BillStatus::no_mandate);
  auto kept = overlapped.store.FindImport(report->file_sha256);
  REQUIRE(kept.ok());
  REQUIRE(kept->has_value());
  REQUIRE((*kept)->complete);
  REQUIRE((*kept)->bills_total == 30);
  REQUIRE((*kept)->bills_done == 30);
  REQUIRE((*kept)->chunks_done == 8);
  REQUIRE(overlapped.f.LedgerSum() == 0);

  // The same file again is a repeat with the same results.
  std::vector<BillResult> again;
  auto repeat = overlapped.Import(text, &again, false, 4);
  REQUIRE(repeat.ok());
  REQUIRE(repeat->repeated);
  REQUIRE(repeat->bills_paid_now == 0);
  REQUIRE(again == results);
}

TEST_CASE("A bad line found while the first chunks are paid changes nothing", "[core][bills]") {
  BillsFixture b;
  MixedFile file(b, Line("Z", "gas-hz", "W1", "6200000000000001", "1.00"));
  const std::string& text = file.text;
  std::vector<BillResult> results;
  BillImportOptions options;
  options.chunk_bills = 4;
  options.on_results = [&](std::span<const BillResult> chunk) {
    results.insert(results.end(), chunk.begin(), chunk.end());
    return Status::Ok();
  };
  CheckGate gate;
  gate.hold_at = 9;
  gate.decided_first = 8;
  gate.Install(&options);
  auto report = b.service.ImportBills(text, options);
  REQUIRE(report.ok());
  REQUIRE(gate.held);
  REQUIRE_FALSE(report->applied);
  REQUIRE(report->bills == 30);
  REQUIRE(report->errors.size() == 1);
  REQUIRE(report->errors[0].line == 32);
  REQUIRE(report->errors[0].reason_code == "unknown_utility");
  REQUIRE(results.empty());
  REQUIRE(b.f.Balance(file.rich.purse_account_id) == 1500);
  REQUIRE(b.f.Balance(file.poor.purse_account_id) == 100);
  REQUIRE(b.f.Balance(b.Payable("water-hz")) == 0);
  auto kept = b.store.FindImport(report->file_sha256);
  REQUIRE(kept.ok());
  REQUIRE_FALSE(kept->has_value());
  auto bill = b.service.ShowBill("M00");
  REQUIRE(bill.status().code() == "bill_not_found");

  // With the bad line skipped the 30 good ones are paid as usual.
  options.skip_bad = true;
  CheckGate again;
  again.hold_at = 9;
  again.decided_first = 8;
  again.Install(&options);
  auto skipped = b.service.ImportBills(text, options);
  REQUIRE(skipped.ok());
  REQUIRE(again.held);
  REQUIRE(skipped->applied);
  REQUIRE(skipped->errors.size() == 1);
  REQUIRE(results.size() == 30);
  REQUIRE(skipped->bills_paid_now == 10 + 1);  // every rich bill, the poor card's first
}

TEST_CASE("A failure while the first chunks are paid and the file is checked undoes them all, "
          "and a rerun pays the file",
          "[core][bills]") {
  BillsFixture b;
  MixedFile file(b);
  const std::string& text = file.text;
  BillImportOptions options;
  options.chunk_bills = 4;
  options.on_progress = [&](int64_t done, int64_t) {
    if (done == 6) b.store.FailNextPutImport();  // the end of the second chunk fails
  };
  // The checker cannot get past bill 9 before the payer is in the second chunk, so the check
  // is still running when that chunk fails. (Whether the checker had reached bill 9 by then
  // depends on the threads' pace: the failure may cancel it just before, so `held` is not
  // asserted here. That the first transaction was the shared one is shown below: nothing of
  // the first chunk was kept.)
  CheckGate gate;
  gate.hold_at = 9;
  gate.decided_first = 6;
  gate.Install(&options);
  auto failed = b.service.ImportBills(text, options);
  REQUIRE(failed.status().code() == "injected_fault");
  REQUIRE(b.f.Balance(file.rich.purse_account_id) == 1500);
  REQUIRE(b.f.Balance(b.Payable("water-hz")) == 0);
  auto kept = b.store.FindImport(FileSha256Hex(b.f.digester, text));
  REQUIRE(kept.ok());
  REQUIRE_FALSE(kept->has_value());

  std::vector<BillResult> results;
  auto rerun = b.Import(text, &results, false, 4);
  REQUIRE(rerun.ok());
  REQUIRE_FALSE(rerun->resumed);
  REQUIRE(rerun->bills_paid_now == 11);
  REQUIRE(results.size() == 30);
  REQUIRE(b.f.Balance(file.rich.purse_account_id) == 1500 - 1000);
  REQUIRE(b.f.Balance(b.Payable("water-hz")) == 1000 + 60);
  REQUIRE(b.f.LedgerSum() == 0);
}

TEST_CASE("A card blocked by another connection during an import is read again by the next "
          "chunk",
          "[core][bills]") {
  BillsFixture b;
  Card card = b.NewCard(1, 10000);
  b.Mandate(card, "water-hz", "W");
  std::string text = kHeader;
  for (int i = 0; i < 4; ++i) text += Line(fmt::format("K{}", i), "water-hz", "W", card.card_no, "1.00");
  std::vector<BillResult> results;
  BillImportOptions options;
  options.chunk_bills = 2;
  options.check_while_paying = false;
  options.on_results = [&](std::span<const BillResult> chunk) {
    results.insert(results.end(), chunk.begin(), chunk.end());
    if (results.size() == 2) {
      // Between the two chunks another connection blocks the card.
      REQUIRE(b.f.office.Block(card.card_no, BlockReason::lost).ok());
      b.store.SimulateOtherCommit();
    }
    return Status::Ok();
  };
  auto report = b.service.ImportBills(text, options);
  REQUIRE(report.ok());
  REQUIRE(results.size() == 4);
  REQUIRE(results[1].status == BillStatus::paid);
  REQUIRE(results[2].status == BillStatus::card_blocked);
  REQUIRE(results[3].status == BillStatus::card_blocked);
  REQUIRE(b.f.Balance(card.purse_account_id) == 10000 - 200);
}

TEST_CASE("Progress is reported per bill", "[core][bills]") {
  BillsFixture b;
  Card card = b.NewCard(1, 1000);
  std::string text = kHeader + Line("A", "water-hz", "W", card.card_no, "1.00") +
                     Line("B", "water-hz", "W", card.card_no, "1.00");
  std::vector<std::pair<int64_t, int64_t>> seen;
  BillImportOptions options;
  options.on_progress = [&](int64_t done, int64_t total) { seen.emplace_back(done, total); };
  REQUIRE(b.service.ImportBills(text, options).ok());
  REQUIRE(seen == std::vector<std::pair<int64_t, int64_t>>{{1, 2}, {2, 2}});
}

TEST_CASE("An unpaid bill can be paid at a counter, once", "[core][bills]") {
  BillsFixture b;
  Card card = b.NewCard(1, 0);
  b.Mandate(card, "water-hz", "W");
  std::vector<BillResult> results;
  REQUIRE(b.Import(kHeader + Line("A", "water-hz", "W", card.card_no, "30.00"), &results).ok());
  REQUIRE(results[0].status == BillStatus::insufficient_funds);

  auto refused = b.service.PayBill({"A", std::nullopt, std::nullopt, std::nullopt, "counter"});
  REQUIRE(refused.status().code() == "insufficient_funds");
  REQUIRE(refused.status().kind() == Kind::refused);

  REQUIRE(b.f.office.Topup(card.card_no, 5000, "t1").ok());
  auto paid = b.service.PayBill({"A", std::nullopt, std::nullopt, std::nullopt, "counter"});
  REQUIRE(paid.ok());
  REQUIRE(paid->status == BillStatus::paid);
  REQUIRE(paid->balance_after_fen == 2000);
  REQUIRE(paid->bill.paid_by == "counter");
  REQUIRE(paid->bill.transfer_id == BillTransferId(b.f.digester, "water-hz", "A"));

  auto again = b.service.PayBill({"A", std::nullopt, std::nullopt, std::nullopt, "kiosk:K1"});
  REQUIRE(again.ok());
  REQUIRE(again->status == BillStatus::already_paid);
  REQUIRE(again->bill.paid_by == "counter");
  REQUIRE(b.f.Balance(card.purse_account_id) == 2000);
  REQUIRE(b.f.Balance(b.Payable("water-hz")) == 3000);
}

TEST_CASE("A counter payment is refused for each reason", "[core][bills]") {
  BillsFixture b;
  Card card = b.NewCard(1, 10000);
  Card other = b.NewCard(2, 10000);
  b.Mandate(card, "water-hz", "W");
  std::vector<BillResult> results;
  REQUIRE(b.Import(kHeader + Line("A", "water-hz", "W", card.card_no, "30.00") +
                       Line("B", "water-hz", "X", card.card_no, "1.00") +
                       Line("S", "water-hz", "W", card.card_no, "99999.00"),
                   &results)
              .ok());
  REQUIRE(results[0].status == BillStatus::paid);
  REQUIRE(b.Import(kHeader + Line("A", "power-hz", "W", card.card_no, "30.00"), &results).ok());

  auto pay = [&](std::string id, std::optional<std::string> utility,
                 std::optional<std::string> card_no, std::optional<int64_t> amount) {
    return b.service.PayBill({id, utility, card_no, amount, "counter"}).status();
  };
  REQUIRE(pay("Z", std::nullopt, std::nullopt, std::nullopt).code() == "bill_not_found");
  REQUIRE(pay("A", std::nullopt, std::nullopt, std::nullopt).code() == "ambiguous_bill_id");
  REQUIRE(pay("A", "power-hz", std::nullopt, std::nullopt).code() == "no_mandate");
  REQUIRE(pay("B", std::nullopt, std::nullopt, std::nullopt).code() == "no_mandate");
  REQUIRE(pay("S", std::nullopt, std::nullopt, 100).code() == "amount_mismatch");
  REQUIRE(pay("S", std::nullopt, std::nullopt, std::nullopt).code() == "insufficient_funds");
  REQUIRE(pay("B", std::nullopt, other.card_no, std::nullopt).code() == "no_mandate");
  REQUIRE(pay("B", std::nullopt, MakeCardNumber(9999), std::nullopt).code() == "card_not_found");
  REQUIRE(pay("B", std::nullopt, "123", std::nullopt).code() == "invalid_card_no");
  REQUIRE(b.f.office.Block(card.card_no, BlockReason::stolen).ok());
  b.Mandate(card, "water-hz", "X");
  REQUIRE(pay("B", std::nullopt, std::nullopt, std::nullopt).code() == "card_blocked");
  // The other card may pay the bill once it holds a mandate for the account.
  b.Mandate(other, "water-hz", "X");
  auto paid = b.service.PayBill({"B", "water-hz", other.card_no, 100, "kiosk:K1"});
  REQUIRE(paid.ok());
  REQUIRE(paid->status == BillStatus::paid);
  REQUIRE(paid->bill.paid_by == "kiosk:K1");
  REQUIRE(b.f.Balance(other.purse_account_id) == 9900);
}

TEST_CASE("Mandates are added, listed and removed", "[core][bills]") {
  BillsFixture b;
  Card card = b.NewCard(1, 0);
  b.Mandate(card, "water-hz", "西湖区文三路 12 号");
  b.Mandate(card, "power-hz", "P-1");
  auto list = b.service.ListMandates({});
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  REQUIRE((*list)[0].utility == "power-hz");
  REQUIRE((*list)[1].account_no == "西湖区文三路 12 号");
  auto water = b.service.ListMandates({std::nullopt, std::string("water-hz")});
  REQUIRE(water->size() == 1);

  REQUIRE(b.service.AddMandate(card.card_no, "water-hz", "西湖区文三路 12 号").status().code() ==
          "mandate_exists");
  REQUIRE(b.service.AddMandate(card.card_no, "BUS01", "A").status().code() == "not_a_utility");
  REQUIRE(b.service.AddMandate(card.card_no, "gas-hz", "A").status().code() == "operator_not_found");
  REQUIRE(b.service.AddMandate(MakeCardNumber(9999), "water-hz", "A").status().code() ==
          "card_not_found");
  REQUIRE(b.service.AddMandate("86075500", "water-hz", "A").status().code() == "invalid_card_no");
  REQUIRE(b.service.AddMandate(card.card_no, "water-hz", "").status().code() ==
          "invalid_account_no");
  REQUIRE(b.service.AddMandate(card.card_no, "water-hz", "a\nb").status().code() ==
          "invalid_account_no");
  REQUIRE(b.f.office.Close(card.card_no).ok());
  REQUIRE(b.service.AddMandate(card.card_no, "water-hz", "B").status().code() == "card_closed");

  REQUIRE(b.service.RemoveMandate(card.card_no, "power-hz", "P-1").ok());
  REQUIRE(b.service.RemoveMandate(card.card_no, "power-hz", "P-1").code() == "mandate_not_found");
  REQUIRE(b.service.ListMandates({})->size() == 1);
}

TEST_CASE("A bill's transfer id depends on the utility and the bill id only", "[core][bills]") {
  CardOfficeFixture f;
  REQUIRE(BillTransferId(f.digester, "water-hz", "A") == BillTransferId(f.digester, "water-hz", "A"));
  REQUIRE_FALSE(BillTransferId(f.digester, "water-hz", "A") ==
                BillTransferId(f.digester, "power-hz", "A"));
  REQUIRE(TransferCodeName(static_cast<uint16_t>(TransferCode::bill_payment)) == "bill_payment");
}
