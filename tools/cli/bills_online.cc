#include "tools/cli/bills_online.h"

#include <map>
#include <string>
#include <variant>

#include "core/card_number.h"
#include "db/sqlite_bill_store.h"
#include "tools/cli/environment.h"

namespace citycard::cli {

using terminals::ResultCode;

namespace {

// PayBill's failure codes as the protocol's result codes; anything else is the core's fault.
ResultCode CodeForPayFailure(const Status& status) {
  static const std::map<std::string, ResultCode> kCodes = {
      {"bill_not_found", ResultCode::bill_not_found},
      {"card_not_found", ResultCode::card_not_found},
      {"invalid_card_no", ResultCode::card_not_found},
      {"ambiguous_bill_id", ResultCode::amount_mismatch},
      {"amount_mismatch", ResultCode::amount_mismatch},
      {"no_mandate", ResultCode::no_mandate},
      {"card_blocked", ResultCode::card_blocked},
      {"card_replaced", ResultCode::card_blocked},
      {"card_closed", ResultCode::card_blocked},
      {"card_expired", ResultCode::card_expired},
      {"insufficient_funds", ResultCode::insufficient_funds},
  };
  auto it = kCodes.find(status.code());
  return it == kCodes.end() ? ResultCode::internal_error : it->second;
}

terminals::BillPaymentResponse Refusal(const terminals::BillPaymentRequest& request,
                                       ResultCode code) {
  terminals::BillPaymentResponse response;
  response.request_id = request.request_id;
  response.code = code;
  return response;
}

}  // namespace

terminals::BillPaymentResponse AnswerBillPayment(BillService& service, CardProofVerifier& verifier,
                                                 const terminals::TerminalIdentity& terminal,
                                                 const terminals::BillPaymentRequest& request) {
  const std::string card_no = CardNumberFromInt(request.card_no);
  Bytes signed_bytes = terminals::CardProofInput(terminals::OnlineRequest(request));
  if (!verifier.Verify(card_no, signed_bytes, request.card_proof)) {
    return Refusal(request, ResultCode::bad_card_proof);
  }
  BillPayRequest pay;
  pay.bill_id = request.bill_id;
  pay.card_no = card_no;
  pay.amount_fen = request.amount_fen;
  pay.channel = "kiosk:" + terminal.terminal_id;
  auto paid = service.PayBill(pay);
  if (!paid.ok()) return Refusal(request, CodeForPayFailure(paid.status()));
  terminals::BillPaymentResponse response;
  response.request_id = request.request_id;
  response.code =
      paid->status == BillStatus::paid ? ResultCode::ok : ResultCode::bill_already_paid;
  response.amount_paid_fen = paid->status == BillStatus::paid ? paid->bill.amount_fen : 0;
  response.balance_after_fen = paid->balance_after_fen;
  response.transfer_id = paid->bill.transfer_id.ToHex();
  return response;
}

OnlineFallback WithBillPayments(BillService& service, CardProofVerifier& verifier,
                                OnlineFallback next) {
  return [&service, &verifier, next = std::move(next)](
             const terminals::TerminalIdentity& terminal,
             const terminals::OnlineRequest& request) -> terminals::OnlineResponse {
    if (const auto* bill = std::get_if<terminals::BillPaymentRequest>(&request)) {
      return AnswerBillPayment(service, verifier, terminal, *bill);
    }
    return next(terminal, request);
  };
}

Result<std::unique_ptr<BillsRuntime>> BillsRuntime::Open(Environment& env) {
  auto store = db::SqliteBillStore::Open(env.database());
  if (!store.ok()) return store.status();
  std::unique_ptr<BillsRuntime> runtime(new BillsRuntime());
  runtime->store_ = std::move(*store);
  runtime->service_ = std::make_unique<BillService>(*runtime->store_, env.registry(), env.ledger(),
                                                    env.digester(), env.clock());
  return runtime;
}

BillsRuntime::~BillsRuntime() = default;

}  // namespace citycard::cli
