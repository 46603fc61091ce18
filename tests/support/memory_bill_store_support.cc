#include "tests/support/memory_bill_store_support.h"

namespace citycard::testing {

Status MemoryBillStore::Begin() {
  CITYCARD_ASSERT(!snapshot_);
  snapshot_ = state_;
  return registry_.Begin();
}

Status MemoryBillStore::Commit() {
  CITYCARD_ASSERT(snapshot_);
  snapshot_.reset();
  return registry_.Commit();
}

Status MemoryBillStore::Rollback() {
  if (snapshot_) {
    state_ = std::move(*snapshot_);
    snapshot_.reset();
  }
  return registry_.Rollback();
}

Status MemoryBillStore::InsertMandate(const Mandate& m) {
  MandateKey key{m.card_no, m.utility, m.account_no};
  if (state_.mandates.count(key)) return Status::Refused("mandate_exists", "mandate exists");
  state_.mandates.emplace(key, m);
  return Status::Ok();
}

Status MemoryBillStore::DeleteMandate(std::string_view card_no, std::string_view utility,
                                      std::string_view account_no) {
  MandateKey key{std::string(card_no), std::string(utility), std::string(account_no)};
  if (state_.mandates.erase(key) == 0) return Status::NotFound("mandate_not_found", "no mandate");
  return Status::Ok();
}

Result<bool> MemoryBillStore::HasMandate(std::string_view card_no, std::string_view utility,
                                         std::string_view account_no) {
  MandateKey key{std::string(card_no), std::string(utility), std::string(account_no)};
  return state_.mandates.count(key) > 0;
}

Result<std::vector<Mandate>> MemoryBillStore::ListMandates(const MandateFilter& filter) {
  std::vector<Mandate> list;
  for (const auto& [key, m] : state_.mandates) {
    if (filter.card_no && *filter.card_no != m.card_no) continue;
    if (filter.utility && *filter.utility != m.utility) continue;
    if (list.size() == kMandateListMax) break;  // the contract's cap, as the SQLite store's
    list.push_back(m);
  }
  return list;
}

Result<std::optional<StoredBill>> MemoryBillStore::FindBill(std::string_view utility,
                                                            std::string_view bill_id) {
  auto it = state_.bills.find(BillKey{std::string(utility), std::string(bill_id)});
  if (it == state_.bills.end()) return std::optional<StoredBill>();
  return std::optional<StoredBill>(it->second);
}

Result<std::vector<StoredBill>> MemoryBillStore::FindBillsById(std::string_view bill_id) {
  std::vector<StoredBill> list;
  for (const auto& [key, bill] : state_.bills) {
    if (bill.bill_id == bill_id) list.push_back(bill);
  }
  return list;
}

Result<std::vector<StoredBill>> MemoryBillStore::ListBillsByIdRange(
    std::string_view first_bill_id, std::string_view last_bill_id, size_t limit) {
  // The map is ordered by (utility, bill id); the contract's order is (bill id, utility).
  std::map<std::pair<std::string, std::string>, StoredBill> by_id;
  for (const auto& [key, bill] : state_.bills) {
    if (bill.bill_id >= first_bill_id && bill.bill_id <= last_bill_id) {
      by_id.emplace(std::make_pair(bill.bill_id, bill.utility), bill);
    }
  }
  std::vector<StoredBill> list;
  for (auto& [key, bill] : by_id) {
    if (list.size() == limit) break;
    list.push_back(std::move(bill));
  }
  return list;
}

Status MemoryBillStore::PutBill(const StoredBill& bill) {
  state_.bills[BillKey{bill.utility, bill.bill_id}] = bill;
  return Status::Ok();
}

Result<std::optional<BillImportProgress>> MemoryBillStore::FindImport(
    std::string_view file_sha256) {
  auto it = state_.imports.find(std::string(file_sha256));
  if (it == state_.imports.end()) return std::optional<BillImportProgress>();
  return std::optional<BillImportProgress>(it->second);
}

Status MemoryBillStore::PutImport(const BillImportProgress& progress) {
  if (fail_next_put_import_) {
    fail_next_put_import_ = false;
    return Status::Internal("injected_fault", "write failed on purpose");
  }
  state_.imports[progress.file_sha256] = progress;
  return Status::Ok();
}

Status MemoryBillStore::AppendImportResults(std::string_view file_sha256, int64_t chunk,
                                            std::span<const BillResult> results) {
  auto key = std::make_pair(std::string(file_sha256), chunk);
  if (state_.chunks.count(key)) return Status::Internal("chunk_exists", "chunk kept already");
  state_.chunks.emplace(key, std::vector<BillResult>(results.begin(), results.end()));
  return Status::Ok();
}

Status MemoryBillStore::ForEachImportResult(
    std::string_view file_sha256,
    const std::function<Status(std::span<const BillResult>)>& visit) {
  auto chunks = state_.chunks;  // `visit` may write to the store
  for (const auto& [key, results] : chunks) {
    if (key.first != file_sha256) continue;
    CITYCARD_RETURN_IF_ERROR(visit(results));
  }
  return Status::Ok();
}

}  // namespace citycard::testing
