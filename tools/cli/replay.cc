#include "tools/cli/replay.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>
#include <fmt/format.h>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/card_office.h"
#include "core/ingest.h"
#include "core/national_id.h"
#include "core/terminal_office.h"
#include "core/time.h"
#include "core/unit_of_work.h"
#include "crypto/digest.h"
#include "crypto/key_file.h"
#include "crypto/key_wrap.h"
#include "crypto/keyed_tap_authenticator.h"
#include "crypto/national_id_hash.h"
#include "crypto/terminal_keys.h"
#include "db/database.h"
#include "db/sqlite_ledger_store.h"
#include "db/sqlite_registry_store.h"
#include "db/sqlite_settlement_store.h"
#include "db/sqlite_tap_store.h"
#include "terminals/client.h"
#include "terminals/codes.h"
#include "terminals/server_options.h"
#include "tools/cli/environment.h"
#include "tools/cli/replay_plan.h"
#include "tools/server/ingest_server.h"
#include "tools/sim/sim_card.h"
#include "tools/sim/sim_terminal.h"

namespace citycard::cli {

namespace {

// The holder every provisioned replay card belongs to: a made-up national id (its check
// character computed), the file's cards being anonymous.
constexpr std::string_view kReplayHolderIdFirst17 = "44030019700101009";
constexpr std::string_view kReplayHolderName = "深圳通回放";
constexpr std::string_view kReplayTopupDomain = "citycard.replay.topup";

class ReplayTerminalKeyMaker final : public TerminalKeyMaker {
 public:
  explicit ReplayTerminalKeyMaker(const crypto::KeyFile& keys) : keys_(keys) {}
  Result<NewTerminalKey> Make() const override {
    NewTerminalKey key;
    key.plain_key = crypto::GenerateTerminalKey();
    auto wrapped = crypto::WrapKey(keys_.WrapKey(), key.plain_key);
    if (!wrapped.ok()) return wrapped.status();
    key.wrapped_key = std::move(*wrapped);
    return key;
  }

 private:
  const crypto::KeyFile& keys_;
};

// The replay's own connection, ledger and stores, on its own clock.
struct Stack {
  std::unique_ptr<Clock> clock;
  ManualClock* manual = nullptr;  // the clock, when the replay drives it
  std::unique_ptr<crypto::KeyFile> keys;
  crypto::Sha256Digester digester;
  std::unique_ptr<db::Database> db;
  std::unique_ptr<db::SqliteLedgerStore> ledger_store;
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<db::SqliteRegistryStore> registry;
  std::unique_ptr<db::SqliteSettlementStore> settlement;
  CardOfficeConfig config;
};

Result<std::unique_ptr<Stack>> OpenStack(const GlobalOptions& options, bool manual_clock) {
  auto stack = std::make_unique<Stack>();
  if (manual_clock) {
    auto clock = std::make_unique<ManualClock>();
    stack->manual = clock.get();
    stack->clock = std::move(clock);
  } else {
    auto clock = ClockFromEnvironment();
    if (!clock.ok()) return clock.status();
    stack->clock = std::move(*clock);
  }
  auto config = ConfigFromEnvironment();
  if (!config.ok()) return config.status();
  stack->config = *config;
  auto keys = crypto::KeyFile::Load(options.keys_path);
  if (!keys.ok()) return keys.status();
  stack->keys = std::make_unique<crypto::KeyFile>(std::move(*keys));
  auto db = db::Database::Open(options.db_path, false);
  if (!db.ok()) return db.status();
  stack->db = std::move(*db);
  auto ledger_store = db::SqliteLedgerStore::Open(*stack->db);
  if (!ledger_store.ok()) return ledger_store.status();
  stack->ledger_store = std::move(*ledger_store);
  stack->ledger = std::make_unique<Ledger>(*stack->ledger_store, *stack->clock, stack->digester);
  auto registry = db::SqliteRegistryStore::Open(*stack->db);
  if (!registry.ok()) return registry.status();
  stack->registry = std::move(*registry);
  auto settlement = db::SqliteSettlementStore::Open(*stack->db);
  if (!settlement.ok()) return settlement.status();
  stack->settlement = std::move(*settlement);
  return stack;
}

// ---- Provisioning ------------------------------------------------------------------------

Status ProvisionOperatorsAndTerminals(Stack& s, const ReplayPlan& plan) {
  ReplayTerminalKeyMaker key_maker(*s.keys);
  TerminalOffice office(*s.registry, *s.ledger, key_maker, *s.clock);
  for (const ReplayOperator& op : plan.operators) {
    auto found = s.registry->FindOperator(op.id);
    if (!found.ok()) return found.status();
    if (found->has_value()) continue;
    auto added = office.AddOperator(OperatorRequest{op.id, op.name, op.kind, 0});
    if (!added.ok()) return added.status();
  }
  for (const ReplayTerminal& t : plan.terminals) {
    auto found = s.registry->FindTerminal(t.id);
    if (!found.ok()) return found.status();
    if (found->has_value()) continue;
    auto added = office.RegisterTerminal(TerminalRequest{t.id, t.operator_id, t.kind, t.route});
    if (!added.ok()) return added.status();
  }
  return Status::Ok();
}

Result<Holder> ReplayHolder(Stack& s) {
  std::string id = std::string(kReplayHolderIdFirst17);
  id.push_back(NationalIdCheckChar(kReplayHolderIdFirst17));
  std::string hash = crypto::HashNationalId(s.keys->IdHashKey(), id);
  auto found = s.registry->FindHolder(hash);
  if (!found.ok()) return found.status();
  if (found->has_value()) return std::move(**found);
  Holder holder;
  holder.id_hash = hash;
  holder.id_masked = MaskNationalId(id);
  holder.name = std::string(kReplayHolderName);
  Status status = RunUnitOfWork(*s.registry, *s.ledger, [&]() -> Status {
    auto number = s.registry->NextSequence("holder");
    if (!number.ok()) return number.status();
    holder.number = *number;
    Account medical;
    medical.id = AccountIdFor(AccountKind::medical_account, static_cast<uint64_t>(*number));
    medical.kind = AccountKind::medical_account;
    medical.owner_ref = static_cast<uint64_t>(*number);
    medical.flags = kAccountEnforceFloor;
    CITYCARD_RETURN_IF_ERROR(s.ledger->CreateAccounts(std::span<const Account>(&medical, 1)));
    return s.registry->InsertHolder(holder);
  });
  if (!status.ok()) return status;
  return holder;
}

// Provisions the cards of plan.cards[begin, end) not in the registry yet, in one transaction:
// purse accounts, card rows, and one top-up each (top-up clearing -> purse, its id derived from
// the card number, so provisioning again books nothing).
Status ProvisionCardChunk(Stack& s, const Holder& holder, const ReplayPlan& plan, size_t begin,
                          size_t end) {
  return RunUnitOfWork(*s.registry, *s.ledger, [&]() -> Status {
    std::vector<Account> purses;
    std::vector<Transfer> topups;
    for (size_t i = begin; i < end; ++i) {
      const ReplayCard& rc = plan.cards[i];
      auto found = s.registry->FindCard(rc.card_no);
      if (!found.ok()) return found.status();
      if (found->has_value()) continue;
      uint64_t owner = CardNumberToInt(rc.card_no);
      Card card;
      card.card_no = rc.card_no;
      card.holder_number = holder.number;
      card.holder_name = holder.name;
      card.holder_id_masked = holder.id_masked;
      card.profile = rc.profile;
      card.expires_day = ClearingDay(s.clock->NowSeconds()) + 10 * 366;
      card.purse_account_id = AccountIdFor(AccountKind::card_purse, owner);
      card.issued_s = s.clock->NowSeconds();
      CITYCARD_RETURN_IF_ERROR(s.registry->InsertCard(card));
      Account purse;
      purse.id = card.purse_account_id;
      purse.kind = AccountKind::card_purse;
      purse.owner_ref = owner;
      purse.floor_fen = PurseFloorFen(rc.profile, s.config);
      purse.flags = kAccountEnforceFloor;
      purses.push_back(purse);
      Transfer topup;
      topup.id = DeriveTransferId(s.digester, kReplayTopupDomain, rc.card_no);
      topup.debit_account_id = SystemAccountId(AccountKind::topup_clearing);
      topup.credit_account_id = purse.id;
      topup.amount_fen = rc.topup_fen;
      topup.code = static_cast<uint16_t>(TransferCode::topup);
      topups.push_back(topup);
    }
    if (purses.empty()) return Status::Ok();
    CITYCARD_RETURN_IF_ERROR(s.ledger->CreateAccounts(purses));
    auto outcomes = s.ledger->Apply(topups);
    if (!outcomes.ok()) return outcomes.status();
    for (size_t i = 0; i < topups.size(); ++i) {
      if (!IsSuccess((*outcomes)[i])) {
        return Status::Internal("provisioning_failed",
                                fmt::format("the top-up of a replay card was declined: {}",
                                            TransferOutcomeName((*outcomes)[i])));
      }
    }
    return Status::Ok();
  });
}

Status Provision(Stack& s, const ReplayPlan& plan) {
  CITYCARD_RETURN_IF_ERROR(ProvisionOperatorsAndTerminals(s, plan));
  auto holder = ReplayHolder(s);
  if (!holder.ok()) return holder.status();
  for (size_t begin = 0; begin < plan.cards.size(); begin += kReplayProvisionCardsPerCommit) {
    size_t end = std::min(plan.cards.size(), begin + kReplayProvisionCardsPerCommit);
    CITYCARD_RETURN_IF_ERROR(ProvisionCardChunk(s, *holder, plan, begin, end));
  }
  return Status::Ok();
}

// ---- Simulation --------------------------------------------------------------------------

// What each planned tap became: the signed record, or why there is none.
struct Simulated {
  std::vector<std::optional<TapRecord>> records;  // by tap index
  std::vector<std::string> refusals;              // by tap index; "" when there is a record
};

// A registered terminal's current key, as its reader holds it.
struct ReaderKey {
  std::string operator_id;
  uint8_t version = 1;
  Bytes key;
};

Result<std::map<std::string, ReaderKey>> LoadReaderKeys(Stack& s, const ReplayPlan& plan) {
  std::map<std::string, ReaderKey> keys;
  for (const ReplayTerminal& t : plan.terminals) {
    auto found = s.registry->FindTerminal(t.id);
    if (!found.ok()) return found.status();
    if (!found->has_value() || (*found)->keys.empty()) continue;
    const TerminalKey& key = (*found)->keys.back();
    auto plain = crypto::UnwrapKey(s.keys->WrapKey(), key.wrapped_key);
    if (!plain.ok()) return plain.status();
    keys[t.id] = ReaderKey{(*found)->operator_id, static_cast<uint8_t>(key.version), *plain};
  }
  return keys;
}

std::map<std::string, sim::SimTerminal> MakeTerminals(const std::map<std::string, ReaderKey>& keys) {
  std::map<std::string, sim::SimTerminal> terminals;
  for (const auto& [id, key] : keys) {
    // Counters start at zero on every replay, so that the same file gives the same records.
    terminals.emplace(id, sim::SimTerminal(id, key.operator_id, key.key, key.version, 0));
  }
  return terminals;
}

Result<std::map<std::string, sim::SimCard>> LoadCards(Stack& s, const ReplayPlan& plan) {
  uint8_t version = s.keys->CurrentCardKeyVersion();
  auto master = s.keys->CardMasterKey(version);
  if (!master.ok()) return master.status();
  std::map<std::string, sim::SimCard> cards;
  for (const ReplayCard& rc : plan.cards) {
    auto found = s.registry->FindCard(rc.card_no);
    if (!found.ok()) return found.status();
    Profile profile = found->has_value() ? (*found)->profile : rc.profile;
    // The card holds what provisioning put on it, with its counter at zero: the replay
    // re-lives the file from the state provisioning leaves, whatever happened since.
    cards.emplace(rc.card_no, sim::SimCard::Issue(*master, version, CardNumberToInt(rc.card_no),
                                                  profile, rc.topup_fen,
                                                  -PurseFloorFen(profile, s.config)));
  }
  return cards;
}

Result<Simulated> Simulate(Stack& s, const ReplayPlan& plan,
                           const std::map<std::string, ReaderKey>& keys) {
  std::map<std::string, sim::SimTerminal> terminals = MakeTerminals(keys);
  auto cards = LoadCards(s, plan);
  if (!cards.ok()) return cards.status();
  Simulated out;
  out.records.resize(plan.taps.size());
  out.refusals.resize(plan.taps.size());
  for (size_t i = 0; i < plan.taps.size(); ++i) {
    const ReplayTap& tap = plan.taps[i];
    auto terminal = terminals.find(tap.terminal_id);
    if (terminal == terminals.end()) {
      out.refusals[i] = "unknown_terminal";
      continue;
    }
    sim::TapRequest request;
    request.type = tap.type;
    request.amount_fen = tap.amount_fen;
    request.full_fare_fen = tap.full_fare_fen;
    request.concession_fen = tap.concession_fen;
    request.transfer_discount_fen = tap.transfer_discount_fen;
    request.flags = tap.flags;
    request.time_s = tap.time_s;
    auto record = terminal->second.Tap(cards->at(tap.card_no), request);
    if (!record.ok()) {
      out.refusals[i] = record.status().code();
      continue;
    }
    // The replay keeps the records itself; the reader's own queue is emptied at once.
    uint32_t counter = record->terminal_counter;
    terminal->second.Acknowledge(std::span<const uint32_t>(&counter, 1));
    out.records[i] = std::move(*record);
  }
  return out;
}

// ---- Upload ------------------------------------------------------------------------------

void Count(ReplaySummary* summary, const std::string& code) {
  summary->rejected += 1;
  summary->rejected_by_code[code] += 1;
}

void CountResult(ReplaySummary* summary, terminals::ResultCode code) {
  using terminals::ResultCode;
  if (code == ResultCode::accepted || code == ResultCode::accepted_late ||
      code == ResultCode::accepted_with_alert) {
    summary->accepted += 1;
    if (code == ResultCode::accepted_late) summary->late += 1;
  } else if (code == ResultCode::duplicate) {
    summary->duplicates += 1;
  } else {
    Count(summary, std::string(terminals::ResultCodeName(code)));
  }
}

Result<std::pair<std::string, uint16_t>> ParseServer(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::Usage("invalid_server", "--server is HOST:PORT: " + text);
  }
  std::string port_text = text.substr(colon + 1);
  if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port_text) == 0 || std::stoul(port_text) > 65535) {
    return Status::Usage("invalid_server", "--server is HOST:PORT: " + text);
  }
  return std::make_pair(text.substr(0, colon), static_cast<uint16_t>(std::stoul(port_text)));
}

struct Uploader {
  Stack& s;
  const std::map<std::string, ReaderKey>& keys;
  std::string host;
  uint16_t port = 0;
  std::map<std::string, std::unique_ptr<terminals::TerminalClient>> clients;
  std::map<std::string, std::string> refused_terminals;  // terminal -> why
  std::map<std::string, uint32_t> batch_ids;

  // The connected, authenticated client of a terminal, or why there is none.
  Result<terminals::TerminalClient*> ClientFor(const std::string& terminal_id) {
    auto found = clients.find(terminal_id);
    if (found != clients.end()) return found->second.get();
    auto key = keys.find(terminal_id);
    if (key == keys.end()) return Status::NotFound("unknown_terminal", terminal_id);
    terminals::ClientOptions options;
    options.terminal_id = terminal_id;
    options.key_version = key->second.version;
    options.terminal_key = key->second.key;
    options.core_public_key = s.keys->CoreSigner().PublicKey();
    auto client = terminals::TerminalClient::ConnectTcp(host, port, std::move(options));
    if (!client.ok()) return client.status();
    CITYCARD_RETURN_IF_ERROR((*client)->Handshake());
    terminals::TerminalClient* raw = client->get();
    clients.emplace(terminal_id, std::move(*client));
    return raw;
  }

  // Uploads one batch; a refusal of the terminal or the session counts its records rejected.
  Status Upload(const ReplayBatch& batch, const std::vector<TapRecord>& records,
                ReplaySummary* summary) {
    auto refused = refused_terminals.find(batch.terminal_id);
    if (refused != refused_terminals.end()) {
      for (size_t i = 0; i < records.size(); ++i) Count(summary, refused->second);
      return Status::Ok();
    }
    auto client = ClientFor(batch.terminal_id);
    if (!client.ok()) {
      if (client.status().code() == "connection_failed") return client.status();
      refused_terminals[batch.terminal_id] = client.status().code();
      for (size_t i = 0; i < records.size(); ++i) Count(summary, client.status().code());
      return Status::Ok();
    }
    uint32_t batch_id = ++batch_ids[batch.terminal_id];
    auto ack = (*client)->UploadBatch(batch_id, records);
    if (!ack.ok()) {
      clients.erase(batch.terminal_id);  // the session ended; a later batch reconnects
      for (size_t i = 0; i < records.size(); ++i) Count(summary, ack.status().code());
      return Status::Ok();
    }
    for (terminals::ResultCode code : ack->results) CountResult(summary, code);
    return Status::Ok();
  }

  void CloseAll() {
    for (auto& [id, client] : clients) client->Close();
    clients.clear();
  }
};

// Uploads every batch in order. The registry and ledger are not touched here: while an
// in-process server runs, its writer thread alone uses the connection.
Status UploadAll(Stack& s, const ReplayPlan& plan, const Simulated& simulated,
                 const std::vector<ReplayBatch>& batches,
                 const std::map<std::string, ReaderKey>& keys, int64_t cutoff,
                 const std::string& host, uint16_t port, const ReplayOptions& options,
                 ReplaySummary* summary) {
  Uploader uploader{s, keys, host, port, {}, {}, {}};
  std::set<int64_t> days;
  size_t done = 0;
  for (const ReplayBatch& batch : batches) {
    std::vector<TapRecord> records;
    for (size_t index : batch.taps) {
      if (simulated.records[index].has_value()) {
        records.push_back(*simulated.records[index]);
      } else {
        Count(summary, simulated.refusals[index]);
      }
    }
    if (s.manual != nullptr) s.manual->SetMs(batch.arrival_s * 1000);
    if (!records.empty()) {
      Status status = uploader.Upload(batch, records, summary);
      if (!status.ok()) {
        uploader.CloseAll();
        return status;
      }
      summary->batches += 1;
      days.insert(ClearingDay(batch.arrival_s, cutoff));
    }
    done += batch.taps.size();
    if (options.progress) options.progress(done, plan.taps.size());
  }
  uploader.CloseAll();
  for (int64_t day : days) summary->days.push_back(FormatDay(day));
  return Status::Ok();
}

// Whether the ledger already holds transfers stamped after `start_ms`: then whatever the replay
// books is stamped with the ledger's later time (its timestamps never go back), and the
// settlement of the replayed days cannot reconcile those taps.
Result<bool> LedgerAhead(Stack& s, int64_t start_ms) {
  auto head = s.ledger_store->LoadHead();
  if (!head.ok()) return head.status();
  return head->last_batch.has_value() && head->last_batch->timestamp_ms > start_ms;
}

}  // namespace

Result<ReplaySummary> ReplaySzt(const GlobalOptions& options, const std::vector<SztRow>& rows,
                                const ReplayOptions& replay) {
  std::optional<std::pair<std::string, uint16_t>> remote;
  if (!replay.server.empty()) {
    auto parsed = ParseServer(replay.server);
    if (!parsed.ok()) return parsed.status();
    remote = *parsed;
  }
  auto stack = OpenStack(options, !remote.has_value());
  if (!stack.ok()) return stack.status();
  Stack& s = **stack;
  auto plan = PlanReplay(s.digester, rows);
  if (!plan.ok()) return plan.status();
  auto cutoff = s.settlement->ClearingCutoff();
  if (!cutoff.ok()) return cutoff.status();
  std::vector<ReplayBatch> batches = PlanBatches(*plan, *cutoff);
  bool ledger_ahead = false;

  if (s.manual != nullptr && !plan->taps.empty()) {
    int64_t start_ms = (plan->taps.front().time_s - kReplayProvisionLeadSeconds) * 1000;
    auto ahead = LedgerAhead(s, start_ms);
    if (!ahead.ok()) return ahead.status();
    ledger_ahead = *ahead;
    s.manual->SetMs(start_ms);
  }
  if (replay.provision) CITYCARD_RETURN_IF_ERROR(Provision(s, *plan));
  auto keys = LoadReaderKeys(s, *plan);
  if (!keys.ok()) return keys.status();
  auto simulated = Simulate(s, *plan, *keys);
  if (!simulated.ok()) return simulated.status();

  ReplaySummary summary;
  summary.ledger_ahead = ledger_ahead;
  summary.taps = static_cast<int64_t>(rows.size());
  summary.operators = static_cast<int64_t>(plan->operators.size());
  summary.terminals = static_cast<int64_t>(plan->terminals.size());
  summary.cards = static_cast<int64_t>(plan->cards.size());
  if (remote.has_value()) {
    CITYCARD_RETURN_IF_ERROR(UploadAll(s, *plan, *simulated, batches, *keys, *cutoff,
                                       remote->first, remote->second, replay, &summary));
    return summary;
  }
  // The server logs its own start and stop at info level on the default logger; in the replay
  // those lines are noise (and on stdout they would break --json), so only warnings pass.
  struct LogLevelGuard {
    spdlog::level::level_enum saved = spdlog::get_level();
    LogLevelGuard() { spdlog::set_level(spdlog::level::warn); }
    ~LogLevelGuard() { spdlog::set_level(saved); }
  } quiet_server;
  server::IngestServerOptions server_options;
  server_options.listen.push_back(server::ListenAddress{"127.0.0.1", 0, std::nullopt});
  server_options.backend.ingest.clearing_cutoff_s = *cutoff;
  auto server = server::StartIngestServer(*s.db, *s.ledger, *s.registry, *s.keys, s.digester,
                                          *s.clock, std::move(server_options));
  if (!server.ok()) return server.status();
  Status uploaded = UploadAll(s, *plan, *simulated, batches, *keys, *cutoff, "127.0.0.1",
                              (*server)->ports().front(), replay, &summary);
  (*server)->Stop();
  CITYCARD_RETURN_IF_ERROR(uploaded);
  return summary;
}

nlohmann::json ReplaySummaryJson(const ReplaySummary& summary) {
  nlohmann::json json = {{"taps", summary.taps},           {"accepted", summary.accepted},
                         {"duplicates", summary.duplicates}, {"rejected", summary.rejected},
                         {"operators", summary.operators},   {"terminals", summary.terminals},
                         {"cards", summary.cards},           {"batches", summary.batches},
                         {"late", summary.late},             {"days", summary.days},
                         {"ledger_ahead", summary.ledger_ahead}};
  json["rejected_by_code"] = nlohmann::json::object();
  for (const auto& [code, count] : summary.rejected_by_code) json["rejected_by_code"][code] = count;
  return json;
}

}  // namespace citycard::cli
