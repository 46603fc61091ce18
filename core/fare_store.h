// Storage of fare tables (every version, with its JSON text as loaded) and of the passes sold
// onto cards. Core's interface; db/sqlite_fare_store.h implements it over SQLite (component
// "fares"), tests use that over ":memory:". Format of the text: docs/fares.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ledger.h"
#include "core/fares.h"
#include "core/status.h"

namespace citycard {

// One loaded version of the fare table.
struct StoredFareTable {
  int64_t version = 0;     // FareTable::version (1 .. 2^32 - 1)
  std::string name;        // FareTable::name
  std::string json;        // the text exactly as loaded (what readers download)
  int64_t loaded_ms = 0;   // when it was loaded (the injectable clock)

  bool operator==(const StoredFareTable&) const = default;
};

// The current fare table as the terminal protocol serves it: the newest version and its text.
// version 0 and an empty text: no table has been loaded yet.
struct FareTableBlob {
  uint32_t version = 0;
  std::string json;

  bool operator==(const FareTableBlob&) const = default;
};

// A pass sold onto a card.
struct StoredPass {
  std::string card_no;
  std::string pass_id;       // PassProduct::id
  int64_t fare_version = 0;  // the table it was sold under (its product definition)
  int64_t price_fen = 0;     // what the card paid
  std::string operator_id;   // who was paid
  Id128 transfer_id;         // the sale's ledger transfer
  int64_t sold_ms = 0;
  PassHolding holding;       // sold_day, visits_used, last entry day per spot
};

class FareStore {
 public:
  virtual ~FareStore() = default;

  // The storage transaction, shared with the ledger's and registry's connection in the SQLite
  // implementation (Ledger::JoinedTransaction), so a pass sale commits its transfer and its
  // pass row together.
  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual Status Rollback() = 0;

  // Stores a new version. Kind::refused "fare_version_exists" when that version is stored.
  virtual Status InsertTable(const StoredFareTable& table) = 0;
  // The version asked for, or nullopt.
  virtual Result<std::optional<StoredFareTable>> FindTable(int64_t version) = 0;
  // The highest version, or nullopt when none is stored.
  virtual Result<std::optional<StoredFareTable>> CurrentTable() = 0;
  // Every stored version, ascending, with its text.
  virtual Result<std::vector<StoredFareTable>> ListTables() = 0;

  // Stores a sold pass. Kind::refused "pass_exists" when the card already holds one of that
  // product (a card holds at most one of each product; an expired one is replaced by
  // ReplacePass).
  virtual Status InsertPass(const StoredPass& pass) = 0;
  // Replaces the row of (card_no, pass_id) entirely (a renewed sale, a visit booked).
  // Kind::not_found "pass_not_found" when there is none.
  virtual Status UpdatePass(const StoredPass& pass) = 0;
  virtual Result<std::optional<StoredPass>> FindPass(std::string_view card_no,
                                                     std::string_view pass_id) = 0;
  // The card's passes, by pass id.
  virtual Result<std::vector<StoredPass>> ListPasses(std::string_view card_no) = 0;
};

// The current table for the terminal protocol's fare-table download (terminals/messages.h
// DocumentKind::fare_table): the newest stored version and its JSON text, or version 0 and
// an empty text when none is stored. Failures: the store's (Kind::internal).
Result<FareTableBlob> CurrentFareTable(FareStore& store);

}  // namespace citycard
