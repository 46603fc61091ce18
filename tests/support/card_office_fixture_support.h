// A card office over in-memory stores and a manual clock, for core tests of the card office
// and the terminal office.
#pragma once

#include <string>

#include "core/card_office.h"
#include "core/clock.h"
#include "core/ledger.h"
#include "core/terminal_office.h"
#include "tests/support/memory_ledger_store_support.h"
#include "tests/support/memory_registry_store_support.h"

namespace citycard::testing {

// Not a keyed HMAC: a deterministic hex mix of the id, enough for tests that need one holder
// per id and no plain id in the store.
class FakeNationalIdHasher final : public NationalIdHasher {
 public:
  std::string Hash(std::string_view normalized_id) const override;
};

// Hands out keys 0x01…, 0x02…, wrapped as the key with "W" appended.
class FakeTerminalKeyMaker final : public TerminalKeyMaker {
 public:
  Result<NewTerminalKey> Make() const override;

 private:
  mutable uint8_t next_ = 1;
};

// 2024-03-01 10:00:00 Asia/Shanghai.
inline constexpr int64_t kFixtureStartMs = 1'709'258'400'000;

struct CardOfficeFixture {
  explicit CardOfficeFixture(CardOfficeConfig config = {});

  // The posted balance of a ledger account (asserts that it exists).
  int64_t Balance(uint64_t account_id);
  // The sum of every account's balance; zero whenever the ledger is consistent.
  int64_t LedgerSum();
  // Issues an adult card to 321281199001011234 with no deposit and asserts success.
  CardView IssueAdult(const std::string& national_id = "321281199001011234");

  MemoryLedgerStore ledger_store;
  FakeDigester digester;
  ManualClock clock{kFixtureStartMs};
  Ledger ledger{ledger_store, clock, digester};
  MemoryRegistryStore registry{&ledger_store};
  FakeNationalIdHasher hasher;
  FakeTerminalKeyMaker key_maker;
  CardOffice office;
  TerminalOffice terminals{registry, ledger, key_maker, clock};
};

}  // namespace citycard::testing
