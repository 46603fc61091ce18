// The registry's SQLite store: core's RegistryStore (core/registry.h) over a db::Database.
// It shares the connection with the ledger's store (db/sqlite_ledger_store.h), so that one
// Begin/Commit here covers the ledger's writes too (Ledger::JoinedTransaction). Schema:
// docs/registry-schema.md. National ids are never stored: only their keyed hash and mask.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/registry.h"
#include "db/database.h"
#include "db/sqlite_ledger_store.h"

namespace citycard::db {

// The statement SqliteRegistryStore::ListCards runs for `filter` (?1 the status, ?2 the
// holder, each only when filtered): one statement per combination, so that a holder's cards
// are found through the cards_by_holder index. One statement for every combination, with
// "(?2 IS NULL OR holder_number = ?2)", was planned as a scan of every card: a holder looked
// up at the card office read the whole registry.
std::string CardListSql(const CardFilter& filter);

class SqliteRegistryStore final : public RegistryStore {
 public:
  // Brings the "registry" component's schema up to date (Database::Migrate). The Database
  // must outlive the store. Failures: the Database's (Kind::internal "db_error",
  // "schema_too_new").
  static Result<std::unique_ptr<SqliteRegistryStore>> Open(Database& db);

  Status Begin() override;
  Status Commit() override;
  Status Rollback() override;
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
  // The count kept by the cards table's triggers (docs/registry-schema.md).
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

  // The schema, one entry per version (Database::Migrate).
  static const std::vector<std::string>& Migrations();

 private:
  explicit SqliteRegistryStore(Database& db) : db_(db) {}
  // A cached prepared statement, lent out ready to bind and reset when the lease ends, so
  // that no statement is left mid-way holding a read snapshot open.
  class Lease {
   public:
    explicit Lease(Statement* statement) : statement_(statement) {}
    Lease(Lease&& other) noexcept : statement_(other.statement_) { other.statement_ = nullptr; }
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (statement_) statement_->Reset();
    }
    Statement* operator->() const { return statement_; }
    Statement& operator*() const { return *statement_; }

   private:
    Statement* statement_;
  };
  // The prepared statement for `sql` (prepared once, then cached).
  Result<Lease> Stmt(const std::string& sql);
  Result<std::vector<Card>> QueryCards(const std::string& where,
                                       const std::vector<int64_t>& ints);
  Result<std::vector<Operator>> QueryOperators(const std::string& where, std::string_view text,
                                               int64_t number);
  Result<std::vector<Terminal>> QueryTerminals(const std::string& where, std::string_view id);
  Status LoadTerminalKeys(Terminal* terminal);
  Status ExpectOneChange(std::string_view code, std::string_view what);
  Result<int64_t> DenylistVersion();
  Result<int64_t> RecordDenyChange(std::string_view card_no, std::optional<DenyReason> reason);
  template <typename Body>
  Result<int64_t> InSavepoint(Body&& body);

  Database& db_;
  std::unordered_map<std::string, Statement> statements_;
};

// RegistryStore::CardChanges over any connection to a database whose registry schema is up
// to date (SqliteSettlementReads reads it over its own). Failures: the Database's.
Result<int64_t> ReadCardChanges(Database& db);

// A registry store on a connection of its own to the database file at `path`, for a thread
// that only reads the registry and the ledger's accounts (the ingest checker's CardPrefetcher,
// core/ingest.h). The connection is query_only (a write fails with db_error) and has a page
// cache of `cache_bytes`. The registry and ledger schemas must be up to date (the writer's
// connection migrated them). The stores are destroyed before their connection; to close one
// early, reset `ledger` and `store`, then `db` (assigning a new RegistryReader over an open one
// would close the connection first).
struct RegistryReader {
  std::unique_ptr<Database> db;
  std::unique_ptr<SqliteRegistryStore> store;
  // The ledger's accounts over the same connection, for the prefetcher's purses
  // (CardPrefetcher::ReadPursesToo); destroyed before `db` as `store` is.
  std::unique_ptr<SqliteLedgerStore> ledger;
};
// Failures: the Database's (Kind::internal "db_error", "schema_too_new"), and
// Kind::usage "registry_reader_needs_file" for an in-memory database (no second connection
// sees it).
Result<RegistryReader> OpenRegistryReader(const std::string& path, int64_t cache_bytes);

}  // namespace citycard::db
