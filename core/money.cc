#include "core/money.h"

#include <cstdlib>

namespace citycard {

namespace {

Status InvalidAmount(std::string_view text) {
  return Status::BadInput("invalid_amount",
                          "'" + std::string(text) +
                              "' is not an amount in yuan with at most two decimals");
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

Result<int64_t> ParseYuan(std::string_view text) {
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  // Both parts must be plain digits; a dot needs one or two digits after it.
  if (whole.empty() || whole.size() > 12) return InvalidAmount(text);
  if (dot != std::string_view::npos && (fraction.empty() || fraction.size() > 2)) {
    return InvalidAmount(text);
  }
  int64_t fen = 0;
  for (char c : whole) {
    if (!IsDigit(c)) return InvalidAmount(text);
    fen = fen * 10 + (c - '0');
  }
  int64_t cents = 0;
  for (size_t i = 0; i < 2; ++i) {
    char c = i < fraction.size() ? fraction[i] : '0';
    if (!IsDigit(c)) return InvalidAmount(text);
    cents = cents * 10 + (c - '0');
  }
  fen = fen * 100 + cents;
  if (fen > kAmountFenMax) return InvalidAmount(text);
  return fen;
}

std::string FormatYuan(int64_t fen) {
  // Work on the magnitude as unsigned so that INT64_MIN cannot overflow.
  uint64_t magnitude = fen < 0 ? 0 - static_cast<uint64_t>(fen) : static_cast<uint64_t>(fen);
  std::string out = fen < 0 ? "-" : "";
  out += std::to_string(magnitude / 100);
  out += '.';
  out += static_cast<char>('0' + (magnitude % 100) / 10);
  out += static_cast<char>('0' + magnitude % 10);
  return out;
}

std::string FormatYuanSign(int64_t fen) {
  std::string digits = FormatYuan(fen);
  if (fen < 0) return "-¥" + digits.substr(1);
  return "¥" + digits;
}

}  // namespace citycard
