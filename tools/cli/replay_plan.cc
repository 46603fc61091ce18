#include "tools/cli/replay_plan.h"

#include <algorithm>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "core/card_number.h"
#include "core/time.h"

namespace citycard::cli {

namespace {

Status InvalidRow(const SztRow& row, std::string why) {
  return Status::BadInput("invalid_szt_row", fmt::format("line {}: {}", row.line, why));
}

// The Chinese numerals of metro line numbers (1 to 99): 一 … 九, 十, 十一, 二十, 二十一.
constexpr std::string_view kDigits[] = {"一", "二", "三", "四", "五", "六", "七", "八", "九"};
constexpr std::string_view kTen = "十";

// Reads one digit 1-9 at the front of `text`; 0 when there is none.
int TakeDigit(std::string_view* text) {
  for (int i = 0; i < 9; ++i) {
    if (text->substr(0, kDigits[i].size()) == kDigits[i]) {
      text->remove_prefix(kDigits[i].size());
      return i + 1;
    }
  }
  return 0;
}

// 1 to 99 written in Chinese numerals, or 0 when `text` is not exactly that.
int ParseChineseNumber(std::string_view text) {
  int tens = 0;
  int units = TakeDigit(&text);
  if (text.substr(0, kTen.size()) == kTen) {
    text.remove_prefix(kTen.size());
    tens = units == 0 ? 1 : units;
    units = TakeDigit(&text);
  }
  if (!text.empty()) return 0;
  return tens * 10 + units;
}

int MetroLineNumber(std::string_view name) {
  constexpr std::string_view kMetro = "地铁";
  constexpr std::string_view kLine = "号线";
  if (name.size() <= kMetro.size() + kLine.size() || name.substr(0, kMetro.size()) != kMetro ||
      name.substr(name.size() - kLine.size()) != kLine) {
    return 0;
  }
  return ParseChineseNumber(
      name.substr(kMetro.size(), name.size() - kMetro.size() - kLine.size()));
}

TapType TapTypeFor(SztDealType type) {
  switch (type) {
    case SztDealType::metro_entry: return TapType::metro_entry;
    case SztDealType::metro_exit: return TapType::metro_exit;
    case SztDealType::bus: return TapType::purchase;
  }
  return TapType::purchase;
}

bool IsMetro(SztDealType type) { return type != SztDealType::bus; }

}  // namespace

Result<std::string> ReplayCardNumber(std::string_view anonymised) {
  if (anonymised.empty() || anonymised.size() > kReplayAnonymisedDigitsMax) {
    return Status::BadInput("invalid_szt_card",
                            fmt::format("card number '{}' is not 1 to {} letters A-J", anonymised,
                                        kReplayAnonymisedDigitsMax));
  }
  std::string digits(kReplayAnonymisedDigitsMax - anonymised.size(), '0');
  for (char c : anonymised) {
    if (c < 'A' || c > 'J') {
      return Status::BadInput("invalid_szt_card",
                              fmt::format("card number '{}' is not letters A-J", anonymised));
    }
    digits.push_back(static_cast<char>('0' + (c - 'A')));
  }
  std::string number = std::string(kReplayCardPrefix) + std::to_string(anonymised.size()) + digits;
  number.push_back(LuhnCheckDigit(number));
  CITYCARD_ASSERT(number.size() == kCardNumberLength);
  return number;
}

std::string ReplayOperatorId(const Digester& digester, std::string_view company_name) {
  int line = MetroLineNumber(company_name);
  if (line > 0) return fmt::format("szt-metro-{}", line);
  Sha256Digest digest = digester.Sha256(ByteView(
      reinterpret_cast<const uint8_t*>(company_name.data()), company_name.size()));
  return fmt::format("szt-{:02x}{:02x}{:02x}{:02x}", digest[0], digest[1], digest[2], digest[3]);
}

Result<std::string> ReplayTerminalId(uint64_t equ_no) {
  std::string id = "szt-" + std::to_string(equ_no);
  if (id.size() > kRegistryIdBytesMax) {
    return Status::BadInput("invalid_szt_device",
                            fmt::format("device {} is too long for a terminal id", equ_no));
  }
  return id;
}

namespace {

Status AddOperator(const Digester& digester, const SztRow& row,
                   std::map<std::string, ReplayOperator>* operators,
                   std::map<std::string, std::string>* id_by_name) {
  auto known = id_by_name->find(row.company_name);
  std::string id;
  if (known != id_by_name->end()) {
    id = known->second;
  } else {
    id = ReplayOperatorId(digester, row.company_name);
    if (operators->count(id) != 0) {
      return InvalidRow(row, fmt::format("companies {} and {} map to one operator id {}",
                                         (*operators)[id].name, row.company_name, id));
    }
    id_by_name->emplace(row.company_name, id);
    ReplayOperator op;
    op.id = id;
    op.name = row.company_name;
    op.kind = IsMetro(row.deal_type) ? OperatorKind::metro : OperatorKind::bus;
    operators->emplace(id, std::move(op));
  }
  ReplayOperator& op = (*operators)[id];
  op.rows += 1;
  op.paid_fen += row.deal_money_fen;
  return Status::Ok();
}

Status AddTerminal(const SztRow& row, const std::string& terminal_id,
                   const std::string& operator_id,
                   std::map<std::string, ReplayTerminal>* terminals) {
  auto found = terminals->find(terminal_id);
  if (found == terminals->end()) {
    ReplayTerminal t;
    t.id = terminal_id;
    t.operator_id = operator_id;
    t.kind = IsMetro(row.deal_type) ? TerminalKind::metro : TerminalKind::bus;
    t.route = row.station.size() <= kRouteBytesMax ? row.station : std::string();
    terminals->emplace(terminal_id, std::move(t));
    return Status::Ok();
  }
  if (found->second.operator_id != operator_id) {
    return InvalidRow(row, fmt::format("device {} appears under two companies", row.equ_no));
  }
  return Status::Ok();
}

ReplayTap TapFor(const SztRow& row, size_t index, std::string card_no, std::string terminal_id) {
  ReplayTap tap;
  tap.row = index;
  tap.card_no = std::move(card_no);
  tap.terminal_id = std::move(terminal_id);
  tap.type = TapTypeFor(row.deal_type);
  tap.time_s = row.deal_time_s;
  tap.amount_fen = row.deal_money_fen;
  tap.full_fare_fen = row.deal_value_fen;
  int64_t discount = row.deal_value_fen - row.deal_money_fen;
  if (row.conn_mark) {
    tap.transfer_discount_fen = discount;
    tap.flags = kTapFlagTransfer;
  } else {
    tap.concession_fen = discount;
  }
  return tap;
}

}  // namespace

Result<ReplayPlan> PlanReplay(const Digester& digester, const std::vector<SztRow>& rows) {
  std::map<std::string, ReplayOperator> operators;
  std::map<std::string, std::string> operator_by_name;
  std::map<std::string, ReplayTerminal> terminals;
  std::map<std::string, ReplayCard> cards;
  ReplayPlan plan;
  for (size_t i = 0; i < rows.size(); ++i) {
    const SztRow& row = rows[i];
    if (row.deal_money_fen > row.deal_value_fen) {
      return InvalidRow(row, "deal_money exceeds deal_value");
    }
    CITYCARD_RETURN_IF_ERROR(AddOperator(digester, row, &operators, &operator_by_name));
    const std::string& operator_id = operator_by_name[row.company_name];
    auto terminal_id = ReplayTerminalId(row.equ_no);
    if (!terminal_id.ok()) return terminal_id.status();
    CITYCARD_RETURN_IF_ERROR(AddTerminal(row, *terminal_id, operator_id, &terminals));
    auto card_no = ReplayCardNumber(row.card_no);
    if (!card_no.ok()) return card_no.status();
    ReplayCard& card = cards[*card_no];
    card.card_no = *card_no;
    card.anonymised = row.card_no;
    card.paid_fen += row.deal_money_fen;
    bool half_or_less = row.deal_money_fen > 0 && row.deal_money_fen * 2 <= row.deal_value_fen;
    if (!row.conn_mark && half_or_less) card.profile = Profile::student;
    plan.taps.push_back(TapFor(row, i, *card_no, *terminal_id));
  }
  std::stable_sort(plan.taps.begin(), plan.taps.end(),
                   [&rows](const ReplayTap& a, const ReplayTap& b) {
                     return std::tie(a.time_s, rows[a.row].line) <
                            std::tie(b.time_s, rows[b.row].line);
                   });
  for (auto& [id, op] : operators) plan.operators.push_back(std::move(op));
  for (auto& [id, t] : terminals) plan.terminals.push_back(std::move(t));
  for (auto& [no, card] : cards) {
    card.topup_fen = card.paid_fen + kReplayCardFloatFen;
    plan.cards.push_back(std::move(card));
  }
  return plan;
}

std::vector<ReplayBatch> PlanBatches(const ReplayPlan& plan, int64_t cutoff_s) {
  std::map<std::string, std::vector<size_t>> by_terminal;
  for (size_t i = 0; i < plan.taps.size(); ++i) by_terminal[plan.taps[i].terminal_id].push_back(i);
  std::vector<ReplayBatch> batches;
  for (const auto& [terminal_id, taps] : by_terminal) {
    ReplayBatch current;
    auto close = [&]() {
      if (current.taps.empty()) return;
      int64_t last_s = plan.taps[current.taps.back()].time_s;
      int64_t day_end_s = ClearingDayStart(ClearingDay(last_s, cutoff_s) + 1, cutoff_s);
      current.terminal_id = terminal_id;
      current.arrival_s = std::min(last_s + kReplayUploadDelaySeconds, day_end_s - 1);
      batches.push_back(std::move(current));
      current = ReplayBatch{};
    };
    for (size_t index : taps) {
      if (!current.taps.empty()) {
        const ReplayTap& first = plan.taps[current.taps.front()];
        const ReplayTap& tap = plan.taps[index];
        if (current.taps.size() >= kReplayBatchRecordsMax ||
            tap.time_s - first.time_s > kReplayBatchWindowSeconds ||
            ClearingDay(tap.time_s, cutoff_s) != ClearingDay(first.time_s, cutoff_s)) {
          close();
        }
      }
      current.taps.push_back(index);
    }
    close();
  }
  std::stable_sort(batches.begin(), batches.end(), [](const ReplayBatch& a, const ReplayBatch& b) {
    return std::tie(a.arrival_s, a.terminal_id) < std::tie(b.arrival_s, b.terminal_id);
  });
  return batches;
}

}  // namespace citycard::cli
