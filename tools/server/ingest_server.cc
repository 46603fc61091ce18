#include "tools/server/ingest_server.h"

#include <optional>

#include "crypto/keyed_tap_authenticator.h"
#include "db/sqlite_registry_store.h"
#include "db/sqlite_tap_store.h"
#include "db/wal_checkpointer.h"
#include "terminals/server_host.h"

namespace citycard::server {

namespace {

class Running final : public IngestServer {
 public:
  Running(std::unique_ptr<db::SqliteTapStore> taps, const crypto::KeyFile& keys)
      : taps_(std::move(taps)), auth_(keys), precheck_auth_(keys) {}
  ~Running() override { Stop(); }

  const std::vector<uint16_t>& ports() const override { return ports_; }
  TapStore& tap_store() override { return *taps_; }
  IngestBackend& backend() override { return *backend_; }
  terminals::ServerStats server_stats() const override { return host_->stats(); }

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    if (host_) host_->Stop();
    if (backend_) backend_->Stop();
    // The writer is joined: no commit wakes the checkpointer any more. It goes now, not with
    // the members, because it gives the writer's connection its automatic checkpoint back,
    // and callers may close the database once Stop() has returned.
    checkpointer_.reset();
    // The checker is joined: its connection to the file closes with the rest of the server's
    // (the store first: its statements belong to the connection).
    registry_reader_.store.reset();
    registry_reader_.db.reset();
  }

  std::unique_ptr<db::WalCheckpointer> checkpointer_;
  // The checker's registry connection; declared before the backend, so that it goes after
  // the checker thread that uses it.
  db::RegistryReader registry_reader_;
  std::unique_ptr<db::SqliteTapStore> taps_;
  crypto::KeyedTapAuthenticator auth_;
  crypto::KeyedTapAuthenticator precheck_auth_;  // the backend's checker thread's own
  std::unique_ptr<IngestBackend> backend_;
  std::unique_ptr<terminals::ServerHost> host_;
  std::vector<uint16_t> ports_;
  bool stopped_ = false;
};

}  // namespace

Result<std::unique_ptr<IngestServer>> StartIngestServer(db::Database& db, Ledger& ledger,
                                                        RegistryStore& registry,
                                                        const crypto::KeyFile& keys,
                                                        const Digester& digester,
                                                        const Clock& clock,
                                                        IngestServerOptions options) {
  auto taps = db::SqliteTapStore::Open(db);
  if (!taps.ok()) return taps.status();
  if (options.cache_bytes > 0) CITYCARD_RETURN_IF_ERROR((*taps)->SetCacheBytes(options.cache_bytes));
  (*taps)->SetRecentCardKeysMergeAt(options.card_keys_merge_at);
  auto running = std::make_unique<Running>(std::move(*taps), keys);
  if (options.checkpoints_apart && db.path() != ":memory:") {
    auto checkpointer = db::WalCheckpointer::Start(db);
    if (!checkpointer.ok()) return checkpointer.status();
    running->checkpointer_ = std::move(checkpointer).value();
  }
  // The CLI may write the same database while the server runs (a top-up at the counter, a
  // card blocked): the writer drops its caches whenever another connection committed.
  if (!options.backend.changed_elsewhere) {
    options.backend.changed_elsewhere = [&db, seen = std::optional<int64_t>()]() mutable
        -> Result<bool> {
      auto version = db.DataVersion();
      if (!version.ok()) return version.status();
      bool changed = seen && *seen != *version;
      seen = *version;
      return changed;
    };
  }
  if (options.backend.precheck_authenticator == nullptr) {
    options.backend.precheck_authenticator = &running->precheck_auth_;
  }
  if (options.cards_read_ahead && options.backend.precheck_registry == nullptr &&
      db.path() != ":memory:" && !db.path().empty()) {
    auto reader = db::OpenRegistryReader(db.path(), kCheckerCacheBytes);
    if (!reader.ok()) return reader.status();
    running->registry_reader_ = std::move(reader).value();
    options.backend.precheck_registry = running->registry_reader_.store.get();
    if (options.purses_read_ahead) {
      options.backend.precheck_ledger = running->registry_reader_.ledger.get();
    }
  }
  running->backend_ = std::make_unique<IngestBackend>(registry, ledger, *running->taps_,
                                                      running->auth_, keys.WrapKey(), digester,
                                                      clock, std::move(options.backend));
  CITYCARD_RETURN_IF_ERROR(running->backend_->Start());
  terminals::ServerOptions server_options;
  server_options.limits = options.limits;
  server_options.clock = &clock;
  server_options.ack_signer = &keys.CoreSigner();
  running->host_ = std::make_unique<terminals::ServerHost>(*running->backend_, server_options);
  for (const ListenAddress& a : options.listen) {
    auto port = running->host_->ListenTcp(a.host, a.port, a.tls);
    if (!port.ok()) return port.status();  // ~Running stops what started
    running->ports_.push_back(*port);
  }
  for (const SerialLine& s : options.serial) {
    CITYCARD_RETURN_IF_ERROR(running->host_->OpenSerial(s.device, s.baud));
  }
  running->host_->Start(options.io_threads);
  return std::unique_ptr<IngestServer>(std::move(running));
}

}  // namespace citycard::server
