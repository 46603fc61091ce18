// A TerminalBackend for the protocol tests: terminals, versions, a denylist and documents
// held in memory; batches answered from a worker thread (as the ingest's group-commit
// writer will), optionally after a delay; every call and security event recorded.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "terminals/backend.h"

namespace citycard::terminals::testing {

inline Bytes TestKey(uint8_t seed) {
  Bytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(seed * 16 + i);
  return key;
}

class FakeBackend final : public TerminalBackend {
 public:
  FakeBackend() : worker_([this] { Work(); }) {
    AddTerminal("BUS-0001", "szbus", TestKey(1));
    AddTerminal("BUS-0002", "szbus", TestKey(2));
    AddTerminal("BUS-0003", "szbus", TestKey(3));
    TerminalAuthInfo disabled{"BUS-OFF", "szbus", false, {{1, TestKey(9)}}};
    terminals_["BUS-OFF"] = disabled;
  }

  ~FakeBackend() override {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    worker_.join();
  }

  void AddTerminal(const std::string& id, const std::string& operator_id, Bytes key, uint8_t version = 1) {
    std::lock_guard lock(mutex_);
    terminals_[id] = TerminalAuthInfo{id, operator_id, true, {{version, std::move(key)}}};
  }

  void LookupTerminal(std::string terminal_id, Done<Result<TerminalAuthInfo>> done) override {
    std::lock_guard lock(mutex_);
    auto it = terminals_.find(terminal_id);
    if (it == terminals_.end()) {
      done(Status::NotFound("unknown_terminal", terminal_id));
    } else {
      done(it->second);
    }
  }

  // Judges each record: duplicate when its (terminal, TTC) was seen, else accepted.
  void SubmitBatch(BatchSubmission batch, Done<Result<std::vector<ResultCode>>> done) override {
    ++batches_in_flight;
    Post([this, batch = std::move(batch), done = std::move(done)]() mutable {
      if (batch_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(batch_delay_ms.load()));
      std::vector<ResultCode> results;
      {
        std::lock_guard lock(mutex_);
        for (const TapRecord& r : batch.records) {
          bool fresh = seen_.insert({r.terminal_id, r.terminal_counter}).second;
          results.push_back(fresh ? ResultCode::accepted : ResultCode::duplicate);
        }
        batches_.push_back(batch);
      }
      --batches_in_flight;
      if (fail_batches) {
        done(Status::Internal("database_busy", "test failure"));
      } else {
        done(std::move(results));
      }
    });
  }

  Versions CurrentVersions() override {
    std::lock_guard lock(mutex_);
    return versions_;
  }

  void GetDenylist(uint64_t known_version, Done<Result<DenylistUpdate>> done) override {
    Post([this, known_version, done = std::move(done)] {
      std::lock_guard lock(mutex_);
      DenylistUpdate update;
      update.to_version = versions_.denylist_version;
      if (known_version == versions_.denylist_version) {
        update.kind = DenylistKind::delta;
        update.from_version = known_version;
      } else if (known_version == 0 || known_version + 1 != versions_.denylist_version) {
        update.kind = DenylistKind::full;
        update.added.assign(denylist_.begin(), denylist_.end());
      } else {
        update.kind = DenylistKind::delta;
        update.from_version = known_version;
        update.added = last_added_;
        update.removed = last_removed_;
      }
      done(update);
    });
  }

  void GetDocument(DocumentKind kind, uint32_t known_version, Done<Result<Document>> done) override {
    std::lock_guard lock(mutex_);
    Document doc = kind == DocumentKind::fare_table ? fare_table_ : parameters_;
    if (doc.version == known_version) {
      doc.up_to_date = true;
      doc.content.clear();
    }
    done(doc);
  }

  void HandleOnline(TerminalIdentity terminal, OnlineRequest request, Done<OnlineResponse> done) override {
    if (online_handler) {
      done(online_handler(terminal, request));
    } else {
      TerminalBackend::HandleOnline(std::move(terminal), std::move(request), std::move(done));
    }
  }

  void OnHeartbeat(TerminalIdentity terminal, Heartbeat heartbeat) override {
    std::lock_guard lock(mutex_);
    heartbeats_.emplace_back(terminal.terminal_id, heartbeat);
  }

  void RecordSecurityEvent(SecurityEvent event) override {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
  }

  // Test setup and inspection.
  void SetVersions(Versions v) {
    std::lock_guard lock(mutex_);
    versions_ = v;
  }
  // The denylist moves to a new version: removals then additions.
  void ChangeDenylist(std::vector<uint64_t> added, std::vector<uint64_t> removed) {
    std::lock_guard lock(mutex_);
    for (uint64_t card : removed) denylist_.erase(card);
    for (uint64_t card : added) denylist_.insert(card);
    last_added_ = std::move(added);
    last_removed_ = std::move(removed);
    ++versions_.denylist_version;
  }
  void SetDocument(Document doc) {
    std::lock_guard lock(mutex_);
    if (doc.kind == DocumentKind::fare_table) {
      fare_table_ = doc;
      versions_.fare_version = doc.version;
    } else {
      parameters_ = doc;
      versions_.parameter_version = doc.version;
    }
  }
  std::vector<BatchSubmission> batches() {
    std::lock_guard lock(mutex_);
    return batches_;
  }
  std::vector<std::pair<std::string, Heartbeat>> heartbeats() {
    std::lock_guard lock(mutex_);
    return heartbeats_;
  }
  std::vector<SecurityEvent> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }

  std::atomic<int> batch_delay_ms{0};
  std::atomic<int> batches_in_flight{0};
  std::atomic<bool> fail_batches{false};
  std::function<OnlineResponse(const TerminalIdentity&, const OnlineRequest&)> online_handler;

 private:
  void Post(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
  }

  void Work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return quit_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool quit_ = false;
  std::map<std::string, TerminalAuthInfo> terminals_;
  std::set<std::pair<std::string, uint32_t>> seen_;
  std::vector<BatchSubmission> batches_;
  std::vector<SecurityEvent> events_;
  std::vector<std::pair<std::string, Heartbeat>> heartbeats_;
  Versions versions_;
  std::set<uint64_t> denylist_;
  std::vector<uint64_t> last_added_;
  std::vector<uint64_t> last_removed_;
  Document fare_table_{DocumentKind::fare_table, 0, false, {}};
  Document parameters_{DocumentKind::parameters, 0, false, {}};
  std::thread worker_;  // last: started after every member it uses exists
};

}  // namespace citycard::terminals::testing
