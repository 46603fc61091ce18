// `citycard sim provision|run`: simulated readers and cards against a server
// (docs/ingest.md "Simulator").
// - provision (with no server running: it writes the registry and the ledger): an operator,
//   N terminals and M cards topped up with the same balance.
// - run: every active terminal of the operator becomes a simulated reader (its key unwrapped
//   from the registry, its counter continued), every card with money a simulated card (its key
//   derived from the key file, its counter and balance continued from what the core booked);
//   they make taps and upload them in batches over TCP, re-sending some batches as a reader
//   that lost an acknowledgement would. Reads the database only.
// - reupload: sends every record of an --acked-records file again, as its terminal, as a
//   reader that lost all its acknowledgements would (the crash tests expect only duplicate).
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <random>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/national_id.h"
#include "core/time.h"
#include "crypto/card_keys.h"
#include "crypto/key_wrap.h"
#include "db/sqlite_tap_store.h"
#include "terminals/client.h"
#include "tools/cli/commands.h"
#include "tools/cli/environment.h"
#include "tools/sim/sim_card.h"
#include "tools/sim/sim_terminal.h"

namespace citycard::cli {

namespace {

struct SimOptions {
  std::string operator_id = "SIM";
  size_t terminals = 4;
  size_t cards = 100;
  std::string balance = "100";
  std::string server;
  size_t taps = 1000;
  size_t batch = 64;
  unsigned duplicates_percent = 10;
  std::string acked_log;
  std::string acked_records;  // like acked_log, plus each record's encoding in hex
  std::string records;        // reupload: an acked_records file to send again
  unsigned seed = 1;
};

std::string HolderId(size_t i) {
  int64_t day = DaysFromCivil(1950, 1, 1) + static_cast<int64_t>(i / 900);
  std::string date = FormatDay(day);
  std::string first17 = fmt::format("110105{}{}{}{:03d}", date.substr(0, 4), date.substr(5, 2),
                                    date.substr(8, 2), 100 + i % 900);
  return first17 + NationalIdCheckChar(first17);
}

Result<CommandOutput> Provision(Environment& env, const SimOptions& o) {
  auto balance = ParseYuan(o.balance);
  if (!balance.ok()) return balance.status();
  auto existing = env.registry().FindOperator(o.operator_id);
  if (!existing.ok()) return existing.status();
  if (!existing->has_value()) {
    OperatorRequest op{o.operator_id, "Simulated operator", OperatorKind::bus, 0};
    auto added = env.terminal_office().AddOperator(op);
    if (!added.ok()) return added.status();
  }
  CommandOutput out;
  out.json["operator"] = o.operator_id;
  out.json["terminals"] = nlohmann::json::array();
  auto listed = env.registry().ListTerminals();
  if (!listed.ok()) return listed.status();
  size_t have = 0;
  for (const Terminal& t : *listed) have += t.operator_id == o.operator_id ? 1 : 0;
  for (size_t i = have; i < o.terminals; ++i) {
    TerminalRequest request{fmt::format("{}-T{:04d}", o.operator_id.substr(0, 8), i + 1),
                            o.operator_id, TerminalKind::bus, ""};
    auto issued = env.terminal_office().RegisterTerminal(request);
    if (!issued.ok()) return issued.status();
    out.json["terminals"].push_back(request.id);
  }
  out.json["cards"] = nlohmann::json::array();
  auto cards = env.registry().ListCards({});
  if (!cards.ok()) return cards.status();
  for (size_t i = cards->size(); i < cards->size() + o.cards; ++i) {
    IssueRequest request;
    request.national_id = HolderId(i);
    request.name = "模拟";
    auto card = env.card_office().IssueCard(request);
    if (!card.ok()) return card.status();
    if (*balance > 0) {
      auto topped = env.card_office().Topup(card->card.card_no, *balance, "sim-provision");
      if (!topped.ok()) return topped.status();
    }
    out.json["cards"].push_back(card->card.card_no);
  }
  out.text = fmt::format("Provisioned operator {}: {} new terminals, {} new cards with {} each.\n",
                         o.operator_id, out.json["terminals"].size(), out.json["cards"].size(),
                         o.balance);
  return out;
}

// "HOST:PORT" of --server. Kind::usage "invalid_server" otherwise.
Result<std::pair<std::string, uint16_t>> ParseServer(const std::string& server) {
  size_t colon = server.rfind(':');
  std::string port = colon == std::string::npos ? "" : server.substr(colon + 1);
  if (server.empty() || colon == 0 || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535) {
    return Status::Usage("invalid_server", "--server wants HOST:PORT, not \"" + server + "\"");
  }
  return std::make_pair(server.substr(0, colon), static_cast<uint16_t>(std::stoul(port)));
}

// A connected, authenticated client for a registered terminal, with its current key.
Result<std::unique_ptr<terminals::TerminalClient>> ConnectTerminal(Environment& env,
                                                                  const Terminal& t,
                                                                  const std::string& host,
                                                                  uint16_t port) {
  auto key = crypto::UnwrapKey(env.keys().WrapKey(), t.keys.back().wrapped_key);
  if (!key.ok()) return key.status();
  terminals::ClientOptions options;
  options.terminal_id = t.id;
  options.key_version = static_cast<uint8_t>(t.current_key_version());
  options.terminal_key = *key;
  options.core_public_key = env.keys().CoreSigner().PublicKey();
  auto client = terminals::TerminalClient::ConnectTcp(host, port, options);
  if (!client.ok()) return client.status();
  CITYCARD_RETURN_IF_ERROR((*client)->Handshake());
  return std::move(*client);
}

struct Reader {
  std::unique_ptr<sim::SimTerminal> terminal;
  Bytes key;
  std::unique_ptr<terminals::TerminalClient> client;
};

Result<CommandOutput> Run(Environment& env, const SimOptions& o) {
  auto server = ParseServer(o.server);
  if (!server.ok()) return server.status();
  const auto& [host, port] = *server;
  auto taps_store = db::SqliteTapStore::Open(env.database());
  if (!taps_store.ok()) return taps_store.status();

  std::vector<Reader> readers;
  auto terminals = env.registry().ListTerminals();
  if (!terminals.ok()) return terminals.status();
  for (const Terminal& t : *terminals) {
    if (t.operator_id != o.operator_id || t.status != TerminalStatus::active) continue;
    auto key = crypto::UnwrapKey(env.keys().WrapKey(), t.keys.back().wrapped_key);
    if (!key.ok()) return key.status();
    Reader r;
    r.key = *key;
    r.terminal = std::make_unique<sim::SimTerminal>(t.id, t.operator_id, *key,
                                                    static_cast<uint8_t>(t.current_key_version()),
                                                    static_cast<uint32_t>(t.counter));
    readers.push_back(std::move(r));
  }
  if (readers.empty()) {
    return Status::NotFound("terminal_not_found", "no active terminal of operator " + o.operator_id);
  }
  std::vector<sim::SimCard> cards;
  auto listed = env.registry().ListCards(CardFilter{CardStatus::active, std::nullopt});
  if (!listed.ok()) return listed.status();
  uint8_t version = env.keys().CurrentCardKeyVersion();
  auto master = env.keys().CardMasterKey(version);
  if (!master.ok()) return master.status();
  for (const Card& c : *listed) {
    uint64_t no = CardNumberToInt(c.card_no);
    auto purse = env.ledger().LookupAccount(c.purse_account_id);
    if (!purse.ok()) return purse.status();
    if (purse->balance_fen() <= 0) continue;
    auto state = (*taps_store)->LoadCardCounterState(no);
    if (!state.ok()) return state.status();
    uint32_t counter = state->has_value() ? (*state)->last_counter : 0;
    // The chip holds what its last booked transaction left. That is the ledger's purse when
    // every earlier tap was uploaded; after an interrupted run (a reader's queue lost before
    // its upload) the purse holds more than the chip, and a card claiming the purse would be
    // forged_balance. A card never tapped holds what the ledger holds.
    int64_t chip_fen = state->has_value() ? (*state)->last_balance_after_fen : purse->balance_fen();
    if (chip_fen <= 0) continue;
    cards.emplace_back(no, crypto::DeriveCardKey(*master, no), version, c.profile, chip_fen,
                       counter, -PurseFloorFen(c.profile, env.config()));
  }
  if (cards.empty()) return Status::NotFound("card_not_found", "no active card with money");

  for (Reader& r : readers) {
    terminals::ClientOptions options;
    options.terminal_id = r.terminal->terminal_id();
    options.key_version = r.terminal->key_version();
    options.terminal_key = r.key;
    options.core_public_key = env.keys().CoreSigner().PublicKey();
    auto client = terminals::TerminalClient::ConnectTcp(host, port, options);
    if (!client.ok()) return client.status();
    CITYCARD_RETURN_IF_ERROR((*client)->Handshake());
    r.client = std::move(*client);
  }
  std::ofstream log;
  if (!o.acked_log.empty()) {
    log.open(o.acked_log, std::ios::app);
    if (!log) return Status::Internal("file_write_failed", "cannot open " + o.acked_log);
  }
  std::ofstream records_log;
  if (!o.acked_records.empty()) {
    records_log.open(o.acked_records, std::ios::app);
    if (!records_log) return Status::Internal("file_write_failed", "cannot open " + o.acked_records);
  }
  std::mt19937 rng(o.seed);
  std::map<std::string, int64_t> results;
  int64_t made = 0;
  int64_t sent = 0;
  int64_t batches = 0;
  uint32_t batch_id = 0;
  auto upload = [&](Reader& r, bool flush) -> Status {
    while (r.terminal->queued() >= o.batch || (flush && r.terminal->queued() > 0)) {
      std::vector<TapRecord> batch = r.terminal->TakeBatch(std::min(o.batch, terminals::kRecordsPerBatchMax));
      auto ack = r.client->UploadBatch(++batch_id, batch);
      if (!ack.ok()) return ack.status();
      ++batches;
      sent += static_cast<int64_t>(batch.size());
      if (rng() % 100 < o.duplicates_percent) {  // the acknowledgement was "lost"
        auto again = r.client->UploadBatch(++batch_id, batch);
        if (!again.ok()) return again.status();
        ++batches;
        sent += static_cast<int64_t>(batch.size());
        for (terminals::ResultCode code : again->results) results[std::string(terminals::ResultCodeName(code))]++;
      }
      std::vector<uint32_t> done;
      for (size_t i = 0; i < batch.size(); ++i) {
        terminals::ResultCode code = ack->results[i];
        results[std::string(terminals::ResultCodeName(code))]++;
        if (!terminals::IsFinalRecordResult(code)) continue;
        done.push_back(batch[i].terminal_counter);
        if (log) {
          log << r.terminal->terminal_id() << ',' << batch[i].terminal_counter << ','
              << terminals::ResultCodeName(code) << '\n';
        }
        if (records_log) {
          records_log << r.terminal->terminal_id() << ',' << batch[i].terminal_counter << ','
                      << terminals::ResultCodeName(code) << ','
                      << ToHex(EncodeTapRecord(batch[i])) << '\n';
        }
      }
      if (log) log.flush();
      if (records_log) records_log.flush();
      r.terminal->Acknowledge(done);
      if (done.empty()) break;  // nothing final: do not spin on records the core will not take
    }
    return Status::Ok();
  };
  for (size_t i = 0; i < o.taps; ++i) {
    Reader& r = readers[rng() % readers.size()];
    sim::SimCard& card = cards[rng() % cards.size()];
    sim::TapRequest request;
    request.amount_fen = 100 + static_cast<int64_t>(rng() % 300);
    request.full_fare_fen = request.amount_fen;
    request.time_s = env.clock().NowSeconds();
    if (!r.terminal->Tap(card, request).ok()) continue;
    ++made;
    CITYCARD_RETURN_IF_ERROR(upload(r, false));
  }
  for (Reader& r : readers) CITYCARD_RETURN_IF_ERROR(upload(r, true));
  CommandOutput out;
  out.json["taps"] = made;
  out.json["sent"] = sent;
  out.json["batches"] = batches;
  out.json["results"] = results;
  out.json["terminals"] = readers.size();
  out.json["cards"] = cards.size();
  out.text = fmt::format("{} taps made by {} cards at {} terminals; {} records sent in {} batches.\n",
                         made, cards.size(), readers.size(), sent, batches);
  for (const auto& [name, count] : results) out.text += fmt::format("  {:<20} {}\n", name, count);
  return out;
}

// One line of an --acked-records file: terminal_id,terminal_counter,result,record_hex.
Result<TapRecord> ParseAckedRecordLine(const std::string& line, size_t number) {
  size_t comma = line.rfind(',');
  Bytes bytes;
  if (comma == std::string::npos || !FromHex(std::string_view(line).substr(comma + 1), &bytes)) {
    return Status::BadInput("invalid_acked_record",
                            fmt::format("line {}: not terminal_id,counter,result,record_hex", number));
  }
  auto record = DecodeTapRecord(bytes);
  if (!record.ok()) {
    return Status::BadInput("invalid_acked_record",
                            fmt::format("line {}: {}", number, record.status().message()));
  }
  return record;
}

Result<CommandOutput> Reupload(Environment& env, const SimOptions& o) {
  auto server = ParseServer(o.server);
  if (!server.ok()) return server.status();
  const auto& [host, port] = *server;
  std::ifstream in(o.records);
  if (!in) return Status::NotFound("file_not_found", "cannot read " + o.records);
  std::map<std::string, std::vector<TapRecord>> by_terminal;
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    auto record = ParseAckedRecordLine(line, number);
    if (!record.ok()) return record.status();
    by_terminal[record->terminal_id].push_back(std::move(*record));
  }
  std::map<std::string, int64_t> results;
  int64_t records = 0;
  int64_t batches = 0;
  uint32_t batch_id = 0;
  for (const auto& [terminal_id, list] : by_terminal) {
    auto terminal = env.registry().FindTerminal(terminal_id);
    if (!terminal.ok()) return terminal.status();
    if (!terminal->has_value()) {
      return Status::NotFound("terminal_not_found", "no terminal " + terminal_id);
    }
    auto client = ConnectTerminal(env, **terminal, host, port);
    if (!client.ok()) return client.status();
    for (size_t start = 0; start < list.size(); start += o.batch) {
      size_t count = std::min(o.batch, list.size() - start);
      auto ack = (*client)->UploadBatch(++batch_id,
                                        std::span<const TapRecord>(list.data() + start, count));
      if (!ack.ok()) return ack.status();
      ++batches;
      records += static_cast<int64_t>(count);
      for (terminals::ResultCode code : ack->results) {
        results[std::string(terminals::ResultCodeName(code))]++;
      }
    }
    (*client)->Close();
  }
  CommandOutput out;
  out.json["records"] = records;
  out.json["batches"] = batches;
  out.json["terminals"] = by_terminal.size();
  out.json["results"] = results;
  out.text = fmt::format("{} records of {} terminals sent again in {} batches.\n", records,
                         by_terminal.size(), batches);
  for (const auto& [name, count] : results) out.text += fmt::format("  {:<20} {}\n", name, count);
  return out;
}

}  // namespace

void RegisterSimCommands(CLI::App& app, AppContext& context) {
  auto o = std::make_shared<SimOptions>();
  CLI::App* sim = app.add_subcommand("sim", "simulated card readers and cards");
  sim->require_subcommand(1);
  CLI::App* provision = sim->add_subcommand("provision", "create the simulator's operator, terminals and cards (no server running)");
  provision->add_option("--operator", o->operator_id, "operator id (default SIM)");
  provision->add_option("--terminals", o->terminals, "terminals the operator should have (default 4)");
  provision->add_option("--cards", o->cards, "new cards to issue (default 100)");
  provision->add_option("--balance", o->balance, "yuan put on each new card (default 100)");
  provision->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return Provision(env, *o); });
  });
  CLI::App* run = sim->add_subcommand("run", "make taps and upload them to a server");
  run->add_option("--server", o->server, "HOST:PORT of the server")->required();
  run->add_option("--operator", o->operator_id, "whose terminals to simulate (default SIM)");
  run->add_option("--taps", o->taps, "taps to make (default 1000)");
  run->add_option("--batch", o->batch, "records per upload (default 64, at most 256)")
      ->check(CLI::Range(size_t{1}, terminals::kRecordsPerBatchMax));
  run->add_option("--duplicates", o->duplicates_percent, "percent of batches sent twice (default 10)")
      ->check(CLI::Range(0u, 100u));
  run->add_option("--acked-log", o->acked_log, "append terminal_id,terminal_counter,result per acknowledged record");
  run->add_option("--acked-records", o->acked_records,
                  "append terminal_id,terminal_counter,result,record_hex per acknowledged record");
  run->add_option("--seed", o->seed, "random seed (default 1)");
  run->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return Run(env, *o); });
  });
  CLI::App* reupload = sim->add_subcommand(
      "reupload", "send every record of an --acked-records file again (as a reader that lost its acks)");
  reupload->add_option("--server", o->server, "HOST:PORT of the server")->required();
  reupload->add_option("--records", o->records, "the --acked-records file of sim run")->required();
  reupload->add_option("--batch", o->batch, "records per upload (default 64, at most 256)")
      ->check(CLI::Range(size_t{1}, terminals::kRecordsPerBatchMax));
  reupload->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return Reupload(env, *o); });
  });
}

}  // namespace citycard::cli
