#include "terminals/client.h"

#include <chrono>
#include <vector>

#include "core/clock.h"
#include "crypto/digest.h"
#include "crypto/mac.h"
#include "crypto/random.h"
#include "terminals/byte_stream.h"
#include "terminals/secure_channel.h"

namespace citycard::terminals {

using detail::FrameStream;
using detail::kAsTuple;

namespace {

Status Closed() { return Status::Internal("connection_closed", "the session is closed"); }

Status FromErrorFrame(const ErrorMessage& error) {
  std::string code(ResultCodeName(error.code));
  if (error.code == ResultCode::unknown_terminal) return Status::NotFound(code, error.text);
  return Status::Refused(code, error.text);
}

Status Unexpected(FrameType got, FrameType wanted) {
  return Status::BadInput("unexpected_message", "expected " + std::string(FrameTypeName(wanted)) +
                                                    ", got " + std::string(FrameTypeName(got)));
}

template <typename T>
asio::awaitable<void> Store(asio::awaitable<Result<T>> task, std::optional<Result<T>>* out) {
  out->emplace(co_await std::move(task));
}

}  // namespace

struct TerminalClient::Impl {
  explicit Impl(ClientOptions client_options) : options(std::move(client_options)) {}

  // Runs one operation on the client's own io_context for at most timeout_ms. On a timeout
  // the stream is closed, which ends the operation, and the session is over.
  template <typename T>
  Result<T> Run(asio::awaitable<Result<T>> task) {
    if (closed) return Closed();
    std::optional<Result<T>> out;
    asio::co_spawn(io, Store<T>(std::move(task), &out), [&out](std::exception_ptr e) {
      if (e && !out) out.emplace(Status::Internal("connection_closed", "the client failed"));
    });
    io.restart();
    io.run_for(std::chrono::milliseconds(options.timeout_ms));
    if (!out) {
      Shut();
      io.restart();
      io.run();  // lets the cancelled operation finish
      return Status::Internal("timeout", "no answer within " + std::to_string(options.timeout_ms) + " ms");
    }
    if (!out->ok() && EndsSession(out->status())) Shut();
    return std::move(*out);
  }

  // Every failure but the caller's own mistakes ends the session.
  static bool EndsSession(const Status& status) {
    return status.kind() != Kind::usage && status.code() != "invalid_tap_record" &&
           status.code() != "batch_too_large";
  }

  void Shut() {
    closed = true;
    if (frames) frames->stream().Close();
    std::error_code ignored;
    if (connecting) connecting->close(ignored);
    resolver.cancel();
  }

  asio::awaitable<Result<bool>> Send(FrameType type, ByteView body) {
    Bytes payload = channel ? channel->Seal(type, body) : Bytes(body.begin(), body.end());
    last_sent = EncodeFrame(static_cast<uint8_t>(type), payload);
    std::error_code ec = co_await frames->Send(last_sent);
    if (ec) co_return Status::Internal("connection_closed", ec.message());
    co_return true;
  }

  asio::awaitable<Result<bool>> SendRaw(Bytes bytes) {
    std::error_code ec = co_await frames->Send(bytes);
    if (ec) co_return Status::Internal("connection_closed", ec.message());
    co_return true;
  }

  asio::awaitable<Result<ReceivedMessage>> Receive() {
    for (;;) {
      FrameStream::Received received = co_await frames->Receive();
      if (received.outcome == FrameStream::Outcome::closed) {
        co_return Status::Internal("connection_closed", received.error_code.message());
      }
      if (received.outcome == FrameStream::Outcome::bad) {
        if (frames->stream().IsSerial()) continue;  // line noise
        co_return Status::BadInput("malformed_frame", std::string(DecodeErrorName(received.error)));
      }
      co_return Open(received.frame);
    }
  }

  Result<ReceivedMessage> Open(const Frame& frame) {
    if (frame.version != kProtocolVersion) {
      return Status::BadInput("unsupported_version", "frame version " + std::to_string(frame.version));
    }
    ReceivedMessage message;
    message.type = static_cast<FrameType>(frame.type);
    if (channel) {
      SecureChannel::Opened opened = channel->Open(frame);
      if (opened.code == ResultCode::ok) {
        message.body = std::move(opened.body);
      } else if (message.type == FrameType::error && ErrorMessage::Decode(frame.payload).ok()) {
        // A plain error frame in a secured session: a serial line whose session the server
        // has already dropped. It is not authenticated, but it ends the session either way.
        message.body = frame.payload;
      } else {
        return Status::BadInput(std::string(ResultCodeName(opened.code)), "the server's frame was refused");
      }
    } else {
      message.body = frame.payload;
    }
    if (message.type == FrameType::error) {
      auto error = ErrorMessage::Decode(message.body);
      if (!error.ok()) return error.status();
      return FromErrorFrame(*error);
    }
    return message;
  }

  asio::awaitable<Result<Bytes>> Expect(FrameType wanted) {
    auto message = co_await Receive();
    if (!message.ok()) co_return message.status();
    if (message->type != wanted) co_return Unexpected(message->type, wanted);
    co_return std::move(message->body);
  }

  asio::awaitable<Result<bool>> Handshake() {
    Hello hello;
    hello.terminal_id = options.terminal_id;
    hello.key_version = options.key_version;
    Status random = crypto::FillRandom(hello.terminal_nonce);
    if (!random.ok()) co_return random;
    auto sent = co_await Send(FrameType::hello, hello.Encode());
    if (!sent.ok()) co_return sent.status();
    auto challenge_body = co_await Expect(FrameType::challenge);
    if (!challenge_body.ok()) co_return challenge_body.status();
    auto challenge = Challenge::Decode(*challenge_body);
    if (!challenge.ok()) co_return challenge.status();
    TerminalProof proof{ComputeTerminalProof(options.terminal_key, hello, *challenge)};
    sent = co_await Send(FrameType::terminal_proof, proof.Encode());
    if (!sent.ok()) co_return sent.status();
    auto server_body = co_await Expect(FrameType::server_proof);
    if (!server_body.ok()) co_return server_body.status();
    auto server_proof = ServerProof::Decode(*server_body);
    if (!server_proof.ok()) co_return server_proof.status();
    Proof expected = ComputeServerProof(options.terminal_key, hello, *challenge);
    if (!crypto::ConstantTimeEqual(expected, server_proof->proof)) {
      co_return Status::BadInput("server_authentication_failed",
                                 "the server does not know this terminal's key");
    }
    channel.emplace(DeriveSessionKeys(options.terminal_key, hello, *challenge), ChannelRole::terminal);
    co_return true;
  }

  // One request, one answer of a known type.
  asio::awaitable<Result<Bytes>> Exchange(FrameType type, Bytes body, FrameType wanted) {
    auto sent = co_await Send(type, body);
    if (!sent.ok()) co_return sent.status();
    co_return co_await Expect(wanted);
  }

  asio::awaitable<Result<DenylistUpdate>> Denylist(uint64_t known_version) {
    auto sent = co_await Send(FrameType::denylist_request, DenylistRequest{known_version}.Encode());
    if (!sent.ok()) co_return sent.status();
    std::vector<DenylistPage> pages;
    do {
      auto body = co_await Expect(FrameType::denylist_page);
      if (!body.ok()) co_return body.status();
      auto page = DenylistPage::Decode(*body);
      if (!page.ok()) co_return page.status();
      pages.push_back(std::move(page).value());
    } while (pages.size() < pages.front().page_count);
    co_return AssembleDenylist(pages);
  }

  asio::awaitable<Result<Document>> FetchDocument(DocumentKind kind, uint32_t known_version) {
    auto sent = co_await Send(FrameType::document_request, DocumentRequest{kind, known_version}.Encode());
    if (!sent.ok()) co_return sent.status();
    std::vector<DocumentPage> pages;
    do {
      auto body = co_await Expect(FrameType::document_page);
      if (!body.ok()) co_return body.status();
      auto page = DocumentPage::Decode(*body);
      if (!page.ok()) co_return page.status();
      pages.push_back(std::move(page).value());
    } while (pages.size() < pages.front().page_count);
    co_return AssembleDocument(pages);
  }

  Status VerifyAck(const BatchAck& ack, const BatchUpload& upload) {
    if (ack.terminal_id != options.terminal_id || ack.batch_id != upload.batch_id ||
        ack.results.size() != upload.record_count()) {
      return Status::BadInput("ack_mismatch", "the acknowledgement is for another batch");
    }
    if (ack.batch_digest != digester.Sha256(upload.records)) {
      return Status::BadInput("ack_mismatch", "the acknowledgement's digest is not of these records");
    }
    if (options.core_public_key &&
        !crypto::VerifyEd25519(*options.core_public_key, ack.SignedBytes(), ack.signature)) {
      return Status::BadInput("bad_ack_signature", "the acknowledgement is not signed by the core");
    }
    return Status::Ok();
  }

  ClientOptions options;
  asio::io_context io;
  asio::ip::tcp::resolver resolver{io};
  std::optional<asio::ip::tcp::socket> connecting;  // only while ConnectTcp runs
  std::unique_ptr<FrameStream> frames;
  std::optional<SecureChannel> channel;
  crypto::Sha256Digester digester;
  Bytes last_sent;
  bool closed = false;
  int64_t clock_offset_ms = 0;
};

TerminalClient::TerminalClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TerminalClient::~TerminalClient() {
  if (impl_) Close();
}

Result<std::unique_ptr<TerminalClient>> TerminalClient::ConnectTcp(const std::string& host, uint16_t port,
                                                                   ClientOptions options,
                                                                   std::optional<ClientTls> tls) {
  auto impl = std::make_unique<Impl>(std::move(options));
  Impl* raw = impl.get();
  std::shared_ptr<asio::ssl::context> context;
  if (tls) {
    context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    std::error_code ec;
    if (tls->verify_peer) {
      context->set_verify_mode(asio::ssl::verify_peer, ec);
      if (!ec) context->load_verify_file(tls->ca_certificate_path, ec);
    } else {
      context->set_verify_mode(asio::ssl::verify_none, ec);
    }
    if (ec) return Status::BadInput("tls_setup_failed", "cannot load the CA certificates: " + ec.message());
  }
  auto connect = [raw, host, port, context, tls]() -> asio::awaitable<Result<bool>> {
    auto [resolve_error, endpoints] = co_await raw->resolver.async_resolve(host, std::to_string(port), kAsTuple);
    if (resolve_error) co_return Status::Internal("connection_failed", host + ": " + resolve_error.message());
    raw->connecting.emplace(raw->io);
    auto [connect_error, endpoint] = co_await asio::async_connect(*raw->connecting, endpoints, kAsTuple);
    asio::ip::tcp::socket socket = std::move(*raw->connecting);
    raw->connecting.reset();
    (void)endpoint;
    if (connect_error) {
      co_return Status::Internal("connection_failed", host + ":" + std::to_string(port) + ": " + connect_error.message());
    }
    std::error_code ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    if (context) {
      raw->frames = std::make_unique<FrameStream>(detail::MakeTlsStream(
          std::move(socket), context, asio::ssl::stream_base::client, tls->server_name));
      std::error_code ec = co_await raw->frames->stream().Handshake();
      if (ec) co_return Status::Internal("tls_handshake_failed", ec.message());
    } else {
      raw->frames = std::make_unique<FrameStream>(detail::MakeTcpStream(std::move(socket)));
    }
    co_return true;
  };
  auto connected = raw->Run<bool>(connect());
  if (!connected.ok()) return connected.status();
  return std::unique_ptr<TerminalClient>(new TerminalClient(std::move(impl)));
}

Result<std::unique_ptr<TerminalClient>> TerminalClient::OpenSerial(const std::string& device, unsigned baud,
                                                                   ClientOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  auto port = detail::OpenSerialPort(impl->io.get_executor(), device, baud);
  if (!port.ok()) return port.status();
  impl->frames = std::make_unique<FrameStream>(detail::MakeSerialStream(std::move(port).value(), device));
  return std::unique_ptr<TerminalClient>(new TerminalClient(std::move(impl)));
}

Result<std::unique_ptr<TerminalClient>> TerminalClient::AdoptDescriptor(int fd, ClientOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  asio::posix::stream_descriptor descriptor(impl->io, fd);
  impl->frames = std::make_unique<FrameStream>(detail::MakeDescriptorStream(std::move(descriptor)));
  return std::unique_ptr<TerminalClient>(new TerminalClient(std::move(impl)));
}

Status TerminalClient::Handshake() {
  if (impl_->channel) return Status::Usage("already_authenticated", "the handshake is done");
  auto done = impl_->Run<bool>(impl_->Handshake());
  return done.status();
}

bool TerminalClient::authenticated() const { return impl_->channel.has_value() && !impl_->closed; }

Result<HeartbeatAck> TerminalClient::SendHeartbeat(const Heartbeat& heartbeat) {
  if (!impl_->channel) return Status::Usage("not_authenticated", "handshake first");
  SystemClock clock;
  int64_t sent_ms = clock.NowMs();
  auto body = impl_->Run<Bytes>(impl_->Exchange(FrameType::heartbeat, heartbeat.Encode(), FrameType::heartbeat_ack));
  if (!body.ok()) return body.status();
  auto ack = HeartbeatAck::Decode(*body);
  if (!ack.ok()) {
    impl_->Shut();
    return ack.status();
  }
  int64_t received_ms = clock.NowMs();
  impl_->clock_offset_ms = ack->server_time_ms - (sent_ms + received_ms) / 2;
  return ack;
}

int64_t TerminalClient::clock_offset_ms() const { return impl_->clock_offset_ms; }

Result<BatchAck> TerminalClient::UploadBatch(uint32_t batch_id, std::span<const TapRecord> records) {
  if (!impl_->channel) return Status::Usage("not_authenticated", "handshake first");
  if (records.empty() || records.size() > kRecordsPerBatchMax) {
    return Status::Usage("batch_too_large", "a batch holds 1 to 256 records");
  }
  for (const TapRecord& record : records) CITYCARD_RETURN_IF_ERROR(ValidateTapRecord(record));
  BatchUpload upload = BatchUpload::FromRecords(batch_id, records);
  auto body = impl_->Run<Bytes>(impl_->Exchange(FrameType::batch_upload, upload.Encode(), FrameType::batch_ack));
  if (!body.ok()) return body.status();
  auto ack = BatchAck::Decode(*body);
  if (!ack.ok()) {
    impl_->Shut();
    return ack.status();
  }
  Status verified = impl_->VerifyAck(*ack, upload);
  if (!verified.ok()) {
    impl_->Shut();
    return verified;
  }
  return ack;
}

Result<DenylistUpdate> TerminalClient::DownloadDenylist(uint64_t known_version) {
  if (!impl_->channel) return Status::Usage("not_authenticated", "handshake first");
  return impl_->Run<DenylistUpdate>(impl_->Denylist(known_version));
}

Result<Document> TerminalClient::DownloadDocument(DocumentKind kind, uint32_t known_version) {
  if (!impl_->channel) return Status::Usage("not_authenticated", "handshake first");
  return impl_->Run<Document>(impl_->FetchDocument(kind, known_version));
}

Result<OnlineResponse> TerminalClient::SendOnline(const OnlineRequest& request) {
  if (!impl_->channel) return Status::Usage("not_authenticated", "handshake first");
  auto task = [](Impl* impl, OnlineRequest request) -> asio::awaitable<Result<OnlineResponse>> {
    auto sent = co_await impl->Send(TypeOf(request), EncodeOnline(request));
    if (!sent.ok()) co_return sent.status();
    auto message = co_await impl->Receive();
    if (!message.ok()) co_return message.status();
    auto response = DecodeOnlineResponse(message->type, message->body);
    if (!response.ok()) co_return response.status();
    if (!Answers(*response, request) || RequestIdOf(*response) != RequestIdOf(request)) {
      co_return Status::BadInput("unexpected_message", "the response does not answer the request");
    }
    co_return response;
  };
  return impl_->Run<OnlineResponse>(task(impl_.get(), request));
}

void TerminalClient::Close() {
  impl_->Shut();
  impl_->io.restart();
  impl_->io.poll();
}

Status TerminalClient::SendMessage(FrameType type, ByteView body) {
  return impl_->Run<bool>(impl_->Send(type, body)).status();
}

Result<ReceivedMessage> TerminalClient::ReceiveMessage() { return impl_->Run<ReceivedMessage>(impl_->Receive()); }

Result<Bytes> TerminalClient::SealFrame(FrameType type, ByteView body) {
  if (!impl_->channel) return Status::Usage("not_authenticated", "handshake first");
  return EncodeFrame(static_cast<uint8_t>(type), impl_->channel->Seal(type, body));
}

Status TerminalClient::SendRawBytes(ByteView bytes) {
  return impl_->Run<bool>(impl_->SendRaw(Bytes(bytes.begin(), bytes.end()))).status();
}

const Bytes& TerminalClient::last_sent_frame() const { return impl_->last_sent; }

int TerminalClient::descriptor() const {
  if (impl_->closed || !impl_->frames) return -1;
  return impl_->frames->stream().NativeHandle();
}

}  // namespace citycard::terminals
