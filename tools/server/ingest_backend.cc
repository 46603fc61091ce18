#include "tools/server/ingest_backend.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <optional>

#include "core/card_number.h"
#include "crypto/key_wrap.h"

namespace citycard::server {

using terminals::ResultCode;

ResultCode RecordResultCode(IngestOutcome outcome) {
  switch (outcome) {
    case IngestOutcome::accepted: return ResultCode::accepted;
    case IngestOutcome::accepted_late: return ResultCode::accepted_late;
    case IngestOutcome::accepted_with_alert: return ResultCode::accepted_with_alert;
    case IngestOutcome::duplicate: return ResultCode::duplicate;
    case IngestOutcome::conflict: return ResultCode::conflict;
    case IngestOutcome::invalid_record: return ResultCode::invalid_record;
    case IngestOutcome::wrong_terminal: return ResultCode::wrong_terminal;
    // The session's terminal vanished or was disabled after its handshake: not a final
    // result, so the reader keeps the record (docs/ingest.md "Result codes on the wire").
    case IngestOutcome::unknown_terminal: return ResultCode::unknown_terminal;
    case IngestOutcome::terminal_disabled: return ResultCode::terminal_disabled;
    case IngestOutcome::wrong_operator: return ResultCode::wrong_operator;
    case IngestOutcome::unknown_terminal_key: return ResultCode::bad_terminal_mac;
    case IngestOutcome::terminal_key_revoked: return ResultCode::bad_terminal_mac;
    case IngestOutcome::bad_terminal_mac: return ResultCode::bad_terminal_mac;
    case IngestOutcome::unknown_card: return ResultCode::unknown_card;
    case IngestOutcome::tac_missing: return ResultCode::retry_later;
    case IngestOutcome::unknown_card_key: return ResultCode::bad_tac;
    case IngestOutcome::bad_tac: return ResultCode::bad_tac;
    case IngestOutcome::card_counter_too_old: return ResultCode::card_counter_too_old;
    case IngestOutcome::cloned_card: return ResultCode::cloned_card;
    case IngestOutcome::forged_balance: return ResultCode::forged_balance;
    case IngestOutcome::card_closed: return ResultCode::unknown_card;
    case IngestOutcome::unmatched_load: return ResultCode::forged_balance;
    case IngestOutcome::retry_later: return ResultCode::retry_later;
  }
  return ResultCode::retry_later;
}

namespace {

ResultCode TopupCode(TopupOutcome outcome) {
  switch (outcome) {
    case TopupOutcome::authorised: return ResultCode::ok;
    case TopupOutcome::confirmed: return ResultCode::ok;
    case TopupOutcome::card_not_found: return ResultCode::card_not_found;
    case TopupOutcome::card_blocked: return ResultCode::card_blocked;
    case TopupOutcome::card_expired: return ResultCode::card_expired;
    case TopupOutcome::amount_out_of_range: return ResultCode::amount_out_of_range;
    case TopupOutcome::duplicate_request: return ResultCode::duplicate_request;
    case TopupOutcome::authorisation_not_found: return ResultCode::authorisation_not_found;
    case TopupOutcome::authorisation_expired: return ResultCode::authorisation_expired;
    case TopupOutcome::amount_mismatch: return ResultCode::amount_mismatch;
    case TopupOutcome::bad_record: return ResultCode::invalid_record;
  }
  return ResultCode::internal_error;
}

}  // namespace

IngestBackend::IngestBackend(RegistryStore& registry, Ledger& ledger, TapStore& taps,
                             TapAuthenticator& authenticator, ByteView wrap_key,
                             const Digester& digester, const Clock& clock,
                             IngestBackendOptions options)
    : registry_(registry), ledger_(ledger), taps_(taps), auth_(authenticator),
      wrap_key_(wrap_key.begin(), wrap_key.end()), clock_(clock), options_(std::move(options)),
      engine_(registry, ledger, taps, authenticator, digester, clock, options_.ingest) {
  if (options_.group_records_max == 0 || options_.group_records_max > kIngestRecordsMax) {
    options_.group_records_max = kIngestRecordsMax;
  }
  engine_.SetTapPricer(options_.tap_pricer);
}

IngestBackend::~IngestBackend() { Stop(); }

Status IngestBackend::Start() {
  std::lock_guard lock(mutex_);
  if (started_) return Status::Ok();
  auto full = registry_.DenylistFull();
  if (!full.ok()) return full.status();
  denylist_version_ = full->version;
  if (options_.fare_table) {
    auto fares = options_.fare_table();
    if (!fares.ok()) return fares.status();
    fare_version_ = fares->version;
  }
  started_ = true;
  next_terminal_refresh_ =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kTerminalRefreshIntervalMs);
  std::promise<int> nice;
  std::future<int> nice_set = nice.get_future();
  // The promise is the thread's own, so that it outlives its set_value.
  writer_ = std::thread([this, nice = std::move(nice)]() mutable {
    nice.set_value(SetWriterNice());
    Run();
  });
  // The writer sets its priority before it takes mutex_ (held here): no deadlock.
  stats_.writer_nice = nice_set.get();
  if (options_.precheck_authenticator != nullptr) {
    if (options_.precheck_registry != nullptr) {
      prefetcher_ = std::make_unique<CardPrefetcher>(*options_.precheck_registry);
      if (options_.precheck_ledger != nullptr) {
        prefetcher_->ReadPursesToo(*options_.precheck_ledger, ledger_);
      }
    }
    checker_ = std::thread([this] { Check(); });
  }
  return Status::Ok();
}

void IngestBackend::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (!started_ || stopping_) {
      stopping_ = true;
    } else {
      stopping_ = true;
    }
  }
  wake_.notify_all();
  wake_checker_.notify_all();
  // The checker hands on every batch it still has before it ends; the writer then commits them.
  if (checker_.joinable()) checker_.join();
  if (writer_.joinable()) writer_.join();
}

IngestBackendStats IngestBackend::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void IngestBackend::Enqueue(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
}

void IngestBackend::SubmitBatch(terminals::BatchSubmission batch,
                                Done<Result<std::vector<ResultCode>>> done) {
  size_t n = batch.records.size();
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && queued_records_ + n <= kQueueRecordsMax) {
      queued_records_ += n;
      batches_.push_back(BatchJob{std::move(batch), std::move(done), PrecheckedProofs{}});
      done = nullptr;
    }
  }
  if (done) {
    done(Status::Internal("backend_busy", "the ingest queue is full or stopping; retry later"));
    return;
  }
  if (options_.precheck_authenticator != nullptr) {
    wake_checker_.notify_one();
  } else {
    wake_.notify_one();
  }
}

bool IngestBackend::Drained() const {
  return tasks_.empty() && online_.empty() && batches_.empty() && checked_.empty() &&
         checking_ == 0;
}

void IngestBackend::Check() {
  ::pthread_setname_np(::pthread_self(), "cc-checker");
  std::unique_lock lock(mutex_);
  while (true) {
    wake_checker_.wait(lock, [&] { return stopping_ || !batches_.empty(); });
    if (batches_.empty()) break;  // stopping, and everything was handed on
    BatchJob job = std::move(batches_.front());
    batches_.pop_front();
    ++checking_;
    auto ti = terminals_.find(job.batch.terminal.terminal_id);
    std::shared_ptr<const Terminal> terminal = ti != terminals_.end() ? ti->second : nullptr;
    lock.unlock();
    // A terminal the writer has not read yet: its first batch is checked by the writer.
    bool cards_read = false;
    bool cards_failed = false;
    if (terminal != nullptr) {
      job.proofs = PrecheckProofs(*options_.precheck_authenticator, *terminal, job.batch.records);
      if (prefetcher_ != nullptr) {
        // A failed read costs the writer the reads, never a wrong answer: it reads them itself.
        Status read = prefetcher_->Prefetch(job.batch.records, &job.proofs);
        cards_read = read.ok();
        cards_failed = !read.ok();
        if (!read.ok()) spdlog::warn("ingest: cards not read ahead: {}", read.ToString());
      }
    }
    lock.lock();
    stats_.batches_cards_ahead += cards_read ? 1 : 0;
    stats_.card_prefetch_failures += cards_failed ? 1 : 0;
    --checking_;
    checked_.push_back(std::move(job));
    wake_.notify_one();
  }
  wake_.notify_one();
}

int IngestBackend::SetWriterNice() {
  const pid_t self = ::gettid();
  if (options_.writer_nice != 0 && ::setpriority(PRIO_PROCESS, static_cast<id_t>(self),
                                                 options_.writer_nice) != 0) {
    const int error = errno;
    spdlog::warn("ingest: the writer thread keeps the process's priority: nice {} refused ({}); "
                 "give the server CAP_SYS_NICE or a nice limit (RLIMIT_NICE) for it",
                 options_.writer_nice, std::strerror(error));
  }
  errno = 0;
  const int nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(self));
  return errno == 0 ? nice : 0;
}

void IngestBackend::Run() {
  // Named, so that a profile (perf report --sort comm) tells the writer from the I/O threads.
  ::pthread_setname_np(::pthread_self(), "cc-writer");
  using SteadyClock = std::chrono::steady_clock;
  auto next_housekeeping = SteadyClock::now();
  // With a checker, the writer takes the batches it checked; otherwise those submitted.
  std::deque<BatchJob>& ready = options_.precheck_authenticator != nullptr ? checked_ : batches_;
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_until(lock, next_housekeeping, [&] {
      return !ready.empty() || !tasks_.empty() || !online_.empty() || (stopping_ && Drained());
    });
    if (stopping_ && Drained()) break;
    std::deque<std::function<void()>> tasks;
    tasks.swap(tasks_);
    std::vector<BatchJob> group;
    size_t records = 0;
    while (!ready.empty() &&
           (group.empty() ||
            records + ready.front().batch.records.size() <= options_.group_records_max)) {
      records += ready.front().batch.records.size();
      group.push_back(std::move(ready.front()));
      ready.pop_front();
    }
    queued_records_ -= records;
    std::vector<OnlineJob> online;
    while (!online_.empty() && online.size() < kOnlineGroupMax) {
      online.push_back(std::move(online_.front()));
      online_.pop_front();
    }
    lock.unlock();
    for (auto& task : tasks) task();
    if (!group.empty()) RunGroup(group);
    if (!online.empty()) RunOnlineGroup(online);
    if (SteadyClock::now() >= next_housekeeping) {
      Housekeeping();
      next_housekeeping =
          SteadyClock::now() + std::chrono::milliseconds(options_.housekeeping_interval_ms);
    }
    lock.lock();
  }
}

void IngestBackend::RunGroup(std::vector<BatchJob>& group) {
  std::vector<UploadedBatch> batches;
  std::vector<PrecheckedProofs> proofs;
  std::vector<std::string> unchecked_terminals;  // read for the checker after this group
  batches.reserve(group.size());
  size_t checked_ahead = 0;
  for (BatchJob& job : group) {
    batches.push_back(UploadedBatch{job.batch.terminal.terminal_id, std::move(job.batch.records)});
    if (options_.precheck_authenticator == nullptr) continue;
    if (job.proofs.checked) {
      checked_ahead += batches.back().records.size();
    } else {
      unchecked_terminals.push_back(job.batch.terminal.terminal_id);
    }
    proofs.push_back(std::move(job.proofs));
  }
  SyncCaches();
  auto outcomes = engine_.Ingest(batches, proofs);
  size_t records = 0;
  for (const UploadedBatch& b : batches) records += b.records.size();
  {
    std::lock_guard lock(mutex_);
    ++stats_.groups;
    stats_.records_checked_ahead += checked_ahead;
    if (!outcomes.ok()) ++stats_.failures;
    stats_.batches += group.size();
    stats_.records += records;
    stats_.records_max_in_group = std::max<uint64_t>(stats_.records_max_in_group, records);
  }
  if (!outcomes.ok()) {
    spdlog::error("ingest: a group of {} batches failed: {}", group.size(),
                  outcomes.status().ToString());
    for (BatchJob& job : group) job.done(outcomes.status());
    return;
  }
  RefreshDenylistVersion();
  for (size_t i = 0; i < group.size(); ++i) {
    std::vector<ResultCode> codes;
    codes.reserve((*outcomes)[i].size());
    for (IngestOutcome o : (*outcomes)[i]) codes.push_back(RecordResultCode(o));
    group[i].done(std::move(codes));
  }
  // After the answers, so that reading terminals never delays an acknowledgement.
  if (!unchecked_terminals.empty()) RefreshTerminals(unchecked_terminals);
}

void IngestBackend::RefreshTerminals(const std::vector<std::string>& ids) {
  std::vector<std::string> wanted = ids;
  if (wanted.empty()) {
    std::lock_guard lock(mutex_);
    for (const auto& [id, terminal] : terminals_) wanted.push_back(id);
  }
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  for (const std::string& id : wanted) {
    auto found = registry_.FindTerminal(id);
    // A failed read leaves the checker without the terminal: the writer checks its batches.
    std::shared_ptr<const Terminal> terminal;
    if (found.ok() && found->has_value()) terminal = std::make_shared<const Terminal>(**found);
    std::lock_guard lock(mutex_);
    if (terminal != nullptr) {
      terminals_[id] = std::move(terminal);
    } else {
      terminals_.erase(id);
    }
  }
}

void IngestBackend::SyncCaches() {
  if (!options_.changed_elsewhere) return;
  auto changed = options_.changed_elsewhere();
  // When the question itself fails the caches are dropped: a slower answer, never a stale one.
  if (!changed.ok() || *changed) {
    engine_.ClearCaches();
    terminals_stale_ = true;
  }
}

void IngestBackend::Housekeeping() {
  SyncCaches();
  auto expired = engine_.ExpireTopups();
  if (!expired.ok()) spdlog::error("ingest: top-up expiry failed: {}", expired.status().ToString());
  if (options_.housekeeping) options_.housekeeping();
  RefreshDenylistVersion();
  // A terminal's keys rotated or revoked make the checker's copy stale; until it is read
  // again here, the writer checks that terminal's batches itself (correct, only slower).
  // Without a way to know of other connections' commits, they are read every time.
  const auto now = std::chrono::steady_clock::now();
  if (options_.precheck_authenticator != nullptr &&
      (terminals_stale_ || !options_.changed_elsewhere || now >= next_terminal_refresh_)) {
    RefreshTerminals({});
    terminals_stale_ = false;
    next_terminal_refresh_ = now + std::chrono::milliseconds(kTerminalRefreshIntervalMs);
    std::lock_guard lock(mutex_);
    ++stats_.terminal_refreshes;
  }
}

void IngestBackend::RefreshDenylistVersion() {
  auto delta = registry_.DenylistSince(denylist_version_.load());
  if (delta.ok()) denylist_version_ = delta->to_version;
}

void IngestBackend::OnHeartbeat(terminals::TerminalIdentity terminal,
                                terminals::Heartbeat heartbeat) {
  Enqueue([this, id = std::move(terminal.terminal_id), heartbeat] {
    Status noted = engine_.NoteTerminalDenylistVersion(
        id, static_cast<int64_t>(heartbeat.versions.denylist_version), heartbeat.terminal_time_ms);
    if (!noted.ok()) spdlog::error("ingest: heartbeat of {} not noted: {}", id, noted.ToString());
  });
}

terminals::Versions IngestBackend::CurrentVersions() {
  terminals::Versions v;
  v.denylist_version = static_cast<uint64_t>(denylist_version_.load());
  v.fare_version = fare_version_.load();
  return v;
}

void IngestBackend::LookupTerminal(std::string terminal_id,
                                   Done<Result<terminals::TerminalAuthInfo>> done) {
  Enqueue([this, terminal_id = std::move(terminal_id), done = std::move(done)] {
    auto found = registry_.FindTerminal(terminal_id);
    if (!found.ok()) return done(found.status());
    if (!found->has_value()) {
      return done(Status::NotFound("terminal_not_found", "no terminal " + terminal_id));
    }
    const Terminal& t = **found;
    if (options_.precheck_authenticator != nullptr) {
      // The session's first batch can then be checked ahead as well.
      std::lock_guard lock(mutex_);
      terminals_[t.id] = std::make_shared<const Terminal>(t);
    }
    terminals::TerminalAuthInfo info;
    info.terminal_id = t.id;
    info.operator_id = t.operator_id;
    info.active = t.status == TerminalStatus::active;
    for (const citycard::TerminalKey& k : t.keys) {
      if (k.revoked) continue;
      auto plain = crypto::UnwrapKey(wrap_key_, k.wrapped_key);
      if (!plain.ok()) {
        spdlog::error("terminal {} key version {} does not unwrap", t.id, k.version);
        continue;
      }
      info.keys.push_back(terminals::TerminalKey{static_cast<uint8_t>(k.version), std::move(*plain)});
    }
    done(std::move(info));
  });
}

void IngestBackend::GetDenylist(uint64_t known_version,
                                Done<Result<terminals::DenylistUpdate>> done) {
  Enqueue([this, known_version, done = std::move(done)] {
    terminals::DenylistUpdate update;
    int64_t current = denylist_version_.load();
    if (known_version == 0 || static_cast<int64_t>(known_version) > current) {
      auto full = registry_.DenylistFull();
      if (!full.ok()) return done(full.status());
      update.kind = terminals::DenylistKind::full;
      update.to_version = static_cast<uint64_t>(full->version);
      for (const DenylistEntry& e : full->entries) update.added.push_back(CardNumberToInt(e.card_no));
      return done(std::move(update));
    }
    auto delta = registry_.DenylistSince(static_cast<int64_t>(known_version));
    if (!delta.ok()) return done(delta.status());
    update.kind = terminals::DenylistKind::delta;
    update.from_version = static_cast<uint64_t>(delta->from_version);
    update.to_version = static_cast<uint64_t>(delta->to_version);
    for (const DenylistEntry& e : delta->added) update.added.push_back(CardNumberToInt(e.card_no));
    for (const std::string& no : delta->removed) update.removed.push_back(CardNumberToInt(no));
    done(std::move(update));
  });
}

void IngestBackend::GetDocument(terminals::DocumentKind kind, uint32_t known_version,
                                Done<Result<terminals::Document>> done) {
  if (kind == terminals::DocumentKind::fare_table && options_.fare_table) {
    Enqueue([this, known_version, done = std::move(done)] {
      auto fares = options_.fare_table();
      if (!fares.ok()) return done(fares.status());
      fare_version_ = fares->version;
      terminals::Document document;
      document.kind = terminals::DocumentKind::fare_table;
      document.version = fares->version;
      document.up_to_date = known_version == fares->version;
      if (!document.up_to_date) {
        document.content.assign(fares->json.begin(), fares->json.end());
      }
      done(std::move(document));
    });
    return;
  }
  // Fare tables and parameters are served by the fares component once it is wired in; until
  // then there is no such document (version 0, empty).
  terminals::Document document;
  document.kind = kind;
  document.up_to_date = known_version == 0;
  done(std::move(document));
}

bool IngestBackend::JoinsOnlineGroup(const terminals::OnlineRequest& request) const {
  if (std::holds_alternative<terminals::TopupRequest>(request)) return true;
  return options_.joins_group && options_.online_in_group && options_.joins_group(request);
}

void IngestBackend::HandleOnline(terminals::TerminalIdentity terminal,
                                 terminals::OnlineRequest request,
                                 Done<terminals::OnlineResponse> done) {
  if (!JoinsOnlineGroup(request)) {
    Enqueue([this, terminal = std::move(terminal), request = std::move(request),
             done = std::move(done)] { done(Online(terminal, request)); });
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && online_.size() < kOnlineQueueMax) {
      online_.push_back(OnlineJob{std::move(terminal), std::move(request), std::move(done)});
      done = nullptr;
    }
  }
  if (done) {
    done(terminals::RefusalFor(request, ResultCode::backend_unavailable));
    return;
  }
  wake_.notify_one();
}

namespace {

TopupAsk AskOf(const terminals::TerminalIdentity& terminal, const terminals::TopupRequest& r) {
  TopupAsk a;
  a.terminal_id = terminal.terminal_id;
  a.request_id = r.request_id;
  a.card_no = r.card_no;
  a.card_counter = r.card_counter;
  a.balance_before_fen = r.balance_before_fen;
  a.amount_fen = r.amount_fen;
  return a;
}

terminals::OnlineResponse TopupAnswer(const terminals::OnlineRequest& request,
                                      const terminals::TopupRequest& ask,
                                      const Result<TopupDecision>& decision) {
  if (!decision.ok()) {
    spdlog::error("ingest: top-up {} failed: {}", ask.request_id, decision.status().ToString());
    return terminals::RefusalFor(request, ResultCode::backend_unavailable);
  }
  terminals::TopupAuthorisation out;
  out.request_id = ask.request_id;
  out.code = TopupCode(decision->outcome);
  if (decision->outcome == TopupOutcome::authorised) {
    out.authorisation_id = decision->authorisation_id;
    out.amount_fen = decision->amount_fen;
    out.balance_after_fen = decision->balance_after_fen;
    out.host_mac = decision->host_mac;
  }
  return out;
}

}  // namespace

void IngestBackend::RunOnlineGroup(std::vector<OnlineJob>& group) {
  std::vector<std::optional<terminals::OnlineResponse>> answers(group.size());
  std::vector<TopupAsk> asks;
  std::vector<size_t> ask_owner;   // the job of each ask
  std::vector<size_t> in_group;    // the jobs options_.online_in_group answers
  for (size_t i = 0; i < group.size(); ++i) {
    const auto* ask = std::get_if<terminals::TopupRequest>(&group[i].request);
    if (ask == nullptr) {
      in_group.push_back(i);
      continue;
    }
    Bytes body = ask->Encode();
    ByteView signed_part(body.data(), body.size() - terminals::kCardProofBytes);
    if (!auth_.VerifyCardProof(ask->card_no, auth_.CurrentCardKeyVersion(), signed_part,
                               ask->card_proof)) {
      answers[i] = terminals::RefusalFor(group[i].request, ResultCode::bad_card_proof);
      continue;
    }
    asks.push_back(AskOf(group[i].terminal, *ask));
    ask_owner.push_back(i);
  }
  std::function<Status()> in_transaction;
  if (!in_group.empty()) {
    in_transaction = [&] {
      for (size_t i : in_group) {
        answers[i] = options_.online_in_group(group[i].terminal, group[i].request);
      }
      return Status::Ok();
    };
  }
  bool failed = false;
  if (!asks.empty() || in_transaction) {
    SyncCaches();
    auto decisions = engine_.AuthoriseTopups(asks, in_transaction);
    if (!decisions.ok()) {
      failed = true;
      spdlog::error("ingest: an online group of {} requests failed: {}", group.size(),
                    decisions.status().ToString());
      for (size_t i : ask_owner) {
        answers[i] = terminals::RefusalFor(group[i].request, ResultCode::backend_unavailable);
      }
      for (size_t i : in_group) {
        answers[i] = terminals::RefusalFor(group[i].request, ResultCode::backend_unavailable);
      }
    } else {
      for (size_t k = 0; k < asks.size(); ++k) {
        const OnlineJob& job = group[ask_owner[k]];
        answers[ask_owner[k]] = TopupAnswer(
            job.request, std::get<terminals::TopupRequest>(job.request), (*decisions)[k]);
      }
    }
  }
  {
    std::lock_guard lock(mutex_);
    ++stats_.online_groups;
    if (failed) ++stats_.online_failures;
    stats_.online_requests += group.size();
    stats_.online_max_in_group = std::max<uint64_t>(stats_.online_max_in_group, group.size());
  }
  for (size_t i = 0; i < group.size(); ++i) {
    CITYCARD_ASSERT(answers[i].has_value());
    group[i].done(std::move(*answers[i]));
  }
}

terminals::OnlineResponse IngestBackend::Online(const terminals::TerminalIdentity& terminal,
                                                const terminals::OnlineRequest& request) {
  if (const auto* confirm = std::get_if<terminals::TopupConfirmation>(&request)) {
    SyncCaches();
    auto result = engine_.ConfirmTopup(terminal.terminal_id, confirm->authorisation_id,
                                       confirm->record);
    if (!result.ok()) {
      spdlog::error("ingest: top-up confirmation failed: {}", result.status().ToString());
      return terminals::RefusalFor(request, ResultCode::backend_unavailable);
    }
    terminals::TopupConfirmationResult out;
    out.request_id = confirm->request_id;
    out.code = result->outcome == TopupOutcome::bad_record ? RecordResultCode(result->record_outcome)
                                                           : TopupCode(result->outcome);
    return out;
  }
  if (options_.online_fallback) return options_.online_fallback(terminal, request);
  return terminals::RefusalFor(request, ResultCode::unsupported_request);
}

}  // namespace citycard::server
