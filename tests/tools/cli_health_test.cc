// The health commands through the citycard binary: rules load, identity check with the purpose
// filter, the audit trail, medical settle (exact parts, voucher signed by the core's key),
// a refusal that books nothing, a provided split, reversal exactly once.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/bytes.h"
#include "core/health.h"
#include "core/card_number.h"
#include "crypto/card_keys.h"
#include "crypto/mac.h"
#include "crypto/signer.h"
#include "terminals/messages.h"
#include "tools/cli/environment.h"
#include "tools/cli/health_wiring.h"

namespace {

namespace fs = std::filesystem;

struct Run {
  int exit_code = -1;
  std::string out;
  nlohmann::json json;
};

class Installation {
 public:
  Installation() {
    dir_ = fs::temp_directory_path() / ("citycard_cli_health_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // 2025-03-01 10:00:00 Asia/Shanghai for every command.
    REQUIRE(Citycard("init").exit_code == 0);
  }
  ~Installation() { fs::remove_all(dir_); }

  Run Citycard(const std::string& args) {
    std::string command = "CITYCARD_NOW='2025-03-01 10:00:00' '" + std::string(CITYCARD_BIN) +
                          "' --json --db '" + (dir_ / "c.db").string() + "' --keys '" +
                          (dir_ / "c.keys").string() + "' " + args + " 2>/dev/null";
    Run run;
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::array<char, 4096> buffer{};
    size_t n = 0;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) run.out.append(buffer.data(), n);
    int status = ::pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.json = nlohmann::json::parse(run.out, nullptr, false);
    return run;
  }

  citycard::cli::GlobalOptions Options() const {
    citycard::cli::GlobalOptions options;
    options.db_path = (dir_ / "c.db").string();
    options.keys_path = (dir_ / "c.keys").string();
    return options;
  }

  std::string Write(const std::string& name, const std::string& text) {
    fs::path path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

 private:
  fs::path dir_;
};

constexpr char kRegistry[] =
    "national_id,name,schemes,groups,medical_account\n"
    "321281199001011234,张三,pension|medical,,50.00\n";

constexpr char kRules[] = R"({
  "version": "cli-1",
  "schemes": {
    "medical": {
      "outpatient": { "deductible": "100.00", "rate_bp": 5000, "annual_cap": "300.00" },
      "inpatient": { "deductible": "0.00", "rate_bp": 8000, "annual_cap": "1000.00" }
    }
  },
  "assistance": { "groups": ["low_income"], "rate_bp": 5000, "annual_cap": "200.00" }
})";

// An installation with one holder and card (¥500 in the purse, ¥50 in the medical account),
// a hospital and the rules.
std::string Prepare(Installation& c) {
  REQUIRE(c.Citycard("holder import '" + c.Write("reg.csv", kRegistry) + "'").exit_code == 0);
  Run issued = c.Citycard("card issue --holder-id 321281199001011234 --name 张三");
  REQUIRE(issued.exit_code == 0);
  std::string card_no = issued.json["card_no"];
  REQUIRE(c.Citycard("card topup " + card_no + " 500").exit_code == 0);
  REQUIRE(c.Citycard("operator add hosp-1 --name Hospital --kind hospital").exit_code == 0);
  Run loaded = c.Citycard("medical rules load '" + c.Write("rules.json", kRules) + "'");
  REQUIRE(loaded.exit_code == 0);
  REQUIRE(loaded.json["version"] == "cli-1");
  return card_no;
}

int64_t Purse(Installation& c, const std::string& card_no) {
  Run shown = c.Citycard("card show " + card_no);
  REQUIRE(shown.exit_code == 0);
  return shown.json["balance_fen"].get<int64_t>();
}

}  // namespace

TEST_CASE("citycard identity check answers by purpose and audit identity lists every check",
          "[tools][cli][health]") {
  Installation c;
  std::string card_no = Prepare(c);

  Run pharmacy = c.Citycard("identity check " + card_no + " --purpose pharmacy");
  REQUIRE(pharmacy.exit_code == 0);
  REQUIRE(pharmacy.json["valid"] == true);
  REQUIRE(pharmacy.json["schemes"] == nlohmann::json{{"medical", true}});
  REQUIRE_FALSE(pharmacy.json["schemes"].contains("pension"));
  REQUIRE(pharmacy.out.find("321281199001011234") == std::string::npos);

  Run pension = c.Citycard("identity check " + card_no + " --purpose pension_office");
  REQUIRE(pension.json["schemes"] == nlohmann::json{{"pension", true}});

  Run unknown = c.Citycard("identity check 6200000000000018 --purpose hospital");
  REQUIRE((unknown.exit_code == 3 || unknown.exit_code == 5));
  REQUIRE(c.Citycard("identity check " + card_no + " --purpose dentist").exit_code == 2);

  Run trail = c.Citycard("audit identity --card " + card_no);
  REQUIRE(trail.exit_code == 0);
  REQUIRE(trail.json["checks"].size() == 2);
  REQUIRE(trail.json["checks"][0]["purpose"] == "pharmacy");
  REQUIRE(trail.json["checks"][0]["terminal"] == std::string(citycard::kCounterTerminalId));
  REQUIRE(trail.json["checks"][0]["time"] == "2025-03-01 10:00:00");
  REQUIRE(trail.json["checks"][1]["purpose"] == "pension_office");
  Run by_terminal = c.Citycard("audit identity --terminal counter:cli");
  REQUIRE(by_terminal.json["checks"].size() >= 2);
  REQUIRE(c.Citycard("audit identity --terminal nowhere").json["checks"].empty());
}

TEST_CASE("citycard medical settle books the split and signs the voucher with the core key",
          "[tools][cli][health]") {
  Installation c;
  std::string card_no = Prepare(c);
  Run settled = c.Citycard("medical settle " + card_no +
                           " --hospital hosp-1 --bill-id B-1 --category outpatient --amount 150");
  REQUIRE(settled.exit_code == 0);
  REQUIRE(settled.json["deductible_fen"] == 10000);
  REQUIRE(settled.json["fund_fen"] == 2500);
  REQUIRE(settled.json["medical_account_fen"] == 5000);
  REQUIRE(settled.json["purse_fen"] == 7500);
  REQUIRE(settled.json["purse_after"] == "425.00");
  REQUIRE(Purse(c, card_no) == 42500);

  citycard::Bytes voucher;
  REQUIRE(citycard::FromHex(settled.json["voucher"].get<std::string>(), &voucher));
  auto parsed = citycard::ParseVoucher(voucher);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->fields.bill_id == "B-1");
  citycard::Bytes public_key;
  REQUIRE(citycard::FromHex(c.Citycard("keys public").json["public_key"].get<std::string>(),
                            &public_key));
  REQUIRE(citycard::crypto::VerifyEd25519(public_key, parsed->signed_bytes, parsed->signature));

  // The same bill again books nothing more.
  Run again = c.Citycard("medical settle " + card_no +
                         " --hospital hosp-1 --bill-id B-1 --category outpatient --amount 150");
  REQUIRE(again.exit_code == 0);
  REQUIRE(again.json["repeated"] == true);
  REQUIRE(Purse(c, card_no) == 42500);

  // Inpatient ¥5,000: ¥1,000 left to the holder, who has ¥425: refused, nothing booked.
  Run refused = c.Citycard("medical settle " + card_no +
                           " --hospital hosp-1 --bill-id B-2 --category inpatient --amount 5000");
  REQUIRE(refused.exit_code == 4);
  REQUIRE(refused.json["error"]["code"] == "insufficient_funds");
  REQUIRE(Purse(c, card_no) == 42500);
  REQUIRE(c.Citycard("medical show B-2").exit_code == 3);
}

TEST_CASE("citycard medical settle books a provided split and reverse refunds it once",
          "[tools][cli][health]") {
  Installation c;
  std::string card_no = Prepare(c);
  Run wrong = c.Citycard("medical settle " + card_no +
                         " --hospital hosp-1 --bill-id P-1 --category inpatient --amount 100"
                         " --split-fund 60 --split-purse 30");
  REQUIRE(wrong.exit_code == 5);
  REQUIRE(wrong.json["error"]["code"] == "invalid_split");
  Run provided = c.Citycard("medical settle " + card_no +
                            " --hospital hosp-1 --bill-id P-1 --category inpatient --amount 100"
                            " --split-fund 60 --split-account 40");
  REQUIRE(provided.exit_code == 0);
  REQUIRE(provided.json["provided_split"] == true);
  REQUIRE(provided.json["medical_account_after_fen"] == 1000);

  Run reversed = c.Citycard("medical reverse P-1");
  REQUIRE(reversed.exit_code == 0);
  REQUIRE(reversed.json["reversed"] == true);
  REQUIRE(reversed.json.contains("reversal_voucher"));
  Run twice = c.Citycard("medical reverse P-1 --hospital hosp-1");
  REQUIRE(twice.exit_code == 4);
  REQUIRE(twice.json["error"]["code"] == "already_reversed");
  REQUIRE(c.Citycard("audit verify").json["ok"] == true);
}

namespace {

// The card's proof of a request: AES-CMAC under the card's key over the body before the proof.
template <typename Request>
void ProveCard(const citycard::crypto::KeyFile& keys, Request* request) {
  citycard::Bytes body = request->Encode();
  body.resize(body.size() - citycard::terminals::kCardProofBytes);
  auto master = keys.CardMasterKey(keys.CurrentCardKeyVersion());
  REQUIRE(master.ok());
  citycard::crypto::Mac16 card_key = citycard::crypto::DeriveCardKey(*master, request->card_no);
  citycard::crypto::Mac16 mac = citycard::crypto::AesCmac(card_key).Compute(body);
  std::copy_n(mac.begin(), request->card_proof.size(), request->card_proof.begin());
}

}  // namespace

TEST_CASE("Hospital readers' online identity checks and settlements are answered by the core",
          "[tools][cli][health]") {
  using namespace citycard;
  using terminals::ResultCode;
  Installation c;
  std::string card_no = Prepare(c);
  ::setenv("CITYCARD_NOW", "2025-03-01 10:00:00", 1);
  auto env = cli::Environment::Open(c.Options());
  REQUIRE(env.ok());
  auto runtime = cli::HealthRuntime::Open(**env);
  REQUIRE(runtime.ok());
  auto answer = cli::HealthOnlineFallback((*runtime)->service());
  terminals::TerminalIdentity reader{"hosp-t1", "hosp-1", 1, "tcp:test"};

  terminals::IdentityCheckRequest check;
  check.request_id = 7;
  check.card_no = CardNumberToInt(card_no);
  check.purpose = IdentityPurpose::pharmacy;
  check.time_s = 1'740'794'400;
  ProveCard((*env)->keys(), &check);
  auto response = std::get<terminals::IdentityCheckResponse>(answer(reader, check));
  REQUIRE(response.request_id == 7);
  REQUIRE(response.code == ResultCode::ok);
  REQUIRE(response.card_status == 1);
  REQUIRE(response.schemes_asked == terminals::kSchemeMedical);
  REQUIRE(response.schemes == terminals::kSchemeMedical);  // no pension bit for a pharmacy
  REQUIRE(response.groups_asked == (terminals::kGroupLowIncome | terminals::kGroupSocialAssistance));
  REQUIRE(response.groups == 0);

  terminals::IdentityCheckRequest forged = check;
  forged.request_id = 8;
  forged.card_proof[0] ^= 1;  // the proof no longer covers request 8 either
  auto refused = std::get<terminals::IdentityCheckResponse>(answer(reader, forged));
  REQUIRE(refused.code == ResultCode::bad_card_proof);
  REQUIRE(refused.schemes_asked == 0);

  terminals::MedicalSettlementRequest bill;
  bill.request_id = 9;
  bill.card_no = CardNumberToInt(card_no);
  bill.category = MedicalCategory::outpatient;
  bill.bill_reference = "ON-1";
  bill.total_fen = 15000;
  bill.time_s = 1'740'794'400;
  ProveCard((*env)->keys(), &bill);
  terminals::MedicalSettlementRequest tampered = bill;
  tampered.total_fen = 1;  // the proof covers the amount
  auto no = std::get<terminals::MedicalSettlementResponse>(answer(reader, tampered));
  REQUIRE(no.code == ResultCode::bad_card_proof);
  auto settled = std::get<terminals::MedicalSettlementResponse>(answer(reader, bill));
  REQUIRE(settled.code == ResultCode::ok);
  REQUIRE(settled.fund_fen == 2500);
  REQUIRE(settled.medical_account_fen == 5000);
  REQUIRE(settled.purse_fen == 7500);
  auto voucher = ParseVoucher(settled.voucher);
  REQUIRE(voucher.ok());
  auto key = (*env)->keys().CoreSigner().PublicKey();
  REQUIRE(crypto::VerifyEd25519(key, voucher->signed_bytes, voucher->signature));

  terminals::TerminalIdentity bus{"bus-t1", "bus-9", 1, "tcp:test"};
  bill.request_id = 10;
  bill.bill_reference = "ON-2";
  ProveCard((*env)->keys(), &bill);
  REQUIRE(std::get<terminals::MedicalSettlementResponse>(answer(bus, bill)).code ==
          ResultCode::unsupported_request);

  auto trail = (*runtime)->service().ListChecks({});
  REQUIRE(trail->size() == 2);
  REQUIRE((*trail)[1].terminal_id == "hosp-t1");
  REQUIRE((*trail)[1].outcome == IdentityOutcome::bad_card_proof);
  ::unsetenv("CITYCARD_NOW");
}
