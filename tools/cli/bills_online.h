// A kiosk's bill payment through the protocol (terminals/messages.h BillPaymentRequest,
// docs/protocol.md "Bill payment"; docs/bills.md "Paying at a kiosk"): the card proves it is
// present, the core pays the kept bill from the card's purse (BillService::PayBill) and
// answers what was paid and the balance after.
#pragma once

#include <functional>
#include <memory>

#include "core/bills.h"
#include "core/health.h"
#include "terminals/backend.h"
#include "terminals/messages.h"

namespace citycard {
namespace db {
class SqliteBillStore;
}
namespace cli {

class Environment;

// Answers one request. The card proof covers terminals::CardProofInput(request); a proof that
// does not verify under the card's key is refused (bad_card_proof) before anything is read.
// Refusals: card_not_found, card_blocked, card_expired, insufficient_funds, bill_not_found,
// amount_mismatch (the amount is not the bill's, or several utilities share the id),
// bill_already_paid (paid before: nothing moves; the answer names the earlier transfer).
terminals::BillPaymentResponse AnswerBillPayment(BillService& service, CardProofVerifier& verifier,
                                                 const terminals::TerminalIdentity& terminal,
                                                 const terminals::BillPaymentRequest& request);

using OnlineFallback = std::function<terminals::OnlineResponse(
    const terminals::TerminalIdentity&, const terminals::OnlineRequest&)>;

// A fallback for the ingest backend (IngestBackendOptions::online_fallback) that answers bill
// payments and passes every other request to `next`. service and verifier must outlive it.
OnlineFallback WithBillPayments(BillService& service, CardProofVerifier& verifier,
                                OnlineFallback next);

// The bill store and service on an Environment's connection, for `serve`.
class BillsRuntime {
 public:
  // Failures: the store's ("db_error", "schema_too_new").
  static Result<std::unique_ptr<BillsRuntime>> Open(Environment& env);
  ~BillsRuntime();
  BillService& service() { return *service_; }

 private:
  BillsRuntime() = default;
  std::unique_ptr<db::SqliteBillStore> store_;
  std::unique_ptr<BillService> service_;
};

}  // namespace cli
}  // namespace citycard
