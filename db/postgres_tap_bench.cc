#include "db/postgres_tap_bench.h"

#include <string>

#ifdef CITYCARD_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

namespace citycard::db {

#ifndef CITYCARD_HAVE_LIBPQ

bool PostgresAvailable() { return false; }

struct PostgresTapBench::Impl {};
PostgresTapBench::PostgresTapBench(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PostgresTapBench::~PostgresTapBench() = default;

Result<std::unique_ptr<PostgresTapBench>> PostgresTapBench::Connect(const std::string&) {
  return Status::Internal("postgres_unavailable", "this build has no libpq (libpq-dev)");
}
Status PostgresTapBench::Setup(std::span<const uint64_t>, int64_t) {
  return Status::Internal("postgres_unavailable", "this build has no libpq");
}
Status PostgresTapBench::BookGroup(std::span<const PgTap>, std::vector<bool>*) {
  return Status::Internal("postgres_unavailable", "this build has no libpq");
}
Result<PgTotals> PostgresTapBench::Totals() {
  return Status::Internal("postgres_unavailable", "this build has no libpq");
}

#else

namespace {

// The operator payable's and the purses' account ids in the benchmark's tables.
constexpr int64_t kPayableAccountId = 1;
constexpr int kTransferCodeTap = 1;

const char* const kSchema = R"sql(
DROP TABLE IF EXISTS bench_taps, bench_transfers, bench_purses, bench_accounts;
CREATE TABLE bench_purses(card_no BIGINT PRIMARY KEY, balance_fen BIGINT NOT NULL,
                          last_ctc BIGINT NOT NULL);
CREATE TABLE bench_taps(seq BIGSERIAL PRIMARY KEY, terminal_id TEXT NOT NULL, ttc BIGINT NOT NULL,
                        card_no BIGINT NOT NULL, ctc BIGINT NOT NULL, record BYTEA NOT NULL,
                        amount_fen BIGINT NOT NULL, received_ms BIGINT NOT NULL,
                        UNIQUE(terminal_id, ttc), UNIQUE(card_no, ctc));
CREATE TABLE bench_transfers(seq BIGSERIAL PRIMARY KEY, id BYTEA NOT NULL UNIQUE,
                             debit_card_no BIGINT NOT NULL, credit_account_id BIGINT NOT NULL,
                             amount_fen BIGINT NOT NULL, code INT NOT NULL, ts_ms BIGINT NOT NULL);
CREATE TABLE bench_accounts(id BIGINT PRIMARY KEY, balance_fen BIGINT NOT NULL);
)sql";

Status PgError(PGconn* conn, const std::string& what) {
  std::string message = PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return Status::Internal("postgres_error", what + ": " + message);
}

// Runs a statement without parameters and checks its status.
Status Exec(PGconn* conn, const char* sql, ExecStatusType want = PGRES_COMMAND_OK) {
  PGresult* r = PQexec(conn, sql);
  bool ok = PQresultStatus(r) == want;
  std::string error = ok ? "" : PQresultErrorMessage(r);
  PQclear(r);
  if (!ok) return Status::Internal("postgres_error", std::string(sql).substr(0, 60) + ": " + error);
  return Status::Ok();
}

Result<int64_t> QueryInt(PGconn* conn, const char* sql) {
  PGresult* r = PQexec(conn, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    std::string error = PQresultErrorMessage(r);
    PQclear(r);
    return Status::Internal("postgres_error", std::string(sql) + ": " + error);
  }
  int64_t v = PQgetisnull(r, 0, 0) ? 0 : std::stoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

// A statement's parameters: text for numbers, binary for byte strings.
struct Params {
  std::vector<std::string> text;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;

  void Int(int64_t v) { Add(std::to_string(v), 0); }
  void Text(std::string s) { Add(std::move(s), 0); }
  void Blob(const uint8_t* data, size_t n) {
    Add(std::string(reinterpret_cast<const char*>(data), n), 1);
  }
  void Add(std::string s, int format) {
    text.push_back(std::move(s));
    formats.push_back(format);
  }
  // Pointers are taken only when every value is in place (the vector no longer moves).
  void Finish() {
    values.clear();
    lengths.clear();
    for (const std::string& s : text) {
      values.push_back(s.data());
      lengths.push_back(static_cast<int>(s.size()));
    }
  }
};

}  // namespace

bool PostgresAvailable() { return true; }

struct PostgresTapBench::Impl {
  PGconn* conn = nullptr;
  ~Impl() {
    if (conn != nullptr) PQfinish(conn);
  }

  Status Send(const char* name, Params& p) {
    p.Finish();
    if (PQsendQueryPrepared(conn, name, static_cast<int>(p.values.size()), p.values.data(),
                            p.lengths.data(), p.formats.data(), 0) != 1) {
      return PgError(conn, name);
    }
    return Status::Ok();
  }

  // Reads one pipelined statement's result: the rows it changed.
  Result<int64_t> Changed(const char* what) {
    PGresult* r = PQgetResult(conn);
    if (r == nullptr) return Status::Internal("postgres_error", std::string(what) + ": no result");
    ExecStatusType status = PQresultStatus(r);
    int64_t changed = 0;
    std::string error;
    if (status == PGRES_COMMAND_OK) {
      const char* n = PQcmdTuples(r);
      changed = *n ? std::stoll(n) : 0;
    } else {
      error = PQresultErrorMessage(r);
    }
    PQclear(r);
    PGresult* end = PQgetResult(conn);  // the NULL that ends this statement's results
    if (end != nullptr) PQclear(end);
    if (status != PGRES_COMMAND_OK) return Status::Internal("postgres_error", std::string(what) + ": " + error);
    return changed;
  }

  Status ReadSync() {
    PGresult* r = PQgetResult(conn);
    bool ok = r != nullptr && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    if (r != nullptr) PQclear(r);
    return ok ? Status::Ok() : Status::Internal("postgres_error", "pipeline out of step");
  }

  // One transaction: BEGIN, every tap's three statements, the payable, then COMMIT when
  // `commit` and every tap went in, else ROLLBACK. booked[i] as each tap fared.
  Status Run(std::span<const PgTap> taps, const std::vector<bool>& skip, std::vector<bool>* booked,
             bool* all_in) {
    if (PQenterPipelineMode(conn) != 1) return PgError(conn, "pipeline");
    if (PQsendQueryParams(conn, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0) != 1) {
      return PgError(conn, "BEGIN");
    }
    int64_t total = 0;
    for (size_t i = 0; i < taps.size(); ++i) {
      if (skip[i]) continue;
      const TapRecord& r = *taps[i].record;
      Params tap;
      tap.Text(r.terminal_id);
      tap.Int(r.terminal_counter);
      tap.Int(static_cast<int64_t>(r.card_no));
      tap.Int(r.card_counter);
      tap.Blob(taps[i].encoded.data(), taps[i].encoded.size());
      tap.Int(r.amount_fen);
      tap.Int(r.time_s * 1000);
      CITYCARD_RETURN_IF_ERROR(Send("ins_tap", tap));
      Params purse;
      purse.Int(static_cast<int64_t>(r.card_no));
      purse.Int(r.amount_fen);
      purse.Int(r.card_counter);
      purse.Int(r.balance_before_fen);
      CITYCARD_RETURN_IF_ERROR(Send("upd_purse", purse));
      Params transfer;
      transfer.Blob(taps[i].transfer_id, sizeof taps[i].transfer_id);
      transfer.Int(static_cast<int64_t>(r.card_no));
      transfer.Int(kPayableAccountId);
      transfer.Int(r.amount_fen);
      transfer.Int(kTransferCodeTap);
      transfer.Int(r.time_s * 1000);
      CITYCARD_RETURN_IF_ERROR(Send("ins_transfer", transfer));
      total += r.amount_fen;
    }
    Params payable;
    payable.Int(kPayableAccountId);
    payable.Int(total);
    CITYCARD_RETURN_IF_ERROR(Send("upd_payable", payable));
    if (PQpipelineSync(conn) != 1) return PgError(conn, "sync");
    CITYCARD_RETURN_IF_ERROR(Changed("BEGIN").status());
    *all_in = true;
    for (size_t i = 0; i < taps.size(); ++i) {
      if (skip[i]) {
        (*booked)[i] = false;
        continue;
      }
      auto a = Changed("tap");
      if (!a.ok()) return a.status();
      auto b = Changed("purse");
      if (!b.ok()) return b.status();
      auto c = Changed("transfer");
      if (!c.ok()) return c.status();
      (*booked)[i] = *a == 1 && *b == 1 && *c == 1;
      *all_in = *all_in && (*booked)[i];
    }
    CITYCARD_RETURN_IF_ERROR(Changed("payable").status());
    CITYCARD_RETURN_IF_ERROR(ReadSync());
    const char* end = *all_in ? "COMMIT" : "ROLLBACK";
    if (PQsendQueryParams(conn, end, 0, nullptr, nullptr, nullptr, nullptr, 0) != 1) {
      return PgError(conn, end);
    }
    if (PQpipelineSync(conn) != 1) return PgError(conn, "sync");
    CITYCARD_RETURN_IF_ERROR(Changed(end).status());
    CITYCARD_RETURN_IF_ERROR(ReadSync());
    if (PQexitPipelineMode(conn) != 1) return PgError(conn, "pipeline exit");
    return Status::Ok();
  }
};

PostgresTapBench::PostgresTapBench(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PostgresTapBench::~PostgresTapBench() = default;

Result<std::unique_ptr<PostgresTapBench>> PostgresTapBench::Connect(const std::string& conninfo) {
  auto impl = std::make_unique<Impl>();
  impl->conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(impl->conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(impl->conn);
    return Status::Internal("postgres_connect_failed", message);
  }
  // Durability as the core's: every COMMIT waits for its WAL flush.
  CITYCARD_RETURN_IF_ERROR(Exec(impl->conn, "SET synchronous_commit = on"));
  CITYCARD_RETURN_IF_ERROR(Exec(impl->conn, "SET client_min_messages = warning"));
  return std::unique_ptr<PostgresTapBench>(new PostgresTapBench(std::move(impl)));
}

Status PostgresTapBench::Setup(std::span<const uint64_t> card_nos, int64_t purse_fen) {
  PGconn* conn = impl_->conn;
  CITYCARD_RETURN_IF_ERROR(Exec(conn, kSchema));
  CITYCARD_RETURN_IF_ERROR(Exec(conn, "COPY bench_purses FROM STDIN", PGRES_COPY_IN));
  std::string chunk;
  for (size_t i = 0; i < card_nos.size(); ++i) {
    chunk += std::to_string(card_nos[i]);
    chunk += '\t';
    chunk += std::to_string(purse_fen);
    chunk += "\t0\n";
    if (chunk.size() > (1u << 20) || i + 1 == card_nos.size()) {
      if (PQputCopyData(conn, chunk.data(), static_cast<int>(chunk.size())) != 1) {
        return PgError(conn, "COPY");
      }
      chunk.clear();
    }
  }
  if (PQputCopyEnd(conn, nullptr) != 1) return PgError(conn, "COPY end");
  PGresult* r = PQgetResult(conn);
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string error = ok ? "" : PQresultErrorMessage(r);
  PQclear(r);
  while ((r = PQgetResult(conn)) != nullptr) PQclear(r);
  if (!ok) return Status::Internal("postgres_error", "COPY: " + error);
  CITYCARD_RETURN_IF_ERROR(Exec(conn, "INSERT INTO bench_accounts VALUES (1, 0)"));
  CITYCARD_RETURN_IF_ERROR(Exec(conn, "ANALYZE"));
  const char* const statements[][2] = {
      {"ins_tap",
       "INSERT INTO bench_taps(terminal_id, ttc, card_no, ctc, record, amount_fen, received_ms) "
       "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"},
      {"upd_purse",
       "UPDATE bench_purses SET balance_fen = balance_fen - $2, last_ctc = $3 "
       "WHERE card_no = $1 AND last_ctc < $3 AND $4 <= balance_fen"},
      {"ins_transfer",
       "INSERT INTO bench_transfers(id, debit_card_no, credit_account_id, amount_fen, code, ts_ms) "
       "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"},
      {"upd_payable", "UPDATE bench_accounts SET balance_fen = balance_fen + $2 WHERE id = $1"},
  };
  for (const auto& s : statements) {
    PGresult* p = PQprepare(conn, s[0], s[1], 0, nullptr);
    bool prepared = PQresultStatus(p) == PGRES_COMMAND_OK;
    std::string perror = prepared ? "" : PQresultErrorMessage(p);
    PQclear(p);
    if (!prepared) return Status::Internal("postgres_error", std::string(s[0]) + ": " + perror);
  }
  return Status::Ok();
}

Status PostgresTapBench::BookGroup(std::span<const PgTap> taps, std::vector<bool>* booked) {
  booked->assign(taps.size(), false);
  std::vector<bool> skip(taps.size(), false);
  // A tap that failed takes itself out and the group runs again; each attempt removes one.
  for (size_t attempt = 0; attempt <= taps.size(); ++attempt) {
    bool all_in = false;
    CITYCARD_RETURN_IF_ERROR(impl_->Run(taps, skip, booked, &all_in));
    if (all_in) return Status::Ok();
    for (size_t i = 0; i < taps.size(); ++i) {
      if (!skip[i] && !(*booked)[i]) skip[i] = true;
    }
  }
  return Status::Internal("postgres_error", "a group did not settle");
}

Result<PgTotals> PostgresTapBench::Totals() {
  PGconn* conn = impl_->conn;
  PgTotals t;
  auto taps = QueryInt(conn, "SELECT count(*) FROM bench_taps");
  if (!taps.ok()) return taps.status();
  auto transfers = QueryInt(conn, "SELECT count(*) FROM bench_transfers");
  if (!transfers.ok()) return transfers.status();
  auto purses = QueryInt(conn, "SELECT sum(balance_fen) FROM bench_purses");
  if (!purses.ok()) return purses.status();
  auto payable = QueryInt(conn, "SELECT balance_fen FROM bench_accounts WHERE id = 1");
  if (!payable.ok()) return payable.status();
  t.taps = *taps;
  t.transfers = *transfers;
  t.purse_sum_fen = *purses;
  t.payable_fen = *payable;
  return t;
}

#endif

}  // namespace citycard::db
