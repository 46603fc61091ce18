#include "core/settlement_reads.h"

#include "core/account_plan.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

namespace citycard {

namespace {

// Hash of an (account, transfer code) pair.
struct AccountCodeKeyHash {
  size_t operator()(const std::pair<uint64_t, uint16_t>& key) const {
    return std::hash<uint64_t>()(key.first * 65536u + key.second);
  }
};

}  // namespace

Status SumPostedMovementsFromStore(LedgerStore& ledger, int64_t first_seq, int64_t last_seq,
                                   std::optional<AccountKind> only_kind,
                                   std::vector<AccountCodeSum>* out) {
  std::unordered_map<std::pair<uint64_t, uint16_t>, AccountCodeSum, AccountCodeKeyHash> sums;
  std::vector<TransferRecord> page;
  int64_t after = first_seq - 1;
  bool more = first_seq <= last_seq;
  while (more) {
    page.clear();
    CITYCARD_RETURN_IF_ERROR(ledger.ScanTransfers(after, kSettlementLedgerPageTransfers, &page));
    more = page.size() == kSettlementLedgerPageTransfers;
    for (const TransferRecord& record : page) {
      if (record.seq > last_seq) {
        more = false;
        break;
      }
      after = record.seq;
      const Transfer& t = record.transfer;
      if ((t.flags & kTransferNotPostedFlags) != 0) continue;
      AccountCodeSum& credit = sums[{t.credit_account_id, t.code}];
      credit.transfers += 1;
      credit.credits_fen += t.amount_fen;
      AccountCodeSum& debit = sums[{t.debit_account_id, t.code}];
      debit.transfers += 1;
      debit.debits_fen += t.amount_fen;
    }
  }
  out->reserve(out->size() + sums.size());
  for (auto& [key, sum] : sums) {
    if (only_kind.has_value() && AccountIdKind(key.first) != *only_kind) continue;
    sum.account_id = key.first;
    sum.code = key.second;
    out->push_back(sum);
  }
  return Status::Ok();
}

Status ForEachDayTapFromStore(TapStore& taps, int64_t clearing_day, std::optional<SeqRange> seqs,
                              const std::function<Status(const DayTapSummary&)>& visit) {
  std::vector<StoredTap> page;
  int64_t after = seqs.has_value() ? seqs->first - 1 : 0;
  for (;;) {
    page.clear();
    CITYCARD_RETURN_IF_ERROR(taps.ScanDayTaps(clearing_day, after, kSettlementTapPageTaps, &page));
    for (const StoredTap& tap : page) {
      if (seqs.has_value() && tap.seq > seqs->last) return Status::Ok();
      after = tap.seq;
      DayTapSummary summary;
      summary.seq = tap.seq;
      summary.card_no = tap.record.card_no;
      summary.type = tap.record.type;
      summary.profile = tap.record.profile;
      summary.amount_fen = tap.record.amount_fen;
      summary.time_s = tap.record.time_s;
      summary.operator_id = tap.record.operator_id;
      summary.late = tap.late;
      summary.paid = !tap.transfer_id.IsZero();
      CITYCARD_RETURN_IF_ERROR(visit(summary));
    }
    if (page.size() < kSettlementTapPageTaps) return Status::Ok();
  }
}

Result<std::optional<SeqRange>> DayTapSeqsFromStore(TapStore& taps, int64_t clearing_day) {
  std::optional<SeqRange> seqs;
  CITYCARD_RETURN_IF_ERROR(ForEachDayTapFromStore(
      taps, clearing_day, std::nullopt, [&seqs](const DayTapSummary& tap) -> Status {
        if (!seqs.has_value()) seqs = SeqRange{tap.seq, tap.seq};
        seqs->last = tap.seq;
        return Status::Ok();
      }));
  return seqs;
}

Status FindRebateCardsFromRegistry(RegistryStore& registry, std::span<const std::string> card_nos,
                                   std::vector<RebateCardState>* out) {
  CITYCARD_ASSERT(std::adjacent_find(card_nos.begin(), card_nos.end(),
                                     std::greater_equal<>()) == card_nos.end());
  for (const std::string& card_no : card_nos) {
    auto card = registry.FindCard(card_no);
    if (!card.ok()) return card.status();
    if (!card->has_value()) continue;
    const Card& c = **card;
    out->push_back(
        RebateCardState{c.card_no, c.status, c.purse_account_id, c.replaced_by, c.balance_moved_s});
  }
  return Status::Ok();
}

}  // namespace citycard
