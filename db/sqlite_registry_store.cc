#include "db/sqlite_registry_store.h"

#include <map>

namespace citycard::db {

namespace {

constexpr char kHolderColumns[] =
    "number, id_hash, id_masked, name, schemes, groups_mask, medical_opening_fen, in_registry";
constexpr char kCardColumns[] =
    "card_no, holder_number, holder_name, holder_id_masked, profile, status, block_reason, "
    "expires_day, deposit_fen, purse_account_id, issued_s, replaces, replaced_by, "
    "balance_move_due_s, balance_moved_s, closed_s";
constexpr char kOperatorColumns[] =
    "number, id, name, kind, fee_bp, payable_account_id, created_s";
constexpr char kTerminalColumns[] = "id, operator_id, kind, route, status, counter, registered_s";

// Sets are stored as bit masks: bit n for the enum value n.
template <typename Enum>
int64_t MaskOf(const std::vector<Enum>& values) {
  int64_t mask = 0;
  for (Enum v : values) mask |= int64_t{1} << static_cast<int>(v);
  return mask;
}

template <typename Enum>
std::vector<Enum> ValuesOf(int64_t mask) {
  std::vector<Enum> values;
  for (int bit = 1; bit < 63; ++bit) {
    if (mask & (int64_t{1} << bit)) values.push_back(static_cast<Enum>(bit));
  }
  return values;
}

Holder ReadHolder(const Statement& s) {
  Holder h;
  h.number = s.ColumnInt(0);
  h.id_hash = s.ColumnText(1);
  h.id_masked = s.ColumnText(2);
  h.name = s.ColumnText(3);
  h.schemes = ValuesOf<Scheme>(s.ColumnInt(4));
  h.groups = ValuesOf<SpecialGroup>(s.ColumnInt(5));
  h.medical_opening_fen = s.ColumnInt(6);
  h.in_registry = s.ColumnInt(7) != 0;
  return h;
}

void BindHolder(Statement* s, const Holder& h) {
  s->Bind(1, h.number).Bind(2, h.id_hash).Bind(3, h.id_masked).Bind(4, h.name);
  s->Bind(5, MaskOf(h.schemes)).Bind(6, MaskOf(h.groups)).Bind(7, h.medical_opening_fen);
  s->Bind(8, int64_t{h.in_registry ? 1 : 0});
}

Card ReadCard(const Statement& s) {
  Card c;
  c.card_no = s.ColumnText(0);
  c.holder_number = s.ColumnInt(1);
  c.holder_name = s.ColumnText(2);
  c.holder_id_masked = s.ColumnText(3);
  c.profile = static_cast<Profile>(s.ColumnInt(4));
  c.status = static_cast<CardStatus>(s.ColumnInt(5));
  c.block_reason = static_cast<BlockReason>(s.ColumnInt(6));
  c.expires_day = s.ColumnInt(7);
  c.deposit_fen = s.ColumnInt(8);
  c.purse_account_id = static_cast<uint64_t>(s.ColumnInt(9));
  c.issued_s = s.ColumnInt(10);
  c.replaces = s.ColumnText(11);
  c.replaced_by = s.ColumnText(12);
  c.balance_move_due_s = s.ColumnInt(13);
  c.balance_moved_s = s.ColumnInt(14);
  c.closed_s = s.ColumnInt(15);
  return c;
}

void BindCard(Statement* s, const Card& c) {
  s->Bind(1, c.card_no).Bind(2, c.holder_number).Bind(3, c.holder_name);
  s->Bind(4, c.holder_id_masked).Bind(5, int64_t{static_cast<uint8_t>(c.profile)});
  s->Bind(6, int64_t{static_cast<uint8_t>(c.status)});
  s->Bind(7, int64_t{static_cast<uint8_t>(c.block_reason)}).Bind(8, c.expires_day);
  s->Bind(9, c.deposit_fen).Bind(10, static_cast<int64_t>(c.purse_account_id));
  s->Bind(11, c.issued_s).Bind(12, c.replaces).Bind(13, c.replaced_by);
  s->Bind(14, c.balance_move_due_s).Bind(15, c.balance_moved_s).Bind(16, c.closed_s);
}

Operator ReadOperator(const Statement& s) {
  return Operator{s.ColumnInt(0),
                  s.ColumnText(1),
                  s.ColumnText(2),
                  static_cast<OperatorKind>(s.ColumnInt(3)),
                  s.ColumnInt(4),
                  static_cast<uint64_t>(s.ColumnInt(5)),
                  s.ColumnInt(6)};
}

Terminal ReadTerminal(const Statement& s) {
  Terminal t;
  t.id = s.ColumnText(0);
  t.operator_id = s.ColumnText(1);
  t.kind = static_cast<TerminalKind>(s.ColumnInt(2));
  t.route = s.ColumnText(3);
  t.status = static_cast<TerminalStatus>(s.ColumnInt(4));
  t.counter = s.ColumnInt(5);
  t.registered_s = s.ColumnInt(6);
  return t;
}

// A constraint violation on insert is the named refusal; anything else stays as it is.
Status AsRefusal(const Status& status, std::string_view code, std::string_view what) {
  if (status.code() != "db_constraint") return status;
  return Status::Refused(std::string(code), std::string(what) + " exists already");
}

}  // namespace

const std::vector<std::string>& SqliteRegistryStore::Migrations() {
  static const std::vector<std::string> kMigrations = {
      "CREATE TABLE registry_sequences(name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
      "CREATE TABLE holders(number INTEGER PRIMARY KEY, id_hash TEXT NOT NULL UNIQUE,"
      " id_masked TEXT NOT NULL, name TEXT NOT NULL, schemes INTEGER NOT NULL,"
      " groups_mask INTEGER NOT NULL, medical_opening_fen INTEGER NOT NULL,"
      " in_registry INTEGER NOT NULL);"
      "CREATE TABLE cards(card_no TEXT PRIMARY KEY,"
      " holder_number INTEGER NOT NULL REFERENCES holders(number),"
      " holder_name TEXT NOT NULL, holder_id_masked TEXT NOT NULL, profile INTEGER NOT NULL,"
      " status INTEGER NOT NULL, block_reason INTEGER NOT NULL, expires_day INTEGER NOT NULL,"
      " deposit_fen INTEGER NOT NULL, purse_account_id INTEGER NOT NULL,"
      " issued_s INTEGER NOT NULL, replaces TEXT NOT NULL, replaced_by TEXT NOT NULL,"
      " balance_move_due_s INTEGER NOT NULL, balance_moved_s INTEGER NOT NULL,"
      " closed_s INTEGER NOT NULL) WITHOUT ROWID;"
      "CREATE INDEX cards_by_holder ON cards(holder_number);"
      "CREATE INDEX cards_replacement_due ON cards(balance_move_due_s)"
      " WHERE status = 3 AND balance_moved_s = 0;"
      "CREATE TABLE operators(number INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
      " name TEXT NOT NULL, kind INTEGER NOT NULL, fee_bp INTEGER NOT NULL,"
      " payable_account_id INTEGER NOT NULL, created_s INTEGER NOT NULL);"
      "CREATE TABLE terminals(id TEXT PRIMARY KEY,"
      " operator_id TEXT NOT NULL REFERENCES operators(id), kind INTEGER NOT NULL,"
      " route TEXT NOT NULL, status INTEGER NOT NULL, counter INTEGER NOT NULL,"
      " registered_s INTEGER NOT NULL) WITHOUT ROWID;"
      "CREATE TABLE terminal_keys(terminal_id TEXT NOT NULL REFERENCES terminals(id),"
      " version INTEGER NOT NULL, wrapped_key BLOB NOT NULL, created_s INTEGER NOT NULL,"
      " revoked INTEGER NOT NULL, PRIMARY KEY(terminal_id, version)) WITHOUT ROWID;"
      "CREATE TABLE denylist(card_no TEXT PRIMARY KEY, reason INTEGER NOT NULL,"
      " version INTEGER NOT NULL) WITHOUT ROWID;"
      "CREATE TABLE denylist_changes(version INTEGER PRIMARY KEY, card_no TEXT NOT NULL,"
      " reason INTEGER);",
      // Version 2: the card change counter (RegistryStore::CardChanges). A trigger counts,
      // rather than UpdateCard, so that every write to a card row counts, whoever makes it.
      "CREATE TABLE registry_changes(name TEXT PRIMARY KEY, count INTEGER NOT NULL)"
      " WITHOUT ROWID;"
      "INSERT INTO registry_changes(name, count) VALUES('cards', 0);"
      "CREATE TRIGGER cards_updated AFTER UPDATE ON cards BEGIN"
      " UPDATE registry_changes SET count = count + 1 WHERE name = 'cards'; END;"
      "CREATE TRIGGER cards_deleted AFTER DELETE ON cards BEGIN"
      " UPDATE registry_changes SET count = count + 1 WHERE name = 'cards'; END;",
  };
  return kMigrations;
}

Result<std::unique_ptr<SqliteRegistryStore>> SqliteRegistryStore::Open(Database& db) {
  CITYCARD_RETURN_IF_ERROR(db.Migrate("registry", Migrations()));
  return std::unique_ptr<SqliteRegistryStore>(new SqliteRegistryStore(db));
}

Result<SqliteRegistryStore::Lease> SqliteRegistryStore::Stmt(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    auto prepared = db_.Prepare(sql);
    if (!prepared.ok()) return prepared.status();
    it = statements_.emplace(sql, std::move(*prepared)).first;
  }
  it->second.Reset();
  return Lease(&it->second);
}

Status SqliteRegistryStore::ExpectOneChange(std::string_view code, std::string_view what) {
  if (db_.Changes() == 1) return Status::Ok();
  return Status::NotFound(std::string(code), "no " + std::string(what));
}

Status SqliteRegistryStore::Begin() { return db_.Begin(); }
Status SqliteRegistryStore::Commit() { return db_.Commit(); }
Status SqliteRegistryStore::Rollback() { return db_.Rollback(); }
Status SqliteRegistryStore::BeginRead() { return db_.BeginRead(); }
Status SqliteRegistryStore::EndRead() { return db_.EndRead(); }

Result<int64_t> SqliteRegistryStore::NextSequence(std::string_view name) {
  auto s = Stmt(
      "INSERT INTO registry_sequences(name, value) VALUES(?, 1) "
      "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value");
  if (!s.ok()) return s.status();
  (*s)->Bind(1, name);
  auto row = (*s)->Step();
  if (!row.ok()) return row.status();
  CITYCARD_ASSERT(*row);
  int64_t value = (*s)->ColumnInt(0);
  CITYCARD_RETURN_IF_ERROR((*s)->Run());  // finish the statement so it releases its lock
  return value;
}

Result<int64_t> SqliteRegistryStore::CardChanges() { return ReadCardChanges(db_); }

Result<int64_t> ReadCardChanges(Database& db) {
  auto s = db.Prepare("SELECT count FROM registry_changes WHERE name = 'cards'");
  if (!s.ok()) return s.status();
  auto row = s->Step();
  if (!row.ok()) return row.status();
  // The row is made with the table (migration 2) and never deleted.
  CITYCARD_ASSERT(*row);
  return s->ColumnInt(0);
}

// ---- Holders ---------------------------------------------------------------------------

Result<std::optional<Holder>> SqliteRegistryStore::FindHolder(std::string_view id_hash) {
  auto s = Stmt(std::string("SELECT ") + kHolderColumns + " FROM holders WHERE id_hash = ?");
  if (!s.ok()) return s.status();
  (*s)->Bind(1, id_hash);
  auto row = (*s)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<Holder>();
  return std::optional<Holder>(ReadHolder(**s));
}

Result<std::optional<Holder>> SqliteRegistryStore::FindHolderByNumber(int64_t number) {
  auto s = Stmt(std::string("SELECT ") + kHolderColumns + " FROM holders WHERE number = ?");
  if (!s.ok()) return s.status();
  (*s)->Bind(1, number);
  auto row = (*s)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<Holder>();
  return std::optional<Holder>(ReadHolder(**s));
}

Status SqliteRegistryStore::InsertHolder(const Holder& holder) {
  auto s = Stmt(std::string("INSERT INTO holders(") + kHolderColumns +
                ") VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
  if (!s.ok()) return s.status();
  BindHolder(&**s, holder);
  return AsRefusal((*s)->Run(), "holder_exists", "the holder");
}

Status SqliteRegistryStore::UpdateHolder(const Holder& holder) {
  auto s = Stmt(
      "UPDATE holders SET id_hash = ?2, id_masked = ?3, name = ?4, schemes = ?5,"
      " groups_mask = ?6, medical_opening_fen = ?7, in_registry = ?8 WHERE number = ?1");
  if (!s.ok()) return s.status();
  BindHolder(&**s, holder);
  CITYCARD_RETURN_IF_ERROR((*s)->Run());
  return ExpectOneChange("holder_not_found", "such holder");
}

// ---- Cards -----------------------------------------------------------------------------

Status SqliteRegistryStore::InsertCard(const Card& card) {
  auto s = Stmt(std::string("INSERT INTO cards(") + kCardColumns +
                ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!s.ok()) return s.status();
  BindCard(&**s, card);
  return AsRefusal((*s)->Run(), "card_exists", "card " + card.card_no);
}

Status SqliteRegistryStore::UpdateCard(const Card& card) {
  auto s = Stmt(
      "UPDATE cards SET holder_number = ?2, holder_name = ?3, holder_id_masked = ?4,"
      " profile = ?5, status = ?6, block_reason = ?7, expires_day = ?8, deposit_fen = ?9,"
      " purse_account_id = ?10, issued_s = ?11, replaces = ?12, replaced_by = ?13,"
      " balance_move_due_s = ?14, balance_moved_s = ?15, closed_s = ?16 WHERE card_no = ?1");
  if (!s.ok()) return s.status();
  BindCard(&**s, card);
  CITYCARD_RETURN_IF_ERROR((*s)->Run());
  return ExpectOneChange("card_not_found", "card " + card.card_no);
}

Result<std::vector<Card>> SqliteRegistryStore::QueryCards(const std::string& where,
                                                          const std::vector<int64_t>& ints) {
  auto s = Stmt(std::string("SELECT ") + kCardColumns + " FROM cards " + where);
  if (!s.ok()) return s.status();
  for (size_t i = 0; i < ints.size(); ++i) (*s)->Bind(static_cast<int>(i + 1), ints[i]);
  std::vector<Card> cards;
  while (true) {
    auto row = (*s)->Step();
    if (!row.ok()) return row.status();
    if (!*row) return cards;
    cards.push_back(ReadCard(**s));
  }
}

Result<std::optional<Card>> SqliteRegistryStore::FindCard(std::string_view card_no) {
  auto s = Stmt(std::string("SELECT ") + kCardColumns + " FROM cards WHERE card_no = ?");
  if (!s.ok()) return s.status();
  (*s)->Bind(1, card_no);
  auto row = (*s)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<Card>();
  return std::optional<Card>(ReadCard(**s));
}

std::string CardListSql(const CardFilter& filter) {
  std::string where;
  if (filter.holder_number) where = " WHERE holder_number = ?2";
  if (filter.status) where += where.empty() ? " WHERE status = ?1" : " AND status = ?1";
  return std::string("SELECT ") + kCardColumns + " FROM cards" + where + " ORDER BY card_no";
}

Result<std::vector<Card>> SqliteRegistryStore::ListCards(const CardFilter& filter) {
  auto s = Stmt(CardListSql(filter));
  if (!s.ok()) return s.status();
  if (filter.status) (*s)->Bind(1, int64_t{static_cast<uint8_t>(*filter.status)});
  if (filter.holder_number) (*s)->Bind(2, *filter.holder_number);
  std::vector<Card> cards;
  while (true) {
    auto row = (*s)->Step();
    if (!row.ok()) return row.status();
    if (!*row) return cards;
    cards.push_back(ReadCard(**s));
  }
}

Result<std::vector<Card>> SqliteRegistryStore::ListDueReplacements(int64_t now_s, size_t limit) {
  return QueryCards(
      "WHERE status = 3 AND balance_moved_s = 0 AND balance_move_due_s <= ?1 "
      "ORDER BY balance_move_due_s, card_no LIMIT ?2",
      {now_s, static_cast<int64_t>(limit)});
}

// ---- Operators -------------------------------------------------------------------------

Status SqliteRegistryStore::InsertOperator(const Operator& op) {
  auto s = Stmt(std::string("INSERT INTO operators(") + kOperatorColumns +
                ") VALUES(?, ?, ?, ?, ?, ?, ?)");
  if (!s.ok()) return s.status();
  (*s)->Bind(1, op.number).Bind(2, op.id).Bind(3, op.name);
  (*s)->Bind(4, int64_t{static_cast<uint8_t>(op.kind)}).Bind(5, op.fee_bp);
  (*s)->Bind(6, static_cast<int64_t>(op.payable_account_id)).Bind(7, op.created_s);
  return AsRefusal((*s)->Run(), "operator_exists", "operator " + op.id);
}

Result<std::vector<Operator>> SqliteRegistryStore::QueryOperators(const std::string& where,
                                                                  std::string_view text,
                                                                  int64_t number) {
  auto s = Stmt(std::string("SELECT ") + kOperatorColumns + " FROM operators " + where);
  if (!s.ok()) return s.status();
  if (where.find("?1") != std::string::npos) (*s)->Bind(1, text);
  if (where.find("?2") != std::string::npos) (*s)->Bind(2, number);
  std::vector<Operator> ops;
  while (true) {
    auto row = (*s)->Step();
    if (!row.ok()) return row.status();
    if (!*row) return ops;
    ops.push_back(ReadOperator(**s));
  }
}

Result<std::optional<Operator>> SqliteRegistryStore::FindOperator(std::string_view id) {
  auto ops = QueryOperators("WHERE id = ?1", id, 0);
  if (!ops.ok()) return ops.status();
  if (ops->empty()) return std::optional<Operator>();
  return std::optional<Operator>(std::move(ops->front()));
}

Result<std::optional<Operator>> SqliteRegistryStore::FindOperatorByNumber(int64_t number) {
  auto ops = QueryOperators("WHERE number = ?2", "", number);
  if (!ops.ok()) return ops.status();
  if (ops->empty()) return std::optional<Operator>();
  return std::optional<Operator>(std::move(ops->front()));
}

Result<std::vector<Operator>> SqliteRegistryStore::ListOperators() {
  return QueryOperators("ORDER BY id", "", 0);
}

// ---- Terminals -------------------------------------------------------------------------

Status SqliteRegistryStore::InsertTerminal(const Terminal& terminal) {
  auto s = Stmt(std::string("INSERT INTO terminals(") + kTerminalColumns +
                ") VALUES(?, ?, ?, ?, ?, ?, ?)");
  if (!s.ok()) return s.status();
  (*s)->Bind(1, terminal.id).Bind(2, terminal.operator_id);
  (*s)->Bind(3, int64_t{static_cast<uint8_t>(terminal.kind)}).Bind(4, terminal.route);
  (*s)->Bind(5, int64_t{static_cast<uint8_t>(terminal.status)}).Bind(6, terminal.counter);
  (*s)->Bind(7, terminal.registered_s);
  CITYCARD_RETURN_IF_ERROR(AsRefusal((*s)->Run(), "terminal_exists", "terminal " + terminal.id));
  for (const TerminalKey& key : terminal.keys) {
    CITYCARD_RETURN_IF_ERROR(AddTerminalKey(terminal.id, key));
  }
  return Status::Ok();
}

Status SqliteRegistryStore::SetTerminalStatus(std::string_view id, TerminalStatus status) {
  auto s = Stmt("UPDATE terminals SET status = ? WHERE id = ?");
  if (!s.ok()) return s.status();
  (*s)->Bind(1, int64_t{static_cast<uint8_t>(status)}).Bind(2, id);
  CITYCARD_RETURN_IF_ERROR((*s)->Run());
  return ExpectOneChange("terminal_not_found", "terminal " + std::string(id));
}

Status SqliteRegistryStore::AddTerminalKey(std::string_view id, const TerminalKey& key) {
  auto exists = Stmt("SELECT 1 FROM terminals WHERE id = ?");
  if (!exists.ok()) return exists.status();
  (*exists)->Bind(1, id);
  auto row = (*exists)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::NotFound("terminal_not_found", "no terminal " + std::string(id));
  auto s = Stmt(
      "INSERT INTO terminal_keys(terminal_id, version, wrapped_key, created_s, revoked)"
      " VALUES(?, ?, ?, ?, ?)");
  if (!s.ok()) return s.status();
  (*s)->Bind(1, id).Bind(2, int64_t{key.version}).Bind(3, ByteView(key.wrapped_key));
  (*s)->Bind(4, key.created_s).Bind(5, int64_t{key.revoked ? 1 : 0});
  return AsRefusal((*s)->Run(), "terminal_key_version_exists", "the key version");
}

Status SqliteRegistryStore::RaiseTerminalCounter(std::string_view id, int64_t counter) {
  auto s = Stmt("UPDATE terminals SET counter = max(counter, ?) WHERE id = ?");
  if (!s.ok()) return s.status();
  (*s)->Bind(1, counter).Bind(2, id);
  CITYCARD_RETURN_IF_ERROR((*s)->Run());
  return ExpectOneChange("terminal_not_found", "terminal " + std::string(id));
}

Status SqliteRegistryStore::LoadTerminalKeys(Terminal* terminal) {
  auto s = Stmt(
      "SELECT version, wrapped_key, created_s, revoked FROM terminal_keys"
      " WHERE terminal_id = ? ORDER BY version");
  if (!s.ok()) return s.status();
  (*s)->Bind(1, terminal->id);
  while (true) {
    auto row = (*s)->Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
    terminal->keys.push_back(TerminalKey{static_cast<int>((*s)->ColumnInt(0)), (*s)->ColumnBlob(1),
                                         (*s)->ColumnInt(2), (*s)->ColumnInt(3) != 0});
  }
}

Result<std::vector<Terminal>> SqliteRegistryStore::QueryTerminals(const std::string& where,
                                                                  std::string_view id) {
  std::vector<Terminal> terminals;
  {
    auto s = Stmt(std::string("SELECT ") + kTerminalColumns + " FROM terminals " + where);
    if (!s.ok()) return s.status();
    if (where.find('?') != std::string::npos) (*s)->Bind(1, id);
    while (true) {
      auto row = (*s)->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      terminals.push_back(ReadTerminal(**s));
    }
  }
  for (Terminal& terminal : terminals) CITYCARD_RETURN_IF_ERROR(LoadTerminalKeys(&terminal));
  return terminals;
}

Result<std::optional<Terminal>> SqliteRegistryStore::FindTerminal(std::string_view id) {
  auto found = QueryTerminals("WHERE id = ?", id);
  if (!found.ok()) return found.status();
  if (found->empty()) return std::optional<Terminal>();
  return std::optional<Terminal>(std::move(found->front()));
}

Result<std::vector<Terminal>> SqliteRegistryStore::ListTerminals() {
  return QueryTerminals("ORDER BY id", "");
}

// ---- Denylist --------------------------------------------------------------------------

template <typename Body>
Result<int64_t> SqliteRegistryStore::InSavepoint(Body&& body) {
  // A savepoint makes the two writes of a denylist change atomic both inside a caller's
  // transaction and on their own.
  CITYCARD_RETURN_IF_ERROR(db_.Exec("SAVEPOINT denylist"));
  Result<int64_t> result = body();
  if (!result.ok()) {
    (void)db_.Exec("ROLLBACK TO denylist");
    (void)db_.Exec("RELEASE denylist");
    return result;
  }
  CITYCARD_RETURN_IF_ERROR(db_.Exec("RELEASE denylist"));
  return result;
}

Result<int64_t> SqliteRegistryStore::DenylistVersion() {
  auto s = Stmt("SELECT coalesce(max(version), 0) FROM denylist_changes");
  if (!s.ok()) return s.status();
  auto row = (*s)->Step();
  if (!row.ok()) return row.status();
  return (*s)->ColumnInt(0);
}

Result<int64_t> SqliteRegistryStore::RecordDenyChange(std::string_view card_no,
                                                      std::optional<DenyReason> reason) {
  auto current = DenylistVersion();
  if (!current.ok()) return current.status();
  int64_t version = *current + 1;
  auto s = Stmt("INSERT INTO denylist_changes(version, card_no, reason) VALUES(?, ?, ?)");
  if (!s.ok()) return s.status();
  (*s)->Bind(1, version).Bind(2, card_no);
  if (reason) {
    (*s)->Bind(3, int64_t{static_cast<uint8_t>(*reason)});
  } else {
    (*s)->BindNull(3);
  }
  CITYCARD_RETURN_IF_ERROR((*s)->Run());
  return version;
}

Result<int64_t> SqliteRegistryStore::DenylistAdd(std::string_view card_no, DenyReason reason) {
  auto listed = DenylistFind(card_no);
  if (!listed.ok()) return listed.status();
  if (listed->has_value() && (*listed)->reason == reason) return DenylistVersion();
  return InSavepoint([&]() -> Result<int64_t> {
    auto version = RecordDenyChange(card_no, reason);
    if (!version.ok()) return version;
    auto s = Stmt(
        "INSERT INTO denylist(card_no, reason, version) VALUES(?1, ?2, ?3) "
        "ON CONFLICT(card_no) DO UPDATE SET reason = ?2, version = ?3");
    if (!s.ok()) return s.status();
    (*s)->Bind(1, card_no).Bind(2, int64_t{static_cast<uint8_t>(reason)}).Bind(3, *version);
    CITYCARD_RETURN_IF_ERROR((*s)->Run());
    return version;
  });
}

Result<int64_t> SqliteRegistryStore::DenylistRemove(std::string_view card_no) {
  auto listed = DenylistFind(card_no);
  if (!listed.ok()) return listed.status();
  if (!listed->has_value()) return DenylistVersion();
  return InSavepoint([&]() -> Result<int64_t> {
    auto version = RecordDenyChange(card_no, std::nullopt);
    if (!version.ok()) return version;
    auto s = Stmt("DELETE FROM denylist WHERE card_no = ?");
    if (!s.ok()) return s.status();
    (*s)->Bind(1, card_no);
    CITYCARD_RETURN_IF_ERROR((*s)->Run());
    return version;
  });
}

Result<std::optional<DenylistEntry>> SqliteRegistryStore::DenylistFind(std::string_view card_no) {
  auto s = Stmt("SELECT card_no, reason, version FROM denylist WHERE card_no = ?");
  if (!s.ok()) return s.status();
  (*s)->Bind(1, card_no);
  auto row = (*s)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<DenylistEntry>();
  return std::optional<DenylistEntry>(DenylistEntry{
      (*s)->ColumnText(0), static_cast<DenyReason>((*s)->ColumnInt(1)), (*s)->ColumnInt(2)});
}

Result<Denylist> SqliteRegistryStore::DenylistFull() {
  auto version = DenylistVersion();
  if (!version.ok()) return version.status();
  Denylist list{*version, {}};
  auto s = Stmt("SELECT card_no, reason, version FROM denylist ORDER BY card_no");
  if (!s.ok()) return s.status();
  while (true) {
    auto row = (*s)->Step();
    if (!row.ok()) return row.status();
    if (!*row) return list;
    list.entries.push_back(DenylistEntry{(*s)->ColumnText(0),
                                         static_cast<DenyReason>((*s)->ColumnInt(1)),
                                         (*s)->ColumnInt(2)});
  }
}

Result<DenylistDelta> SqliteRegistryStore::DenylistSince(int64_t version) {
  auto current = DenylistVersion();
  if (!current.ok()) return current.status();
  if (version < 0 || version > *current) {
    return Status::BadInput("invalid_denylist_version",
                            "denylist version " + std::to_string(version) + " does not exist");
  }
  auto s = Stmt(
      "SELECT card_no, reason, version FROM denylist_changes WHERE version > ? ORDER BY version");
  if (!s.ok()) return s.status();
  (*s)->Bind(1, version);
  // The last change of each card decides: listed (with that reason) or removed.
  std::map<std::string, std::optional<DenylistEntry>> last;
  while (true) {
    auto row = (*s)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    std::string card_no = (*s)->ColumnText(0);
    if ((*s)->ColumnIsNull(1)) {
      last[card_no] = std::nullopt;
    } else {
      last[card_no] = DenylistEntry{card_no, static_cast<DenyReason>((*s)->ColumnInt(1)),
                                    (*s)->ColumnInt(2)};
    }
  }
  DenylistDelta delta{version, *current, {}, {}};
  for (auto& [card_no, entry] : last) {
    if (entry) {
      delta.added.push_back(std::move(*entry));
    } else {
      delta.removed.push_back(card_no);
    }
  }
  return delta;
}

Result<RegistryReader> OpenRegistryReader(const std::string& path, int64_t cache_bytes) {
  if (path.empty() || path == ":memory:") {
    return Status::Usage("registry_reader_needs_file",
                         "an in-memory database cannot be read over a second connection");
  }
  CITYCARD_ASSERT(cache_bytes >= 1024);
  RegistryReader reader;
  auto db = Database::Open(path, /*create=*/false);
  if (!db.ok()) return db.status();
  reader.db = std::move(db).value();
  // Opened before query_only is set: a migration, were one due, would need to write (the
  // writer's connection has made it already, so this only reads the schema's version).
  auto store = SqliteRegistryStore::Open(*reader.db);
  if (!store.ok()) return store.status();
  reader.store = std::move(store).value();
  auto ledger = SqliteLedgerStore::Open(*reader.db);
  if (!ledger.ok()) return ledger.status();
  reader.ledger = std::move(ledger).value();
  CITYCARD_RETURN_IF_ERROR(reader.db->Exec("PRAGMA query_only=1"));
  // A negative cache_size is a size in KiB rather than in pages.
  CITYCARD_RETURN_IF_ERROR(
      reader.db->Exec("PRAGMA cache_size=-" + std::to_string(cache_bytes / 1024)));
  return reader;
}

}  // namespace citycard::db
