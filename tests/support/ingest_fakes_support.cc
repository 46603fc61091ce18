#include "tests/support/ingest_fakes_support.h"

#include <algorithm>

namespace citycard::testing {

// ---- MemoryTapStore --------------------------------------------------------------------

void MemoryTapStore::Begin() {
  CITYCARD_ASSERT(!snapshot_);
  snapshot_ = state_;
}
void MemoryTapStore::Commit() {
  CITYCARD_ASSERT(snapshot_);
  snapshot_.reset();
}
void MemoryTapStore::Rollback() {
  if (!snapshot_) return;
  state_ = std::move(*snapshot_);
  snapshot_.reset();
}

Result<std::optional<StoredTap>> MemoryTapStore::FindByTerminalCounter(std::string_view terminal_id,
                                                                       uint32_t ttc) {
  auto it = state_.by_terminal.find({std::string(terminal_id), ttc});
  if (it == state_.by_terminal.end()) return std::optional<StoredTap>();
  return std::optional<StoredTap>(state_.taps.at(it->second));
}

Result<std::optional<StoredTap>> MemoryTapStore::FindByCardCounter(uint64_t card_no, uint32_t ctc) {
  auto it = state_.by_card.find({card_no, ctc});
  if (it == state_.by_card.end()) return std::optional<StoredTap>();
  return std::optional<StoredTap>(state_.taps.at(it->second));
}

Result<std::optional<CardCounterState>> MemoryTapStore::LoadCardCounterState(uint64_t card_no) {
  auto it = state_.by_card.lower_bound({card_no + 1, 0});
  if (it == state_.by_card.begin()) return std::optional<CardCounterState>();
  --it;
  if (it->first.first != card_no) return std::optional<CardCounterState>();
  const TapRecord& r = state_.taps.at(it->second).record;
  int64_t after = r.type == TapType::load ? r.balance_before_fen + r.amount_fen
                                          : r.balance_before_fen - r.amount_fen;
  return std::optional<CardCounterState>(
      CardCounterState{card_no, r.card_counter, after, r.tac_key_version});
}

Result<int64_t> MemoryTapStore::SumPaidAfter(uint64_t card_no, uint32_t after_counter) {
  int64_t sum = 0;
  for (auto it = state_.by_card.upper_bound({card_no, after_counter});
       it != state_.by_card.end() && it->first.first == card_no; ++it) {
    const TapRecord& r = state_.taps.at(it->second).record;
    if (r.type != TapType::load) sum += r.amount_fen;
  }
  return sum;
}

Result<std::vector<CounterGap>> MemoryTapStore::LoadGaps(GapKind kind, uint64_t card_no,
                                                         std::string_view terminal_id) {
  std::vector<CounterGap> out;
  for (const CounterGap& g : state_.gaps) {
    if (g.kind != kind) continue;
    if (kind == GapKind::card ? g.card_no == card_no : g.terminal_id == terminal_id) {
      out.push_back(g);
    }
  }
  std::sort(out.begin(), out.end(), [](const CounterGap& a, const CounterGap& b) { return a.from < b.from; });
  return out;
}

Status MemoryTapStore::Write(const IngestWrite& write) {
  if (fail_next_write_) {
    fail_next_write_ = false;
    return Status::Internal("injected_fault", "write failed on purpose");
  }
  ++writes_;
  for (StoredTap tap : write.taps) {
    auto tkey = std::make_pair(tap.record.terminal_id, tap.record.terminal_counter);
    auto ckey = std::make_pair(tap.record.card_no, tap.record.card_counter);
    if (state_.by_terminal.count(tkey) || state_.by_card.count(ckey)) {
      return Status::Internal("tap_exists", "tap exists");
    }
    tap.seq = state_.next_seq++;
    state_.by_terminal[tkey] = tap.seq;
    state_.by_card[ckey] = tap.seq;
    state_.taps[tap.seq] = tap;
  }
  for (Alert a : write.alerts) {
    a.seq = static_cast<int64_t>(state_.alerts.size()) + 1;
    state_.alerts.push_back(a);
  }
  for (const CounterGap& r : write.gaps_removed) {
    std::erase_if(state_.gaps, [&](const CounterGap& g) {
      return g.kind == r.kind && g.card_no == r.card_no && g.terminal_id == r.terminal_id &&
             g.from == r.from;
    });
  }
  for (const CounterGap& g : write.gaps_added) state_.gaps.push_back(g);
  for (const TopupRecord& t : write.topups) state_.topups[{t.terminal_id, t.request_id}] = t;
  for (const DayOperatorTotals& d : write.day_deltas) {
    DayOperatorTotals& t = state_.day[{d.clearing_day, d.operator_id}];
    t.clearing_day = d.clearing_day;
    t.operator_id = d.operator_id;
    t.taps += d.taps;
    t.full_fare_fen += d.full_fare_fen;
    t.concession_fen += d.concession_fen;
    t.transfer_discount_fen += d.transfer_discount_fen;
    t.paid_fen += d.paid_fen;
    t.late_taps += d.late_taps;
    t.loads += d.loads;
    t.load_fen += d.load_fen;
  }
  return Status::Ok();
}

Result<std::optional<TopupRecord>> MemoryTapStore::FindTopup(std::string_view terminal_id,
                                                             uint64_t request_id) {
  auto it = state_.topups.find({std::string(terminal_id), request_id});
  if (it == state_.topups.end()) return std::optional<TopupRecord>();
  return std::optional<TopupRecord>(it->second);
}

Result<std::optional<TopupRecord>> MemoryTapStore::FindTopupByAuthorisation(uint64_t id) {
  for (const auto& [key, t] : state_.topups) {
    if (t.authorisation_id == id) return std::optional<TopupRecord>(t);
  }
  return std::optional<TopupRecord>();
}

Result<std::vector<TopupRecord>> MemoryTapStore::ListOpenTopups() {
  std::vector<TopupRecord> out;
  for (const auto& [key, t] : state_.topups) {
    if (t.status == TopupStatus::pending || t.status == TopupStatus::expired) out.push_back(t);
  }
  return out;
}

Status MemoryTapStore::RecordTerminalDenylistVersion(std::string_view terminal_id, int64_t version,
                                                     int64_t terminal_time_ms) {
  auto& list = state_.reports[std::string(terminal_id)];
  if (!list.empty() && list.back().version >= version) return Status::Ok();
  list.push_back({version, terminal_time_ms});
  return Status::Ok();
}

Result<std::vector<TerminalDenylistReport>> MemoryTapStore::LoadTerminalDenylistReports(
    std::string_view terminal_id) {
  auto it = state_.reports.find(std::string(terminal_id));
  if (it == state_.reports.end()) return std::vector<TerminalDenylistReport>();
  return it->second;
}

Result<std::vector<Alert>> MemoryTapStore::ListAlerts(const AlertFilter& filter) {
  std::vector<Alert> out;
  for (auto it = state_.alerts.rbegin(); it != state_.alerts.rend(); ++it) {
    if (filter.kind && it->kind != *filter.kind) continue;
    if (filter.card_no && it->card_no != *filter.card_no) continue;
    if (filter.terminal_id && it->terminal_id != *filter.terminal_id) continue;
    if (out.size() >= std::min(filter.limit, kAlertListMax)) break;
    out.push_back(*it);
  }
  return out;
}

Result<std::vector<CounterGap>> MemoryTapStore::ListGaps(GapKind kind) {
  std::vector<CounterGap> out;
  for (const CounterGap& g : state_.gaps) {
    if (g.kind == kind) out.push_back(g);
  }
  return out;
}

Result<std::vector<DayOperatorTotals>> MemoryTapStore::DayTotals(int64_t clearing_day) {
  std::vector<DayOperatorTotals> out;
  for (const auto& [key, t] : state_.day) {
    if (key.first == clearing_day) out.push_back(t);
  }
  return out;
}

Status MemoryTapStore::ScanDayTaps(int64_t clearing_day, int64_t after_seq, size_t limit,
                                   std::vector<StoredTap>* out) {
  for (auto it = state_.taps.upper_bound(after_seq); it != state_.taps.end(); ++it) {
    if (out->size() >= limit) break;
    if (it->second.clearing_day == clearing_day) out->push_back(it->second);
  }
  return Status::Ok();
}

Status MemoryTapStore::CardTaps(uint64_t card_no, size_t limit, std::vector<StoredTap>* out) {
  for (auto it = state_.by_card.lower_bound({card_no, 0});
       it != state_.by_card.end() && it->first.first == card_no && out->size() < limit; ++it) {
    out->push_back(state_.taps.at(it->second));
  }
  return Status::Ok();
}

// ---- JointLedgerStore ------------------------------------------------------------------

Status JointLedgerStore::Begin() {
  taps_.Begin();
  return inner_.Begin();
}
Status JointLedgerStore::Commit() {
  Status s = inner_.Commit();
  if (s.ok()) taps_.Commit();
  return s;
}
Status JointLedgerStore::Rollback() {
  taps_.Rollback();
  return inner_.Rollback();
}

// ---- FakeTapAuthenticator --------------------------------------------------------------

namespace {

template <size_t N>
std::array<uint8_t, N> Mix(ByteView prefix, ByteView data) {
  Bytes all(prefix.begin(), prefix.end());
  all.insert(all.end(), data.begin(), data.end());
  Sha256Digest d = FakeDigester().Sha256(all);
  std::array<uint8_t, N> out{};
  std::copy_n(d.begin(), N, out.begin());
  return out;
}

const TerminalKey* KeyOf(const Terminal& terminal, uint8_t version) {
  for (const TerminalKey& k : terminal.keys) {
    if (k.version == version) return &k;
  }
  return nullptr;
}

Bytes TacPrefix(uint8_t version) { return Bytes{'t', 'a', 'c', version}; }

}  // namespace

std::array<uint8_t, kTacBytes> FakeTapAuthenticator::Tac(const TapRecord& record) {
  return Mix<kTacBytes>(TacPrefix(record.tac_key_version), TacInput(record));
}

std::array<uint8_t, kTerminalMacBytes> FakeTapAuthenticator::Mac(ByteView key,
                                                                 const TapRecord& record) {
  return Mix<kTerminalMacBytes>(key, TerminalMacInput(record));
}

void FakeTapAuthenticator::Sign(const Terminal& terminal, TapRecord* record, bool keep_tac) {
  if (!keep_tac) record->tac = Tac(*record);
  const TerminalKey* key = KeyOf(terminal, record->terminal_key_version);
  CITYCARD_ASSERT(key != nullptr);
  record->terminal_mac = Mac(key->wrapped_key, *record);
}

TerminalMacVerdict FakeTapAuthenticator::VerifyTerminalMac(const Terminal& terminal,
                                                           const TapRecord& record) {
  const TerminalKey* key = KeyOf(terminal, record.terminal_key_version);
  if (key == nullptr) return TerminalMacVerdict::unknown_key_version;
  if (key->revoked) return TerminalMacVerdict::key_revoked;
  return Mac(key->wrapped_key, record) == record.terminal_mac ? TerminalMacVerdict::valid
                                                               : TerminalMacVerdict::mac_mismatch;
}

TacVerdict FakeTapAuthenticator::VerifyTac(const TapRecord& record) {
  if (std::all_of(record.tac.begin(), record.tac.end(), [](uint8_t b) { return b == 0; })) {
    return TacVerdict::missing;
  }
  if (record.tac_key_version == 0 || record.tac_key_version > kFakeCardKeyVersionMax) {
    return TacVerdict::unknown_key_version;
  }
  return Tac(record) == record.tac ? TacVerdict::valid : TacVerdict::mismatch;
}

bool FakeTapAuthenticator::LoadAuthorisation(uint8_t version, const LoadFields& fields,
                                             LoadMacBytes* out) {
  if (version == 0 || version > kFakeCardKeyVersionMax) return false;
  *out = Mix<kLoadMacBytes>(TacPrefix(version), LoadAuthInput(fields));
  return true;
}

bool FakeTapAuthenticator::VerifyLoadConfirmation(uint8_t version, const LoadFields& fields,
                                                  int64_t balance_after_fen, ByteView mac) {
  if (version == 0 || version > kFakeCardKeyVersionMax) return false;
  auto expected = Mix<kLoadMacBytes>(TacPrefix(version), LoadConfirmInput(fields, balance_after_fen));
  return mac.size() == expected.size() && std::equal(mac.begin(), mac.end(), expected.begin());
}

bool FakeTapAuthenticator::VerifyCardProof(uint64_t card_no, uint8_t version, ByteView input,
                                           ByteView proof) {
  Bytes prefix = {'p', 'r', 'o', 'o', 'f', version};
  ByteWriter(&prefix).U64(card_no);
  auto expected = Mix<8>(prefix, input);
  return proof.size() == 8 && std::equal(proof.begin(), proof.end(), expected.begin());
}

}  // namespace citycard::testing
