// An in-memory FareStore for core tests of the fare office. Its transaction is the registry
// fake's (which carries the ledger fake's), as the SQLite stores share one connection: Begin
// snapshots the fares' state and begins the registry's; Rollback restores both.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/fare_store.h"
#include "core/registry.h"

namespace citycard::testing {

class MemoryFareStore final : public FareStore {
 public:
  explicit MemoryFareStore(RegistryStore& registry) : registry_(registry) {}

  Status Begin() override;
  Status Commit() override;
  Status Rollback() override;
  Status InsertTable(const StoredFareTable& table) override;
  Result<std::optional<StoredFareTable>> FindTable(int64_t version) override;
  Result<std::optional<StoredFareTable>> CurrentTable() override;
  Result<std::vector<StoredFareTable>> ListTables() override;
  Status InsertPass(const StoredPass& pass) override;
  Status UpdatePass(const StoredPass& pass) override;
  Result<std::optional<StoredPass>> FindPass(std::string_view card_no,
                                             std::string_view pass_id) override;
  Result<std::vector<StoredPass>> ListPasses(std::string_view card_no) override;

  // The next InsertPass fails with Kind::internal "injected_fault" (the sale must roll back).
  void FailNextInsertPass() { fail_next_insert_pass_ = true; }

 private:
  struct State {
    std::map<int64_t, StoredFareTable> tables;
    std::map<std::pair<std::string, std::string>, StoredPass> passes;
  };
  RegistryStore& registry_;
  State state_;
  std::optional<State> snapshot_;
  bool fail_next_insert_pass_ = false;
};

}  // namespace citycard::testing
