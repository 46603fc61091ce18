#include "tools/cli/bench_world.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "core/account_plan.h"
#include "core/card_number.h"
#include "core/time.h"
#include "crypto/card_keys.h"

namespace citycard::cli {

int64_t BenchNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double BenchSecondsSince(int64_t start_ns) {
  return static_cast<double>(BenchNowNs() - start_ns) / 1e9;
}

uint64_t BenchWorld::CardNo(int64_t index) {
  return CardNumberToInt(MakeCardNumber(static_cast<uint64_t>(index) + 1));
}

sim::SimCard BenchWorld::Card(int64_t index, uint32_t counter, int64_t balance_fen) const {
  uint64_t no = CardNo(index);
  crypto::Mac16 key = crypto::DeriveCardKey(master_, no);
  return sim::SimCard(no, key, card_key_version_, Profile::adult, balance_fen, counter);
}

Result<std::unique_ptr<BenchWorld>> BenchWorld::Create(const BenchWorldOptions& options) {
  if (options.cards < 1 || options.cards > kBenchWorldCardsMax || options.terminals < 1 ||
      options.terminals > kBenchWorldTerminalsMax || options.purse_fen < 1 ||
      options.purse_fen > kBenchPurseFen) {
    return Status::Usage("invalid_bench_size",
                         fmt::format("--cards 1..{} and --terminals 1..{}", kBenchWorldCardsMax,
                                     kBenchWorldTerminalsMax));
  }
  int64_t start = BenchNowNs();
  std::unique_ptr<BenchWorld> world(new BenchWorld());
  world->dir_ = options.dir;
  world->cards_ = options.cards;
  std::error_code error;
  std::filesystem::create_directories(options.dir, error);
  GlobalOptions global;
  global.db_path = options.dir + "/bench.db";
  global.keys_path = options.dir + "/bench.keys";
  auto env = Environment::Create(global);
  if (!env.ok()) return env.status();
  world->env_ = std::move(*env);
  Environment& e = *world->env_;
  world->card_key_version_ = e.keys().CurrentCardKeyVersion();
  auto master = e.keys().CardMasterKey(world->card_key_version_);
  if (!master.ok()) return master.status();
  world->master_.assign(master->begin(), master->end());

  OperatorRequest op{kBenchOperatorId, "Benchmark bus company", OperatorKind::bus, 0};
  auto added = e.terminal_office().AddOperator(op);
  if (!added.ok()) return added.status();
  for (int64_t t = 0; t < options.terminals; ++t) {
    TerminalRequest request{fmt::format("BT{:05d}", t + 1), kBenchOperatorId, TerminalKind::bus,
                            ""};
    auto issued = e.terminal_office().RegisterTerminal(request);
    if (!issued.ok()) return issued.status();
    world->terminals_.push_back(
        BenchTerminal{request.id, issued->plain_key, static_cast<uint8_t>(issued->version)});
  }
  for (int64_t from = 0; from < options.cards; from += kBenchWorldCardsPerCommit) {
    int64_t to = std::min(options.cards, from + kBenchWorldCardsPerCommit);
    CITYCARD_RETURN_IF_ERROR(e.registry().Begin());
    Ledger::JoinedTransaction joined(e.ledger());
    Status status = world->AddCards(from, to, options.purse_fen);
    if (status.ok()) status = e.registry().Commit();
    if (!status.ok()) {
      (void)e.registry().Rollback();
      return status;
    }
    joined.Committed();
  }
  world->setup_seconds_ = BenchSecondsSince(start);
  return world;
}

// Cards [from, to): holders, cards, purses and their opening top-ups, inside the caller's
// transaction. Holders are numbered like the cards; their id hashes are synthetic (no national
// id is needed to tap).
Status BenchWorld::AddCards(int64_t from, int64_t to, int64_t purse_fen) {
  Environment& e = *env_;
  const int64_t now_s = e.clock().NowSeconds();
  std::vector<Account> purses;
  std::vector<Transfer> topups;
  purses.reserve(static_cast<size_t>(to - from));
  topups.reserve(static_cast<size_t>(to - from));
  for (int64_t i = from; i < to; ++i) {
    std::string card_no = MakeCardNumber(static_cast<uint64_t>(i) + 1);
    Holder holder;
    holder.number = i + 1;
    holder.id_hash = fmt::format("bench-holder-{}", i);
    holder.id_masked = "3212**********1234";
    holder.name = "测试用户";
    CITYCARD_RETURN_IF_ERROR(e.registry().InsertHolder(holder));
    citycard::Card card;
    card.card_no = card_no;
    card.holder_number = i + 1;
    card.holder_name = holder.name;
    card.holder_id_masked = holder.id_masked;
    card.expires_day = ClearingDay(now_s) + 3650;
    card.purse_account_id = AccountIdFor(AccountKind::card_purse, CardNumberToInt(card_no));
    card.issued_s = now_s;
    CITYCARD_RETURN_IF_ERROR(e.registry().InsertCard(card));
    Account purse;
    purse.id = card.purse_account_id;
    purse.kind = AccountKind::card_purse;
    purse.owner_ref = CardNumberToInt(card_no);
    purse.flags = kAccountEnforceFloor;
    purses.push_back(purse);
    Transfer topup;
    topup.id = DeriveTransferId(e.digester(), "citycard.bench.topup", card_no);
    topup.debit_account_id = SystemAccountId(AccountKind::topup_clearing);
    topup.credit_account_id = purse.id;
    topup.amount_fen = purse_fen;
    topup.code = static_cast<uint16_t>(TransferCode::topup);
    topups.push_back(topup);
  }
  CITYCARD_RETURN_IF_ERROR(e.ledger().CreateAccounts(purses));
  auto outcomes = e.ledger().Apply(topups);
  if (!outcomes.ok()) return outcomes.status();
  for (TransferOutcome o : *outcomes) {
    if (!IsSuccess(o)) return Status::Internal("bench_setup_failed", "an opening top-up failed");
  }
  return Status::Ok();
}

void BenchWorld::RemoveFiles() {
  std::string db = env_ ? env_->options().db_path : dir_ + "/bench.db";
  std::string keys = env_ ? env_->options().keys_path : dir_ + "/bench.keys";
  env_.reset();
  std::error_code error;
  for (const std::string& path : {db, db + "-wal", db + "-shm", keys}) {
    std::filesystem::remove(path, error);
  }
  std::filesystem::remove(dir_, error);  // only when empty
}

}  // namespace citycard::cli
