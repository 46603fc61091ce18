// Health and social security at the hospital: identity checks and medical settlement, the
// service over the registry (core/registry.h), the card office (core/card_office.h), the
// ledger (core/ledger.h) and HealthStore, the storage interface that
// db/sqlite_health_store.h implements over SQLite (tests use an in-memory fake). The pure
// rules are core/medical.h (the rules file, the split) and core/identity_purpose.h (what a
// check may disclose); the voucher layout, the transfers and the commands are described in
// docs/medical.md, which this header's contracts follow.
//
// Identity check: the card's proof is verified (when the reader sent one), the card and its
// holder are looked up, and the answer says whether the card is valid and, filtered by the
// purpose, which schemes and groups the holder has, as the registry holds them at the moment of
// the check. The plain national id is never part of an answer nor of the record. Every check,
// whatever its outcome, is recorded (terminal, time, purpose, outcome, what was disclosed).
//
// Medical settlement: a bill is split (SplitBill, or CheckProvidedSplit for a split the
// hospital computed) and booked as ONE linked group of ledger transfers into the hospital's
// operator payable, all or nothing, in the same storage transaction as the settlement's row and
// the holder's new year-to-date figures. The answer is a voucher signed by the core. A
// settlement is reversed (refunded) at most once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/card_office.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/identity_purpose.h"
#include "core/ledger.h"
#include "core/medical.h"
#include "core/profile.h"
#include "core/registry.h"
#include "core/settlement.h"
#include "core/status.h"

namespace citycard {

// ---- Constants ---------------------------------------------------------------------------

// Transfer codes of medical settlement (Transfer::code), in a range of their own (64-79) so
// that they cannot meet the codes of core/account_plan.h (1-47) or of settlement (48-63).
// Every one credits or debits the hospital's operator payable, so settlement sees what the
// funds and the holders paid each hospital by code.
inline constexpr uint16_t kTransferCodeMedicalFund = 64;        // medical fund -> payable
inline constexpr uint16_t kTransferCodeMedicalAssistance = 65;  // assistance fund -> payable
inline constexpr uint16_t kTransferCodeMedicalAccount = 66;     // medical account -> payable
inline constexpr uint16_t kTransferCodeMedicalPurse = 67;       // card purse -> payable
// A reversal moves each part back, payable -> where it came from, with the part's code plus
// this offset (72 fund, 73 assistance, 74 medical account, 75 purse).
inline constexpr uint16_t kTransferCodeMedicalReversalOffset = 8;

// Domains of the derived transfer ids (core/account_plan.h DeriveTransferId). The key is
// "<part>/<hospital id>/<bill id>", part one of fund, assistance, account, purse: a bill of a
// hospital can be booked once and reversed once, whatever retries happen.
inline constexpr std::string_view kMedicalTransferIdDomain = "citycard.medical";
inline constexpr std::string_view kMedicalReversalIdDomain = "citycard.medical.reversal";

// A hospital's bill id: 1 to 32 printable ASCII characters (0x21-0x7E), as the protocol's
// bill_reference field carries it (docs/protocol.md).
inline constexpr size_t kMedicalBillIdBytesMax = 32;
// The terminal id recorded for checks and settlements made at a card-office counter through
// the CLI (terminal ids are never "counter:"-prefixed, so it cannot meet a real one).
inline constexpr std::string_view kCounterTerminalId = "counter:cli";
// The most identity checks one audit listing returns.
inline constexpr size_t kIdentityCheckListMax = 10'000;
// A card's proof of presence (docs/protocol.md "Card proofs"): 8 bytes of AES-CMAC.
inline constexpr size_t kCardPresenceProofBytes = 8;

// The voucher (docs/medical.md "Voucher"): magic, layout version, kinds, sizes.
inline constexpr std::array<uint8_t, 4> kVoucherMagic = {'C', 'C', 'M', 'V'};
inline constexpr uint8_t kVoucherLayoutVersion = 1;
inline constexpr size_t kVoucherSignatureBytes = 64;  // Ed25519
// The largest voucher: fixed fields, three texts of at most 32, 16 and 64 bytes, signature.
// magic, version, kind, scheme, category, provided; card number, time; eight amounts; three
// text lengths.
inline constexpr size_t kVoucherFixedBytes = 4 + 5 * 1 + 2 * 8 + 8 * 8 + 3 * 1;
static_assert(kVoucherFixedBytes == 92);
inline constexpr size_t kMedicalVoucherBytesMax =
    kVoucherFixedBytes + kMedicalBillIdBytesMax + kRegistryIdBytesMax +
    kMedicalRulesVersionBytesMax + kVoucherSignatureBytes;
static_assert(kMedicalVoucherBytesMax <= 2048, "a voucher must fit the protocol's 2048 bytes");

enum class VoucherKind : uint8_t { settlement = 1, reversal = 2 };

// ---- What core needs from crypto ---------------------------------------------------------

// Checks a card's proof of presence: the first 8 bytes of AES-128-CMAC under the card's
// diversified key over `signed_bytes`. tools/ implements it with the key file; tests fake it.
class CardProofVerifier {
 public:
  virtual ~CardProofVerifier() = default;
  // True when `proof` is the card's proof of `signed_bytes`. Never fails: a card number the
  // issuer cannot derive a key for, or a proof of the wrong size, is simply false.
  virtual bool Verify(std::string_view card_no, ByteView signed_bytes, ByteView proof) = 0;
};

// Signs vouchers with the core's Ed25519 key (crypto/signer.h, KeyFile::CoreSigner()).
class VoucherSigner {
 public:
  virtual ~VoucherSigner() = default;
  // The 64-byte signature of `message`.
  virtual std::array<uint8_t, kVoucherSignatureBytes> Sign(ByteView message) const = 0;
};

// What a reader sends to prove that the card is present: the bytes the card signed (the
// request body up to its card_proof field) and the proof.
struct CardPresence {
  Bytes signed_bytes;
  std::array<uint8_t, kCardPresenceProofBytes> proof{};
};

// ---- Identity checks ---------------------------------------------------------------------

// The outcome of one check. Stored numbers (the audit trail keeps them); never renumber.
enum class IdentityOutcome : uint8_t {
  valid = 1,           // the card is active: the filtered schemes and groups are answered
  card_not_valid = 2,  // blocked, replaced, closed or expired: the status only, nothing disclosed
  card_not_found = 3,  // no such card
  bad_card_proof = 4,  // the card's proof did not verify: nothing looked up, nothing disclosed
};
// "valid", "card_not_valid", "card_not_found", "bad_card_proof".
std::string_view IdentityOutcomeName(IdentityOutcome outcome);

struct IdentityQuery {
  std::string card_no;   // 16 digits
  IdentityPurpose purpose = IdentityPurpose::hospital;
  std::string terminal_id = std::string(kCounterTerminalId);
  std::string operator_id;  // the terminal's operator; empty at a counter
  std::optional<CardPresence> presence;  // verified when given
};

// One recorded check, as the audit trail lists it.
struct IdentityCheckRecord {
  int64_t id = 0;       // assigned by the store, ascending
  int64_t time_ms = 0;  // the core's clock
  std::string terminal_id;
  std::string operator_id;
  std::string card_no;
  IdentityPurpose purpose = IdentityPurpose::hospital;
  IdentityOutcome outcome = IdentityOutcome::valid;
  std::optional<CardStatus> card_status;  // when the card was found
  std::optional<Profile> profile;         // when the card was found
  DisclosedFields disclosed;              // empty unless valid

  friend bool operator==(const IdentityCheckRecord&, const IdentityCheckRecord&) = default;
};

struct IdentityCheckFilter {
  std::optional<std::string> card_no;
  std::optional<std::string> terminal_id;
  size_t limit = kIdentityCheckListMax;  // capped at kIdentityCheckListMax
};

// ---- Medical settlement ------------------------------------------------------------------

struct MedicalSettleRequest {
  std::string card_no;
  std::string hospital_id;  // an operator of kind hospital
  std::string bill_id;      // the hospital's id, unique per hospital
  Scheme scheme = Scheme::medical;
  MedicalCategory category = MedicalCategory::outpatient;
  int64_t amount_fen = 0;
  std::optional<ProvidedSplit> provided;  // the hospital's own split, checked and booked
  std::string terminal_id = std::string(kCounterTerminalId);
  std::optional<CardPresence> presence;   // verified when given
};

// A settlement as kept, and what its voucher says.
struct MedicalSettlementRecord {
  std::string hospital_id;
  std::string bill_id;
  std::string card_no;
  int64_t holder_number = 0;
  Scheme scheme = Scheme::medical;
  MedicalCategory category = MedicalCategory::outpatient;
  bool provided = false;      // the split was the hospital's
  std::string rules_version;  // the rules in force ("" for a provided split without rules)
  std::string terminal_id;
  int64_t settled_ms = 0;
  int64_t amount_fen = 0;
  int64_t deductible_fen = 0;
  int64_t fund_fen = 0;
  int64_t assistance_fen = 0;
  int64_t medical_account_fen = 0;
  int64_t purse_fen = 0;
  int64_t medical_account_after_fen = 0;  // posted balances right after the booking
  int64_t purse_after_fen = 0;
  Bytes voucher;               // signed (docs/medical.md "Voucher")
  int64_t reversed_ms = 0;     // 0 while not reversed
  Bytes reversal_voucher;      // empty while not reversed

  bool reversed() const { return reversed_ms != 0; }
  friend bool operator==(const MedicalSettlementRecord&, const MedicalSettlementRecord&) = default;
};

struct MedicalSettleResult {
  MedicalSettlementRecord record;
  bool repeated = false;  // the same bill was settled before: nothing was booked now
};

// The rules file as loaded (docs/medical.md "The scheme rules file").
struct StoredMedicalRules {
  std::string version;
  std::string text;  // the file as loaded
  int64_t loaded_ms = 0;
};

// ---- The voucher -------------------------------------------------------------------------

// The fields a voucher carries, in layout order (docs/medical.md "Voucher").
struct VoucherFields {
  VoucherKind kind = VoucherKind::settlement;
  std::string bill_id;
  std::string hospital_id;
  uint64_t card_no = 0;
  Scheme scheme = Scheme::medical;
  MedicalCategory category = MedicalCategory::outpatient;
  bool provided = false;
  int64_t time_ms = 0;  // settled (or reversed) at
  int64_t amount_fen = 0;
  int64_t deductible_fen = 0;
  int64_t fund_fen = 0;
  int64_t assistance_fen = 0;
  int64_t medical_account_fen = 0;
  int64_t purse_fen = 0;
  int64_t medical_account_after_fen = 0;
  int64_t purse_after_fen = 0;
  std::string rules_version;

  friend bool operator==(const VoucherFields&, const VoucherFields&) = default;
};

// The canonical bytes a voucher's signature covers. The texts must respect their limits
// (bill id 1..32, hospital 1..16, rules version 0..64 bytes): a programmer error otherwise.
Bytes VoucherSignedBytes(const VoucherFields& fields);

struct ParsedVoucher {
  VoucherFields fields;
  Bytes signed_bytes;  // what the signature covers
  std::array<uint8_t, kVoucherSignatureBytes> signature{};
};
// Reads a voucher (signed bytes then signature). Kind::bad_input "invalid_voucher" when the
// bytes are not exactly one voucher of a known layout. Does not verify the signature (core
// has no Ed25519): crypto::VerifyEd25519(core public key, signed_bytes, signature) does.
Result<ParsedVoucher> ParseVoucher(ByteView voucher);

// ---- Storage -----------------------------------------------------------------------------

// The health component's storage. Every method may fail with Kind::internal (the store's
// I/O); the other failures are named per method. In the SQLite store it shares the
// connection of the registry and the ledger, so RegistryStore::Begin/Commit is also its
// transaction. Not thread-safe.
class HealthStore {
 public:
  virtual ~HealthStore() = default;

  // Appends a check and returns its id (1, 2, 3, …). record.id is ignored.
  virtual Result<int64_t> AppendIdentityCheck(const IdentityCheckRecord& record) = 0;
  // The checks matching the filter, oldest first, at most filter.limit (capped).
  virtual Result<std::vector<IdentityCheckRecord>> ListIdentityChecks(
      const IdentityCheckFilter& filter) = 0;

  // The holder's year-to-date figures, nullopt before their first settlement.
  virtual Result<std::optional<MedicalYearToDate>> FindYearToDate(int64_t holder_number) = 0;
  virtual Status PutYearToDate(int64_t holder_number, const MedicalYearToDate& figures) = 0;

  // Settlements, keyed by (hospital, bill id). Insert: Kind::refused "settlement_exists".
  // FindByBill: every hospital's settlement of that bill id (ascending hospital).
  virtual Result<std::optional<MedicalSettlementRecord>> FindSettlement(
      std::string_view hospital_id, std::string_view bill_id) = 0;
  virtual Result<std::vector<MedicalSettlementRecord>> FindSettlementsByBill(
      std::string_view bill_id) = 0;
  virtual Status InsertSettlement(const MedicalSettlementRecord& record) = 0;
  // Records the reversal. Kind::not_found "settlement_not_found"; Kind::refused
  // "already_reversed" when it was reversed before (the first reversal stands).
  virtual Status MarkReversed(std::string_view hospital_id, std::string_view bill_id,
                              int64_t reversed_ms, const Bytes& reversal_voucher) = 0;

  // The rules. Save keeps a loaded file; loading the same version with the same text again
  // is accepted and changes nothing; another text under a version kept before is
  // Kind::refused "rules_version_exists". Current: the last version saved.
  virtual Status SaveRules(const StoredMedicalRules& rules) = 0;
  virtual Result<std::optional<StoredMedicalRules>> CurrentRules() = 0;

  // For settlement's report (core/settlement.h OperatorServiceTotals, ascending operator id),
  // per hospital: the bills settled in [from_ms, to_ms), medical_fund_fen = fund + assistance,
  // medical_holder_fen = medical account + purse. Reversals are not subtracted (the report's
  // figures cannot go negative); they are in the ledger under codes 72-75.
  virtual Result<std::vector<OperatorServiceTotals>> MedicalTotals(int64_t from_ms,
                                                                   int64_t to_ms) = 0;
};

// ---- The service -------------------------------------------------------------------------

class HealthService {
 public:
  // Everything passed must outlive the service. `store`, `registry` and `ledger` share one
  // storage transaction (RegistryStore::Begin); `office` works over the same registry.
  HealthService(HealthStore& store, RegistryStore& registry, Ledger& ledger, CardOffice& office,
                CardProofVerifier& verifier, const VoucherSigner& signer,
                const Digester& digester, const Clock& clock);

  // Checks and keeps a rules file. Failures: ParseMedicalRules's ("invalid_medical_rules",
  // Kind::bad_input); the store's ("rules_version_exists").
  Result<StoredMedicalRules> LoadRules(std::string_view json_text);

  // Answers an identity check and records it, whatever the outcome (IdentityOutcome). The
  // record is the answer. Failures (then nothing is recorded): Kind::bad_input
  // "invalid_card_no" (not a card number: nothing to record), the store's.
  Result<IdentityCheckRecord> CheckIdentity(const IdentityQuery& query);

  // The audit trail of checks.
  Result<std::vector<IdentityCheckRecord>> ListChecks(const IdentityCheckFilter& filter);

  // Settles a bill. The same (hospital, bill) with the same card, scheme, category and amount
  // again returns the kept settlement (repeated) and books nothing. Refusals (nothing booked):
  // Kind::bad_input "invalid_card_no", "invalid_bill_id", "invalid_amount", "invalid_split",
  // "bad_card_proof"; Kind::not_found "card_not_found", "operator_not_found",
  // "holder_not_found"; Kind::refused "card_blocked", "card_replaced", "card_closed",
  // "card_expired", "not_a_hospital", "no_medical_rules" (none loaded; a provided split
  // needs them too, for the assistance groups),
  // "bill_conflict" (the bill was settled with other content), "not_insured",
  // "not_covered", "medical_year_closed", "insufficient_funds", "medical_booking_failed"
  // (the ledger declined the group, e.g. a concurrent debit; the message names its outcome).
  Result<MedicalSettleResult> Settle(const MedicalSettleRequest& request);

  // Reverses (refunds) a settlement once: every part moves back from the hospital's payable,
  // as one linked group, and the holder's year-to-date figures are reduced by its deductible,
  // fund and assistance when the settlement is of the figures' year. `hospital_id` may be
  // empty when one hospital alone has the bill id. Failures: Kind::not_found
  // "settlement_not_found"; Kind::refused "ambiguous_bill_id" (several hospitals: name one),
  // "already_reversed", "medical_booking_failed".
  Result<MedicalSettlementRecord> Reverse(std::string_view hospital_id, std::string_view bill_id);

  // The kept settlement of (hospital, bill); hospital may be empty as for Reverse.
  Result<MedicalSettlementRecord> FindSettlement(std::string_view hospital_id,
                                                 std::string_view bill_id);

 private:
  Result<MedicalSettlementRecord> LocateSettlement(std::string_view hospital_id,
                                                   std::string_view bill_id);
  Result<Operator> LoadHospital(std::string_view hospital_id);
  Status BookSettlement(const Operator& hospital, const MedicalSplit& split,
                        MedicalSettlementRecord* record);
  Bytes SignVoucher(const VoucherFields& fields) const;

  HealthStore& store_;
  RegistryStore& registry_;
  Ledger& ledger_;
  CardOffice& office_;
  CardProofVerifier& verifier_;
  const VoucherSigner& signer_;
  const Digester& digester_;
  const Clock& clock_;
};

// Ok for a bill id of 1..kMedicalBillIdBytesMax printable ASCII characters; Kind::bad_input
// "invalid_bill_id" otherwise.
Status ValidateMedicalBillId(std::string_view bill_id);

}  // namespace citycard
