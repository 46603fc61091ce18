#include <catch2/catch.hpp>

#include "crypto/card_keys.h"
#include "crypto/tap_auth.h"
#include "crypto/terminal_keys.h"
#include "tools/sim/sim_terminal.h"

using namespace citycard;
using namespace citycard::sim;

namespace {

Bytes Master() { return Bytes(16, 0x5c); }
Bytes TerminalKey(uint8_t fill) { return Bytes(32, fill); }

TapRequest Fare(int64_t amount_fen, int64_t time_s) {
  TapRequest request;
  request.amount_fen = amount_fen;
  request.full_fare_fen = amount_fen;
  request.route_code = 12;
  request.fare_version = 3;
  request.time_s = time_s;
  return request;
}

}  // namespace

TEST_CASE("A simulated terminal signs every record and queues it until acknowledged",
          "[tools][sim]") {
  SimTerminal terminal("BUS00042", "szbus", TerminalKey(1), 1);
  SimCard a = SimCard::Issue(Master(), 1, 6201000000000018, Profile::adult, 1000);
  SimCard b = SimCard::Issue(Master(), 1, 6201000000000026, Profile::elderly, 1000);
  crypto::HmacSha256 key(TerminalKey(1));
  for (int i = 0; i < 3; ++i) {
    REQUIRE(terminal.Tap(a, Fare(200, 1000 + i)).ok());
    REQUIRE(terminal.Tap(b, Fare(100, 2000 + i)).ok());
  }
  REQUIRE(terminal.counter() == 6);
  REQUIRE(terminal.queued() == 6);
  std::vector<TapRecord> batch = terminal.TakeBatch(4);
  REQUIRE(batch.size() == 4);
  for (uint32_t i = 0; i < batch.size(); ++i) {
    REQUIRE(batch[i].terminal_counter == i + 1);
    REQUIRE(batch[i].terminal_id == "BUS00042");
    REQUIRE(batch[i].operator_id == "szbus");
    REQUIRE(batch[i].route_code == 12);
    REQUIRE(crypto::VerifyTerminalMac(key, batch[i]));
  }
  REQUIRE(batch[1].card_no == 6201000000000026);
  REQUIRE(batch[1].profile == Profile::elderly);
  crypto::AesCmac card_key_b(crypto::DeriveCardKey(Master(), 6201000000000026));
  REQUIRE(crypto::VerifyTac(card_key_b, batch[1]));
  // An unacknowledged batch comes back unchanged.
  REQUIRE(terminal.TakeBatch(4) == batch);
  std::vector<uint32_t> ack = {1, 2, 3, 99};
  REQUIRE(terminal.Acknowledge(ack) == 3);
  REQUIRE(terminal.queued() == 3);
  std::vector<TapRecord> rest = terminal.TakeBatch(100);
  REQUIRE(rest.size() == 3);
  REQUIRE(rest[0].terminal_counter == 4);
  REQUIRE(a.balance_fen() == 400);
  REQUIRE(b.balance_fen() == 700);
}

TEST_CASE("A refused payment consumes no terminal counter and queues nothing", "[tools][sim]") {
  SimTerminal terminal("BUS00042", "szbus", TerminalKey(1), 1);
  SimCard poor = SimCard::Issue(Master(), 1, 6201000000000018, Profile::adult, 50);
  auto refused = terminal.Tap(poor, Fare(200, 1000));
  REQUIRE(refused.status().code() == "insufficient_balance");
  REQUIRE(terminal.counter() == 0);
  REQUIRE(terminal.queued() == 0);
}

TEST_CASE("A torn tap leaves a counter gap until the reader recovers it from the card",
          "[tools][sim]") {
  SimTerminal terminal("BUS00042", "szbus", TerminalKey(1), 1);
  SimCard card = SimCard::Issue(Master(), 1, 6201000000000018, Profile::adult, 1000);
  auto draft = terminal.TapTorn(card, Fare(200, 1000));
  REQUIRE(draft.ok());
  REQUIRE(terminal.counter() == 1);
  REQUIRE(terminal.queued() == 0);
  REQUIRE(card.balance_fen() == 800);
  auto recovered = terminal.RecoverTorn(card, *draft);
  REQUIRE(recovered.ok());
  REQUIRE(recovered->terminal_counter == 1);
  REQUIRE(recovered->card_counter == 1);
  REQUIRE(recovered->balance_before_fen == 1000);
  REQUIRE(terminal.queued() == 1);
  REQUIRE(crypto::VerifyTerminalMac(crypto::HmacSha256(TerminalKey(1)), *recovered));
  REQUIRE(crypto::VerifyTac(crypto::AesCmac(crypto::DeriveCardKey(Master(), 6201000000000018)),
                            *recovered));
}

TEST_CASE("A torn tap cannot be recovered once the card has paid again", "[tools][sim]") {
  SimTerminal terminal("BUS00042", "szbus", TerminalKey(1), 1);
  SimTerminal other("BUS00043", "szbus", TerminalKey(2), 1);
  SimCard card = SimCard::Issue(Master(), 1, 6201000000000018, Profile::adult, 1000);
  auto draft = terminal.TapTorn(card, Fare(200, 1000));
  REQUIRE(draft.ok());
  REQUIRE(other.Tap(card, Fare(200, 1100)).ok());
  auto recovered = terminal.RecoverTorn(card, *draft);
  REQUIRE(recovered.status().code() == "torn_record_mismatch");
  REQUIRE(terminal.queued() == 0);
}

TEST_CASE("After a key rotation old records verify with the old version until it is revoked",
          "[tools][sim]") {
  SimTerminal terminal("BUS00042", "szbus", TerminalKey(1), 1);
  SimCard card = SimCard::Issue(Master(), 1, 6201000000000018, Profile::adult, 1000);
  auto old_record = terminal.Tap(card, Fare(100, 1000));
  terminal.RotateKey(TerminalKey(2), 2);
  auto new_record = terminal.Tap(card, Fare(100, 1001));
  REQUIRE(old_record->terminal_key_version == 1);
  REQUIRE(new_record->terminal_key_version == 2);
  crypto::TerminalKeyRing ring;
  REQUIRE(ring.Add(1, TerminalKey(1)).ok());
  REQUIRE(ring.Add(2, TerminalKey(2)).ok());
  REQUIRE(ring.Check(*old_record) == crypto::TerminalMacCheck::valid);
  REQUIRE(ring.Check(*new_record) == crypto::TerminalMacCheck::valid);
  REQUIRE(ring.Revoke(1).ok());
  REQUIRE(ring.Check(*old_record) == crypto::TerminalMacCheck::key_revoked);
  REQUIRE(ring.Check(*new_record) == crypto::TerminalMacCheck::valid);
}

TEST_CASE("A simulated top-up at a terminal gives a signed load record and a confirmation",
          "[tools][sim]") {
  SimTerminal kiosk("KIOSK01", "cardoffice", TerminalKey(3), 1);
  SimCard card = SimCard::Issue(Master(), 1, 6201000000000018, Profile::adult, 100);
  crypto::AesCmac card_key(crypto::DeriveCardKey(Master(), 6201000000000018));
  LoadFields fields = card.ReadForLoad(5000, kiosk.terminal_id(), 1);
  auto loaded = kiosk.CompleteLoad(card, fields, crypto::ComputeLoadAuthorisation(card_key, fields),
                                   1'709'258'400);
  REQUIRE(loaded.ok());
  REQUIRE(card.balance_fen() == 5100);
  REQUIRE(kiosk.counter() == 1);
  REQUIRE(kiosk.queued() == 0);
  REQUIRE(loaded->record.terminal_counter == 1);
  REQUIRE(loaded->record.type == TapType::load);
  REQUIRE(crypto::VerifyTerminalMac(crypto::HmacSha256(TerminalKey(3)), loaded->record));
  REQUIRE(crypto::VerifyTac(card_key, loaded->record));
  REQUIRE(crypto::VerifyLoadConfirmation(card_key, fields, 5100, loaded->confirmation));
}
