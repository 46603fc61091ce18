// How cards, holders, operators and terminals look in the citycard command's output: the
// JSON objects of ../shared/design/CLI.md "JSON shapes" and their human forms. Shared by the
// command groups (and by `demo`, `serve` logs) so that a card always looks the same.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/card_office.h"
#include "core/registry.h"

namespace citycard::cli {

// card_no, status, profile, holder_name, holder_id_masked, balance(_fen), deposit(_fen),
// expires; block_reason when the card was blocked; replaced_by / replaces when set; issued.
nlohmann::json CardJson(const CardView& card);
// A key-value block for one card.
std::string CardText(const CardView& card);
// A table of cards: card no, status, profile, holder, balance, expires.
std::string CardsTable(const std::vector<CardView>& cards);

nlohmann::json HolderJson(const HolderView& holder);
std::string HolderText(const HolderView& holder);

nlohmann::json OperatorJson(const Operator& op);
std::string OperatorsTable(const std::vector<Operator>& ops);

nlohmann::json TerminalJson(const Terminal& terminal);
std::string TerminalText(const Terminal& terminal);
std::string TerminalsTable(const std::vector<Terminal>& terminals);

nlohmann::json HistoryJson(const std::string& card_no, const std::vector<HistoryLine>& lines);
std::string HistoryTable(const std::vector<HistoryLine>& lines);

// "2024-03-01 10:00:00" (Asia/Shanghai) for Unix milliseconds or seconds.
std::string LocalTimeMs(int64_t unix_ms);
std::string LocalTimeS(int64_t unix_s);

}  // namespace citycard::cli
