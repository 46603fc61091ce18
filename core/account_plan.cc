#include "core/account_plan.h"

namespace citycard {

uint64_t AccountIdFor(AccountKind kind, uint64_t owner) {
  CITYCARD_ASSERT(owner <= kAccountOwnerMax);
  return (static_cast<uint64_t>(kind) << kAccountKindShift) | owner;
}

AccountKind AccountIdKind(uint64_t account_id) {
  return static_cast<AccountKind>(account_id >> kAccountKindShift);
}

uint64_t AccountIdOwner(uint64_t account_id) { return account_id & kAccountOwnerMax; }

std::string TransferCodeName(uint16_t code) {
  switch (static_cast<TransferCode>(code)) {
    case TransferCode::topup: return "topup";
    case TransferCode::deposit: return "deposit";
    case TransferCode::purse_refund: return "purse_refund";
    case TransferCode::deposit_refund: return "deposit_refund";
    case TransferCode::deposit_to_purse: return "deposit_to_purse";
    case TransferCode::replacement: return "replacement";
    case TransferCode::medical_opening: return "medical_opening";
    case TransferCode::tap: return "tap";
    case TransferCode::bill_payment: return "bill_payment";
    case TransferCode::pass_sale: return "pass_sale";
  }
  return "code_" + std::to_string(code);
}

Id128 DeriveTransferId(const Digester& digester, std::string_view domain, std::string_view key) {
  Bytes input(domain.begin(), domain.end());
  input.push_back(0);
  input.insert(input.end(), key.begin(), key.end());
  Sha256Digest digest = digester.Sha256(input);
  Id128 id;
  for (int i = 0; i < 8; ++i) id.hi = (id.hi << 8) | digest[static_cast<size_t>(i)];
  for (int i = 8; i < 16; ++i) id.lo = (id.lo << 8) | digest[static_cast<size_t>(i)];
  return id;
}

}  // namespace citycard
