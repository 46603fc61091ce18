#include "tests/support/memory_fare_store_support.h"

namespace citycard::testing {

Status MemoryFareStore::Begin() {
  CITYCARD_ASSERT(!snapshot_);
  snapshot_ = state_;
  return registry_.Begin();
}

Status MemoryFareStore::Commit() {
  CITYCARD_ASSERT(snapshot_);
  snapshot_.reset();
  return registry_.Commit();
}

Status MemoryFareStore::Rollback() {
  if (snapshot_) {
    state_ = std::move(*snapshot_);
    snapshot_.reset();
  }
  return registry_.Rollback();
}

Status MemoryFareStore::InsertTable(const StoredFareTable& table) {
  if (state_.tables.count(table.version)) {
    return Status::Refused("fare_version_exists", "fare table version is stored");
  }
  state_.tables.emplace(table.version, table);
  return Status::Ok();
}

Result<std::optional<StoredFareTable>> MemoryFareStore::FindTable(int64_t version) {
  auto it = state_.tables.find(version);
  if (it == state_.tables.end()) return std::optional<StoredFareTable>();
  return std::optional<StoredFareTable>(it->second);
}

Result<std::optional<StoredFareTable>> MemoryFareStore::CurrentTable() {
  if (state_.tables.empty()) return std::optional<StoredFareTable>();
  return std::optional<StoredFareTable>(state_.tables.rbegin()->second);
}

Result<std::vector<StoredFareTable>> MemoryFareStore::ListTables() {
  std::vector<StoredFareTable> out;
  for (const auto& [version, table] : state_.tables) out.push_back(table);
  return out;
}

Status MemoryFareStore::InsertPass(const StoredPass& pass) {
  if (fail_next_insert_pass_) {
    fail_next_insert_pass_ = false;
    return Status::Internal("injected_fault", "injected fault");
  }
  auto key = std::make_pair(pass.card_no, pass.pass_id);
  if (state_.passes.count(key)) return Status::Refused("pass_exists", "pass exists");
  state_.passes.emplace(key, pass);
  return Status::Ok();
}

Status MemoryFareStore::UpdatePass(const StoredPass& pass) {
  auto it = state_.passes.find({pass.card_no, pass.pass_id});
  if (it == state_.passes.end()) return Status::NotFound("pass_not_found", "no such pass");
  it->second = pass;
  return Status::Ok();
}

Result<std::optional<StoredPass>> MemoryFareStore::FindPass(std::string_view card_no,
                                                            std::string_view pass_id) {
  auto it = state_.passes.find({std::string(card_no), std::string(pass_id)});
  if (it == state_.passes.end()) return std::optional<StoredPass>();
  return std::optional<StoredPass>(it->second);
}

Result<std::vector<StoredPass>> MemoryFareStore::ListPasses(std::string_view card_no) {
  std::vector<StoredPass> out;
  for (const auto& [key, pass] : state_.passes) {
    if (key.first == card_no) out.push_back(pass);
  }
  return out;
}

}  // namespace citycard::testing
