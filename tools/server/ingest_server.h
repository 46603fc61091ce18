// A running core server in one object: the tap store on the given connection, the keyed tap
// authenticator, the group-commit backend (tools/server/ingest_backend.h) and the protocol
// server (terminals/server.h) on its own I/O threads. `citycard serve`, the replay, the demo,
// the benchmarks and the tests start one with StartIngestServer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/digest.h"
#include "core/ledger.h"
#include "core/registry.h"
#include "core/status.h"
#include "core/tap_store.h"
#include "crypto/key_file.h"
#include "db/database.h"
#include "db/sqlite_tap_store.h"
#include "terminals/server_options.h"
#include "tools/server/ingest_backend.h"

namespace citycard::server {

struct ListenAddress {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: a free port (see IngestServer::ports)
  std::optional<terminals::TlsFiles> tls;
};

struct SerialLine {
  std::string device;
  unsigned baud = 115200;
};

// The page cache the server gives its connection (db::SqliteTapStore::SetCacheBytes), shared
// by the registry, the ledger and the tap store on it. SQLite's own default is 2 MB, so with
// more than a few thousand cards most card, purse and counter-state lookups of a group become
// reads from the file; the cache only grows as pages are touched, so an idle server stays
// small. docs/benchmarks.md "Tap ingest" has the measurements.
inline constexpr int64_t kServerCacheBytesDefault = int64_t{512} << 20;
// The page cache of the checker thread's registry connection (IngestServerOptions::
// cards_read_ahead): the B-tree's inner pages of millions of cards and the denylist stay in
// it; the cards' leaf pages, read once per card, come from the OS's file cache.
inline constexpr int64_t kCheckerCacheBytes = int64_t{64} << 20;

struct IngestServerOptions {
  std::vector<ListenAddress> listen;
  std::vector<SerialLine> serial;
  IngestBackendOptions backend;
  terminals::ServerLimits limits;
  size_t io_threads = 1;
  // The connection's page cache in bytes; 0 leaves the connection's setting as it is.
  int64_t cache_bytes = kServerCacheBytesDefault;
  // WAL checkpoints on a thread and connection of their own (db/wal_checkpointer.h), so that
  // the writer's group commits do not also copy pages back into the database file and fsync
  // it; false leaves SQLite's automatic checkpoint on the writer's connection. Ignored for an
  // in-memory database.
  bool checkpoints_apart = true;
  // The checker thread also reads each batch's cards, on a query_only connection of its own
  // (IngestBackendOptions::precheck_registry, db::OpenRegistryReader) with a page cache of
  // kCheckerCacheBytes, when the backend has no precheck_registry yet. Ignored for an
  // in-memory database.
  bool cards_read_ahead = true;
  // With cards_read_ahead, the checker also reads the cards' purses over that connection
  // (IngestBackendOptions::precheck_ledger).
  bool purses_read_ahead = true;
  // The taps' recent (card, CTC) keys are merged once this many are recent
  // (db::SqliteTapStore::SetRecentCardKeysMergeAt; `serve --card-keys-merge-at`): the crash
  // test makes merges happen, and be killed, with a few hundred taps a round.
  int64_t card_keys_merge_at = db::kRecentCardTapsMergeAt;
};

class IngestServer {
 public:
  virtual ~IngestServer() = default;
  // The bound TCP ports, in the order of options.listen.
  virtual const std::vector<uint16_t>& ports() const = 0;
  // Stops accepting, lets sessions waiting for the backend get their answers, joins the I/O
  // threads, commits and answers what is queued, stops the writer and then the checkpointer.
  // Once it has returned the server no longer touches `db`. Idempotent.
  virtual void Stop() = 0;
  virtual TapStore& tap_store() = 0;
  virtual IngestBackend& backend() = 0;
  virtual terminals::ServerStats server_stats() const = 0;
};

// Opens the tap store on `db` (the "ingest" schema), sets the connection's page cache
// (options.cache_bytes), starts the checkpointer (options.checkpoints_apart), and starts the
// backend's writer and the server. db, ledger and
// registry must share the connection `db`, and from now until Stop() only the server's writer
// thread may use them. Everything passed must outlive the server.
// Failures: the tap store's ("db_error", "schema_too_new"), the checkpointer's second
// connection's ("db_open_failed"), the server's ("listen_failed",
// "tls_setup_failed", "serial_open_failed").
Result<std::unique_ptr<IngestServer>> StartIngestServer(db::Database& db, Ledger& ledger,
                                                        RegistryStore& registry,
                                                        const crypto::KeyFile& keys,
                                                        const Digester& digester,
                                                        const Clock& clock,
                                                        IngestServerOptions options);

}  // namespace citycard::server
