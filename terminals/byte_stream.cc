#include "terminals/byte_stream.h"

#include <unistd.h>

namespace citycard::terminals::detail {

namespace {

std::string EndpointText(const char* scheme, const asio::ip::tcp::socket& socket) {
  std::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  if (ec) return std::string(scheme) + ":?";
  return std::string(scheme) + ":" + endpoint.address().to_string() + ":" +
         std::to_string(endpoint.port());
}

class TcpStream final : public ByteStream {
 public:
  explicit TcpStream(asio::ip::tcp::socket socket)
      : socket_(std::move(socket)), peer_(EndpointText("tcp", socket_)) {}

  asio::awaitable<std::tuple<std::error_code, size_t>> ReadSome(asio::mutable_buffer buffer) override {
    co_return co_await socket_.async_read_some(buffer, kAsTuple);
  }
  asio::awaitable<std::error_code> WriteAll(asio::const_buffer buffer) override {
    auto [ec, n] = co_await asio::async_write(socket_, buffer, kAsTuple);
    (void)n;
    co_return ec;
  }
  void Cancel() override {
    std::error_code ec;
    socket_.cancel(ec);
  }
  void Close() override {
    std::error_code ec;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }
  bool IsOpen() const override { return socket_.is_open(); }
  std::string Peer() const override { return peer_; }
  int NativeHandle() override { return socket_.is_open() ? socket_.native_handle() : -1; }

 private:
  asio::ip::tcp::socket socket_;
  std::string peer_;
};

class TlsStream final : public ByteStream {
 public:
  TlsStream(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> context,
            asio::ssl::stream_base::handshake_type role, std::string server_name)
      : context_(std::move(context)),
        stream_(std::move(socket), *context_),
        role_(role),
        server_name_(std::move(server_name)),
        peer_(EndpointText("tls", stream_.next_layer())) {}

  asio::awaitable<std::error_code> Handshake() override {
    if (role_ == asio::ssl::stream_base::client && !server_name_.empty()) {
      // SNI, and the host name the certificate must carry when the context verifies.
      SSL_set_tlsext_host_name(stream_.native_handle(), server_name_.c_str());
      stream_.set_verify_callback(asio::ssl::host_name_verification(server_name_));
    }
    auto [ec] = co_await stream_.async_handshake(role_, kAsTuple);
    co_return ec;
  }
  asio::awaitable<std::tuple<std::error_code, size_t>> ReadSome(asio::mutable_buffer buffer) override {
    co_return co_await stream_.async_read_some(buffer, kAsTuple);
  }
  asio::awaitable<std::error_code> WriteAll(asio::const_buffer buffer) override {
    auto [ec, n] = co_await asio::async_write(stream_, buffer, kAsTuple);
    (void)n;
    co_return ec;
  }
  void Cancel() override {
    std::error_code ec;
    stream_.next_layer().cancel(ec);
  }
  void Close() override {
    // No TLS close_notify: a session ends after an error frame or a timeout, and waiting for
    // the peer's answer to a close_notify is exactly what a silent peer would not give.
    std::error_code ec;
    stream_.next_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    stream_.next_layer().close(ec);
  }
  bool IsOpen() const override { return stream_.next_layer().is_open(); }
  std::string Peer() const override { return peer_; }

 private:
  std::shared_ptr<asio::ssl::context> context_;
  asio::ssl::stream<asio::ip::tcp::socket> stream_;
  asio::ssl::stream_base::handshake_type role_;
  std::string server_name_;
  std::string peer_;
};

class SerialStream final : public ByteStream {
 public:
  SerialStream(asio::serial_port port, std::string device)
      : port_(std::move(port)), peer_("serial:" + device) {}

  asio::awaitable<std::tuple<std::error_code, size_t>> ReadSome(asio::mutable_buffer buffer) override {
    co_return co_await port_.async_read_some(buffer, kAsTuple);
  }
  asio::awaitable<std::error_code> WriteAll(asio::const_buffer buffer) override {
    auto [ec, n] = co_await asio::async_write(port_, buffer, kAsTuple);
    (void)n;
    co_return ec;
  }
  void Cancel() override {
    std::error_code ec;
    port_.cancel(ec);
  }
  void Close() override {
    std::error_code ec;
    port_.close(ec);
  }
  bool IsOpen() const override { return port_.is_open(); }
  std::string Peer() const override { return peer_; }
  bool IsSerial() const override { return true; }

 private:
  asio::serial_port port_;
  std::string peer_;
};

class DescriptorStream final : public ByteStream {
 public:
  explicit DescriptorStream(asio::posix::stream_descriptor descriptor)
      : descriptor_(std::move(descriptor)),
        peer_("fd:" + std::to_string(descriptor_.native_handle())) {}

  asio::awaitable<std::tuple<std::error_code, size_t>> ReadSome(asio::mutable_buffer buffer) override {
    co_return co_await descriptor_.async_read_some(buffer, kAsTuple);
  }
  asio::awaitable<std::error_code> WriteAll(asio::const_buffer buffer) override {
    auto [ec, n] = co_await asio::async_write(descriptor_, buffer, kAsTuple);
    (void)n;
    co_return ec;
  }
  void Cancel() override {
    std::error_code ec;
    descriptor_.cancel(ec);
  }
  void Close() override {
    std::error_code ec;
    descriptor_.close(ec);
  }
  bool IsOpen() const override { return descriptor_.is_open(); }
  std::string Peer() const override { return peer_; }
  // A descriptor is used for the terminal end of a serial line (a pseudo-terminal's master).
  bool IsSerial() const override { return true; }

 private:
  asio::posix::stream_descriptor descriptor_;
  std::string peer_;
};

}  // namespace

std::unique_ptr<ByteStream> MakeTcpStream(asio::ip::tcp::socket socket) {
  return std::make_unique<TcpStream>(std::move(socket));
}

std::unique_ptr<ByteStream> MakeTlsStream(asio::ip::tcp::socket socket,
                                          std::shared_ptr<asio::ssl::context> context,
                                          asio::ssl::stream_base::handshake_type role,
                                          std::string server_name) {
  return std::make_unique<TlsStream>(std::move(socket), std::move(context), role,
                                     std::move(server_name));
}

std::unique_ptr<ByteStream> MakeSerialStream(asio::serial_port port, std::string device) {
  return std::make_unique<SerialStream>(std::move(port), std::move(device));
}

std::unique_ptr<ByteStream> MakeDescriptorStream(asio::posix::stream_descriptor descriptor) {
  return std::make_unique<DescriptorStream>(std::move(descriptor));
}

Result<asio::serial_port> OpenSerialPort(asio::any_io_executor executor, const std::string& device,
                                         unsigned baud) {
  asio::serial_port port(executor);
  std::error_code ec;
  port.open(device, ec);
  if (ec) return Status::Internal("serial_open_failed", device + ": " + ec.message());
  port.set_option(asio::serial_port::baud_rate(baud), ec);
  if (!ec) port.set_option(asio::serial_port::character_size(8), ec);
  if (!ec) port.set_option(asio::serial_port::parity(asio::serial_port::parity::none), ec);
  if (!ec) port.set_option(asio::serial_port::stop_bits(asio::serial_port::stop_bits::one), ec);
  if (!ec) port.set_option(asio::serial_port::flow_control(asio::serial_port::flow_control::none), ec);
  if (ec) return Status::Internal("serial_open_failed", device + ": cannot configure the line: " + ec.message());
  return port;
}

asio::awaitable<FrameStream::Received> FrameStream::Receive() {
  Received out;
  for (;;) {
    DecodeStatus status = decoder_.Next(&out.frame, &out.error);
    if (status == DecodeStatus::complete) {
      out.outcome = Outcome::frame;
      co_return out;
    }
    if (status == DecodeStatus::bad) {
      out.outcome = Outcome::bad;
      co_return out;
    }
    auto [ec, n] = co_await stream_->ReadSome(asio::buffer(read_buffer_));
    if (ec) {
      out.outcome = Outcome::closed;
      out.error_code = ec;
      co_return out;
    }
    decoder_.Feed(ByteView(read_buffer_.data(), n));
  }
}

asio::awaitable<std::error_code> FrameStream::Send(ByteView bytes) {
  co_return co_await stream_->WriteAll(asio::buffer(bytes.data(), bytes.size()));
}

}  // namespace citycard::terminals::detail
