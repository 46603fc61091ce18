// The card office: issuing, topping up, blocking, replacing and closing cards, and importing
// the holder registry. Pure logic over the registry store (core/registry.h) and the ledger
// (core/ledger.h); the `citycard` CLI and the server both drive it.
//
// Every change is one storage transaction: the registry rows and the ledger transfers of an
// operation commit together or not at all (RegistryStore::Begin + Ledger::JoinedTransaction).
// Every movement of money is a ledger transfer with an id derived from its source
// (core/account_plan.h), so a retried operation moves no more money:
// - issue: the deposit, top-up clearing -> card deposits (cash taken at the counter);
// - top-up: top-up clearing -> purse;
// - replacement: old purse -> new purse, once, after the hold period (or at once);
// - close: purse -> refunds and card deposits -> refunds (the deposit first settles an
//   overdrawn purse).
// Blocking, replacing and closing put the card on the denylist in the same transaction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/digest.h"
#include "core/holder_registry.h"
#include "core/ledger.h"
#include "core/profile.h"
#include "core/registry.h"
#include "core/status.h"
#include "core/time.h"

namespace citycard {

// Defaults of CardOfficeConfig.
inline constexpr int64_t kReplacementHoldSecondsDefault = 3 * kSecondsPerDay;
inline constexpr int64_t kTransitOverdraftFenDefault = 200;  // one bus fare
inline constexpr int64_t kPurseBalanceFenMaxDefault = 100'000;  // ¥1,000, as on transit cards
inline constexpr int kCardValidityYearsDefault = 10;
// How many due replacements ProcessDueReplacements moves per storage transaction.
inline constexpr size_t kReplacementBatchMax = 1'000;
// The most characters of a top-up reference (--ref).
inline constexpr size_t kTopupRefBytesMax = 64;

struct CardOfficeConfig {
  // How long after a replacement the old card's balance moves to the new card, so that the
  // old card's offline taps can still arrive and be booked against it first.
  int64_t replacement_hold_s = kReplacementHoldSecondsDefault;
  // The overdraft a purse of every profile but adult may run to (its floor is minus this);
  // an adult purse's floor is 0.
  int64_t transit_overdraft_fen = kTransitOverdraftFenDefault;
  // The most a purse may hold; a top-up above it is refused.
  int64_t purse_balance_max_fen = kPurseBalanceFenMaxDefault;
  // The deposit taken at issue when none is given.
  int64_t default_deposit_fen = 0;
  int card_validity_years = kCardValidityYearsDefault;
};

// The purse floor (0 or negative) of a profile under `config`.
int64_t PurseFloorFen(Profile profile, const CardOfficeConfig& config);

// The keyed hash the card office stores instead of a national id. Core needs it but must not
// touch OpenSSL; tools/cli/environment.h implements it with crypto/national_id_hash.h and the
// key file's id-hash key.
class NationalIdHasher {
 public:
  virtual ~NationalIdHasher() = default;
  // Hex hash of a normalized national id (core/national_id.h). Never fails.
  virtual std::string Hash(std::string_view normalized_id) const = 0;
};

// A card as shown: the registry's record, its purse balance, and its status as of today
// (an active card past its expiry shows CardStatus::expired).
struct CardView {
  Card card;
  int64_t balance_fen = 0;
  CardStatus status = CardStatus::active;
};

struct HolderView {
  Holder holder;
  std::vector<std::string> card_nos;  // ascending
  int64_t medical_balance_fen = 0;
};

struct IssueRequest {
  std::string national_id;  // as typed; validated and normalized by IssueCard
  std::string name;
  Profile profile = Profile::adult;
  std::optional<int64_t> deposit_fen;  // default: CardOfficeConfig::default_deposit_fen
  std::optional<int64_t> expires_day;  // default: today + card_validity_years
};

struct TopupResult {
  CardView card;
  Id128 transfer_id;
  bool repeated = false;  // the same reference was applied before: nothing moved now
};

struct ReplaceResult {
  CardView old_card;
  CardView new_card;
  bool balance_moved = false;  // true with move_now (and the move was booked)
  int64_t moved_fen = 0;
};

struct CloseResult {
  CardView card;
  int64_t purse_refund_fen = 0;
  int64_t deposit_refund_fen = 0;
  std::vector<Id128> transfer_ids;
};

struct HistoryLine {
  int64_t time_ms = 0;
  std::string kind;        // TransferCodeName of the transfer's code
  int64_t amount_fen = 0;  // signed, as the purse sees it: + credited, - debited
  int64_t balance_after_fen = 0;
  std::string operator_id;  // the operator on the other side, or empty
  Id128 transfer_id;
};

// Reports the progress of a long import: (done, total).
using ImportProgress = std::function<void(int64_t done, int64_t total)>;
inline constexpr int64_t kImportProgressLines = 1'000;

struct ImportReport {
  int64_t lines = 0;      // data lines in the file (good and bad)
  int64_t created = 0;
  int64_t updated = 0;
  int64_t unchanged = 0;
  int64_t skipped = 0;    // bad lines left out under skip_bad
  bool applied = false;   // false when bad lines stopped the import (then nothing changed)
  std::vector<RegistryProblem> problems;
};

class CardOffice {
 public:
  // Everything passed must outlive the CardOffice. `registry` and `ledger` must share one
  // storage transaction (see RegistryStore::Begin).
  CardOffice(RegistryStore& registry, Ledger& ledger, const NationalIdHasher& hasher,
             const Digester& digester, const Clock& clock, CardOfficeConfig config);

  // Creates the system accounts of core/account_plan.h (idempotent).
  Status CreateSystemAccounts();

  // Imports a registry file (docs/registry-format.md). With bad lines and !skip_bad nothing
  // changes and the report lists the problems (applied false). Otherwise every good line is
  // applied in one transaction: a new holder is created (and its medical opening balance
  // booked, medical fund -> medical account), a changed line updates the holder, an
  // identical one changes nothing. Failures: "invalid_registry_header" (Kind::bad_input).
  // `progress`, when set, is called with (lines applied, lines to apply) every
  // kImportProgressLines lines and once at the end.
  Result<ImportReport> ImportHolders(std::string_view csv_text, bool skip_bad,
                                     const ImportProgress& progress = {});

  // "invalid_national_id" (5), "holder_not_found" (3).
  Result<HolderView> ShowHolder(std::string_view national_id);

  // Issues a card to the holder with this national id (creating the holder when the
  // registry does not know them yet) and books the deposit. Failures: "invalid_national_id",
  // "invalid_name", "invalid_amount", "invalid_expiry" (Kind::bad_input);
  // "card_numbers_exhausted" (Kind::refused).
  Result<CardView> IssueCard(const IssueRequest& request);

  // "invalid_card_no" (5) before any lookup; "card_not_found" (3).
  Result<CardView> ShowCard(std::string_view card_no);

  // Cards by status (expired: active cards past their expiry) and holder; ascending card_no.
  // "invalid_national_id" (5).
  Result<std::vector<CardView>> ListCards(std::optional<CardStatus> status,
                                          std::optional<std::string> national_id);

  // Tops up the purse: top-up clearing -> purse. With a reference, the transfer's id derives
  // from card and reference, and a repeated call with the same reference and amount returns
  // the first result without moving money again. Failures: "invalid_card_no", "invalid_amount"
  // (zero), "invalid_ref" (Kind::bad_input); "card_not_found"; Kind::refused "card_blocked",
  // "card_replaced", "card_closed", "card_expired", "purse_limit_exceeded",
  // "transfer_conflict" (the reference was used for a different top-up). A purse on the
  // denylist for a negative balance comes off it when the top-up brings it to zero or more.
  Result<TopupResult> Topup(std::string_view card_no, int64_t amount_fen, std::string_view ref);

  // Blocks an active card and puts it on the denylist (a new version) at once. Refused:
  // "card_blocked" (already), "card_replaced", "card_closed".
  Result<CardView> Block(std::string_view card_no, BlockReason reason);
  // Unblocks a blocked card and takes it off the denylist. Refused "card_not_blocked".
  Result<CardView> Unblock(std::string_view card_no);

  // Replaces an active or blocked card: a new card for the same holder, name and profile with
  // the deposit carried over is issued at once; the old card becomes replaced and goes on the
  // denylist at once. Its balance moves after CardOfficeConfig::replacement_hold_s
  // (ProcessDueReplacements), or in the same transaction with move_now. Refused
  // "card_replaced", "card_closed".
  Result<ReplaceResult> Replace(std::string_view card_no, bool move_now);

  // Moves the balance of every replaced card whose hold period has passed by the clock, each
  // exactly once (the transfer id derives from the old card number; the card records when it
  // moved). A negative old balance (late overdrawn taps) moves as a debt onto the new card,
  // which then goes on the denylist until topped up. Returns how many cards moved.
  // `serve` and `settle` call it.
  Result<size_t> ProcessDueReplacements();

  // Closes an active or blocked card: refunds the purse and the deposit to the refunds
  // account, closes the purse account, denylists the card. Refused: "card_replaced",
  // "card_closed", "replacement_pending" (the balance of the card it replaced has not moved
  // yet), "card_in_debt" (an overdrawn purse the deposit does not cover).
  Result<CloseResult> Close(std::string_view card_no);

  // The purse's transfers, newest first, at most `limit` (capped by kAccountHistoryMax).
  Result<std::vector<HistoryLine>> History(std::string_view card_no, size_t limit);

  const CardOfficeConfig& config() const { return config_; }

 private:
  Result<Card> LoadCard(std::string_view card_no);
  Result<CardView> View(const Card& card);
  Result<Holder> FindOrCreateHolder(const std::string& national_id, const std::string& name);
  Status CreateHolder(Holder* holder);
  Status ApplyRegistryLine(const RegistryLine& line, ImportReport* report);
  Status BookMedicalOpening(const Holder& holder);
  Result<Card> NewCard(const Holder& holder, const std::string& name, Profile profile,
                       int64_t deposit_fen, int64_t expires_day);
  Status CheckTopup(const CardView& view, int64_t amount_fen);
  Status MoveReplacementBalance(Card* old_card);
  Status Book(const Transfer& transfer);
  Transfer MakeTransfer(std::string_view domain, std::string_view key, uint64_t debit,
                        uint64_t credit, int64_t amount_fen, uint16_t code) const;
  int64_t Today() const;
  int64_t DefaultExpiry() const;

  RegistryStore& registry_;
  Ledger& ledger_;
  const NationalIdHasher& hasher_;
  const Digester& digester_;
  const Clock& clock_;
  CardOfficeConfig config_;
};

// The refusal for a card that is not usable, or Ok for an active one: "card_blocked",
// "card_replaced", "card_closed", "card_expired" (all Kind::refused).
Status CheckCardUsable(const CardView& view);

}  // namespace citycard
