#include "core/fare_office.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/money.h"
#include "core/national_id.h"
#include "core/time.h"

namespace citycard {

Result<FareTableBlob> CurrentFareTable(FareStore& store) {
  auto current = store.CurrentTable();
  if (!current.ok()) return current.status();
  FareTableBlob blob;
  if (current->has_value()) {
    blob.version = static_cast<uint32_t>((*current)->version);
    blob.json = (*current)->json;
  }
  return blob;
}

Id128 PassSaleTransferId(const Digester& digester, std::string_view card_no,
                         std::string_view pass_id, int64_t sold_day) {
  return DeriveTransferId(digester, "citycard.pass",
                          fmt::format("{}/{}/{}", card_no, pass_id, sold_day));
}

FareOffice::FareOffice(FareStore& store, RegistryStore& registry, Ledger& ledger,
                       CardOffice& cards, const Digester& digester, const Clock& clock)
    : store_(store),
      registry_(registry),
      ledger_(ledger),
      cards_(cards),
      digester_(digester),
      clock_(clock) {}

Status FareOffice::RunUnit(const std::function<Status()>& body) {
  CITYCARD_RETURN_IF_ERROR(store_.Begin());
  Ledger::JoinedTransaction joined(ledger_);
  Status status = body();
  if (status.ok()) status = store_.Commit();
  if (!status.ok()) {
    // The body's failure is what the caller needs; a failing rollback adds nothing to it.
    (void)store_.Rollback();
    return status;
  }
  joined.Committed();
  return Status::Ok();
}

Result<FareLoadResult> FareOffice::LoadTable(std::string_view json) {
  auto parsed = ParseFareTable(json);
  if (!parsed.ok()) return parsed.status();
  FareLoadResult result;
  auto same = store_.FindTable(parsed->version);
  if (!same.ok()) return same.status();
  if (same->has_value()) {
    if ((*same)->json != json) {
      return Status::Refused("fare_version_exists",
                             fmt::format("fare table version {} is already loaded with another "
                                         "text; give the new table a larger version",
                                         parsed->version));
    }
    result.table = **same;
    result.repeated = true;
    return result;
  }
  auto current = store_.CurrentTable();
  if (!current.ok()) return current.status();
  if (current->has_value() && (*current)->version > parsed->version) {
    return Status::Refused("fare_version_not_newer",
                           fmt::format("fare table version {} is below the current version {}",
                                       parsed->version, (*current)->version));
  }
  result.table.version = parsed->version;
  result.table.name = parsed->name;
  result.table.json = std::string(json);
  result.table.loaded_ms = clock_.NowMs();
  CITYCARD_RETURN_IF_ERROR(store_.InsertTable(result.table));
  return result;
}

Result<StoredFareTable> FareOffice::CurrentTable() {
  auto current = store_.CurrentTable();
  if (!current.ok()) return current.status();
  if (!current->has_value()) {
    return Status::NotFound("no_fare_table", "no fare table is loaded: citycard fares load FILE");
  }
  return std::move(**current);
}

Result<FareTable> FareOffice::CurrentParsedTable() {
  auto current = CurrentTable();
  if (!current.ok()) return current.status();
  return ParseFareTable(current->json);
}

Result<FareTable> FareOffice::TableOfVersion(int64_t version) {
  auto stored = store_.FindTable(version);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) {
    return Status::Internal("fare_version_missing",
                            fmt::format("fare table version {} is gone", version));
  }
  return ParseFareTable((*stored)->json);
}

namespace {

// Whether a held pass still opens gates: within its validity and with visits left.
bool PassUsable(const PassProduct& product, const PassHolding& holding, int64_t today) {
  return today < holding.sold_day + product.validity_days && holding.visits_used < product.visits;
}

}  // namespace

Result<PassSale> FareOffice::SellPass(std::string_view card_no, std::string_view pass_id,
                                      std::string_view holder_national_id) {
  auto table = CurrentParsedTable();
  if (!table.ok()) return table.status();
  const PassProduct* product = table->FindPass(pass_id);
  if (product == nullptr) {
    return Status::NotFound("unknown_pass", fmt::format("fare table version {} has no pass {}",
                                                        table->version, pass_id));
  }
  auto view = cards_.ShowCard(card_no);
  if (!view.ok()) return view.status();
  auto normalized = NormalizeNationalId(holder_national_id);
  if (!normalized.ok()) return normalized.status();
  auto holder = cards_.ShowHolder(*normalized);
  if (!holder.ok() && holder.status().kind() != Kind::not_found) return holder.status();
  if (!holder.ok() || holder->holder.number != view->card.holder_number) {
    return Status::Refused("not_card_holder",
                           fmt::format("card {} does not belong to that holder", card_no));
  }
  CITYCARD_RETURN_IF_ERROR(CheckCardUsable(*view));
  if (!product->profiles.empty() &&
      std::find(product->profiles.begin(), product->profiles.end(), view->card.profile) ==
          product->profiles.end()) {
    return Status::Refused("pass_profile_not_allowed",
                           fmt::format("pass {} is not sold to {} cards", pass_id,
                                       ProfileName(view->card.profile)));
  }
  const int64_t now_ms = clock_.NowMs();
  const int64_t today = ClearingDay(now_ms / 1000);
  const Id128 transfer_id = PassSaleTransferId(digester_, view->card.card_no, pass_id, today);
  auto held = store_.FindPass(view->card.card_no, pass_id);
  if (!held.ok()) return held.status();
  if (held->has_value() && (*held)->transfer_id == transfer_id) {
    // Sold today already: the same sale asked again moves no more money.
    PassSale repeated{**held, view->balance_fen, true};
    return repeated;
  }
  if (held->has_value()) {
    auto old_table = TableOfVersion((*held)->fare_version);
    if (!old_table.ok()) return old_table.status();
    const PassProduct* old_product = old_table->FindPass(pass_id);
    if (old_product != nullptr && PassUsable(*old_product, (*held)->holding, today)) {
      return Status::Refused("pass_already_held",
                             fmt::format("card {} holds pass {} until {}", card_no, pass_id,
                                         FormatDay((*held)->holding.sold_day +
                                                   old_product->validity_days - 1)));
    }
  }
  auto account = ledger_.LookupAccount(view->card.purse_account_id);
  if (!account.ok()) return account.status();
  if (account->available_fen() < product->price_fen) {
    return Status::Refused("insufficient_funds",
                           fmt::format("balance {} is below the price {}",
                                       FormatYuanSign(account->available_fen()),
                                       FormatYuanSign(product->price_fen)));
  }
  const std::string& spot = product->spots.front();
  auto op = registry_.FindOperator(spot);
  if (!op.ok()) return op.status();
  if (!op->has_value()) {
    return Status::NotFound("operator_not_found",
                            fmt::format("scenic operator {} is not registered", spot));
  }

  PassSale sale;
  sale.pass.card_no = view->card.card_no;
  sale.pass.pass_id = std::string(pass_id);
  sale.pass.fare_version = table->version;
  sale.pass.price_fen = product->price_fen;
  sale.pass.operator_id = spot;
  sale.pass.transfer_id = transfer_id;
  sale.pass.sold_ms = now_ms;
  sale.pass.holding.sold_day = today;
  Transfer t;
  t.id = transfer_id;
  t.debit_account_id = view->card.purse_account_id;
  t.credit_account_id = (*op)->payable_account_id;
  t.amount_fen = product->price_fen;
  t.code = static_cast<uint16_t>(TransferCode::pass_sale);
  t.user_data_64 = CardNumberToInt(view->card.card_no);
  t.user_data_32 = static_cast<uint32_t>(table->version);
  const bool renew = held->has_value();
  CITYCARD_RETURN_IF_ERROR(RunUnit([&]() -> Status {
    if (t.amount_fen > 0) {
      auto applied = ledger_.Apply(std::span<const Transfer>(&t, 1));
      if (!applied.ok()) return applied.status();
      if (!IsSuccess(applied->front())) {
        return Status::Refused("insufficient_funds",
                               fmt::format("the ledger declined the sale: {}",
                                           TransferOutcomeName(applied->front())));
      }
    }
    return renew ? store_.UpdatePass(sale.pass) : store_.InsertPass(sale.pass);
  }));
  sale.balance_after_fen = view->balance_fen - product->price_fen;
  return sale;
}

Result<std::vector<StoredPass>> FareOffice::ListPasses(std::string_view card_no) {
  return store_.ListPasses(card_no);
}

Result<GateEntryDecision> FareOffice::EnterGate(std::string_view card_no, std::string_view spot,
                                                int64_t time_s) {
  // A visit is two writes (the pass's count, the spot's day); alone in autocommit, a failure
  // between them left the visit counted without the day, and the retry counted it again
  // (tests/db/io_faults_test.cc).
  std::optional<GateEntryDecision> decision;
  CITYCARD_RETURN_IF_ERROR(RunUnit([&]() -> Status {
    auto entered = EnterGateInTransaction(card_no, spot, time_s);
    if (!entered.ok()) return entered.status();
    decision = *entered;
    return Status::Ok();
  }));
  return *decision;
}

Result<GateEntryDecision> FareOffice::EnterGateInTransaction(std::string_view card_no,
                                                             std::string_view spot,
                                                             int64_t time_s) {
  auto passes = store_.ListPasses(card_no);
  if (!passes.ok()) return passes.status();
  GateEntryDecision decision;
  decision.outcome = PassEntryOutcome::not_valid_here;
  for (StoredPass& pass : *passes) {
    auto table = TableOfVersion(pass.fare_version);
    if (!table.ok()) return table.status();
    const PassProduct* product = table->FindPass(pass.pass_id);
    if (product == nullptr) continue;
    PassEntryOutcome outcome = CheckPassEntry(*product, pass.holding, spot, time_s);
    if (outcome == PassEntryOutcome::not_valid_here) continue;
    decision.outcome = outcome;
    decision.pass_id = pass.pass_id;
    decision.visits_left = product->visits - pass.holding.visits_used;
    if (outcome != PassEntryOutcome::admitted) continue;
    pass.holding.visits_used += 1;
    pass.holding.last_entry_day_by_spot[std::string(spot)] = ClearingDay(time_s);
    CITYCARD_RETURN_IF_ERROR(store_.UpdatePass(pass));
    decision.visits_left = product->visits - pass.holding.visits_used;
    return decision;
  }
  return decision;
}

Result<TapPricing> FareOfficePricer::PriceTap(const TapRecord& record,
                                              const PreviousTaps& previous) {
  if (record.type != TapType::gate_entry || record.amount_fen != 0) {
    return pricer_.PriceTap(record, previous);
  }
  auto decision = office_.EnterGateInTransaction(CardNumberFromInt(record.card_no),
                                                 record.operator_id, record.time_s);
  if (!decision.ok()) return decision.status();
  TapPricing pricing;
  if (decision->outcome != PassEntryOutcome::admitted) {
    pricing.dispute = true;
    pricing.detail = fmt::format("gate {} admitted card at {} without payment; core: {}",
                                 record.operator_id, FormatLocalTime(record.time_s),
                                 PassEntryOutcomeName(decision->outcome));
  }
  return pricing;
}

}  // namespace citycard
