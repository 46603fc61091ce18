#include "tools/cli/health_wiring.h"

#include <map>
#include <string>

#include "core/card_number.h"

namespace citycard::cli {

namespace {

using terminals::ResultCode;

// The refusal codes of the service (core/health.h) as the protocol's result codes
// (docs/medical.md "Online requests").
ResultCode CodeForStatus(const Status& status) {
  static const std::map<std::string, ResultCode> kCodes = {
      {"card_not_found", ResultCode::card_not_found},
      {"invalid_card_no", ResultCode::card_not_found},
      {"card_blocked", ResultCode::card_blocked},
      {"card_replaced", ResultCode::card_blocked},
      {"card_closed", ResultCode::card_blocked},
      {"card_expired", ResultCode::card_expired},
      {"insufficient_funds", ResultCode::insufficient_funds},
      {"bad_card_proof", ResultCode::bad_card_proof},
      {"invalid_amount", ResultCode::amount_out_of_range},
      {"not_insured", ResultCode::not_insured},
      {"not_covered", ResultCode::not_insured},
      {"medical_year_closed", ResultCode::not_insured},
      {"bill_conflict", ResultCode::amount_mismatch},
      {"invalid_bill_id", ResultCode::malformed_message},
      {"not_a_hospital", ResultCode::unsupported_request},
      {"operator_not_found", ResultCode::unsupported_request},
      {"no_medical_rules", ResultCode::unsupported_request},
  };
  auto it = kCodes.find(status.code());
  return it == kCodes.end() ? ResultCode::internal_error : it->second;
}

// What the card proved: the bytes its proof covers (terminals::CardProofInput) and the proof.
template <typename Request>
CardPresence PresenceOf(const Request& request) {
  static_assert(terminals::kCardProofBytes == kCardPresenceProofBytes);
  CardPresence presence;
  presence.signed_bytes = terminals::CardProofInput(terminals::OnlineRequest(request));
  presence.proof = request.card_proof;
  return presence;
}

template <typename T>
uint16_t MaskOf(const std::vector<T>& values) {
  uint16_t mask = 0;
  for (T v : values) mask = static_cast<uint16_t>(mask | (1u << (static_cast<unsigned>(v) - 1)));
  return mask;
}

terminals::OnlineResponse AnswerIdentity(HealthService& service,
                                         const terminals::TerminalIdentity& terminal,
                                         const terminals::IdentityCheckRequest& request) {
  IdentityQuery query;
  query.card_no = CardNumberFromInt(request.card_no);
  query.purpose = request.purpose;
  query.terminal_id = terminal.terminal_id;
  query.operator_id = terminal.operator_id;
  query.presence = PresenceOf(request);
  auto record = service.CheckIdentity(query);
  terminals::OnlineRequest as_variant = request;
  if (!record.ok()) return terminals::RefusalFor(as_variant, CodeForStatus(record.status()));
  switch (record->outcome) {
    case IdentityOutcome::bad_card_proof:
      return terminals::RefusalFor(as_variant, ResultCode::bad_card_proof);
    case IdentityOutcome::card_not_found:
      return terminals::RefusalFor(as_variant, ResultCode::card_not_found);
    case IdentityOutcome::card_not_valid:
      return terminals::RefusalFor(as_variant, record->card_status == CardStatus::expired
                                                   ? ResultCode::card_expired
                                                   : ResultCode::card_blocked);
    case IdentityOutcome::valid: break;
  }
  terminals::IdentityCheckResponse response;
  response.request_id = request.request_id;
  response.code = ResultCode::ok;
  response.card_status = static_cast<uint8_t>(*record->card_status);
  response.profile = static_cast<uint8_t>(*record->profile);
  response.schemes_asked = MaskOf(record->disclosed.asked.schemes);
  response.schemes = MaskOf(record->disclosed.schemes);
  response.groups_asked = MaskOf(record->disclosed.asked.groups);
  response.groups = MaskOf(record->disclosed.groups);
  return response;
}

terminals::OnlineResponse AnswerSettlement(HealthService& service,
                                           const terminals::TerminalIdentity& terminal,
                                           const terminals::MedicalSettlementRequest& request) {
  MedicalSettleRequest settle;
  settle.card_no = CardNumberFromInt(request.card_no);
  settle.hospital_id = terminal.operator_id;
  settle.bill_id = request.bill_reference;
  settle.scheme = Scheme::medical;  // the protocol's request has no scheme field
  settle.category = request.category;
  settle.amount_fen = request.total_fen;
  settle.terminal_id = terminal.terminal_id;
  settle.presence = PresenceOf(request);
  auto result = service.Settle(settle);
  terminals::OnlineRequest as_variant = request;
  if (!result.ok()) return terminals::RefusalFor(as_variant, CodeForStatus(result.status()));
  const MedicalSettlementRecord& r = result->record;
  terminals::MedicalSettlementResponse response;
  response.request_id = request.request_id;
  response.code = ResultCode::ok;
  response.fund_fen = r.fund_fen + r.assistance_fen;  // both funds; the voucher separates them
  response.medical_account_fen = r.medical_account_fen;
  response.purse_fen = r.purse_fen;
  response.voucher = r.voucher;
  static_assert(kMedicalVoucherBytesMax <= terminals::kVoucherBytesMax);
  return response;
}

}  // namespace

bool KeyFileCardProofVerifier::Verify(std::string_view card_no, ByteView signed_bytes,
                                      ByteView proof) {
  if (proof.size() != kCardPresenceProofBytes || !ValidateCardNumber(card_no).ok()) return false;
  uint64_t number = CardNumberToInt(card_no);
  std::lock_guard lock(mutex_);
  for (int version = keys_.CurrentCardKeyVersion(); version >= 1; --version) {
    // A version the key file lacks verifies nothing (VerifyCardProof answers false).
    if (card_keys_.VerifyCardProof(number, static_cast<uint8_t>(version), signed_bytes, proof)) {
      return true;
    }
  }
  return false;
}

std::array<uint8_t, kVoucherSignatureBytes> CoreVoucherSigner::Sign(ByteView message) const {
  return keys_.CoreSigner().Sign(message);
}

Result<std::unique_ptr<HealthRuntime>> HealthRuntime::Open(Environment& env) {
  auto store = db::SqliteHealthStore::Open(env.database());
  if (!store.ok()) return store.status();
  std::unique_ptr<HealthRuntime> runtime(new HealthRuntime());
  runtime->store_ = std::move(*store);
  runtime->verifier_ = std::make_unique<KeyFileCardProofVerifier>(env.keys());
  runtime->signer_ = std::make_unique<CoreVoucherSigner>(env.keys());
  runtime->service_ = std::make_unique<HealthService>(
      *runtime->store_, env.registry(), env.ledger(), env.card_office(), *runtime->verifier_,
      *runtime->signer_, env.digester(), env.clock());
  return runtime;
}

bool IsHealthRequest(const terminals::OnlineRequest& request) {
  return std::holds_alternative<terminals::IdentityCheckRequest>(request) ||
         std::holds_alternative<terminals::MedicalSettlementRequest>(request);
}

terminals::OnlineResponse HandleHealthOnline(HealthService& service,
                                             const terminals::TerminalIdentity& terminal,
                                             const terminals::OnlineRequest& request) {
  if (const auto* check = std::get_if<terminals::IdentityCheckRequest>(&request)) {
    return AnswerIdentity(service, terminal, *check);
  }
  if (const auto* bill = std::get_if<terminals::MedicalSettlementRequest>(&request)) {
    return AnswerSettlement(service, terminal, *bill);
  }
  return terminals::RefusalFor(request, ResultCode::unsupported_request);
}

bool IsIdentityCheck(const terminals::OnlineRequest& request) {
  return std::holds_alternative<terminals::IdentityCheckRequest>(request);
}

void JoinIdentityChecksToGroups(server::IngestBackendOptions& backend, HealthService& service) {
  backend.joins_group = IsIdentityCheck;
  backend.online_in_group = HealthOnlineFallback(service);
}

std::function<terminals::OnlineResponse(const terminals::TerminalIdentity&,
                                        const terminals::OnlineRequest&)>
HealthOnlineFallback(HealthService& service) {
  return [&service](const terminals::TerminalIdentity& terminal,
                    const terminals::OnlineRequest& request) {
    return HandleHealthOnline(service, terminal, request);
  };
}

}  // namespace citycard::cli
