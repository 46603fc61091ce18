// Test fakes for tap ingest (core/ingest.h): an in-memory TapStore, a LedgerStore decorator
// that makes the tap store share the ledger's (and so the registry's) transactions, as the
// SQLite stores share one connection, and a TapAuthenticator whose "MACs" are a deterministic
// non-cryptographic mix, so that core tests can forge and sign records without OpenSSL.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/ledger_store.h"
#include "core/tap_authenticator.h"
#include "core/tap_store.h"
#include "tests/support/memory_ledger_store_support.h"

namespace citycard::testing {

class MemoryTapStore final : public TapStore {
 public:
  Result<std::optional<StoredTap>> FindByTerminalCounter(std::string_view terminal_id,
                                                         uint32_t terminal_counter) override;
  Result<std::optional<StoredTap>> FindByCardCounter(uint64_t card_no,
                                                     uint32_t card_counter) override;
  Result<std::optional<CardCounterState>> LoadCardCounterState(uint64_t card_no) override;
  Result<int64_t> SumPaidAfter(uint64_t card_no, uint32_t after_counter) override;
  Result<std::vector<CounterGap>> LoadGaps(GapKind kind, uint64_t card_no,
                                           std::string_view terminal_id) override;
  Status Write(const IngestWrite& write) override;
  Result<std::optional<TopupRecord>> FindTopup(std::string_view terminal_id,
                                               uint64_t request_id) override;
  Result<std::optional<TopupRecord>> FindTopupByAuthorisation(uint64_t authorisation_id) override;
  Result<std::vector<TopupRecord>> ListOpenTopups() override;
  Status RecordTerminalDenylistVersion(std::string_view terminal_id, int64_t version,
                                       int64_t terminal_time_ms) override;
  Result<std::vector<TerminalDenylistReport>> LoadTerminalDenylistReports(
      std::string_view terminal_id) override;
  Result<std::vector<Alert>> ListAlerts(const AlertFilter& filter) override;
  Result<std::vector<CounterGap>> ListGaps(GapKind kind) override;
  Result<std::vector<DayOperatorTotals>> DayTotals(int64_t clearing_day) override;
  Status ScanDayTaps(int64_t clearing_day, int64_t after_seq, size_t limit,
                     std::vector<StoredTap>* out) override;
  Status CardTaps(uint64_t card_no, size_t limit, std::vector<StoredTap>* out) override;

  // Transactions, driven by JointLedgerStore.
  void Begin();
  void Commit();
  void Rollback();
  // The next Write fails with Kind::internal "injected_fault".
  void FailNextWrite() { fail_next_write_ = true; }
  size_t tap_count() const { return state_.taps.size(); }
  int writes() const { return writes_; }

 private:
  struct State {
    std::map<int64_t, StoredTap> taps;  // by seq
    std::map<std::pair<std::string, uint32_t>, int64_t> by_terminal;
    std::map<std::pair<uint64_t, uint32_t>, int64_t> by_card;
    std::vector<Alert> alerts;
    std::vector<CounterGap> gaps;
    std::map<std::pair<std::string, uint64_t>, TopupRecord> topups;
    std::map<std::string, std::vector<TerminalDenylistReport>> reports;
    std::map<std::pair<int64_t, std::string>, DayOperatorTotals> day;
    int64_t next_seq = 1;
  };
  State state_;
  std::optional<State> snapshot_;
  bool fail_next_write_ = false;
  int writes_ = 0;
};

// Forwards everything to `inner`, and begins, commits and rolls back `taps` with it.
class JointLedgerStore final : public LedgerStore {
 public:
  JointLedgerStore(MemoryLedgerStore& inner, MemoryTapStore& taps) : inner_(inner), taps_(taps) {}
  Status Begin() override;
  Status Commit() override;
  Status Rollback() override;
  Status LoadAccounts(std::span<const uint64_t> ids, std::vector<AccountRecord>* out) override {
    return inner_.LoadAccounts(ids, out);
  }
  Status LoadTransfers(std::span<const Id128> ids, std::vector<TransferRecord>* out) override {
    return inner_.LoadTransfers(ids, out);
  }
  Status LoadFailed(std::span<const Id128> ids, std::vector<FailedTransfer>* out) override {
    return inner_.LoadFailed(ids, out);
  }
  Status LoadTransfersBySeq(std::span<const int64_t> seqs,
                            std::vector<TransferRecord>* out) override {
    return inner_.LoadTransfersBySeq(seqs, out);
  }
  Status LoadExpiredPending(int64_t now_ms, size_t limit,
                            std::vector<TransferRecord>* out) override {
    return inner_.LoadExpiredPending(now_ms, limit, out);
  }
  Result<LedgerHead> LoadHead() override { return inner_.LoadHead(); }
  Status Write(const LedgerWrite& write) override { return inner_.Write(write); }
  Status ScanAccounts(const std::function<Status(const AccountRecord&)>& visit) override {
    return inner_.ScanAccounts(visit);
  }
  Status ScanTransfers(int64_t after_seq, size_t limit, std::vector<TransferRecord>* out) override {
    return inner_.ScanTransfers(after_seq, limit, out);
  }
  Status ScanBatches(int64_t after_seq, size_t limit, std::vector<BatchRecord>* out) override {
    return inner_.ScanBatches(after_seq, limit, out);
  }

 private:
  MemoryLedgerStore& inner_;
  MemoryTapStore& taps_;
};

// TAC: the first 8 bytes of FakeDigester("tac" || key version || TacInput); a card key
// version above kFakeCardKeyVersionMax is unknown. Terminal MAC: the first 16 bytes of
// FakeDigester(wrapped key || TerminalMacInput) under the terminal's key of the record's
// version (the registry's wrapped bytes stand in for the key). Load MACs likewise.
inline constexpr uint8_t kFakeCardKeyVersionMax = 2;

class FakeTapAuthenticator final : public TapAuthenticator {
 public:
  TerminalMacVerdict VerifyTerminalMac(const Terminal& terminal, const TapRecord& record) override;
  TacVerdict VerifyTac(const TapRecord& record) override;
  uint8_t CurrentCardKeyVersion() const override { return 1; }
  bool LoadAuthorisation(uint8_t card_key_version, const LoadFields& fields,
                         LoadMacBytes* out) override;
  bool VerifyLoadConfirmation(uint8_t card_key_version, const LoadFields& fields,
                              int64_t balance_after_fen, ByteView mac) override;
  // The proof is FakeDigester("proof" || version || card_no || input), first 8 bytes.
  bool VerifyCardProof(uint64_t card_no, uint8_t card_key_version, ByteView input,
                       ByteView proof) override;

  // What a card and a terminal compute.
  static std::array<uint8_t, kTacBytes> Tac(const TapRecord& record);
  static std::array<uint8_t, kTerminalMacBytes> Mac(ByteView key, const TapRecord& record);
  // Sets the TAC (unless keep_tac) and the MAC under `terminal`'s key of the record's version.
  static void Sign(const Terminal& terminal, TapRecord* record, bool keep_tac = false);
};

}  // namespace citycard::testing
