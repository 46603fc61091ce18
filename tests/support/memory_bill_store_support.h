// An in-memory BillStore for core tests of the bill service. Its transaction is the registry
// fake's (which carries the ledger fake's), as the SQLite stores share one connection: Begin
// snapshots the bills' state and begins the registry's; Rollback restores both.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/bills.h"
#include "core/registry.h"

namespace citycard::testing {

class MemoryBillStore final : public BillStore {
 public:
  explicit MemoryBillStore(RegistryStore& registry) : registry_(registry) {}

  Status Begin() override;
  Status Commit() override;
  Status Rollback() override;
  Result<int64_t> ChangesByOthers() override { return changes_by_others_; }
  // Makes ChangesByOthers move, as another connection's commit would.
  void SimulateOtherCommit() { ++changes_by_others_; }
  Status InsertMandate(const Mandate& mandate) override;
  Status DeleteMandate(std::string_view card_no, std::string_view utility,
                       std::string_view account_no) override;
  Result<bool> HasMandate(std::string_view card_no, std::string_view utility,
                          std::string_view account_no) override;
  Result<std::vector<Mandate>> ListMandates(const MandateFilter& filter) override;
  Result<std::optional<StoredBill>> FindBill(std::string_view utility,
                                             std::string_view bill_id) override;
  Result<std::vector<StoredBill>> FindBillsById(std::string_view bill_id) override;
  Result<std::vector<StoredBill>> ListBillsByIdRange(std::string_view first_bill_id,
                                                     std::string_view last_bill_id,
                                                     size_t limit) override;
  Status PutBill(const StoredBill& bill) override;
  Result<std::optional<BillImportProgress>> FindImport(std::string_view file_sha256) override;
  Status PutImport(const BillImportProgress& progress) override;
  Status AppendImportResults(std::string_view file_sha256, int64_t chunk,
                             std::span<const BillResult> results) override;
  Status ForEachImportResult(
      std::string_view file_sha256,
      const std::function<Status(std::span<const BillResult>)>& visit) override;

  // The next PutImport fails with Kind::internal "injected_fault" (a crash before a chunk's
  // commit: everything of the chunk must roll back).
  void FailNextPutImport() { fail_next_put_import_ = true; }

 private:
  using MandateKey = std::tuple<std::string, std::string, std::string>;
  using BillKey = std::pair<std::string, std::string>;  // (utility, bill_id)
  struct State {
    std::map<MandateKey, Mandate> mandates;
    std::map<BillKey, StoredBill> bills;
    std::map<std::string, BillImportProgress> imports;
    std::map<std::pair<std::string, int64_t>, std::vector<BillResult>> chunks;
  };

  RegistryStore& registry_;
  State state_;
  std::optional<State> snapshot_;
  bool fail_next_put_import_ = false;
  int64_t changes_by_others_ = 1;
};

}  // namespace citycard::testing
