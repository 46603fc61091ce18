#include "db/tap_pack.h"

#include <cstring>
#include <limits>
#include <string_view>

#include "core/profile.h"
#include "core/tap_record.h"

namespace citycard::db {

namespace {

// The pack's header: version (1), operator count (2); then each operator's 16 bytes; then the
// entry count (4) and the entries.
constexpr size_t kPackHeadBytes = 1 + 2;
constexpr size_t kPackCountBytes = 4;

// Entry field offsets (docs/tap-packs.md).
constexpr size_t kEntryCard = 0;
constexpr size_t kEntryTime = 8;
constexpr size_t kEntryAmount = 16;
constexpr size_t kEntryDay = 24;
constexpr size_t kEntryType = 28;
constexpr size_t kEntryProfile = 29;
constexpr size_t kEntryFlags = 30;
constexpr size_t kEntryOperator = 31;
static_assert(kEntryOperator + 2 == kTapPackEntryBytes);

uint64_t BigEndianAt(const uint8_t* bytes) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | bytes[i];
  return v;
}

uint64_t LittleEndianAt(const uint8_t* bytes, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | bytes[i];
  return v;
}

void PutLittleEndian(uint8_t* out, uint64_t v, int width) {
  for (int i = 0; i < width; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

Status Corrupt(int64_t seq, const std::string& what) {
  return Status::Internal("tap_store_corrupt", "tap " + std::to_string(seq) + ": " + what);
}

Status CorruptPack(int64_t first_seq, const std::string& what) {
  return Status::Internal("tap_store_corrupt",
                          "tap pack from seq " + std::to_string(first_seq) + ": " + what);
}

std::string_view OperatorIn(const uint8_t* field) {
  const char* op = reinterpret_cast<const char*>(field);
  return std::string_view(op, ::strnlen(op, kOperatorIdBytes));
}

// Type and profile as a record holds them, checked as the row read checks them.
Status TypeAndProfile(int64_t seq, uint8_t type, uint8_t profile_byte, DayTapSummary* tap) {
  auto profile = ProfileFromByte(profile_byte);
  if (!profile || type < static_cast<uint8_t>(TapType::purchase) ||
      type > static_cast<uint8_t>(TapType::gate_entry)) {
    return Corrupt(seq, "unknown type or profile");
  }
  tap->type = static_cast<TapType>(type);
  tap->profile = *profile;
  return Status::Ok();
}

}  // namespace

Status SummaryFromRecord(int64_t seq, ByteView record, DayTapSummary* tap) {
  if (record.size() != kTapRecordBytes || record[0] != kTapRecordFormatVersion) {
    return Corrupt(seq, "not a tap record");
  }
  tap->seq = seq;
  CITYCARD_RETURN_IF_ERROR(
      TypeAndProfile(seq, record[kRecordTypeOffset], record[kRecordProfileOffset], tap));
  tap->card_no = BigEndianAt(record.data() + kRecordCardOffset);
  tap->amount_fen = static_cast<int64_t>(BigEndianAt(record.data() + kRecordAmountOffset));
  tap->time_s = static_cast<int64_t>(BigEndianAt(record.data() + kRecordTimeOffset));
  tap->operator_id = OperatorIn(record.data() + kRecordOperatorOffset);
  return Status::Ok();
}

void TapPackBuilder::Add(ByteView record, int64_t clearing_day, bool late, bool paid) {
  ++taps_;
  if (!ok_) return;
  if (record.size() != kTapRecordBytes ||
      clearing_day < std::numeric_limits<int32_t>::min() ||
      clearing_day > std::numeric_limits<int32_t>::max()) {
    ok_ = false;
    return;
  }
  const uint8_t* field = record.data() + kRecordOperatorOffset;
  if (last_operator_.size() != kOperatorIdBytes ||
      std::memcmp(last_operator_.data(), field, kOperatorIdBytes) != 0) {
    last_operator_.assign(reinterpret_cast<const char*>(field), kOperatorIdBytes);
    auto [it, added] = operator_index_.try_emplace(last_operator_, operators_.size());
    if (added) {
      if (operators_.size() == kTapPackOperatorsMax) {
        ok_ = false;
        return;
      }
      operators_.push_back(last_operator_);
    }
    last_index_ = it->second;
  }
  const size_t at = entries_.size();
  entries_.resize(at + kTapPackEntryBytes);
  uint8_t* e = entries_.data() + at;
  PutLittleEndian(e + kEntryCard, BigEndianAt(record.data() + kRecordCardOffset), 8);
  PutLittleEndian(e + kEntryTime, BigEndianAt(record.data() + kRecordTimeOffset), 8);
  PutLittleEndian(e + kEntryAmount, BigEndianAt(record.data() + kRecordAmountOffset), 8);
  PutLittleEndian(e + kEntryDay, static_cast<uint32_t>(static_cast<int32_t>(clearing_day)), 4);
  e[kEntryType] = record[kRecordTypeOffset];
  e[kEntryProfile] = record[kRecordProfileOffset];
  e[kEntryFlags] = static_cast<uint8_t>((late ? kTapPackLate : 0) | (paid ? kTapPackPaid : 0));
  PutLittleEndian(e + kEntryOperator, last_index_, 2);
}

Bytes TapPackBuilder::Finish() const {
  CITYCARD_ASSERT(ok_);
  Bytes out(kPackHeadBytes + operators_.size() * kOperatorIdBytes + kPackCountBytes);
  out[0] = kTapPackFormatVersion;
  PutLittleEndian(out.data() + 1, operators_.size(), 2);
  size_t at = kPackHeadBytes;
  for (const std::string& op : operators_) {
    std::memcpy(out.data() + at, op.data(), kOperatorIdBytes);
    at += kOperatorIdBytes;
  }
  PutLittleEndian(out.data() + at, taps_, 4);
  out.insert(out.end(), entries_.begin(), entries_.end());
  return out;
}

void TapPackBuilder::Clear() {
  ok_ = true;
  taps_ = 0;
  entries_.clear();
  operators_.clear();
  operator_index_.clear();
  last_operator_.clear();
  last_index_ = 0;
}

Status ForEachPackedTap(ByteView pack, int64_t first_seq, int64_t taps, SeqRange seqs,
                        int64_t clearing_day,
                        const std::function<Status(const DayTapSummary&)>& visit) {
  if (pack.size() < kPackHeadBytes || pack[0] != kTapPackFormatVersion) {
    return CorruptPack(first_seq, "unknown format");
  }
  const size_t operators = LittleEndianAt(pack.data() + 1, 2);
  const size_t count_at = kPackHeadBytes + operators * kOperatorIdBytes;
  if (pack.size() < count_at + kPackCountBytes) return CorruptPack(first_seq, "cut short");
  const uint64_t count = LittleEndianAt(pack.data() + count_at, 4);
  const size_t entries_at = count_at + kPackCountBytes;
  if (taps < 0 || count != static_cast<uint64_t>(taps) ||
      pack.size() != entries_at + count * kTapPackEntryBytes) {
    return CorruptPack(first_seq, "its size is not its taps'");
  }
  std::vector<std::string_view> names(operators);
  for (size_t i = 0; i < operators; ++i) {
    names[i] = OperatorIn(pack.data() + kPackHeadBytes + i * kOperatorIdBytes);
  }
  // Only the entries inside `seqs`: a pack cut by an end of the stretch (the two halves of a
  // day read apart) gives each side its own taps.
  const int64_t from = std::max<int64_t>(seqs.first, first_seq) - first_seq;
  const int64_t to = std::min<int64_t>(seqs.last, first_seq + taps - 1) - first_seq;
  for (int64_t i = from; i <= to; ++i) {
    const uint8_t* e = pack.data() + entries_at + static_cast<size_t>(i) * kTapPackEntryBytes;
    const int64_t day = static_cast<int32_t>(LittleEndianAt(e + kEntryDay, 4));
    if (day != clearing_day) continue;
    DayTapSummary tap;
    tap.seq = first_seq + i;
    CITYCARD_RETURN_IF_ERROR(TypeAndProfile(tap.seq, e[kEntryType], e[kEntryProfile], &tap));
    const size_t op = LittleEndianAt(e + kEntryOperator, 2);
    if (op >= operators) return Corrupt(tap.seq, "operator index out of its pack");
    tap.card_no = LittleEndianAt(e + kEntryCard, 8);
    tap.time_s = static_cast<int64_t>(LittleEndianAt(e + kEntryTime, 8));
    tap.amount_fen = static_cast<int64_t>(LittleEndianAt(e + kEntryAmount, 8));
    tap.operator_id = names[op];
    tap.late = (e[kEntryFlags] & kTapPackLate) != 0;
    tap.paid = (e[kEntryFlags] & kTapPackPaid) != 0;
    CITYCARD_RETURN_IF_ERROR(visit(tap));
  }
  return Status::Ok();
}

}  // namespace citycard::db
