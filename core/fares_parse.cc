// ParseFareTable: the JSON fare-table reader of core/fares.h (format: docs/fares.md).
//
// The text is parsed once into a DOM and then walked field by field; every check names the
// field by its path ("operators[2].routes[0].pricing.fare_fen"). Only when a check fails is
// the text parsed a second time, with a SAX handler that counts lines, to find the line of
// that field's key: a valid table costs one parse, and errors still point at a line.
#include <algorithm>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/fares.h"
#include "core/tap_record.h"

namespace citycard {

namespace {

using Json = nlohmann::json;

constexpr std::string_view kErrorCode = "invalid_fare_table";
constexpr int64_t kVersionMax = std::numeric_limits<uint32_t>::max();
constexpr int64_t kPercentMax = 100;
constexpr int64_t kTransferWindowMinutesMax = 24 * 60;

std::string Member(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

std::string Element(const std::string& path, size_t index) {
  return fmt::format("{}[{}]", path, index);
}

// ----- Finding the line of a field (only on failure). -----------------------------------------

// A forward iterator over the text that counts the line breaks it steps over, so the SAX
// handler can ask on which line the parser is.
class LineCountingIterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  LineCountingIterator() = default;
  LineCountingIterator(const char* at, int64_t* line) : at_(at), line_(line) {}
  reference operator*() const { return *at_; }
  LineCountingIterator& operator++() {
    if (*at_ == '\n') ++*line_;
    ++at_;
    return *this;
  }
  LineCountingIterator operator++(int) {
    LineCountingIterator before = *this;
    ++*this;
    return before;
  }
  bool operator==(const LineCountingIterator& other) const { return at_ == other.at_; }

 private:
  const char* at_ = nullptr;
  int64_t* line_ = nullptr;
};

// Walks the SAX events keeping the path of the current value, and remembers the line of the
// longest prefix of `target` it has seen (the field itself, or the object that lacks it).
// A key's line is exact (the parser has just read its closing quote); a scalar element of an
// array may be reported on the following line, as the parser reads one character past it.
class LineFinder {
 public:
  LineFinder(std::string target, const int64_t* line, std::string_view text)
      : target_(std::move(target)), line_(line), text_(text) {}

  int64_t best_line() const { return best_line_; }
  const std::string& syntax_error() const { return syntax_error_; }

  bool null() { return Scalar(); }
  bool boolean(bool) { return Scalar(); }
  bool number_integer(Json::number_integer_t) { return Scalar(); }
  bool number_unsigned(Json::number_unsigned_t) { return Scalar(); }
  bool number_float(Json::number_float_t, const Json::string_t&) { return Scalar(); }
  bool string(Json::string_t&) { return Scalar(); }
  bool binary(Json::binary_t&) { return Scalar(); }
  bool start_object(std::size_t) { return Open(false); }
  bool start_array(std::size_t) { return Open(true); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }
  bool key(Json::string_t& name) {
    path_.resize(frames_.back().base);
    path_ = Member(path_, name);
    return Visit();
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& error) {
    std::string_view what = error.what();
    // "[json.exception.parse_error.101] parse error at line 3, column 5: ..." -> from "line".
    const size_t at = what.find("line ");
    if (at != std::string_view::npos) {
      syntax_error_ = std::string(what.substr(at));
      return false;
    }
    // A number too large for a double is an out_of_range error, which names no position
    // ("[json.exception.out_of_range.406] number overflow parsing '1e999'"): name the line of
    // the number, which ends at `position` (found by tests/fuzz/fares_fuzz.cc).
    const auto end = static_cast<std::ptrdiff_t>(std::min(position, text_.size()));
    const int64_t line = 1 + std::count(text_.begin(), text_.begin() + end, '\n');
    const size_t close = what.find("] ");
    syntax_error_ = fmt::format("line {}: {}", line,
                                close == std::string_view::npos ? what : what.substr(close + 2));
    return false;
  }

 private:
  struct Frame {
    size_t base = 0;   // the path's length for this container
    bool array = false;
    size_t next_index = 0;
  };

  // An array element gets its index appended to the path; an object member already has its
  // key there.
  void EnterValue() {
    if (frames_.empty() || !frames_.back().array) return;
    path_.resize(frames_.back().base);
    path_ = Element(path_, frames_.back().next_index++);
  }
  bool Scalar() {
    EnterValue();
    return frames_.empty() || !frames_.back().array || Visit();
  }
  bool Open(bool array) {
    const bool in_array = !frames_.empty() && frames_.back().array;
    EnterValue();
    if (in_array && !Visit()) return false;
    frames_.push_back(Frame{path_.size(), array, 0});
    return true;
  }
  bool Close() {
    frames_.pop_back();
    return true;
  }
  // Records the line when the current path is the target or a prefix of it; stops the parse
  // (returns false) once the target itself is reached.
  bool Visit() {
    if (target_.compare(0, path_.size(), path_) != 0) return true;
    const bool exact = path_.size() == target_.size();
    if (!exact && target_[path_.size()] != '.' && target_[path_.size()] != '[') return true;
    if (path_.size() >= best_length_) {
      best_length_ = path_.size();
      best_line_ = *line_;
    }
    return !exact;
  }

 private:
  std::string target_;
  const int64_t* line_;
  std::string path_;
  std::vector<Frame> frames_;
  size_t best_length_ = 0;
  int64_t best_line_ = 1;
  std::string syntax_error_;
  std::string_view text_;
};

struct LineSearch {
  int64_t line = 1;
  std::string syntax_error;
};

LineSearch FindLine(std::string_view text, const std::string& path) {
  int64_t line = 1;
  LineFinder finder(path, &line, text);
  LineCountingIterator first(text.data(), &line);
  LineCountingIterator last(text.data() + text.size(), &line);
  Json::sax_parse(first, last, &finder);
  return LineSearch{finder.best_line(), finder.syntax_error()};
}

// ----- Walking the DOM. ------------------------------------------------------------------------

class TableParser {
 public:
  bool Parse(const Json& root, FareTable* table);
  const std::string& error_path() const { return error_path_; }
  const std::string& error_why() const { return error_why_; }

 private:
  bool Fail(std::string path, std::string why) {
    error_path_ = std::move(path);
    error_why_ = std::move(why);
    return false;
  }

  bool ExpectObject(const Json& value, const std::string& path, std::initializer_list<std::string_view> keys);
  const Json* Find(const Json& object, std::string_view key) const {
    auto it = object.find(std::string(key));
    return it == object.end() ? nullptr : &*it;
  }
  bool ReadInt(const Json& object, const std::string& path, std::string_view key, int64_t min,
               int64_t max, int64_t* out);
  bool ReadOptionalInt(const Json& object, const std::string& path, std::string_view key,
                       int64_t min, int64_t max, std::optional<int64_t>* out);
  bool ReadString(const Json& object, const std::string& path, std::string_view key, bool required,
                  size_t bytes_max, std::string* out);
  bool ReadBool(const Json& object, const std::string& path, std::string_view key, bool* out);
  bool ReadArray(const Json& object, const std::string& path, std::string_view key, bool required,
                 size_t size_max, const Json** out);
  bool ReadModes(const Json& object, const std::string& path, std::string_view key, bool required,
                 std::vector<RideMode>* out);
  bool ReadProfile(const Json& value, const std::string& path, Profile* out);

  bool ParseNetwork(const Json& value, const std::string& path, FareNetwork* out);
  bool ParseZoneTable(const Json& value, const std::string& path, FareNetwork* out);
  bool ParsePricing(const Json& value, const std::string& path, const FareTable& table, RoutePricing* out);
  bool ParseParkingBands(const Json& object, const std::string& path, RoutePricing* out);
  bool ParseConcessions(const Json& value, const std::string& path, ConcessionMap* out);
  bool ParseConcessionRule(const Json& value, const std::string& path, ConcessionRule* out);
  bool ParseHours(const Json& object, const std::string& path, std::vector<HourRange>* out);
  bool ParsePayBands(const Json& object, const std::string& path, std::vector<PayBand>* out);
  bool ParseOperator(const Json& value, const std::string& path, const FareTable& table, FareOperator* out);
  bool ParseRoute(const Json& value, const std::string& path, const FareTable& table, FareRoute* out);
  bool ParseTransfer(const Json& value, const std::string& path, TransferRule* out);
  bool ParseCap(const Json& value, const std::string& path, DailyCap* out);
  bool ParsePass(const Json& value, const std::string& path, const FareTable& table, PassProduct* out);

  std::string error_path_;
  std::string error_why_;
};

bool TableParser::ExpectObject(const Json& value, const std::string& path,
                               std::initializer_list<std::string_view> keys) {
  if (!value.is_object()) return Fail(path, "must be an object");
  for (const auto& item : value.items()) {
    const std::string& key = item.key();
    // "description" is allowed everywhere so that a table can explain itself.
    if (key == "description") continue;
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      return Fail(Member(path, key), "unknown field");
    }
  }
  return true;
}

bool TableParser::ReadInt(const Json& object, const std::string& path, std::string_view key,
                          int64_t min, int64_t max, int64_t* out) {
  const Json* value = Find(object, key);
  if (value == nullptr) return Fail(Member(path, key), "is required");
  std::optional<int64_t> read;
  if (!ReadOptionalInt(object, path, key, min, max, &read)) return false;
  *out = *read;
  return true;
}

bool TableParser::ReadOptionalInt(const Json& object, const std::string& path, std::string_view key,
                                  int64_t min, int64_t max, std::optional<int64_t>* out) {
  const Json* value = Find(object, key);
  if (value == nullptr) return true;
  const std::string field = Member(path, key);
  const std::string range = fmt::format("must be an integer from {} to {}", min, max);
  if (!value->is_number_integer()) return Fail(field, range);
  if (value->is_number_unsigned() &&
      value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Fail(field, range);
  }
  const int64_t number = value->get<int64_t>();
  if (number < min || number > max) return Fail(field, range);
  *out = number;
  return true;
}

bool TableParser::ReadString(const Json& object, const std::string& path, std::string_view key,
                             bool required, size_t bytes_max, std::string* out) {
  const Json* value = Find(object, key);
  const std::string field = Member(path, key);
  if (value == nullptr) return required ? Fail(field, "is required") : true;
  if (!value->is_string()) return Fail(field, "must be a string");
  const std::string& text = value->get_ref<const std::string&>();
  if (required && text.empty()) return Fail(field, "must not be empty");
  if (text.size() > bytes_max) return Fail(field, fmt::format("is longer than {} bytes", bytes_max));
  *out = text;
  return true;
}

bool TableParser::ReadBool(const Json& object, const std::string& path, std::string_view key, bool* out) {
  const Json* value = Find(object, key);
  if (value == nullptr) return true;
  if (!value->is_boolean()) return Fail(Member(path, key), "must be true or false");
  *out = value->get<bool>();
  return true;
}

bool TableParser::ReadArray(const Json& object, const std::string& path, std::string_view key,
                            bool required, size_t size_max, const Json** out) {
  const Json* value = Find(object, key);
  const std::string field = Member(path, key);
  *out = nullptr;
  if (value == nullptr) return required ? Fail(field, "is required") : true;
  if (!value->is_array()) return Fail(field, "must be an array");
  if (value->size() > size_max) return Fail(field, fmt::format("has more than {} entries", size_max));
  *out = value;
  return true;
}

bool TableParser::ReadModes(const Json& object, const std::string& path, std::string_view key,
                            bool required, std::vector<RideMode>* out) {
  const Json* array = nullptr;
  if (!ReadArray(object, path, key, required, 16, &array)) return false;
  if (array == nullptr) return true;
  const std::string field = Member(path, key);
  if (required && array->empty()) return Fail(field, "must name at least one mode");
  for (size_t i = 0; i < array->size(); ++i) {
    const Json& item = (*array)[i];
    std::optional<RideMode> mode;
    if (item.is_string()) mode = ParseRideMode(item.get_ref<const std::string&>());
    if (!mode) return Fail(Element(field, i), "must be one of bus, metro, taxi, parking, scenic, ferry");
    if (std::find(out->begin(), out->end(), *mode) != out->end()) {
      return Fail(Element(field, i), "is listed twice");
    }
    out->push_back(*mode);
  }
  return true;
}

bool TableParser::ReadProfile(const Json& value, const std::string& path, Profile* out) {
  std::optional<Profile> profile;
  if (value.is_string()) profile = ParseProfile(value.get_ref<const std::string&>());
  if (!profile) return Fail(path, "must be one of adult, student, elderly, disabled, low-income");
  *out = *profile;
  return true;
}

bool TableParser::ParseZoneTable(const Json& value, const std::string& path, FareNetwork* out) {
  if (!value.is_array() || value.empty() || value.size() > kFareZonesMax) {
    return Fail(path, fmt::format("must be a square array of 1 to {} rows", kFareZonesMax));
  }
  for (size_t row = 0; row < value.size(); ++row) {
    const Json& cells = value[row];
    if (!cells.is_array() || cells.size() != value.size()) {
      return Fail(Element(path, row), fmt::format("must be an array of {} fares", value.size()));
    }
    std::vector<int64_t> fares;
    for (size_t column = 0; column < cells.size(); ++column) {
      const Json& cell = cells[column];
      if (!cell.is_number_integer() || cell.get<int64_t>() < 0 || cell.get<int64_t>() > kFareFenMax ||
          (cell.is_number_unsigned() && cell.get<uint64_t>() > static_cast<uint64_t>(kFareFenMax))) {
        return Fail(Element(Element(path, row), column),
                    fmt::format("must be an integer from 0 to {}", kFareFenMax));
      }
      fares.push_back(cell.get<int64_t>());
    }
    out->zone_fares_fen.push_back(std::move(fares));
  }
  return true;
}

bool TableParser::ParseNetwork(const Json& value, const std::string& path, FareNetwork* out) {
  if (!ExpectObject(value, path, {"id", "stations", "zone_fares_fen", "pair_fares",
                                  "unmatched_exit_fare_fen", "unmatched_entry_fare_fen",
                                  "max_trip_minutes"})) {
    return false;
  }
  if (!ReadString(value, path, "id", true, kFareTextBytesMax, &out->id)) return false;
  if (const Json* zones = Find(value, "zone_fares_fen")) {
    if (!ParseZoneTable(*zones, Member(path, "zone_fares_fen"), out)) return false;
  }
  const Json* stations = nullptr;
  if (!ReadArray(value, path, "stations", true, kFareStationsMax, &stations)) return false;
  std::set<uint32_t> codes;
  for (size_t i = 0; i < stations->size(); ++i) {
    const std::string at = Element(Member(path, "stations"), i);
    const Json& item = (*stations)[i];
    FareStation station;
    int64_t code = 0;
    if (!ExpectObject(item, at, {"code", "name", "zone"}) ||
        !ReadInt(item, at, "code", 0, kVersionMax, &code) ||
        !ReadString(item, at, "name", false, kFareTextBytesMax, &station.name) ||
        !ReadInt(item, at, "zone", 1, static_cast<int64_t>(kFareZonesMax), &station.zone)) {
      return false;
    }
    station.code = static_cast<uint32_t>(code);
    if (!codes.insert(station.code).second) return Fail(Member(at, "code"), "is listed twice");
    if (!out->zone_fares_fen.empty() && static_cast<size_t>(station.zone) > out->zone_fares_fen.size()) {
      return Fail(Member(at, "zone"), fmt::format("is not a zone of zone_fares_fen (1 to {})",
                                                  out->zone_fares_fen.size()));
    }
    out->stations.push_back(std::move(station));
  }
  const Json* pairs = nullptr;
  if (!ReadArray(value, path, "pair_fares", false, kFarePairFaresMax, &pairs)) return false;
  std::set<std::pair<uint32_t, uint32_t>> seen;
  for (size_t i = 0; pairs != nullptr && i < pairs->size(); ++i) {
    const std::string at = Element(Member(path, "pair_fares"), i);
    const Json& item = (*pairs)[i];
    int64_t from = 0;
    int64_t to = 0;
    StationPairFare pair;
    if (!ExpectObject(item, at, {"from", "to", "fare_fen"}) ||
        !ReadInt(item, at, "from", 0, kVersionMax, &from) || !ReadInt(item, at, "to", 0, kVersionMax, &to) ||
        !ReadInt(item, at, "fare_fen", 0, kFareFenMax, &pair.fare_fen)) {
      return false;
    }
    if (codes.count(static_cast<uint32_t>(from)) == 0) return Fail(Member(at, "from"), "is not a station of this network");
    if (codes.count(static_cast<uint32_t>(to)) == 0) return Fail(Member(at, "to"), "is not a station of this network");
    pair.from_code = static_cast<uint32_t>(std::min(from, to));
    pair.to_code = static_cast<uint32_t>(std::max(from, to));
    if (!seen.insert({pair.from_code, pair.to_code}).second) return Fail(at, "prices a pair already priced");
    out->pair_fares.push_back(pair);
  }
  if (out->zone_fares_fen.empty() && out->pair_fares.empty()) {
    return Fail(path, "needs zone_fares_fen or pair_fares");
  }
  // An incomplete trip costs the network's highest fare unless the table says otherwise.
  int64_t highest_fen = 0;
  for (const auto& row : out->zone_fares_fen) highest_fen = std::max(highest_fen, *std::max_element(row.begin(), row.end()));
  for (const auto& pair : out->pair_fares) highest_fen = std::max(highest_fen, pair.fare_fen);
  out->unmatched_exit_fare_fen = highest_fen;
  out->unmatched_entry_fare_fen = highest_fen;
  std::optional<int64_t> exit_fen;
  std::optional<int64_t> entry_fen;
  std::optional<int64_t> trip_minutes;
  if (!ReadOptionalInt(value, path, "unmatched_exit_fare_fen", 0, kFareFenMax, &exit_fen) ||
      !ReadOptionalInt(value, path, "unmatched_entry_fare_fen", 0, kFareFenMax, &entry_fen) ||
      !ReadOptionalInt(value, path, "max_trip_minutes", 1, kFareMinutesMax, &trip_minutes)) {
    return false;
  }
  if (exit_fen) out->unmatched_exit_fare_fen = *exit_fen;
  if (entry_fen) out->unmatched_entry_fare_fen = *entry_fen;
  if (trip_minutes) out->max_trip_minutes = *trip_minutes;
  SortFareNetwork(out);
  return true;
}

bool TableParser::ParseParkingBands(const Json& object, const std::string& path, RoutePricing* out) {
  const Json* bands = nullptr;
  if (!ReadArray(object, path, "bands", true, kFareRulesMax, &bands)) return false;
  const std::string field = Member(path, "bands");
  if (bands->empty()) return Fail(field, "must have at least one band");
  int64_t previous_until = 0;
  for (size_t i = 0; i < bands->size(); ++i) {
    const std::string at = Element(field, i);
    const Json& item = (*bands)[i];
    ParkingBand band;
    if (!ExpectObject(item, at, {"until_minutes", "unit_minutes", "fen_per_unit"}) ||
        !ReadOptionalInt(item, at, "until_minutes", 1, kFareMinutesMax, &band.until_minutes) ||
        !ReadInt(item, at, "unit_minutes", 1, kFareMinutesMax, &band.unit_minutes) ||
        !ReadInt(item, at, "fen_per_unit", 0, kFareFenMax, &band.fen_per_unit)) {
      return false;
    }
    const bool last = i + 1 == bands->size();
    if (last && band.until_minutes) return Fail(Member(at, "until_minutes"), "must be absent in the last band");
    if (!last && !band.until_minutes) return Fail(Member(at, "until_minutes"), "is required in all but the last band");
    if (band.until_minutes) {
      if (*band.until_minutes <= previous_until) {
        return Fail(Member(at, "until_minutes"), "must be larger than the previous band's");
      }
      previous_until = *band.until_minutes;
    }
    out->bands.push_back(band);
  }
  return true;
}

bool TableParser::ParsePricing(const Json& value, const std::string& path, const FareTable& table,
                               RoutePricing* out) {
  if (!ExpectObject(value, path, {"kind", "fare_fen", "network", "free_minutes", "bands",
                                  "day_max_fen", "lost_ticket_fare_fen"})) {
    return false;
  }
  std::string kind;
  if (!ReadString(value, path, "kind", true, kFareTextBytesMax, &kind)) return false;
  auto allow_only = [&](std::initializer_list<std::string_view> keys) {
    for (const auto& item : value.items()) {
      if (item.key() == "kind" || item.key() == "description") continue;
      if (std::find(keys.begin(), keys.end(), item.key()) == keys.end()) {
        return Fail(Member(path, item.key()), fmt::format("is not a field of a {} pricing", kind));
      }
    }
    return true;
  };
  if (kind == "flat") {
    out->kind = PricingKind::flat;
    return allow_only({"fare_fen"}) && ReadInt(value, path, "fare_fen", 0, kFareFenMax, &out->fare_fen);
  }
  if (kind == "distance") {
    out->kind = PricingKind::distance;
    if (!allow_only({"network"}) || !ReadString(value, path, "network", true, kFareTextBytesMax, &out->network_id)) {
      return false;
    }
    if (table.FindNetwork(out->network_id) == nullptr) return Fail(Member(path, "network"), "is not a network of this table");
    return true;
  }
  if (kind == "metered") {
    out->kind = PricingKind::metered;
    return allow_only({});
  }
  if (kind == "parking") {
    out->kind = PricingKind::parking;
    return allow_only({"free_minutes", "bands", "day_max_fen", "lost_ticket_fare_fen"}) &&
           ReadInt(value, path, "free_minutes", 0, kFareMinutesMax, &out->free_minutes) &&
           ParseParkingBands(value, path, out) &&
           ReadOptionalInt(value, path, "day_max_fen", 0, kFareFenMax, &out->day_max_fen) &&
           ReadInt(value, path, "lost_ticket_fare_fen", 0, kFareFenMax, &out->lost_ticket_fare_fen);
  }
  return Fail(Member(path, "kind"), "must be one of flat, distance, metered, parking");
}

bool TableParser::ParseHours(const Json& object, const std::string& path, std::vector<HourRange>* out) {
  const Json* hours = nullptr;
  if (!ReadArray(object, path, "hours", false, kFareRulesMax, &hours)) return false;
  if (hours == nullptr) return true;
  const std::string field = Member(path, "hours");
  if (hours->empty()) return Fail(field, "must have at least one range (leave it out for all day)");
  auto minute_of = [](const Json& item, std::string_view key, int64_t* minute) {
    auto it = item.find(std::string(key));
    if (it == item.end() || !it->is_string()) return false;
    const std::string& text = it->get_ref<const std::string&>();
    if (text.size() != 5 || text[2] != ':') return false;
    for (size_t i : {0u, 1u, 3u, 4u}) {
      if (text[i] < '0' || text[i] > '9') return false;
    }
    const int64_t hour = (text[0] - '0') * 10 + (text[1] - '0');
    const int64_t minutes = (text[3] - '0') * 10 + (text[4] - '0');
    if (minutes > 59 || hour > 24 || (hour == 24 && minutes != 0)) return false;
    *minute = hour * 60 + minutes;
    return true;
  };
  for (size_t i = 0; i < hours->size(); ++i) {
    const std::string at = Element(field, i);
    const Json& item = (*hours)[i];
    HourRange range;
    if (!ExpectObject(item, at, {"from", "to"})) return false;
    if (!minute_of(item, "from", &range.start_minute)) return Fail(Member(at, "from"), "must be a time HH:MM (00:00 to 24:00)");
    if (!minute_of(item, "to", &range.end_minute)) return Fail(Member(at, "to"), "must be a time HH:MM (00:00 to 24:00)");
    if (range.start_minute == 1440) range.start_minute = 0;
    if (range.end_minute == 1440) range.end_minute = 0;
    if (range.start_minute == range.end_minute) return Fail(at, "is empty: from and to are the same time");
    out->push_back(range);
  }
  return true;
}

bool TableParser::ParsePayBands(const Json& object, const std::string& path, std::vector<PayBand>* out) {
  const Json* bands = nullptr;
  if (!ReadArray(object, path, "bands", true, kFareRulesMax, &bands)) return false;
  const std::string field = Member(path, "bands");
  if (bands->empty()) return Fail(field, "must have at least one band");
  int64_t previous_up_to = 0;
  for (size_t i = 0; i < bands->size(); ++i) {
    const std::string at = Element(field, i);
    const Json& item = (*bands)[i];
    PayBand band;
    if (!ExpectObject(item, at, {"up_to_fen", "pay_percent"}) ||
        !ReadOptionalInt(item, at, "up_to_fen", 1, kFareFenMax, &band.up_to_fen) ||
        !ReadInt(item, at, "pay_percent", 0, kPercentMax, &band.pay_percent)) {
      return false;
    }
    const bool last = i + 1 == bands->size();
    if (last && band.up_to_fen) return Fail(Member(at, "up_to_fen"), "must be absent in the last band");
    if (!last && !band.up_to_fen) return Fail(Member(at, "up_to_fen"), "is required in all but the last band");
    if (band.up_to_fen) {
      if (*band.up_to_fen <= previous_up_to) return Fail(Member(at, "up_to_fen"), "must be larger than the previous band's");
      previous_up_to = *band.up_to_fen;
    }
    out->push_back(band);
  }
  return true;
}

bool TableParser::ParseConcessionRule(const Json& value, const std::string& path, ConcessionRule* out) {
  if (!ExpectObject(value, path, {"kind", "modes", "hours", "pay_percent", "bands", "rides_per_month"})) {
    return false;
  }
  std::string kind;
  if (!ReadString(value, path, "kind", true, kFareTextBytesMax, &kind) ||
      !ReadModes(value, path, "modes", false, &out->modes) || !ParseHours(value, path, &out->hours)) {
    return false;
  }
  auto forbid = [&](std::initializer_list<std::string_view> keys) {
    for (std::string_view key : keys) {
      if (Find(value, key) != nullptr) return Fail(Member(path, key), fmt::format("is not a field of a {} concession", kind));
    }
    return true;
  };
  if (kind == "percent") {
    out->kind = ConcessionKind::percent;
    return forbid({"bands", "rides_per_month"}) && ReadInt(value, path, "pay_percent", 0, kPercentMax, &out->pay_percent);
  }
  if (kind == "free") {
    out->kind = ConcessionKind::free;
    return forbid({"pay_percent", "bands", "rides_per_month"});
  }
  if (kind == "bands") {
    out->kind = ConcessionKind::bands;
    return forbid({"pay_percent", "rides_per_month"}) && ParsePayBands(value, path, &out->bands);
  }
  if (kind == "free_quota") {
    out->kind = ConcessionKind::free_quota;
    return forbid({"pay_percent", "bands"}) &&
           ReadInt(value, path, "rides_per_month", 1, kFreeRidesPerMonthMax, &out->rides_per_month);
  }
  return Fail(Member(path, "kind"), "must be one of percent, free, bands, free_quota");
}

bool TableParser::ParseConcessions(const Json& value, const std::string& path, ConcessionMap* out) {
  if (!value.is_object()) return Fail(path, "must be an object of profile: [rules]");
  for (const auto& item : value.items()) {
    const std::string at = Member(path, item.key());
    Profile profile;
    if (!ReadProfile(item.key(), at, &profile)) return false;
    const Json& rules = item.value();
    if (!rules.is_array()) return Fail(at, "must be an array of rules");
    if (rules.size() > kFareRulesMax) return Fail(at, fmt::format("has more than {} rules", kFareRulesMax));
    std::vector<ConcessionRule>& list = (*out)[profile];
    for (size_t i = 0; i < rules.size(); ++i) {
      ConcessionRule rule;
      if (!ParseConcessionRule(rules[i], Element(at, i), &rule)) return false;
      list.push_back(std::move(rule));
    }
  }
  return true;
}

bool TableParser::ParseRoute(const Json& value, const std::string& path, const FareTable& table, FareRoute* out) {
  int64_t code = 0;
  if (!ExpectObject(value, path, {"code", "name", "pricing", "concessions"}) ||
      !ReadInt(value, path, "code", 0, kVersionMax, &code) ||
      !ReadString(value, path, "name", false, kFareTextBytesMax, &out->name)) {
    return false;
  }
  out->code = static_cast<uint32_t>(code);
  const Json* pricing = Find(value, "pricing");
  if (pricing == nullptr) return Fail(Member(path, "pricing"), "is required");
  if (!ParsePricing(*pricing, Member(path, "pricing"), table, &out->pricing)) return false;
  if (const Json* concessions = Find(value, "concessions")) {
    out->concessions.emplace();
    if (!ParseConcessions(*concessions, Member(path, "concessions"), &*out->concessions)) return false;
  }
  return true;
}

bool TableParser::ParseOperator(const Json& value, const std::string& path, const FareTable& table,
                                FareOperator* out) {
  std::string mode;
  if (!ExpectObject(value, path, {"id", "name", "mode", "pricing", "routes", "concessions"}) ||
      !ReadString(value, path, "id", true, kOperatorIdBytes, &out->id) ||
      !ReadString(value, path, "name", false, kFareTextBytesMax, &out->name) ||
      !ReadString(value, path, "mode", true, kFareTextBytesMax, &mode)) {
    return false;
  }
  for (char c : out->id) {
    if (c <= ' ' || c > '~') return Fail(Member(path, "id"), "must be printable ASCII without spaces");
  }
  std::optional<RideMode> parsed = ParseRideMode(mode);
  if (!parsed) return Fail(Member(path, "mode"), "must be one of bus, metro, taxi, parking, scenic, ferry");
  out->mode = *parsed;
  if (const Json* pricing = Find(value, "pricing")) {
    out->pricing.emplace();
    if (!ParsePricing(*pricing, Member(path, "pricing"), table, &*out->pricing)) return false;
  }
  const Json* routes = nullptr;
  if (!ReadArray(value, path, "routes", false, kFareRoutesMax, &routes)) return false;
  std::set<uint32_t> codes;
  for (size_t i = 0; routes != nullptr && i < routes->size(); ++i) {
    const std::string at = Element(Member(path, "routes"), i);
    FareRoute route;
    if (!ParseRoute((*routes)[i], at, table, &route)) return false;
    if (!codes.insert(route.code).second) return Fail(Member(at, "code"), "is listed twice in this operator");
    out->routes.push_back(std::move(route));
  }
  if (!out->pricing && out->routes.empty()) return Fail(path, "needs a pricing or at least one route");
  if (const Json* concessions = Find(value, "concessions")) {
    out->concessions.emplace();
    if (!ParseConcessions(*concessions, Member(path, "concessions"), &*out->concessions)) return false;
  }
  return true;
}

bool TableParser::ParseTransfer(const Json& value, const std::string& path, TransferRule* out) {
  int64_t window_minutes = 0;
  std::optional<int64_t> discount_fen;
  std::optional<int64_t> percent_off;
  if (!ExpectObject(value, path, {"from_modes", "to_modes", "window_minutes", "discount_fen",
                                  "percent_off", "different_route"}) ||
      !ReadModes(value, path, "from_modes", true, &out->from_modes) ||
      !ReadModes(value, path, "to_modes", true, &out->to_modes) ||
      !ReadInt(value, path, "window_minutes", 1, kTransferWindowMinutesMax, &window_minutes) ||
      !ReadOptionalInt(value, path, "discount_fen", 1, kFareFenMax, &discount_fen) ||
      !ReadOptionalInt(value, path, "percent_off", 1, kPercentMax, &percent_off) ||
      !ReadBool(value, path, "different_route", &out->different_route)) {
    return false;
  }
  if (discount_fen.has_value() == percent_off.has_value()) {
    return Fail(path, "needs exactly one of discount_fen and percent_off");
  }
  out->window_seconds = window_minutes * 60;
  out->percent = percent_off.has_value();
  out->discount_fen = discount_fen.value_or(0);
  out->percent_off = percent_off.value_or(0);
  return true;
}

bool TableParser::ParseCap(const Json& value, const std::string& path, DailyCap* out) {
  const Json* profile = value.is_object() ? Find(value, "profile") : nullptr;
  if (!ExpectObject(value, path, {"profile", "modes", "cap_fen"})) return false;
  if (profile == nullptr) return Fail(Member(path, "profile"), "is required");
  return ReadProfile(*profile, Member(path, "profile"), &out->profile) &&
         ReadModes(value, path, "modes", true, &out->modes) &&
         ReadInt(value, path, "cap_fen", 0, kFareFenMax, &out->cap_fen);
}

bool TableParser::ParsePass(const Json& value, const std::string& path, const FareTable& table, PassProduct* out) {
  if (!ExpectObject(value, path, {"id", "name", "price_fen", "validity_days", "visits", "spots",
                                  "one_entry_per_spot_per_day", "profiles"}) ||
      !ReadString(value, path, "id", true, kFareTextBytesMax, &out->id) ||
      !ReadString(value, path, "name", false, kFareTextBytesMax, &out->name) ||
      !ReadInt(value, path, "price_fen", 0, kFareFenMax, &out->price_fen) ||
      !ReadInt(value, path, "validity_days", 1, kPassValidityDaysMax, &out->validity_days) ||
      !ReadInt(value, path, "visits", 1, kPassVisitsMax, &out->visits) ||
      !ReadBool(value, path, "one_entry_per_spot_per_day", &out->one_entry_per_spot_per_day)) {
    return false;
  }
  const Json* spots = nullptr;
  if (!ReadArray(value, path, "spots", true, kFareOperatorsMax, &spots)) return false;
  if (spots->empty()) return Fail(Member(path, "spots"), "must name at least one spot");
  for (size_t i = 0; i < spots->size(); ++i) {
    const std::string at = Element(Member(path, "spots"), i);
    const Json& spot = (*spots)[i];
    if (!spot.is_string() || table.FindOperator(spot.get_ref<const std::string&>()) == nullptr) {
      return Fail(at, "must be the id of an operator of this table");
    }
    out->spots.push_back(spot.get<std::string>());
  }
  const Json* profiles = nullptr;
  if (!ReadArray(value, path, "profiles", false, 8, &profiles)) return false;
  for (size_t i = 0; profiles != nullptr && i < profiles->size(); ++i) {
    Profile profile;
    if (!ReadProfile((*profiles)[i], Element(Member(path, "profiles"), i), &profile)) return false;
    out->profiles.push_back(profile);
  }
  return true;
}

bool TableParser::Parse(const Json& root, FareTable* table) {
  if (!ExpectObject(root, "", {"format", "format_version", "version", "name", "networks", "operators",
                               "concessions", "transfers", "daily_caps", "passes"})) {
    return false;
  }
  std::string format;
  int64_t format_version = 0;
  if (!ReadString(root, "", "format", true, kFareTextBytesMax, &format)) return false;
  if (format != kFareTableFormatName) return Fail("format", fmt::format("must be \"{}\"", kFareTableFormatName));
  if (!ReadInt(root, "", "format_version", kFareTableFormatVersion, kFareTableFormatVersion, &format_version) ||
      !ReadInt(root, "", "version", 1, kVersionMax, &table->version) ||
      !ReadString(root, "", "name", false, kFareTextBytesMax, &table->name)) {
    return false;
  }
  const Json* list = nullptr;
  if (!ReadArray(root, "", "networks", false, kFareOperatorsMax, &list)) return false;
  for (size_t i = 0; list != nullptr && i < list->size(); ++i) {
    FareNetwork network;
    const std::string at = Element("networks", i);
    if (!ParseNetwork((*list)[i], at, &network)) return false;
    if (table->FindNetwork(network.id) != nullptr) return Fail(Member(at, "id"), "is listed twice");
    table->networks.push_back(std::move(network));
  }
  if (!ReadArray(root, "", "operators", true, kFareOperatorsMax, &list)) return false;
  for (size_t i = 0; i < list->size(); ++i) {
    FareOperator op;
    const std::string at = Element("operators", i);
    if (!ParseOperator((*list)[i], at, *table, &op)) return false;
    if (table->FindOperator(op.id) != nullptr) return Fail(Member(at, "id"), "is listed twice");
    table->operators.push_back(std::move(op));
  }
  if (const Json* concessions = Find(root, "concessions")) {
    if (!ParseConcessions(*concessions, "concessions", &table->concessions)) return false;
  }
  if (!ReadArray(root, "", "transfers", false, kFareRulesMax, &list)) return false;
  for (size_t i = 0; list != nullptr && i < list->size(); ++i) {
    TransferRule rule;
    if (!ParseTransfer((*list)[i], Element("transfers", i), &rule)) return false;
    table->transfers.push_back(std::move(rule));
  }
  if (!ReadArray(root, "", "daily_caps", false, kFareRulesMax, &list)) return false;
  for (size_t i = 0; list != nullptr && i < list->size(); ++i) {
    DailyCap cap;
    const std::string at = Element("daily_caps", i);
    if (!ParseCap((*list)[i], at, &cap)) return false;
    for (RideMode mode : cap.modes) {
      if (table->FindDailyCap(cap.profile, mode) != nullptr) {
        return Fail(Member(at, "modes"), fmt::format("{} already has a cap for {}", ProfileName(cap.profile), RideModeName(mode)));
      }
    }
    table->daily_caps.push_back(std::move(cap));
  }
  if (!ReadArray(root, "", "passes", false, kFarePassesMax, &list)) return false;
  for (size_t i = 0; list != nullptr && i < list->size(); ++i) {
    PassProduct pass;
    const std::string at = Element("passes", i);
    if (!ParsePass((*list)[i], at, *table, &pass)) return false;
    if (table->FindPass(pass.id) != nullptr) return Fail(Member(at, "id"), "is listed twice");
    table->passes.push_back(std::move(pass));
  }
  return true;
}

Status Invalid(std::string message) { return Status::BadInput(std::string(kErrorCode), std::move(message)); }

}  // namespace

Result<FareTable> ParseFareTable(std::string_view json) {
  if (json.size() > kFareTableBytesMax) {
    return Invalid(fmt::format("the table is larger than {} bytes", kFareTableBytesMax));
  }
  Json root = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    const LineSearch search = FindLine(json, std::string("\x01"));
    return Invalid(search.syntax_error.empty() ? std::string("not valid JSON") : search.syntax_error);
  }
  FareTable table;
  TableParser parser;
  if (!parser.Parse(root, &table)) {
    const LineSearch search = FindLine(json, parser.error_path());
    const std::string& path = parser.error_path();
    return Invalid(fmt::format("line {}: {}: {}", search.line, path.empty() ? "(top level)" : path,
                               parser.error_why()));
  }
  return table;
}

}  // namespace citycard
