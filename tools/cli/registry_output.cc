#include "tools/cli/registry_output.h"

#include <fmt/format.h>

#include "core/money.h"
#include "core/time.h"
#include "tools/cli/format.h"

namespace citycard::cli {

namespace {

template <typename Enum, typename NameFn>
nlohmann::json Names(const std::vector<Enum>& values, NameFn name) {
  nlohmann::json out = nlohmann::json::array();
  for (Enum v : values) out.push_back(std::string(name(v)));
  return out;
}

template <typename Enum, typename NameFn>
std::string JoinNames(const std::vector<Enum>& values, NameFn name) {
  std::string out;
  for (Enum v : values) out += (out.empty() ? "" : ", ") + std::string(name(v));
  return out.empty() ? "-" : out;
}

std::string StatusText(const CardView& card) {
  std::string status(CardStatusName(card.status));
  if (card.card.block_reason != BlockReason::none) {
    status += " (" + std::string(BlockReasonName(card.card.block_reason)) + ")";
  }
  return status;
}

}  // namespace

std::string LocalTimeMs(int64_t unix_ms) { return FormatLocalTime(unix_ms / 1000); }
std::string LocalTimeS(int64_t unix_s) { return FormatLocalTime(unix_s); }

nlohmann::json CardJson(const CardView& view) {
  const Card& card = view.card;
  nlohmann::json json = {
      {"card_no", card.card_no},
      {"status", std::string(CardStatusName(view.status))},
      {"profile", std::string(ProfileName(card.profile))},
      {"holder_name", card.holder_name},
      {"holder_id_masked", card.holder_id_masked},
  };
  PutAmount(json, "balance", view.balance_fen);
  PutAmount(json, "deposit", card.deposit_fen);
  json["expires"] = FormatDay(card.expires_day);
  json["issued"] = LocalTimeS(card.issued_s);
  if (card.block_reason != BlockReason::none) {
    json["block_reason"] = std::string(BlockReasonName(card.block_reason));
  }
  if (!card.replaced_by.empty()) {
    json["replaced_by"] = card.replaced_by;
    json["balance_move_due"] = LocalTimeS(card.balance_move_due_s);
    json["balance_moved"] = card.balance_moved_s != 0;
  }
  if (!card.replaces.empty()) json["replaces"] = card.replaces;
  return json;
}

std::string CardText(const CardView& view) {
  const Card& card = view.card;
  std::vector<std::pair<std::string, std::string>> pairs = {
      {"Card", card.card_no},
      {"Status", StatusText(view)},
      {"Holder", card.holder_name + " (" + card.holder_id_masked + ")"},
      {"Profile", std::string(ProfileName(card.profile))},
      {"Balance", FormatYuanSign(view.balance_fen)},
      {"Deposit", FormatYuanSign(card.deposit_fen)},
      {"Expires", FormatDay(card.expires_day)},
      {"Issued", LocalTimeS(card.issued_s)},
  };
  if (!card.replaces.empty()) pairs.emplace_back("Replaces", card.replaces);
  if (!card.replaced_by.empty()) {
    pairs.emplace_back("Replaced by", card.replaced_by);
    pairs.emplace_back("Balance moves", card.balance_moved_s
                                            ? "moved " + LocalTimeS(card.balance_moved_s)
                                            : "at " + LocalTimeS(card.balance_move_due_s));
  }
  return KeyValues(pairs);
}

std::string CardsTable(const std::vector<CardView>& cards) {
  Table table({"CARD NO", "STATUS", "PROFILE", "HOLDER", "ID", ">BALANCE", "EXPIRES"});
  for (const CardView& view : cards) {
    table.Add({view.card.card_no, StatusText(view), std::string(ProfileName(view.card.profile)),
               view.card.holder_name, view.card.holder_id_masked,
               FormatYuanSign(view.balance_fen), FormatDay(view.card.expires_day)});
  }
  return table.Render() + fmt::format("{} card(s)\n", cards.size());
}

nlohmann::json HolderJson(const HolderView& view) {
  const Holder& h = view.holder;
  nlohmann::json json = {
      {"holder_id_masked", h.id_masked},
      {"name", h.name},
      {"schemes", Names(h.schemes, SchemeName)},
      {"groups", Names(h.groups, SpecialGroupName)},
      {"in_registry", h.in_registry},
      {"cards", view.card_nos},
  };
  PutAmount(json, "medical_opening", h.medical_opening_fen);
  PutAmount(json, "medical_balance", view.medical_balance_fen);
  return json;
}

std::string HolderText(const HolderView& view) {
  const Holder& h = view.holder;
  std::string cards;
  for (const std::string& no : view.card_nos) cards += (cards.empty() ? "" : ", ") + no;
  return KeyValues({
      {"Holder", h.name + " (" + h.id_masked + ")"},
      {"Schemes", JoinNames(h.schemes, SchemeName)},
      {"Groups", JoinNames(h.groups, SpecialGroupName)},
      {"Medical account", FormatYuanSign(view.medical_balance_fen)},
      {"In registry", h.in_registry ? "yes" : "no (met at a card issue)"},
      {"Cards", cards.empty() ? "-" : cards},
  });
}

nlohmann::json OperatorJson(const Operator& op) {
  return {{"operator_id", op.id},
          {"name", op.name},
          {"kind", std::string(OperatorKindName(op.kind))},
          {"fee_bp", op.fee_bp},
          {"created", LocalTimeS(op.created_s)}};
}

std::string OperatorsTable(const std::vector<Operator>& ops) {
  Table table({"OPERATOR", "NAME", "KIND", ">FEE BP"});
  for (const Operator& op : ops) {
    table.Add({op.id, op.name, std::string(OperatorKindName(op.kind)), std::to_string(op.fee_bp)});
  }
  return table.Render();
}

nlohmann::json TerminalJson(const Terminal& t) {
  nlohmann::json versions = nlohmann::json::array();
  for (const TerminalKey& key : t.keys) versions.push_back(key.version);
  return {{"terminal_id", t.id},
          {"operator_id", t.operator_id},
          {"kind", std::string(TerminalKindName(t.kind))},
          {"route", t.route},
          {"status", std::string(TerminalStatusName(t.status))},
          {"key_version", t.current_key_version()},
          {"key_versions", versions},
          {"counter", t.counter},
          {"registered", LocalTimeS(t.registered_s)}};
}

std::string TerminalText(const Terminal& t) {
  std::string versions;
  for (const TerminalKey& key : t.keys) {
    versions += (versions.empty() ? "" : ", ") + std::to_string(key.version) +
                (key.revoked ? " (revoked)" : "");
  }
  return KeyValues({{"Terminal", t.id},
                    {"Operator", t.operator_id},
                    {"Kind", std::string(TerminalKindName(t.kind))},
                    {"Route", t.route.empty() ? "-" : t.route},
                    {"Status", std::string(TerminalStatusName(t.status))},
                    {"Key version", std::to_string(t.current_key_version())},
                    {"Key versions", versions},
                    {"Counter", std::to_string(t.counter)},
                    {"Registered", LocalTimeS(t.registered_s)}});
}

std::string TerminalsTable(const std::vector<Terminal>& terminals) {
  Table table({"TERMINAL", "OPERATOR", "KIND", "ROUTE", "STATUS", ">KEY", ">COUNTER"});
  for (const Terminal& t : terminals) {
    table.Add({t.id, t.operator_id, std::string(TerminalKindName(t.kind)), t.route,
               std::string(TerminalStatusName(t.status)), std::to_string(t.current_key_version()),
               std::to_string(t.counter)});
  }
  return table.Render();
}

nlohmann::json HistoryJson(const std::string& card_no, const std::vector<HistoryLine>& lines) {
  nlohmann::json entries = nlohmann::json::array();
  for (const HistoryLine& line : lines) {
    nlohmann::json entry = {{"time", LocalTimeMs(line.time_ms)}, {"kind", line.kind}};
    PutAmount(entry, "amount", line.amount_fen);
    PutAmount(entry, "balance_after", line.balance_after_fen);
    entry["operator"] = line.operator_id.empty() ? nlohmann::json(nullptr)
                                                 : nlohmann::json(line.operator_id);
    entry["transfer_id"] = line.transfer_id.ToHex();
    entries.push_back(std::move(entry));
  }
  return {{"card_no", card_no}, {"entries", entries}};
}

std::string HistoryTable(const std::vector<HistoryLine>& lines) {
  Table table({"TIME", "KIND", ">AMOUNT", ">BALANCE", "OPERATOR", "TRANSFER"});
  for (const HistoryLine& line : lines) {
    table.Add({LocalTimeMs(line.time_ms), line.kind, FormatYuanSign(line.amount_fen),
               FormatYuanSign(line.balance_after_fen),
               line.operator_id.empty() ? "-" : line.operator_id, line.transfer_id.ToHex()});
  }
  return table.Render();
}

}  // namespace citycard::cli
