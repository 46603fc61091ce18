// The tap pack: what settlement reads of each tap of one ingest write, packed into one blob
// beside the write's rows (table ingest_tap_packs, db/sqlite_tap_store.cc), so that a day of
// ten million taps is read as a few hundred blobs instead of ten million rows of ingest_taps.
// The format is docs/tap-packs.md. Encoding and decoding are pure (bytes in, bytes or taps out)
// so that they are tested without a database.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/bytes.h"
#include "core/settlement_reads.h"
#include "core/status.h"

namespace citycard::db {

inline constexpr uint8_t kTapPackFormatVersion = 1;
// One entry: card number (8), time (8), amount (8), clearing day (4), type, profile, flags (1
// each), operator index (2). docs/tap-packs.md.
inline constexpr size_t kTapPackEntryBytes = 33;
// Operators in one pack: the index is a u16.
inline constexpr size_t kTapPackOperatorsMax = 65'535;
// Entry flags.
inline constexpr uint8_t kTapPackLate = 1;
inline constexpr uint8_t kTapPackPaid = 2;

// Where settlement finds what it reads in an encoded tap record (docs/protocol.md "Tap
// record"): format version, type, profile, then flags, two key versions, card number (8), card
// counter (4), balance before (8), amount (8), terminal id (16), terminal counter (4), time
// (8), operator id (16).
inline constexpr size_t kRecordTypeOffset = 1;
inline constexpr size_t kRecordProfileOffset = 2;
inline constexpr size_t kRecordCardOffset = 6;
inline constexpr size_t kRecordAmountOffset = kRecordCardOffset + 8 + 4 + 8;
inline constexpr size_t kRecordTimeOffset = kRecordAmountOffset + 8 + kTerminalIdBytes + 4;
inline constexpr size_t kRecordOperatorOffset = kRecordTimeOffset + 8;
static_assert(kRecordOperatorOffset + kOperatorIdBytes + 3 * 4 + 3 * 8 + kTacBytes +
                      kTerminalMacBytes ==
                  kTapRecordBytes,
              "the offsets follow the tap record layout of docs/protocol.md");

// Checks the parts of an encoded record that settlement takes from it and fills `tap` from
// them (seq, late and paid are the caller's). The operator id views `record`. Failures:
// Kind::internal "tap_store_corrupt" naming `seq` (not a tap record, unknown type or profile).
Status SummaryFromRecord(int64_t seq, ByteView record, DayTapSummary* tap);

// Builds the pack of one write, tap by tap in seq order. Not thread-safe.
class TapPackBuilder {
 public:
  // Adds the tap whose encoded record (AppendTapRecord, kTapRecordBytes) is `record`.
  void Add(ByteView record, int64_t clearing_day, bool late, bool paid);
  // False when a tap could not be packed (its clearing day does not fit the entry's 32 bits,
  // the pack would name more than kTapPackOperatorsMax operators, a record of the wrong size):
  // the write then keeps no pack and its taps are read from their rows.
  bool ok() const { return ok_; }
  size_t taps() const { return taps_; }
  // The pack's bytes (docs/tap-packs.md). Only when ok().
  Bytes Finish() const;
  // Empties the builder for the next write, keeping its memory.
  void Clear();

 private:
  bool ok_ = true;
  size_t taps_ = 0;
  Bytes entries_;
  std::vector<std::string> operators_;  // the 16 raw bytes of each operator field, by index
  std::unordered_map<std::string, uint16_t> operator_index_;
  // The last operator's field and index: a write's taps mostly come from one operator's
  // terminals in a row, so most taps cost a 16-byte compare and no hash.
  std::string last_operator_;
  uint16_t last_index_ = 0;
};

// Calls `visit` for each tap of the pack whose seq is in `seqs` and whose clearing day is
// `clearing_day`, ascending seq; the pack's first tap has seq `first_seq` and it holds
// `taps` taps (the row's columns, checked against the blob). Stops at and returns the first
// failing visit. The summaries' operator ids view `pack`. Failures: Kind::internal
// "tap_store_corrupt" for a pack that is not one (wrong version, sizes, an operator index out
// of range, an unknown type or profile).
Status ForEachPackedTap(ByteView pack, int64_t first_seq, int64_t taps, SeqRange seqs,
                        int64_t clearing_day,
                        const std::function<Status(const DayTapSummary&)>& visit);

}  // namespace citycard::db
