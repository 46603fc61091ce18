#include "terminals/messages.h"

#include <algorithm>

namespace citycard::terminals {

namespace {

Status Malformed(std::string_view message, std::string_view why) {
  return Status::BadInput("malformed_message", std::string(message) + ": " + std::string(why));
}

// Identifiers (terminal ids) are printable ASCII without spaces, as in core/tap_record.h.
bool IsIdentifier(std::string_view text, size_t width_max, bool allow_empty) {
  if (text.size() > width_max || (!allow_empty && text.empty())) return false;
  return std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c <= '~'; });
}

// Reads a fixed-width, NUL-padded text field and checks that the padding is canonical (only
// NULs after the first NUL), so that each value has exactly one encoding.
bool ReadText(ByteReader& in, size_t width, bool allow_empty, std::string* out) {
  Bytes raw = in.Raw(width);
  if (!in.ok()) return false;
  auto nul = std::find(raw.begin(), raw.end(), uint8_t{0});
  if (!std::all_of(nul, raw.end(), [](uint8_t b) { return b == 0; })) return false;
  out->assign(raw.begin(), nul);
  return IsIdentifier(*out, width, allow_empty);
}

template <size_t N>
void ReadArray(ByteReader& in, std::array<uint8_t, N>* out) {
  in.RawInto(out->data(), N);
}

// A Decode is done when every byte was read and no read ran past the end.
Status Finish(const ByteReader& in, std::string_view message) {
  if (!in.ok()) return Malformed(message, "body too short");
  if (in.remaining() != 0) return Malformed(message, "body too long");
  return Status::Ok();
}

ResultCode ReadCode(ByteReader& in) { return static_cast<ResultCode>(in.U16()); }
void WriteCode(ByteWriter& w, ResultCode code) { w.U16(static_cast<uint16_t>(code)); }

}  // namespace

std::string_view FrameTypeName(FrameType type) {
  switch (type) {
    case FrameType::hello: return "hello";
    case FrameType::challenge: return "challenge";
    case FrameType::terminal_proof: return "terminal_proof";
    case FrameType::server_proof: return "server_proof";
    case FrameType::heartbeat: return "heartbeat";
    case FrameType::heartbeat_ack: return "heartbeat_ack";
    case FrameType::batch_upload: return "batch_upload";
    case FrameType::batch_ack: return "batch_ack";
    case FrameType::denylist_request: return "denylist_request";
    case FrameType::denylist_page: return "denylist_page";
    case FrameType::document_request: return "document_request";
    case FrameType::document_page: return "document_page";
    case FrameType::topup_request: return "topup_request";
    case FrameType::topup_authorisation: return "topup_authorisation";
    case FrameType::topup_confirmation: return "topup_confirmation";
    case FrameType::topup_confirmation_result: return "topup_confirmation_result";
    case FrameType::identity_check_request: return "identity_check_request";
    case FrameType::identity_check_response: return "identity_check_response";
    case FrameType::medical_settlement_request: return "medical_settlement_request";
    case FrameType::medical_settlement_response: return "medical_settlement_response";
    case FrameType::bill_payment_request: return "bill_payment_request";
    case FrameType::bill_payment_response: return "bill_payment_response";
    case FrameType::error: return "error";
  }
  return "unknown";
}

bool IsKnownFrameType(uint8_t type) {
  return FrameTypeName(static_cast<FrameType>(type)) != "unknown";
}

// ---- Handshake ----

Bytes Hello::Encode() const {
  CITYCARD_ASSERT(IsIdentifier(terminal_id, kTerminalIdBytes, false));
  Bytes out;
  ByteWriter w(&out);
  w.FixedText(terminal_id, kTerminalIdBytes);
  w.U8(key_version);
  w.Raw(terminal_nonce);
  return out;
}

Result<Hello> Hello::Decode(ByteView body) {
  ByteReader in(body);
  Hello m;
  bool id_ok = ReadText(in, kTerminalIdBytes, false, &m.terminal_id);
  m.key_version = in.U8();
  ReadArray(in, &m.terminal_nonce);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "hello"));
  if (!id_ok) return Malformed("hello", "bad terminal_id");
  return m;
}

Bytes Challenge::Encode() const { return Bytes(server_nonce.begin(), server_nonce.end()); }

Result<Challenge> Challenge::Decode(ByteView body) {
  ByteReader in(body);
  Challenge m;
  ReadArray(in, &m.server_nonce);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "challenge"));
  return m;
}

Bytes TerminalProof::Encode() const { return Bytes(proof.begin(), proof.end()); }

Result<TerminalProof> TerminalProof::Decode(ByteView body) {
  ByteReader in(body);
  TerminalProof m;
  ReadArray(in, &m.proof);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "terminal_proof"));
  return m;
}

Bytes ServerProof::Encode() const { return Bytes(proof.begin(), proof.end()); }

Result<ServerProof> ServerProof::Decode(ByteView body) {
  ByteReader in(body);
  ServerProof m;
  ReadArray(in, &m.proof);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "server_proof"));
  return m;
}

// ---- Heartbeat ----

namespace {
void WriteVersions(ByteWriter& w, const Versions& v) {
  w.U64(v.denylist_version);
  w.U32(v.fare_version);
  w.U32(v.parameter_version);
}
Versions ReadVersions(ByteReader& in) {
  Versions v;
  v.denylist_version = in.U64();
  v.fare_version = in.U32();
  v.parameter_version = in.U32();
  return v;
}
}  // namespace

Bytes Heartbeat::Encode() const {
  Bytes out;
  ByteWriter w(&out);
  w.I64(terminal_time_ms);
  WriteVersions(w, versions);
  w.U32(stored_records);
  return out;
}

Result<Heartbeat> Heartbeat::Decode(ByteView body) {
  ByteReader in(body);
  Heartbeat m;
  m.terminal_time_ms = in.I64();
  m.versions = ReadVersions(in);
  m.stored_records = in.U32();
  CITYCARD_RETURN_IF_ERROR(Finish(in, "heartbeat"));
  return m;
}

Bytes HeartbeatAck::Encode() const {
  Bytes out;
  ByteWriter w(&out);
  w.I64(server_time_ms);
  WriteVersions(w, versions);
  return out;
}

Result<HeartbeatAck> HeartbeatAck::Decode(ByteView body) {
  ByteReader in(body);
  HeartbeatAck m;
  m.server_time_ms = in.I64();
  m.versions = ReadVersions(in);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "heartbeat_ack"));
  return m;
}

// ---- Batch upload ----

BatchUpload BatchUpload::FromRecords(uint32_t batch_id, std::span<const TapRecord> records) {
  BatchUpload m;
  m.batch_id = batch_id;
  m.records.reserve(records.size() * kTapRecordBytes);
  for (const TapRecord& r : records) AppendTapRecord(r, &m.records);
  return m;
}

ByteView BatchUpload::record(size_t index) const {
  CITYCARD_ASSERT(index < record_count());
  return ByteView(records).subspan(index * kTapRecordBytes, kTapRecordBytes);
}

Bytes BatchUpload::Encode() const {
  CITYCARD_ASSERT(records.size() % kTapRecordBytes == 0);
  CITYCARD_ASSERT(record_count() >= 1 && record_count() <= kRecordsPerBatchMax);
  Bytes out;
  out.reserve(6 + records.size());
  ByteWriter w(&out);
  w.U32(batch_id);
  w.U16(static_cast<uint16_t>(record_count()));
  w.Raw(records);
  return out;
}

Result<BatchUpload> BatchUpload::Decode(ByteView body) {
  ByteReader in(body);
  BatchUpload m;
  m.batch_id = in.U32();
  uint16_t count = in.U16();
  if (!in.ok()) return Malformed("batch_upload", "body too short");
  if (count == 0 || count > kRecordsPerBatchMax) {
    return Malformed("batch_upload", "record count outside 1.." + std::to_string(kRecordsPerBatchMax));
  }
  m.records = in.Raw(count * kTapRecordBytes);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "batch_upload"));
  return m;
}

namespace {
void WriteAckUnsigned(const BatchAck& m, ByteWriter& w) {
  CITYCARD_ASSERT(IsIdentifier(m.terminal_id, kTerminalIdBytes, false));
  CITYCARD_ASSERT(!m.results.empty() && m.results.size() <= kRecordsPerBatchMax);
  w.FixedText(m.terminal_id, kTerminalIdBytes);
  w.U32(m.batch_id);
  w.Raw(m.batch_digest);
  w.I64(m.server_time_ms);
  w.U16(static_cast<uint16_t>(m.results.size()));
  for (ResultCode code : m.results) WriteCode(w, code);
}
}  // namespace

Bytes BatchAck::SignedBytes() const {
  Bytes out(kBatchAckSignatureContext.begin(), kBatchAckSignatureContext.end());
  ByteWriter w(&out);
  WriteAckUnsigned(*this, w);
  return out;
}

Bytes BatchAck::Encode() const {
  Bytes out;
  ByteWriter w(&out);
  WriteAckUnsigned(*this, w);
  w.Raw(signature);
  return out;
}

Result<BatchAck> BatchAck::Decode(ByteView body) {
  ByteReader in(body);
  BatchAck m;
  bool id_ok = ReadText(in, kTerminalIdBytes, false, &m.terminal_id);
  m.batch_id = in.U32();
  ReadArray(in, &m.batch_digest);
  m.server_time_ms = in.I64();
  uint16_t count = in.U16();
  if (!in.ok()) return Malformed("batch_ack", "body too short");
  if (count == 0 || count > kRecordsPerBatchMax) return Malformed("batch_ack", "bad result count");
  for (uint16_t i = 0; i < count; ++i) m.results.push_back(ReadCode(in));
  ReadArray(in, &m.signature);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "batch_ack"));
  if (!id_ok) return Malformed("batch_ack", "bad terminal_id");
  return m;
}

// ---- Denylist ----

Bytes DenylistRequest::Encode() const {
  Bytes out;
  ByteWriter(&out).U64(known_version);
  return out;
}

Result<DenylistRequest> DenylistRequest::Decode(ByteView body) {
  ByteReader in(body);
  DenylistRequest m;
  m.known_version = in.U64();
  CITYCARD_RETURN_IF_ERROR(Finish(in, "denylist_request"));
  return m;
}

Bytes DenylistPage::Encode() const {
  CITYCARD_ASSERT(added.size() + removed.size() <= kDenylistEntriesPerPageMax);
  CITYCARD_ASSERT(page < page_count);
  Bytes out;
  ByteWriter w(&out);
  w.U8(static_cast<uint8_t>(kind));
  w.U16(page);
  w.U16(page_count);
  w.U64(from_version);
  w.U64(to_version);
  w.U16(static_cast<uint16_t>(removed.size()));
  w.U16(static_cast<uint16_t>(added.size()));
  for (uint64_t card : removed) w.U64(card);
  for (uint64_t card : added) w.U64(card);
  return out;
}

Result<DenylistPage> DenylistPage::Decode(ByteView body) {
  ByteReader in(body);
  DenylistPage m;
  uint8_t kind = in.U8();
  m.page = in.U16();
  m.page_count = in.U16();
  m.from_version = in.U64();
  m.to_version = in.U64();
  uint16_t removed = in.U16();
  uint16_t added = in.U16();
  if (!in.ok()) return Malformed("denylist_page", "body too short");
  if (kind != 1 && kind != 2) return Malformed("denylist_page", "unknown kind");
  m.kind = static_cast<DenylistKind>(kind);
  if (m.page_count == 0 || m.page >= m.page_count) return Malformed("denylist_page", "bad page number");
  if (size_t{removed} + added > kDenylistEntriesPerPageMax) {
    return Malformed("denylist_page", "too many entries");
  }
  if (m.kind == DenylistKind::full && (m.from_version != 0 || removed != 0)) {
    return Malformed("denylist_page", "a full list has no from_version and no removals");
  }
  for (uint16_t i = 0; i < removed; ++i) m.removed.push_back(in.U64());
  for (uint16_t i = 0; i < added; ++i) m.added.push_back(in.U64());
  CITYCARD_RETURN_IF_ERROR(Finish(in, "denylist_page"));
  return m;
}

Result<std::vector<DenylistPage>> PaginateDenylist(const DenylistUpdate& update) {
  if (update.kind == DenylistKind::full && (update.from_version != 0 || !update.removed.empty())) {
    return Status::BadInput("invalid_denylist_update", "a full list has no from_version and no removals");
  }
  size_t total = update.added.size() + update.removed.size();
  size_t pages = std::max<size_t>(1, (total + kDenylistEntriesPerPageMax - 1) / kDenylistEntriesPerPageMax);
  if (pages > kPagesMax) {
    return Status::BadInput("denylist_too_large", "the denylist update needs more than 65535 pages");
  }
  std::vector<DenylistPage> out(pages);
  for (size_t p = 0; p < pages; ++p) {
    out[p].kind = update.kind;
    out[p].page = static_cast<uint16_t>(p);
    out[p].page_count = static_cast<uint16_t>(pages);
    out[p].from_version = update.from_version;
    out[p].to_version = update.to_version;
  }
  // Entry i of the sequence "removed, then added" goes to page i / kDenylistEntriesPerPageMax.
  for (size_t i = 0; i < update.removed.size(); ++i) {
    out[i / kDenylistEntriesPerPageMax].removed.push_back(update.removed[i]);
  }
  for (size_t i = 0; i < update.added.size(); ++i) {
    size_t slot = update.removed.size() + i;
    out[slot / kDenylistEntriesPerPageMax].added.push_back(update.added[i]);
  }
  return out;
}

Result<DenylistUpdate> AssembleDenylist(std::span<const DenylistPage> pages) {
  if (pages.empty()) return Malformed("denylist_page", "no pages");
  const DenylistPage& first = pages[0];
  if (first.page_count != pages.size()) return Malformed("denylist_page", "missing pages");
  DenylistUpdate update;
  update.kind = first.kind;
  update.from_version = first.from_version;
  update.to_version = first.to_version;
  for (size_t i = 0; i < pages.size(); ++i) {
    const DenylistPage& p = pages[i];
    if (p.page != i || p.page_count != first.page_count || p.kind != first.kind ||
        p.from_version != first.from_version || p.to_version != first.to_version) {
      return Malformed("denylist_page", "pages of different updates or out of order");
    }
    update.removed.insert(update.removed.end(), p.removed.begin(), p.removed.end());
    update.added.insert(update.added.end(), p.added.begin(), p.added.end());
  }
  return update;
}

// ---- Documents ----

namespace {
bool IsDocumentKind(uint8_t kind) { return kind == 1 || kind == 2; }
}  // namespace

Bytes DocumentRequest::Encode() const {
  Bytes out;
  ByteWriter w(&out);
  w.U8(static_cast<uint8_t>(kind));
  w.U32(known_version);
  return out;
}

Result<DocumentRequest> DocumentRequest::Decode(ByteView body) {
  ByteReader in(body);
  DocumentRequest m;
  uint8_t kind = in.U8();
  m.known_version = in.U32();
  CITYCARD_RETURN_IF_ERROR(Finish(in, "document_request"));
  if (!IsDocumentKind(kind)) return Malformed("document_request", "unknown document kind");
  m.kind = static_cast<DocumentKind>(kind);
  return m;
}

Bytes DocumentPage::Encode() const {
  CITYCARD_ASSERT(chunk.size() <= kDocumentChunkBytesMax && page < page_count);
  Bytes out;
  ByteWriter w(&out);
  w.U8(static_cast<uint8_t>(kind));
  w.U8(static_cast<uint8_t>(status));
  w.U32(version);
  w.U16(page);
  w.U16(page_count);
  w.U32(total_bytes);
  w.U32(offset);
  w.U32(static_cast<uint32_t>(chunk.size()));
  w.Raw(chunk);
  return out;
}

Result<DocumentPage> DocumentPage::Decode(ByteView body) {
  ByteReader in(body);
  DocumentPage m;
  uint8_t kind = in.U8();
  uint8_t status = in.U8();
  m.version = in.U32();
  m.page = in.U16();
  m.page_count = in.U16();
  m.total_bytes = in.U32();
  m.offset = in.U32();
  uint32_t chunk_bytes = in.U32();
  if (!in.ok()) return Malformed("document_page", "body too short");
  if (!IsDocumentKind(kind)) return Malformed("document_page", "unknown document kind");
  if (status != 1 && status != 2) return Malformed("document_page", "unknown status");
  m.kind = static_cast<DocumentKind>(kind);
  m.status = static_cast<DocumentStatus>(status);
  if (m.page_count == 0 || m.page >= m.page_count) return Malformed("document_page", "bad page number");
  if (chunk_bytes > kDocumentChunkBytesMax) return Malformed("document_page", "chunk too large");
  if (m.total_bytes > kDocumentBytesMax) return Malformed("document_page", "document too large");
  if (uint64_t{m.offset} + chunk_bytes > m.total_bytes) {
    return Malformed("document_page", "chunk beyond the document's end");
  }
  m.chunk = in.Raw(chunk_bytes);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "document_page"));
  return m;
}

Result<std::vector<DocumentPage>> PaginateDocument(const Document& document) {
  if (document.content.size() > kDocumentBytesMax) {
    return Status::BadInput("document_too_large", "a document is at most 16 MiB");
  }
  size_t size = document.content.size();
  size_t pages = std::max<size_t>(1, (size + kDocumentChunkBytesMax - 1) / kDocumentChunkBytesMax);
  std::vector<DocumentPage> out(pages);
  for (size_t p = 0; p < pages; ++p) {
    DocumentPage& page = out[p];
    page.kind = document.kind;
    page.status = document.up_to_date ? DocumentStatus::up_to_date : DocumentStatus::content;
    page.version = document.version;
    page.page = static_cast<uint16_t>(p);
    page.page_count = static_cast<uint16_t>(pages);
    page.total_bytes = static_cast<uint32_t>(size);
    page.offset = static_cast<uint32_t>(p * kDocumentChunkBytesMax);
    size_t end = std::min(size, (p + 1) * kDocumentChunkBytesMax);
    page.chunk.assign(document.content.begin() + static_cast<std::ptrdiff_t>(page.offset),
                      document.content.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return out;
}

Result<Document> AssembleDocument(std::span<const DocumentPage> pages) {
  if (pages.empty()) return Malformed("document_page", "no pages");
  const DocumentPage& first = pages[0];
  if (first.page_count != pages.size()) return Malformed("document_page", "missing pages");
  Document doc;
  doc.kind = first.kind;
  doc.version = first.version;
  doc.up_to_date = first.status == DocumentStatus::up_to_date;
  for (size_t i = 0; i < pages.size(); ++i) {
    const DocumentPage& p = pages[i];
    if (p.page != i || p.page_count != first.page_count || p.kind != first.kind ||
        p.status != first.status || p.version != first.version ||
        p.total_bytes != first.total_bytes || p.offset != doc.content.size()) {
      return Malformed("document_page", "pages of different documents or out of order");
    }
    doc.content.insert(doc.content.end(), p.chunk.begin(), p.chunk.end());
  }
  if (doc.content.size() != first.total_bytes) return Malformed("document_page", "short document");
  return doc;
}

// ---- Online requests ----

Bytes TopupRequest::Encode() const {
  Bytes out;
  ByteWriter w(&out);
  w.U64(request_id);
  w.U64(card_no);
  w.U32(card_counter);
  w.I64(balance_before_fen);
  w.I64(amount_fen);
  w.I64(time_s);
  w.Raw(card_proof);
  return out;
}

Result<TopupRequest> TopupRequest::Decode(ByteView body) {
  ByteReader in(body);
  TopupRequest m;
  m.request_id = in.U64();
  m.card_no = in.U64();
  m.card_counter = in.U32();
  m.balance_before_fen = in.I64();
  m.amount_fen = in.I64();
  m.time_s = in.I64();
  ReadArray(in, &m.card_proof);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "topup_request"));
  return m;
}

Bytes TopupAuthorisation::Encode() const {
  Bytes out;
  ByteWriter w(&out);
  w.U64(request_id);
  WriteCode(w, code);
  w.U64(authorisation_id);
  w.I64(amount_fen);
  w.I64(balance_after_fen);
  w.Raw(host_mac);
  return out;
}

Result<TopupAuthorisation> TopupAuthorisation::Decode(ByteView body) {
  ByteReader in(body);
  TopupAuthorisation m;
  m.request_id = in.U64();
  m.code = ReadCode(in);
  m.authorisation_id = in.U64();
  m.amount_fen = in.I64();
  m.balance_after_fen = in.I64();
  ReadArray(in, &m.host_mac);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "topup_authorisation"));
  return m;
}

Bytes TopupConfirmation::Encode() const {
  CITYCARD_ASSERT(record.size() == kTapRecordBytes);
  Bytes out;
  ByteWriter w(&out);
  w.U64(request_id);
  w.U64(authorisation_id);
  w.Raw(record);
  return out;
}

Result<TopupConfirmation> TopupConfirmation::Decode(ByteView body) {
  ByteReader in(body);
  TopupConfirmation m;
  m.request_id = in.U64();
  m.authorisation_id = in.U64();
  m.record = in.Raw(kTapRecordBytes);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "topup_confirmation"));
  return m;
}

Bytes TopupConfirmationResult::Encode() const {
  Bytes out;
  ByteWriter w(&out);
  w.U64(request_id);
  WriteCode(w, code);
  return out;
}

Result<TopupConfirmationResult> TopupConfirmationResult::Decode(ByteView body) {
  ByteReader in(body);
  TopupConfirmationResult m;
  m.request_id = in.U64();
  m.code = ReadCode(in);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "topup_confirmation_result"));
  return m;
}

Bytes IdentityCheckRequest::Encode() const {
  Bytes out;
  ByteWriter w(&out);
  w.U64(request_id);
  w.U64(card_no);
  w.U8(static_cast<uint8_t>(purpose));
  w.I64(time_s);
  w.Raw(card_proof);
  return out;
}

Result<IdentityCheckRequest> IdentityCheckRequest::Decode(ByteView body) {
  ByteReader in(body);
  IdentityCheckRequest m;
  m.request_id = in.U64();
  m.card_no = in.U64();
  uint8_t purpose = in.U8();
  m.time_s = in.I64();
  ReadArray(in, &m.card_proof);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "identity_check_request"));
  if (purpose < 1 || purpose > kIdentityPurposeCount) {
    return Malformed("identity_check_request", "unknown purpose");
  }
  m.purpose = static_cast<IdentityPurpose>(purpose);
  return m;
}

Bytes IdentityCheckResponse::Encode() const {
  Bytes out;
  ByteWriter w(&out);
  w.U64(request_id);
  WriteCode(w, code);
  w.U8(card_status);
  w.U8(profile);
  w.U16(schemes_asked);
  w.U16(schemes);
  w.U16(groups_asked);
  w.U16(groups);
  return out;
}

Result<IdentityCheckResponse> IdentityCheckResponse::Decode(ByteView body) {
  ByteReader in(body);
  IdentityCheckResponse m;
  m.request_id = in.U64();
  m.code = ReadCode(in);
  m.card_status = in.U8();
  m.profile = in.U8();
  m.schemes_asked = in.U16();
  m.schemes = in.U16();
  m.groups_asked = in.U16();
  m.groups = in.U16();
  CITYCARD_RETURN_IF_ERROR(Finish(in, "identity_check_response"));
  return m;
}

Bytes MedicalSettlementRequest::Encode() const {
  CITYCARD_ASSERT(IsIdentifier(bill_reference, kReferenceBytes, false));
  Bytes out;
  ByteWriter w(&out);
  w.U64(request_id);
  w.U64(card_no);
  w.U8(static_cast<uint8_t>(category));
  w.FixedText(bill_reference, kReferenceBytes);
  w.I64(total_fen);
  w.I64(time_s);
  w.Raw(card_proof);
  return out;
}

Result<MedicalSettlementRequest> MedicalSettlementRequest::Decode(ByteView body) {
  ByteReader in(body);
  MedicalSettlementRequest m;
  m.request_id = in.U64();
  m.card_no = in.U64();
  uint8_t category = in.U8();
  bool reference_ok = ReadText(in, kReferenceBytes, false, &m.bill_reference);
  m.total_fen = in.I64();
  m.time_s = in.I64();
  ReadArray(in, &m.card_proof);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "medical_settlement_request"));
  if (category < 1 || category > kMedicalCategoryCount) {
    return Malformed("medical_settlement_request", "unknown category");
  }
  if (!reference_ok) return Malformed("medical_settlement_request", "bad bill_reference");
  m.category = static_cast<MedicalCategory>(category);
  return m;
}

Bytes MedicalSettlementResponse::Encode() const {
  CITYCARD_ASSERT(voucher.size() <= kVoucherBytesMax);
  Bytes out;
  ByteWriter w(&out);
  w.U64(request_id);
  WriteCode(w, code);
  w.I64(fund_fen);
  w.I64(medical_account_fen);
  w.I64(purse_fen);
  w.U16(static_cast<uint16_t>(voucher.size()));
  w.Raw(voucher);
  return out;
}

Result<MedicalSettlementResponse> MedicalSettlementResponse::Decode(ByteView body) {
  ByteReader in(body);
  MedicalSettlementResponse m;
  m.request_id = in.U64();
  m.code = ReadCode(in);
  m.fund_fen = in.I64();
  m.medical_account_fen = in.I64();
  m.purse_fen = in.I64();
  uint16_t voucher_bytes = in.U16();
  if (!in.ok()) return Malformed("medical_settlement_response", "body too short");
  if (voucher_bytes > kVoucherBytesMax) return Malformed("medical_settlement_response", "voucher too large");
  m.voucher = in.Raw(voucher_bytes);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "medical_settlement_response"));
  return m;
}

Bytes BillPaymentRequest::Encode() const {
  CITYCARD_ASSERT(IsIdentifier(bill_id, kReferenceBytes, false));
  Bytes out;
  ByteWriter w(&out);
  w.U64(request_id);
  w.U64(card_no);
  w.FixedText(bill_id, kReferenceBytes);
  w.I64(amount_fen);
  w.Raw(card_proof);
  return out;
}

Result<BillPaymentRequest> BillPaymentRequest::Decode(ByteView body) {
  ByteReader in(body);
  BillPaymentRequest m;
  m.request_id = in.U64();
  m.card_no = in.U64();
  bool id_ok = ReadText(in, kReferenceBytes, false, &m.bill_id);
  m.amount_fen = in.I64();
  ReadArray(in, &m.card_proof);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "bill_payment_request"));
  if (!id_ok) return Malformed("bill_payment_request", "bad bill_id");
  return m;
}

Bytes BillPaymentResponse::Encode() const {
  CITYCARD_ASSERT(IsIdentifier(transfer_id, kReferenceBytes, true));
  Bytes out;
  ByteWriter w(&out);
  w.U64(request_id);
  WriteCode(w, code);
  w.I64(amount_paid_fen);
  w.I64(balance_after_fen);
  w.FixedText(transfer_id, kReferenceBytes);
  return out;
}

Result<BillPaymentResponse> BillPaymentResponse::Decode(ByteView body) {
  ByteReader in(body);
  BillPaymentResponse m;
  m.request_id = in.U64();
  m.code = ReadCode(in);
  m.amount_paid_fen = in.I64();
  m.balance_after_fen = in.I64();
  bool id_ok = ReadText(in, kReferenceBytes, true, &m.transfer_id);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "bill_payment_response"));
  if (!id_ok) return Malformed("bill_payment_response", "bad transfer_id");
  return m;
}

bool IsOnlineRequestType(FrameType type) {
  switch (type) {
    case FrameType::topup_request:
    case FrameType::topup_confirmation:
    case FrameType::identity_check_request:
    case FrameType::medical_settlement_request:
    case FrameType::bill_payment_request:
      return true;
    default:
      return false;
  }
}

namespace {
template <typename Variant, typename M>
Result<Variant> Lift(Result<M> decoded) {
  if (!decoded.ok()) return decoded.status();
  return Variant(std::move(decoded).value());
}
}  // namespace

Result<OnlineRequest> DecodeOnlineRequest(FrameType type, ByteView body) {
  switch (type) {
    case FrameType::topup_request: return Lift<OnlineRequest>(TopupRequest::Decode(body));
    case FrameType::topup_confirmation: return Lift<OnlineRequest>(TopupConfirmation::Decode(body));
    case FrameType::identity_check_request:
      return Lift<OnlineRequest>(IdentityCheckRequest::Decode(body));
    case FrameType::medical_settlement_request:
      return Lift<OnlineRequest>(MedicalSettlementRequest::Decode(body));
    case FrameType::bill_payment_request: return Lift<OnlineRequest>(BillPaymentRequest::Decode(body));
    default: return Malformed(FrameTypeName(type), "not an online request");
  }
}

Result<OnlineResponse> DecodeOnlineResponse(FrameType type, ByteView body) {
  switch (type) {
    case FrameType::topup_authorisation:
      return Lift<OnlineResponse>(TopupAuthorisation::Decode(body));
    case FrameType::topup_confirmation_result:
      return Lift<OnlineResponse>(TopupConfirmationResult::Decode(body));
    case FrameType::identity_check_response:
      return Lift<OnlineResponse>(IdentityCheckResponse::Decode(body));
    case FrameType::medical_settlement_response:
      return Lift<OnlineResponse>(MedicalSettlementResponse::Decode(body));
    case FrameType::bill_payment_response:
      return Lift<OnlineResponse>(BillPaymentResponse::Decode(body));
    default: return Malformed(FrameTypeName(type), "not an online response");
  }
}

FrameType TypeOf(const OnlineRequest& request) {
  return std::visit([](const auto& m) { return std::decay_t<decltype(m)>::kType; }, request);
}

FrameType TypeOf(const OnlineResponse& response) {
  return std::visit([](const auto& m) { return std::decay_t<decltype(m)>::kType; }, response);
}

Bytes EncodeOnline(const OnlineRequest& request) {
  return std::visit([](const auto& m) { return m.Encode(); }, request);
}

Bytes EncodeOnline(const OnlineResponse& response) {
  return std::visit([](const auto& m) { return m.Encode(); }, response);
}

uint64_t RequestIdOf(const OnlineRequest& request) {
  return std::visit([](const auto& m) { return m.request_id; }, request);
}

uint64_t RequestIdOf(const OnlineResponse& response) {
  return std::visit([](const auto& m) { return m.request_id; }, response);
}

ResultCode CodeOf(const OnlineResponse& response) {
  return std::visit([](const auto& m) { return m.code; }, response);
}

OnlineResponse RefusalFor(const OnlineRequest& request, ResultCode code) {
  uint64_t id = RequestIdOf(request);
  auto make = [&](auto response) -> OnlineResponse {
    response.request_id = id;
    response.code = code;
    return response;
  };
  switch (TypeOf(request)) {
    case FrameType::topup_request: return make(TopupAuthorisation{});
    case FrameType::topup_confirmation: return make(TopupConfirmationResult{});
    case FrameType::identity_check_request: return make(IdentityCheckResponse{});
    case FrameType::medical_settlement_request: return make(MedicalSettlementResponse{});
    default: return make(BillPaymentResponse{});
  }
}

Bytes CardProofInput(const OnlineRequest& request) {
  if (std::holds_alternative<TopupConfirmation>(request)) return {};
  Bytes body = EncodeOnline(request);
  CITYCARD_ASSERT(body.size() >= kCardProofBytes);
  body.resize(body.size() - kCardProofBytes);
  return body;
}

bool IsEncodable(const OnlineResponse& response) {
  if (const auto* medical = std::get_if<MedicalSettlementResponse>(&response)) {
    return medical->voucher.size() <= kVoucherBytesMax;
  }
  if (const auto* bill = std::get_if<BillPaymentResponse>(&response)) {
    return IsIdentifier(bill->transfer_id, kReferenceBytes, true);
  }
  return true;
}

bool Answers(const OnlineResponse& response, const OnlineRequest& request) {
  return static_cast<uint8_t>(TypeOf(response)) == static_cast<uint8_t>(TypeOf(request)) + 1;
}

// ---- Error ----

Bytes ErrorMessage::Encode() const {
  // Cut at the limit, then back to a UTF-8 character boundary so the text stays valid.
  size_t length = std::min(text.size(), kErrorTextBytesMax);
  while (length > 0 && length < text.size() && (static_cast<uint8_t>(text[length]) & 0xC0) == 0x80) {
    --length;
  }
  Bytes out;
  ByteWriter w(&out);
  WriteCode(w, code);
  w.U16(static_cast<uint16_t>(length));
  w.Raw(ByteView(reinterpret_cast<const uint8_t*>(text.data()), length));
  return out;
}

Result<ErrorMessage> ErrorMessage::Decode(ByteView body) {
  ByteReader in(body);
  ErrorMessage m;
  m.code = ReadCode(in);
  uint16_t length = in.U16();
  if (!in.ok()) return Malformed("error", "body too short");
  if (length > kErrorTextBytesMax) return Malformed("error", "text too long");
  Bytes text = in.Raw(length);
  CITYCARD_RETURN_IF_ERROR(Finish(in, "error"));
  m.text.assign(text.begin(), text.end());
  return m;
}

}  // namespace citycard::terminals
