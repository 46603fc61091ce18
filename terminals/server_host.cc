#include "terminals/server_host.h"

#include <asio/io_context.hpp>

#include <algorithm>
#include <thread>
#include <vector>

#include "terminals/server.h"

namespace citycard::terminals {

struct ServerHost::Impl {
  Impl(TerminalBackend& backend, ServerOptions options) : server(io, backend, options) {}
  // The io_context is declared first: the server's sockets must go before it.
  asio::io_context io;
  Server server;
  std::vector<std::thread> threads;
  bool stopped = false;
};

ServerHost::ServerHost(TerminalBackend& backend, ServerOptions options)
    : impl_(std::make_unique<Impl>(backend, options)) {}

ServerHost::~ServerHost() { Stop(); }

Result<uint16_t> ServerHost::ListenTcp(const std::string& host, uint16_t port,
                                       std::optional<TlsFiles> tls) {
  return impl_->server.ListenTcp(host, port, std::move(tls));
}

Status ServerHost::OpenSerial(const std::string& device, unsigned baud) {
  return impl_->server.OpenSerial(device, baud);
}

void ServerHost::Start(size_t threads) {
  CITYCARD_ASSERT(impl_->threads.empty() && !impl_->stopped);
  for (size_t i = 0; i < std::max<size_t>(1, threads); ++i) {
    impl_->threads.emplace_back([impl = impl_.get()] { impl->io.run(); });
  }
}

void ServerHost::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->server.Stop();
  for (std::thread& t : impl_->threads) t.join();
  impl_->threads.clear();
}

ServerStats ServerHost::stats() const { return impl_->server.stats(); }

}  // namespace citycard::terminals
