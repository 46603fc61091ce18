#include "core/card_office.h"

#include <fmt/format.h>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/national_id.h"
#include "core/unit_of_work.h"

namespace citycard {

namespace {

// How far CardOffice follows a chain of replacements (A replaced by B replaced by C …). A
// person does not lose a card a hundred times before an old balance moves.
constexpr int kReplacementChainMax = 100;

Status CardNotFound(std::string_view card_no) {
  return Status::NotFound("card_not_found", "no card " + std::string(card_no));
}

int64_t AddYears(int64_t day, int years) {
  std::string text = FormatDay(day);  // "YYYY-MM-DD"
  int64_t year = std::stoll(text.substr(0, 4)) + years;
  unsigned month = static_cast<unsigned>(std::stoi(text.substr(5, 2)));
  unsigned dom = static_cast<unsigned>(std::stoi(text.substr(8, 2)));
  if (!IsValidDate(year, month, dom)) dom = 28;  // 29 February into a common year
  return DaysFromCivil(year, month, dom);
}

Status DeclinedTransfer(const Transfer& transfer, TransferOutcome outcome) {
  std::string what = fmt::format("the ledger declined transfer {} ({})", transfer.id.ToHex(),
                                 TransferOutcomeName(outcome));
  switch (outcome) {
    case TransferOutcome::insufficient_funds: return Status::Refused("insufficient_funds", what);
    case TransferOutcome::account_closed: return Status::Refused("account_closed", what);
    case TransferOutcome::exists_with_different_flags:
    case TransferOutcome::exists_with_different_debit_account_id:
    case TransferOutcome::exists_with_different_credit_account_id:
    case TransferOutcome::exists_with_different_amount:
    case TransferOutcome::exists_with_different_pending_id:
    case TransferOutcome::exists_with_different_timeout:
    case TransferOutcome::exists_with_different_code:
    case TransferOutcome::exists_with_different_user_data:
    case TransferOutcome::id_already_failed: return Status::Refused("transfer_conflict", what);
    default: return Status::Internal("transfer_declined", what);
  }
}

Status CheckRef(std::string_view ref) {
  bool ok = ref.size() <= kTopupRefBytesMax;
  for (char c : ref) ok = ok && c > ' ' && c < 0x7f;
  if (ok) return Status::Ok();
  return Status::BadInput("invalid_ref", "a reference is at most 64 printable ASCII characters "
                                         "without spaces");
}

}  // namespace

int64_t PurseFloorFen(Profile profile, const CardOfficeConfig& config) {
  return profile == Profile::adult ? 0 : -config.transit_overdraft_fen;
}

Status CheckCardUsable(const CardView& view) {
  const std::string& no = view.card.card_no;
  switch (view.status) {
    case CardStatus::active: return Status::Ok();
    case CardStatus::blocked:
      return Status::Refused("card_blocked", "card " + no + " is blocked (" +
                                                 std::string(BlockReasonName(view.card.block_reason)) +
                                                 ")");
    case CardStatus::replaced:
      return Status::Refused("card_replaced",
                             "card " + no + " was replaced by " + view.card.replaced_by);
    case CardStatus::closed: return Status::Refused("card_closed", "card " + no + " is closed");
    case CardStatus::expired:
      return Status::Refused("card_expired", "card " + no + " expired on " +
                                                 FormatDay(view.card.expires_day));
  }
  return Status::Internal("card_status_unknown", "card " + no + " has an unknown status");
}

CardOffice::CardOffice(RegistryStore& registry, Ledger& ledger, const NationalIdHasher& hasher,
                       const Digester& digester, const Clock& clock, CardOfficeConfig config)
    : registry_(registry),
      ledger_(ledger),
      hasher_(hasher),
      digester_(digester),
      clock_(clock),
      config_(config) {}

Status CardOffice::CreateSystemAccounts() {
  std::vector<Account> accounts;
  for (AccountKind kind : kSystemAccountKinds) {
    Account account;
    account.id = SystemAccountId(kind);
    account.kind = kind;
    accounts.push_back(account);
  }
  return ledger_.CreateAccounts(accounts);
}

int64_t CardOffice::Today() const { return ClearingDay(clock_.NowSeconds()); }

int64_t CardOffice::DefaultExpiry() const { return AddYears(Today(), config_.card_validity_years); }

Transfer CardOffice::MakeTransfer(std::string_view domain, std::string_view key, uint64_t debit,
                                  uint64_t credit, int64_t amount_fen, uint16_t code) const {
  Transfer transfer;
  transfer.id = DeriveTransferId(digester_, domain, key);
  transfer.debit_account_id = debit;
  transfer.credit_account_id = credit;
  transfer.amount_fen = amount_fen;
  transfer.code = code;
  return transfer;
}

Status CardOffice::Book(const Transfer& transfer) {
  auto outcomes = ledger_.Apply(std::span<const Transfer>(&transfer, 1));
  if (!outcomes.ok()) return outcomes.status();
  TransferOutcome outcome = (*outcomes)[0];
  return IsSuccess(outcome) ? Status::Ok() : DeclinedTransfer(transfer, outcome);
}

Result<Card> CardOffice::LoadCard(std::string_view card_no) {
  CITYCARD_RETURN_IF_ERROR(ValidateCardNumber(card_no));
  auto card = registry_.FindCard(card_no);
  if (!card.ok()) return card.status();
  if (!card->has_value()) return CardNotFound(card_no);
  return std::move(**card);
}

Result<CardView> CardOffice::View(const Card& card) {
  auto account = ledger_.LookupAccount(card.purse_account_id);
  if (!account.ok()) return account.status();
  CardView view{card, account->balance_fen(), card.status};
  if (card.status == CardStatus::active && card.expires_day < Today()) {
    view.status = CardStatus::expired;
  }
  return view;
}

// ---- Holders -----------------------------------------------------------------------------

Status CardOffice::CreateHolder(Holder* holder) {
  auto number = registry_.NextSequence("holder");
  if (!number.ok()) return number.status();
  holder->number = *number;
  Account medical;
  medical.id = AccountIdFor(AccountKind::medical_account, static_cast<uint64_t>(*number));
  medical.kind = AccountKind::medical_account;
  medical.owner_ref = static_cast<uint64_t>(*number);
  medical.flags = kAccountEnforceFloor;
  CITYCARD_RETURN_IF_ERROR(ledger_.CreateAccounts(std::span<const Account>(&medical, 1)));
  return registry_.InsertHolder(*holder);
}

Result<Holder> CardOffice::FindOrCreateHolder(const std::string& national_id,
                                              const std::string& name) {
  std::string hash = hasher_.Hash(national_id);
  auto found = registry_.FindHolder(hash);
  if (!found.ok()) return found.status();
  if (found->has_value()) return std::move(**found);
  Holder holder;
  holder.id_hash = hash;
  holder.id_masked = MaskNationalId(national_id);
  holder.name = name;
  CITYCARD_RETURN_IF_ERROR(CreateHolder(&holder));
  return holder;
}

Status CardOffice::BookMedicalOpening(const Holder& holder) {
  if (holder.medical_opening_fen <= 0) return Status::Ok();
  uint64_t account = AccountIdFor(AccountKind::medical_account, static_cast<uint64_t>(holder.number));
  return Book(MakeTransfer("citycard.medical_opening", std::to_string(holder.number),
                           SystemAccountId(AccountKind::medical_fund), account,
                           holder.medical_opening_fen,
                           static_cast<uint16_t>(TransferCode::medical_opening)));
}

Status CardOffice::ApplyRegistryLine(const RegistryLine& line, ImportReport* report) {
  std::string hash = hasher_.Hash(line.national_id);
  auto found = registry_.FindHolder(hash);
  if (!found.ok()) return found.status();
  Holder holder = found->value_or(Holder{});
  Holder before = holder;
  holder.id_hash = hash;
  holder.id_masked = MaskNationalId(line.national_id);
  holder.name = line.name;
  holder.schemes = line.schemes;
  holder.groups = line.groups;
  holder.medical_opening_fen = line.medical_opening_fen;
  holder.in_registry = true;
  if (!found->has_value()) {
    ++report->created;
    CITYCARD_RETURN_IF_ERROR(CreateHolder(&holder));
    return BookMedicalOpening(holder);
  }
  if (holder == before) {
    ++report->unchanged;
    return Status::Ok();
  }
  ++report->updated;
  // The opening balance is booked once, when the registry first names the holder; a later
  // change of the figure updates the record only (docs/registry-format.md).
  if (!before.in_registry) CITYCARD_RETURN_IF_ERROR(BookMedicalOpening(holder));
  return registry_.UpdateHolder(holder);
}

Result<ImportReport> CardOffice::ImportHolders(std::string_view csv_text, bool skip_bad,
                                               const ImportProgress& progress) {
  auto parsed = ParseHolderRegistry(csv_text);
  if (!parsed.ok()) return parsed.status();
  ImportReport report;
  report.lines = static_cast<int64_t>(parsed->lines.size() + parsed->problems.size());
  report.problems = std::move(parsed->problems);
  if (!report.problems.empty() && !skip_bad) return report;
  report.skipped = static_cast<int64_t>(report.problems.size());
  Status status = RunUnitOfWork(registry_, ledger_, [&]() -> Status {
    int64_t total = static_cast<int64_t>(parsed->lines.size());
    int64_t done = 0;
    for (const RegistryLine& line : parsed->lines) {
      CITYCARD_RETURN_IF_ERROR(ApplyRegistryLine(line, &report));
      if (progress && ++done % kImportProgressLines == 0) progress(done, total);
    }
    if (progress) progress(total, total);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  report.applied = true;
  return report;
}

Result<HolderView> CardOffice::ShowHolder(std::string_view national_id) {
  auto id = NormalizeNationalId(national_id);
  if (!id.ok()) return id.status();
  auto found = registry_.FindHolder(hasher_.Hash(*id));
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return Status::NotFound("holder_not_found", "no holder with national id " + MaskNationalId(*id));
  }
  HolderView view{std::move(**found), {}, 0};
  auto cards = registry_.ListCards(CardFilter{std::nullopt, view.holder.number});
  if (!cards.ok()) return cards.status();
  for (const Card& card : *cards) view.card_nos.push_back(card.card_no);
  auto medical = ledger_.LookupAccount(
      AccountIdFor(AccountKind::medical_account, static_cast<uint64_t>(view.holder.number)));
  if (!medical.ok()) return medical.status();
  view.medical_balance_fen = medical->balance_fen();
  return view;
}

// ---- Issue, show, list -----------------------------------------------------------------

Result<Card> CardOffice::NewCard(const Holder& holder, const std::string& name, Profile profile,
                                 int64_t deposit_fen, int64_t expires_day) {
  auto sequence = registry_.NextSequence("card");
  if (!sequence.ok()) return sequence.status();
  if (*sequence < 1 || static_cast<uint64_t>(*sequence) > kCardSequenceMax) {
    return Status::Refused("card_numbers_exhausted", "every card number has been issued");
  }
  Card card;
  card.card_no = MakeCardNumber(static_cast<uint64_t>(*sequence));
  uint64_t owner = CardNumberToInt(card.card_no);
  Account purse;
  purse.id = AccountIdFor(AccountKind::card_purse, owner);
  purse.kind = AccountKind::card_purse;
  purse.owner_ref = owner;
  purse.floor_fen = PurseFloorFen(profile, config_);
  purse.flags = kAccountEnforceFloor;
  CITYCARD_RETURN_IF_ERROR(ledger_.CreateAccounts(std::span<const Account>(&purse, 1)));
  card.holder_number = holder.number;
  card.holder_name = name;
  card.holder_id_masked = holder.id_masked;
  card.profile = profile;
  card.expires_day = expires_day;
  card.deposit_fen = deposit_fen;
  card.purse_account_id = purse.id;
  card.issued_s = clock_.NowSeconds();
  return card;
}

Result<CardView> CardOffice::IssueCard(const IssueRequest& request) {
  auto id = NormalizeNationalId(request.national_id);
  if (!id.ok()) return id.status();
  CITYCARD_RETURN_IF_ERROR(ValidateHolderName(request.name));
  int64_t deposit = request.deposit_fen.value_or(config_.default_deposit_fen);
  if (deposit < 0 || deposit > kTransferAmountFenMax) {
    return Status::BadInput("invalid_amount", "the deposit is out of range");
  }
  int64_t expires = request.expires_day.value_or(DefaultExpiry());
  if (expires < Today()) {
    return Status::BadInput("invalid_expiry", "the expiry date " + FormatDay(expires) + " has passed");
  }
  Card card;
  Status status = RunUnitOfWork(registry_, ledger_, [&]() -> Status {
    auto holder = FindOrCreateHolder(*id, request.name);
    if (!holder.ok()) return holder.status();
    auto made = NewCard(*holder, request.name, request.profile, deposit, expires);
    if (!made.ok()) return made.status();
    card = std::move(*made);
    CITYCARD_RETURN_IF_ERROR(registry_.InsertCard(card));
    if (deposit == 0) return Status::Ok();
    return Book(MakeTransfer("citycard.deposit", card.card_no,
                             SystemAccountId(AccountKind::topup_clearing),
                             SystemAccountId(AccountKind::card_deposits), deposit,
                             static_cast<uint16_t>(TransferCode::deposit)));
  });
  if (!status.ok()) return status;
  return View(card);
}

Result<CardView> CardOffice::ShowCard(std::string_view card_no) {
  auto card = LoadCard(card_no);
  if (!card.ok()) return card.status();
  return View(*card);
}

Result<std::vector<CardView>> CardOffice::ListCards(std::optional<CardStatus> status,
                                                    std::optional<std::string> national_id) {
  CardFilter filter;
  if (status) filter.status = *status == CardStatus::expired ? CardStatus::active : *status;
  if (national_id) {
    auto id = NormalizeNationalId(*national_id);
    if (!id.ok()) return id.status();
    auto holder = registry_.FindHolder(hasher_.Hash(*id));
    if (!holder.ok()) return holder.status();
    if (!holder->has_value()) return std::vector<CardView>{};
    filter.holder_number = (*holder)->number;
  }
  auto cards = registry_.ListCards(filter);
  if (!cards.ok()) return cards.status();
  std::vector<CardView> views;
  for (const Card& card : *cards) {
    auto view = View(card);
    if (!view.ok()) return view.status();
    if (status && view->status != *status) continue;
    views.push_back(std::move(*view));
  }
  return views;
}

// ---- Top-up ----------------------------------------------------------------------------

Status CardOffice::CheckTopup(const CardView& view, int64_t amount_fen) {
  CITYCARD_RETURN_IF_ERROR(CheckCardUsable(view));
  if (view.balance_fen + amount_fen > config_.purse_balance_max_fen) {
    return Status::Refused("purse_limit_exceeded",
                           fmt::format("the purse would hold {}, above its limit of {}",
                                       FormatYuanSign(view.balance_fen + amount_fen),
                                       FormatYuanSign(config_.purse_balance_max_fen)));
  }
  return Status::Ok();
}

Result<TopupResult> CardOffice::Topup(std::string_view card_no, int64_t amount_fen,
                                      std::string_view ref) {
  CITYCARD_RETURN_IF_ERROR(ValidateCardNumber(card_no));
  if (amount_fen <= 0 || amount_fen > kTransferAmountFenMax) {
    return Status::BadInput("invalid_amount", "a top-up must be at least 0.01");
  }
  CITYCARD_RETURN_IF_ERROR(CheckRef(ref));
  TopupResult result;
  Status status = RunUnitOfWork(registry_, ledger_, [&]() -> Status {
    auto card = LoadCard(card_no);
    if (!card.ok()) return card.status();
    std::string key = std::string(card_no) + ":ref:" + std::string(ref);
    if (ref.empty()) {
      auto sequence = registry_.NextSequence("topup");
      if (!sequence.ok()) return sequence.status();
      key = std::string(card_no) + ":seq:" + std::to_string(*sequence);
    }
    Transfer transfer = MakeTransfer("citycard.topup", key,
                                     SystemAccountId(AccountKind::topup_clearing),
                                     card->purse_account_id, amount_fen,
                                     static_cast<uint16_t>(TransferCode::topup));
    result.transfer_id = transfer.id;
    auto earlier = ledger_.LookupTransfer(transfer.id);
    if (!earlier.ok()) return earlier.status();
    result.repeated = earlier->has_value();
    auto view = View(*card);
    if (!view.ok()) return view.status();
    if (!result.repeated) CITYCARD_RETURN_IF_ERROR(CheckTopup(*view, amount_fen));
    CITYCARD_RETURN_IF_ERROR(Book(transfer));
    auto after = View(*card);
    if (!after.ok()) return after.status();
    result.card = std::move(*after);
    if (result.card.balance_fen < 0) return Status::Ok();
    auto listed = registry_.DenylistFind(card_no);
    if (!listed.ok()) return listed.status();
    if (!listed->has_value() || (*listed)->reason != DenyReason::negative_balance) return Status::Ok();
    return registry_.DenylistRemove(card_no).status();
  });
  if (!status.ok()) return status;
  return result;
}

// ---- Block, unblock ----------------------------------------------------------------------

Result<CardView> CardOffice::Block(std::string_view card_no, BlockReason reason) {
  CITYCARD_ASSERT(reason != BlockReason::none);
  Card card;
  Status status = RunUnitOfWork(registry_, ledger_, [&]() -> Status {
    auto loaded = LoadCard(card_no);
    if (!loaded.ok()) return loaded.status();
    card = std::move(*loaded);
    if (card.status != CardStatus::active) {
      return CheckCardUsable(CardView{card, 0, card.status});
    }
    card.status = CardStatus::blocked;
    card.block_reason = reason;
    CITYCARD_RETURN_IF_ERROR(registry_.UpdateCard(card));
    return registry_.DenylistAdd(card.card_no, DenyReasonFor(reason)).status();
  });
  if (!status.ok()) return status;
  return View(card);
}

Result<CardView> CardOffice::Unblock(std::string_view card_no) {
  Card card;
  Status status = RunUnitOfWork(registry_, ledger_, [&]() -> Status {
    auto loaded = LoadCard(card_no);
    if (!loaded.ok()) return loaded.status();
    card = std::move(*loaded);
    if (card.status != CardStatus::blocked) {
      return Status::Refused("card_not_blocked", "card " + card.card_no + " is not blocked");
    }
    card.status = CardStatus::active;
    card.block_reason = BlockReason::none;
    CITYCARD_RETURN_IF_ERROR(registry_.UpdateCard(card));
    auto view = View(card);
    if (!view.ok()) return view.status();
    // An overdrawn purse stays denied until a top-up, whatever else happens to the card.
    if (view->balance_fen < 0) {
      return registry_.DenylistAdd(card.card_no, DenyReason::negative_balance).status();
    }
    return registry_.DenylistRemove(card.card_no).status();
  });
  if (!status.ok()) return status;
  return View(card);
}

// ---- Replace -------------------------------------------------------------------------

Status CardOffice::MoveReplacementBalance(Card* old_card) {
  // The balance goes to the end of the replacement chain: the old card's successor may have
  // been replaced in turn before the hold period ended.
  auto target = LoadCard(old_card->replaced_by);
  for (int i = 0; target.ok() && target->status == CardStatus::replaced; ++i) {
    if (i == kReplacementChainMax) return Status::Internal("replacement_chain", "chain too long");
    target = LoadCard(target->replaced_by);
  }
  if (!target.ok()) return target.status();
  auto purse = ledger_.LookupAccount(old_card->purse_account_id);
  if (!purse.ok()) return purse.status();
  int64_t balance = purse->balance_fen();
  old_card->balance_moved_s = clock_.NowSeconds();
  if (balance == 0) return Status::Ok();
  bool debt = balance < 0;
  Transfer transfer = MakeTransfer(
      "citycard.replacement", old_card->card_no,
      debt ? target->purse_account_id : old_card->purse_account_id,
      debt ? old_card->purse_account_id : target->purse_account_id, debt ? -balance : balance,
      static_cast<uint16_t>(TransferCode::replacement));
  // A debt follows the holder to the new card even below its floor, as an overdrawn offline
  // tap would have; the new card is then denied until topped up.
  if (debt) transfer.flags = kTransferIgnoreFloor;
  CITYCARD_RETURN_IF_ERROR(Book(transfer));
  if (!debt) return Status::Ok();
  return registry_.DenylistAdd(target->card_no, DenyReason::negative_balance).status();
}

Result<ReplaceResult> CardOffice::Replace(std::string_view card_no, bool move_now) {
  Card old_card;
  Card new_card;
  ReplaceResult result;
  Status status = RunUnitOfWork(registry_, ledger_, [&]() -> Status {
    auto loaded = LoadCard(card_no);
    if (!loaded.ok()) return loaded.status();
    old_card = std::move(*loaded);
    if (old_card.status != CardStatus::active && old_card.status != CardStatus::blocked) {
      return CheckCardUsable(CardView{old_card, 0, old_card.status});
    }
    auto holder = registry_.FindHolderByNumber(old_card.holder_number);
    if (!holder.ok()) return holder.status();
    if (!holder->has_value()) return Status::Internal("holder_missing", "the card's holder is gone");
    auto made = NewCard(**holder, old_card.holder_name, old_card.profile, old_card.deposit_fen,
                        DefaultExpiry());
    if (!made.ok()) return made.status();
    new_card = std::move(*made);
    new_card.replaces = old_card.card_no;
    CITYCARD_RETURN_IF_ERROR(registry_.InsertCard(new_card));
    old_card.status = CardStatus::replaced;
    old_card.replaced_by = new_card.card_no;
    old_card.deposit_fen = 0;  // carried over to the new card; the money stays in card deposits
    int64_t now = clock_.NowSeconds();
    old_card.balance_move_due_s = move_now ? now : now + config_.replacement_hold_s;
    DenyReason why = old_card.block_reason == BlockReason::none
                         ? DenyReason::replaced
                         : DenyReasonFor(old_card.block_reason);
    CITYCARD_RETURN_IF_ERROR(registry_.DenylistAdd(old_card.card_no, why).status());
    if (move_now) {
      auto purse = ledger_.LookupAccount(old_card.purse_account_id);
      if (!purse.ok()) return purse.status();
      result.moved_fen = purse->balance_fen();
      CITYCARD_RETURN_IF_ERROR(MoveReplacementBalance(&old_card));
      result.balance_moved = true;
    }
    return registry_.UpdateCard(old_card);
  });
  if (!status.ok()) return status;
  auto old_view = View(old_card);
  if (!old_view.ok()) return old_view.status();
  auto new_view = View(new_card);
  if (!new_view.ok()) return new_view.status();
  result.old_card = std::move(*old_view);
  result.new_card = std::move(*new_view);
  return result;
}

Result<size_t> CardOffice::ProcessDueReplacements() {
  size_t moved = 0;
  int64_t now = clock_.NowSeconds();
  // Every round marks the cards it lists as moved, so each round lists new ones and the loop
  // ends when a round finds fewer than a full batch. The cards are listed inside the round's
  // transaction: `serve` and `citycard settle` both move due balances, and a card listed
  // before the transaction could have been moved (or otherwise changed) by the other process
  // by the time it is written back whole.
  while (true) {
    // Nothing due, the usual answer of a housekeeping turn, needs no write transaction.
    auto any = registry_.ListDueReplacements(now, 1);
    if (!any.ok()) return any.status();
    if (any->empty()) return moved;
    size_t listed = 0;
    Status status = RunUnitOfWork(registry_, ledger_, [&]() -> Status {
      auto due = registry_.ListDueReplacements(now, kReplacementBatchMax);
      if (!due.ok()) return due.status();
      listed = due->size();
      for (Card& card : *due) {
        CITYCARD_RETURN_IF_ERROR(MoveReplacementBalance(&card));
        CITYCARD_RETURN_IF_ERROR(registry_.UpdateCard(card));
      }
      return Status::Ok();
    });
    if (!status.ok()) return status;
    moved += listed;
    if (listed < kReplacementBatchMax) return moved;
  }
}

// ---- Close -----------------------------------------------------------------------------

Result<CloseResult> CardOffice::Close(std::string_view card_no) {
  Card card;
  CloseResult result;
  Status status = RunUnitOfWork(registry_, ledger_, [&]() -> Status {
    auto loaded = LoadCard(card_no);
    if (!loaded.ok()) return loaded.status();
    card = std::move(*loaded);
    if (card.status != CardStatus::active && card.status != CardStatus::blocked) {
      return CheckCardUsable(CardView{card, 0, card.status});
    }
    std::string predecessor = card.replaces;
    for (int i = 0; !predecessor.empty() && i < kReplacementChainMax; ++i) {
      auto earlier = LoadCard(predecessor);
      if (!earlier.ok()) return earlier.status();
      if (earlier->balance_moved_s == 0) {
        return Status::Refused("replacement_pending",
                               "the balance of replaced card " + earlier->card_no +
                                   " has not moved to this card yet");
      }
      predecessor = earlier->replaces;
    }
    auto purse = ledger_.LookupAccount(card.purse_account_id);
    if (!purse.ok()) return purse.status();
    int64_t balance = purse->balance_fen();
    int64_t deposit = card.deposit_fen;
    if (balance < 0 && -balance > deposit) {
      return Status::Refused("card_in_debt", "the purse is overdrawn by " +
                                                 FormatYuanSign(-balance) +
                                                 ", more than the deposit");
    }
    uint64_t deposits = SystemAccountId(AccountKind::card_deposits);
    uint64_t refunds = SystemAccountId(AccountKind::refunds);
    std::vector<Transfer> transfers;
    if (balance > 0) {
      transfers.push_back(MakeTransfer("citycard.close.purse", card.card_no, card.purse_account_id,
                                       refunds, balance,
                                       static_cast<uint16_t>(TransferCode::purse_refund)));
    } else if (balance < 0) {
      transfers.push_back(MakeTransfer("citycard.close.debt", card.card_no, deposits,
                                       card.purse_account_id, -balance,
                                       static_cast<uint16_t>(TransferCode::deposit_to_purse)));
      deposit += balance;
    }
    if (deposit > 0) {
      transfers.push_back(MakeTransfer("citycard.close.deposit", card.card_no, deposits, refunds,
                                       deposit,
                                       static_cast<uint16_t>(TransferCode::deposit_refund)));
    }
    for (const Transfer& transfer : transfers) {
      CITYCARD_RETURN_IF_ERROR(Book(transfer));
      result.transfer_ids.push_back(transfer.id);
    }
    result.purse_refund_fen = balance > 0 ? balance : 0;
    result.deposit_refund_fen = deposit;
    CITYCARD_RETURN_IF_ERROR(ledger_.SetAccountClosed(card.purse_account_id));
    card.status = CardStatus::closed;
    card.closed_s = clock_.NowSeconds();
    CITYCARD_RETURN_IF_ERROR(registry_.UpdateCard(card));
    return registry_.DenylistAdd(card.card_no, DenyReason::closed).status();
  });
  if (!status.ok()) return status;
  auto view = View(card);
  if (!view.ok()) return view.status();
  result.card = std::move(*view);
  return result;
}

// ---- History ---------------------------------------------------------------------------

Result<std::vector<HistoryLine>> CardOffice::History(std::string_view card_no, size_t limit) {
  auto card = LoadCard(card_no);
  if (!card.ok()) return card.status();
  auto entries = ledger_.AccountHistory(card->purse_account_id, limit);
  if (!entries.ok()) return entries.status();
  std::vector<HistoryLine> lines;
  for (const HistoryEntry& entry : *entries) {
    const Transfer& t = entry.transfer;
    bool credit = t.credit_account_id == card->purse_account_id;
    uint64_t other = credit ? t.debit_account_id : t.credit_account_id;
    HistoryLine line{t.timestamp_ms, TransferCodeName(t.code),
                     credit ? t.amount_fen : -t.amount_fen, entry.balance_after_fen, "", t.id};
    if (AccountIdKind(other) == AccountKind::operator_payable) {
      auto op = registry_.FindOperatorByNumber(static_cast<int64_t>(AccountIdOwner(other)));
      if (!op.ok()) return op.status();
      if (op->has_value()) line.operator_id = (*op)->id;
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace citycard
