// The replay of a Shenzhen Tong file (docs/replay.md), its pure part: how the file's names
// and numbers become citycard's operators, terminals and cards, which tap each row becomes,
// and how the taps are grouped into the batches the readers upload and when each batch
// arrives. No I/O, no clock: tools/cli/replay.cc drives the protocol with this plan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "core/profile.h"
#include "core/registry.h"
#include "core/status.h"
#include "core/szt_file.h"
#include "core/tap_record.h"

namespace citycard::cli {

// Replay cards are numbered "99075" + the anonymised number's length (1-9) + its digits
// (letters A-J stand for 0-9), zero-padded to nine, + the Luhn digit: a bijection, so two
// anonymised numbers never share a card, and the same one always gets the same card.
inline constexpr std::string_view kReplayCardPrefix = "99075";
inline constexpr size_t kReplayAnonymisedDigitsMax = 9;
// A reader uploads what it has every kReplayBatchWindowSeconds (or when it holds
// kReplayBatchRecordsMax records), and the batch arrives kReplayUploadDelaySeconds after its
// last tap, as it would have live; a batch never spans two clearing days, and one whose last tap
// is just before the cut-off arrives before it, so that no replayed tap is late.
inline constexpr size_t kReplayBatchRecordsMax = 64;
inline constexpr int64_t kReplayBatchWindowSeconds = 300;
inline constexpr int64_t kReplayUploadDelaySeconds = 5;
// What a provisioned card holds beyond the sum of its taps in the file.
inline constexpr int64_t kReplayCardFloatFen = 1'000;

// The card number of an anonymised card number. Kind::bad_input "invalid_szt_card" for
// anything but 1 to 9 letters A-J.
Result<std::string> ReplayCardNumber(std::string_view anonymised);

// The ASCII operator id of a company name: "szt-metro-N" for 地铁N号线 (N in Chinese numerals,
// 1 to 99), else "szt-" + the first 8 hex digits of SHA-256(name).
std::string ReplayOperatorId(const Digester& digester, std::string_view company_name);

// "szt-" + the device number. Kind::bad_input "invalid_szt_device" when it does not fit a
// terminal id (kRegistryIdBytesMax).
Result<std::string> ReplayTerminalId(uint64_t equ_no);

struct ReplayOperator {
  std::string id;
  std::string name;  // the company name, as in the file
  OperatorKind kind = OperatorKind::bus;
  int64_t rows = 0;
  int64_t paid_fen = 0;  // Σ deal_money
};

struct ReplayTerminal {
  std::string id;
  std::string operator_id;
  TerminalKind kind = TerminalKind::bus;
  std::string route;  // the first station or route seen
};

struct ReplayCard {
  std::string card_no;
  std::string anonymised;
  Profile profile = Profile::adult;
  int64_t paid_fen = 0;    // Σ deal_money of its taps
  int64_t topup_fen = 0;   // what provisioning puts on it: paid_fen + kReplayCardFloatFen
};

// One row as a tap to make: which card on which terminal, and what the reader asks for.
struct ReplayTap {
  size_t row = 0;  // index into the rows
  std::string card_no;
  std::string terminal_id;
  TapType type = TapType::purchase;
  int64_t time_s = 0;
  int64_t amount_fen = 0;
  int64_t full_fare_fen = 0;
  int64_t concession_fen = 0;
  int64_t transfer_discount_fen = 0;
  uint8_t flags = 0;
};

struct ReplayPlan {
  std::vector<ReplayOperator> operators;  // ascending id
  std::vector<ReplayTerminal> terminals;  // ascending id
  std::vector<ReplayCard> cards;          // ascending card_no
  std::vector<ReplayTap> taps;            // in the order the cards make them: time, then line
};

// Builds the plan. A row's tap: metro entry (no money), metro exit or bus (a purchase); the
// amount is deal_money and the full fare deal_value; with conn_mark the difference is the
// transfer discount (flag kTapFlagTransfer), otherwise it is the concession. A card whose
// non-transfer paid taps ever pay half the full fare or less is a student card (Shenzhen's
// concession cards pay 50 %), others are adult.
// Failures (Kind::bad_input): "invalid_szt_card", "invalid_szt_device"; "invalid_szt_row"
// when deal_money exceeds deal_value, or one device appears under two companies, or two
// company names map to one operator id.
Result<ReplayPlan> PlanReplay(const Digester& digester, const std::vector<SztRow>& rows);

// One upload: a terminal's taps (indices into ReplayPlan::taps, in the terminal's order) and
// when the batch reaches the core.
struct ReplayBatch {
  std::string terminal_id;
  std::vector<size_t> taps;
  int64_t arrival_s = 0;
};

// Groups each terminal's taps into batches (kReplayBatchRecordsMax, kReplayBatchWindowSeconds,
// never across a clearing day with the given cut-off) and orders all batches by arrival (then
// terminal id), so that a clock following the arrivals never goes back.
std::vector<ReplayBatch> PlanBatches(const ReplayPlan& plan, int64_t cutoff_s);

}  // namespace citycard::cli
