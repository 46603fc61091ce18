#include "core/szt_file.h"

#include <array>
#include <charconv>
#include <utility>

#include <fmt/format.h>

#include "core/time.h"

namespace citycard {

namespace {

constexpr std::string_view kErrorCode = "invalid_szt_file";
constexpr std::array<std::string_view, kSztColumns> kColumnNames = {
    "deal_date", "close_date", "card_no", "deal_value", "deal_type", "company_name",
    "car_no",    "station",    "conn_mark", "deal_money", "equ_no"};

Status LineError(int64_t line, std::string_view why) {
  return Status::BadInput(std::string(kErrorCode), fmt::format("line {}: {}", line, why));
}

Status FieldError(int64_t line, size_t column, std::string_view why) {
  return Status::BadInput(std::string(kErrorCode),
                          fmt::format("line {}: {}: {}", line, kColumnNames[column], why));
}

// True when text is strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    size_t extra = 0;
    uint32_t code = 0;
    if (byte < 0x80) {
      ++i;
      continue;
    } else if ((byte & 0xE0) == 0xC0) {
      extra = 1;
      code = byte & 0x1F;
    } else if ((byte & 0xF0) == 0xE0) {
      extra = 2;
      code = byte & 0x0F;
    } else if ((byte & 0xF8) == 0xF0) {
      extra = 3;
      code = byte & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;  // the sequence runs past the end
    for (size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    constexpr std::array<uint32_t, 4> kSmallest = {0, 0x80, 0x800, 0x10000};
    if (code < kSmallest[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

// Splits a line into fields: unquoted, or quoted with "" for a quote inside. Fails with a
// message for the line as a whole.
Status SplitFields(std::string_view text, int64_t line, std::vector<std::string>* fields) {
  fields->clear();
  size_t pos = 0;
  while (true) {
    std::string field;
    if (pos < text.size() && text[pos] == '"') {
      ++pos;
      while (true) {
        if (pos >= text.size()) return LineError(line, "a quoted field is not closed");
        if (text[pos] == '"') {
          if (pos + 1 < text.size() && text[pos + 1] == '"') {
            field.push_back('"');
            pos += 2;
            continue;
          }
          ++pos;
          break;
        }
        field.push_back(text[pos++]);
      }
      if (pos < text.size() && text[pos] != ',') {
        return LineError(line, "text after the closing quote of a field");
      }
    } else {
      const size_t end = std::min(text.find(',', pos), text.size());
      field.assign(text.substr(pos, end - pos));
      if (field.find('"') != std::string::npos) return LineError(line, "a quote inside an unquoted field");
      pos = end;
    }
    if (field.size() > kSztFieldBytesMax) {
      return LineError(line, fmt::format("a field is longer than {} bytes", kSztFieldBytesMax));
    }
    fields->push_back(std::move(field));
    if (fields->size() > kSztColumns) break;
    if (pos >= text.size()) break;
    ++pos;  // the comma
    if (pos == text.size()) {
      fields->emplace_back();
      break;
    }
  }
  if (fields->size() != kSztColumns) {
    return LineError(line, fmt::format("expected {} columns", kSztColumns));
  }
  return Status::Ok();
}

Status ParseAmount(const std::string& text, int64_t line, size_t column, int64_t* out) {
  int64_t value = -1;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < 0 ||
      value > kSztAmountFenMax || text[0] == '+' || text[0] == '-') {
    return FieldError(line, column, fmt::format("must be a whole number of fen from 0 to {}", kSztAmountFenMax));
  }
  *out = value;
  return Status::Ok();
}

Status ParseTime(const std::string& text, int64_t line, size_t column, int64_t* out) {
  Result<int64_t> time = ParseLocalTime(text);
  if (!time.ok()) return FieldError(line, column, "must be a local time YYYY-MM-DD HH:MM:SS");
  *out = *time;
  return Status::Ok();
}

Status ParseDealType(const std::string& text, int64_t line, SztDealType* out) {
  if (text == "地铁入站") {
    *out = SztDealType::metro_entry;
  } else if (text == "地铁出站") {
    *out = SztDealType::metro_exit;
  } else if (text == "巴士") {
    *out = SztDealType::bus;
  } else {
    return FieldError(line, 4, "must be 地铁入站, 地铁出站 or 巴士");
  }
  return Status::Ok();
}

Status RequireText(const std::string& text, int64_t line, size_t column) {
  if (text.empty()) return FieldError(line, column, "must not be empty");
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20) return FieldError(line, column, "holds a control character");
  }
  return Status::Ok();
}

}  // namespace

std::string_view SztDealTypeName(SztDealType type) {
  switch (type) {
    case SztDealType::metro_entry: return "metro_entry";
    case SztDealType::metro_exit: return "metro_exit";
    case SztDealType::bus: return "bus";
  }
  return "unknown";
}

Result<SztRow> ParseSztLine(std::string_view text, int64_t line) {
  if (text.size() > kSztLineBytesMax) {
    return LineError(line, fmt::format("longer than {} bytes", kSztLineBytesMax));
  }
  if (!IsUtf8(text)) return LineError(line, "not valid UTF-8");
  std::vector<std::string> fields;
  CITYCARD_RETURN_IF_ERROR(SplitFields(text, line, &fields));
  SztRow row;
  row.line = line;
  CITYCARD_RETURN_IF_ERROR(ParseTime(fields[0], line, 0, &row.deal_time_s));
  CITYCARD_RETURN_IF_ERROR(ParseTime(fields[1], line, 1, &row.close_time_s));
  for (size_t column : {2u, 5u, 6u, 7u}) CITYCARD_RETURN_IF_ERROR(RequireText(fields[column], line, column));
  row.card_no = std::move(fields[2]);
  CITYCARD_RETURN_IF_ERROR(ParseAmount(fields[3], line, 3, &row.deal_value_fen));
  CITYCARD_RETURN_IF_ERROR(ParseDealType(fields[4], line, &row.deal_type));
  row.company_name = std::move(fields[5]);
  row.car_no = std::move(fields[6]);
  row.station = std::move(fields[7]);
  if (fields[8] != "0" && fields[8] != "1") return FieldError(line, 8, "must be 0 or 1");
  row.conn_mark = fields[8] == "1";
  CITYCARD_RETURN_IF_ERROR(ParseAmount(fields[9], line, 9, &row.deal_money_fen));
  const std::string& equ = fields[10];
  auto [end, error] = std::from_chars(equ.data(), equ.data() + equ.size(), row.equ_no);
  if (equ.empty() || error != std::errc() || end != equ.data() + equ.size()) {
    return FieldError(line, 10, "must be a device number (digits)");
  }
  return row;
}

Result<std::vector<SztRow>> ParseSztFile(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<SztRow> rows;
  int64_t line = 0;
  size_t pos = 0;
  bool header_seen = false;
  while (pos < text.size()) {
    ++line;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view content = text.substr(pos, end - pos);
    pos = end + 1;
    if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
    if (!header_seen) {
      if (content != kSztHeader) return LineError(line, fmt::format("the header must be {}", kSztHeader));
      header_seen = true;
      continue;
    }
    if (content.empty()) continue;
    if (rows.size() >= kSztRowsMax) return LineError(line, fmt::format("more than {} rows", kSztRowsMax));
    Result<SztRow> row = ParseSztLine(content, line);
    if (!row.ok()) return row.status();
    rows.push_back(std::move(row).value());
  }
  if (!header_seen) return LineError(1, "the file is empty: no header line");
  return rows;
}

}  // namespace citycard
