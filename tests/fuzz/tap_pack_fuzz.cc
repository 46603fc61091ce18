// Fuzz target: the tap pack decoder (db/tap_pack.h, docs/tap-packs.md, docs/fuzzing.md). The
// input is read as the pack of a row whose tap count is the count the blob itself gives (when
// its header can be read that far, so that well-formed packs reach the entries), over the
// whole stretch of its seqs and over a stretch inside it, for the clearing day of its first
// entry.
//
// Checked, beyond "does not crash":
// - a refusal is Kind::internal "tap_store_corrupt";
// - the taps visited have ascending seqs inside both the pack and the stretch asked for, a
//   known type and profile, the day asked for, and an operator id of at most 16 bytes;
// - the inner stretch visits exactly the taps of the whole read that fall inside it.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "core/tap_record.h"
#include "db/tap_pack.h"

namespace {

using namespace citycard;

constexpr int64_t kFirstSeq = 1'000;

uint64_t LittleEndian(const uint8_t* p, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// The tap count and first entry's day the blob claims, where its header reaches that far.
void Claims(ByteView pack, int64_t* taps, int64_t* day) {
  *taps = 0;
  *day = 0;
  if (pack.size() < 3) return;
  const size_t count_at = 3 + LittleEndian(pack.data() + 1, 2) * kOperatorIdBytes;
  if (pack.size() < count_at + 4) return;
  *taps = static_cast<int64_t>(LittleEndian(pack.data() + count_at, 4));
  if (pack.size() >= count_at + 4 + 28) {
    *day = static_cast<int32_t>(LittleEndian(pack.data() + count_at + 4 + 24, 4));
  }
}

std::vector<int64_t> Read(ByteView pack, int64_t taps, SeqRange seqs, int64_t day, bool* ok) {
  std::vector<int64_t> seen;
  Status s = db::ForEachPackedTap(pack, kFirstSeq, taps, seqs, day, [&](const DayTapSummary& t) {
    CITYCARD_ASSERT(t.seq >= seqs.first && t.seq <= seqs.last);
    CITYCARD_ASSERT(t.seq >= kFirstSeq && t.seq < kFirstSeq + taps);
    CITYCARD_ASSERT(seen.empty() || t.seq > seen.back());
    CITYCARD_ASSERT(TapTypeName(t.type) != "unknown");
    CITYCARD_ASSERT(t.operator_id.size() <= kOperatorIdBytes);
    seen.push_back(t.seq);
    return Status::Ok();
  });
  *ok = s.ok();
  if (!s.ok()) {
    CITYCARD_ASSERT(s.kind() == Kind::internal);
    CITYCARD_ASSERT(s.code() == "tap_store_corrupt");
  }
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView pack(data, size);
  int64_t taps = 0;
  int64_t day = 0;
  Claims(pack, &taps, &day);
  bool whole_ok = false;
  std::vector<int64_t> whole = Read(pack, taps, {kFirstSeq, kFirstSeq + taps}, day, &whole_ok);
  const SeqRange inner{kFirstSeq + 1, kFirstSeq + taps / 2};
  bool inner_ok = false;
  std::vector<int64_t> part = Read(pack, taps, inner, day, &inner_ok);
  if (whole_ok && inner_ok) {
    std::vector<int64_t> expected;
    for (int64_t seq : whole) {
      if (seq >= inner.first && seq <= inner.last) expected.push_back(seq);
    }
    CITYCARD_ASSERT(part == expected);
  }
  return 0;
}
