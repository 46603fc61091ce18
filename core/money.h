// Money at the edges: converting between what people type and read (yuan, "12.50") and
// what the core computes with (int64 fen). Never a floating-point number anywhere.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace citycard {

// The largest amount a person may type: ¥100,000,000.00. Far above any real purse or bill,
// and far enough below INT64_MAX that sums of many such amounts cannot overflow.
inline constexpr int64_t kAmountFenMax = 10'000'000'000;

// Parses a non-negative yuan amount with at most two decimals: "12", "12.5", "12.50", "0.01".
// Refuses (Kind::bad_input, code "invalid_amount") anything else: "12.505", "-3", "1e3",
// "abc", "", " 1", "1.", ".5", and amounts above kAmountFenMax.
Result<int64_t> ParseYuan(std::string_view text);

// Formats fen as yuan with two decimals: 1250 -> "12.50", -5 -> "-0.05".
std::string FormatYuan(int64_t fen);

// Formats fen for people: 1250 -> "¥12.50", -5 -> "-¥0.05".
std::string FormatYuanSign(int64_t fen);

}  // namespace citycard
