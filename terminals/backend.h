// What the terminal server asks of the core: the one interface between terminals/ and
// everything behind it. The server knows nothing of the ledger or the database; tools/
// wires an implementation (the tap ingest) in, and tests use a fake.
//
// Threading and blocking: every method is called on one of the server's I/O threads and
// must return quickly, without waiting for a disk or a lock that a database commit holds.
// The asynchronous methods hand their answer to `done`, which may be called later from any
// thread (a writer thread after a group commit, say); the server moves the answer back to
// the session's own executor. `done` must be called exactly once per call, also during a
// shutdown: the server waits for in-flight answers before it stops.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"
#include "core/tap_record.h"
#include "terminals/codes.h"
#include "terminals/messages.h"

namespace citycard::terminals {

// One version of a terminal's secret key.
struct TerminalKey {
  uint8_t version = 1;
  Bytes key;  // HMAC-SHA256 key, 16 bytes or more
};

// What the server needs to authenticate a terminal.
struct TerminalAuthInfo {
  std::string terminal_id;
  std::string operator_id;
  bool active = true;             // false: disabled, refused with terminal_disabled
  std::vector<TerminalKey> keys;  // every version it may authenticate with
};

// The authenticated terminal behind a session, given with every request.
struct TerminalIdentity {
  std::string terminal_id;
  std::string operator_id;
  uint8_t key_version = 1;
  std::string peer;  // "tcp:1.2.3.4:5678", "tls:...", "serial:/dev/ttyS0"
};

// A batch as the server passes it on. The server has already decoded every record and
// checked it (ValidateTapRecord, and that its terminal_id is the session's); records that
// failed are answered by the server (invalid_record, wrong_terminal) and are not here.
struct BatchSubmission {
  TerminalIdentity terminal;
  uint32_t batch_id = 0;
  std::vector<TapRecord> records;  // at least one, at most kRecordsPerBatchMax
  int64_t received_ms = 0;         // the server clock when the batch arrived
};

// A refusal or protocol violation worth an operator's attention (the issue's "the attempt
// is logged"): authentication failures, MAC failures, replays.
struct SecurityEvent {
  ResultCode code = ResultCode::ok;
  std::string terminal_id;  // as the peer claimed it; may be empty or unknown
  std::string peer;
  int64_t time_ms = 0;
  std::string detail;
};

class TerminalBackend {
 public:
  template <typename T>
  using Done = std::function<void(T)>;

  virtual ~TerminalBackend() = default;

  // The terminal's keys and state. A Status of Kind::not_found means no such terminal (the
  // session is refused with unknown_terminal); any other failure is answered with
  // backend_unavailable.
  virtual void LookupTerminal(std::string terminal_id, Done<Result<TerminalAuthInfo>> done) = 0;

  // Makes the records durable and answers one result per record, in order
  // (results.size() == batch.records.size(); any other size is treated as a failure). The
  // server acknowledges only what this answers, so call `done` only after the commit that
  // holds the records is durable. A failure Status is answered with backend_unavailable, and
  // the terminal keeps its records and uploads them again.
  virtual void SubmitBatch(BatchSubmission batch, Done<Result<std::vector<ResultCode>>> done) = 0;

  // The current versions, for heartbeats. Synchronous: keep them in memory.
  virtual Versions CurrentVersions() = 0;

  // Told about every heartbeat of an authenticated terminal: the versions it holds at its
  // own time (the ingest needs to know from when a terminal knew of a denylist entry).
  // Must not block. Default: nothing.
  virtual void OnHeartbeat(TerminalIdentity terminal, Heartbeat heartbeat) {
    (void)terminal;
    (void)heartbeat;
  }

  // The denylist as a delta from `known_version`, or as a full list when a delta is not
  // available (known_version 0, or too old). known_version == current: an empty delta.
  virtual void GetDenylist(uint64_t known_version, Done<Result<DenylistUpdate>> done) = 0;

  // The current fare table or parameter document; up_to_date when known_version is current.
  virtual void GetDocument(DocumentKind kind, uint32_t known_version, Done<Result<Document>> done) = 0;

  // Online requests. The response must be the type that answers the request, with its
  // request_id (anything else is replaced by internal_error). The default answers every
  // request with unsupported_request, so that a backend implements only what it handles.
  virtual void HandleOnline(TerminalIdentity terminal, OnlineRequest request, Done<OnlineResponse> done) {
    (void)terminal;
    done(RefusalFor(request, ResultCode::unsupported_request));
  }

  // Told about each security event after it happened. Must not block. Default: nothing
  // (the server also logs each event).
  virtual void RecordSecurityEvent(SecurityEvent event) { (void)event; }
};

}  // namespace citycard::terminals
