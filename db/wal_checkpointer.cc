#include "db/wal_checkpointer.h"

#include <pthread.h>
#include <sqlite3.h>

#include "db/database.h"

namespace citycard::db {

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::Start(Database& writer,
                                                                int wal_pages_max) {
  CITYCARD_ASSERT(wal_pages_max >= kWalCheckpointPagesMin);
  if (writer.path() == ":memory:" || writer.path().empty()) {
    return Status::Usage("checkpointer_needs_file",
                         "an in-memory database has no WAL to checkpoint");
  }
  auto own = Database::Open(writer.path(), /*create=*/false);
  if (!own.ok()) return own.status();
  std::unique_ptr<WalCheckpointer> self(
      new WalCheckpointer(writer, std::move(own).value(), wal_pages_max));
  // The hook replaces the automatic checkpoint (which is itself a WAL hook) on the writer.
  sqlite3_wal_hook(writer.handle(), &WalCheckpointer::OnCommit, self.get());
  self->thread_ = std::thread([s = self.get()] { s->Run(); });
  return self;
}

WalCheckpointer::WalCheckpointer(Database& writer, std::unique_ptr<Database> own,
                                 int wal_pages_max)
    : writer_(writer), own_(std::move(own)), wal_pages_max_(wal_pages_max) {}

WalCheckpointer::~WalCheckpointer() {
  // The writer's automatic checkpoint comes back first, so that no commit calls the hook of
  // an object being destroyed.
  sqlite3_wal_autocheckpoint(writer_.handle(), kWalCheckpointPagesMin);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  finished_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t WalCheckpointer::checkpoints() const {
  std::lock_guard<std::mutex> lock(mu_);
  return checkpoints_;
}

Status WalCheckpointer::first_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_error_;
}

// Runs on the writer's thread, after each commit, with the WAL's size in pages. The commit
// it follows is already durable; this only wakes the checkpointer, and past wal_pages_max_
// waits for a checkpoint begun after the commit, so that the writer's next transaction
// starts the WAL over (see kWalPagesMax).
int WalCheckpointer::OnCommit(void* self, sqlite3*, const char*, int pages) {
  if (pages < kWalCheckpointPagesMin) return SQLITE_OK;
  auto* c = static_cast<WalCheckpointer*>(self);
  std::unique_lock<std::mutex> lock(c->mu_);
  const int64_t asked = ++c->asked_;
  c->wake_.notify_one();
  if (pages >= c->wal_pages_max_) {
    c->finished_.wait(lock, [&] { return c->served_ >= asked || c->stop_; });
  }
  return SQLITE_OK;
}

void WalCheckpointer::Run() {
  // Named, so that a profile by thread tells the checkpoints from the writer's own work.
  ::pthread_setname_np(::pthread_self(), "cc-checkpoint");
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [&] { return asked_ > served_ || stop_; });
    if (stop_) return;
    // Every commit asked for before this point is covered by the checkpoint begun now.
    const int64_t serving = asked_;
    lock.unlock();
    // PASSIVE copies what no reader still needs and never waits on the writer, which goes on
    // appending to the WAL meanwhile.
    int rc = sqlite3_wal_checkpoint_v2(own_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                       nullptr, nullptr);
    std::string message = rc == SQLITE_OK ? "" : sqlite3_errmsg(own_->handle());
    lock.lock();
    ++checkpoints_;
    served_ = serving;
    finished_.notify_all();
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY && first_error_.ok()) {
      first_error_ = Status::Internal("checkpoint_failed", "WAL checkpoint: " + message);
    }
  }
}

DeferredCheckpoint::DeferredCheckpoint(Database& db) : db_(db) {
  sqlite3_wal_autocheckpoint(db_.handle(), 0);
}

DeferredCheckpoint::~DeferredCheckpoint() {
  sqlite3_wal_autocheckpoint(db_.handle(), kWalCheckpointPagesMin);
}

Status DeferredCheckpoint::Finish() {
  const int rc = sqlite3_wal_checkpoint_v2(db_.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                           nullptr, nullptr);
  sqlite3_wal_autocheckpoint(db_.handle(), kWalCheckpointPagesMin);
  if (rc != SQLITE_OK) {
    return Status::Internal("db_error",
                            std::string("checkpoint: ") + sqlite3_errmsg(db_.handle()));
  }
  return Status::Ok();
}

}  // namespace citycard::db
