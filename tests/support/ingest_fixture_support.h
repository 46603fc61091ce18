// A tap-ingest world over in-memory stores, fake MACs and a manual clock, for core tests of
// core/ingest.h: a card office to issue and block cards, a terminal office to register
// terminals, and simulated cards that make signed records the way a reader would.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/card_office.h"
#include "core/ingest.h"
#include "core/terminal_office.h"
#include "tests/support/card_office_fixture_support.h"
#include "tests/support/ingest_fakes_support.h"
#include "tests/support/memory_ledger_store_support.h"
#include "tests/support/memory_registry_store_support.h"

namespace citycard::testing {

// What a card holds on its chip.
struct FakeCard {
  uint64_t card_no = 0;
  uint32_t counter = 0;  // the CTC of its last transaction
  int64_t balance_fen = 0;
  Profile profile = Profile::adult;
};

// The fixture's operators (BUS1, METRO, KIOSKS) and terminals (T1 and T2 of BUS1, M1 of METRO,
// K1 of KIOSKS), added through `terminals`; for worlds over other stores too.
void AddFixtureOperatorsAndTerminals(TerminalOffice& terminals);
// The national id of holder number `holder` (at most 999): valid, and the same every run.
std::string FixtureNationalId(int holder);
// Issues a card to holder number `holder` (FixtureNationalId), with no balance.
FakeCard IssueFixtureCard(CardOffice& office, int holder, Profile profile = Profile::adult);
// The card pays (or loads) `amount_fen` at `terminal` with the terminal's counter `ttc` at
// `time_s`: the chip moves, the record is signed by card and terminal (FakeTapAuthenticator).
TapRecord MakeFixtureTap(const Terminal& terminal, FakeCard& card, uint32_t ttc, int64_t time_s,
                         int64_t amount_fen, TapType type = TapType::purchase);

struct IngestFixture {
  explicit IngestFixture(IngestConfig config = {}, CardOfficeConfig office_config = {});

  // Issues a card and puts `balance_fen` on it (a counter top-up that writes the chip).
  FakeCard IssueCard(int64_t balance_fen, Profile profile = Profile::adult);
  // A counter top-up of `amount_fen`, chip and ledger.
  void TopupAtCounter(FakeCard& card, int64_t amount_fen);
  // The card pays `amount_fen` at `terminal_id` (its next TTC): the chip moves, the record is
  // signed by card and terminal. The caller may change the record and sign it again (Sign).
  TapRecord Tap(FakeCard& card, const std::string& terminal_id, int64_t amount_fen,
                TapType type = TapType::purchase);
  // Signs again after a change (TAC too unless keep_tac).
  void Sign(TapRecord* record, bool keep_tac = false);
  Terminal GetTerminal(const std::string& terminal_id);

  IngestOutcome IngestOne(const TapRecord& record, const std::string& session_terminal = "");
  std::vector<IngestOutcome> IngestMany(const std::vector<TapRecord>& records);

  int64_t Purse(uint64_t card_no);
  int64_t Payable(const std::string& operator_id);
  std::vector<Alert> Alerts(std::optional<AlertKind> kind = std::nullopt);
  std::optional<DenylistEntry> Listed(uint64_t card_no);
  int64_t LedgerSum();

  MemoryLedgerStore ledger_store;
  MemoryTapStore tap_store;
  JointLedgerStore joint{ledger_store, tap_store};
  FakeDigester digester;
  ManualClock clock{kFixtureStartMs};
  Ledger ledger{joint, clock, digester};
  MemoryRegistryStore registry{&joint};
  FakeNationalIdHasher hasher;
  FakeTerminalKeyMaker key_maker;
  CardOffice office;
  TerminalOffice terminals{registry, ledger, key_maker, clock};
  FakeTapAuthenticator auth;
  IngestEngine engine;
  std::map<std::string, uint32_t> ttc;  // each terminal's last TTC
  int next_holder = 0;
  int next_ref = 0;
};

}  // namespace citycard::testing
