#include "core/settlement.h"

#include <algorithm>
#include <optional>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/settlement_reads.h"
#include "core/time.h"

namespace citycard {

namespace {

Status InvalidInput(std::string message) {
  return Status::Internal("invalid_settlement_input", std::move(message));
}

Status UnknownOperator(std::string_view id) {
  return Status::Internal("unknown_operator",
                          fmt::format("operator {} is not in the registry", id));
}

bool InRange(int64_t fen) { return fen >= 0 && fen <= kSettlementFenMax; }

// Adds `delta` to `*sum`, refusing a result outside 0..kSettlementFenMax (the inputs are
// checked to be in range, so the addition itself cannot overflow).
Status AddChecked(int64_t* sum, int64_t delta, std::string_view what, std::string_view op) {
  if (!InRange(delta) || !InRange(*sum + delta)) {
    return InvalidInput(fmt::format("operator {}: {} {} is outside 0..{}", op, what, delta,
                                    kSettlementFenMax));
  }
  *sum += delta;
  return Status::Ok();
}

using LineMap = std::map<std::string, OperatorSettlement>;

Result<OperatorSettlement*> LineFor(LineMap* lines,
                                    const std::map<std::string_view, const Operator*>& registry,
                                    const std::string& id) {
  auto found = lines->find(id);
  if (found != lines->end()) return &found->second;
  auto op = registry.find(id);
  if (op == registry.end()) return UnknownOperator(id);
  if (lines->size() >= kSettlementOperatorsMax) {
    return InvalidInput(fmt::format("more than {} operators", kSettlementOperatorsMax));
  }
  OperatorSettlement line;
  line.operator_id = id;
  line.name = op->second->name;
  line.kind = std::string(OperatorKindName(op->second->kind));
  line.fee_bp = op->second->fee_bp;
  return &lines->emplace(id, std::move(line)).first->second;
}

Status AddTaps(OperatorSettlement* line, const OperatorTapTotals& t) {
  const std::string& op = t.operator_id;
  CITYCARD_RETURN_IF_ERROR(AddChecked(&line->taps, t.taps, "taps", op));
  CITYCARD_RETURN_IF_ERROR(AddChecked(&line->paid_taps, t.paid_taps, "paid taps", op));
  CITYCARD_RETURN_IF_ERROR(AddChecked(&line->late_taps, t.late_taps, "late taps", op));
  CITYCARD_RETURN_IF_ERROR(AddChecked(&line->gross_fen, t.gross_fen, "gross", op));
  CITYCARD_RETURN_IF_ERROR(AddChecked(&line->concession_fen, t.concession_fen, "concession", op));
  CITYCARD_RETURN_IF_ERROR(
      AddChecked(&line->transfer_discount_fen, t.transfer_discount_fen, "transfer discount", op));
  CITYCARD_RETURN_IF_ERROR(AddChecked(&line->paid_fen, t.paid_fen, "paid", op));
  return AddChecked(&line->late_paid_fen, t.late_paid_fen, "late paid", op);
}

// Adds a figure that may be negative (a medical share less its reversals).
Status AddSigned(int64_t* sum, int64_t delta, std::string_view what, std::string_view op) {
  if (delta < -kSettlementFenMax || delta > kSettlementFenMax ||
      *sum + delta < -kSettlementFenMax || *sum + delta > kSettlementFenMax) {
    return InvalidInput(fmt::format("operator {}: {} {} is out of range", op, what, delta));
  }
  *sum += delta;
  return Status::Ok();
}

Status AddServices(OperatorSettlement* line, const OperatorServiceTotals& s) {
  const std::string& op = s.operator_id;
  CITYCARD_RETURN_IF_ERROR(AddChecked(&line->topups, s.topups, "top-ups", op));
  CITYCARD_RETURN_IF_ERROR(AddChecked(&line->topup_fen, s.topup_fen, "top-up amount", op));
  CITYCARD_RETURN_IF_ERROR(AddChecked(&line->medical_bills, s.medical_bills, "medical bills", op));
  CITYCARD_RETURN_IF_ERROR(
      AddSigned(&line->medical_fund_fen, s.medical_fund_fen, "medical fund share", op));
  CITYCARD_RETURN_IF_ERROR(
      AddSigned(&line->medical_holder_fen, s.medical_holder_fen, "holders' share", op));
  CITYCARD_RETURN_IF_ERROR(AddChecked(&line->bills, s.bills, "bills", op));
  CITYCARD_RETURN_IF_ERROR(AddChecked(&line->bills_amount_fen, s.bills_amount_fen, "bills", op));
  CITYCARD_RETURN_IF_ERROR(AddChecked(&line->passes, s.passes, "passes", op));
  return AddChecked(&line->passes_amount_fen, s.passes_amount_fen, "passes amount", op);
}

// What the day left on the operator's payable before the settlement's own transfers.
int64_t FeeBase(const OperatorSettlement& line) {
  return line.paid_fen - line.capping_rebate_fen + line.bills_amount_fen +
         line.passes_amount_fen + line.medical_fund_fen + line.medical_holder_fen;
}

// Derives the figures of a line from what was added to it, checking that they make sense.
Status FinishLine(OperatorSettlement* line) {
  const std::string& op = line->operator_id;
  if (line->paid_taps > line->taps || line->late_taps > line->taps) {
    return InvalidInput(fmt::format("operator {}: more paid or late taps than taps", op));
  }
  int64_t discounts = line->concession_fen + line->transfer_discount_fen + line->paid_fen;
  if (discounts > line->gross_fen) {
    return InvalidInput(fmt::format(
        "operator {}: concession {} + transfer discount {} + paid {} exceed the gross {}", op,
        line->concession_fen, line->transfer_discount_fen, line->paid_fen, line->gross_fen));
  }
  if (line->late_paid_fen > line->paid_fen) {
    return InvalidInput(fmt::format("operator {}: late paid exceeds paid", op));
  }
  if (line->capping_rebate_fen > line->paid_fen) {
    return InvalidInput(fmt::format("operator {}: capping rebate {} exceeds what it was paid {}",
                                    op, line->capping_rebate_fen, line->paid_fen));
  }
  line->other_discount_fen = line->gross_fen - discounts;
  line->fee_base_fen = FeeBase(*line);
  if (line->fee_base_fen > kSettlementFenMax || line->fee_base_fen < -kSettlementFenMax) {
    return InvalidInput(fmt::format("operator {}: fee base {} is out of range", op,
                                    line->fee_base_fen));
  }
  // A negative base (reversals above the day's takings) is owed back without a fee.
  line->fee_fen = line->fee_base_fen > 0 ? SettlementFeeFen(line->fee_base_fen, line->fee_bp) : 0;
  line->net_fen = line->fee_base_fen - line->fee_fen;
  return Status::Ok();
}

void AddToTotals(OperatorSettlement* totals, const OperatorSettlement& line) {
  totals->taps += line.taps;
  totals->paid_taps += line.paid_taps;
  totals->late_taps += line.late_taps;
  totals->gross_fen += line.gross_fen;
  totals->concession_fen += line.concession_fen;
  totals->transfer_discount_fen += line.transfer_discount_fen;
  totals->other_discount_fen += line.other_discount_fen;
  totals->paid_fen += line.paid_fen;
  totals->late_paid_fen += line.late_paid_fen;
  totals->capping_rebate_fen += line.capping_rebate_fen;
  totals->capped_cards += line.capped_cards;
  totals->fee_base_fen += line.fee_base_fen;
  totals->fee_fen += line.fee_fen;
  totals->net_fen += line.net_fen;
  totals->topups += line.topups;
  totals->topup_fen += line.topup_fen;
  totals->medical_bills += line.medical_bills;
  totals->medical_fund_fen += line.medical_fund_fen;
  totals->medical_holder_fen += line.medical_holder_fen;
  totals->bills += line.bills;
  totals->bills_amount_fen += line.bills_amount_fen;
  totals->passes += line.passes;
  totals->passes_amount_fen += line.passes_amount_fen;
}

std::map<std::string_view, const Operator*> IndexOperators(const std::vector<Operator>& operators) {
  std::map<std::string_view, const Operator*> index;
  for (const Operator& op : operators) index.emplace(op.id, &op);
  return index;
}

}  // namespace

int64_t SettlementFeeFen(int64_t fee_base_fen, int64_t fee_bp) {
  CITYCARD_ASSERT(InRange(fee_base_fen));
  CITYCARD_ASSERT(fee_bp >= 0 && fee_bp <= kFeeBasisPointsMax);
  // Half up: adding half the divisor before the integer division rounds half a fen up. The
  // product cannot overflow (see the static_assert on kSettlementFenMax).
  int64_t fee = (fee_base_fen * fee_bp + kFeeBasisPointsMax / 2) / kFeeBasisPointsMax;
  CITYCARD_ASSERT(fee >= 0 && fee <= fee_base_fen);
  return fee;
}

Result<SettlementReport> BuildSettlementReport(int64_t day, int64_t cutoff_s,
                                               const std::vector<Operator>& operators,
                                               const std::vector<OperatorTapTotals>& taps,
                                               const std::vector<OperatorServiceTotals>& services,
                                               const std::vector<CardRebate>& rebates) {
  auto registry = IndexOperators(operators);
  LineMap lines;
  for (const OperatorTapTotals& t : taps) {
    auto line = LineFor(&lines, registry, t.operator_id);
    if (!line.ok()) return line.status();
    CITYCARD_RETURN_IF_ERROR(AddTaps(*line, t));
  }
  for (const OperatorServiceTotals& s : services) {
    auto line = LineFor(&lines, registry, s.operator_id);
    if (!line.ok()) return line.status();
    CITYCARD_RETURN_IF_ERROR(AddServices(*line, s));
  }
  // In (operator, card) order a card rebated twice by one operator is two neighbours, and the
  // operator's line is looked up once per run of its rebates.
  const CardRebate* previous = nullptr;
  OperatorSettlement* line = nullptr;
  for (const CardRebate* r : RebatesInOrder(rebates)) {
    if (previous == nullptr || previous->operator_id != r->operator_id) {
      auto found = LineFor(&lines, registry, r->operator_id);
      if (!found.ok()) return found.status();
      line = *found;
    } else if (previous->card_no == r->card_no) {
      return InvalidInput(fmt::format("operator {}: two rebates to card {}", r->operator_id,
                                      r->card_no));
    }
    if (r->rebate_fen <= 0) {
      return InvalidInput(fmt::format("operator {}: rebate of {} to card {} is not positive",
                                      r->operator_id, r->rebate_fen, r->card_no));
    }
    CITYCARD_RETURN_IF_ERROR(AddChecked(&line->capping_rebate_fen, r->rebate_fen,
                                        "capping rebate", r->operator_id));
    line->capped_cards += 1;
    previous = r;
  }
  SettlementReport report;
  report.day = day;
  report.cutoff_s = cutoff_s;
  for (auto& [id, line] : lines) {
    CITYCARD_RETURN_IF_ERROR(FinishLine(&line));
    AddToTotals(&report.totals, line);
    report.operators.push_back(std::move(line));
  }
  return report;
}

// ---- Transfers -------------------------------------------------------------------------

namespace {

std::string SettlementKey(int64_t day, std::string_view operator_id) {
  return FormatDay(day) + "/" + std::string(operator_id);
}

Transfer SettlementTransfer(const Id128& id, uint64_t debit, uint64_t credit, int64_t amount_fen,
                            uint16_t code, int64_t day, const Operator& op) {
  Transfer t;
  t.id = id;
  t.debit_account_id = debit;
  t.credit_account_id = credit;
  t.amount_fen = amount_fen;
  t.code = code;
  t.user_data_64 = static_cast<uint64_t>(day);
  t.user_data_32 = static_cast<uint32_t>(op.number);
  return t;
}

}  // namespace

Id128 SettlementPayoutId(const Digester& digester, int64_t day, std::string_view operator_id) {
  return DeriveTransferId(digester, kPayoutIdDomain, SettlementKey(day, operator_id));
}

Id128 SettlementFeeId(const Digester& digester, int64_t day, std::string_view operator_id) {
  return DeriveTransferId(digester, kFeeIdDomain, SettlementKey(day, operator_id));
}

namespace {

// The upper half of every rebate id of (day, operator).
uint64_t RebateRunId(const Digester& digester, int64_t day, std::string_view operator_id) {
  return DeriveTransferId(digester, kRebateIdDomain, SettlementKey(day, operator_id)).hi;
}

}  // namespace

Id128 SettlementRebateId(const Digester& digester, int64_t day, std::string_view operator_id,
                         std::string_view card_no) {
  // The (day, operator) hash above the card number: a day's rebates of one operator, tens of
  // thousands of them, go into one run of the ledger's id index, in card order, rather than
  // onto a random page each (core/settlement.h).
  return Id128{RebateRunId(digester, day, operator_id), CardNumberToInt(card_no)};
}

// The report's order. A day's rebates come from the card-days in card order, so with one
// operator per card they are in that order already and the check is all it costs.
std::vector<const CardRebate*> RebatesInOrder(const std::vector<CardRebate>& rebates) {
  std::vector<const CardRebate*> sorted;
  sorted.reserve(rebates.size());
  for (const CardRebate& r : rebates) sorted.push_back(&r);
  auto before = [](const CardRebate* a, const CardRebate* b) {
    return std::tie(a->operator_id, a->card_no) < std::tie(b->operator_id, b->card_no);
  };
  if (!std::is_sorted(sorted.begin(), sorted.end(), before)) {
    std::sort(sorted.begin(), sorted.end(), before);
  }
  return sorted;
}

Status PlanRebateTransfers(int64_t day, const std::vector<Operator>& operators,
                           std::span<const CardRebate* const> rebates, const Digester& digester,
                           const RebateAccountResolver& resolve, std::vector<Transfer>* out) {
  auto registry = IndexOperators(operators);
  // One hash per operator, not per rebate: every rebate id of (day, operator) shares it. In
  // the card-days' order the operators alternate, so each one's is kept (a day has a few).
  std::map<std::string_view, uint64_t> runs;
  for (const CardRebate* r : rebates) {
    auto op = registry.find(r->operator_id);
    if (op == registry.end()) return UnknownOperator(r->operator_id);
    auto account = resolve(r->card_no);
    if (!account.ok()) return account.status();
    auto run = runs.find(op->first);
    if (run == runs.end()) {
      run = runs.emplace(op->first, RebateRunId(digester, day, r->operator_id)).first;
    }
    out->push_back(SettlementTransfer(Id128{run->second, CardNumberToInt(r->card_no)},
                                      op->second->payable_account_id, *account, r->rebate_fen,
                                      kTransferCodeCappingRebate, day, *op->second));
  }
  return Status::Ok();
}

Status PlanOperatorTransfers(const SettlementReport& report, const std::vector<Operator>& operators,
                             const Digester& digester, std::vector<Transfer>* out) {
  auto registry = IndexOperators(operators);
  for (const OperatorSettlement& line : report.operators) {
    auto op = registry.find(line.operator_id);
    if (op == registry.end()) return UnknownOperator(line.operator_id);
    const Operator& o = *op->second;
    if (line.fee_fen > 0) {
      out->push_back(SettlementTransfer(
          SettlementFeeId(digester, report.day, o.id), o.payable_account_id,
          SystemAccountId(AccountKind::fee_income), line.fee_fen, kTransferCodeSettlementFee,
          report.day, o));
    }
    if (line.net_fen > 0) {
      out->push_back(SettlementTransfer(
          SettlementPayoutId(digester, report.day, o.id), o.payable_account_id,
          SystemAccountId(AccountKind::settlement), line.net_fen, kTransferCodeSettlementPayout,
          report.day, o));
    } else if (line.net_fen < 0) {
      // The operator owes the day back: the payable is brought back to zero from settlement.
      out->push_back(SettlementTransfer(
          SettlementPayoutId(digester, report.day, o.id), SystemAccountId(AccountKind::settlement),
          o.payable_account_id, -line.net_fen, kTransferCodeSettlementPayout, report.day, o));
    }
  }
  return Status::Ok();
}

// ---- Reconciliation --------------------------------------------------------------------

namespace {

Status Mismatch(std::string message) {
  return Status::Internal("reconciliation_failed", std::move(message));
}

// The seq of the first committed transfer with timestamp >= at_ms, or last_seq + 1 when none.
// Timestamps never go back along seq (the ledger assigns max(clock, previous)), so a binary
// search finds it with about log2(last_seq) single-row reads.
Result<int64_t> FirstSeqAtOrAfter(LedgerStore& store, int64_t last_seq, int64_t at_ms) {
  int64_t low = 1;
  int64_t high = last_seq + 1;
  std::vector<TransferRecord> page;
  while (low < high) {
    int64_t mid = low + (high - low) / 2;
    page.clear();
    CITYCARD_RETURN_IF_ERROR(store.LoadTransfersBySeq(std::span<const int64_t>(&mid, 1), &page));
    if (page.size() != 1) {
      return Status::Internal("ledger_gap", fmt::format("the ledger has no transfer {}", mid));
    }
    if (page[0].transfer.timestamp_ms < at_ms) {
      low = mid + 1;
    } else {
      high = mid;
    }
  }
  return low;
}

}  // namespace

Result<LedgerMovements> CollectLedgerMovements(LedgerStore& store, int64_t from_ms,
                                               int64_t to_ms, SettlementReads* reads,
                                               std::optional<AccountKind> only_kind) {
  auto head = store.LoadHead();
  if (!head.ok()) return head.status();
  LedgerMovements movements;
  if (head->last_transfer_seq == 0 || from_ms >= to_ms) return movements;
  auto first = FirstSeqAtOrAfter(store, head->last_transfer_seq, from_ms);
  if (!first.ok()) return first.status();
  auto end = FirstSeqAtOrAfter(store, head->last_transfer_seq, to_ms);
  if (!end.ok()) return end.status();
  // With `reads` the window is summed where it is stored (one pass reading a few columns):
  // reading every transfer of the day back whole was a third of settlement's time
  // (docs/benchmarks.md).
  std::vector<AccountCodeSum> sums;
  CITYCARD_RETURN_IF_ERROR(reads != nullptr
                               ? reads->SumPostedMovements(*first, *end - 1, only_kind, &sums)
                               : SumPostedMovementsFromStore(store, *first, *end - 1, only_kind,
                                                             &sums));
  std::sort(sums.begin(), sums.end(), [](const AccountCodeSum& a, const AccountCodeSum& b) {
    return std::pair(a.account_id, a.code) < std::pair(b.account_id, b.code);
  });
  for (const AccountCodeSum& sum : sums) {
    movements.emplace_hint(movements.end(), std::pair(sum.account_id, sum.code),
                           AccountCodeMovement{sum.transfers, sum.credits_fen, sum.debits_fen});
  }
  return movements;
}

namespace {

Status CheckLineArithmetic(const OperatorSettlement& line, std::string_view name) {
  if (line.gross_fen !=
      line.concession_fen + line.transfer_discount_fen + line.other_discount_fen + line.paid_fen) {
    return Mismatch(fmt::format("{}: gross {} is not concession {} + transfer discount {} + "
                                "other discount {} + paid {}",
                                name, line.gross_fen, line.concession_fen,
                                line.transfer_discount_fen, line.other_discount_fen,
                                line.paid_fen));
  }
  if (line.fee_base_fen != FeeBase(line) || line.fee_base_fen != line.fee_fen + line.net_fen) {
    return Mismatch(fmt::format(
        "{}: fee base {} is not paid {} - capping rebate {} + bills {} + passes {} + medical {} "
        "+ {}, or not fee {} + net {}",
        name, line.fee_base_fen, line.paid_fen, line.capping_rebate_fen, line.bills_amount_fen,
        line.passes_amount_fen, line.medical_fund_fen, line.medical_holder_fen, line.fee_fen,
        line.net_fen));
  }
  return Status::Ok();
}

Status CheckTotals(const SettlementReport& report) {
  OperatorSettlement sum;
  for (const OperatorSettlement& line : report.operators) AddToTotals(&sum, line);
  sum.operator_id = report.totals.operator_id;
  sum.name = report.totals.name;
  sum.kind = report.totals.kind;
  sum.fee_bp = report.totals.fee_bp;
  if (!(sum == report.totals)) {
    return Mismatch(fmt::format("the totals are not the sum of the operators' lines"));
  }
  return CheckLineArithmetic(report.totals, "totals");
}

}  // namespace

namespace {

AccountCodeMovement MovementOf(const LedgerMovements& movements, uint64_t account, uint16_t code) {
  auto found = movements.find({account, code});
  return found == movements.end() ? AccountCodeMovement{} : found->second;
}

Status CheckBooked(const std::string& name, std::string_view what, const AccountCodeMovement& booked,
                   int64_t report_fen, int64_t report_count, std::string_view count_name,
                   int64_t day) {
  if (booked.credits_fen == report_fen && booked.transfers == report_count &&
      booked.debits_fen == 0) {
    return Status::Ok();
  }
  return Mismatch(fmt::format(
      "{}: the ledger booked {} fen in {} {} transfers ({} fen debited back) on {}, the report "
      "has {} fen in {} {}",
      name, booked.credits_fen, booked.transfers, what, booked.debits_fen, FormatDay(day),
      report_fen, report_count, count_name));
}

}  // namespace

namespace {

bool IsSettlementCode(uint16_t code) {
  return code == kTransferCodeCappingRebate || code == kTransferCodeSettlementFee ||
         code == kTransferCodeSettlementPayout;
}

// Which medical part a code books (0 fund, 1 assistance, 2 account, 3 purse) and whether it is
// a reversal; nullopt for a code that is not medical.
std::optional<std::pair<int, bool>> MedicalPart(const PayableCodes& codes, uint16_t code) {
  int offset = code - codes.medical_first;
  if (offset >= 0 && offset < 4) return std::make_pair(offset, false);
  offset -= codes.medical_reversal_offset;
  if (offset >= 0 && offset < 4) return std::make_pair(offset, true);
  return std::nullopt;
}

}  // namespace

Status Reconcile(const SettlementReport& report, const std::vector<Operator>& operators,
                 const LedgerMovements& movements, const PayableCodes& codes) {
  auto registry = IndexOperators(operators);
  std::set<uint64_t> reported_payables;
  for (const OperatorSettlement& line : report.operators) {
    std::string name = "operator " + line.operator_id;
    CITYCARD_RETURN_IF_ERROR(CheckLineArithmetic(line, name));
    auto op = registry.find(line.operator_id);
    if (op == registry.end()) return UnknownOperator(line.operator_id);
    uint64_t payable = op->second->payable_account_id;
    reported_payables.insert(payable);
    CITYCARD_RETURN_IF_ERROR(CheckBooked(name, "tap", MovementOf(movements, payable, codes.tap),
                                         line.paid_fen, line.paid_taps, "paid taps", report.day));
  }
  auto services = ServiceTotalsFromLedger(operators, movements, codes);
  if (!services.ok()) return services.status();
  std::map<std::string, OperatorServiceTotals> by_operator;
  for (const OperatorServiceTotals& s : *services) by_operator[s.operator_id] = s;
  for (const OperatorSettlement& line : report.operators) {
    OperatorServiceTotals s = by_operator[line.operator_id];
    if (s.bills_amount_fen != line.bills_amount_fen || s.bills != line.bills ||
        s.passes_amount_fen != line.passes_amount_fen || s.passes != line.passes ||
        s.medical_fund_fen != line.medical_fund_fen ||
        s.medical_holder_fen != line.medical_holder_fen) {
      return Mismatch(fmt::format(
          "operator {}: the ledger booked bills {} ({}), passes {} ({}), medical {} + {} on {}; "
          "the report has bills {} ({}), passes {} ({}), medical {} + {}",
          line.operator_id, s.bills_amount_fen, s.bills, s.passes_amount_fen, s.passes,
          s.medical_fund_fen, s.medical_holder_fen, FormatDay(report.day), line.bills_amount_fen,
          line.bills, line.passes_amount_fen, line.passes, line.medical_fund_fen,
          line.medical_holder_fen));
    }
    by_operator.erase(line.operator_id);
  }
  for (const auto& [key, movement] : movements) {
    if (AccountIdKind(key.first) != AccountKind::operator_payable || IsSettlementCode(key.second)) {
      continue;
    }
    bool known = key.second == codes.tap || key.second == codes.bill_payment ||
                 key.second == codes.pass_sale || MedicalPart(codes, key.second).has_value();
    if (!known) {
      return Mismatch(fmt::format(
          "payable account {} moved {} fen in and {} fen out under transfer code {} on {}, which "
          "settlement does not know",
          key.first, movement.credits_fen, movement.debits_fen, key.second, FormatDay(report.day)));
    }
    if (reported_payables.count(key.first) == 0) {
      return Mismatch(fmt::format(
          "the ledger moved {} fen in {} transfers of code {} on {} through payable account {}, "
          "which the report does not list",
          movement.credits_fen - movement.debits_fen, movement.transfers, key.second,
          FormatDay(report.day), key.first));
    }
  }
  return CheckTotals(report);
}

Result<std::vector<OperatorServiceTotals>> ServiceTotalsFromLedger(
    const std::vector<Operator>& operators, const LedgerMovements& movements,
    const PayableCodes& codes) {
  std::map<uint64_t, const Operator*> by_payable;
  for (const Operator& op : operators) by_payable.emplace(op.payable_account_id, &op);
  std::map<std::string, OperatorServiceTotals> totals;
  for (const auto& [key, movement] : movements) {
    if (AccountIdKind(key.first) != AccountKind::operator_payable) continue;
    auto medical = MedicalPart(codes, key.second);
    if (key.second != codes.bill_payment && key.second != codes.pass_sale && !medical) continue;
    auto op = by_payable.find(key.first);
    if (op == by_payable.end()) {
      return Status::Internal("unknown_operator",
                              fmt::format("payable account {} has no operator", key.first));
    }
    OperatorServiceTotals& t = totals[op->second->id];
    t.operator_id = op->second->id;
    int64_t net = movement.credits_fen - movement.debits_fen;
    if (key.second == codes.bill_payment) {
      t.bills += movement.transfers;
      t.bills_amount_fen += net;
    } else if (key.second == codes.pass_sale) {
      t.passes += movement.transfers;
      t.passes_amount_fen += net;
    } else if (medical->first < 2) {
      t.medical_fund_fen += net;
    } else {
      t.medical_holder_fen += net;
    }
  }
  std::vector<OperatorServiceTotals> result;
  for (auto& [id, t] : totals) result.push_back(std::move(t));
  return result;
}

// ---- JSON ------------------------------------------------------------------------------

namespace {

// The integer members of a line, by JSON key, in the order they are printed.
struct IntField {
  const char* key;
  int64_t OperatorSettlement::*member;
};
constexpr IntField kIntFields[] = {
    {"taps", &OperatorSettlement::taps},
    {"paid_taps", &OperatorSettlement::paid_taps},
    {"late_taps", &OperatorSettlement::late_taps},
    {"gross_fen", &OperatorSettlement::gross_fen},
    {"concession_fen", &OperatorSettlement::concession_fen},
    {"transfer_discount_fen", &OperatorSettlement::transfer_discount_fen},
    {"other_discount_fen", &OperatorSettlement::other_discount_fen},
    {"paid_fen", &OperatorSettlement::paid_fen},
    {"late_paid_fen", &OperatorSettlement::late_paid_fen},
    {"capping_rebate_fen", &OperatorSettlement::capping_rebate_fen},
    {"capped_cards", &OperatorSettlement::capped_cards},
    {"fee_base_fen", &OperatorSettlement::fee_base_fen},
    {"fee_fen", &OperatorSettlement::fee_fen},
    {"net_fen", &OperatorSettlement::net_fen},
    {"topups", &OperatorSettlement::topups},
    {"topup_fen", &OperatorSettlement::topup_fen},
    {"medical_bills", &OperatorSettlement::medical_bills},
    {"medical_fund_fen", &OperatorSettlement::medical_fund_fen},
    {"medical_holder_fen", &OperatorSettlement::medical_holder_fen},
    {"bills", &OperatorSettlement::bills},
    {"bills_amount_fen", &OperatorSettlement::bills_amount_fen},
    {"passes", &OperatorSettlement::passes},
    {"passes_amount_fen", &OperatorSettlement::passes_amount_fen},
};

bool EndsWithFen(std::string_view key) {
  return key.size() > 4 && key.substr(key.size() - 4) == "_fen";
}

nlohmann::json LineToJson(const OperatorSettlement& line, bool totals) {
  nlohmann::json json = nlohmann::json::object();
  if (!totals) {
    json["operator"] = line.operator_id;
    json["name"] = line.name;
    json["kind"] = line.kind;
    json["fee_bp"] = line.fee_bp;
  }
  for (const IntField& field : kIntFields) {
    std::string_view key = field.key;
    json[field.key] = line.*field.member;
    if (EndsWithFen(key)) {
      json[std::string(key.substr(0, key.size() - 4))] = FormatYuan(line.*field.member);
    }
  }
  return json;
}

Result<OperatorSettlement> LineFromJson(const nlohmann::json& json, bool totals) {
  OperatorSettlement line;
  if (!json.is_object()) {
    return Status::Internal("invalid_settlement_record", "a line is not an object");
  }
  try {
    if (!totals) {
      line.operator_id = json.at("operator").get<std::string>();
      line.name = json.at("name").get<std::string>();
      line.kind = json.at("kind").get<std::string>();
      line.fee_bp = json.at("fee_bp").get<int64_t>();
    }
    for (const IntField& field : kIntFields) line.*field.member = json.at(field.key).get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    // The library reports a missing key or a wrong type by exception; this edge turns it into
    // the value the contract promises.
    return Status::Internal("invalid_settlement_record", e.what());
  }
  return line;
}

}  // namespace

nlohmann::json SettlementReportToJson(const SettlementReport& report) {
  nlohmann::json json = nlohmann::json::object();
  json["day"] = FormatDay(report.day);
  json["cutoff_s"] = report.cutoff_s;
  json["cutoff"] = fmt::format("{:02}:{:02}", report.cutoff_s / 3600, report.cutoff_s / 60 % 60);
  json["operators"] = nlohmann::json::array();
  for (const OperatorSettlement& line : report.operators) {
    json["operators"].push_back(LineToJson(line, false));
  }
  json["totals"] = LineToJson(report.totals, true);
  return json;
}

Result<SettlementReport> SettlementReportFromJson(const nlohmann::json& json) {
  SettlementReport report;
  if (!json.is_object() || !json.contains("day") || !json["day"].is_string() ||
      !json.contains("operators") || !json["operators"].is_array() || !json.contains("totals") ||
      !json.contains("cutoff_s") || !json["cutoff_s"].is_number_integer()) {
    return Status::Internal("invalid_settlement_record", "day, cutoff_s, operators or totals missing");
  }
  auto day = ParseDay(json["day"].get<std::string>());
  if (!day.ok()) return Status::Internal("invalid_settlement_record", day.status().message());
  report.day = *day;
  report.cutoff_s = json["cutoff_s"].get<int64_t>();
  for (const nlohmann::json& item : json["operators"]) {
    auto line = LineFromJson(item, false);
    if (!line.ok()) return line.status();
    report.operators.push_back(std::move(*line));
  }
  auto totals = LineFromJson(json["totals"], true);
  if (!totals.ok()) return totals.status();
  report.totals = std::move(*totals);
  return report;
}

}  // namespace citycard
