// `citycard card issue|show|list|topup|block|unblock|replace|close|history|move-balances`.
#include <fmt/format.h>

#include "core/card_number.h"
#include "core/money.h"
#include "core/time.h"
#include "tools/cli/commands.h"
#include "tools/cli/environment.h"
#include "tools/cli/format.h"
#include "tools/cli/registry_output.h"

namespace citycard::cli {

namespace {

constexpr size_t kHistoryLimitDefault = 50;

struct CardOptions {
  std::string card_no;
  std::string holder_id;
  std::string name;
  std::string profile = "adult";
  std::string deposit;
  std::string expires;
  std::string status;
  std::string amount;
  std::string ref;
  std::string reason;
  bool now = false;
  size_t limit = kHistoryLimitDefault;
};

const std::vector<std::string> kProfileNames = {"adult", "student", "elderly", "disabled",
                                                "low-income"};
const std::vector<std::string> kStatusNames = {"active", "blocked", "replaced", "closed", "expired"};
const std::vector<std::string> kReasonNames = {"lost", "stolen", "damaged", "fraud"};

// The denylist version that listed the card, for output; 0 when it is not listed.
int64_t DenylistVersionOf(Environment& env, const std::string& card_no) {
  auto entry = env.registry().DenylistFind(card_no);
  return entry.ok() && entry->has_value() ? (*entry)->version : 0;
}

Result<CommandOutput> Issue(Environment& env, const CardOptions& o) {
  IssueRequest request;
  request.national_id = o.holder_id;
  request.name = o.name;
  request.profile = *ParseProfile(o.profile);  // CLI11 checked the name
  if (!o.deposit.empty()) {
    auto deposit = ParseYuan(o.deposit);
    if (!deposit.ok()) return deposit.status();
    request.deposit_fen = *deposit;
  }
  if (!o.expires.empty()) {
    auto day = ParseDay(o.expires);
    if (!day.ok()) return day.status();
    request.expires_day = *day;
  }
  auto card = env.card_office().IssueCard(request);
  if (!card.ok()) return card.status();
  return CommandOutput{CardJson(*card), "Issued card " + card->card.card_no + "\n" + CardText(*card)};
}

Result<CommandOutput> Show(Environment& env, const CardOptions& o) {
  auto card = env.card_office().ShowCard(o.card_no);
  if (!card.ok()) return card.status();
  return CommandOutput{CardJson(*card), CardText(*card)};
}

Result<CommandOutput> List(Environment& env, const CardOptions& o) {
  std::optional<CardStatus> status;
  if (!o.status.empty()) status = ParseCardStatus(o.status);
  std::optional<std::string> holder;
  if (!o.holder_id.empty()) holder = o.holder_id;
  auto cards = env.card_office().ListCards(status, holder);
  if (!cards.ok()) return cards.status();
  nlohmann::json list = nlohmann::json::array();
  for (const CardView& card : *cards) list.push_back(CardJson(card));
  return CommandOutput{{{"cards", list}}, CardsTable(*cards)};
}

Result<CommandOutput> Topup(Environment& env, const CardOptions& o) {
  CITYCARD_RETURN_IF_ERROR(ValidateCardNumber(o.card_no));
  auto amount = ParseYuan(o.amount);
  if (!amount.ok()) return amount.status();
  auto result = env.card_office().Topup(o.card_no, *amount, o.ref);
  if (!result.ok()) return result.status();
  CommandOutput out{CardJson(result->card), ""};
  out.json["transfer_id"] = result->transfer_id.ToHex();
  PutAmount(out.json, "amount", *amount);
  out.json["repeated"] = result->repeated;
  out.text = fmt::format("{} {} to card {}; transfer {}\n",
                         result->repeated ? "Already topped up" : "Topped up",
                         FormatYuanSign(*amount), o.card_no, result->transfer_id.ToHex()) +
             CardText(result->card);
  return out;
}

Result<CommandOutput> Block(Environment& env, const CardOptions& o) {
  auto card = env.card_office().Block(o.card_no, *ParseBlockReason(o.reason));
  if (!card.ok()) return card.status();
  CommandOutput out{CardJson(*card), ""};
  int64_t version = DenylistVersionOf(env, o.card_no);
  out.json["denylist_version"] = version;
  out.text = fmt::format("Blocked card {} ({}); on the denylist from version {}\n", o.card_no,
                         o.reason, version) +
             CardText(*card);
  return out;
}

Result<CommandOutput> Unblock(Environment& env, const CardOptions& o) {
  auto card = env.card_office().Unblock(o.card_no);
  if (!card.ok()) return card.status();
  CommandOutput out{CardJson(*card), ""};
  auto list = env.registry().DenylistFull();
  if (!list.ok()) return list.status();
  out.json["denylist_version"] = list->version;
  out.text = fmt::format("Unblocked card {}; denylist version {}\n", o.card_no, list->version) +
             CardText(*card);
  return out;
}

Result<CommandOutput> Replace(Environment& env, const CardOptions& o) {
  auto result = env.card_office().Replace(o.card_no, o.now);
  if (!result.ok()) return result.status();
  CommandOutput out;
  out.json = {{"old", CardJson(result->old_card)},
              {"new", CardJson(result->new_card)},
              {"balance_moved", result->balance_moved},
              {"denylist_version", DenylistVersionOf(env, o.card_no)}};
  if (result->balance_moved) PutAmount(out.json, "moved", result->moved_fen);
  std::string when =
      result->balance_moved
          ? "moved now: " + FormatYuanSign(result->moved_fen)
          : "moves after " + LocalTimeS(result->old_card.card.balance_move_due_s) +
                " (the next serve or settle after that, or `card move-balances`)";
  out.text = fmt::format("Card {} replaced by {}; the old card is on the denylist; balance {}\n\n",
                         o.card_no, result->new_card.card.card_no, when) +
             CardText(result->new_card);
  return out;
}

Result<CommandOutput> MoveBalances(Environment& env) {
  auto moved = env.card_office().ProcessDueReplacements();
  if (!moved.ok()) return moved.status();
  CommandOutput out;
  out.json = {{"moved", *moved}};
  out.text = fmt::format("Moved the balances of {} replaced card(s)\n", *moved);
  return out;
}

Result<CommandOutput> Close(Environment& env, const CardOptions& o) {
  auto result = env.card_office().Close(o.card_no);
  if (!result.ok()) return result.status();
  CommandOutput out{CardJson(result->card), ""};
  PutAmount(out.json, "purse_refund", result->purse_refund_fen);
  PutAmount(out.json, "deposit_refund", result->deposit_refund_fen);
  nlohmann::json ids = nlohmann::json::array();
  for (const Id128& id : result->transfer_ids) ids.push_back(id.ToHex());
  out.json["transfer_ids"] = ids;
  out.json["denylist_version"] = DenylistVersionOf(env, o.card_no);
  out.text = fmt::format("Closed card {}: refund {} (purse {}, deposit {})\n", o.card_no,
                         FormatYuanSign(result->purse_refund_fen + result->deposit_refund_fen),
                         FormatYuanSign(result->purse_refund_fen),
                         FormatYuanSign(result->deposit_refund_fen));
  return out;
}

Result<CommandOutput> History(Environment& env, const CardOptions& o) {
  auto lines = env.card_office().History(o.card_no, o.limit);
  if (!lines.ok()) return lines.status();
  return CommandOutput{HistoryJson(o.card_no, *lines), HistoryTable(*lines)};
}

void AddCardNo(CLI::App* sub, CardOptions& o) {
  sub->add_option("CARD_NO", o.card_no, "16-digit card number")->required();
}

}  // namespace

void RegisterCardCommands(CLI::App& app, AppContext& context) {
  auto o = std::make_shared<CardOptions>();
  CLI::App* card = app.add_subcommand("card", "issue, top up, block, replace and close cards");
  card->require_subcommand(1);

  CLI::App* issue = AddEnvironmentCommand(card, context, "issue", "issue a new card to a holder",
                            [o](Environment& env) { return Issue(env, *o); });
  issue->add_option("--holder-id", o->holder_id, "the holder's national id")->required();
  issue->add_option("--name", o->name, "the holder's name as printed on the card")->required();
  issue->add_option("--profile", o->profile, "adult (default), student, elderly, disabled, low-income")
      ->check(CLI::IsMember(kProfileNames));
  issue->add_option("--deposit", o->deposit, "deposit taken, yuan");
  issue->add_option("--expires", o->expires, "last valid day, YYYY-MM-DD (default: 10 years)");

  AddCardNo(AddEnvironmentCommand(card, context, "show", "show a card",
                    [o](Environment& env) { return Show(env, *o); }),
            *o);

  CLI::App* list = AddEnvironmentCommand(card, context, "list", "list cards",
                           [o](Environment& env) { return List(env, *o); });
  list->add_option("--status", o->status, "active, blocked, replaced, closed or expired")
      ->check(CLI::IsMember(kStatusNames));
  list->add_option("--holder-id", o->holder_id, "only this holder's cards (national id)");

  CLI::App* topup = AddEnvironmentCommand(card, context, "topup", "top up a card's purse",
                            [o](Environment& env) { return Topup(env, *o); });
  AddCardNo(topup, *o);
  topup->add_option("YUAN", o->amount, "amount in yuan, at most two decimals")->required();
  topup->add_option("--ref", o->ref, "the counter's reference: a repeat with it moves no money");

  CLI::App* block = AddEnvironmentCommand(card, context, "block", "block a card and denylist it at once",
                            [o](Environment& env) { return Block(env, *o); });
  AddCardNo(block, *o);
  block->add_option("--reason", o->reason, "lost, stolen, damaged or fraud")
      ->required()
      ->check(CLI::IsMember(kReasonNames));

  AddCardNo(AddEnvironmentCommand(card, context, "unblock", "unblock a blocked card",
                    [o](Environment& env) { return Unblock(env, *o); }),
            *o);

  CLI::App* replace = AddEnvironmentCommand(card, context, "replace",
                              "issue a replacement card; the balance moves after the hold period",
                              [o](Environment& env) { return Replace(env, *o); });
  AddCardNo(replace, *o);
  replace->add_flag("--now", o->now, "move the balance at once");

  AddCardNo(AddEnvironmentCommand(card, context, "close", "close a card, refunding balance and deposit",
                    [o](Environment& env) { return Close(env, *o); }),
            *o);

  CLI::App* history = AddEnvironmentCommand(card, context, "history", "a card's purse transactions, newest first",
                              [o](Environment& env) { return History(env, *o); });
  AddCardNo(history, *o);
  history->add_option("--limit", o->limit, "at most this many entries (default 50)")
      ->check(CLI::Range(size_t{1}, kAccountHistoryMax));

  AddEnvironmentCommand(card, context, "move-balances",
          "move the balances of replaced cards whose hold period has passed",
          [](Environment& env) { return MoveBalances(env); });
}

}  // namespace citycard::cli
