// The registry: who the holders are, which cards exist and in what state, which operators and
// terminals take part, and the denylist readers download. Plain value types, their names as
// the CLI and the JSON spell them, and RegistryStore, the storage interface that
// db/sqlite_registry_store.h implements over SQLite (tests/support has an in-memory fake).
//
// Money is not here: a card's purse and an operator's payable are ledger accounts
// (core/ledger.h); the registry only records their ids (core/account_plan.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/profile.h"
#include "core/status.h"

namespace citycard {

// ---- Holders ---------------------------------------------------------------------------

// Social-security schemes and special groups (CLI.md "File formats"). Stored numbers.
enum class Scheme : uint8_t {
  pension = 1,
  medical = 2,
  unemployment = 3,
  work_injury = 4,
  maternity = 5,
};
enum class SpecialGroup : uint8_t {
  low_income = 1,
  social_assistance = 2,
  disabled = 3,
  elderly = 4,
};
std::string_view SchemeName(Scheme scheme);
std::optional<Scheme> ParseScheme(std::string_view name);
std::string_view SpecialGroupName(SpecialGroup group);
std::optional<SpecialGroup> ParseSpecialGroup(std::string_view name);

// The longest holder name accepted, in bytes of UTF-8 (a Chinese name is 6 to 12 bytes; a
// long transliterated foreign name still fits).
inline constexpr size_t kHolderNameBytesMax = 120;

struct Holder {
  int64_t number = 0;       // the registry's number for the holder; owner of the medical account
  std::string id_hash;      // keyed hash of the national id (crypto/national_id_hash.h), hex
  std::string id_masked;    // "3212**********1234"
  std::string name;         // UTF-8
  std::vector<Scheme> schemes;       // ascending, no duplicates
  std::vector<SpecialGroup> groups;  // ascending, no duplicates
  int64_t medical_opening_fen = 0;   // the registry's opening medical balance
  bool in_registry = false;  // false for a holder created by a card issue and not imported yet

  friend bool operator==(const Holder&, const Holder&) = default;
};

// ---- Cards -----------------------------------------------------------------------------

// Stored numbers; never renumber.
enum class CardStatus : uint8_t {
  active = 1,
  blocked = 2,
  replaced = 3,
  closed = 4,
  expired = 5,  // never stored: an active card past its expiry date shows as expired
};
enum class BlockReason : uint8_t {
  none = 0,
  lost = 1,
  stolen = 2,
  damaged = 3,
  fraud = 4,
};
std::string_view CardStatusName(CardStatus status);
std::optional<CardStatus> ParseCardStatus(std::string_view name);
std::string_view BlockReasonName(BlockReason reason);  // "" for none
// lost, stolen, damaged, fraud (not "none").
std::optional<BlockReason> ParseBlockReason(std::string_view name);

struct Card {
  std::string card_no;        // 16 digits (core/card_number.h)
  int64_t holder_number = 0;  // Holder::number
  std::string holder_name;    // the name printed on the card, UTF-8
  std::string holder_id_masked;
  Profile profile = Profile::adult;
  CardStatus status = CardStatus::active;  // never CardStatus::expired
  BlockReason block_reason = BlockReason::none;  // set while blocked; kept after a replacement
  int64_t expires_day = 0;    // civil day number (core/time.h): valid through that day
  int64_t deposit_fen = 0;    // the deposit held for this card in the card-deposits account
  uint64_t purse_account_id = 0;
  int64_t issued_s = 0;       // Unix seconds
  std::string replaces;       // the card this one replaced, or empty
  std::string replaced_by;    // set when status is replaced
  // For a replaced card: when its balance is due to move to replaced_by (Unix seconds), and
  // when it did (0: not yet).
  int64_t balance_move_due_s = 0;
  int64_t balance_moved_s = 0;
  int64_t closed_s = 0;

  friend bool operator==(const Card&, const Card&) = default;
};

struct CardFilter {
  std::optional<CardStatus> status;  // a stored status (never expired)
  std::optional<int64_t> holder_number;
};

// ---- Operators and terminals -----------------------------------------------------------

// Operator and terminal ids travel in tap records in 16-byte fields (core/tap_record.h):
// 1 to 16 characters of A-Z a-z 0-9 - _.
inline constexpr size_t kRegistryIdBytesMax = 16;
// Fees are in basis points of the gross (10000 = 100 %).
inline constexpr int64_t kFeeBasisPointsMax = 10'000;
// A terminal's route or location text, UTF-8.
inline constexpr size_t kRouteBytesMax = 120;
// Key versions are one byte in the tap record.
inline constexpr int kTerminalKeyVersionMax = 255;

// Ok when `id` is a valid operator or terminal id; Kind::bad_input `code` otherwise.
Status ValidateRegistryId(std::string_view id, std::string_view code);

enum class OperatorKind : uint8_t {
  bus = 1,
  metro = 2,
  taxi = 3,
  parking = 4,
  utility = 5,
  hospital = 6,
  scenic = 7,
  counter = 8,
};
std::string_view OperatorKindName(OperatorKind kind);
std::optional<OperatorKind> ParseOperatorKind(std::string_view name);

struct Operator {
  int64_t number = 0;  // the registry's number; owner of the payable account
  std::string id;
  std::string name;    // UTF-8
  OperatorKind kind = OperatorKind::bus;
  int64_t fee_bp = 0;  // 0..kFeeBasisPointsMax
  uint64_t payable_account_id = 0;
  int64_t created_s = 0;

  friend bool operator==(const Operator&, const Operator&) = default;
};

// Terminal kinds: the operator kinds plus a gate (scenic spot, car park) and a self-service
// kiosk. Stored numbers.
enum class TerminalKind : uint8_t {
  bus = 1,
  metro = 2,
  taxi = 3,
  parking = 4,
  utility = 5,
  hospital = 6,
  scenic = 7,
  counter = 8,
  gate = 9,
  kiosk = 10,
};
std::string_view TerminalKindName(TerminalKind kind);
std::optional<TerminalKind> ParseTerminalKind(std::string_view name);

enum class TerminalStatus : uint8_t { active = 1, disabled = 2 };
std::string_view TerminalStatusName(TerminalStatus status);

struct TerminalKey {
  int version = 0;     // 1..kTerminalKeyVersionMax
  Bytes wrapped_key;   // the terminal's HMAC key wrapped under the key file's wrap key
  int64_t created_s = 0;
  bool revoked = false;

  friend bool operator==(const TerminalKey&, const TerminalKey&) = default;
};

struct Terminal {
  std::string id;
  std::string operator_id;
  TerminalKind kind = TerminalKind::bus;
  std::string route;
  TerminalStatus status = TerminalStatus::active;
  std::vector<TerminalKey> keys;  // ascending version; the last is current
  int64_t counter = 0;            // the highest terminal transaction counter (TTC) seen
  int64_t registered_s = 0;

  int current_key_version() const { return keys.empty() ? 0 : keys.back().version; }
  friend bool operator==(const Terminal&, const Terminal&) = default;
};

// ---- Denylist --------------------------------------------------------------------------

// Why a card is on the denylist. Stored numbers.
enum class DenyReason : uint8_t {
  lost = 1,
  stolen = 2,
  damaged = 3,
  fraud = 4,
  replaced = 5,
  closed = 6,
  negative_balance = 7,  // an offline tap overdrew the purse; lifted by a top-up
};
std::string_view DenyReasonName(DenyReason reason);
DenyReason DenyReasonFor(BlockReason reason);  // reason must not be none

struct DenylistEntry {
  std::string card_no;
  DenyReason reason = DenyReason::lost;
  int64_t version = 0;  // the denylist version that added it (or last changed its reason)

  friend bool operator==(const DenylistEntry&, const DenylistEntry&) = default;
};

// Every change to the denylist makes a new version: 1, 2, 3, … (0: empty, never changed).
struct Denylist {
  int64_t version = 0;
  std::vector<DenylistEntry> entries;  // ascending card_no
};

// What changed after from_version up to to_version: a reader holding from_version applies
// `added` (insert or replace) and `removed`, and then holds to_version. A card added and
// removed again in between appears only in removed.
struct DenylistDelta {
  int64_t from_version = 0;
  int64_t to_version = 0;
  std::vector<DenylistEntry> added;    // ascending card_no
  std::vector<std::string> removed;    // ascending
};

// ---- Storage ---------------------------------------------------------------------------

// The registry's storage. Every method may fail with Kind::internal (the store's I/O); the
// other failures are named per method. Writes outside Begin/Commit are each their own
// transaction. Not thread-safe: one store per thread (a SQLite connection each).
class RegistryStore {
 public:
  virtual ~RegistryStore() = default;

  // A storage transaction around several calls. In the SQLite store the registry and the
  // ledger share one connection, so this transaction is also the ledger's
  // (Ledger::JoinedTransaction): the card office commits a card row and its transfers
  // atomically. Commit returns only when the transaction is durable.
  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual Status Rollback() = 0;

  // A read scope around several reads, outside Begin/Commit: the reads between BeginRead and
  // EndRead see one snapshot of the store, and a store that pays a price per transaction
  // (SQLite takes and drops a file lock for each statement run on its own) pays it once for
  // the whole scope. Nothing may be written inside the scope (a programmer error, asserted by
  // the SQLite store). EndRead must follow every successful BeginRead, also after a failed
  // read. Stores without such a cost keep the default, which does nothing.
  virtual Status BeginRead() { return Status::Ok(); }
  virtual Status EndRead() { return Status::Ok(); }

  // The next value (1, 2, 3, …) of the named counter ("card", "holder", "operator", …).
  virtual Result<int64_t> NextSequence(std::string_view name) = 0;

  // Holders. Insert: Kind::refused "holder_exists" when the id hash or number is taken.
  // Update: by number; Kind::not_found "holder_not_found".
  virtual Result<std::optional<Holder>> FindHolder(std::string_view id_hash) = 0;
  virtual Result<std::optional<Holder>> FindHolderByNumber(int64_t number) = 0;
  virtual Status InsertHolder(const Holder& holder) = 0;
  virtual Status UpdateHolder(const Holder& holder) = 0;

  // Cards. Insert: Kind::refused "card_exists". Update: by card_no; Kind::not_found
  // "card_not_found". List: ascending card_no.
  virtual Status InsertCard(const Card& card) = 0;
  virtual Status UpdateCard(const Card& card) = 0;
  virtual Result<std::optional<Card>> FindCard(std::string_view card_no) = 0;
  virtual Result<std::vector<Card>> ListCards(const CardFilter& filter) = 0;
  // Replaced cards whose balance has not moved yet and is due at or before now_s, oldest due
  // first, at most `limit`.
  virtual Result<std::vector<Card>> ListDueReplacements(int64_t now_s, size_t limit) = 0;
  // How many card rows have been changed (UpdateCard, or any other write to a stored card)
  // since the store was made: it never goes down, and each change counts in the transaction
  // that makes it, so two reads of the same value see the same cards. Settlement reads it
  // before it reads the rebated cards and again inside its write transaction, and plans again
  // when the two differ (docs/settlement.md "Booking"). Failures: the store's I/O.
  virtual Result<int64_t> CardChanges() = 0;

  // Operators. Insert: Kind::refused "operator_exists" when the id or number is taken.
  // List: ascending id.
  virtual Status InsertOperator(const Operator& op) = 0;
  virtual Result<std::optional<Operator>> FindOperator(std::string_view id) = 0;
  virtual Result<std::optional<Operator>> FindOperatorByNumber(int64_t number) = 0;
  virtual Result<std::vector<Operator>> ListOperators() = 0;

  // Terminals, with their keys. Insert: Kind::refused "terminal_exists". The others:
  // Kind::not_found "terminal_not_found"; AddTerminalKey: Kind::refused
  // "terminal_key_version_exists". List: ascending id.
  virtual Status InsertTerminal(const Terminal& terminal) = 0;
  virtual Status SetTerminalStatus(std::string_view id, TerminalStatus status) = 0;
  virtual Status AddTerminalKey(std::string_view id, const TerminalKey& key) = 0;
  // Raises the stored counter to `counter` (never lowers it).
  virtual Status RaiseTerminalCounter(std::string_view id, int64_t counter) = 0;
  virtual Result<std::optional<Terminal>> FindTerminal(std::string_view id) = 0;
  virtual Result<std::vector<Terminal>> ListTerminals() = 0;

  // Denylist. Add puts the card on the list (or changes its reason) and returns the new
  // version; adding a card already listed with the same reason changes nothing and returns
  // the current version. Remove takes it off and returns the new version, or the current
  // version when it was not listed.
  virtual Result<int64_t> DenylistAdd(std::string_view card_no, DenyReason reason) = 0;
  virtual Result<int64_t> DenylistRemove(std::string_view card_no) = 0;
  virtual Result<std::optional<DenylistEntry>> DenylistFind(std::string_view card_no) = 0;
  virtual Result<Denylist> DenylistFull() = 0;
  // Kind::bad_input "invalid_denylist_version" when `version` is negative or above the
  // current version.
  virtual Result<DenylistDelta> DenylistSince(int64_t version) = 0;
};

}  // namespace citycard
