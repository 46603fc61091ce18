// Internal to terminals/: one interface over the byte streams a session runs on (plain TCP,
// TLS over TCP, a serial port, an already-open descriptor such as a pseudo-terminal's
// master), so that the session and the client are written once. Every operation reports
// errors as values; nothing throws.
//
// This header includes asio (and through asio::ssl, OpenSSL); only terminals/*.cc include it.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl.hpp>

#include <memory>
#include <string>
#include <system_error>
#include <tuple>

#include "core/bytes.h"
#include "core/status.h"
#include "terminals/frame_codec.h"

namespace citycard::terminals::detail {

inline constexpr auto kAsTuple = asio::experimental::as_tuple(asio::use_awaitable);

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // The TLS handshake for TLS streams; nothing for the others.
  virtual asio::awaitable<std::error_code> Handshake() { co_return std::error_code(); }
  virtual asio::awaitable<std::tuple<std::error_code, size_t>> ReadSome(asio::mutable_buffer buffer) = 0;
  virtual asio::awaitable<std::error_code> WriteAll(asio::const_buffer buffer) = 0;
  // Makes pending reads and writes complete with operation_aborted; the stream stays open.
  virtual void Cancel() = 0;
  // Closes the stream; pending operations complete with an error. Idempotent.
  virtual void Close() = 0;
  virtual bool IsOpen() const = 0;
  // "tcp:127.0.0.1:4000", "tls:...", "serial:/dev/ttyS0", "fd:7".
  virtual std::string Peer() const = 0;
  virtual bool IsSerial() const { return false; }
  // The socket's descriptor of a plain TCP stream (to wait for it with poll() beside others);
  // -1 for the others, whose bytes may wait in a buffer of their own (TLS) or that are no
  // socket.
  virtual int NativeHandle() { return -1; }
};

std::unique_ptr<ByteStream> MakeTcpStream(asio::ip::tcp::socket socket);
// `context` must outlive the stream. `server_name` (client side only) is sent as SNI and
// checked against the certificate when the context verifies peers.
std::unique_ptr<ByteStream> MakeTlsStream(asio::ip::tcp::socket socket,
                                          std::shared_ptr<asio::ssl::context> context,
                                          asio::ssl::stream_base::handshake_type role,
                                          std::string server_name = "");
std::unique_ptr<ByteStream> MakeSerialStream(asio::serial_port port, std::string device);
std::unique_ptr<ByteStream> MakeDescriptorStream(asio::posix::stream_descriptor descriptor);

// Opens a serial device in raw mode (asio's open() sets it: no echo, no line editing, no
// character translation) at `baud`, 8 data bits, no parity, one stop bit, no flow control.
// Kind::internal "serial_open_failed" when it cannot be opened or configured.
Result<asio::serial_port> OpenSerialPort(asio::any_io_executor executor, const std::string& device,
                                         unsigned baud);

// Frames over a ByteStream: the read buffer and the incremental decoder.
class FrameStream {
 public:
  explicit FrameStream(std::unique_ptr<ByteStream> stream) : stream_(std::move(stream)) {}

  enum class Outcome { frame, bad, closed };
  struct Received {
    Outcome outcome = Outcome::closed;
    Frame frame;                               // outcome frame
    DecodeError error = DecodeError::none;     // outcome bad
    std::error_code error_code;                // outcome closed: why (eof, aborted, ...)
  };

  // The next frame, a refused frame (the decoder has resynchronised) or the end of the
  // stream. A cancelled read is `closed` with asio::error::operation_aborted.
  asio::awaitable<Received> Receive();
  asio::awaitable<std::error_code> Send(ByteView bytes);

  ByteStream& stream() { return *stream_; }
  FrameDecoder& decoder() { return decoder_; }

 private:
  // Every session holds this buffer for as long as it is open, idle or not, so it is kept
  // small: 4 KiB takes a full batch frame (at most 35 KiB) in a few reads, and 10,000 idle
  // sessions hold 40 MB of it rather than 160 MB (docs/benchmarks.md, "Idle sessions").
  static constexpr size_t kReadBytes = 4096;
  std::unique_ptr<ByteStream> stream_;
  FrameDecoder decoder_;
  std::array<uint8_t, kReadBytes> read_buffer_{};
};

}  // namespace citycard::terminals::detail
