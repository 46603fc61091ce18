#include "tests/support/memory_registry_store_support.h"

namespace citycard::testing {

Status MemoryRegistryStore::Begin() {
  if (before_begin) {
    // Once: the hook may begin a transaction of its own (another process's).
    auto hook = std::move(before_begin);
    before_begin = nullptr;
    hook();
  }
  CITYCARD_ASSERT(!snapshot_ && !in_read_scope_);
  snapshot_ = state_;
  return ledger_store_ ? ledger_store_->Begin() : Status::Ok();
}

Status MemoryRegistryStore::Commit() {
  CITYCARD_ASSERT(snapshot_);
  // The joined store commits first: when it fails, the transaction stays open here too, so
  // that the caller's Rollback restores both (as a failed COMMIT in SQLite leaves it to).
  if (ledger_store_) CITYCARD_RETURN_IF_ERROR(ledger_store_->Commit());
  snapshot_.reset();
  return Status::Ok();
}

Status MemoryRegistryStore::Rollback() {
  if (!snapshot_) return Status::Internal("db_error", "no transaction is active");
  state_ = std::move(*snapshot_);
  snapshot_.reset();
  return ledger_store_ ? ledger_store_->Rollback() : Status::Ok();
}

Status MemoryRegistryStore::BeginRead() {
  CITYCARD_ASSERT(!in_read_scope_ && !snapshot_);
  in_read_scope_ = true;
  ++read_scopes_begun_;
  return Status::Ok();
}

Status MemoryRegistryStore::EndRead() {
  CITYCARD_ASSERT(in_read_scope_);
  in_read_scope_ = false;
  return Status::Ok();
}

Status MemoryRegistryStore::Fault() {
  CITYCARD_ASSERT(!in_read_scope_);  // a read scope is for reads only
  if (!fail_next_write_) return Status::Ok();
  fail_next_write_ = false;
  return Status::Internal("injected_fault", "write failed on purpose");
}

Result<int64_t> MemoryRegistryStore::NextSequence(std::string_view name) {
  auto it = state_.sequences.find(name);
  if (it == state_.sequences.end()) it = state_.sequences.emplace(std::string(name), 0).first;
  return ++it->second;
}

Result<std::optional<Holder>> MemoryRegistryStore::FindHolder(std::string_view id_hash) {
  for (const auto& [number, holder] : state_.holders) {
    if (holder.id_hash == id_hash) return std::optional<Holder>(holder);
  }
  return std::optional<Holder>();
}

Result<std::optional<Holder>> MemoryRegistryStore::FindHolderByNumber(int64_t number) {
  auto it = state_.holders.find(number);
  if (it == state_.holders.end()) return std::optional<Holder>();
  return std::optional<Holder>(it->second);
}

Status MemoryRegistryStore::InsertHolder(const Holder& holder) {
  CITYCARD_RETURN_IF_ERROR(Fault());
  auto found = FindHolder(holder.id_hash);
  if (found->has_value() || state_.holders.count(holder.number)) {
    return Status::Refused("holder_exists", "holder exists");
  }
  state_.holders[holder.number] = holder;
  return Status::Ok();
}

Status MemoryRegistryStore::UpdateHolder(const Holder& holder) {
  CITYCARD_RETURN_IF_ERROR(Fault());
  auto it = state_.holders.find(holder.number);
  if (it == state_.holders.end()) return Status::NotFound("holder_not_found", "no holder");
  it->second = holder;
  return Status::Ok();
}

Status MemoryRegistryStore::InsertCard(const Card& card) {
  CITYCARD_RETURN_IF_ERROR(Fault());
  if (!state_.cards.emplace(card.card_no, card).second) {
    return Status::Refused("card_exists", "card exists");
  }
  return Status::Ok();
}

Status MemoryRegistryStore::UpdateCard(const Card& card) {
  CITYCARD_RETURN_IF_ERROR(Fault());
  auto it = state_.cards.find(card.card_no);
  if (it == state_.cards.end()) return Status::NotFound("card_not_found", "no card");
  it->second = card;
  ++state_.card_changes;
  return Status::Ok();
}

Result<int64_t> MemoryRegistryStore::CardChanges() { return state_.card_changes; }

Result<std::optional<Card>> MemoryRegistryStore::FindCard(std::string_view card_no) {
  if (fail_next_card_read_) {
    fail_next_card_read_ = false;
    return Status::Internal("injected_fault", "read failed on purpose");
  }
  auto it = state_.cards.find(card_no);
  if (it == state_.cards.end()) return std::optional<Card>();
  return std::optional<Card>(it->second);
}

Result<std::vector<Card>> MemoryRegistryStore::ListCards(const CardFilter& filter) {
  std::vector<Card> cards;
  for (const auto& [no, card] : state_.cards) {
    if (filter.status && card.status != *filter.status) continue;
    if (filter.holder_number && card.holder_number != *filter.holder_number) continue;
    cards.push_back(card);
  }
  return cards;
}

Result<std::vector<Card>> MemoryRegistryStore::ListDueReplacements(int64_t now_s, size_t limit) {
  std::multimap<int64_t, Card> due;
  for (const auto& [no, card] : state_.cards) {
    if (card.status == CardStatus::replaced && card.balance_moved_s == 0 &&
        card.balance_move_due_s <= now_s) {
      due.emplace(card.balance_move_due_s, card);
    }
  }
  std::vector<Card> out;
  for (auto& [when, card] : due) {
    if (out.size() == limit) break;
    out.push_back(card);
  }
  return out;
}

Status MemoryRegistryStore::InsertOperator(const Operator& op) {
  CITYCARD_RETURN_IF_ERROR(Fault());
  for (const auto& [id, other] : state_.operators) {
    if (other.number == op.number) return Status::Refused("operator_exists", "number taken");
  }
  if (!state_.operators.emplace(op.id, op).second) {
    return Status::Refused("operator_exists", "operator exists");
  }
  return Status::Ok();
}

Result<std::optional<Operator>> MemoryRegistryStore::FindOperator(std::string_view id) {
  auto it = state_.operators.find(id);
  if (it == state_.operators.end()) return std::optional<Operator>();
  return std::optional<Operator>(it->second);
}

Result<std::optional<Operator>> MemoryRegistryStore::FindOperatorByNumber(int64_t number) {
  for (const auto& [id, op] : state_.operators) {
    if (op.number == number) return std::optional<Operator>(op);
  }
  return std::optional<Operator>();
}

Result<std::vector<Operator>> MemoryRegistryStore::ListOperators() {
  std::vector<Operator> out;
  for (const auto& [id, op] : state_.operators) out.push_back(op);
  return out;
}

Status MemoryRegistryStore::InsertTerminal(const Terminal& terminal) {
  CITYCARD_RETURN_IF_ERROR(Fault());
  if (!state_.terminals.emplace(terminal.id, terminal).second) {
    return Status::Refused("terminal_exists", "terminal exists");
  }
  return Status::Ok();
}

Status MemoryRegistryStore::SetTerminalStatus(std::string_view id, TerminalStatus status) {
  CITYCARD_RETURN_IF_ERROR(Fault());
  auto it = state_.terminals.find(id);
  if (it == state_.terminals.end()) return Status::NotFound("terminal_not_found", "no terminal");
  it->second.status = status;
  return Status::Ok();
}

Status MemoryRegistryStore::AddTerminalKey(std::string_view id, const TerminalKey& key) {
  CITYCARD_RETURN_IF_ERROR(Fault());
  auto it = state_.terminals.find(id);
  if (it == state_.terminals.end()) return Status::NotFound("terminal_not_found", "no terminal");
  for (const TerminalKey& k : it->second.keys) {
    if (k.version == key.version) return Status::Refused("terminal_key_version_exists", "taken");
  }
  it->second.keys.push_back(key);
  return Status::Ok();
}

Status MemoryRegistryStore::RaiseTerminalCounter(std::string_view id, int64_t counter) {
  CITYCARD_RETURN_IF_ERROR(Fault());
  auto it = state_.terminals.find(id);
  if (it == state_.terminals.end()) return Status::NotFound("terminal_not_found", "no terminal");
  if (counter > it->second.counter) it->second.counter = counter;
  return Status::Ok();
}

Result<std::optional<Terminal>> MemoryRegistryStore::FindTerminal(std::string_view id) {
  auto it = state_.terminals.find(id);
  if (it == state_.terminals.end()) return std::optional<Terminal>();
  return std::optional<Terminal>(it->second);
}

Result<std::vector<Terminal>> MemoryRegistryStore::ListTerminals() {
  std::vector<Terminal> out;
  for (const auto& [id, terminal] : state_.terminals) out.push_back(terminal);
  return out;
}

int64_t MemoryRegistryStore::DenyVersion() const {
  return state_.deny_changes.empty() ? 0 : state_.deny_changes.rbegin()->first;
}

Result<int64_t> MemoryRegistryStore::DenylistAdd(std::string_view card_no, DenyReason reason) {
  CITYCARD_RETURN_IF_ERROR(Fault());
  auto it = state_.denylist.find(card_no);
  if (it != state_.denylist.end() && it->second.reason == reason) return DenyVersion();
  int64_t version = DenyVersion() + 1;
  state_.denylist[std::string(card_no)] = DenylistEntry{std::string(card_no), reason, version};
  state_.deny_changes[version] = DenyChange{std::string(card_no), reason};
  return version;
}

Result<int64_t> MemoryRegistryStore::DenylistRemove(std::string_view card_no) {
  CITYCARD_RETURN_IF_ERROR(Fault());
  auto it = state_.denylist.find(card_no);
  if (it == state_.denylist.end()) return DenyVersion();
  state_.denylist.erase(it);
  int64_t version = DenyVersion() + 1;
  state_.deny_changes[version] = DenyChange{std::string(card_no), std::nullopt};
  return version;
}

Result<std::optional<DenylistEntry>> MemoryRegistryStore::DenylistFind(std::string_view card_no) {
  auto it = state_.denylist.find(card_no);
  if (it == state_.denylist.end()) return std::optional<DenylistEntry>();
  return std::optional<DenylistEntry>(it->second);
}

Result<Denylist> MemoryRegistryStore::DenylistFull() {
  Denylist list{DenyVersion(), {}};
  for (const auto& [no, entry] : state_.denylist) list.entries.push_back(entry);
  return list;
}

Result<DenylistDelta> MemoryRegistryStore::DenylistSince(int64_t version) {
  if (version < 0 || version > DenyVersion()) {
    return Status::BadInput("invalid_denylist_version", "no such denylist version");
  }
  DenylistDelta delta{version, DenyVersion(), {}, {}};
  std::map<std::string, bool> touched;  // card -> listed now
  for (auto it = state_.deny_changes.upper_bound(version); it != state_.deny_changes.end(); ++it) {
    touched[it->second.card_no] = it->second.reason.has_value();
  }
  for (const auto& [no, listed] : touched) {
    if (listed) {
      delta.added.push_back(state_.denylist.at(no));
    } else {
      delta.removed.push_back(no);
    }
  }
  return delta;
}

}  // namespace citycard::testing
