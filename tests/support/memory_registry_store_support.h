// An in-memory RegistryStore for core tests. Begin snapshots the whole state and Rollback
// restores it. When given the test's LedgerStore, it begins, commits and rolls back that store
// with its own transaction, as the SQLite stores share one connection.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "core/ledger_store.h"
#include "core/registry.h"

namespace citycard::testing {

class MemoryRegistryStore final : public RegistryStore {
 public:
  explicit MemoryRegistryStore(LedgerStore* ledger_store = nullptr) : ledger_store_(ledger_store) {}

  // Runs `before_begin` first when set, once (then clears it): another process committing
  // just before this transaction begins.
  Status Begin() override;
  Status Commit() override;
  Status Rollback() override;
  // A read scope here only counts itself and asserts that nothing is written inside it.
  Status BeginRead() override;
  Status EndRead() override;
  Result<int64_t> NextSequence(std::string_view name) override;
  Result<std::optional<Holder>> FindHolder(std::string_view id_hash) override;
  Result<std::optional<Holder>> FindHolderByNumber(int64_t number) override;
  Status InsertHolder(const Holder& holder) override;
  Status UpdateHolder(const Holder& holder) override;
  Status InsertCard(const Card& card) override;
  Status UpdateCard(const Card& card) override;
  Result<std::optional<Card>> FindCard(std::string_view card_no) override;
  Result<std::vector<Card>> ListCards(const CardFilter& filter) override;
  Result<std::vector<Card>> ListDueReplacements(int64_t now_s, size_t limit) override;
  Result<int64_t> CardChanges() override;
  Status InsertOperator(const Operator& op) override;
  Result<std::optional<Operator>> FindOperator(std::string_view id) override;
  Result<std::optional<Operator>> FindOperatorByNumber(int64_t number) override;
  Result<std::vector<Operator>> ListOperators() override;
  Status InsertTerminal(const Terminal& terminal) override;
  Status SetTerminalStatus(std::string_view id, TerminalStatus status) override;
  Status AddTerminalKey(std::string_view id, const TerminalKey& key) override;
  Status RaiseTerminalCounter(std::string_view id, int64_t counter) override;
  Result<std::optional<Terminal>> FindTerminal(std::string_view id) override;
  Result<std::vector<Terminal>> ListTerminals() override;
  Result<int64_t> DenylistAdd(std::string_view card_no, DenyReason reason) override;
  Result<int64_t> DenylistRemove(std::string_view card_no) override;
  Result<std::optional<DenylistEntry>> DenylistFind(std::string_view card_no) override;
  Result<Denylist> DenylistFull() override;
  Result<DenylistDelta> DenylistSince(int64_t version) override;

  // The next write fails with Kind::internal "injected_fault" (to test that nothing of a
  // failed unit of work stays).
  void FailNextWrite() { fail_next_write_ = true; }
  // The next FindCard fails with Kind::internal "injected_fault".
  void FailNextCardRead() { fail_next_card_read_ = true; }
  // Read scopes begun, and whether one is open now.
  int read_scopes_begun() const { return read_scopes_begun_; }
  bool in_read_scope() const { return in_read_scope_; }

  std::function<void()> before_begin;

 private:
  struct DenyChange {
    std::string card_no;
    std::optional<DenyReason> reason;  // nullopt: removed
  };
  struct State {
    std::map<std::string, int64_t, std::less<>> sequences;
    std::map<int64_t, Holder> holders;  // by number
    std::map<std::string, Card, std::less<>> cards;
    int64_t card_changes = 0;  // CardChanges: rolled back with the rest
    std::map<std::string, Operator, std::less<>> operators;
    std::map<std::string, Terminal, std::less<>> terminals;
    std::map<std::string, DenylistEntry, std::less<>> denylist;
    std::map<int64_t, DenyChange> deny_changes;  // by version
  };
  Status Fault();
  int64_t DenyVersion() const;

  LedgerStore* ledger_store_;
  State state_;
  std::optional<State> snapshot_;
  bool fail_next_write_ = false;
  bool fail_next_card_read_ = false;
  int read_scopes_begun_ = 0;
  bool in_read_scope_ = false;
};

}  // namespace citycard::testing
