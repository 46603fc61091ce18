#include <catch2/catch.hpp>

#include "terminals/messages.h"

using namespace citycard;
using namespace citycard::terminals;

namespace {

TapRecord SampleRecord(uint32_t counter) {
  TapRecord r;
  r.type = TapType::purchase;
  r.card_no = 8607550000000018;
  r.card_counter = counter;
  r.balance_before_fen = 5000;
  r.amount_fen = 200;
  r.terminal_id = "BUS-0001";
  r.terminal_counter = 100 + counter;
  r.time_s = 1535724890;
  r.operator_id = "szbus";
  r.route_code = 5;
  r.full_fare_fen = 200;
  return r;
}

// Every message must survive Encode/Decode, and refuse its body one byte short or long.
template <typename M>
void CheckRoundTrip(const M& message) {
  Bytes body = message.Encode();
  auto back = M::Decode(body);
  REQUIRE(back.ok());
  REQUIRE(*back == message);
  Bytes shorter(body.begin(), body.end() - 1);
  auto short_result = M::Decode(shorter);
  REQUIRE_FALSE(short_result.ok());
  REQUIRE(short_result.status().code() == "malformed_message");
  Bytes longer = body;
  longer.push_back(0);
  auto long_result = M::Decode(longer);
  REQUIRE_FALSE(long_result.ok());
  REQUIRE(long_result.status().code() == "malformed_message");
}

Nonce Fill(uint8_t start) {
  Nonce n;
  for (size_t i = 0; i < n.size(); ++i) n[i] = static_cast<uint8_t>(start + i);
  return n;
}

}  // namespace

TEST_CASE("Handshake messages have fixed sizes and round-trip", "[terminals][messages]") {
  Hello hello{"BUS-0001", 2, Fill(1)};
  REQUIRE(hello.Encode().size() == 33);
  CheckRoundTrip(hello);
  Challenge challenge{Fill(0x40)};
  REQUIRE(challenge.Encode().size() == 16);
  CheckRoundTrip(challenge);
  TerminalProof proof;
  proof.proof[0] = 9;
  REQUIRE(proof.Encode().size() == 32);
  CheckRoundTrip(proof);
  ServerProof server_proof;
  server_proof.proof[31] = 7;
  CheckRoundTrip(server_proof);
}

TEST_CASE("A hello with a bad terminal id is malformed", "[terminals][messages]") {
  Bytes body = Hello{"BUS-0001", 1, Fill(1)}.Encode();
  SECTION("a space in the id") {
    body[3] = ' ';
  }
  SECTION("text after the NUL padding") {
    body[12] = 'X';
  }
  SECTION("an empty id") {
    std::fill(body.begin(), body.begin() + 16, 0);
  }
  auto decoded = Hello::Decode(body);
  REQUIRE_FALSE(decoded.ok());
  REQUIRE(decoded.status().code() == "malformed_message");
}

TEST_CASE("Heartbeats round-trip", "[terminals][messages]") {
  Heartbeat heartbeat{1700000000123, {42, 3, 7}, 12};
  REQUIRE(heartbeat.Encode().size() == 28);
  CheckRoundTrip(heartbeat);
  HeartbeatAck ack{-5, {1ull << 40, 4, 0}};
  REQUIRE(ack.Encode().size() == 24);
  CheckRoundTrip(ack);
}

TEST_CASE("A batch upload carries its records in the tap record encoding", "[terminals][messages]") {
  std::vector<TapRecord> records = {SampleRecord(1), SampleRecord(2)};
  BatchUpload upload = BatchUpload::FromRecords(77, records);
  REQUIRE(upload.record_count() == 2);
  Bytes body = upload.Encode();
  REQUIRE(body.size() == 6 + 2 * kTapRecordBytes);
  REQUIRE(ToHex(ByteView(body).first(6)) == "0000004d0002");
  auto back = BatchUpload::Decode(body);
  REQUIRE(back.ok());
  REQUIRE(*DecodeTapRecord(back->record(1)) == records[1]);
  CheckRoundTrip(upload);
}

TEST_CASE("A batch upload with no records or too many is malformed", "[terminals][messages]") {
  Bytes empty = {0, 0, 0, 1, 0, 0};
  REQUIRE(BatchUpload::Decode(empty).status().code() == "malformed_message");
  Bytes too_many = {0, 0, 0, 1, 0x01, 0x01};  // 257 records announced
  too_many.resize(6 + 257 * kTapRecordBytes);
  REQUIRE(BatchUpload::Decode(too_many).status().code() == "malformed_message");
  Bytes count_mismatch = {0, 0, 0, 1, 0, 2};  // two announced, one present
  count_mismatch.resize(6 + kTapRecordBytes);
  REQUIRE(BatchUpload::Decode(count_mismatch).status().code() == "malformed_message");
}

TEST_CASE("A batch acknowledgement round-trips and signs its body after a context", "[terminals][messages]") {
  BatchAck ack;
  ack.terminal_id = "BUS-0001";
  ack.batch_id = 77;
  ack.batch_digest[0] = 0xab;
  ack.server_time_ms = 1700000000000;
  ack.results = {ResultCode::accepted, ResultCode::duplicate, ResultCode::retry_later};
  ack.signature[63] = 0x5a;
  Bytes body = ack.Encode();
  REQUIRE(body.size() == 16 + 4 + 32 + 8 + 2 + 3 * 2 + 64);
  CheckRoundTrip(ack);
  Bytes signed_bytes = ack.SignedBytes();
  REQUIRE(signed_bytes.size() == kBatchAckSignatureContext.size() + body.size() - 64);
  REQUIRE(std::string(signed_bytes.begin(), signed_bytes.begin() + 21) == "citycard batch ack v1");
  REQUIRE(std::equal(signed_bytes.begin() + 21, signed_bytes.end(), body.begin()));
}

TEST_CASE("Denylist pages round-trip and a long update is cut into pages", "[terminals][messages]") {
  DenylistPage page;
  page.kind = DenylistKind::delta;
  page.from_version = 3;
  page.to_version = 5;
  page.added = {8607550000000018, 8607550000000026};
  page.removed = {8607550000000034};
  REQUIRE(page.Encode().size() == 25 + 3 * 8);
  CheckRoundTrip(page);

  DenylistUpdate update;
  update.kind = DenylistKind::delta;
  update.from_version = 10;
  update.to_version = 11;
  for (uint64_t i = 0; i < 5000; ++i) update.removed.push_back(i);
  for (uint64_t i = 0; i < 4000; ++i) update.added.push_back(100000 + i);
  auto pages = PaginateDenylist(update);
  REQUIRE(pages.ok());
  REQUIRE(pages->size() == 3);
  REQUIRE((*pages)[0].removed.size() == 4096);
  REQUIRE((*pages)[1].removed.size() == 904);
  REQUIRE((*pages)[1].added.size() == 3192);
  REQUIRE((*pages)[2].added.size() == 808);
  for (const auto& p : *pages) CheckRoundTrip(p);
  auto back = AssembleDenylist(*pages);
  REQUIRE(back.ok());
  REQUIRE(*back == update);

  std::vector<DenylistPage> shuffled = {(*pages)[1], (*pages)[0], (*pages)[2]};
  REQUIRE(AssembleDenylist(shuffled).status().code() == "malformed_message");
  std::vector<DenylistPage> missing = {(*pages)[0], (*pages)[1]};
  REQUIRE(AssembleDenylist(missing).status().code() == "malformed_message");
}

TEST_CASE("An empty denylist update is one empty page", "[terminals][messages]") {
  DenylistUpdate update{DenylistKind::delta, 8, 8, {}, {}};
  auto pages = PaginateDenylist(update);
  REQUIRE(pages->size() == 1);
  REQUIRE(*AssembleDenylist(*pages) == update);
}

TEST_CASE("Malformed denylist pages are refused", "[terminals][messages]") {
  DenylistPage page;
  page.kind = DenylistKind::full;
  page.to_version = 5;
  page.added = {1, 2};
  Bytes body = page.Encode();
  Bytes bad_kind = body;
  bad_kind[0] = 3;
  REQUIRE(DenylistPage::Decode(bad_kind).status().code() == "malformed_message");
  Bytes bad_page = body;
  bad_page[2] = 1;  // page 1 of 1
  REQUIRE(DenylistPage::Decode(bad_page).status().code() == "malformed_message");
  Bytes full_with_removal = body;
  full_with_removal[22] = 1;  // one removal announced in a full list
  full_with_removal.resize(body.size() + 8);
  REQUIRE(DenylistPage::Decode(full_with_removal).status().code() == "malformed_message");
}

TEST_CASE("Documents are cut into chunks and joined again", "[terminals][messages]") {
  Document doc;
  doc.kind = DocumentKind::fare_table;
  doc.version = 4;
  doc.content.resize(kDocumentChunkBytesMax * 2 + 10);
  for (size_t i = 0; i < doc.content.size(); ++i) doc.content[i] = static_cast<uint8_t>(i);
  auto pages = PaginateDocument(doc);
  REQUIRE(pages.ok());
  REQUIRE(pages->size() == 3);
  REQUIRE((*pages)[2].offset == 2 * kDocumentChunkBytesMax);
  REQUIRE((*pages)[2].chunk.size() == 10);
  for (const auto& p : *pages) CheckRoundTrip(p);
  REQUIRE(*AssembleDocument(*pages) == doc);

  Document current{DocumentKind::parameters, 9, true, {}};
  auto one = PaginateDocument(current);
  REQUIRE(one->size() == 1);
  REQUIRE((*one)[0].status == DocumentStatus::up_to_date);
  REQUIRE(*AssembleDocument(*one) == current);

  DocumentRequest request{DocumentKind::parameters, 3};
  CheckRoundTrip(request);
  Bytes bad = request.Encode();
  bad[0] = 7;
  REQUIRE(DocumentRequest::Decode(bad).status().code() == "malformed_message");
}

TEST_CASE("A document page whose chunk passes the document's end is malformed", "[terminals][messages]") {
  DocumentPage page;
  page.total_bytes = 4;
  page.chunk = {1, 2, 3, 4};
  Bytes body = page.Encode();
  REQUIRE(DocumentPage::Decode(body).ok());
  body[17] = 1;  // offset 1: the chunk would end at byte 5 of 4
  REQUIRE(DocumentPage::Decode(body).status().code() == "malformed_message");
}

TEST_CASE("Online requests and responses round-trip", "[terminals][messages]") {
  TopupRequest topup{1, 8607550000000018, 7, 5000, 10000, 1700000000, {1, 2, 3, 4, 5, 6, 7, 8}};
  REQUIRE(topup.Encode().size() == 52);
  CheckRoundTrip(topup);
  TopupAuthorisation auth{1, ResultCode::ok, 99, 10000, 15000, {9, 9, 9, 9, 9, 9, 9, 9}};
  REQUIRE(auth.Encode().size() == 42);
  CheckRoundTrip(auth);
  TopupConfirmation confirmation{1, 99, EncodeTapRecord(SampleRecord(8))};
  REQUIRE(confirmation.Encode().size() == 16 + kTapRecordBytes);
  CheckRoundTrip(confirmation);
  CheckRoundTrip(TopupConfirmationResult{1, ResultCode::authorisation_expired});
  CheckRoundTrip(IdentityCheckRequest{2, 8607550000000018, IdentityPurpose::pharmacy, 1700000000, {}});
  IdentityCheckResponse identity{2, ResultCode::ok, 1, 3, kSchemeMedical | kSchemePension, kSchemeMedical,
                                 kGroupElderly | kGroupLowIncome, kGroupElderly};
  REQUIRE(identity.Encode().size() == 20);
  CheckRoundTrip(identity);
  CheckRoundTrip(MedicalSettlementRequest{3, 8607550000000018, MedicalCategory::drugs, "RX-2024-0001", 12345, 1700000000, {}});
  CheckRoundTrip(MedicalSettlementResponse{3, ResultCode::ok, 8000, 3000, 1345, {1, 2, 3}});
  CheckRoundTrip(BillPaymentRequest{4, 8607550000000018, "WATER-2024-06-0001", 4520, {}});
  CheckRoundTrip(BillPaymentResponse{4, ResultCode::ok, 4520, 480, "T-000123"});
  CheckRoundTrip(BillPaymentResponse{4, ResultCode::insufficient_funds, 0, 480, ""});
}

TEST_CASE("Malformed online requests are refused", "[terminals][messages]") {
  Bytes identity = IdentityCheckRequest{2, 1, IdentityPurpose::employment_office, 0, {}}.Encode();
  identity[16] = 9;  // unknown purpose
  REQUIRE(IdentityCheckRequest::Decode(identity).status().code() == "malformed_message");
  Bytes medical = MedicalSettlementRequest{3, 1, MedicalCategory::drugs, "R1", 1, 0, {}}.Encode();
  medical[16] = 0;  // unknown category
  REQUIRE(MedicalSettlementRequest::Decode(medical).status().code() == "malformed_message");
  Bytes bill = BillPaymentRequest{4, 1, "B1", 1, {}}.Encode();
  std::fill(bill.begin() + 16, bill.begin() + 48, 0);  // empty bill id
  REQUIRE(BillPaymentRequest::Decode(bill).status().code() == "malformed_message");
  REQUIRE(DecodeOnlineRequest(FrameType::heartbeat, {}).status().code() == "malformed_message");
}

TEST_CASE("Online requests dispatch by frame type and refusals answer the right type", "[terminals][messages]") {
  OnlineRequest request = BillPaymentRequest{42, 1, "B1", 100, {}};
  REQUIRE(TypeOf(request) == FrameType::bill_payment_request);
  auto decoded = DecodeOnlineRequest(TypeOf(request), EncodeOnline(request));
  REQUIRE(decoded.ok());
  REQUIRE(RequestIdOf(*decoded) == 42);
  OnlineResponse refusal = RefusalFor(request, ResultCode::unsupported_request);
  REQUIRE(TypeOf(refusal) == FrameType::bill_payment_response);
  REQUIRE(RequestIdOf(refusal) == 42);
  REQUIRE(CodeOf(refusal) == ResultCode::unsupported_request);
  REQUIRE(Answers(refusal, request));
  REQUIRE_FALSE(Answers(RefusalFor(TopupRequest{}, ResultCode::ok), request));
  REQUIRE(IsOnlineRequestType(FrameType::topup_confirmation));
  REQUIRE_FALSE(IsOnlineRequestType(FrameType::topup_authorisation));
}

TEST_CASE("Error messages cut long texts at a character boundary", "[terminals][messages]") {
  ErrorMessage error{ResultCode::sequence_error, "frame 7 expected"};
  CheckRoundTrip(error);
  REQUIRE(ToHex(ByteView(error.Encode()).first(4)) == "00690010");
  std::string long_text(kErrorTextBytesMax - 1, 'a');
  long_text += "\xe5\x8d\xa1";  // a three-byte character across the limit
  ErrorMessage cut{ResultCode::internal_error, long_text};
  auto back = ErrorMessage::Decode(cut.Encode());
  REQUIRE(back.ok());
  REQUIRE(back->text == std::string(kErrorTextBytesMax - 1, 'a'));
  Bytes too_long = {0, 0, 0x01, 0x01};
  too_long.resize(4 + 257);
  REQUIRE(ErrorMessage::Decode(too_long).status().code() == "malformed_message");
}

TEST_CASE("Result codes have stable numbers and names", "[terminals][codes]") {
  REQUIRE(static_cast<uint16_t>(ResultCode::sequence_error) == 105);
  REQUIRE(static_cast<uint16_t>(ResultCode::unknown_terminal) == 200);
  REQUIRE(static_cast<uint16_t>(ResultCode::accepted) == 300);
  REQUIRE(static_cast<uint16_t>(ResultCode::retry_later) == 399);
  REQUIRE(ResultCodeName(ResultCode::bad_frame_mac) == "bad_frame_mac");
  REQUIRE(ResultCodeName(static_cast<ResultCode>(999)) == "unknown_code");
  REQUIRE(ParseResultCode("authentication_failed") == ResultCode::authentication_failed);
  REQUIRE_FALSE(ParseResultCode("nonsense").has_value());
  REQUIRE(IsFinalRecordResult(ResultCode::duplicate));
  REQUIRE_FALSE(IsFinalRecordResult(ResultCode::retry_later));
  REQUIRE_FALSE(IsFinalRecordResult(ResultCode::tac_missing));
  REQUIRE(IsFinalRecordResult(ResultCode::unknown_terminal));
  REQUIRE(IsFinalRecordResult(ResultCode::terminal_key_revoked));
  REQUIRE_FALSE(IsFinalRecordResult(ResultCode::sequence_error));
  REQUIRE_FALSE(IsFinalRecordResult(static_cast<ResultCode>(350)));
  REQUIRE(FrameTypeName(FrameType::denylist_page) == "denylist_page");
  REQUIRE_FALSE(IsKnownFrameType(0x99));
}

TEST_CASE("The card proof covers a request's body before the proof", "[terminals][messages]") {
  BillPaymentRequest bill{4, 8607550000000018, "WATER-1", 4520, {1, 2, 3, 4, 5, 6, 7, 8}};
  Bytes body = bill.Encode();
  Bytes input = CardProofInput(OnlineRequest(bill));
  REQUIRE(input.size() == body.size() - kCardProofBytes);
  REQUIRE(std::equal(input.begin(), input.end(), body.begin()));
  REQUIRE(ToHex(ByteView(body).last(kCardProofBytes)) == "0102030405060708");
  REQUIRE(CardProofInput(OnlineRequest(TopupRequest{})).size() == 44);
  REQUIRE(CardProofInput(OnlineRequest(IdentityCheckRequest{})).size() == 25);
  REQUIRE(CardProofInput(OnlineRequest(MedicalSettlementRequest{1, 1, MedicalCategory::drugs, "R", 1, 0, {}})).size() == 65);
  REQUIRE(CardProofInput(OnlineRequest(TopupConfirmation{})).empty());
}
