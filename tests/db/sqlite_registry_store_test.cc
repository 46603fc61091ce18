#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "core/account_plan.h"
#include "core/clock.h"
#include "core/ledger.h"
#include "db/database.h"
#include "db/sqlite_ledger_store.h"
#include "db/sqlite_registry_store.h"
#include "tests/support/memory_ledger_store_support.h"

using namespace citycard;
using citycard::db::Database;
using citycard::db::SqliteRegistryStore;

namespace {

struct StoreFixture {
  StoreFixture() {
    auto opened = Database::Open(":memory:", true);
    REQUIRE(opened.ok());
    db = std::move(*opened);
    auto store_opened = SqliteRegistryStore::Open(*db);
    REQUIRE(store_opened.ok());
    store = std::move(*store_opened);
  }

  Holder MakeHolder(int64_t number, const std::string& hash) {
    Holder h;
    h.number = number;
    h.id_hash = hash;
    h.id_masked = "3212**********1234";
    h.name = "张三";
    h.schemes = {Scheme::pension, Scheme::maternity};
    h.groups = {SpecialGroup::low_income, SpecialGroup::elderly};
    h.medical_opening_fen = 12050;
    h.in_registry = true;
    return h;
  }

  Card MakeCard(const std::string& card_no, int64_t holder_number) {
    Card c;
    c.card_no = card_no;
    c.holder_number = holder_number;
    c.holder_name = "张三";
    c.holder_id_masked = "3212**********1234";
    c.profile = Profile::student;
    c.expires_day = 20000;
    c.deposit_fen = 2000;
    c.purse_account_id = (uint64_t{1} << 56) | 8607550000000012ULL;
    c.issued_s = 1'700'000'000;
    return c;
  }

  std::unique_ptr<Database> db;
  std::unique_ptr<SqliteRegistryStore> store;
};

}  // namespace

TEST_CASE("Sequences count from one per name", "[db][registry]") {
  StoreFixture f;
  REQUIRE(*f.store->NextSequence("card") == 1);
  REQUIRE(*f.store->NextSequence("card") == 2);
  REQUIRE(*f.store->NextSequence("holder") == 1);
  REQUIRE(*f.store->NextSequence("card") == 3);
}

TEST_CASE("Holders are stored with every field and found by hash and number",
          "[db][registry]") {
  StoreFixture f;
  Holder h = f.MakeHolder(1, "aa11");
  REQUIRE(f.store->InsertHolder(h).ok());
  REQUIRE(f.store->FindHolder("aa11")->value() == h);
  REQUIRE(f.store->FindHolderByNumber(1)->value() == h);
  REQUIRE_FALSE(f.store->FindHolder("bb22")->has_value());
  REQUIRE(f.store->InsertHolder(f.MakeHolder(2, "aa11")).code() == "holder_exists");
  h.name = "张三丰";
  h.groups.clear();
  h.in_registry = false;
  REQUIRE(f.store->UpdateHolder(h).ok());
  REQUIRE(f.store->FindHolder("aa11")->value() == h);
  REQUIRE(f.store->UpdateHolder(f.MakeHolder(9, "cc")).code() == "holder_not_found");
}

TEST_CASE("Cards are stored with every field, listed by filter, and updated", "[db][registry]") {
  StoreFixture f;
  REQUIRE(f.store->InsertHolder(f.MakeHolder(1, "h1")).ok());
  REQUIRE(f.store->InsertHolder(f.MakeHolder(2, "h2")).ok());
  Card a = f.MakeCard("8607550000000012", 1);
  Card b = f.MakeCard("8607550000000020", 2);
  b.status = CardStatus::blocked;
  b.block_reason = BlockReason::stolen;
  REQUIRE(f.store->InsertCard(b).ok());
  REQUIRE(f.store->InsertCard(a).ok());
  REQUIRE(f.store->InsertCard(a).code() == "card_exists");
  REQUIRE(f.store->FindCard(a.card_no)->value() == a);
  REQUIRE_FALSE(f.store->FindCard("8607550000000038")->has_value());
  REQUIRE(f.store->ListCards({})->size() == 2);
  REQUIRE(f.store->ListCards({})->at(0).card_no == a.card_no);  // ascending
  auto blocked = f.store->ListCards(CardFilter{CardStatus::blocked, std::nullopt});
  REQUIRE(blocked->size() == 1);
  REQUIRE(blocked->at(0) == b);
  REQUIRE(f.store->ListCards(CardFilter{std::nullopt, 1})->at(0) == a);
  REQUIRE(f.store->ListCards(CardFilter{CardStatus::blocked, 1})->empty());
  a.status = CardStatus::replaced;
  a.replaced_by = b.card_no;
  a.balance_move_due_s = 100;
  REQUIRE(f.store->UpdateCard(a).ok());
  REQUIRE(f.store->FindCard(a.card_no)->value() == a);
  REQUIRE(f.store->UpdateCard(f.MakeCard("8607550000000038", 1)).code() == "card_not_found");
}

TEST_CASE("A card needs an existing holder", "[db][registry]") {
  StoreFixture f;
  REQUIRE_FALSE(f.store->InsertCard(f.MakeCard("8607550000000012", 7)).ok());
}

TEST_CASE("Due replacements are those not moved whose time has come, oldest first",
          "[db][registry]") {
  StoreFixture f;
  REQUIRE(f.store->InsertHolder(f.MakeHolder(1, "h1")).ok());
  auto replaced = [&](const std::string& no, int64_t due, int64_t moved) {
    Card c = f.MakeCard(no, 1);
    c.status = CardStatus::replaced;
    c.balance_move_due_s = due;
    c.balance_moved_s = moved;
    REQUIRE(f.store->InsertCard(c).ok());
  };
  replaced("8607550000000012", 300, 0);
  replaced("8607550000000020", 100, 0);
  replaced("8607550000000038", 50, 60);   // moved already
  replaced("8607550000000046", 500, 0);   // not due yet
  REQUIRE(f.store->InsertCard(f.MakeCard("8607550000000053", 1)).ok());  // active
  auto due = f.store->ListDueReplacements(300, 10);
  REQUIRE(due->size() == 2);
  REQUIRE(due->at(0).card_no == "8607550000000020");
  REQUIRE(due->at(1).card_no == "8607550000000012");
  REQUIRE(f.store->ListDueReplacements(300, 1)->size() == 1);
  REQUIRE(f.store->ListDueReplacements(99, 10)->empty());
}

TEST_CASE("Operators are stored, found by id and number, and unique", "[db][registry]") {
  StoreFixture f;
  Operator bus{1, "BUS01", "巴士集团", OperatorKind::bus, 50, uint64_t{3} << 56 | 1, 1000};
  Operator metro{2, "METRO", "地铁", OperatorKind::metro, 0, uint64_t{3} << 56 | 2, 1001};
  REQUIRE(f.store->InsertOperator(metro).ok());
  REQUIRE(f.store->InsertOperator(bus).ok());
  REQUIRE(f.store->FindOperator("BUS01")->value() == bus);
  REQUIRE(f.store->FindOperatorByNumber(2)->value() == metro);
  REQUIRE_FALSE(f.store->FindOperator("TAXI")->has_value());
  REQUIRE_FALSE(f.store->FindOperatorByNumber(3)->has_value());
  auto list = f.store->ListOperators();
  REQUIRE(list->size() == 2);
  REQUIRE(list->at(0).id == "BUS01");
  Operator dup = bus;
  dup.number = 3;
  REQUIRE(f.store->InsertOperator(dup).code() == "operator_exists");
}

TEST_CASE("Terminals keep their keys, status and counter", "[db][registry]") {
  StoreFixture f;
  REQUIRE(f.store->InsertOperator({1, "BUS01", "巴士", OperatorKind::bus, 0, 1, 0}).ok());
  Terminal t{"T0001", "BUS01", TerminalKind::bus, "M101路", TerminalStatus::active,
             {TerminalKey{1, Bytes(40, 0xAB), 10, false}}, 0, 10};
  REQUIRE(f.store->InsertTerminal(t).ok());
  REQUIRE(f.store->FindTerminal("T0001")->value() == t);
  REQUIRE(f.store->InsertTerminal(t).code() == "terminal_exists");
  TerminalKey second{2, Bytes(40, 0xCD), 20, false};
  REQUIRE(f.store->AddTerminalKey("T0001", second).ok());
  REQUIRE(f.store->AddTerminalKey("T0001", second).code() == "terminal_key_version_exists");
  REQUIRE(f.store->AddTerminalKey("T9", second).code() == "terminal_not_found");
  REQUIRE(f.store->RaiseTerminalCounter("T0001", 17).ok());
  REQUIRE(f.store->RaiseTerminalCounter("T0001", 5).ok());  // never lowered
  REQUIRE(f.store->SetTerminalStatus("T0001", TerminalStatus::disabled).ok());
  auto stored = f.store->FindTerminal("T0001")->value();
  REQUIRE(stored.keys.size() == 2);
  REQUIRE(stored.keys[1] == second);
  REQUIRE(stored.counter == 17);
  REQUIRE(stored.status == TerminalStatus::disabled);
  REQUIRE(f.store->SetTerminalStatus("T9", TerminalStatus::disabled).code() == "terminal_not_found");
  REQUIRE(f.store->RaiseTerminalCounter("T9", 1).code() == "terminal_not_found");
  Terminal orphan{"T2", "NOPE", TerminalKind::bus, "", TerminalStatus::active, {}, 0, 0};
  REQUIRE_FALSE(f.store->InsertTerminal(orphan).ok());  // the operator must exist
  REQUIRE(f.store->ListTerminals()->size() == 1);
}

TEST_CASE("Every denylist change makes a new version; deltas give the net change",
          "[db][registry]") {
  StoreFixture f;
  REQUIRE(f.store->DenylistFull()->version == 0);
  REQUIRE(*f.store->DenylistAdd("8607550000000012", DenyReason::lost) == 1);
  REQUIRE(*f.store->DenylistAdd("8607550000000012", DenyReason::lost) == 1);  // no change
  REQUIRE(*f.store->DenylistAdd("8607550000000020", DenyReason::fraud) == 2);
  REQUIRE(*f.store->DenylistAdd("8607550000000012", DenyReason::replaced) == 3);
  REQUIRE(*f.store->DenylistRemove("8607550000000020") == 4);
  REQUIRE(*f.store->DenylistRemove("8607550000000020") == 4);  // not listed
  REQUIRE(*f.store->DenylistAdd("8607550000000038", DenyReason::closed) == 5);

  auto full = f.store->DenylistFull();
  REQUIRE(full->version == 5);
  REQUIRE(full->entries ==
          std::vector<DenylistEntry>{{"8607550000000012", DenyReason::replaced, 3},
                                     {"8607550000000038", DenyReason::closed, 5}});
  auto from0 = f.store->DenylistSince(0);
  REQUIRE(from0->from_version == 0);
  REQUIRE(from0->to_version == 5);
  REQUIRE(from0->added == full->entries);
  REQUIRE(from0->removed == std::vector<std::string>{"8607550000000020"});
  auto from3 = f.store->DenylistSince(3);
  REQUIRE(from3->added == std::vector<DenylistEntry>{{"8607550000000038", DenyReason::closed, 5}});
  REQUIRE(from3->removed == std::vector<std::string>{"8607550000000020"});
  auto from5 = f.store->DenylistSince(5);
  REQUIRE(from5->added.empty());
  REQUIRE(from5->removed.empty());
  REQUIRE(f.store->DenylistSince(6).status().code() == "invalid_denylist_version");
  REQUIRE(f.store->DenylistSince(-1).status().code() == "invalid_denylist_version");
  REQUIRE(f.store->DenylistFind("8607550000000012")->value().reason == DenyReason::replaced);
  REQUIRE_FALSE(f.store->DenylistFind("8607550000000020")->has_value());
}

TEST_CASE("A rolled-back transaction leaves no registry rows", "[db][registry]") {
  StoreFixture f;
  REQUIRE(f.store->Begin().ok());
  REQUIRE(f.store->InsertHolder(f.MakeHolder(1, "h1")).ok());
  REQUIRE(*f.store->DenylistAdd("8607550000000012", DenyReason::lost) == 1);
  REQUIRE(f.store->Rollback().ok());
  REQUIRE_FALSE(f.store->FindHolder("h1")->has_value());
  REQUIRE(f.store->DenylistFull()->version == 0);
}

TEST_CASE("The registry survives closing and reopening the file", "[db][registry]") {
  auto dir = std::filesystem::temp_directory_path() / ("citycard_registry_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "r.db").string();
  {
    auto db = Database::Open(path, true);
    auto store = SqliteRegistryStore::Open(**db);
    REQUIRE((*store)->InsertOperator({1, "BUS01", "巴士", OperatorKind::bus, 0, 1, 0}).ok());
  }
  {
    auto db = Database::Open(path, false);
    auto store = SqliteRegistryStore::Open(**db);
    REQUIRE(store.ok());
    REQUIRE((*store)->FindOperator("BUS01")->has_value());
    REQUIRE(*(*db)->SchemaVersion("registry") == 2);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("The card change count grows with every card update, whoever writes it, counts in the "
          "transaction that makes it, and is read over a second connection",
          "[db][registry]") {
  auto dir = std::filesystem::temp_directory_path() /
             ("citycard_registry_changes_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "r.db").string();
  {
    auto db = Database::Open(path, true);
    REQUIRE(db.ok());
    // A database made before the count (registry schema version 1), with a card in it.
    REQUIRE((*db)->Migrate("registry", {SqliteRegistryStore::Migrations()[0]}).ok());
    REQUIRE((*db)->Exec("INSERT INTO holders VALUES(1, 'h1', '3212**********1234', 'a', 0, 0, 0, 1);"
                        "INSERT INTO cards VALUES('8607550000000012', 1, 'a', 'm', 1, 1, 0, 20000,"
                        " 2000, 7, 0, '', '', 0, 0, 0)")
                .ok());
    auto store = SqliteRegistryStore::Open(**db);
    REQUIRE(store.ok());
    REQUIRE(*(*db)->SchemaVersion("registry") == 2);
    REQUIRE(*(*store)->CardChanges() == 0);

    StoreFixture f;  // for its card maker
    Card card = f.MakeCard("8607550000000020", 1);
    REQUIRE((*store)->InsertCard(card).ok());
    CHECK(*(*store)->CardChanges() == 0);  // a new card changes no card a plan has read
    card.status = CardStatus::closed;
    REQUIRE((*store)->UpdateCard(card).ok());
    CHECK(*(*store)->CardChanges() == 1);
    // A write that is not the store's counts too: every row it changes.
    REQUIRE((*db)->Exec("UPDATE cards SET block_reason = 0").ok());
    CHECK(*(*store)->CardChanges() == 3);
    // An update rolled back is no change.
    REQUIRE((*store)->Begin().ok());
    REQUIRE((*store)->UpdateCard(card).ok());
    CHECK(*(*store)->CardChanges() == 4);
    REQUIRE((*store)->Rollback().ok());
    CHECK(*(*store)->CardChanges() == 3);

    auto other = Database::Open(path, false);
    REQUIRE(other.ok());
    CHECK(*db::ReadCardChanges(**other) == 3);
    // While the first connection's transaction is open, the second reads the committed count.
    REQUIRE((*store)->Begin().ok());
    REQUIRE((*store)->UpdateCard(card).ok());
    CHECK(*db::ReadCardChanges(**other) == 3);
    REQUIRE((*store)->Commit().ok());
    CHECK(*db::ReadCardChanges(**other) == 4);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("A registry reader reads the file over its own connection and cannot write to it",
          "[db][registry]") {
  auto dir = std::filesystem::temp_directory_path() /
             ("citycard_registry_reader_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "r.db").string();
  {
    auto db = Database::Open(path, true);
    REQUIRE(db.ok());
    auto store = SqliteRegistryStore::Open(**db);
    REQUIRE(store.ok());
    StoreFixture f;  // for its makers
    REQUIRE((*store)->InsertHolder(f.MakeHolder(1, "h1")).ok());
    REQUIRE((*store)->InsertCard(f.MakeCard("8607550000000012", 1)).ok());

    auto reader = db::OpenRegistryReader(path, int64_t{8} << 20);
    REQUIRE(reader.ok());
    auto card = reader->store->FindCard("8607550000000012");
    REQUIRE(card.ok());
    REQUIRE(card->has_value());
    CHECK((*card)->holder_number == 1);
    // What the writer commits later, the reader sees.
    REQUIRE((*store)->DenylistAdd("8607550000000012", DenyReason::lost).ok());
    auto listed = reader->store->DenylistFind("8607550000000012");
    REQUIRE(listed.ok());
    CHECK(listed->has_value());
    // The ledger's accounts over the same connection (the purses the ingest checker reads
    // ahead): what the writer's ledger committed, with the head of each history.
    auto ledger_store = db::SqliteLedgerStore::Open(**db);
    REQUIRE(ledger_store.ok());
    testing::FakeDigester digester;
    ManualClock clock{1'700'000'000'000};
    Ledger ledger(**ledger_store, clock, digester);
    Account purse;
    purse.id = AccountIdFor(AccountKind::card_purse, 12);
    purse.kind = AccountKind::card_purse;
    purse.owner_ref = 12;
    Account clearing;
    clearing.id = SystemAccountId(AccountKind::topup_clearing);
    clearing.kind = AccountKind::topup_clearing;
    REQUIRE(ledger.CreateAccounts(std::vector<Account>{purse, clearing}).ok());
    Transfer load;
    load.id = Id128{0, 1};
    load.debit_account_id = clearing.id;
    load.credit_account_id = purse.id;
    load.amount_fen = 500;
    load.code = 1;
    auto applied = ledger.Apply(std::vector<Transfer>{load});
    REQUIRE(applied.ok());
    REQUIRE(applied->at(0) == TransferOutcome::created);
    std::vector<AccountRecord> rows;
    const uint64_t ids[] = {purse.id};
    REQUIRE(reader->ledger->LoadAccounts(ids, &rows).ok());
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].account.balance_fen() == 500);
    CHECK(rows[0].last_transfer_seq == 1);
    // query_only: a write fails and changes nothing.
    Status write = reader->store->InsertHolder(f.MakeHolder(2, "h2"));
    CHECK(write.code() == "db_error");
    CHECK_FALSE((*store)->FindHolderByNumber(2)->has_value());
  }
  auto memory = db::OpenRegistryReader(":memory:", int64_t{8} << 20);
  REQUIRE_FALSE(memory.ok());
  CHECK(memory.status().code() == "registry_reader_needs_file");
  std::filesystem::remove_all(dir);
}

namespace {

// SQLite's plan for `sql`, its steps' details joined by "; ".
std::string QueryPlan(Database& db, const std::string& sql) {
  auto plan = db.Prepare("EXPLAIN QUERY PLAN " + sql);
  REQUIRE(plan.ok());
  std::string out;
  while (true) {
    auto row = plan->Step();
    REQUIRE(row.ok());
    if (!*row) return out;
    out += plan->ColumnText(3) + "; ";
  }
}

}  // namespace

TEST_CASE("A holder's cards are listed through the holder index, not a scan of every card",
          "[db][registry]") {
  StoreFixture f;
  CardFilter holder;
  holder.holder_number = 7;
  CHECK_THAT(QueryPlan(*f.db, db::CardListSql(holder)),
             Catch::Contains("USING INDEX cards_by_holder (holder_number=?)"));
  CardFilter holder_active = holder;
  holder_active.status = CardStatus::active;
  CHECK_THAT(QueryPlan(*f.db, db::CardListSql(holder_active)),
             Catch::Contains("USING INDEX cards_by_holder (holder_number=?)"));
  // With no holder there is no index to use: every card is read, in card number order.
  CHECK_THAT(QueryPlan(*f.db, db::CardListSql(CardFilter{})), !Catch::Contains("cards_by_holder"));
}
