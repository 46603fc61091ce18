// The tap record: what a card reader stores for each transaction and uploads in a batch.
// Byte layout: docs/protocol.md, section "Tap record". The same bytes are what the card's
// TAC and the terminal's MAC are computed over, so this file is the single definition of
// both; crypto/ only computes MACs over the bytes it is given.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/bytes.h"
#include "core/profile.h"
#include "core/status.h"

namespace citycard {

// Stored and carried as these numbers: never renumber.
enum class TapType : uint8_t {
  purchase = 1,      // a flat or metered ride or sale (bus, taxi, parking)
  metro_entry = 2,   // carries no money; opens a distance-priced trip
  metro_exit = 3,    // closes the trip and carries its fare
  load = 4,          // the card's record of an online top-up it applied
  gate_entry = 5,    // a scenic-spot gate; may consume a pass visit instead of money
};

inline constexpr uint8_t kTapRecordFormatVersion = 1;
inline constexpr size_t kTerminalIdBytes = 16;  // ASCII, NUL-padded
inline constexpr size_t kOperatorIdBytes = 16;  // ASCII, NUL-padded
inline constexpr size_t kTacBytes = 8;          // AES-CMAC truncated
inline constexpr size_t kTerminalMacBytes = 16; // HMAC-SHA256 truncated

// Flag bits of TapRecord::flags.
inline constexpr uint8_t kTapFlagTransfer = 0x01;  // the reader priced it as a transfer (联程)

struct TapRecord {
  uint8_t format_version = kTapRecordFormatVersion;
  TapType type = TapType::purchase;
  Profile profile = Profile::adult;
  uint8_t flags = 0;
  uint8_t tac_key_version = 1;
  uint8_t terminal_key_version = 1;
  uint64_t card_no = 0;            // 16 decimal digits, Luhn-checked
  uint32_t card_counter = 0;       // CTC: the card's own transaction counter
  int64_t balance_before_fen = 0;  // the card's purse before this transaction
  int64_t amount_fen = 0;          // what the card paid (or, for a load, received)
  std::string terminal_id;         // at most kTerminalIdBytes ASCII characters
  uint32_t terminal_counter = 0;   // TTC: the terminal's transaction counter
  int64_t time_s = 0;              // Unix seconds (UTC) of the tap, by the terminal's clock
  std::string operator_id;         // at most kOperatorIdBytes ASCII characters
  uint32_t route_code = 0;         // route or line, as the fare table numbers it
  uint32_t station_code = 0;       // station or stop, as the fare table numbers it
  uint32_t fare_version = 0;       // the fare table the reader priced with
  int64_t full_fare_fen = 0;       // the full fare before any discount
  int64_t concession_fen = 0;      // taken off for the card's profile
  int64_t transfer_discount_fen = 0;  // taken off as a transfer
  std::array<uint8_t, kTacBytes> tac{};
  std::array<uint8_t, kTerminalMacBytes> terminal_mac{};

  bool operator==(const TapRecord&) const = default;
};

// The number of bytes of an encoded record, and of the prefix its terminal MAC covers.
inline constexpr size_t kTapRecordBytes = 1 + 1 + 1 + 1 + 1 + 1 + 8 + 4 + 8 + 8 + kTerminalIdBytes +
                                          4 + 8 + kOperatorIdBytes + 4 + 4 + 4 + 8 + 8 + 8 +
                                          kTacBytes + kTerminalMacBytes;
inline constexpr size_t kTapMacInputBytes = kTapRecordBytes - kTerminalMacBytes;
// The TAC input: card_no, card_counter, balance_before, amount, type, terminal_id,
// terminal_counter, time.
inline constexpr size_t kTacInputBytes = 8 + 4 + 8 + 8 + 1 + kTerminalIdBytes + 4 + 8;
static_assert(kTapRecordBytes == 138, "the tap record layout in docs/protocol.md is 138 bytes");
static_assert(kTacInputBytes == 57, "the TAC input layout in docs/protocol.md is 57 bytes");

// Checks the fields a reader could get wrong: text lengths and characters, format version.
// Kind::bad_input with code "invalid_tap_record" and the field named in the message.
Status ValidateTapRecord(const TapRecord& record);

// The canonical bytes the card's TAC is computed over (kTacInputBytes).
Bytes TacInput(const TapRecord& record);

// The bytes the terminal's MAC is computed over: the encoded record up to and including
// the TAC (kTapMacInputBytes).
Bytes TerminalMacInput(const TapRecord& record);

// The full encoding (kTapRecordBytes). The record must be valid (ValidateTapRecord).
Bytes EncodeTapRecord(const TapRecord& record);
void AppendTapRecord(const TapRecord& record, Bytes* out);

// Decodes exactly kTapRecordBytes. Kind::bad_input, code "invalid_tap_record" on a wrong
// size, unknown format version, type or profile, or a text field that is not printable ASCII.
Result<TapRecord> DecodeTapRecord(ByteView bytes);

std::string_view TapTypeName(TapType type);

}  // namespace citycard
