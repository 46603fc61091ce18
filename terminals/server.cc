#include "terminals/server.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <vector>

#include "crypto/digest.h"
#include "crypto/mac.h"
#include "crypto/random.h"
#include "terminals/byte_stream.h"
#include "terminals/secure_channel.h"

namespace citycard::terminals {

using detail::ByteStream;
using detail::FrameStream;
using detail::kAsTuple;
using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;

namespace {

constexpr int64_t kSerialRetryMs = 1'000;
constexpr int64_t kAcceptRetryMs = 100;

SteadyTime AfterMs(int64_t ms) { return SteadyClock::now() + std::chrono::milliseconds(ms); }

// A note on GCC 12, which builds this project: in a full-expression that contains co_await,
// it destroys twice (a) a lambda temporary that captures objects by copy and (b) the class
// prvalue of a conditional expression (GCC bugs fixed in later releases; reproduced with a
// ten-line program). A doubly destroyed executor releases its strand twice and crashes much
// later. So every such lambda below is a named variable, every conditional text is computed
// into a named string before the co_await, and lambdas written inside co_await expressions
// capture by reference only.

// Awaits a backend call whose answer comes through a callback, possibly on another thread:
// the answer is posted back to the awaiting coroutine's executor (its strand), and the
// executor is kept busy (outstanding work) until then, so that run() does not return while
// the backend is still working on a session's request. The callback moves what it holds
// into the posted handler, so the backend's copy of `done` keeps no asio object alive.
template <typename T, typename Start>
asio::awaitable<T> CallBackend(Start start) {
  auto executor = co_await asio::this_coro::executor;
  auto initiation = [&start, executor](auto handler) {
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    auto work = asio::prefer(executor, asio::execution::outstanding_work.tracked);
    start([shared = std::move(shared), work = std::move(work)](T value) mutable {
      asio::post(work, [shared = std::move(shared), value = std::move(value)]() mutable {
        (*shared)(std::move(value));
      });
      work = asio::any_io_executor();
    });
  };
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(T)>(initiation,
                                                                                  asio::use_awaitable);
}

}  // namespace

class Session;

enum class Admission { admitted, full, stopping };

struct Server::State : std::enable_shared_from_this<Server::State> {
  State(asio::io_context& io_context, TerminalBackend& backend_ref, ServerOptions server_options)
      : io(io_context), backend(backend_ref), options(server_options), strand(asio::make_strand(io_context)) {}

  Admission Register(const std::shared_ptr<Session>& session, bool counted);
  void Unregister(const std::shared_ptr<Session>& session, bool counted);
  void Security(SecurityEvent event);

  asio::io_context& io;
  TerminalBackend& backend;
  ServerOptions options;
  crypto::Sha256Digester digester;
  asio::strand<asio::io_context::executor_type> strand;  // acceptors and Stop

  std::mutex mutex;  // guards the members below
  std::set<std::shared_ptr<Session>> sessions;
  size_t counted_sessions = 0;
  bool stopping = false;

  // On the strand only.
  std::vector<std::shared_ptr<asio::ip::tcp::acceptor>> acceptors;
  std::unique_ptr<asio::steady_timer> grace_timer;

  std::atomic<uint64_t> sessions_started{0};
  std::atomic<uint64_t> sessions_refused{0};
  std::atomic<uint64_t> sessions_authenticated{0};
  std::atomic<uint64_t> batches_acknowledged{0};
  std::atomic<uint64_t> records_acknowledged{0};
  std::atomic<uint64_t> security_events{0};
  std::atomic<uint64_t> frames_dropped{0};
};

// One terminal connection (TCP, TLS) or one serial line. All its members are used on its
// strand only; RequestStop and Abort post there.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Server::State> state, asio::any_io_executor executor,
          std::unique_ptr<ByteStream> stream)
      : state_(std::move(state)),
        executor_(std::move(executor)),
        frames_(std::move(stream)),
        serial_(frames_.stream().IsSerial()),
        timer_(executor_) {}

  // Runs the session to its end. `refusal` other than ok: answer it and close.
  asio::awaitable<void> Run(ResultCode refusal);

  void RequestStop() {
    asio::post(executor_, [self = shared_from_this()] {
      self->stop_requested_ = true;
      if (self->reading_) self->frames_.stream().Cancel();
    });
  }

  void Abort() {
    asio::post(executor_, [self = shared_from_this()] { self->frames_.stream().Close(); });
  }

  bool io_failed() const { return io_failed_; }

 private:
  enum class Phase { awaiting_hello, handshake, secured };

  asio::awaitable<void> Watchdog(std::shared_ptr<Session> self);
  asio::awaitable<void> RunSerial();
  asio::awaitable<std::optional<Frame>> ReceiveFrame();
  asio::awaitable<bool> SendFrame(FrameType type, ByteView body, std::optional<SteadyTime> deadline = {});
  asio::awaitable<void> SendError(ResultCode code, std::string text);
  asio::awaitable<bool> Authenticate(const Frame& first);
  asio::awaitable<void> ServeSecured();
  asio::awaitable<bool> Dispatch(FrameType type, const Bytes& body);
  asio::awaitable<bool> HandleHeartbeat(const Bytes& body);
  asio::awaitable<bool> HandleBatch(const Bytes& body);
  asio::awaitable<bool> HandleDenylist(const Bytes& body);
  asio::awaitable<bool> HandleDocument(const Bytes& body);
  asio::awaitable<bool> HandleOnline(FrameType type, const Bytes& body);

  void SetDeadline(SteadyTime deadline) {
    deadline_ = deadline;
    if (deadline < timer_.expiry()) timer_.cancel();
  }
  void SetReadDeadline();
  void Security(ResultCode code, std::string detail);
  void Finish();

  std::shared_ptr<Server::State> state_;
  asio::any_io_executor executor_;
  FrameStream frames_;
  bool serial_;
  asio::steady_timer timer_;
  SteadyTime deadline_ = SteadyTime::max();
  SteadyTime handshake_deadline_ = SteadyTime::max();
  Phase phase_ = Phase::awaiting_hello;
  ResultCode expired_ = ResultCode::ok;  // set by the watchdog: handshake_ or idle_timeout
  bool stop_requested_ = false;
  bool reading_ = false;
  bool finished_ = false;
  bool io_failed_ = false;
  std::optional<Frame> pending_;  // a hello that restarts a serial session
  std::optional<SecureChannel> channel_;
  TerminalIdentity identity_;
  std::string claimed_id_;
};

// ---- Server::State ----

Admission Server::State::Register(const std::shared_ptr<Session>& session, bool counted) {
  std::lock_guard lock(mutex);
  if (stopping) return Admission::stopping;
  if (counted && counted_sessions >= options.limits.sessions_max) return Admission::full;
  sessions.insert(session);
  if (counted) ++counted_sessions;
  return Admission::admitted;
}

void Server::State::Unregister(const std::shared_ptr<Session>& session, bool counted) {
  std::lock_guard lock(mutex);
  if (sessions.erase(session) == 0) return;
  if (counted) --counted_sessions;
  if (stopping && sessions.empty()) {
    asio::post(strand, [self = shared_from_this()] {
      if (self->grace_timer) self->grace_timer->cancel();
    });
  }
}

void Server::State::Security(SecurityEvent event) {
  ++security_events;
  spdlog::warn("terminal {} ({}): refused: {}: {}", event.terminal_id, event.peer,
               ResultCodeName(event.code), event.detail);
  backend.RecordSecurityEvent(std::move(event));
}

// ---- Session ----

void Session::Security(ResultCode code, std::string detail) {
  SecurityEvent event;
  event.code = code;
  event.terminal_id = claimed_id_;
  event.peer = frames_.stream().Peer();
  event.time_ms = state_->options.clock->NowMs();
  event.detail = std::move(detail);
  state_->Security(std::move(event));
}

void Session::SetReadDeadline() {
  switch (phase_) {
    case Phase::awaiting_hello:
      SetDeadline(serial_ ? SteadyTime::max() : handshake_deadline_);
      break;
    case Phase::handshake:
      SetDeadline(handshake_deadline_);
      break;
    case Phase::secured:
      SetDeadline(AfterMs(state_->options.limits.idle_timeout_ms));
      break;
  }
}

asio::awaitable<void> Session::Watchdog(std::shared_ptr<Session> self) {
  // `self` keeps the session alive as long as its watchdog runs.
  (void)self;
  while (!finished_) {
    timer_.expires_at(deadline_);
    co_await timer_.async_wait(kAsTuple);
    if (finished_) co_return;
    SteadyTime now = SteadyClock::now();
    if (now < deadline_) continue;
    if (expired_ == ResultCode::ok) {
      // Give the session a moment to say why it ends; the read it waits in is cancelled.
      expired_ = phase_ == Phase::secured ? ResultCode::idle_timeout : ResultCode::handshake_timeout;
      deadline_ = now + std::chrono::milliseconds(kErrorWriteGraceMs);
      frames_.stream().Cancel();
    } else {
      // It could not even send its error frame in time: a peer that does not read.
      frames_.stream().Close();
      deadline_ = SteadyTime::max();
    }
  }
}

void Session::Finish() {
  finished_ = true;
  frames_.stream().Close();
  timer_.cancel();
  state_->Unregister(shared_from_this(), !serial_);
}

asio::awaitable<std::optional<Frame>> Session::ReceiveFrame() {
  if (pending_) {
    std::optional<Frame> frame = std::move(pending_);
    pending_.reset();
    co_return frame;
  }
  for (;;) {
    if (expired_ != ResultCode::ok) {
      ResultCode code = expired_;
      std::string text = code == ResultCode::idle_timeout ? "no frame within the idle time limit"
                                                          : "the handshake took too long";
      co_await SendError(code, std::move(text));
      co_return std::nullopt;
    }
    if (stop_requested_) {
      if (phase_ != Phase::awaiting_hello) {
        co_await SendError(ResultCode::server_shutting_down, "the server is stopping");
      }
      co_return std::nullopt;
    }
    SetReadDeadline();
    reading_ = true;
    FrameStream::Received received = co_await frames_.Receive();
    reading_ = false;
    switch (received.outcome) {
      case FrameStream::Outcome::frame:
        co_return std::move(received.frame);
      case FrameStream::Outcome::bad: {
        if (serial_) {
          // Line noise: drop the frame and go on; a lost frame shows up as a sequence error.
          ++state_->frames_dropped;
          spdlog::debug("{}: dropped a frame: {}", frames_.stream().Peer(), DecodeErrorName(received.error));
          continue;
        }
        ResultCode code = received.error == DecodeError::oversize ? ResultCode::frame_too_large
                                                                  : ResultCode::malformed_frame;
        std::string text(DecodeErrorName(received.error));
        co_await SendError(code, std::move(text));
        co_return std::nullopt;
      }
      case FrameStream::Outcome::closed:
        if (received.error_code == asio::error::operation_aborted && frames_.stream().IsOpen()) {
          continue;  // cancelled by the watchdog or by Stop: the loop's top says why
        }
        io_failed_ = true;
        co_return std::nullopt;
    }
  }
}

asio::awaitable<bool> Session::SendFrame(FrameType type, ByteView body, std::optional<SteadyTime> deadline) {
  Bytes payload = channel_ ? channel_->Seal(type, body) : Bytes(body.begin(), body.end());
  Bytes frame = EncodeFrame(static_cast<uint8_t>(type), payload);
  if (deadline) {
    SetDeadline(*deadline);
  } else {
    SetDeadline(phase_ == Phase::secured ? AfterMs(state_->options.limits.idle_timeout_ms)
                                         : handshake_deadline_);
  }
  std::error_code ec = co_await frames_.Send(frame);
  SetDeadline(SteadyTime::max());
  if (ec) io_failed_ = ec != asio::error::operation_aborted;
  co_return !ec;
}

asio::awaitable<void> Session::SendError(ResultCode code, std::string text) {
  spdlog::debug("{} ({}): error {}: {}", claimed_id_, frames_.stream().Peer(), ResultCodeName(code), text);
  ErrorMessage error{code, std::move(text)};
  co_await SendFrame(FrameType::error, error.Encode(), AfterMs(kErrorWriteGraceMs));
}

asio::awaitable<void> Session::Run(ResultCode refusal) {
  try {
    asio::co_spawn(executor_, Watchdog(shared_from_this()), asio::detached);
    if (serial_) {
      co_await RunSerial();
    } else {
      handshake_deadline_ = AfterMs(state_->options.limits.handshake_timeout_ms);
      SetDeadline(handshake_deadline_);
      std::error_code ec = co_await frames_.stream().Handshake();
      if (ec) {
        spdlog::debug("{}: TLS handshake failed: {}", frames_.stream().Peer(), ec.message());
      } else if (refusal != ResultCode::ok) {
        std::string text = refusal == ResultCode::too_many_sessions ? "the server is full"
                                                                    : "the server is stopping";
        co_await SendError(refusal, std::move(text));
      } else {
        ++state_->sessions_started;
        std::optional<Frame> first = co_await ReceiveFrame();
        if (first && co_await Authenticate(*first)) co_await ServeSecured();
      }
    }
  } catch (const std::exception& e) {
    spdlog::error("{}: session ended by an exception: {}", frames_.stream().Peer(), e.what());
  }
  Finish();
}

// A serial line carries one terminal's sessions one after another: each hello starts a
// new handshake, and a session that ends (timeout, refusal) leaves the line open.
asio::awaitable<void> Session::RunSerial() {
  while (!stop_requested_ && !io_failed_ && frames_.stream().IsOpen()) {
    phase_ = Phase::awaiting_hello;
    channel_.reset();
    expired_ = ResultCode::ok;
    claimed_id_.clear();
    std::optional<Frame> first = co_await ReceiveFrame();
    if (!first) continue;
    if (first->type != static_cast<uint8_t>(FrameType::hello)) {
      // A frame of a session this line no longer has (the server timed it out): tell the
      // terminal to start again.
      co_await SendError(ResultCode::unexpected_message, "no session: send hello");
      continue;
    }
    ++state_->sessions_started;
    phase_ = Phase::handshake;
    handshake_deadline_ = AfterMs(state_->options.limits.handshake_timeout_ms);
    if (co_await Authenticate(*first)) co_await ServeSecured();
  }
}

asio::awaitable<bool> Session::Authenticate(const Frame& first) {
  phase_ = Phase::handshake;
  if (first.version != kProtocolVersion) {
    co_await SendError(ResultCode::unsupported_version, "this server speaks protocol version 1");
    co_return false;
  }
  if (first.type != static_cast<uint8_t>(FrameType::hello)) {
    co_await SendError(ResultCode::unexpected_message, "expected hello");
    co_return false;
  }
  auto hello = Hello::Decode(first.payload);
  if (!hello.ok()) {
    co_await SendError(ResultCode::malformed_message, hello.status().message());
    co_return false;
  }
  claimed_id_ = hello->terminal_id;
  SetDeadline(SteadyTime::max());
  auto info = co_await CallBackend<Result<TerminalAuthInfo>>([&](auto done) {
    state_->backend.LookupTerminal(hello->terminal_id, std::move(done));
  });
  if (!info.ok()) {
    if (info.status().kind() == Kind::not_found) {
      Security(ResultCode::unknown_terminal, "no terminal registered under this id");
      co_await SendError(ResultCode::unknown_terminal, "unknown terminal " + hello->terminal_id);
    } else {
      co_await SendError(ResultCode::backend_unavailable, info.status().ToString());
    }
    co_return false;
  }
  if (!info->active) {
    Security(ResultCode::terminal_disabled, "the terminal is disabled");
    co_await SendError(ResultCode::terminal_disabled, "terminal " + hello->terminal_id + " is disabled");
    co_return false;
  }
  const TerminalKey* key = nullptr;
  for (const TerminalKey& k : info->keys) {
    if (k.version == hello->key_version) key = &k;
  }
  if (key == nullptr) {
    Security(ResultCode::unknown_key_version, "key version " + std::to_string(hello->key_version));
    co_await SendError(ResultCode::unknown_key_version, "no key of this version");
    co_return false;
  }
  Challenge challenge;
  if (!crypto::FillRandom(challenge.server_nonce).ok()) {
    co_await SendError(ResultCode::internal_error, "no random bytes");
    co_return false;
  }
  if (!co_await SendFrame(FrameType::challenge, challenge.Encode())) co_return false;
  std::optional<Frame> next = co_await ReceiveFrame();
  if (!next) co_return false;
  if (serial_ && next->type == static_cast<uint8_t>(FrameType::hello)) {
    pending_ = std::move(next);  // the terminal started over
    co_return false;
  }
  if (next->version != kProtocolVersion || next->type != static_cast<uint8_t>(FrameType::terminal_proof)) {
    co_await SendError(ResultCode::unexpected_message, "expected terminal_proof");
    co_return false;
  }
  auto proof = TerminalProof::Decode(next->payload);
  if (!proof.ok()) {
    co_await SendError(ResultCode::malformed_message, proof.status().message());
    co_return false;
  }
  Proof expected = ComputeTerminalProof(key->key, *hello, challenge);
  if (!crypto::ConstantTimeEqual(expected, proof->proof)) {
    Security(ResultCode::authentication_failed, "the terminal's proof did not verify");
    co_await SendError(ResultCode::authentication_failed, "authentication failed");
    co_return false;
  }
  ServerProof server_proof{ComputeServerProof(key->key, *hello, challenge)};
  if (!co_await SendFrame(FrameType::server_proof, server_proof.Encode())) co_return false;
  channel_.emplace(DeriveSessionKeys(key->key, *hello, challenge), ChannelRole::server);
  phase_ = Phase::secured;
  identity_ = TerminalIdentity{info->terminal_id, info->operator_id, key->version, frames_.stream().Peer()};
  ++state_->sessions_authenticated;
  spdlog::debug("terminal {} ({}): authenticated", identity_.terminal_id, identity_.peer);
  co_return true;
}

asio::awaitable<void> Session::ServeSecured() {
  for (;;) {
    std::optional<Frame> frame = co_await ReceiveFrame();
    if (!frame) co_return;
    if (frame->type == static_cast<uint8_t>(FrameType::hello)) {
      if (serial_) {
        pending_ = std::move(frame);
      } else {
        co_await SendError(ResultCode::unexpected_message, "already authenticated");
      }
      co_return;
    }
    if (frame->version != kProtocolVersion) {
      co_await SendError(ResultCode::unsupported_version, "this server speaks protocol version 1");
      co_return;
    }
    SecureChannel::Opened opened = channel_->Open(*frame);
    if (opened.code != ResultCode::ok) {
      if (opened.code != ResultCode::malformed_frame) {
        Security(opened.code, "frame of type " + std::to_string(frame->type) + " refused");
      }
      std::string text = "frame refused";
      if (opened.code == ResultCode::sequence_error) {
        text = "expected sequence " + std::to_string(channel_->next_receive_sequence());
      }
      co_await SendError(opened.code, std::move(text));
      co_return;
    }
    SetDeadline(SteadyTime::max());
    if (!co_await Dispatch(static_cast<FrameType>(frame->type), opened.body)) co_return;
  }
}

asio::awaitable<bool> Session::Dispatch(FrameType type, const Bytes& body) {
  switch (type) {
    case FrameType::heartbeat: co_return co_await HandleHeartbeat(body);
    case FrameType::batch_upload: co_return co_await HandleBatch(body);
    case FrameType::denylist_request: co_return co_await HandleDenylist(body);
    case FrameType::document_request: co_return co_await HandleDocument(body);
    case FrameType::error: {
      auto error = ErrorMessage::Decode(body);
      spdlog::info("terminal {}: sent error {}: {}", identity_.terminal_id,
                   error.ok() ? ResultCodeName(error->code) : "malformed",
                   error.ok() ? error->text : error.status().message());
      co_return false;
    }
    default:
      if (IsOnlineRequestType(type)) co_return co_await HandleOnline(type, body);
      co_await SendError(ResultCode::unexpected_message,
                         "frame type " + std::to_string(static_cast<int>(type)) + " not expected");
      co_return false;
  }
}

asio::awaitable<bool> Session::HandleHeartbeat(const Bytes& body) {
  auto heartbeat = Heartbeat::Decode(body);
  if (!heartbeat.ok()) {
    co_await SendError(ResultCode::malformed_message, heartbeat.status().message());
    co_return false;
  }
  state_->backend.OnHeartbeat(identity_, *heartbeat);
  HeartbeatAck ack{state_->options.clock->NowMs(), state_->backend.CurrentVersions()};
  co_return co_await SendFrame(FrameType::heartbeat_ack, ack.Encode());
}

asio::awaitable<bool> Session::HandleBatch(const Bytes& body) {
  if (body.size() >= 6) {
    size_t count = static_cast<size_t>(body[4]) << 8 | body[5];
    if (count == 0 || count > kRecordsPerBatchMax) {
      co_await SendError(ResultCode::batch_too_large, "a batch holds 1 to 256 records");
      co_return false;
    }
  }
  auto upload = BatchUpload::Decode(body);
  if (!upload.ok()) {
    co_await SendError(ResultCode::malformed_message, upload.status().message());
    co_return false;
  }
  size_t count = upload->record_count();
  std::vector<ResultCode> results(count, ResultCode::invalid_record);
  std::vector<size_t> submitted;  // index in the upload of each record passed on
  BatchSubmission submission;
  submission.terminal = identity_;
  submission.batch_id = upload->batch_id;
  submission.received_ms = state_->options.clock->NowMs();
  for (size_t i = 0; i < count; ++i) {
    auto record = DecodeTapRecord(upload->record(i));
    if (!record.ok() || !ValidateTapRecord(*record).ok()) continue;  // invalid_record
    if (record->terminal_id != identity_.terminal_id) {
      results[i] = ResultCode::wrong_terminal;
      continue;
    }
    submitted.push_back(i);
    submission.records.push_back(std::move(record).value());
  }
  if (!submitted.empty()) {
    auto answer = co_await CallBackend<Result<std::vector<ResultCode>>>([&](auto done) {
      state_->backend.SubmitBatch(std::move(submission), std::move(done));
    });
    if (!answer.ok() || answer->size() != submitted.size()) {
      std::string text = "the core answered a wrong number of results";
      if (!answer.ok()) text = answer.status().ToString();
      co_await SendError(ResultCode::backend_unavailable, std::move(text));
      co_return false;
    }
    for (size_t j = 0; j < submitted.size(); ++j) results[submitted[j]] = (*answer)[j];
  }
  BatchAck ack;
  ack.terminal_id = identity_.terminal_id;
  ack.batch_id = upload->batch_id;
  ack.batch_digest = state_->digester.Sha256(upload->records);
  ack.server_time_ms = state_->options.clock->NowMs();
  ack.results = std::move(results);
  ack.signature = state_->options.ack_signer->Sign(ack.SignedBytes());
  if (!co_await SendFrame(FrameType::batch_ack, ack.Encode())) co_return false;
  ++state_->batches_acknowledged;
  state_->records_acknowledged += count;
  co_return true;
}

asio::awaitable<bool> Session::HandleDenylist(const Bytes& body) {
  auto request = DenylistRequest::Decode(body);
  if (!request.ok()) {
    co_await SendError(ResultCode::malformed_message, request.status().message());
    co_return false;
  }
  auto update = co_await CallBackend<Result<DenylistUpdate>>([&](auto done) {
    state_->backend.GetDenylist(request->known_version, std::move(done));
  });
  if (!update.ok()) {
    co_await SendError(ResultCode::backend_unavailable, update.status().ToString());
    co_return false;
  }
  auto pages = PaginateDenylist(*update);
  if (!pages.ok()) {
    co_await SendError(ResultCode::internal_error, pages.status().ToString());
    co_return false;
  }
  for (const DenylistPage& page : *pages) {
    if (!co_await SendFrame(FrameType::denylist_page, page.Encode())) co_return false;
  }
  co_return true;
}

asio::awaitable<bool> Session::HandleDocument(const Bytes& body) {
  auto request = DocumentRequest::Decode(body);
  if (!request.ok()) {
    co_await SendError(ResultCode::malformed_message, request.status().message());
    co_return false;
  }
  auto document = co_await CallBackend<Result<Document>>([&](auto done) {
    state_->backend.GetDocument(request->kind, request->known_version, std::move(done));
  });
  if (!document.ok()) {
    co_await SendError(ResultCode::backend_unavailable, document.status().ToString());
    co_return false;
  }
  auto pages = PaginateDocument(*document);
  if (!pages.ok() || document->kind != request->kind) {
    std::string text = "wrong document kind";
    if (!pages.ok()) text = pages.status().ToString();
    co_await SendError(ResultCode::internal_error, std::move(text));
    co_return false;
  }
  for (const DocumentPage& page : *pages) {
    if (!co_await SendFrame(FrameType::document_page, page.Encode())) co_return false;
  }
  co_return true;
}

asio::awaitable<bool> Session::HandleOnline(FrameType type, const Bytes& body) {
  auto request = DecodeOnlineRequest(type, body);
  if (!request.ok()) {
    co_await SendError(ResultCode::malformed_message, request.status().message());
    co_return false;
  }
  OnlineResponse response = co_await CallBackend<OnlineResponse>([&](auto done) {
    state_->backend.HandleOnline(identity_, *request, std::move(done));
  });
  if (!Answers(response, *request) || RequestIdOf(response) != RequestIdOf(*request) ||
      !IsEncodable(response)) {
    spdlog::error("terminal {}: the backend answered {} with a wrong response", identity_.terminal_id,
                  FrameTypeName(type));
    response = RefusalFor(*request, ResultCode::internal_error);
  }
  co_return co_await SendFrame(TypeOf(response), EncodeOnline(response));
}

// ---- Listeners ----

namespace {

void StartSession(std::shared_ptr<Session> session, ResultCode refusal, asio::any_io_executor executor) {
  asio::co_spawn(
      executor, [session, refusal]() -> asio::awaitable<void> { co_await session->Run(refusal); },
      [](std::exception_ptr e) {
        if (e) spdlog::error("a terminal session ended by an unexpected exception");
      });
}

asio::awaitable<void> AcceptLoop(std::shared_ptr<Server::State> state,
                                 std::shared_ptr<asio::ip::tcp::acceptor> acceptor,
                                 std::shared_ptr<asio::ssl::context> tls) {
  for (;;) {
    auto strand = asio::make_strand(state->io);
    auto [ec, socket] = co_await acceptor->async_accept(strand, kAsTuple);
    if (ec) {
      if (!acceptor->is_open() || ec == asio::error::operation_aborted) co_return;
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(kAcceptRetryMs));
      co_await pause.async_wait(kAsTuple);
      continue;
    }
    std::error_code ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    auto stream = tls ? detail::MakeTlsStream(std::move(socket), tls, asio::ssl::stream_base::server)
                      : detail::MakeTcpStream(std::move(socket));
    asio::any_io_executor executor = strand;
    auto session = std::make_shared<Session>(state, executor, std::move(stream));
    Admission admission = state->Register(session, true);
    ResultCode refusal = ResultCode::ok;
    if (admission == Admission::full) {
      refusal = ResultCode::too_many_sessions;
      ++state->sessions_refused;
    } else if (admission == Admission::stopping) {
      refusal = ResultCode::server_shutting_down;
    }
    StartSession(std::move(session), refusal, executor);
  }
}

asio::awaitable<void> SerialLoop(std::shared_ptr<Server::State> state, asio::serial_port first,
                                 std::string device, unsigned baud) {
  auto executor = co_await asio::this_coro::executor;
  std::optional<asio::serial_port> port(std::move(first));
  for (;;) {
    if (port) {
      auto session = std::make_shared<Session>(state, executor, detail::MakeSerialStream(std::move(*port), device));
      port.reset();
      if (state->Register(session, false) != Admission::admitted) co_return;
      co_await session->Run(ResultCode::ok);
    }
    {
      std::lock_guard lock(state->mutex);
      if (state->stopping) co_return;
    }
    asio::steady_timer pause(executor, std::chrono::milliseconds(kSerialRetryMs));
    co_await pause.async_wait(kAsTuple);
    auto reopened = detail::OpenSerialPort(executor, device, baud);
    if (reopened.ok()) {
      port.emplace(std::move(reopened).value());
    } else {
      spdlog::warn("{}", reopened.status().ToString());
    }
  }
}

}  // namespace

// ---- Server ----

Server::Server(asio::io_context& io, TerminalBackend& backend, ServerOptions options)
    : state_(std::make_shared<State>(io, backend, options)) {
  CITYCARD_ASSERT(options.clock != nullptr);
  CITYCARD_ASSERT(options.ack_signer != nullptr);
}

Server::~Server() { Stop(); }

Result<uint16_t> Server::ListenTcp(const std::string& host, uint16_t port, std::optional<TlsFiles> tls) {
  std::shared_ptr<asio::ssl::context> context;
  if (tls) {
    context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    std::error_code ec;
    context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                             asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                             asio::ssl::context::no_tlsv1_1,
                         ec);
    if (!ec) context->use_certificate_chain_file(tls->certificate_chain_path, ec);
    if (!ec) context->use_private_key_file(tls->private_key_path, asio::ssl::context::pem, ec);
    if (ec) return Status::BadInput("tls_setup_failed", "cannot load the certificate or key: " + ec.message());
  }
  std::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return Status::Usage("listen_failed", "not an IP address: " + host);
  asio::ip::tcp::endpoint endpoint(address, port);
  auto acceptor = std::make_shared<asio::ip::tcp::acceptor>(state_->strand);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::Internal("listen_failed", host + ":" + std::to_string(port) + ": " + ec.message());
  uint16_t bound = acceptor->local_endpoint().port();
  auto state = state_;
  asio::post(state->strand, [state, acceptor, context] {
    {
      std::lock_guard lock(state->mutex);
      if (state->stopping) return;
    }
    state->acceptors.push_back(acceptor);
    asio::co_spawn(state->strand, AcceptLoop(state, acceptor, context), asio::detached);
  });
  spdlog::info("listening for terminals on {}:{}{}", host, bound, tls ? " (TLS)" : "");
  return bound;
}

Status Server::OpenSerial(const std::string& device, unsigned baud) {
  auto executor = asio::make_strand(state_->io);
  auto port = detail::OpenSerialPort(executor, device, baud);
  if (!port.ok()) return port.status();
  asio::co_spawn(executor, SerialLoop(state_, std::move(port).value(), device, baud), asio::detached);
  spdlog::info("serving terminals on serial line {} at {} baud", device, baud);
  return Status::Ok();
}

void Server::Stop() {
  auto state = state_;
  {
    std::lock_guard lock(state->mutex);
    if (state->stopping) return;
    state->stopping = true;
  }
  asio::post(state->strand, [state] {
    for (auto& acceptor : state->acceptors) {
      std::error_code ec;
      acceptor->close(ec);
    }
    std::vector<std::shared_ptr<Session>> sessions;
    {
      std::lock_guard lock(state->mutex);
      sessions.assign(state->sessions.begin(), state->sessions.end());
    }
    for (auto& session : sessions) session->RequestStop();
    if (sessions.empty()) return;
    state->grace_timer = std::make_unique<asio::steady_timer>(
        state->strand, std::chrono::milliseconds(state->options.limits.shutdown_grace_ms));
    state->grace_timer->async_wait([state](std::error_code ec) {
      if (ec) return;
      std::vector<std::shared_ptr<Session>> remaining;
      {
        std::lock_guard lock(state->mutex);
        remaining.assign(state->sessions.begin(), state->sessions.end());
      }
      for (auto& session : remaining) session->Abort();
    });
  });
}

ServerStats Server::stats() const {
  ServerStats out;
  {
    std::lock_guard lock(state_->mutex);
    out.sessions_active = state_->sessions.size();
  }
  out.sessions_started = state_->sessions_started;
  out.sessions_refused = state_->sessions_refused;
  out.sessions_authenticated = state_->sessions_authenticated;
  out.batches_acknowledged = state_->batches_acknowledged;
  out.records_acknowledged = state_->records_acknowledged;
  out.security_events = state_->security_events;
  out.frames_dropped = state_->frames_dropped;
  return out;
}

}  // namespace citycard::terminals
