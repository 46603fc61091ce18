// The chart of accounts and transfer codes: which ledger account id belongs to what, and what
// the `code` of a transfer means. The ledger (core/ledger.h) treats both as opaque numbers;
// every component that books money (card office, taps, bills, medical, settlement) agrees on
// them here.
//
// Account ids: the top 8 bits are the AccountKind, the low 56 bits the owner's number:
// - a card's purse: the card number as an integer (16 digits < 2^54), so a tap record's card
//   number gives its purse without a lookup;
// - a holder's medical account: the holder's number in the registry;
// - an operator's payable: the operator's number in the registry;
// - the system accounts (top-up clearing, card deposits, refunds, …): owner number 0, one
//   account per kind.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/digest.h"
#include "core/ledger.h"

namespace citycard {

inline constexpr int kAccountKindShift = 56;
inline constexpr uint64_t kAccountOwnerMax = (uint64_t{1} << kAccountKindShift) - 1;

// The account id of `kind` owned by `owner` (0 for system accounts). An owner above
// kAccountOwnerMax is a programmer error.
uint64_t AccountIdFor(AccountKind kind, uint64_t owner);
// The kind and owner encoded in an account id.
AccountKind AccountIdKind(uint64_t account_id);
uint64_t AccountIdOwner(uint64_t account_id);

// The system accounts, one per kind, that `citycard init` creates: top-up clearing, medical
// fund, fee income, card deposits, concession subsidy, settlement, refunds, medical
// assistance fund. None enforces a floor (their balances go negative as money flows out).
inline constexpr AccountKind kSystemAccountKinds[] = {
    AccountKind::topup_clearing,     AccountKind::medical_fund, AccountKind::fee_income,
    AccountKind::card_deposits,      AccountKind::concession_subsidy,
    AccountKind::settlement,         AccountKind::refunds,
    AccountKind::medical_assistance_fund,
};
inline uint64_t SystemAccountId(AccountKind kind) { return AccountIdFor(kind, 0); }

// What a transfer is, stored in Transfer::code. Stable numbers, never renumbered; a component
// that books a new kind of movement adds its value here.
enum class TransferCode : uint16_t {
  topup = 1,             // top-up clearing -> purse, at a counter or kiosk
  deposit = 2,           // top-up clearing -> card deposits, when a card is issued
  purse_refund = 3,      // purse -> refunds, when a card is closed
  deposit_refund = 4,    // card deposits -> refunds, when a card is closed
  deposit_to_purse = 5,  // card deposits -> purse: the deposit settles an overdrawn purse at close
  replacement = 6,       // old purse -> new purse, after the replacement hold period
  medical_opening = 7,   // medical fund -> medical account: the registry's opening balance
  tap = 16,              // purse -> operator payable: a booked tap
  bill_payment = 32,     // purse -> a utility's operator payable: a utility bill (core/bills.h)
  pass_sale = 48,        // purse -> a scenic operator's payable: a pass sold (core/fare_office.h)
};

// "topup", "deposit", … ; "code_N" for a number this program does not know.
std::string TransferCodeName(uint16_t code);

// A stable transfer id derived from where the transfer came from: the first 16 bytes of
// SHA-256(domain || 0x00 || key), read big-endian as (hi, lo). `domain` names the kind of
// source ("citycard.topup"), `key` identifies the source within it (card number and the
// counter's reference). The same source always gives the same id, so a retry moves no more
// money (PRODUCT.md "Money and the ledger").
Id128 DeriveTransferId(const Digester& digester, std::string_view domain, std::string_view key);

}  // namespace citycard
