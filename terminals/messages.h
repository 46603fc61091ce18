// The messages of the terminal protocol: their types and their byte layouts, big-endian and
// fixed-size wherever possible (docs/protocol.md, "Messages", which is the normative text).
// Pure: no I/O, no crypto. The proofs, MACs and signatures these messages carry are
// computed in terminals/secure_channel.h and by the server and client.
//
// Every message is a struct with
//   static constexpr FrameType kType;
//   Bytes Encode() const;                  // the body; the struct must respect its limits
//   static Result<T> Decode(ByteView body);
// Decode refuses anything that is not exactly one well-formed body with Kind::bad_input,
// code "malformed_message", and the message name and the reason in the text. Encode asserts
// on limits, which the code that fills a struct checks first (a programmer error otherwise).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/bytes.h"
#include "core/identity_purpose.h"
#include "core/medical.h"
#include "core/status.h"
#include "core/tap_record.h"
#include "terminals/codes.h"

namespace citycard::terminals {

// The frame type byte. Never renumber; new messages take new numbers.
enum class FrameType : uint8_t {
  hello = 0x01,
  challenge = 0x02,
  terminal_proof = 0x03,
  server_proof = 0x04,
  heartbeat = 0x10,
  heartbeat_ack = 0x11,
  batch_upload = 0x20,
  batch_ack = 0x21,
  denylist_request = 0x30,
  denylist_page = 0x31,
  document_request = 0x38,
  document_page = 0x39,
  topup_request = 0x40,
  topup_authorisation = 0x41,
  topup_confirmation = 0x42,
  topup_confirmation_result = 0x43,
  identity_check_request = 0x44,
  identity_check_response = 0x45,
  medical_settlement_request = 0x46,
  medical_settlement_response = 0x47,
  bill_payment_request = 0x48,
  bill_payment_response = 0x49,
  error = 0x7F,
};

std::string_view FrameTypeName(FrameType type);
// False for a byte that is no FrameType.
bool IsKnownFrameType(uint8_t type);

// Limits (docs/protocol.md, "Limits").
inline constexpr size_t kNonceBytes = 16;
inline constexpr size_t kProofBytes = 32;
inline constexpr size_t kRecordsPerBatchMax = 256;
inline constexpr size_t kDenylistEntriesPerPageMax = 4096;  // added + removed in one page
inline constexpr size_t kDocumentChunkBytesMax = 32768;
inline constexpr size_t kDocumentBytesMax = 16 * 1024 * 1024;
inline constexpr size_t kErrorTextBytesMax = 256;
inline constexpr size_t kCardProofBytes = 8;
inline constexpr size_t kHostMacBytes = 8;
inline constexpr size_t kReferenceBytes = 32;  // bill ids, medical references, transfer ids
inline constexpr size_t kVoucherBytesMax = 2048;
inline constexpr size_t kSignatureBytes = 64;
inline constexpr size_t kBatchDigestBytes = 32;  // SHA-256
inline constexpr uint16_t kPagesMax = 65535;

using Nonce = std::array<uint8_t, kNonceBytes>;
using Proof = std::array<uint8_t, kProofBytes>;
using CardProof = std::array<uint8_t, kCardProofBytes>;
using Signature = std::array<uint8_t, kSignatureBytes>;
using BatchDigest = std::array<uint8_t, kBatchDigestBytes>;

// ---- Handshake (plain frames: no sequence number, no MAC) ----

// Terminal -> server, first frame of a session.
struct Hello {
  static constexpr FrameType kType = FrameType::hello;
  std::string terminal_id;  // 1..kTerminalIdBytes printable ASCII, no spaces
  uint8_t key_version = 1;  // which of the terminal's keys it authenticates with
  Nonce terminal_nonce{};   // fresh random bytes
  Bytes Encode() const;
  static Result<Hello> Decode(ByteView body);
  bool operator==(const Hello&) const = default;
};

// Server -> terminal, answer to Hello.
struct Challenge {
  static constexpr FrameType kType = FrameType::challenge;
  Nonce server_nonce{};
  Bytes Encode() const;
  static Result<Challenge> Decode(ByteView body);
  bool operator==(const Challenge&) const = default;
};

// Terminal -> server: HMAC proving the terminal holds its key (secure_channel.h).
struct TerminalProof {
  static constexpr FrameType kType = FrameType::terminal_proof;
  Proof proof{};
  Bytes Encode() const;
  static Result<TerminalProof> Decode(ByteView body);
  bool operator==(const TerminalProof&) const = default;
};

// Server -> terminal: HMAC proving the server holds the terminal's key. After this frame
// both sides switch to secured frames.
struct ServerProof {
  static constexpr FrameType kType = FrameType::server_proof;
  Proof proof{};
  Bytes Encode() const;
  static Result<ServerProof> Decode(ByteView body);
  bool operator==(const ServerProof&) const = default;
};

// ---- Heartbeat ----

struct Versions {
  uint64_t denylist_version = 0;
  uint32_t fare_version = 0;
  uint32_t parameter_version = 0;
  bool operator==(const Versions&) const = default;
};

// Terminal -> server: what the terminal has.
struct Heartbeat {
  static constexpr FrameType kType = FrameType::heartbeat;
  int64_t terminal_time_ms = 0;  // the terminal's clock, Unix milliseconds
  Versions versions;             // the versions the terminal holds
  uint32_t stored_records = 0;   // records waiting for upload
  Bytes Encode() const;
  static Result<Heartbeat> Decode(ByteView body);
  bool operator==(const Heartbeat&) const = default;
};

// Server -> terminal: the server's time and the current versions.
struct HeartbeatAck {
  static constexpr FrameType kType = FrameType::heartbeat_ack;
  int64_t server_time_ms = 0;
  Versions versions;
  Bytes Encode() const;
  static Result<HeartbeatAck> Decode(ByteView body);
  bool operator==(const HeartbeatAck&) const = default;
};

// ---- Batch upload ----

// Terminal -> server: 1..kRecordsPerBatchMax tap records in the encoding of
// core/tap_record.h, kept as bytes so that one bad record does not spoil the others.
struct BatchUpload {
  static constexpr FrameType kType = FrameType::batch_upload;
  uint32_t batch_id = 0;  // the terminal's own number for the batch, echoed in the ack
  Bytes records;          // record_count() * kTapRecordBytes bytes

  static BatchUpload FromRecords(uint32_t batch_id, std::span<const TapRecord> records);
  size_t record_count() const { return records.size() / kTapRecordBytes; }
  ByteView record(size_t index) const;
  Bytes Encode() const;
  static Result<BatchUpload> Decode(ByteView body);
  bool operator==(const BatchUpload&) const = default;
};

// The byte string the core signs in a batch acknowledgement is this context followed by the
// acknowledgement's body up to (not including) the signature.
inline constexpr std::string_view kBatchAckSignatureContext = "citycard batch ack v1";

// Server -> terminal: one result per record, in upload order, signed by the core.
struct BatchAck {
  static constexpr FrameType kType = FrameType::batch_ack;
  std::string terminal_id;
  uint32_t batch_id = 0;
  BatchDigest batch_digest{};  // SHA-256 over the uploaded records' bytes, concatenated
  int64_t server_time_ms = 0;
  std::vector<ResultCode> results;  // 1..kRecordsPerBatchMax
  Signature signature{};

  // The bytes the signature covers (kBatchAckSignatureContext + body without signature).
  Bytes SignedBytes() const;
  Bytes Encode() const;
  static Result<BatchAck> Decode(ByteView body);
  bool operator==(const BatchAck&) const = default;
};

// ---- Denylist ----

struct DenylistRequest {
  static constexpr FrameType kType = FrameType::denylist_request;
  uint64_t known_version = 0;  // 0: the terminal has none
  Bytes Encode() const;
  static Result<DenylistRequest> Decode(ByteView body);
  bool operator==(const DenylistRequest&) const = default;
};

enum class DenylistKind : uint8_t { full = 1, delta = 2 };

// What the backend answers to a denylist request, before it is cut into pages.
// full: `added` is the whole list at to_version (from_version is 0, removed empty).
// delta: apply removed then added to the list at from_version to get the list at
// to_version. from_version == to_version with nothing in it means "up to date".
struct DenylistUpdate {
  DenylistKind kind = DenylistKind::delta;
  uint64_t from_version = 0;
  uint64_t to_version = 0;
  std::vector<uint64_t> added;    // card numbers
  std::vector<uint64_t> removed;  // card numbers
  bool operator==(const DenylistUpdate&) const = default;
};

// Server -> terminal, one or more in a row answering one DenylistRequest.
struct DenylistPage {
  static constexpr FrameType kType = FrameType::denylist_page;
  DenylistKind kind = DenylistKind::delta;
  uint16_t page = 0;        // 0-based
  uint16_t page_count = 1;  // >= 1
  uint64_t from_version = 0;
  uint64_t to_version = 0;
  std::vector<uint64_t> added;
  std::vector<uint64_t> removed;  // added.size() + removed.size() <= kDenylistEntriesPerPageMax
  Bytes Encode() const;
  static Result<DenylistPage> Decode(ByteView body);
  bool operator==(const DenylistPage&) const = default;
};

// Cuts an update into pages of at most kDenylistEntriesPerPageMax entries (removals first).
// An empty update is one empty page. Kind::bad_input "denylist_too_large" when more than
// kPagesMax pages would be needed, "invalid_denylist_update" for a full list with a
// from_version or removals.
Result<std::vector<DenylistPage>> PaginateDenylist(const DenylistUpdate& update);
// The inverse: checks that the pages are 0..n-1 of one update (same kind, versions and
// count) and joins them. Kind::bad_input "malformed_message" otherwise.
Result<DenylistUpdate> AssembleDenylist(std::span<const DenylistPage> pages);

// ---- Fare table and parameters: opaque JSON documents, versioned ----

enum class DocumentKind : uint8_t { fare_table = 1, parameters = 2 };

struct DocumentRequest {
  static constexpr FrameType kType = FrameType::document_request;
  DocumentKind kind = DocumentKind::fare_table;
  uint32_t known_version = 0;  // 0: the terminal has none
  Bytes Encode() const;
  static Result<DocumentRequest> Decode(ByteView body);
  bool operator==(const DocumentRequest&) const = default;
};

// What the backend answers. up_to_date: the terminal's known version is current and
// `content` is empty. version 0 with empty content: no such document exists yet.
struct Document {
  DocumentKind kind = DocumentKind::fare_table;
  uint32_t version = 0;
  bool up_to_date = false;
  Bytes content;  // at most kDocumentBytesMax
  bool operator==(const Document&) const = default;
};

enum class DocumentStatus : uint8_t { content = 1, up_to_date = 2 };

struct DocumentPage {
  static constexpr FrameType kType = FrameType::document_page;
  DocumentKind kind = DocumentKind::fare_table;
  DocumentStatus status = DocumentStatus::content;
  uint32_t version = 0;
  uint16_t page = 0;
  uint16_t page_count = 1;
  uint32_t total_bytes = 0;
  uint32_t offset = 0;  // page * kDocumentChunkBytesMax
  Bytes chunk;          // at most kDocumentChunkBytesMax
  Bytes Encode() const;
  static Result<DocumentPage> Decode(ByteView body);
  bool operator==(const DocumentPage&) const = default;
};

// Kind::bad_input "document_too_large" above kDocumentBytesMax.
Result<std::vector<DocumentPage>> PaginateDocument(const Document& document);
Result<Document> AssembleDocument(std::span<const DocumentPage> pages);

// ---- Online requests (the business rules belong to other modules; the protocol carries
// them). Every request has the terminal's request_id, echoed in the response; a request id
// is unique per terminal, so a retried request can be recognised. ----

struct TopupRequest {
  static constexpr FrameType kType = FrameType::topup_request;
  uint64_t request_id = 0;
  uint64_t card_no = 0;
  uint32_t card_counter = 0;       // the card's CTC before the load
  int64_t balance_before_fen = 0;  // the card's purse as the card reports it
  int64_t amount_fen = 0;          // what to load, > 0
  int64_t time_s = 0;              // the terminal's clock
  CardProof card_proof{};          // see docs/protocol.md "Card proofs"
  Bytes Encode() const;
  static Result<TopupRequest> Decode(ByteView body);
  bool operator==(const TopupRequest&) const = default;
};

struct TopupAuthorisation {
  static constexpr FrameType kType = FrameType::topup_authorisation;
  uint64_t request_id = 0;
  ResultCode code = ResultCode::ok;
  uint64_t authorisation_id = 0;  // the core's id of the pending load; 0 when refused
  int64_t amount_fen = 0;
  int64_t balance_after_fen = 0;
  std::array<uint8_t, kHostMacBytes> host_mac{};  // the host's load authorisation for the card
  Bytes Encode() const;
  static Result<TopupAuthorisation> Decode(ByteView body);
  bool operator==(const TopupAuthorisation&) const = default;
};

// Terminal -> server: the card applied the load; `record` is its load record (type load).
struct TopupConfirmation {
  static constexpr FrameType kType = FrameType::topup_confirmation;
  uint64_t request_id = 0;
  uint64_t authorisation_id = 0;
  Bytes record;  // kTapRecordBytes
  Bytes Encode() const;
  static Result<TopupConfirmation> Decode(ByteView body);
  bool operator==(const TopupConfirmation&) const = default;
};

struct TopupConfirmationResult {
  static constexpr FrameType kType = FrameType::topup_confirmation_result;
  uint64_t request_id = 0;
  ResultCode code = ResultCode::ok;
  Bytes Encode() const;
  static Result<TopupConfirmationResult> Decode(ByteView body);
  bool operator==(const TopupConfirmationResult&) const = default;
};

struct IdentityCheckRequest {
  static constexpr FrameType kType = FrameType::identity_check_request;
  uint64_t request_id = 0;
  uint64_t card_no = 0;
  IdentityPurpose purpose = IdentityPurpose::hospital;  // core/identity_purpose.h numbers
  int64_t time_s = 0;
  CardProof card_proof{};
  Bytes Encode() const;
  static Result<IdentityCheckRequest> Decode(ByteView body);
  bool operator==(const IdentityCheckRequest&) const = default;
};

// Bits of IdentityCheckResponse's scheme and group masks: bit (n - 1) for the Scheme or
// SpecialGroup numbered n in core/registry.h.
inline constexpr uint16_t kSchemePension = 0x01;
inline constexpr uint16_t kSchemeMedical = 0x02;
inline constexpr uint16_t kSchemeUnemployment = 0x04;
inline constexpr uint16_t kSchemeWorkInjury = 0x08;
inline constexpr uint16_t kSchemeMaternity = 0x10;
inline constexpr uint16_t kGroupLowIncome = 0x01;
inline constexpr uint16_t kGroupSocialAssistance = 0x02;
inline constexpr uint16_t kGroupDisabled = 0x04;
inline constexpr uint16_t kGroupElderly = 0x08;

struct IdentityCheckResponse {
  static constexpr FrameType kType = FrameType::identity_check_response;
  uint64_t request_id = 0;
  ResultCode code = ResultCode::ok;
  uint8_t card_status = 0;  // 1 active, 2 blocked, 3 replaced, 4 closed, 5 expired; 0 unknown
  uint8_t profile = 0;      // core/profile.h numbers; 0 when refused
  // What the purpose may learn (asked) and, of that, what the holder has: a scheme or
  // group outside `asked` is not answered at all (core/identity_purpose.h).
  uint16_t schemes_asked = 0;
  uint16_t schemes = 0;
  uint16_t groups_asked = 0;
  uint16_t groups = 0;
  Bytes Encode() const;
  static Result<IdentityCheckResponse> Decode(ByteView body);
  bool operator==(const IdentityCheckResponse&) const = default;
};

struct MedicalSettlementRequest {
  static constexpr FrameType kType = FrameType::medical_settlement_request;
  uint64_t request_id = 0;
  uint64_t card_no = 0;
  MedicalCategory category = MedicalCategory::outpatient;  // core/medical.h numbers
  std::string bill_reference;  // the hospital's bill number, printable ASCII, 1..32
  int64_t total_fen = 0;       // > 0
  int64_t time_s = 0;
  CardProof card_proof{};
  Bytes Encode() const;
  static Result<MedicalSettlementRequest> Decode(ByteView body);
  bool operator==(const MedicalSettlementRequest&) const = default;
};

struct MedicalSettlementResponse {
  static constexpr FrameType kType = FrameType::medical_settlement_response;
  uint64_t request_id = 0;
  ResultCode code = ResultCode::ok;
  int64_t fund_fen = 0;
  int64_t medical_account_fen = 0;
  int64_t purse_fen = 0;
  Bytes voucher;  // the core's signed settlement voucher (docs/medical.md); <= kVoucherBytesMax
  Bytes Encode() const;
  static Result<MedicalSettlementResponse> Decode(ByteView body);
  bool operator==(const MedicalSettlementResponse&) const = default;
};

struct BillPaymentRequest {
  static constexpr FrameType kType = FrameType::bill_payment_request;
  uint64_t request_id = 0;
  uint64_t card_no = 0;
  std::string bill_id;  // printable ASCII, 1..32
  int64_t amount_fen = 0;
  CardProof card_proof{};
  Bytes Encode() const;
  static Result<BillPaymentRequest> Decode(ByteView body);
  bool operator==(const BillPaymentRequest&) const = default;
};

struct BillPaymentResponse {
  static constexpr FrameType kType = FrameType::bill_payment_response;
  uint64_t request_id = 0;
  ResultCode code = ResultCode::ok;
  int64_t amount_paid_fen = 0;
  int64_t balance_after_fen = 0;
  std::string transfer_id;  // printable ASCII, 0..32 (empty when refused)
  Bytes Encode() const;
  static Result<BillPaymentResponse> Decode(ByteView body);
  bool operator==(const BillPaymentResponse&) const = default;
};

using OnlineRequest = std::variant<TopupRequest, TopupConfirmation, IdentityCheckRequest,
                                   MedicalSettlementRequest, BillPaymentRequest>;
using OnlineResponse = std::variant<TopupAuthorisation, TopupConfirmationResult,
                                    IdentityCheckResponse, MedicalSettlementResponse,
                                    BillPaymentResponse>;

bool IsOnlineRequestType(FrameType type);
// Kind::bad_input "malformed_message" for a body that does not decode, or a type that is
// not an online request.
Result<OnlineRequest> DecodeOnlineRequest(FrameType type, ByteView body);
Result<OnlineResponse> DecodeOnlineResponse(FrameType type, ByteView body);
FrameType TypeOf(const OnlineRequest& request);
FrameType TypeOf(const OnlineResponse& response);
Bytes EncodeOnline(const OnlineRequest& request);
Bytes EncodeOnline(const OnlineResponse& response);
uint64_t RequestIdOf(const OnlineRequest& request);
uint64_t RequestIdOf(const OnlineResponse& response);
ResultCode CodeOf(const OnlineResponse& response);
// The response type that answers `request`, with its request_id and `code` and every other
// field zero: how a refusal is answered.
OnlineResponse RefusalFor(const OnlineRequest& request, ResultCode code);
// The bytes a request's card_proof covers: its body up to (not including) the card_proof,
// which is always the body's last kCardProofBytes (docs/protocol.md "Card proofs"). Empty for
// a topup_confirmation, which carries no card proof (its record has the card's TAC).
Bytes CardProofInput(const OnlineRequest& request);
// True when the response respects its encoding limits (voucher size, transfer id text), so
// that Encode() may be called; a backend's answer is checked with this before it is sent.
bool IsEncodable(const OnlineResponse& response);
// True when `response` is the type that answers `request`.
bool Answers(const OnlineResponse& response, const OnlineRequest& request);

// ---- Error ----

// Either direction. Before the handshake completes it travels as a plain frame, after it
// as a secured frame. The sender closes the session after sending it.
struct ErrorMessage {
  static constexpr FrameType kType = FrameType::error;
  ResultCode code = ResultCode::internal_error;
  std::string text;  // UTF-8 for people, at most kErrorTextBytesMax (longer is cut)
  Bytes Encode() const;
  static Result<ErrorMessage> Decode(ByteView body);
  bool operator==(const ErrorMessage&) const = default;
};

}  // namespace citycard::terminals
