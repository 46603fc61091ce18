#include "core/health.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/money.h"
#include "core/unit_of_work.h"

namespace citycard {

namespace {

// The parts of a split in booking order: the funds first, then the holder's accounts, so
// that the group's debits of floored accounts come last (any order is all or nothing).
enum class Part : uint8_t { fund = 0, assistance = 1, account = 2, purse = 3 };
constexpr Part kParts[] = {Part::fund, Part::assistance, Part::account, Part::purse};

std::string_view PartName(Part part) {
  switch (part) {
    case Part::fund: return "fund";
    case Part::assistance: return "assistance";
    case Part::account: return "account";
    case Part::purse: return "purse";
  }
  return "unknown";
}

uint16_t PartCode(Part part) {
  return static_cast<uint16_t>(kTransferCodeMedicalFund + static_cast<uint16_t>(part));
}

int64_t PartAmount(const MedicalSettlementRecord& r, Part part) {
  switch (part) {
    case Part::fund: return r.fund_fen;
    case Part::assistance: return r.assistance_fen;
    case Part::account: return r.medical_account_fen;
    case Part::purse: return r.purse_fen;
  }
  return 0;
}

// The account a part is paid from.
uint64_t PartSource(const MedicalSettlementRecord& r, Part part) {
  switch (part) {
    case Part::fund: return SystemAccountId(AccountKind::medical_fund);
    case Part::assistance: return SystemAccountId(AccountKind::medical_assistance_fund);
    case Part::account:
      return AccountIdFor(AccountKind::medical_account, static_cast<uint64_t>(r.holder_number));
    case Part::purse: return AccountIdFor(AccountKind::card_purse, CardNumberToInt(r.card_no));
  }
  return 0;
}

std::string PartKey(Part part, std::string_view hospital, std::string_view bill) {
  return fmt::format("{}/{}/{}", PartName(part), hospital, bill);
}

// The linked group of the non-zero parts: source -> payable to book, payable -> source to
// reverse.
std::vector<Transfer> PartTransfers(const MedicalSettlementRecord& r, uint64_t payable,
                                    const Digester& digester, bool reverse) {
  std::vector<Transfer> group;
  for (Part part : kParts) {
    int64_t amount = PartAmount(r, part);
    if (amount == 0) continue;
    Transfer t;
    t.id = DeriveTransferId(digester, reverse ? kMedicalReversalIdDomain : kMedicalTransferIdDomain,
                            PartKey(part, r.hospital_id, r.bill_id));
    t.debit_account_id = reverse ? payable : PartSource(r, part);
    t.credit_account_id = reverse ? PartSource(r, part) : payable;
    t.amount_fen = amount;
    t.code = static_cast<uint16_t>(PartCode(part) + (reverse ? kTransferCodeMedicalReversalOffset : 0));
    t.flags = kTransferLinked;
    t.user_data_64 = CardNumberToInt(r.card_no);
    t.user_data_32 = static_cast<uint32_t>(r.holder_number);
    group.push_back(t);
  }
  if (!group.empty()) group.back().flags = 0;  // the chain ends at its last transfer
  return group;
}

VoucherFields FieldsOf(const MedicalSettlementRecord& r, VoucherKind kind, int64_t time_ms) {
  VoucherFields f;
  f.kind = kind;
  f.bill_id = r.bill_id;
  f.hospital_id = r.hospital_id;
  f.card_no = CardNumberToInt(r.card_no);
  f.scheme = r.scheme;
  f.category = r.category;
  f.provided = r.provided;
  f.time_ms = time_ms;
  f.amount_fen = r.amount_fen;
  f.deductible_fen = r.deductible_fen;
  f.fund_fen = r.fund_fen;
  f.assistance_fen = r.assistance_fen;
  f.medical_account_fen = r.medical_account_fen;
  f.purse_fen = r.purse_fen;
  f.medical_account_after_fen = r.medical_account_after_fen;
  f.purse_after_fen = r.purse_after_fen;
  f.rules_version = r.rules_version;
  return f;
}

// Whether a repeated request asks for what was settled.
bool SameBill(const MedicalSettlementRecord& r, const MedicalSettleRequest& q) {
  return r.card_no == q.card_no && r.scheme == q.scheme && r.category == q.category &&
         r.amount_fen == q.amount_fen && r.provided == q.provided.has_value();
}

// What an account can pay now for a hospital bill: its available balance, never an
// overdraft (a purse's overdraft is for offline transit taps only), never below zero.
int64_t PayableNow(const Account& account) { return std::max<int64_t>(0, account.available_fen()); }

Status BookingFailed(std::span<const TransferOutcome> outcomes) {
  for (TransferOutcome o : outcomes) {
    if (!IsSuccess(o) && o != TransferOutcome::linked_event_failed) {
      if (o == TransferOutcome::insufficient_funds) {
        return Status::Refused("insufficient_funds",
                               "an account of the holder can no longer pay its part");
      }
      return Status::Refused("medical_booking_failed",
                             fmt::format("the ledger declined the group: {}",
                                         TransferOutcomeName(o)));
    }
  }
  return Status::Ok();
}

Status ApplyGroup(Ledger& ledger, const std::vector<Transfer>& group) {
  if (group.empty()) return Status::Ok();
  auto outcomes = ledger.Apply(group);
  if (!outcomes.ok()) return outcomes.status();
  return BookingFailed(*outcomes);
}

void SubtractFloor(int64_t* figure, int64_t amount) { *figure = std::max<int64_t>(0, *figure - amount); }

}  // namespace

std::string_view IdentityOutcomeName(IdentityOutcome outcome) {
  switch (outcome) {
    case IdentityOutcome::valid: return "valid";
    case IdentityOutcome::card_not_valid: return "card_not_valid";
    case IdentityOutcome::card_not_found: return "card_not_found";
    case IdentityOutcome::bad_card_proof: return "bad_card_proof";
  }
  return "unknown";
}

Status ValidateMedicalBillId(std::string_view bill_id) {
  bool printable = std::all_of(bill_id.begin(), bill_id.end(),
                               [](char c) { return c >= 0x21 && c <= 0x7E; });
  if (bill_id.empty() || bill_id.size() > kMedicalBillIdBytesMax || !printable) {
    return Status::BadInput("invalid_bill_id",
                            fmt::format("a bill id is 1 to {} printable ASCII characters "
                                        "without spaces",
                                        kMedicalBillIdBytesMax));
  }
  return Status::Ok();
}

// ---- Voucher -------------------------------------------------------------------------------

Bytes VoucherSignedBytes(const VoucherFields& f) {
  CITYCARD_ASSERT(!f.bill_id.empty() && f.bill_id.size() <= kMedicalBillIdBytesMax);
  CITYCARD_ASSERT(!f.hospital_id.empty() && f.hospital_id.size() <= kRegistryIdBytesMax);
  CITYCARD_ASSERT(f.rules_version.size() <= kMedicalRulesVersionBytesMax);
  Bytes out;
  ByteWriter w(&out);
  w.Raw(kVoucherMagic);
  w.U8(kVoucherLayoutVersion);
  w.U8(static_cast<uint8_t>(f.kind));
  w.U8(static_cast<uint8_t>(f.scheme));
  w.U8(static_cast<uint8_t>(f.category));
  w.U8(f.provided ? 1 : 0);
  w.U64(f.card_no);
  w.I64(f.time_ms);
  for (int64_t v : {f.amount_fen, f.deductible_fen, f.fund_fen, f.assistance_fen,
                    f.medical_account_fen, f.purse_fen, f.medical_account_after_fen,
                    f.purse_after_fen}) {
    w.I64(v);
  }
  for (const std::string* text : {&f.bill_id, &f.hospital_id, &f.rules_version}) {
    w.U8(static_cast<uint8_t>(text->size()));
    w.Raw(ByteView(reinterpret_cast<const uint8_t*>(text->data()), text->size()));
  }
  CITYCARD_ASSERT(out.size() + kVoucherSignatureBytes <= kMedicalVoucherBytesMax);
  return out;
}

Result<ParsedVoucher> ParseVoucher(ByteView voucher) {
  auto bad = [](std::string why) { return Status::BadInput("invalid_voucher", std::move(why)); };
  if (voucher.size() < kVoucherFixedBytes + kVoucherSignatureBytes ||
      voucher.size() > kMedicalVoucherBytesMax) {
    return bad(fmt::format("a voucher is {} to {} bytes, not {}",
                           kVoucherFixedBytes + kVoucherSignatureBytes, kMedicalVoucherBytesMax,
                           voucher.size()));
  }
  ByteReader r(voucher);
  Bytes magic = r.Raw(kVoucherMagic.size());
  if (!std::equal(magic.begin(), magic.end(), kVoucherMagic.begin())) return bad("wrong magic");
  if (r.U8() != kVoucherLayoutVersion) return bad("unknown layout version");
  ParsedVoucher p;
  VoucherFields& f = p.fields;
  uint8_t kind = r.U8(), scheme = r.U8(), category = r.U8(), provided = r.U8();
  if (kind < 1 || kind > 2) return bad("unknown kind");
  if (scheme < 1 || scheme > kSchemeCount) return bad("unknown scheme");
  if (category < 1 || category > kMedicalCategoryCount) return bad("unknown category");
  if (provided > 1) return bad("provided flag is not 0 or 1");
  f.kind = static_cast<VoucherKind>(kind);
  f.scheme = static_cast<Scheme>(scheme);
  f.category = static_cast<MedicalCategory>(category);
  f.provided = provided == 1;
  f.card_no = r.U64();
  f.time_ms = r.I64();
  for (int64_t* v : {&f.amount_fen, &f.deductible_fen, &f.fund_fen, &f.assistance_fen,
                     &f.medical_account_fen, &f.purse_fen, &f.medical_account_after_fen,
                     &f.purse_after_fen}) {
    *v = r.I64();
  }
  for (std::string* text : {&f.bill_id, &f.hospital_id, &f.rules_version}) {
    Bytes raw = r.Raw(r.U8());
    text->assign(raw.begin(), raw.end());
  }
  if (!r.ok() || r.remaining() != kVoucherSignatureBytes) return bad("wrong length");
  p.signed_bytes.assign(voucher.begin(), voucher.begin() + static_cast<std::ptrdiff_t>(r.position()));
  r.RawInto(p.signature.data(), kVoucherSignatureBytes);
  if (f.bill_id.empty() || f.bill_id.size() > kMedicalBillIdBytesMax || f.hospital_id.empty() ||
      f.hospital_id.size() > kRegistryIdBytesMax ||
      f.rules_version.size() > kMedicalRulesVersionBytesMax) {
    return bad("a text field is out of its limits");
  }
  return p;
}

// ---- The service ---------------------------------------------------------------------------

HealthService::HealthService(HealthStore& store, RegistryStore& registry, Ledger& ledger,
                             CardOffice& office, CardProofVerifier& verifier,
                             const VoucherSigner& signer, const Digester& digester,
                             const Clock& clock)
    : store_(store),
      registry_(registry),
      ledger_(ledger),
      office_(office),
      verifier_(verifier),
      signer_(signer),
      digester_(digester),
      clock_(clock) {}

Result<StoredMedicalRules> HealthService::LoadRules(std::string_view json_text) {
  auto rules = ParseMedicalRules(json_text);
  if (!rules.ok()) return rules.status();
  StoredMedicalRules stored{rules->version, std::string(json_text), clock_.NowMs()};
  CITYCARD_RETURN_IF_ERROR(store_.SaveRules(stored));
  return stored;
}

Result<IdentityCheckRecord> HealthService::CheckIdentity(const IdentityQuery& query) {
  CITYCARD_RETURN_IF_ERROR(ValidateCardNumber(query.card_no));
  IdentityCheckRecord record;
  record.time_ms = clock_.NowMs();
  record.terminal_id = query.terminal_id;
  record.operator_id = query.operator_id;
  record.card_no = query.card_no;
  record.purpose = query.purpose;
  record.outcome = IdentityOutcome::valid;
  if (query.presence.has_value() &&
      !verifier_.Verify(query.card_no, query.presence->signed_bytes, query.presence->proof)) {
    record.outcome = IdentityOutcome::bad_card_proof;
  } else {
    auto card = office_.ShowCard(query.card_no);
    if (!card.ok() && card.status().kind() != Kind::not_found) return card.status();
    if (!card.ok()) {
      record.outcome = IdentityOutcome::card_not_found;
    } else {
      record.card_status = card->status;
      record.profile = card->card.profile;
      if (card->status != CardStatus::active) {
        record.outcome = IdentityOutcome::card_not_valid;
      } else {
        auto holder = registry_.FindHolderByNumber(card->card.holder_number);
        if (!holder.ok()) return holder.status();
        if (!holder->has_value()) {
          return Status::Internal("holder_not_found",
                                  "card " + query.card_no + " names a holder the registry lacks");
        }
        record.disclosed = Filter(query.purpose, (*holder)->schemes, (*holder)->groups);
      }
    }
  }
  auto id = store_.AppendIdentityCheck(record);
  if (!id.ok()) return id.status();
  record.id = *id;
  return record;
}

Result<std::vector<IdentityCheckRecord>> HealthService::ListChecks(
    const IdentityCheckFilter& filter) {
  IdentityCheckFilter capped = filter;
  capped.limit = std::min(filter.limit, kIdentityCheckListMax);
  return store_.ListIdentityChecks(capped);
}

Result<Operator> HealthService::LoadHospital(std::string_view hospital_id) {
  auto op = registry_.FindOperator(hospital_id);
  if (!op.ok()) return op.status();
  if (!op->has_value()) {
    return Status::NotFound("operator_not_found",
                            fmt::format("no operator '{}'", hospital_id));
  }
  if ((*op)->kind != OperatorKind::hospital) {
    return Status::Refused("not_a_hospital",
                           fmt::format("operator '{}' is a {}, not a hospital", hospital_id,
                                       OperatorKindName((*op)->kind)));
  }
  return std::move(**op);
}

Bytes HealthService::SignVoucher(const VoucherFields& fields) const {
  Bytes voucher = VoucherSignedBytes(fields);
  auto signature = signer_.Sign(voucher);
  voucher.insert(voucher.end(), signature.begin(), signature.end());
  return voucher;
}

Result<MedicalSettleResult> HealthService::Settle(const MedicalSettleRequest& request) {
  CITYCARD_RETURN_IF_ERROR(ValidateCardNumber(request.card_no));
  CITYCARD_RETURN_IF_ERROR(ValidateMedicalBillId(request.bill_id));
  if (request.presence.has_value() &&
      !verifier_.Verify(request.card_no, request.presence->signed_bytes,
                        request.presence->proof)) {
    return Status::BadInput("bad_card_proof",
                            "the card's proof did not verify: the card is not present");
  }
  auto hospital = LoadHospital(request.hospital_id);
  if (!hospital.ok()) return hospital.status();
  auto kept = store_.FindSettlement(request.hospital_id, request.bill_id);
  if (!kept.ok()) return kept.status();
  if (kept->has_value()) {
    if (!SameBill(**kept, request)) {
      return Status::Refused("bill_conflict",
                             fmt::format("bill {} of {} was settled before with other content",
                                         request.bill_id, request.hospital_id));
    }
    return MedicalSettleResult{std::move(**kept), true};
  }
  auto card = office_.ShowCard(request.card_no);
  if (!card.ok()) return card.status();
  CITYCARD_RETURN_IF_ERROR(CheckCardUsable(*card));
  auto holder = registry_.FindHolderByNumber(card->card.holder_number);
  if (!holder.ok()) return holder.status();
  if (!holder->has_value()) {
    return Status::NotFound("holder_not_found", "the card's holder is not in the registry");
  }
  auto stored_rules = store_.CurrentRules();
  if (!stored_rules.ok()) return stored_rules.status();
  if (!stored_rules->has_value()) {
    return Status::Refused("no_medical_rules",
                           "no scheme rules are loaded (citycard medical rules load FILE.json)");
  }
  auto rules = ParseMedicalRules((*stored_rules)->text);
  if (!rules.ok()) return rules.status();
  auto figures = store_.FindYearToDate((*holder)->number);
  if (!figures.ok()) return figures.status();

  HolderMedicalState state{(*holder)->schemes, (*holder)->groups,
                           figures->value_or(MedicalYearToDate{})};
  MedicalBill bill{request.bill_id, request.scheme, request.category, request.amount_fen,
                   clock_.NowSeconds()};
  uint64_t medical_id =
      AccountIdFor(AccountKind::medical_account, static_cast<uint64_t>((*holder)->number));
  auto medical = ledger_.LookupAccount(medical_id);
  if (!medical.ok()) return medical.status();
  auto purse = ledger_.LookupAccount(card->card.purse_account_id);
  if (!purse.ok()) return purse.status();
  auto split = request.provided.has_value()
                   ? CheckProvidedSplit(*rules, state, bill, *request.provided,
                                        PayableNow(*medical), PayableNow(*purse))
                   : SplitBill(*rules, state, bill, PayableNow(*medical), PayableNow(*purse));
  if (!split.ok()) return split.status();

  MedicalSettlementRecord record;
  record.hospital_id = request.hospital_id;
  record.bill_id = request.bill_id;
  record.card_no = request.card_no;
  record.holder_number = (*holder)->number;
  record.scheme = request.scheme;
  record.category = request.category;
  record.provided = request.provided.has_value();
  record.rules_version = rules->version;
  record.terminal_id = request.terminal_id;
  record.settled_ms = clock_.NowMs();
  record.amount_fen = split->amount_fen;
  record.deductible_fen = split->deductible_fen;
  record.fund_fen = split->fund_fen;
  record.assistance_fen = split->assistance_fen;
  record.medical_account_fen = split->medical_account_fen;
  record.purse_fen = split->purse_fen;
  record.medical_account_after_fen = medical->balance_fen() - split->medical_account_fen;
  record.purse_after_fen = purse->balance_fen() - split->purse_fen;
  record.voucher = SignVoucher(FieldsOf(record, VoucherKind::settlement, record.settled_ms));
  CITYCARD_RETURN_IF_ERROR(BookSettlement(*hospital, *split, &record));
  return MedicalSettleResult{std::move(record), false};
}

Status HealthService::BookSettlement(const Operator& hospital, const MedicalSplit& split,
                                     MedicalSettlementRecord* record) {
  std::vector<Transfer> group =
      PartTransfers(*record, hospital.payable_account_id, digester_, /*reverse=*/false);
  return RunUnitOfWork(registry_, ledger_, [&]() -> Status {
    CITYCARD_RETURN_IF_ERROR(ApplyGroup(ledger_, group));
    CITYCARD_RETURN_IF_ERROR(store_.PutYearToDate(record->holder_number, split.year_to_date_after));
    return store_.InsertSettlement(*record);
  });
}

Result<MedicalSettlementRecord> HealthService::LocateSettlement(std::string_view hospital_id,
                                                                std::string_view bill_id) {
  if (!hospital_id.empty()) {
    auto kept = store_.FindSettlement(hospital_id, bill_id);
    if (!kept.ok()) return kept.status();
    if (!kept->has_value()) {
      return Status::NotFound("settlement_not_found",
                              fmt::format("no settlement of bill {} of {}", bill_id, hospital_id));
    }
    return std::move(**kept);
  }
  auto all = store_.FindSettlementsByBill(bill_id);
  if (!all.ok()) return all.status();
  if (all->empty()) {
    return Status::NotFound("settlement_not_found", fmt::format("no settlement of bill {}", bill_id));
  }
  if (all->size() > 1) {
    return Status::Refused("ambiguous_bill_id",
                           fmt::format("{} hospitals settled a bill {}: name the hospital",
                                       all->size(), bill_id));
  }
  return std::move(all->front());
}

Result<MedicalSettlementRecord> HealthService::FindSettlement(std::string_view hospital_id,
                                                              std::string_view bill_id) {
  return LocateSettlement(hospital_id, bill_id);
}

Result<MedicalSettlementRecord> HealthService::Reverse(std::string_view hospital_id,
                                                       std::string_view bill_id) {
  auto found = LocateSettlement(hospital_id, bill_id);
  if (!found.ok()) return found.status();
  MedicalSettlementRecord record = std::move(*found);
  if (record.reversed()) {
    return Status::Refused("already_reversed",
                           fmt::format("bill {} of {} was reversed before", record.bill_id,
                                       record.hospital_id));
  }
  auto hospital = registry_.FindOperator(record.hospital_id);
  if (!hospital.ok()) return hospital.status();
  if (!hospital->has_value()) {
    return Status::Internal("operator_not_found", "a settled hospital left the registry");
  }
  auto medical = ledger_.LookupAccount(PartSource(record, Part::account));
  if (!medical.ok()) return medical.status();
  auto purse = ledger_.LookupAccount(PartSource(record, Part::purse));
  if (!purse.ok()) return purse.status();
  auto figures = store_.FindYearToDate(record.holder_number);
  if (!figures.ok()) return figures.status();

  int64_t now_ms = clock_.NowMs();
  MedicalSettlementRecord after = record;
  after.medical_account_after_fen = medical->balance_fen() + record.medical_account_fen;
  after.purse_after_fen = purse->balance_fen() + record.purse_fen;
  Bytes voucher = SignVoucher(FieldsOf(after, VoucherKind::reversal, now_ms));
  std::vector<Transfer> group =
      PartTransfers(record, (*hospital)->payable_account_id, digester_, /*reverse=*/true);

  std::optional<MedicalYearToDate> reduced = *figures;
  if (reduced.has_value() && reduced->year == ShanghaiYear(record.settled_ms / 1000)) {
    CategoryYearToDate& c = reduced->at(record.scheme, record.category);
    SubtractFloor(&c.deductible_used_fen, record.deductible_fen);
    SubtractFloor(&c.fund_paid_fen, record.fund_fen);
    SubtractFloor(&reduced->assistance_paid_fen, record.assistance_fen);
  }
  Status status = RunUnitOfWork(registry_, ledger_, [&]() -> Status {
    CITYCARD_RETURN_IF_ERROR(ApplyGroup(ledger_, group));
    CITYCARD_RETURN_IF_ERROR(
        store_.MarkReversed(record.hospital_id, record.bill_id, now_ms, voucher));
    if (reduced.has_value()) {
      CITYCARD_RETURN_IF_ERROR(store_.PutYearToDate(record.holder_number, *reduced));
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  record.reversed_ms = now_ms;
  record.reversal_voucher = std::move(voucher);
  return record;
}

}  // namespace citycard
