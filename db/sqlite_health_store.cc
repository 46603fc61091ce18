#include "db/sqlite_health_store.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace citycard::db {

namespace {

// Schemes and groups are kept as bit masks: bit (n - 1) for number n, as the protocol's
// identity check response carries them.
template <typename T>
int64_t Mask(const std::vector<T>& values) {
  int64_t mask = 0;
  for (T v : values) mask |= int64_t{1} << (static_cast<int>(v) - 1);
  return mask;
}

template <typename T>
std::vector<T> Unmask(int64_t mask, size_t count) {
  std::vector<T> out;
  for (size_t n = 1; n <= count; ++n) {
    if ((mask >> (n - 1)) & 1) out.push_back(static_cast<T>(n));
  }
  return out;
}

constexpr size_t kGroupCount = 4;  // core/registry.h SpecialGroup

// The figures as a JSON array: [year, assistance_paid, then per scheme and category
// deductible_used, fund_paid], scheme-major in number order.
std::string FiguresText(const MedicalYearToDate& f) {
  nlohmann::json a = nlohmann::json::array({f.year, f.assistance_paid_fen});
  for (const auto& scheme : f.by_category) {
    for (const CategoryYearToDate& c : scheme) {
      a.push_back(c.deductible_used_fen);
      a.push_back(c.fund_paid_fen);
    }
  }
  return a.dump();
}

Result<MedicalYearToDate> ParseFigures(const std::string& text) {
  nlohmann::json a = nlohmann::json::parse(text, nullptr, false);
  constexpr size_t kSize = 2 + 2 * kSchemeCount * kMedicalCategoryCount;
  if (!a.is_array() || a.size() != kSize) {
    return Status::Internal("invalid_year_to_date", "kept year-to-date figures do not parse");
  }
  for (const auto& v : a) {
    if (!v.is_number_integer()) {
      return Status::Internal("invalid_year_to_date", "kept year-to-date figures do not parse");
    }
  }
  MedicalYearToDate f;
  f.year = a[0].get<int32_t>();
  f.assistance_paid_fen = a[1].get<int64_t>();
  size_t i = 2;
  for (auto& scheme : f.by_category) {
    for (CategoryYearToDate& c : scheme) {
      c.deductible_used_fen = a[i++].get<int64_t>();
      c.fund_paid_fen = a[i++].get<int64_t>();
    }
  }
  return f;
}

constexpr std::string_view kSettlementColumns =
    "s.hospital_id, s.bill_id, s.card_no, s.holder_number, s.scheme, s.category, s.provided, "
    "s.rules_version, s.terminal_id, s.settled_ms, s.amount_fen, s.deductible_fen, s.fund_fen, "
    "s.assistance_fen, s.medical_account_fen, s.purse_fen, s.medical_account_after_fen, "
    "s.purse_after_fen, s.voucher, r.reversed_ms, r.voucher";

MedicalSettlementRecord ReadSettlement(const Statement& s) {
  MedicalSettlementRecord r;
  r.hospital_id = s.ColumnText(0);
  r.bill_id = s.ColumnText(1);
  r.card_no = s.ColumnText(2);
  r.holder_number = s.ColumnInt(3);
  r.scheme = static_cast<Scheme>(s.ColumnInt(4));
  r.category = static_cast<MedicalCategory>(s.ColumnInt(5));
  r.provided = s.ColumnInt(6) != 0;
  r.rules_version = s.ColumnText(7);
  r.terminal_id = s.ColumnText(8);
  r.settled_ms = s.ColumnInt(9);
  r.amount_fen = s.ColumnInt(10);
  r.deductible_fen = s.ColumnInt(11);
  r.fund_fen = s.ColumnInt(12);
  r.assistance_fen = s.ColumnInt(13);
  r.medical_account_fen = s.ColumnInt(14);
  r.purse_fen = s.ColumnInt(15);
  r.medical_account_after_fen = s.ColumnInt(16);
  r.purse_after_fen = s.ColumnInt(17);
  r.voucher = s.ColumnBlob(18);
  if (!s.ColumnIsNull(19)) {
    r.reversed_ms = s.ColumnInt(19);
    r.reversal_voucher = s.ColumnBlob(20);
  }
  return r;
}

}  // namespace

const std::vector<std::string>& SqliteHealthStore::Migrations() {
  static const std::vector<std::string> migrations = {
      R"sql(
CREATE TABLE health_identity_checks(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL,
  terminal_id TEXT NOT NULL,
  operator_id TEXT NOT NULL,
  card_no TEXT NOT NULL,
  purpose INTEGER NOT NULL,        -- core/identity_purpose.h IdentityPurpose
  outcome INTEGER NOT NULL,        -- core/health.h IdentityOutcome
  card_status INTEGER,             -- NULL when the card was not found (or not looked up)
  profile INTEGER,
  schemes_asked INTEGER NOT NULL,  -- bit masks: bit (n - 1) for scheme or group n
  schemes INTEGER NOT NULL,
  groups_asked INTEGER NOT NULL,
  groups_in INTEGER NOT NULL
);
CREATE INDEX health_identity_checks_card ON health_identity_checks(card_no, id);
CREATE INDEX health_identity_checks_terminal ON health_identity_checks(terminal_id, id);
CREATE TABLE health_year_to_date(
  holder_number INTEGER PRIMARY KEY,
  figures TEXT NOT NULL            -- [year, assistance, (deductible, fund) per scheme, category]
);
CREATE TABLE health_settlements(
  hospital_id TEXT NOT NULL,
  bill_id TEXT NOT NULL,
  card_no TEXT NOT NULL,
  holder_number INTEGER NOT NULL,
  scheme INTEGER NOT NULL,
  category INTEGER NOT NULL,
  provided INTEGER NOT NULL,
  rules_version TEXT NOT NULL,
  terminal_id TEXT NOT NULL,
  settled_ms INTEGER NOT NULL,
  amount_fen INTEGER NOT NULL,
  deductible_fen INTEGER NOT NULL,
  fund_fen INTEGER NOT NULL,
  assistance_fen INTEGER NOT NULL,
  medical_account_fen INTEGER NOT NULL,
  purse_fen INTEGER NOT NULL,
  medical_account_after_fen INTEGER NOT NULL,
  purse_after_fen INTEGER NOT NULL,
  voucher BLOB NOT NULL,
  PRIMARY KEY(hospital_id, bill_id)
);
CREATE INDEX health_settlements_bill ON health_settlements(bill_id);
CREATE INDEX health_settlements_time ON health_settlements(settled_ms);
CREATE TABLE health_reversals(
  hospital_id TEXT NOT NULL,
  bill_id TEXT NOT NULL,
  reversed_ms INTEGER NOT NULL,
  voucher BLOB NOT NULL,
  PRIMARY KEY(hospital_id, bill_id),
  FOREIGN KEY(hospital_id, bill_id) REFERENCES health_settlements(hospital_id, bill_id)
);
CREATE TABLE health_rules(
  version TEXT PRIMARY KEY,
  text TEXT NOT NULL
);
CREATE TABLE health_rules_loads(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  version TEXT NOT NULL REFERENCES health_rules(version),
  loaded_ms INTEGER NOT NULL
);
)sql",
  };
  return migrations;
}

Result<std::unique_ptr<SqliteHealthStore>> SqliteHealthStore::Open(Database& db) {
  CITYCARD_RETURN_IF_ERROR(db.Migrate("health", Migrations()));
  return std::unique_ptr<SqliteHealthStore>(new SqliteHealthStore(db));
}

Result<int64_t> SqliteHealthStore::AppendIdentityCheck(const IdentityCheckRecord& r) {
  if (!insert_identity_check_.has_value()) {
    auto prepared = db_.Prepare(
        "INSERT INTO health_identity_checks(time_ms, terminal_id, operator_id, card_no, "
        "purpose, outcome, card_status, profile, schemes_asked, schemes, groups_asked, "
        "groups_in) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!prepared.ok()) return prepared.status();
    insert_identity_check_.emplace(std::move(*prepared));
  }
  Statement* s = &*insert_identity_check_;
  s->Bind(1, r.time_ms).Bind(2, r.terminal_id).Bind(3, r.operator_id).Bind(4, r.card_no);
  s->Bind(5, static_cast<int64_t>(r.purpose)).Bind(6, static_cast<int64_t>(r.outcome));
  if (r.card_status.has_value()) {
    s->Bind(7, static_cast<int64_t>(*r.card_status));
  } else {
    s->BindNull(7);
  }
  if (r.profile.has_value()) {
    s->Bind(8, static_cast<int64_t>(*r.profile));
  } else {
    s->BindNull(8);
  }
  s->Bind(9, Mask(r.disclosed.asked.schemes)).Bind(10, Mask(r.disclosed.schemes));
  s->Bind(11, Mask(r.disclosed.asked.groups)).Bind(12, Mask(r.disclosed.groups));
  CITYCARD_RETURN_IF_ERROR(s->Run());
  return db_.LastInsertRowId();
}

std::string IdentityCheckListSql(const IdentityCheckFilter& filter) {
  std::string where;
  if (filter.card_no.has_value()) where = " WHERE card_no = ?1";
  if (filter.terminal_id.has_value()) {
    where += where.empty() ? " WHERE terminal_id = ?2" : " AND terminal_id = ?2";
  }
  return "SELECT id, time_ms, terminal_id, operator_id, card_no, purpose, outcome, card_status, "
         "profile, schemes_asked, schemes, groups_asked, groups_in FROM health_identity_checks" +
         where + " ORDER BY id LIMIT ?3";
}

Result<std::vector<IdentityCheckRecord>> SqliteHealthStore::ListIdentityChecks(
    const IdentityCheckFilter& filter) {
  auto s = db_.Prepare(IdentityCheckListSql(filter));
  if (!s.ok()) return s.status();
  if (filter.card_no.has_value()) s->Bind(1, *filter.card_no);
  if (filter.terminal_id.has_value()) s->Bind(2, *filter.terminal_id);
  s->Bind(3, static_cast<int64_t>(std::min(filter.limit, kIdentityCheckListMax)));
  std::vector<IdentityCheckRecord> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    IdentityCheckRecord r;
    r.id = s->ColumnInt(0);
    r.time_ms = s->ColumnInt(1);
    r.terminal_id = s->ColumnText(2);
    r.operator_id = s->ColumnText(3);
    r.card_no = s->ColumnText(4);
    r.purpose = static_cast<IdentityPurpose>(s->ColumnInt(5));
    r.outcome = static_cast<IdentityOutcome>(s->ColumnInt(6));
    if (!s->ColumnIsNull(7)) r.card_status = static_cast<CardStatus>(s->ColumnInt(7));
    if (!s->ColumnIsNull(8)) r.profile = static_cast<Profile>(s->ColumnInt(8));
    r.disclosed.asked.schemes = Unmask<Scheme>(s->ColumnInt(9), kSchemeCount);
    r.disclosed.schemes = Unmask<Scheme>(s->ColumnInt(10), kSchemeCount);
    r.disclosed.asked.groups = Unmask<SpecialGroup>(s->ColumnInt(11), kGroupCount);
    r.disclosed.groups = Unmask<SpecialGroup>(s->ColumnInt(12), kGroupCount);
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::optional<MedicalYearToDate>> SqliteHealthStore::FindYearToDate(int64_t holder_number) {
  auto s = db_.Prepare("SELECT figures FROM health_year_to_date WHERE holder_number = ?");
  if (!s.ok()) return s.status();
  s->Bind(1, holder_number);
  auto row = s->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<MedicalYearToDate>();
  auto figures = ParseFigures(s->ColumnText(0));
  if (!figures.ok()) return figures.status();
  return std::optional<MedicalYearToDate>(*figures);
}

Status SqliteHealthStore::PutYearToDate(int64_t holder_number, const MedicalYearToDate& figures) {
  auto s = db_.Prepare(
      "INSERT INTO health_year_to_date(holder_number, figures) VALUES (?, ?) "
      "ON CONFLICT(holder_number) DO UPDATE SET figures = excluded.figures");
  if (!s.ok()) return s.status();
  std::string text = FiguresText(figures);
  s->Bind(1, holder_number).Bind(2, std::string_view(text));
  return s->Run();
}

Result<std::vector<MedicalSettlementRecord>> SqliteHealthStore::QuerySettlements(
    std::string_view where, std::string_view a, std::string_view b) {
  auto s = db_.Prepare(fmt::format(
      "SELECT {} FROM health_settlements s LEFT JOIN health_reversals r "
      "ON r.hospital_id = s.hospital_id AND r.bill_id = s.bill_id WHERE {} "
      "ORDER BY s.hospital_id, s.bill_id",
      kSettlementColumns, where));
  if (!s.ok()) return s.status();
  s->Bind(1, a);
  if (!b.empty()) s->Bind(2, b);
  std::vector<MedicalSettlementRecord> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(ReadSettlement(*s));
  }
  return out;
}

Result<std::optional<MedicalSettlementRecord>> SqliteHealthStore::FindSettlement(
    std::string_view hospital_id, std::string_view bill_id) {
  if (hospital_id.empty()) return std::optional<MedicalSettlementRecord>();
  auto found = QuerySettlements("s.bill_id = ?1 AND s.hospital_id = ?2", bill_id, hospital_id);
  if (!found.ok()) return found.status();
  if (found->empty()) return std::optional<MedicalSettlementRecord>();
  return std::optional<MedicalSettlementRecord>(std::move(found->front()));
}

Result<std::vector<MedicalSettlementRecord>> SqliteHealthStore::FindSettlementsByBill(
    std::string_view bill_id) {
  return QuerySettlements("s.bill_id = ?1", bill_id, "");
}

Status SqliteHealthStore::InsertSettlement(const MedicalSettlementRecord& r) {
  auto s = db_.Prepare(
      "INSERT INTO health_settlements(hospital_id, bill_id, card_no, holder_number, scheme, "
      "category, provided, rules_version, terminal_id, settled_ms, amount_fen, deductible_fen, "
      "fund_fen, assistance_fen, medical_account_fen, purse_fen, medical_account_after_fen, "
      "purse_after_fen, voucher) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!s.ok()) return s.status();
  s->Bind(1, r.hospital_id).Bind(2, r.bill_id).Bind(3, r.card_no).Bind(4, r.holder_number);
  s->Bind(5, static_cast<int64_t>(r.scheme)).Bind(6, static_cast<int64_t>(r.category));
  s->Bind(7, int64_t{r.provided ? 1 : 0}).Bind(8, r.rules_version).Bind(9, r.terminal_id);
  s->Bind(10, r.settled_ms).Bind(11, r.amount_fen).Bind(12, r.deductible_fen);
  s->Bind(13, r.fund_fen).Bind(14, r.assistance_fen).Bind(15, r.medical_account_fen);
  s->Bind(16, r.purse_fen).Bind(17, r.medical_account_after_fen).Bind(18, r.purse_after_fen);
  s->Bind(19, ByteView(r.voucher));
  Status status = s->Run();
  if (status.code() == "db_constraint") {
    return Status::Refused("settlement_exists",
                           fmt::format("bill {} of {} is settled already", r.bill_id,
                                       r.hospital_id));
  }
  return status;
}

Status SqliteHealthStore::MarkReversed(std::string_view hospital_id, std::string_view bill_id,
                                       int64_t reversed_ms, const Bytes& reversal_voucher) {
  auto found = FindSettlement(hospital_id, bill_id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return Status::NotFound("settlement_not_found",
                            fmt::format("no settlement of bill {} of {}", bill_id, hospital_id));
  }
  if ((*found)->reversed()) {
    return Status::Refused("already_reversed",
                           fmt::format("bill {} of {} was reversed before", bill_id, hospital_id));
  }
  auto s = db_.Prepare(
      "INSERT INTO health_reversals(hospital_id, bill_id, reversed_ms, voucher) "
      "VALUES (?, ?, ?, ?)");
  if (!s.ok()) return s.status();
  s->Bind(1, hospital_id).Bind(2, bill_id).Bind(3, reversed_ms).Bind(4, ByteView(reversal_voucher));
  Status status = s->Run();
  if (status.code() == "db_constraint") {
    return Status::Refused("already_reversed",
                           fmt::format("bill {} of {} was reversed before", bill_id, hospital_id));
  }
  return status;
}

Status SqliteHealthStore::SaveRules(const StoredMedicalRules& rules) {
  auto find = db_.Prepare("SELECT text FROM health_rules WHERE version = ?");
  if (!find.ok()) return find.status();
  find->Bind(1, rules.version);
  auto row = find->Step();
  if (!row.ok()) return row.status();
  if (*row && find->ColumnText(0) != rules.text) {
    return Status::Refused("rules_version_exists",
                           fmt::format("rules version '{}' was loaded before with other "
                                       "content: give the new rules a new version",
                                       rules.version));
  }
  if (!*row) {
    auto insert = db_.Prepare("INSERT INTO health_rules(version, text) VALUES (?, ?)");
    if (!insert.ok()) return insert.status();
    insert->Bind(1, rules.version).Bind(2, rules.text);
    CITYCARD_RETURN_IF_ERROR(insert->Run());
  }
  auto load = db_.Prepare("INSERT INTO health_rules_loads(version, loaded_ms) VALUES (?, ?)");
  if (!load.ok()) return load.status();
  load->Bind(1, rules.version).Bind(2, rules.loaded_ms);
  return load->Run();
}

Result<std::optional<StoredMedicalRules>> SqliteHealthStore::CurrentRules() {
  auto s = db_.Prepare(
      "SELECT l.version, r.text, l.loaded_ms FROM health_rules_loads l "
      "JOIN health_rules r ON r.version = l.version ORDER BY l.seq DESC LIMIT 1");
  if (!s.ok()) return s.status();
  auto row = s->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<StoredMedicalRules>();
  return std::optional<StoredMedicalRules>(
      StoredMedicalRules{s->ColumnText(0), s->ColumnText(1), s->ColumnInt(2)});
}

Result<std::vector<OperatorServiceTotals>> SqliteHealthStore::MedicalTotals(int64_t from_ms,
                                                                            int64_t to_ms) {
  auto s = db_.Prepare(
      "SELECT hospital_id, COUNT(*), SUM(fund_fen + assistance_fen), "
      "SUM(medical_account_fen + purse_fen) FROM health_settlements "
      "WHERE settled_ms >= ? AND settled_ms < ? GROUP BY hospital_id ORDER BY hospital_id");
  if (!s.ok()) return s.status();
  s->Bind(1, from_ms).Bind(2, to_ms);
  std::vector<OperatorServiceTotals> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    OperatorServiceTotals t;
    t.operator_id = s->ColumnText(0);
    t.medical_bills = s->ColumnInt(1);
    t.medical_fund_fen = s->ColumnInt(2);
    t.medical_holder_fen = s->ColumnInt(3);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace citycard::db
