#include <catch2/catch.hpp>

#include "crypto/card_keys.h"
#include "crypto/tap_auth.h"
#include "tools/sim/sim_card.h"

using namespace citycard;
using namespace citycard::sim;

namespace {

Bytes Master() { return Bytes{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                              0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}; }

constexpr uint64_t kCardNo = 6201000000000018;

TapRecord Draft(int64_t amount_fen, uint32_t terminal_counter) {
  TapRecord r;
  r.type = TapType::purchase;
  r.amount_fen = amount_fen;
  r.full_fare_fen = amount_fen;
  r.terminal_id = "BUS00042";
  r.operator_id = "szbus";
  r.terminal_counter = terminal_counter;
  r.time_s = 1'709'258'400 + terminal_counter;
  return r;
}

}  // namespace

TEST_CASE("A simulated card's payments carry exact counters, balances and valid TACs",
          "[tools][sim]") {
  SimCard card = SimCard::Issue(Master(), 1, kCardNo, Profile::student, 1000);
  crypto::AesCmac key(crypto::DeriveCardKey(Master(), kCardNo));
  REQUIRE(card.key() == crypto::DeriveCardKey(Master(), kCardNo));
  int64_t expected_balance = 1000;
  for (uint32_t i = 1; i <= 5; ++i) {
    auto record = card.Pay(Draft(150, i));
    REQUIRE(record.ok());
    REQUIRE(record->card_no == kCardNo);
    REQUIRE(record->card_counter == i);
    REQUIRE(record->balance_before_fen == expected_balance);
    REQUIRE(record->amount_fen == 150);
    REQUIRE(record->profile == Profile::student);
    REQUIRE(record->tac_key_version == 1);
    REQUIRE(crypto::VerifyTac(key, *record));
    expected_balance -= 150;
  }
  REQUIRE(card.counter() == 5);
  REQUIRE(card.balance_fen() == 250);
}

TEST_CASE("A simulated card refuses a payment below its floor and stays unchanged",
          "[tools][sim]") {
  SimCard card = SimCard::Issue(Master(), 1, kCardNo, Profile::adult, 100, /*overdraft_fen=*/50);
  auto refused = card.Pay(Draft(151, 1));
  REQUIRE(refused.status().code() == "insufficient_balance");
  REQUIRE(refused.status().kind() == Kind::refused);
  REQUIRE(card.counter() == 0);
  REQUIRE(card.balance_fen() == 100);
  auto into_overdraft = card.Pay(Draft(150, 2));
  REQUIRE(into_overdraft.ok());
  REQUIRE(card.balance_fen() == -50);
  REQUIRE(card.Pay(Draft(-1, 3)).status().code() == "invalid_amount");
}

TEST_CASE("A torn payment debits the card and is recovered with its valid TAC", "[tools][sim]") {
  SimCard card = SimCard::Issue(Master(), 1, kCardNo, Profile::adult, 1000);
  crypto::AesCmac key(crypto::DeriveCardKey(Master(), kCardNo));
  REQUIRE(card.PayTorn(Draft(300, 1)).ok());
  REQUIRE(card.counter() == 1);
  REQUIRE(card.balance_fen() == 700);
  auto proof = card.ProveLastTransaction(1);
  REQUIRE(proof.ok());
  REQUIRE(proof->balance_before_fen == 1000);
  REQUIRE(proof->amount_fen == 300);
  REQUIRE(crypto::VerifyTac(key, *proof));
  // After another transaction the card no longer remembers the torn one.
  REQUIRE(card.Pay(Draft(100, 2)).ok());
  auto gone = card.ProveLastTransaction(1);
  REQUIRE(gone.status().code() == "transaction_not_on_card");
  REQUIRE(gone.status().kind() == Kind::not_found);
}

TEST_CASE("A simulated card applies an authorised load and confirms it", "[tools][sim]") {
  SimCard card = SimCard::Issue(Master(), 1, kCardNo, Profile::adult, 500);
  crypto::AesCmac key(crypto::DeriveCardKey(Master(), kCardNo));
  REQUIRE(card.Pay(Draft(100, 1)).ok());
  LoadFields fields = card.ReadForLoad(2000, "KIOSK01", 77);
  REQUIRE(fields.card_counter == 1);
  REQUIRE(fields.balance_before_fen == 400);
  crypto::LoadMac host_mac = crypto::ComputeLoadAuthorisation(key, fields);
  TapRecord draft = Draft(0, 9);
  draft.terminal_id = "KIOSK01";
  auto loaded = card.ApplyLoad(fields, host_mac, draft);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->balance_after_fen == 2400);
  REQUIRE(card.balance_fen() == 2400);
  REQUIRE(card.counter() == 2);
  REQUIRE(crypto::VerifyLoadConfirmation(key, fields, 2400, loaded->confirmation));
  REQUIRE(loaded->record.type == TapType::load);
  REQUIRE(loaded->record.card_counter == 2);
  REQUIRE(loaded->record.balance_before_fen == 400);
  REQUIRE(loaded->record.amount_fen == 2000);
  REQUIRE(crypto::VerifyTac(key, loaded->record));

  // The same authorisation again is stale: the counter and balance moved on.
  auto replay = card.ApplyLoad(fields, host_mac, draft);
  REQUIRE(replay.status().code() == "load_state_mismatch");
  REQUIRE(card.balance_fen() == 2400);
}

TEST_CASE("A simulated card refuses a load authorisation it cannot verify", "[tools][sim]") {
  SimCard card = SimCard::Issue(Master(), 1, kCardNo, Profile::adult, 500);
  LoadFields fields = card.ReadForLoad(2000, "KIOSK01", 77);
  crypto::AesCmac other(crypto::DeriveCardKey(Master(), 6201000000000026));
  TapRecord draft = Draft(0, 1);
  auto refused = card.ApplyLoad(fields, crypto::ComputeLoadAuthorisation(other, fields), draft);
  REQUIRE(refused.status().code() == "load_authorisation_invalid");
  REQUIRE(card.balance_fen() == 500);
  REQUIRE(card.counter() == 0);

  crypto::AesCmac key(crypto::DeriveCardKey(Master(), kCardNo));
  LoadFields huge = card.ReadForLoad(kSimPurseBalanceMaxFen, "KIOSK01", 78);
  auto limit = card.ApplyLoad(huge, crypto::ComputeLoadAuthorisation(key, huge), draft);
  REQUIRE(limit.status().code() == "balance_limit_exceeded");
}

TEST_CASE("A copied card is a clone with the same key, counter and balance", "[tools][sim]") {
  SimCard card = SimCard::Issue(Master(), 1, kCardNo, Profile::adult, 1000);
  REQUIRE(card.Pay(Draft(100, 1)).ok());
  SimCard clone = card;
  auto a = card.Pay(Draft(100, 2));
  auto b = clone.Pay(Draft(100, 3));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(a->card_counter == b->card_counter);
  REQUIRE(a->balance_before_fen == b->balance_before_fen);
  crypto::AesCmac key(crypto::DeriveCardKey(Master(), kCardNo));
  REQUIRE(crypto::VerifyTac(key, *b));
}
