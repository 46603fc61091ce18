// A kiosk pays a kept utility bill through the protocol (tools/cli/bills_online.h).
#include "tools/cli/bills_online.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/national_id.h"
#include "crypto/mac.h"
#include "terminals/client.h"
#include "tests/support/cli_runner_support.h"
#include "tools/cli/environment.h"
#include "tools/cli/health_wiring.h"
#include "tools/server/ingest_server.h"
#include "tools/sim/sim_card.h"

namespace citycard {
namespace {

using terminals::ResultCode;

struct Kiosk {
  Kiosk() {
    cli::GlobalOptions options;
    options.db_path = box.db_path();
    options.keys_path = box.keys_path();
    auto created = cli::Environment::Create(options);
    REQUIRE(created.ok());
    env = std::move(*created);
    REQUIRE(env->terminal_office().AddOperator({"WATER", "深圳水务集团", OperatorKind::utility, 0}).ok());
    REQUIRE(env->terminal_office().AddOperator({"KIOSK", "卡务中心", OperatorKind::counter, 0}).ok());
    TerminalRequest terminal;
    terminal.id = "K1";
    terminal.operator_id = "KIOSK";
    auto issued = env->terminal_office().RegisterTerminal(terminal);
    REQUIRE(issued.ok());
    kiosk_key = issued->plain_key;
    IssueRequest request;
    std::string first17 = "32128119900101001";
    request.national_id = first17 + NationalIdCheckChar(first17);
    request.name = "王芳";
    auto card = env->card_office().IssueCard(request);
    REQUIRE(card.ok());
    card_no = card->card.card_no;
    uint8_t version = env->keys().CurrentCardKeyVersion();
    auto master = env->keys().CardMasterKey(version);
    REQUIRE(master.ok());
    sim = sim::SimCard::Issue(*master, version, CardNumberToInt(card_no), Profile::adult, 0);
    auto runtime = cli::BillsRuntime::Open(*env);
    REQUIRE(runtime.ok());
    bills = std::move(*runtime);
    REQUIRE(bills->service().AddMandate(card_no, "WATER", "福田区深南大道 1 号").ok());
    // At import the purse is empty: the bill stays payable (insufficient_funds).
    std::string file = "bill_id,utility,account_no,card_no,period,amount,due_date\n" +
                       fmt::format("W0001,WATER,福田区深南大道 1 号,{},2018-08,38.20,2018-09-20\n",
                                   card_no);
    auto imported = bills->service().ImportBills(file, BillImportOptions{});
    REQUIRE(imported.ok());
    REQUIRE(imported->bills_paid_now == 0);
  }

  terminals::BillPaymentRequest Ask(std::string bill_id, int64_t amount_fen) {
    terminals::BillPaymentRequest request;
    request.request_id = ++requests;
    request.card_no = CardNumberToInt(card_no);
    request.bill_id = std::move(bill_id);
    request.amount_fen = amount_fen;
    Bytes signed_bytes = terminals::CardProofInput(terminals::OnlineRequest(request));
    crypto::Mac16 proof = crypto::AesCmac(sim->key()).Compute(signed_bytes);
    std::copy_n(proof.begin(), request.card_proof.size(), request.card_proof.begin());
    return request;
  }

  terminals::BillPaymentResponse Pay(const terminals::BillPaymentRequest& request) {
    cli::KeyFileCardProofVerifier verifier(env->keys());
    terminals::TerminalIdentity terminal{"K1", "KIOSK", 1, "test"};
    return cli::AnswerBillPayment(bills->service(), verifier, terminal, request);
  }

  int64_t Purse() {
    auto account = env->ledger().LookupAccount(AccountIdFor(AccountKind::card_purse,
                                                            CardNumberToInt(card_no)));
    REQUIRE(account.ok());
    return account->balance_fen();
  }

  testing::CliSandbox box{CITYCARD_BIN};
  std::unique_ptr<cli::Environment> env;
  std::unique_ptr<cli::BillsRuntime> bills;
  Bytes kiosk_key;
  std::string card_no;
  std::optional<sim::SimCard> sim;
  uint64_t requests = 0;
};

}  // namespace

TEST_CASE("A kiosk pays a kept bill once, from the purse, after the card proves it is there",
          "[tools][bills]") {
  Kiosk k;
  CHECK(k.Pay(k.Ask("W0001", 3'820)).code == ResultCode::insufficient_funds);
  REQUIRE(k.env->card_office().Topup(k.card_no, 10'000, "counter-1").ok());

  terminals::BillPaymentRequest forged = k.Ask("W0001", 3'820);
  forged.card_proof[0] ^= 1;
  CHECK(k.Pay(forged).code == ResultCode::bad_card_proof);
  CHECK(k.Pay(k.Ask("W0001", 3'000)).code == ResultCode::amount_mismatch);
  CHECK(k.Pay(k.Ask("W9999", 3'820)).code == ResultCode::bill_not_found);
  CHECK(k.Purse() == 10'000);

  terminals::BillPaymentResponse paid = k.Pay(k.Ask("W0001", 3'820));
  CHECK(paid.code == ResultCode::ok);
  CHECK(paid.amount_paid_fen == 3'820);
  CHECK(paid.balance_after_fen == 6'180);
  CHECK(paid.transfer_id.size() == 32);
  CHECK(k.Purse() == 6'180);

  terminals::BillPaymentResponse again = k.Pay(k.Ask("W0001", 3'820));
  CHECK(again.code == ResultCode::bill_already_paid);
  CHECK(again.amount_paid_fen == 0);
  CHECK(again.transfer_id == paid.transfer_id);
  CHECK(k.Purse() == 6'180);
  auto shown = k.bills->service().ShowBill("W0001");
  REQUIRE(shown.ok());
  CHECK(shown->front().paid_by == "kiosk:K1");
}

TEST_CASE("A bill payment travels through the protocol to the serve's fallback",
          "[tools][bills]") {
  Kiosk k;
  REQUIRE(k.env->card_office().Topup(k.card_no, 5'000, "counter-1").ok());
  cli::KeyFileCardProofVerifier verifier(k.env->keys());
  server::IngestServerOptions options;
  options.listen.push_back(server::ListenAddress{});
  options.backend.online_fallback = cli::WithBillPayments(
      k.bills->service(), verifier,
      [](const terminals::TerminalIdentity&, const terminals::OnlineRequest& request) {
        return terminals::RefusalFor(request, ResultCode::unsupported_request);
      });
  auto started = server::StartIngestServer(k.env->database(), k.env->ledger(), k.env->registry(),
                                           k.env->keys(), k.env->digester(), k.env->clock(),
                                           std::move(options));
  REQUIRE(started.ok());
  terminals::ClientOptions client_options;
  client_options.terminal_id = "K1";
  client_options.terminal_key = k.kiosk_key;
  client_options.core_public_key = k.env->keys().CoreSigner().PublicKey();
  auto client = terminals::TerminalClient::ConnectTcp("127.0.0.1", (*started)->ports()[0],
                                                      client_options);
  REQUIRE(client.ok());
  REQUIRE((*client)->Handshake().ok());
  auto answer = (*client)->SendOnline(k.Ask("W0001", 3'820));
  REQUIRE(answer.ok());
  const auto* response = std::get_if<terminals::BillPaymentResponse>(&*answer);
  REQUIRE(response != nullptr);
  CHECK(response->code == ResultCode::ok);
  CHECK(response->balance_after_fen == 1'180);
  (*client)->Close();
  (*started)->Stop();
  CHECK(k.Purse() == 1'180);
}

}  // namespace citycard
