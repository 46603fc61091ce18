// Fuzz target: every message parser of the terminal protocol (terminals/messages.h,
// docs/fuzzing.md). The first input byte is the frame type, the rest is the body, as the
// session hands a frame's payload to the parsers.
//
// Checked, beyond "does not crash":
// - a refusal is always Kind::bad_input "malformed_message";
// - an accepted body is canonical: Encode() gives back exactly the input bytes, and decoding
//   those gives an equal message (so every message has one encoding, which the MACs and the
//   batch acknowledgement's signature rely on);
// - limits hold after a successful decode (record counts, entry counts, chunk sizes, text
//   lengths), so that Encode() never asserts on what Decode() accepted;
// - the online-request helpers agree with the plain decoders (DecodeOnlineRequest/-Response,
//   CardProofInput, RefusalFor, Answers);
// - paging: a decoded denylist or document page that is a whole update assembles again, and
//   the update paginates back to the same page.
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <variant>

#include "core/status.h"
#include "core/tap_record.h"
#include "terminals/messages.h"

namespace {

using citycard::ByteView;
using citycard::Bytes;
using citycard::Kind;
using citycard::Result;
using namespace citycard::terminals;

template <typename M>
void CheckRefusal(const Result<M>& decoded) {
  CITYCARD_ASSERT(decoded.status().kind() == Kind::bad_input);
  CITYCARD_ASSERT(decoded.status().code() == "malformed_message");
}

// Decodes the body as M; on success checks that the encoding is canonical and returns true
// with the message in *out.
template <typename M>
bool DecodeCanonical(ByteView body, M* out) {
  Result<M> decoded = M::Decode(body);
  if (!decoded.ok()) {
    CheckRefusal(decoded);
    return false;
  }
  Bytes encoded = decoded->Encode();
  CITYCARD_ASSERT(encoded.size() == body.size());
  CITYCARD_ASSERT(std::equal(encoded.begin(), encoded.end(), body.begin()));
  Result<M> again = M::Decode(encoded);
  CITYCARD_ASSERT(again.ok() && *again == *decoded);
  *out = std::move(decoded).value();
  return true;
}

void CheckBatchUpload(const BatchUpload& m) {
  CITYCARD_ASSERT(m.record_count() >= 1 && m.record_count() <= kRecordsPerBatchMax);
  CITYCARD_ASSERT(m.records.size() == m.record_count() * citycard::kTapRecordBytes);
  // Each record is looked at on its own, as the ingest does; a bad one is only refused.
  for (size_t i = 0; i < m.record_count(); ++i) {
    auto record = citycard::DecodeTapRecord(m.record(i));
    if (record.ok()) CITYCARD_ASSERT(record->amount_fen >= 0);
  }
}

void CheckDenylistPage(const DenylistPage& m) {
  CITYCARD_ASSERT(m.page < m.page_count);
  CITYCARD_ASSERT(m.added.size() + m.removed.size() <= kDenylistEntriesPerPageMax);
  if (m.page_count != 1) return;
  DenylistPage pages[] = {m};
  auto update = AssembleDenylist(pages);
  CITYCARD_ASSERT(update.ok());
  auto paged = PaginateDenylist(*update);
  CITYCARD_ASSERT(paged.ok() && paged->size() == 1);
  // Pagination puts removals first, so the page comes back as it was.
  CITYCARD_ASSERT((*paged)[0] == m);
}

void CheckDocumentPage(const DocumentPage& m) {
  CITYCARD_ASSERT(m.page < m.page_count);
  CITYCARD_ASSERT(m.chunk.size() <= kDocumentChunkBytesMax);
  CITYCARD_ASSERT(m.total_bytes <= kDocumentBytesMax);
  DocumentPage pages[] = {m};
  auto document = AssembleDocument(pages);
  if (!document.ok()) {
    CheckRefusal(document);
    return;
  }
  CITYCARD_ASSERT(document->content.size() <= kDocumentBytesMax);
  auto paged = PaginateDocument(*document);
  CITYCARD_ASSERT(paged.ok() && paged->size() == 1);
  auto again = AssembleDocument(*paged);
  CITYCARD_ASSERT(again.ok() && *again == *document);
}

template <typename M>
void CheckOnlineRequest(ByteView body, const M& m) {
  auto request = DecodeOnlineRequest(M::kType, body);
  CITYCARD_ASSERT(request.ok() && std::holds_alternative<M>(*request));
  CITYCARD_ASSERT(std::get<M>(*request) == m);
  CITYCARD_ASSERT(TypeOf(*request) == M::kType);
  CITYCARD_ASSERT(RequestIdOf(*request) == m.request_id);
  Bytes proof_input = CardProofInput(*request);
  if constexpr (std::is_same_v<M, TopupConfirmation>) {
    CITYCARD_ASSERT(proof_input.empty());
  } else {
    // The card proof is the last kCardProofBytes of the body and covers all the rest.
    CITYCARD_ASSERT(proof_input.size() + kCardProofBytes == body.size());
    CITYCARD_ASSERT(std::equal(proof_input.begin(), proof_input.end(), body.begin()));
  }
  OnlineResponse refusal = RefusalFor(*request, ResultCode::malformed_message);
  CITYCARD_ASSERT(Answers(refusal, *request));
  CITYCARD_ASSERT(IsEncodable(refusal));
  CITYCARD_ASSERT(RequestIdOf(refusal) == m.request_id);
  CITYCARD_ASSERT(CodeOf(refusal) == ResultCode::malformed_message);
  Bytes encoded = EncodeOnline(refusal);
  auto decoded = DecodeOnlineResponse(TypeOf(refusal), encoded);
  CITYCARD_ASSERT(decoded.ok() && *decoded == refusal);
}

template <typename M>
void CheckOnlineResponse(ByteView body, const M& m) {
  auto response = DecodeOnlineResponse(M::kType, body);
  CITYCARD_ASSERT(response.ok() && std::holds_alternative<M>(*response));
  CITYCARD_ASSERT(std::get<M>(*response) == m);
  CITYCARD_ASSERT(IsEncodable(*response));
  CITYCARD_ASSERT(CodeOf(*response) == m.code);
  Bytes encoded = EncodeOnline(*response);
  CITYCARD_ASSERT(std::equal(encoded.begin(), encoded.end(), body.begin(), body.end()));
}

template <typename M>
void Fuzz(ByteView body) {
  M m;
  if (!DecodeCanonical(body, &m)) {
    // The variant decoders must refuse what the plain decoder refused.
    if constexpr (requires { m.request_id; }) {
      if (IsOnlineRequestType(M::kType)) {
        CITYCARD_ASSERT(!DecodeOnlineRequest(M::kType, body).ok());
      } else {
        CITYCARD_ASSERT(!DecodeOnlineResponse(M::kType, body).ok());
      }
    }
    return;
  }
  if constexpr (std::is_same_v<M, BatchUpload>) CheckBatchUpload(m);
  if constexpr (std::is_same_v<M, BatchAck>) {
    CITYCARD_ASSERT(!m.results.empty() && m.results.size() <= kRecordsPerBatchMax);
    Bytes signed_bytes = m.SignedBytes();
    CITYCARD_ASSERT(signed_bytes.size() == kBatchAckSignatureContext.size() + body.size() -
                                               kSignatureBytes);
  }
  if constexpr (std::is_same_v<M, DenylistPage>) CheckDenylistPage(m);
  if constexpr (std::is_same_v<M, DocumentPage>) CheckDocumentPage(m);
  if constexpr (std::is_same_v<M, TopupConfirmation>) {
    CITYCARD_ASSERT(m.record.size() == citycard::kTapRecordBytes);
  }
  if constexpr (std::is_same_v<M, ErrorMessage>) CITYCARD_ASSERT(m.text.size() <= kErrorTextBytesMax);
  if constexpr (std::is_same_v<M, MedicalSettlementResponse>) {
    CITYCARD_ASSERT(m.voucher.size() <= kVoucherBytesMax);
  }
  if constexpr (requires { m.request_id; }) {
    if constexpr (requires { m.code; }) {
      CheckOnlineResponse(body, m);
    } else {
      CheckOnlineRequest(body, m);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  ByteView body(data + 1, size - 1);
  switch (static_cast<FrameType>(data[0])) {
    case FrameType::hello: Fuzz<Hello>(body); break;
    case FrameType::challenge: Fuzz<Challenge>(body); break;
    case FrameType::terminal_proof: Fuzz<TerminalProof>(body); break;
    case FrameType::server_proof: Fuzz<ServerProof>(body); break;
    case FrameType::heartbeat: Fuzz<Heartbeat>(body); break;
    case FrameType::heartbeat_ack: Fuzz<HeartbeatAck>(body); break;
    case FrameType::batch_upload: Fuzz<BatchUpload>(body); break;
    case FrameType::batch_ack: Fuzz<BatchAck>(body); break;
    case FrameType::denylist_request: Fuzz<DenylistRequest>(body); break;
    case FrameType::denylist_page: Fuzz<DenylistPage>(body); break;
    case FrameType::document_request: Fuzz<DocumentRequest>(body); break;
    case FrameType::document_page: Fuzz<DocumentPage>(body); break;
    case FrameType::topup_request: Fuzz<TopupRequest>(body); break;
    case FrameType::topup_authorisation: Fuzz<TopupAuthorisation>(body); break;
    case FrameType::topup_confirmation: Fuzz<TopupConfirmation>(body); break;
    case FrameType::topup_confirmation_result: Fuzz<TopupConfirmationResult>(body); break;
    case FrameType::identity_check_request: Fuzz<IdentityCheckRequest>(body); break;
    case FrameType::identity_check_response: Fuzz<IdentityCheckResponse>(body); break;
    case FrameType::medical_settlement_request: Fuzz<MedicalSettlementRequest>(body); break;
    case FrameType::medical_settlement_response: Fuzz<MedicalSettlementResponse>(body); break;
    case FrameType::bill_payment_request: Fuzz<BillPaymentRequest>(body); break;
    case FrameType::bill_payment_response: Fuzz<BillPaymentResponse>(body); break;
    case FrameType::error: Fuzz<ErrorMessage>(body); break;
    default:
      CITYCARD_ASSERT(!IsKnownFrameType(data[0]));
      CITYCARD_ASSERT(!DecodeOnlineRequest(static_cast<FrameType>(data[0]), body).ok());
      break;
  }
  return 0;
}
