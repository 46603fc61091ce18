#include "tests/support/card_office_fixture_support.h"

#include <catch2/catch.hpp>

#include "core/account_plan.h"

namespace citycard::testing {

std::string FakeNationalIdHasher::Hash(std::string_view normalized_id) const {
  FakeDigester digester;
  Bytes input = {'k', 'e', 'y'};
  input.insert(input.end(), normalized_id.begin(), normalized_id.end());
  Sha256Digest digest = digester.Sha256(input);
  return ToHex(digest);
}

Result<NewTerminalKey> FakeTerminalKeyMaker::Make() const {
  NewTerminalKey key;
  key.plain_key.assign(32, next_++);
  key.wrapped_key = key.plain_key;
  key.wrapped_key.push_back('W');
  return key;
}

CardOfficeFixture::CardOfficeFixture(CardOfficeConfig config)
    : office(registry, ledger, hasher, digester, clock, config) {
  REQUIRE(office.CreateSystemAccounts().ok());
}

int64_t CardOfficeFixture::Balance(uint64_t account_id) {
  auto account = ledger.LookupAccount(account_id);
  REQUIRE(account.ok());
  return account->balance_fen();
}

int64_t CardOfficeFixture::LedgerSum() {
  int64_t sum = 0;
  for (const auto& [id, record] : ledger_store.accounts()) sum += record.account.balance_fen();
  return sum;
}

CardView CardOfficeFixture::IssueAdult(const std::string& national_id) {
  IssueRequest request;
  request.national_id = national_id;
  request.name = "张三";
  auto card = office.IssueCard(request);
  REQUIRE(card.ok());
  return *card;
}

}  // namespace citycard::testing
