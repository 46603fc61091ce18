#include "tests/support/ingest_fixture_support.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/national_id.h"

namespace citycard::testing {

void AddFixtureOperatorsAndTerminals(TerminalOffice& terminals) {
  for (auto [op, kind] : {std::pair{"BUS1", OperatorKind::bus}, {"METRO", OperatorKind::metro},
                          {"KIOSKS", OperatorKind::counter}}) {
    OperatorRequest request;
    request.id = op;
    request.name = op;
    request.kind = kind;
    REQUIRE(terminals.AddOperator(request).ok());
  }
  for (auto [id, op, kind] : {std::tuple{"T1", "BUS1", TerminalKind::bus},
                              {"T2", "BUS1", TerminalKind::bus},
                              {"M1", "METRO", TerminalKind::metro},
                              {"K1", "KIOSKS", TerminalKind::kiosk}}) {
    TerminalRequest request;
    request.id = id;
    request.operator_id = op;
    request.kind = kind;
    REQUIRE(terminals.RegisterTerminal(request).ok());
  }
}

std::string FixtureNationalId(int holder) {
  std::string first17 = fmt::format("32128119900101{:03d}", holder);
  return first17 + NationalIdCheckChar(first17);
}

FakeCard IssueFixtureCard(CardOffice& office, int holder, Profile profile) {
  IssueRequest request;
  request.national_id = FixtureNationalId(holder);
  request.name = "张三";
  request.profile = profile;
  auto view = office.IssueCard(request);
  REQUIRE(view.ok());
  FakeCard card;
  card.card_no = CardNumberToInt(view->card.card_no);
  card.profile = profile;
  return card;
}

TapRecord MakeFixtureTap(const Terminal& terminal, FakeCard& card, uint32_t ttc, int64_t time_s,
                         int64_t amount_fen, TapType type) {
  TapRecord r;
  r.type = type;
  r.profile = card.profile;
  r.card_no = card.card_no;
  r.card_counter = ++card.counter;
  r.balance_before_fen = card.balance_fen;
  r.amount_fen = amount_fen;
  r.terminal_id = terminal.id;
  r.terminal_counter = ttc;
  r.time_s = time_s;
  r.operator_id = terminal.operator_id;
  r.route_code = 7;
  r.fare_version = 1;
  r.full_fare_fen = amount_fen;
  r.terminal_key_version = static_cast<uint8_t>(terminal.current_key_version());
  card.balance_fen += type == TapType::load ? amount_fen : -amount_fen;
  FakeTapAuthenticator::Sign(terminal, &r);
  return r;
}

IngestFixture::IngestFixture(IngestConfig config, CardOfficeConfig office_config)
    : office(registry, ledger, hasher, digester, clock, office_config),
      engine(registry, ledger, tap_store, auth, digester, clock, config) {
  REQUIRE(office.CreateSystemAccounts().ok());
  AddFixtureOperatorsAndTerminals(terminals);
}

FakeCard IngestFixture::IssueCard(int64_t balance_fen, Profile profile) {
  FakeCard card = IssueFixtureCard(office, ++next_holder, profile);
  if (balance_fen > 0) TopupAtCounter(card, balance_fen);
  return card;
}

void IngestFixture::TopupAtCounter(FakeCard& card, int64_t amount_fen) {
  auto done = office.Topup(CardNumberFromInt(card.card_no), amount_fen,
                           fmt::format("ref{}", ++next_ref));
  REQUIRE(done.ok());
  card.balance_fen += amount_fen;
}

Terminal IngestFixture::GetTerminal(const std::string& terminal_id) {
  auto t = registry.FindTerminal(terminal_id);
  REQUIRE(t.ok());
  REQUIRE(t->has_value());
  return **t;
}

TapRecord IngestFixture::Tap(FakeCard& card, const std::string& terminal_id, int64_t amount_fen,
                             TapType type) {
  return MakeFixtureTap(GetTerminal(terminal_id), card, ++ttc[terminal_id], clock.NowSeconds(),
                        amount_fen, type);
}

void IngestFixture::Sign(TapRecord* record, bool keep_tac) {
  FakeTapAuthenticator::Sign(GetTerminal(record->terminal_id), record, keep_tac);
}

IngestOutcome IngestFixture::IngestOne(const TapRecord& record, const std::string& session) {
  UploadedBatch batch;
  batch.terminal_id = session.empty() ? record.terminal_id : session;
  batch.records.push_back(record);
  auto out = engine.Ingest(std::span<const UploadedBatch>(&batch, 1));
  REQUIRE(out.ok());
  return (*out)[0][0];
}

std::vector<IngestOutcome> IngestFixture::IngestMany(const std::vector<TapRecord>& records) {
  std::vector<UploadedBatch> batches;
  for (const TapRecord& r : records) {
    if (batches.empty() || batches.back().terminal_id != r.terminal_id) {
      batches.push_back(UploadedBatch{r.terminal_id, {}});
    }
    batches.back().records.push_back(r);
  }
  auto out = engine.Ingest(batches);
  REQUIRE(out.ok());
  std::vector<IngestOutcome> flat;
  for (const auto& b : *out) flat.insert(flat.end(), b.begin(), b.end());
  return flat;
}

int64_t IngestFixture::Purse(uint64_t card_no) {
  auto account = ledger.LookupAccount(AccountIdFor(AccountKind::card_purse, card_no));
  REQUIRE(account.ok());
  return account->balance_fen();
}

int64_t IngestFixture::Payable(const std::string& operator_id) {
  auto op = registry.FindOperator(operator_id);
  REQUIRE(op.ok());
  REQUIRE(op->has_value());
  auto account = ledger.LookupAccount((*op)->payable_account_id);
  REQUIRE(account.ok());
  return account->balance_fen();
}

std::vector<Alert> IngestFixture::Alerts(std::optional<AlertKind> kind) {
  AlertFilter filter;
  filter.kind = kind;
  auto alerts = tap_store.ListAlerts(filter);
  REQUIRE(alerts.ok());
  return *alerts;
}

std::optional<DenylistEntry> IngestFixture::Listed(uint64_t card_no) {
  auto entry = registry.DenylistFind(CardNumberFromInt(card_no));
  REQUIRE(entry.ok());
  return *entry;
}

int64_t IngestFixture::LedgerSum() {
  int64_t sum = 0;
  for (const auto& [id, record] : ledger_store.accounts()) sum += record.account.balance_fen();
  return sum;
}

}  // namespace citycard::testing
