// `citycard demo` (docs/demo.md): the steps, each checked, over a fresh installation.
#include "tools/cli/demo.h"

#include <pty.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/alerts.h"
#include "core/audit.h"
#include "core/bill_file.h"
#include "core/bills.h"
#include "core/card_number.h"
#include "core/card_office.h"
#include "core/health.h"
#include "core/load_record.h"
#include "core/money.h"
#include "core/settlement.h"
#include "core/szt_file.h"
#include "core/tap_record.h"
#include "core/time.h"
#include "crypto/mac.h"
#include "db/sqlite_bill_store.h"
#include "db/sqlite_tap_store.h"
#include "terminals/client.h"
#include "terminals/codes.h"
#include "terminals/messages.h"
#include "tools/cli/demo_city.h"
#include "tools/cli/environment.h"
#include "tools/cli/files.h"
#include "tools/cli/format.h"
#include "tools/cli/health_wiring.h"
#include "tools/cli/replay.h"
#include "tools/cli/settle.h"
#include "tools/server/ingest_server.h"
#include "tools/sim/sim_card.h"
#include "tools/sim/sim_terminal.h"

namespace citycard::cli {

namespace {

bool IsFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A fresh folder "citycard-demo-XXXXXX" under the current directory, else under /tmp.
Result<std::string> MakeWorkDir(const std::string& requested) {
  if (!requested.empty()) {
    if (!IsDirectory(requested) && ::mkdir(requested.c_str(), 0700) != 0) {
      return Status::Internal("demo_dir_failed", "cannot create the folder " + requested);
    }
    return requested;
  }
  for (const char* base : {".", "/tmp"}) {
    std::string pattern = std::string(base) + "/citycard-demo-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) != nullptr) return std::string(buffer.data());
  }
  return Status::Internal("demo_dir_failed", "cannot create a folder under . or /tmp");
}

// The demo's state: its options, the summary it builds and the steps' bookkeeping.
class Demo {
 public:
  Demo(const DemoOptions& options, GlobalOptions global)
      : options_(options), global_(std::move(global)), tty_(isatty(STDERR_FILENO) == 1) {}

  // Runs one step: prints its name, runs it, prints its outcome. A step returns a short
  // detail for the line, or a Status: Kind::internal "demo_expectation" when what happened
  // is not what it expected. Returns false once a step has failed (later steps do not run).
  bool Step(const std::string& name, const std::function<Result<std::string>()>& body) {
    if (!failed_.empty()) return false;
    ++step_;
    std::fprintf(stderr, "[%2d] %s ...%s", step_, name.c_str(), tty_ ? "" : "\n");
    std::fflush(stderr);
    auto started = std::chrono::steady_clock::now();
    Result<std::string> detail = body();
    auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
    nlohmann::json record = {{"step", name}, {"ms", elapsed_ms}, {"ok", detail.ok()}};
    if (detail.ok()) {
      record["detail"] = *detail;
      std::fprintf(stderr, "%s[%2d] %s: ok, %s (%.1f s)\n", tty_ ? "\r" : "", step_, name.c_str(),
                   detail->c_str(), static_cast<double>(elapsed_ms) / 1000.0);
    } else {
      record["error"] = detail.status().ToString();
      failed_ = name + ": " + detail.status().ToString();
      std::fprintf(stderr, "%s[%2d] %s: FAILED: %s\n", tty_ ? "\r" : "", step_, name.c_str(),
                   detail.status().ToString().c_str());
    }
    std::fflush(stderr);
    summary_["steps"].push_back(std::move(record));
    return detail.ok();
  }

  // The replay's progress: a bar on a terminal, a line per quarter otherwise.
  void Progress(size_t done, size_t total) {
    if (total == 0) return;
    if (tty_) {
      constexpr size_t kWidth = 30;
      size_t filled = done * kWidth / total;
      std::fprintf(stderr, "\r[%2d] replay [%s%s] %zu/%zu taps", step_,
                   std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
                   done, total);
      std::fflush(stderr);
      return;
    }
    size_t quarter = done * 4 / total;
    if (quarter > last_quarter_) {
      last_quarter_ = quarter;
      std::fprintf(stderr, "     %zu/%zu taps uploaded\n", done, total);
    }
  }

  const DemoOptions& options_;
  GlobalOptions global_;
  bool tty_;
  int step_ = 0;
  size_t last_quarter_ = 0;
  std::string failed_;
  nlohmann::json summary_ = nlohmann::json::object();
  std::string text_;
  std::vector<SztRow> rows_;
  std::vector<int64_t> days_;
  int64_t city_time_s_ = 0;         // when the city's own day happens (after the replay)
  std::vector<std::string> cards_;  // the city's cards, one per generated holder
  std::vector<Profile> profiles_;   // their profiles
  std::map<std::string, Bytes> terminal_keys_;  // the city's terminals' plain keys (version 1)
};

Status Expect(bool condition, const std::string& what) {
  if (condition) return Status::Ok();
  return Status::Internal("demo_expectation", "expected " + what);
}

#define DEMO_EXPECT(condition, what) CITYCARD_RETURN_IF_ERROR(Expect((condition), (what)))

// Sets CITYCARD_NOW for the Environments opened after it; empty: the system clock.
void SetNow(const std::string& now) {
  if (now.empty()) {
    ::unsetenv(kNowVariable);
  } else {
    ::setenv(kNowVariable, now.c_str(), 1);
  }
}

Result<std::vector<SztRow>> LoadRows(bool short_run, std::string* path) {
  auto found = FindDemoData();
  if (!found.ok()) return found.status();
  *path = *found;
  auto text = ReadTextFile(*found, kReplayFileBytesMax);
  if (!text.ok()) return text.status();
  auto rows = ParseSztFile(*text);
  if (!rows.ok()) return rows.status();
  if (!short_run) return rows;
  std::vector<SztRow> some;
  for (size_t i = 0; i < rows->size(); i += kDemoShortStride) some.push_back((*rows)[i]);
  return some;
}

Result<std::string> InitStep(Demo& d) {
  // The installation is created on the clock of the evening, before the replay starts, so
  // that the ledger's timestamps follow the replayed day.
  int64_t first_s = d.rows_.front().deal_time_s;
  for (const SztRow& row : d.rows_) first_s = std::min(first_s, row.deal_time_s);
  SetNow(fmt::format("@{}", first_s - kReplayProvisionLeadSeconds - 600));
  auto env = Environment::Create(d.global_);
  if (!env.ok()) return env.status();
  return fmt::format("database {}, key file {}", d.global_.db_path, d.global_.keys_path);
}

Result<std::string> ReplayStep(Demo& d) {
  ReplayOptions replay;
  replay.provision = true;
  replay.progress = [&d](size_t done, size_t total) { d.Progress(done, total); };
  auto summary = ReplaySzt(d.global_, d.rows_, replay);
  if (!summary.ok()) return summary.status();
  const int64_t rows = static_cast<int64_t>(d.rows_.size());
  int64_t paid_fen = 0;
  for (const SztRow& row : d.rows_) paid_fen += row.deal_money_fen;
  d.summary_["replay"] = ReplaySummaryJson(*summary);
  d.summary_["file"] = {{"rows", rows}, {"deal_money_fen", paid_fen}};
  d.summary_["taps"]["accepted"] = d.summary_["taps"].value("accepted", 0) + summary->accepted;
  d.summary_["taps"]["duplicates"] =
      d.summary_["taps"].value("duplicates", 0) + summary->duplicates;
  d.summary_["taps"]["rejected"] = d.summary_["taps"].value("rejected", 0) + summary->rejected;
  for (const std::string& day : summary->days) {
    auto parsed = ParseDay(day);
    if (!parsed.ok()) return parsed.status();
    d.days_.push_back(*parsed);
  }
  DEMO_EXPECT(summary->taps == rows, fmt::format("{} taps replayed, not {}", rows, summary->taps));
  DEMO_EXPECT(summary->accepted == rows,
              fmt::format("all {} taps accepted, not {}", rows, summary->accepted));
  DEMO_EXPECT(summary->rejected == 0 && summary->duplicates == 0,
              "no tap rejected or duplicate");
  DEMO_EXPECT(!summary->ledger_ahead, "a ledger that is not ahead of the replay");
  return fmt::format("{} taps of {} operators on {} terminals and {} cards, {} accepted, "
                     "paid {} yuan",
                     summary->taps, summary->operators, summary->terminals, summary->cards,
                     summary->accepted, FormatYuan(paid_fen));
}


// The city's own day happens some hours after the last replayed tap, on a fixed clock, so
// that the ledger's timestamps keep going forward; its clearing day is settled with the rest.
Status StartCityDay(Demo& d) {
  int64_t last_s = 0;
  for (const SztRow& row : d.rows_) last_s = std::max(last_s, row.deal_time_s);
  d.city_time_s_ = last_s + kDemoCityDelaySeconds;
  SetNow(fmt::format("@{}", d.city_time_s_));
  int64_t day = ClearingDay(d.city_time_s_);
  if (std::find(d.days_.begin(), d.days_.end(), day) == d.days_.end()) {
    d.days_.push_back(day);
    std::sort(d.days_.begin(), d.days_.end());
  }
  return Status::Ok();
}

// The Environment on a fixed clock `offset_s` after the start of the city's day: each step of
// the day happens a little later than the one before, as the ledger's timestamps require.
Result<std::unique_ptr<Environment>> OpenAt(Demo& d, int64_t offset_s) {
  SetNow(fmt::format("@{}", d.city_time_s_ + offset_s));
  return Environment::Open(d.global_);
}

Result<std::string> CityStep(Demo& d) {
  CITYCARD_RETURN_IF_ERROR(StartCityDay(d));
  auto env = Environment::Open(d.global_);
  if (!env.ok()) return env.status();
  for (const DemoSite& site : DemoSites()) {
    auto op = (*env)->terminal_office().AddOperator(
        OperatorRequest{site.operator_id, site.operator_name, site.operator_kind, site.fee_bp});
    if (!op.ok()) return op.status();
    auto terminal = (*env)->terminal_office().RegisterTerminal(
        TerminalRequest{site.terminal_id, site.operator_id, site.terminal_kind, site.route});
    if (!terminal.ok()) return terminal.status();
    d.terminal_keys_[site.terminal_id] = terminal->plain_key;
  }
  std::vector<DemoHolder> holders = DemoHolders();
  auto imported = (*env)->card_office().ImportHolders(DemoRegistryCsv(holders), false);
  if (!imported.ok()) return imported.status();
  DEMO_EXPECT(imported->applied && imported->created == static_cast<int64_t>(holders.size()),
              fmt::format("{} holders created from the registry file, not {}", holders.size(),
                          imported->created));
  std::map<std::string, int> profiles;
  for (size_t i = 0; i < holders.size(); ++i) {
    IssueRequest request;
    request.national_id = holders[i].national_id;
    request.name = holders[i].name;
    request.profile = holders[i].profile;
    auto card = (*env)->card_office().IssueCard(request);
    if (!card.ok()) return card.status();
    auto topped = (*env)->card_office().Topup(card->card.card_no, kDemoCounterTopupFen,
                                              fmt::format("demo-counter-{}", i + 1));
    if (!topped.ok()) return topped.status();
    DEMO_EXPECT(topped->card.balance_fen == kDemoCounterTopupFen,
                fmt::format("card {} to hold {} fen after the counter top-up",
                            card->card.card_no, kDemoCounterTopupFen));
    d.cards_.push_back(card->card.card_no);
    d.profiles_.push_back(holders[i].profile);
    profiles[std::string(ProfileName(holders[i].profile))] += 1;
  }
  d.summary_["city"] = {{"sites", DemoSites().size()},
                        {"holders", holders.size()},
                        {"cards", d.cards_.size()},
                        {"profiles", profiles}};
  std::string mix;
  for (const auto& [profile, count] : profiles) mix += fmt::format(" {} {},", count, profile);
  if (!mix.empty()) mix.pop_back();
  return fmt::format("{} sites with a terminal each, {} holders and cards ({}), each topped up "
                     "{} yuan at the counter",
                     DemoSites().size(), holders.size(), mix.substr(1),
                     FormatYuan(kDemoCounterTopupFen));
}

Result<std::string> LostCardStep(Demo& d) {
  auto env = OpenAt(d, kDemoLostCardOffsetSeconds);
  if (!env.ok()) return env.status();
  const std::string lost = d.cards_.front();
  auto blocked = (*env)->card_office().Block(lost, BlockReason::lost);
  if (!blocked.ok()) return blocked.status();
  DEMO_EXPECT(blocked->status == CardStatus::blocked, "the lost card to be blocked");
  auto replaced = (*env)->card_office().Replace(lost, false);
  if (!replaced.ok()) return replaced.status();
  DEMO_EXPECT(replaced->old_card.status == CardStatus::replaced, "the lost card to be replaced");
  DEMO_EXPECT(replaced->new_card.status == CardStatus::active, "the new card to be active");
  DEMO_EXPECT(!replaced->balance_moved, "the balance to wait for the hold period");
  d.cards_.front() = replaced->new_card.card.card_no;
  d.summary_["lost_card"] = {{"old", lost},
                             {"new", replaced->new_card.card.card_no},
                             {"balance_fen", replaced->old_card.balance_fen}};
  return fmt::format("card {} reported lost, blocked, replaced by {}; its {} yuan move after "
                     "the hold period",
                     lost, replaced->new_card.card.card_no,
                     FormatYuan(replaced->old_card.balance_fen));
}


// ---- Taps through the protocol ------------------------------------------------------------

// A reader of the city with its connected, authenticated session to the in-process server.
struct Reader {
  sim::SimTerminal terminal;
  std::unique_ptr<terminals::TerminalClient> client;
  uint32_t batch_id = 0;
};

// Connects over TCP to `port`, or, when `serial_fd` is an open descriptor (the reader's end of
// a pseudo-terminal pair whose other end the server holds), over that serial line; the
// Reader then owns the descriptor.
Result<Reader> ConnectReader(Demo& d, Environment& env, uint16_t port, const DemoSite& site,
                             int serial_fd = -1) {
  const Bytes& key = d.terminal_keys_.at(site.terminal_id);
  Reader reader{sim::SimTerminal(site.terminal_id, site.operator_id, key, 1, 0), nullptr, 0};
  terminals::ClientOptions options;
  options.terminal_id = site.terminal_id;
  options.key_version = 1;
  options.terminal_key = key;
  options.core_public_key = env.keys().CoreSigner().PublicKey();
  auto client = serial_fd >= 0
                    ? terminals::TerminalClient::AdoptDescriptor(serial_fd, std::move(options))
                    : terminals::TerminalClient::ConnectTcp("127.0.0.1", port, std::move(options));
  if (!client.ok()) return client.status();
  CITYCARD_RETURN_IF_ERROR((*client)->Handshake());
  reader.client = std::move(*client);
  return reader;
}

const DemoSite& Site(const std::string& operator_id) {
  for (const DemoSite& site : DemoSites()) {
    if (site.operator_id == operator_id) return site;
  }
  CITYCARD_ASSERT(false);
  return DemoSites().front();
}

// Uploads `records` as the reader's next batch; the per-record result names.
Result<std::vector<std::string>> Upload(Reader& reader, const std::vector<TapRecord>& records) {
  auto ack = reader.client->UploadBatch(++reader.batch_id, records);
  if (!ack.ok()) return ack.status();
  std::vector<std::string> names;
  for (terminals::ResultCode code : ack->results) {
    names.emplace_back(terminals::ResultCodeName(code));
  }
  return names;
}

void CountTaps(Demo& d, const std::vector<std::string>& results) {
  for (const std::string& r : results) {
    std::string key = r.rfind("accepted", 0) == 0 ? "accepted"
                      : r == "duplicate"          ? "duplicates"
                                                  : "rejected";
    nlohmann::json& taps = d.summary_["taps"];
    taps[key] = taps.value(key, int64_t{0}) + 1;
    // operator[] makes a null member; value() throws on null, so the object is made first.
    if (!taps.contains("by_result")) taps["by_result"] = nlohmann::json::object();
    taps["by_result"][r] = taps["by_result"].value(r, int64_t{0}) + 1;
  }
}

Status ExpectAll(const std::vector<std::string>& results, const std::string& expected,
                 const std::string& what) {
  for (const std::string& r : results) {
    if (r != expected) {
      return Status::Internal("demo_expectation",
                              fmt::format("{}: expected {}, got {}", what, expected, r));
    }
  }
  return Status::Ok();
}

struct CityTaps {
  size_t taxi = 0;
  size_t parking = 0;
  size_t replayed = 0;
  int64_t paid_fen = 0;
};

// The taxi's reader uploads over TCP; the car park's over the serial line `park_fd`.
Result<CityTaps> TapAround(Demo& d, Environment& env, uint16_t port, int park_fd) {
  uint8_t version = env.keys().CurrentCardKeyVersion();
  auto master = env.keys().CardMasterKey(version);
  if (!master.ok()) return master.status();
  auto taxi = ConnectReader(d, env, port, Site("demo-taxi"));
  if (!taxi.ok()) return taxi.status();
  auto park = ConnectReader(d, env, port, Site("demo-park"), park_fd);
  if (!park.ok()) return park.status();
  CityTaps done;
  std::vector<TapRecord> taxi_records;
  std::vector<TapRecord> park_records;
  std::optional<sim::SimCard> clone;
  // The cards hold what the counter loaded; card 0 is the replaced one, left alone here.
  for (size_t i = 1; i < d.cards_.size() && i <= kDemoTaxiRides + kDemoParkings; ++i) {
    sim::SimCard card = sim::SimCard::Issue(*master, version, CardNumberToInt(d.cards_[i]),
                                            d.profiles_[i], kDemoCounterTopupFen,
                                            -PurseFloorFen(d.profiles_[i], env.config()));
    if (i == 1) clone = card;  // what a card cloner copied before the ride
    sim::TapRequest request;
    request.type = TapType::purchase;
    request.time_s = d.city_time_s_ + kDemoRidesOffsetSeconds + static_cast<int64_t>(i) * 120;
    bool is_taxi = i <= kDemoTaxiRides;
    request.amount_fen = is_taxi ? 1'000 + static_cast<int64_t>(i) * 270 : 500 * static_cast<int64_t>(i % 4 + 1);
    request.full_fare_fen = request.amount_fen;
    sim::SimTerminal& reader = is_taxi ? taxi->terminal : park->terminal;
    auto record = reader.Tap(card, request);
    if (!record.ok()) return record.status();
    (is_taxi ? taxi_records : park_records).push_back(*record);
    done.paid_fen += request.amount_fen;
  }
  auto taxi_results = Upload(*taxi, taxi_records);
  if (!taxi_results.ok()) return taxi_results.status();
  CountTaps(d, *taxi_results);
  CITYCARD_RETURN_IF_ERROR(ExpectAll(*taxi_results, "accepted", "taxi rides"));
  auto park_results = Upload(*park, park_records);
  if (!park_results.ok()) return park_results.status();
  CountTaps(d, *park_results);
  CITYCARD_RETURN_IF_ERROR(ExpectAll(*park_results, "accepted", "car park exits"));
  done.taxi = taxi_records.size();
  done.parking = park_records.size();

  // The taxi's batch sent again (a reader that missed the acknowledgement, or an attacker):
  // every record is a duplicate and nothing moves.
  auto again = Upload(*taxi, taxi_records);
  if (!again.ok()) return again.status();
  CountTaps(d, *again);
  CITYCARD_RETURN_IF_ERROR(ExpectAll(*again, "duplicate", "the replayed batch"));
  done.replayed = again->size();

  // A clone of card 1, copied before its taxi ride, pays at the car park with the same card
  // counter: refused, alert.
  sim::TapRequest request;
  request.type = TapType::purchase;
  request.time_s = d.city_time_s_ + kDemoUploadOffsetSeconds - 600;
  request.amount_fen = 500;
  request.full_fare_fen = 500;
  auto cloned = park->terminal.Tap(*clone, request);
  if (!cloned.ok()) return cloned.status();
  auto cloned_results = Upload(*park, {*cloned});
  if (!cloned_results.ok()) return cloned_results.status();
  CountTaps(d, *cloned_results);
  CITYCARD_RETURN_IF_ERROR(ExpectAll(*cloned_results, "cloned_card", "the cloned card"));

  // A forged card: the real key of the last card, but a purse claiming 900 yuan where the
  // core knows of 100: refused, alert, denylisted.
  const size_t forged_index = d.cards_.size() - 1;
  sim::SimCard forged = sim::SimCard::Issue(*master, version, CardNumberToInt(d.cards_[forged_index]),
                                            d.profiles_[forged_index], kDemoForgedBalanceFen,
                                            -PurseFloorFen(d.profiles_[forged_index], env.config()));
  request.time_s = d.city_time_s_ + kDemoUploadOffsetSeconds - 300;
  auto forged_record = park->terminal.Tap(forged, request);
  if (!forged_record.ok()) return forged_record.status();
  auto forged_results = Upload(*park, {*forged_record});
  if (!forged_results.ok()) return forged_results.status();
  CountTaps(d, *forged_results);
  CITYCARD_RETURN_IF_ERROR(ExpectAll(*forged_results, "forged_balance", "the forged tap"));
  taxi->client->Close();
  park->client->Close();
  return done;
}


// The kiosk's two-phase top-up of card kDemoKioskCard: the reader reads the card and asks
// (card proof), the core authorises (host MAC, the load pending), the card applies the load,
// the reader confirms with the card's load record, the core posts the load.
Result<int64_t> KioskTopup(Demo& d, Environment& env, uint16_t port) {
  uint8_t version = env.keys().CurrentCardKeyVersion();
  auto master = env.keys().CardMasterKey(version);
  if (!master.ok()) return master.status();
  auto kiosk = ConnectReader(d, env, port, Site("demo-kiosk"));
  if (!kiosk.ok()) return kiosk.status();
  const std::string& card_no = d.cards_[kDemoKioskCard];
  sim::SimCard card = sim::SimCard::Issue(*master, version, CardNumberToInt(card_no),
                                          d.profiles_[kDemoKioskCard], kDemoCounterTopupFen,
                                          -PurseFloorFen(d.profiles_[kDemoKioskCard], env.config()));
  terminals::TopupRequest request;
  request.request_id = 1;
  request.card_no = card.card_no();
  request.card_counter = card.counter();
  request.balance_before_fen = card.balance_fen();
  request.amount_fen = kDemoKioskTopupFen;
  request.time_s = d.city_time_s_ + kDemoUploadOffsetSeconds - 60;
  Bytes body = request.Encode();
  body.resize(body.size() - terminals::kCardProofBytes);
  crypto::Mac16 proof = crypto::AesCmac(card.key()).Compute(body);
  std::copy_n(proof.begin(), request.card_proof.size(), request.card_proof.begin());
  auto answer = kiosk->client->SendOnline(request);
  if (!answer.ok()) return answer.status();
  const auto* authorisation = std::get_if<terminals::TopupAuthorisation>(&*answer);
  DEMO_EXPECT(authorisation != nullptr && authorisation->code == terminals::ResultCode::ok,
              "the top-up authorised");
  LoadFields fields = card.ReadForLoad(kDemoKioskTopupFen, kiosk->terminal.terminal_id(), 1);
  auto loaded = kiosk->terminal.CompleteLoad(card, fields, authorisation->host_mac,
                                             request.time_s);
  if (!loaded.ok()) return loaded.status();
  terminals::TopupConfirmation confirmation;
  confirmation.request_id = 2;
  confirmation.authorisation_id = authorisation->authorisation_id;
  confirmation.record = EncodeTapRecord(loaded->record);
  auto confirmed = kiosk->client->SendOnline(confirmation);
  if (!confirmed.ok()) return confirmed.status();
  const auto* result = std::get_if<terminals::TopupConfirmationResult>(&*confirmed);
  DEMO_EXPECT(result != nullptr && result->code == terminals::ResultCode::ok,
              fmt::format("the top-up confirmed, not {}",
                          result == nullptr ? std::string("another answer")
                                            : std::string(terminals::ResultCodeName(result->code))));
  DEMO_EXPECT(loaded->balance_after_fen == kDemoCounterTopupFen + kDemoKioskTopupFen,
              "the card to hold the counter's and the kiosk's loads");
  kiosk->client->Close();
  return loaded->balance_after_fen;
}

Result<std::string> TapsStep(Demo& d) {
  auto env = OpenAt(d, kDemoUploadOffsetSeconds);
  if (!env.ok()) return env.status();
  // The car park's reader hangs on a serial line: a pseudo-terminal pair, the server at the
  // named end, the reader at the other.
  int park_fd = -1;
  int line_fd = -1;
  char line_name[256] = {};
  if (::openpty(&park_fd, &line_fd, line_name, nullptr, nullptr) != 0) {
    return Status::Internal("serial_open_failed", "cannot open a pseudo-terminal pair");
  }
  server::IngestServerOptions options;
  options.listen.push_back(server::ListenAddress{"127.0.0.1", 0, std::nullopt});
  options.serial.push_back(server::SerialLine{line_name, 115200});
  auto server = server::StartIngestServer((*env)->database(), (*env)->ledger(),
                                          (*env)->registry(), (*env)->keys(),
                                          (*env)->digester(), (*env)->clock(), std::move(options));
  ::close(line_fd);  // the server opened the line by its name
  if (!server.ok()) {
    ::close(park_fd);
    return server.status();
  }
  uint16_t port = (*server)->ports().front();
  auto done = TapAround(d, **env, port, park_fd);
  Result<int64_t> kiosk = done.ok() ? KioskTopup(d, **env, port) : Result<int64_t>(done.status());
  (*server)->Stop();
  if (!done.ok()) return done.status();
  if (!kiosk.ok()) return kiosk.status();
  d.summary_["kiosk_topup"] = {{"card", d.cards_[kDemoKioskCard]},
                               {"amount_fen", kDemoKioskTopupFen},
                               {"balance_after_fen", *kiosk}};
  d.summary_["city_taps"] = {{"taxi", done->taxi},
                             {"parking", done->parking},
                             {"replayed_duplicates", done->replayed},
                             {"paid_fen", done->paid_fen},
                             {"port", port},
                             {"serial", line_name}};
  return fmt::format("server on 127.0.0.1:{} and serial line {}: {} taxi rides (TCP) and {} "
                     "car park exits (serial) accepted "
                     "({} yuan); the taxi's batch sent again: {} duplicates; a cloned card "
                     "and a forged purse refused; kiosk top-up of {} yuan authorised, loaded "
                     "and confirmed",
                     port, line_name, done->taxi, done->parking, FormatYuan(done->paid_fen),
                     done->replayed, FormatYuan(kDemoKioskTopupFen));
}


// ---- Utility bills -------------------------------------------------------------------------

// The bill file of the city's utilities: cards kDemoBillCardsFirst.. have mandates and pay;
// one bill is more than its purse holds, one has no mandate, one names a card never issued.
std::string DemoBillFile(const Demo& d, const std::vector<std::string>& utilities) {
  std::string csv = "bill_id,utility,account_no,card_no,period,amount,due_date\n";
  for (size_t k = 0; k < kDemoBillsPaid; ++k) {
    size_t i = kDemoBillCardsFirst + k;
    csv += fmt::format("DB{:06},{},\"福田区深南大道 {} 号\",{},2018-08,{},2018-09-20\n", k + 1,
                       utilities[k % utilities.size()], 100 + i, d.cards_[i],
                       FormatYuan(2'000 + static_cast<int64_t>(k) * 735));
  }
  size_t poor = kDemoBillCardsFirst + kDemoBillsPaid;
  // The poor card's bill is for the utility its mandate names (the mandates go round the
  // utilities in order), so that it fails for want of money and not for want of a mandate.
  csv += fmt::format("DB900001,{},\"福田区深南大道 {} 号\",{},2018-08,{},2018-09-20\n",
                     utilities[kDemoBillsPaid % utilities.size()], 100 + poor, d.cards_[poor],
                     FormatYuan(kDemoCounterTopupFen + 5'000));
  csv += fmt::format("DB900002,{},\"福田区深南大道 {} 号\",{},2018-08,38.20,2018-09-20\n",
                     utilities[1], 100 + poor + 1, d.cards_[poor + 1]);
  csv += fmt::format("DB900003,{},\"福田区深南大道 999 号\",{},2018-08,52.00,2018-09-20\n",
                     utilities[2], MakeCardNumber(kDemoUnknownCardSequence));
  return csv;
}

Result<std::string> BillsStep(Demo& d) {
  auto env = OpenAt(d, kDemoBillsOffsetSeconds);
  if (!env.ok()) return env.status();
  auto store = db::SqliteBillStore::Open((*env)->database());
  if (!store.ok()) return store.status();
  BillService service(**store, (*env)->registry(), (*env)->ledger(), (*env)->digester(),
                      (*env)->clock());
  std::vector<std::string> utilities = {"demo-water", "demo-power", "demo-gas"};
  // Mandates for the paying cards and for the poor one (it has a mandate, not the money).
  for (size_t k = 0; k <= kDemoBillsPaid; ++k) {
    size_t i = kDemoBillCardsFirst + k;
    auto mandate = service.AddMandate(d.cards_[i], utilities[k % utilities.size()],
                                      fmt::format("福田区深南大道 {} 号", 100 + i));
    if (!mandate.ok()) return mandate.status();
  }
  std::vector<BillResult> results;
  BillImportOptions options;
  options.on_results = [&results](std::span<const BillResult> chunk) {
    results.insert(results.end(), chunk.begin(), chunk.end());
    return Status::Ok();
  };
  auto report = service.ImportBills(DemoBillFile(d, utilities), options);
  if (!report.ok()) return report.status();
  std::map<std::string, int64_t> by_status;
  for (const BillResult& r : results) by_status[std::string(BillStatusName(r.status))] += 1;
  d.summary_["bills"] = {{"lines", report->lines},
                         {"paid_now", report->bills_paid_now},
                         {"paid_now_fen", report->paid_now_fen},
                         {"by_status", by_status}};
  DEMO_EXPECT(report->applied && report->errors.empty(), "a bill file without bad lines");
  DEMO_EXPECT(by_status["paid"] == static_cast<int64_t>(kDemoBillsPaid),
              fmt::format("{} bills paid, not {}", kDemoBillsPaid, by_status["paid"]));
  DEMO_EXPECT(by_status["insufficient_funds"] == 1 && by_status["no_mandate"] == 1 &&
                  by_status["unknown_card"] == 1,
              "one bill unpaid for want of money, one without a mandate, one for no card");
  return fmt::format("{} bills: {} paid by mandate ({} yuan), 1 insufficient_funds, "
                     "1 no_mandate, 1 unknown_card",
                     report->bills, by_status["paid"], FormatYuan(report->paid_now_fen));
}


// ---- Hospital ------------------------------------------------------------------------------

// The scheme rules the demo's hospital settles under (docs/medical.md "The scheme rules file").
constexpr char kDemoMedicalRules[] = R"({
  "version": "demo-2018",
  "schemes": {
    "medical": {
      "outpatient": { "deductible": "300.00", "rate_bp": 5000, "annual_cap": "3000.00" },
      "inpatient": { "deductible": "1000.00", "rate_bp": 8500, "annual_cap": "300000.00" }
    }
  },
  "assistance": { "groups": ["low_income"], "rate_bp": 5000, "annual_cap": "20000.00" }
})";

Result<std::string> HospitalStep(Demo& d) {
  auto env = OpenAt(d, kDemoHospitalOffsetSeconds);
  if (!env.ok()) return env.status();
  auto health = HealthRuntime::Open(**env);
  if (!health.ok()) return health.status();
  HealthService& service = (*health)->service();
  auto rules = service.LoadRules(kDemoMedicalRules);
  if (!rules.ok()) return rules.status();
  const DemoSite& hospital = Site("demo-hospital");
  const std::string& patient = d.cards_[kDemoPatientCard];
  IdentityQuery query;
  query.card_no = patient;
  query.purpose = IdentityPurpose::hospital;
  query.terminal_id = hospital.terminal_id;
  query.operator_id = hospital.operator_id;
  auto check = service.CheckIdentity(query);
  if (!check.ok()) return check.status();
  DEMO_EXPECT(check->outcome == IdentityOutcome::valid &&
                  check->disclosed.HasScheme(Scheme::medical),
              "the patient's card valid and insured");
  // The lost card, shown at the desk after its replacement: its status only.
  query.card_no = d.summary_["lost_card"]["old"].get<std::string>();
  auto lost = service.CheckIdentity(query);
  if (!lost.ok()) return lost.status();
  DEMO_EXPECT(lost->outcome == IdentityOutcome::card_not_valid, "the lost card not valid");

  MedicalSettleRequest request;
  request.card_no = patient;
  request.hospital_id = hospital.operator_id;
  request.bill_id = "MZ20180901-0001";
  request.scheme = Scheme::medical;
  request.category = MedicalCategory::outpatient;
  request.amount_fen = kDemoMedicalBillFen;
  request.terminal_id = hospital.terminal_id;
  auto settled = service.Settle(request);
  if (!settled.ok()) return settled.status();
  const MedicalSettlementRecord& r = settled->record;
  DEMO_EXPECT(!settled->repeated && r.fund_fen + r.assistance_fen + r.medical_account_fen +
                                            r.purse_fen ==
                                        r.amount_fen,
              "the bill split into fund, assistance, medical account and purse");
  auto again = service.Settle(request);
  if (!again.ok()) return again.status();
  DEMO_EXPECT(again->repeated, "the same bill sent again to book nothing");
  d.summary_["hospital"] = {{"identity", std::string(IdentityOutcomeName(check->outcome))},
                            {"lost_card_identity", std::string(IdentityOutcomeName(lost->outcome))},
                            {"amount_fen", r.amount_fen},
                            {"deductible_fen", r.deductible_fen},
                            {"fund_fen", r.fund_fen},
                            {"assistance_fen", r.assistance_fen},
                            {"medical_account_fen", r.medical_account_fen},
                            {"purse_fen", r.purse_fen},
                            {"voucher_bytes", r.voucher.size()}};
  return fmt::format("identity check valid (the lost card: card_not_valid); outpatient bill "
                     "{} yuan: fund {}, medical account {}, purse {}; voucher signed; sent "
                     "again: nothing booked",
                     FormatYuan(r.amount_fen), FormatYuan(r.fund_fen),
                     FormatYuan(r.medical_account_fen), FormatYuan(r.purse_fen));
}

std::string SettlementTable(const std::vector<SettlementReport>& reports) {
  Table table({"DAY", "OPERATOR", "NAME", ">TAPS", ">GROSS", ">CONCESSION", ">PAID", ">FEE",
               ">NET"});
  for (const SettlementReport& report : reports) {
    auto add = [&](const OperatorSettlement& line, const std::string& id) {
      table.Add({FormatDay(report.day), id, line.name, std::to_string(line.taps),
                 FormatYuanSign(line.gross_fen), FormatYuanSign(line.concession_fen),
                 FormatYuanSign(line.paid_fen), FormatYuanSign(line.fee_fen),
                 FormatYuanSign(line.net_fen)});
    };
    for (const OperatorSettlement& line : report.operators) add(line, line.operator_id);
    add(report.totals, "TOTAL");
  }
  return table.Render();
}

Result<std::string> SettleStep(Demo& d) {
  // The days are over by the system clock: settle them now.
  SetNow("");
  auto env = Environment::Open(d.global_);
  if (!env.ok()) return env.status();
  std::vector<SettlementReport> reports;
  int64_t taps = 0;
  int64_t paid_fen = 0;
  int64_t replay_taps = 0;
  int64_t replay_paid_fen = 0;
  nlohmann::json days = nlohmann::json::object();
  for (int64_t day : d.days_) {
    auto outcome = SettleDay(**env, day);
    if (!outcome.ok()) return outcome.status();
    const SettlementReport& report = outcome->record.report;
    reports.push_back(report);
    taps += report.totals.taps;
    paid_fen += report.totals.paid_fen;
    for (const OperatorSettlement& line : report.operators) {
      if (line.operator_id.rfind("szt-", 0) != 0) continue;
      replay_taps += line.taps;
      replay_paid_fen += line.paid_fen;
    }
    days[FormatDay(day)] = {{"taps", report.totals.taps},
                            {"gross_fen", report.totals.gross_fen},
                            {"paid_fen", report.totals.paid_fen},
                            {"fee_fen", report.totals.fee_fen},
                            {"net_fen", report.totals.net_fen},
                            {"transfers", outcome->record.transfers}};
  }
  d.summary_["settlement"] = {{"days", days},
                              {"taps", taps},
                              {"paid_fen", paid_fen},
                              {"replay_taps", replay_taps},
                              {"replay_paid_fen", replay_paid_fen}};
  d.text_ += "\nSettlement\n" + SettlementTable(reports);
  const nlohmann::json& file = d.summary_["file"];
  DEMO_EXPECT(replay_taps == file["rows"].get<int64_t>(),
              fmt::format("the replayed operators settled for {} taps, not {}",
                          file["rows"].get<int64_t>(), replay_taps));
  DEMO_EXPECT(replay_paid_fen == file["deal_money_fen"].get<int64_t>(),
              fmt::format("the replayed operators settled for {} fen, not {}",
                          file["deal_money_fen"].get<int64_t>(), replay_paid_fen));
  return fmt::format("{} day(s), {} taps, paid {} yuan", d.days_.size(), taps,
                     FormatYuan(paid_fen));
}

Result<std::string> AlertsStep(Demo& d) {
  auto env = Environment::Open(d.global_);
  if (!env.ok()) return env.status();
  auto store = db::SqliteTapStore::Open((*env)->database());
  if (!store.ok()) return store.status();
  AlertFilter filter;
  filter.limit = kAlertListMax;
  auto alerts = (*store)->ListAlerts(filter);
  if (!alerts.ok()) return alerts.status();
  nlohmann::json by_kind = nlohmann::json::object();
  Table table({"TIME", "KIND", "TERMINAL", "DETAIL"});
  for (const Alert& alert : *alerts) {
    std::string kind(AlertKindName(alert.kind));
    by_kind[kind] = by_kind.value(kind, 0) + 1;
    table.Add({FormatLocalTime(alert.time_ms / 1000), kind, alert.terminal_id, alert.detail});
  }
  d.summary_["alerts"] = by_kind;
  d.text_ += "\nAlerts\n" + (alerts->empty() ? std::string("No alerts.\n") : table.Render());
  return fmt::format("{} alert(s)", alerts->size());
}

Result<std::string> AuditStep(Demo& d) {
  auto env = Environment::Open(d.global_);
  if (!env.ok()) return env.status();
  auto report = VerifyLedger((*env)->ledger_store(), (*env)->digester());
  if (!report.ok()) return report.status();
  d.summary_["audit"] = {{"ok", report->ok},
                         {"transfers", report->transfers},
                         {"accounts", report->accounts},
                         {"problems", report->problems}};
  d.text_ += fmt::format("\nAudit: ledger {}: {} transfers, {} accounts\n",
                         report->ok ? "verified" : "NOT clean", report->transfers,
                         report->accounts);
  for (const std::string& problem : report->problems) d.text_ += "  problem: " + problem + "\n";
  DEMO_EXPECT(report->ok, "a clean ledger");
  return fmt::format("ledger verified: {} transfers, {} accounts", report->transfers,
                     report->accounts);
}

}  // namespace

Result<std::string> FindDemoData() {
  std::vector<std::string> candidates;
  if (const char* data = std::getenv(kDemoDataVariable); data != nullptr && *data != '\0') {
    candidates.push_back(data);
    candidates.push_back(std::string(data) + "/" + kDemoDataFileName);
  }
  candidates.push_back(std::string(CITYCARD_SOURCE_DIR "/../shared/data/") + kDemoDataFileName);
  candidates.push_back(std::string("../shared/data/") + kDemoDataFileName);
  for (const std::string& path : candidates) {
    if (IsFile(path)) return path;
  }
  return Status::NotFound("demo_data_not_found",
                          fmt::format("no {} (set {} to the file or its folder)",
                                      kDemoDataFileName, kDemoDataVariable));
}

Result<DemoResult> RunDemo(const DemoOptions& options) {
  std::string data_path;
  auto rows = LoadRows(options.short_run, &data_path);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return Status::BadInput("demo_data_empty", data_path + " has no rows");
  auto dir = MakeWorkDir(options.dir);
  if (!dir.ok()) return dir.status();
  GlobalOptions global;
  global.db_path = *dir + "/citycard.db";
  global.keys_path = *dir + "/citycard.keys";
  global.json = options.json;
  Demo d(options, global);
  d.rows_ = std::move(*rows);
  d.summary_["dir"] = *dir;
  d.summary_["data"] = data_path;
  d.summary_["short"] = options.short_run;
  d.summary_["steps"] = nlohmann::json::array();
  d.summary_["taps"] = {{"accepted", 0}, {"duplicates", 0}, {"rejected", 0}};
  std::fprintf(stderr, "citycard demo: working folder %s\n", dir->c_str());
  // The in-process server's info lines would interleave with the steps; the steps say where it
  // listens, and warnings still show.
  const spdlog::level::level_enum saved_level = spdlog::get_level();
  spdlog::set_level(spdlog::level::warn);

  d.Step("init", [&] { return InitStep(d); }) &&
      d.Step("replay the Shenzhen evening", [&] { return ReplayStep(d); }) &&
      d.Step("provision the city", [&] { return CityStep(d); }) &&
      d.Step("lost card", [&] { return LostCardStep(d); }) &&
      d.Step("taxi, car park, a replayed batch, a cloned card, a forged purse, the kiosk",
             [&] { return TapsStep(d); }) &&
      d.Step("utility bills", [&] { return BillsStep(d); }) &&
      d.Step("hospital", [&] { return HospitalStep(d); }) &&
      d.Step("settle", [&] { return SettleStep(d); }) &&
      d.Step("alerts", [&] { return AlertsStep(d); }) &&
      d.Step("audit verify", [&] { return AuditStep(d); });
  spdlog::set_level(saved_level);

  DemoResult result;
  result.ok = d.failed_.empty();
  d.summary_["ok"] = result.ok;
  if (!result.ok) d.summary_["failed"] = d.failed_;
  result.text = d.text_;
  result.text += result.ok ? "\nDemo finished: every step did what it expected.\n"
                           : "\nDemo FAILED at " + d.failed_ + "\n";
  result.text += "Working folder: " + *dir + "\n";
  std::fprintf(stderr, "citycard demo: working folder %s\n", dir->c_str());
  result.summary = std::move(d.summary_);
  return result;
}

}  // namespace citycard::cli
