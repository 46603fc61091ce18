// The core behind the terminal server: terminals::TerminalBackend (terminals/backend.h)
// implemented with the tap ingest (core/ingest.h) and ONE writer thread.
//
// Group commit: the server's I/O threads only queue work and return; the writer thread takes
// every batch queued (from all sessions, up to group_records_max records), ingests them in one
// IngestEngine::Ingest call (MACs and TACs checked first, then one storage transaction and one
// ledger Apply), and answers each batch only after that transaction is durable. While it
// commits, new batches queue up and form the next group, so the group grows with the load.
// Terminal lookups, denylist downloads and online requests are served by the same thread
// between groups: the connection, the ledger and the engine are used by that thread alone.
//
// Online group commit (docs/ingest.md "Grouped top-up authorisations"): top-up
// authorisations, and the online requests IngestBackendOptions::joins_group claims (identity
// checks, whose audit record must be durable before the answer), queue apart from the other
// tasks. The writer takes every one queued (up to kOnlineGroupMax) and authorises the top-ups
// in ONE storage transaction (IngestEngine::AuthoriseTopups), the claimed requests making
// their writes inside it; nothing of the group is answered before that commit is durable.
// Each request gets its own answer, exactly as one by one; a failed commit answers every
// request of the group with backend_unavailable and posts nothing.
//
// Proofs checked ahead (IngestBackendOptions::precheck_authenticator): a second thread, the
// checker, takes each queued batch first and checks its records' terminal MACs and TACs
// (core/ingest.h PrecheckProofs) under the terminal's keys as the writer last read them from
// the registry, while the writer commits the group before. The writer's engine then only
// compares the terminal's current keys with those (a batch whose terminal changed keys since
// is checked again by the writer). Batches reach the writer in the order they arrived.
// With IngestBackendOptions::precheck_registry the checker also reads each batch's cards on
// its own connection (CardPrefetcher); the writer takes them where the registry has not
// changed since, and reads the others itself; with precheck_ledger also their purses.
//
// Limits: at most kQueueRecordsMax records wait; beyond that a batch is answered at once with
// a failure (the server says backend_unavailable; the reader keeps its records and retries).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/digest.h"
#include "core/fare_store.h"
#include "core/tap_pricer.h"
#include "core/ingest.h"
#include "core/ledger.h"
#include "core/registry.h"
#include "core/tap_authenticator.h"
#include "core/tap_store.h"
#include "terminals/backend.h"

namespace citycard::server {

// The most records one group commit takes by default: as many as one Ingest call may hold.
// Larger groups rewrite each randomly placed index page fewer times per tap: 32,768 instead
// of 16,384 gave 11-15 % more taps/s at 10,000 cards and 31 % at 1,000,000 (docs/benchmarks.md).
inline constexpr size_t kGroupRecordsMaxDefault = kIngestRecordsMax;
inline constexpr size_t kQueueRecordsMax = 1'000'000;
inline constexpr int64_t kHousekeepingIntervalMsDefault = 1'000;
// How often the checker's copy of every terminal is read again when nothing says a terminal
// changed. Reading them all stalls the writer (256 terminals: 5-8 ms; a city's 10,000 would
// take hundreds), so the housekeeping reads them only after another connection committed
// (IngestBackendOptions::changed_elsewhere: a key rotated or revoked with the CLI) and at this
// interval. A stale copy is never wrong, only slower: the writer checks again every record of
// a terminal whose keys differ from those the checker used.
inline constexpr int64_t kTerminalRefreshIntervalMs = 60'000;
// The writer thread's nice value (setpriority). Every durable answer waits for the writer,
// which on two cores shares the CPU with the I/O threads, the checker, the checkpointer and
// whatever else runs; at the process's own priority it waited its turn behind them. At -10
// `bench online --rate 10000` answered with p50 1.40-1.52 ms and p99 4.9-5.9 ms against
// 1.49-1.73 and 5.5-6.9 ms (four alternated pairs, docs/benchmarks.md "Session of 09:43").
// Lowering a nice value needs CAP_SYS_NICE (or RLIMIT_NICE): without it the writer keeps the
// process's priority, the backend logs a warning, and IngestBackendStats::writer_nice says so.
inline constexpr int kWriterNiceDefault = -10;
// The most online requests of one online group (one storage transaction).
inline constexpr size_t kOnlineGroupMax = kTopupGroupMax;
// The most online requests waiting for a group; beyond, a request is answered at once with
// backend_unavailable (the reader asks again later).
inline constexpr size_t kOnlineQueueMax = 65'536;

// The per-record result code the protocol answers for an ingest outcome.
terminals::ResultCode RecordResultCode(IngestOutcome outcome);

struct IngestBackendOptions {
  IngestConfig ingest;
  size_t group_records_max = kGroupRecordsMaxDefault;  // at most kIngestRecordsMax
  // How often the writer runs its housekeeping between groups: top-up timeouts
  // (IngestEngine::ExpireTopups) and `housekeeping` (e.g. the card office's due replacements).
  int64_t housekeeping_interval_ms = kHousekeepingIntervalMsDefault;
  std::function<void()> housekeeping;
  // Online requests the ingest does not handle (identity checks, medical settlement, bill
  // payment), called on the writer thread; unset: unsupported_request.
  std::function<terminals::OnlineResponse(const terminals::TerminalIdentity&,
                                          const terminals::OnlineRequest&)>
      online_fallback;
  // Online requests answered inside the writer's online group transaction: those for which
  // joins_group (any thread) answers true are handled by online_in_group on the writer
  // thread while that transaction is open, so that their writes (on the backend's
  // connection) join it, and answered only after it commits (backend_unavailable when it
  // fails). online_in_group may be called more than once for a request (the group is made
  // again after the ledger declined a top-up): the last answer is sent, and only the writes
  // of its last call are committed. Only requests whose handling writes without a
  // transaction of its own may be claimed (an identity check's audit insert; not a medical
  // settlement or a bill payment, which begin and commit their own). Unset: such requests go
  // to online_fallback.
  std::function<bool(const terminals::OnlineRequest&)> joins_group;
  std::function<terminals::OnlineResponse(const terminals::TerminalIdentity&,
                                          const terminals::OnlineRequest&)>
      online_in_group;
  // The fare table terminals download (DocumentKind::fare_table), called on the writer thread
  // at Start and for each download: e.g. [&store] { return CurrentFareTable(store); } with a
  // FareStore on the backend's connection (core/fare_store.h). Its version is what heartbeats
  // announce. Unset: no fare table (version 0).
  std::function<Result<FareTableBlob>()> fare_table;
  // Re-prices every booked tap (core/tap_pricer.h: a fare_dispute alert when the reader's
  // price differs); used on the writer thread; must outlive the backend. nullptr: none.
  TapPricer* tap_pricer = nullptr;
  // A second authenticator over the same keys, for the checker thread alone (not thread-safe;
  // nothing else may use it while the backend runs); must outlive the backend. nullptr: no
  // checker, the writer checks every MAC and TAC itself.
  TapAuthenticator* precheck_authenticator = nullptr;
  // The registry on a connection of its own, for the checker thread alone (with a
  // precheck_authenticator only; must outlive the backend): the checker then also reads the
  // cards of the batches it checked (core/ingest.h CardPrefetcher), which the writer takes
  // while the registry has not changed since. nullptr: the writer reads every card itself.
  RegistryStore* precheck_registry = nullptr;
  // A ledger store on precheck_registry's connection (precheck_registry only; must outlive
  // the backend): the checker then also reads the purses of those cards (CardPrefetcher::
  // ReadPursesToo), which the writer's ledger takes where its cache lost nothing since
  // (Ledger::OfferAccounts). nullptr: the writer reads every purse itself.
  LedgerStore* precheck_ledger = nullptr;
  // Whether another connection wrote the database since the previous call (a card blocked
  // with the CLI while `serve` runs); when it answers true the writer drops the ingest
  // engine's card and counter caches before its next group or online request. Unset: never.
  std::function<Result<bool>()> changed_elsewhere;
  // The writer thread's nice value (kWriterNiceDefault); 0 leaves it at the process's.
  int writer_nice = kWriterNiceDefault;
};

struct IngestBackendStats {
  uint64_t groups = 0;        // group commits made
  uint64_t batches = 0;       // batches answered after a commit
  uint64_t records = 0;
  uint64_t failures = 0;      // groups whose commit failed (their batches answered with a failure)
  uint64_t records_max_in_group = 0;
  uint64_t records_checked_ahead = 0;  // records whose batch the checker thread checked
  uint64_t batches_cards_ahead = 0;    // batches whose cards the checker read (precheck_registry)
  uint64_t card_prefetch_failures = 0; // batches whose cards it failed to read (the writer did)
  uint64_t online_groups = 0;          // online group transactions made
  uint64_t online_requests = 0;        // requests answered from an online group
  uint64_t online_failures = 0;        // online groups whose transaction failed
  uint64_t online_max_in_group = 0;
  uint64_t terminal_refreshes = 0;     // times the checker's terminals were all read again
  int writer_nice = 0;                 // the writer thread's nice value, known once Start returns
};

class IngestBackend final : public terminals::TerminalBackend {
 public:
  // Everything passed must outlive the backend; from Start() on, registry, ledger and taps
  // (one connection) are used by the writer thread only. wrap_key unwraps terminal keys for
  // the handshake (the key file's wrap key).
  IngestBackend(RegistryStore& registry, Ledger& ledger, TapStore& taps,
                TapAuthenticator& authenticator, ByteView wrap_key, const Digester& digester,
                const Clock& clock, IngestBackendOptions options);
  ~IngestBackend() override;

  // Starts the writer thread (reads the current denylist version first) and returns once it
  // has set its priority (IngestBackendOptions::writer_nice).
  Status Start();
  // Answers everything queued (committing it), then stops the writer. Idempotent. Call after
  // the server stopped, so that nothing new arrives.
  void Stop();
  IngestBackendStats stats() const;

  void LookupTerminal(std::string terminal_id,
                      Done<Result<terminals::TerminalAuthInfo>> done) override;
  void SubmitBatch(terminals::BatchSubmission batch,
                   Done<Result<std::vector<terminals::ResultCode>>> done) override;
  terminals::Versions CurrentVersions() override;
  // Records, on the writer thread, the denylist version the terminal says it holds at its own
  // time (IngestEngine::NoteTerminalDenylistVersion): a blocked card's tap made after that is
  // honoured with an alert.
  void OnHeartbeat(terminals::TerminalIdentity terminal, terminals::Heartbeat heartbeat) override;
  void GetDenylist(uint64_t known_version, Done<Result<terminals::DenylistUpdate>> done) override;
  void GetDocument(terminals::DocumentKind kind, uint32_t known_version,
                   Done<Result<terminals::Document>> done) override;
  void HandleOnline(terminals::TerminalIdentity terminal, terminals::OnlineRequest request,
                    Done<terminals::OnlineResponse> done) override;

 private:
  struct BatchJob {
    terminals::BatchSubmission batch;
    Done<Result<std::vector<terminals::ResultCode>>> done;
    PrecheckedProofs proofs;  // set by the checker thread
  };
  struct OnlineJob {
    terminals::TerminalIdentity terminal;
    terminals::OnlineRequest request;
    Done<terminals::OnlineResponse> done;
  };
  void Enqueue(std::function<void()> task);
  // True for the requests answered in an online group: top-up authorisations, and those
  // options_.joins_group claims.
  bool JoinsOnlineGroup(const terminals::OnlineRequest& request) const;
  void RunOnlineGroup(std::vector<OnlineJob>& group);
  void Run();
  // Gives the calling (writer) thread options_.writer_nice; returns the nice value it has.
  int SetWriterNice();
  // The checker thread: moves batches_ to checked_, their proofs checked.
  void Check();
  // True when the writer has nothing more to wait for (mutex_ held).
  bool Drained() const;
  // Reads the terminals again for the checker (writer thread): those named, or every one known.
  void RefreshTerminals(const std::vector<std::string>& ids);
  void RunGroup(std::vector<BatchJob>& group);
  void Housekeeping();
  // Drops the engine's caches when options_.changed_elsewhere says so (writer thread).
  void SyncCaches();
  void RefreshDenylistVersion();
  terminals::OnlineResponse Online(const terminals::TerminalIdentity& terminal,
                                   const terminals::OnlineRequest& request);

  RegistryStore& registry_;
  Ledger& ledger_;
  TapStore& taps_;
  TapAuthenticator& auth_;
  Bytes wrap_key_;
  const Clock& clock_;
  IngestBackendOptions options_;
  IngestEngine engine_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<BatchJob> batches_;  // as submitted (to the checker when there is one)
  std::deque<BatchJob> checked_;  // checked by the checker, for the writer
  size_t checking_ = 0;           // batches the checker holds right now
  std::condition_variable wake_checker_;
  // The terminals as the writer last read them, for the checker; one entry per registered
  // terminal that uploaded or connected (bounded by the registry).
  std::unordered_map<std::string, std::shared_ptr<const Terminal>> terminals_;
  std::deque<std::function<void()>> tasks_;
  std::deque<OnlineJob> online_;  // for the next online group (at most kOnlineQueueMax)
  size_t queued_records_ = 0;
  bool stopping_ = false;
  bool started_ = false;
  std::thread writer_;
  std::thread checker_;
  std::unique_ptr<CardPrefetcher> prefetcher_;  // the checker's, with options_.precheck_registry
  IngestBackendStats stats_;
  // Writer thread: the checker's terminals are read again at the next housekeeping when set
  // (another connection committed), or at next_terminal_refresh_ in any case.
  bool terminals_stale_ = false;
  std::chrono::steady_clock::time_point next_terminal_refresh_;
  std::atomic<int64_t> denylist_version_{0};
  std::atomic<uint32_t> fare_version_{0};  // as options_.fare_table last answered
};

}  // namespace citycard::server
