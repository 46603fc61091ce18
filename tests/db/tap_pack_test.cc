// The tap pack's codec (db/tap_pack.h, docs/tap-packs.md): what a pack gives back is what the
// records it was built from hold, and a pack that is not one is refused, whatever its bytes.
#include "db/tap_pack.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "core/tap_record.h"

namespace citycard::db {
namespace {

TapRecord Record(uint32_t n, std::string op = "BUS1") {
  TapRecord r;
  r.type = n % 3 == 0 ? TapType::metro_exit : TapType::purchase;
  r.profile = n % 2 == 0 ? Profile::student : Profile::adult;
  r.card_no = 8607550000000000 + n;
  r.card_counter = n;
  r.balance_before_fen = 5000;
  r.amount_fen = 100 + n;
  r.terminal_id = "T1";
  r.terminal_counter = n;
  r.time_s = 1'700'000'000 + n;
  r.operator_id = std::move(op);
  return r;
}

struct Packed {
  std::vector<Bytes> records;
  Bytes pack;
};

// Taps 1..n, day 19000 except every fourth (19001); every fifth late, odd ones paid.
Packed Pack(uint32_t n) {
  Packed p;
  TapPackBuilder b;
  for (uint32_t i = 1; i <= n; ++i) {
    p.records.push_back(EncodeTapRecord(Record(i, i % 7 == 0 ? "METRO-LINE-0001A" : "BUS1")));
    b.Add(p.records.back(), i % 4 == 0 ? 19001 : 19000, i % 5 == 0, i % 2 == 1);
  }
  REQUIRE(b.ok());
  CHECK(b.taps() == n);
  p.pack = b.Finish();
  return p;
}

// The summaries as ForEachPackedTap gives them, operator ids kept beside.
std::vector<std::pair<DayTapSummary, std::string>> Read(const Bytes& pack, int64_t first_seq,
                                                        int64_t taps, SeqRange seqs, int64_t day) {
  std::vector<std::pair<DayTapSummary, std::string>> out;
  Status s = ForEachPackedTap(pack, first_seq, taps, seqs, day, [&](const DayTapSummary& t) {
    out.emplace_back(t, std::string(t.operator_id));
    out.back().first.operator_id = {};
    return Status::Ok();
  });
  REQUIRE(s.ok());
  return out;
}

}  // namespace

TEST_CASE("A pack gives back each tap of the day as its record, day and flags have it",
          "[db][tap_pack]") {
  Packed p = Pack(20);
  auto read = Read(p.pack, 101, 20, {101, 120}, 19000);
  REQUIRE(read.size() == 15);  // the five of day 19001 left out
  size_t k = 0;
  for (uint32_t i = 1; i <= 20; ++i) {
    if (i % 4 == 0) continue;
    DayTapSummary want;
    REQUIRE(SummaryFromRecord(100 + i, p.records[i - 1], &want).ok());
    const std::string want_op(want.operator_id);
    want.operator_id = {};
    want.late = i % 5 == 0;
    want.paid = i % 2 == 1;
    CHECK(read[k].first == want);
    CHECK(read[k].second == want_op);
    ++k;
  }
  CHECK(read[0].first.card_no == 8607550000000001);
  CHECK(read[0].first.amount_fen == 101);
  CHECK(read[0].first.time_s == 1'700'000'001);
  CHECK(read[0].first.profile == Profile::adult);
  CHECK(read[1].first.profile == Profile::student);
  CHECK(read[2].first.type == TapType::metro_exit);
  CHECK(read[5].first.seq == 107);
  CHECK(read[5].second == "METRO-LINE-0001A");  // all 16 bytes of the field
  CHECK(read[3].first.late);  // tap 5
  CHECK(read[3].first.paid);

  auto other = Read(p.pack, 101, 20, {101, 120}, 19001);
  REQUIRE(other.size() == 5);
  CHECK(other[0].first.seq == 104);
  CHECK(Read(p.pack, 101, 20, {101, 120}, 18999).empty());
}

TEST_CASE("A pack read over a stretch gives only the taps whose seqs are in it",
          "[db][tap_pack]") {
  Packed p = Pack(10);
  auto seqs = [&](SeqRange r) {
    std::vector<int64_t> out;
    for (const auto& t : Read(p.pack, 1, 10, r, 19000)) out.push_back(t.first.seq);
    return out;
  };
  CHECK(seqs({1, 10}) == std::vector<int64_t>{1, 2, 3, 5, 6, 7, 9, 10});
  CHECK(seqs({3, 6}) == std::vector<int64_t>{3, 5, 6});
  CHECK(seqs({-5, 2}) == std::vector<int64_t>{1, 2});
  CHECK(seqs({9, 500}) == std::vector<int64_t>{9, 10});
  CHECK(seqs({11, 20}).empty());
  CHECK(seqs({4, 4}).empty());
}

TEST_CASE("A pack's read stops at the first failing visit", "[db][tap_pack]") {
  Packed p = Pack(5);
  int visits = 0;
  Status s = ForEachPackedTap(p.pack, 1, 5, {1, 5}, 19000, [&](const DayTapSummary&) {
    return ++visits == 2 ? Status::Internal("stop_here", "the second tap") : Status::Ok();
  });
  CHECK(s.code() == "stop_here");
  CHECK(visits == 2);
}

TEST_CASE("A tap that cannot be packed leaves the whole write without a pack",
          "[db][tap_pack]") {
  const Bytes record = EncodeTapRecord(Record(1));
  SECTION("a clearing day beyond 32 bits") {
    TapPackBuilder b;
    b.Add(record, 19000, false, true);
    b.Add(record, int64_t{1} << 40, false, true);
    CHECK_FALSE(b.ok());
    CHECK(b.taps() == 2);
    b.Clear();
    b.Add(record, 19000, false, true);
    CHECK(b.ok());
  }
  SECTION("a record of the wrong size") {
    TapPackBuilder b;
    b.Add(ByteView(record.data(), record.size() - 1), 19000, false, true);
    CHECK_FALSE(b.ok());
  }
  SECTION("more operators than the index can name") {
    TapPackBuilder b;
    for (size_t i = 0; i < kTapPackOperatorsMax; ++i) {
      b.Add(EncodeTapRecord(Record(1, fmt::format("OP{}", i))), 19000, false, true);
    }
    REQUIRE(b.ok());
    b.Add(EncodeTapRecord(Record(1, "OP0")), 19000, false, true);  // named already
    REQUIRE(b.ok());
    b.Add(EncodeTapRecord(Record(1, "ONE-TOO-MANY")), 19000, false, true);
    CHECK_FALSE(b.ok());
  }
}

TEST_CASE("A pack that is not one is refused as corrupt, whatever its bytes", "[db][tap_pack]") {
  Packed p = Pack(3);
  auto refused = [](const Bytes& pack, int64_t taps) {
    Status s = ForEachPackedTap(pack, 1, taps, {1, 3}, 19000,
                                [](const DayTapSummary&) { return Status::Ok(); });
    return s.code() == "tap_store_corrupt";
  };
  CHECK_FALSE(refused(p.pack, 3));
  CHECK(refused(p.pack, 2));  // the row's count is not the blob's
  for (size_t cut = 0; cut < p.pack.size(); ++cut) {
    INFO("cut to " << cut << " bytes");
    CHECK(refused(Bytes(p.pack.begin(), p.pack.begin() + static_cast<long>(cut)), 3));
  }
  Bytes version = p.pack;
  version[0] = 2;
  CHECK(refused(version, 3));
  const size_t first_entry = 1 + 2 + 16 + 4;  // one operator
  Bytes type = p.pack;
  type[first_entry + 28] = 0xEE;
  CHECK(refused(type, 3));
  Bytes profile = p.pack;
  profile[first_entry + 29] = 0xEE;
  CHECK(refused(profile, 3));
  Bytes op = p.pack;
  op[first_entry + 31] = 1;  // the pack names one operator, index 0
  CHECK(refused(op, 3));
}

TEST_CASE("A record that is not a tap record is refused as corrupt", "[db][tap_pack]") {
  Bytes record = EncodeTapRecord(Record(1));
  DayTapSummary tap;
  CHECK(SummaryFromRecord(1, record, &tap).ok());
  CHECK(SummaryFromRecord(1, ByteView(record.data(), 10), &tap).code() == "tap_store_corrupt");
  record[0] = 9;
  CHECK(SummaryFromRecord(1, record, &tap).code() == "tap_store_corrupt");
  record[0] = kTapRecordFormatVersion;
  record[kRecordTypeOffset] = 0xEE;
  CHECK(SummaryFromRecord(1, record, &tap).code() == "tap_store_corrupt");
}

}  // namespace citycard::db

namespace citycard::db {

TEST_CASE("A pack written from the format's document is the builder's pack, byte for byte",
          "[db][tap_pack]") {
  // tests/fuzz/make_corpus.py writes this seed from docs/tap-packs.md alone: the two tap
  // records of docs/protocol.md, day 19000, paid.
  std::ifstream file(std::string(CITYCARD_FUZZ_CORPUS) + "/tap_pack/seed-both",
                     std::ios::binary);
  REQUIRE(file);
  const Bytes seed((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::vector<std::pair<DayTapSummary, std::string>> read;
  REQUIRE(ForEachPackedTap(seed, 1, 2, {1, 2}, 19000, [&](const DayTapSummary& t) {
            read.emplace_back(t, std::string(t.operator_id));
            return Status::Ok();
          }).ok());
  REQUIRE(read.size() == 2);
  TapPackBuilder builder;
  for (const auto& [tap, op] : read) {
    CHECK(tap.paid);
    CHECK_FALSE(tap.late);
    TapRecord r = Record(1, op);
    r.type = tap.type;
    r.profile = tap.profile;
    r.card_no = tap.card_no;
    r.amount_fen = tap.amount_fen;
    r.time_s = tap.time_s;
    builder.Add(EncodeTapRecord(r), 19000, false, true);
  }
  REQUIRE(builder.ok());
  CHECK(builder.Finish() == seed);
}

}  // namespace citycard::db
