// Local time in Asia/Shanghai. China has kept UTC+8 all year since 1991, so local time is a
// fixed offset and needs no time-zone database.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace citycard {

inline constexpr int64_t kShanghaiOffsetSeconds = 8 * 3600;
inline constexpr int64_t kSecondsPerDay = 86400;

// "2018-08-31 22:14:50" (Asia/Shanghai) -> Unix seconds. Refuses anything else with
// Kind::bad_input, code "invalid_time".
Result<int64_t> ParseLocalTime(std::string_view text);

// Unix seconds -> "2018-08-31 22:14:50" in Asia/Shanghai.
std::string FormatLocalTime(int64_t unix_seconds);

// "2018-08-31" -> days since 1970-01-01 (a civil day number). Refuses other shapes and
// impossible dates with code "invalid_date".
Result<int64_t> ParseDay(std::string_view text);

// Civil day number -> "2018-08-31".
std::string FormatDay(int64_t day);

// The clearing day (civil day number) that a moment belongs to, when clearing days start
// cutoff_seconds after local midnight (0: a day is midnight to midnight, local time).
int64_t ClearingDay(int64_t unix_seconds, int64_t cutoff_seconds = 0);

// Unix seconds at which clearing day `day` starts.
int64_t ClearingDayStart(int64_t day, int64_t cutoff_seconds = 0);

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day);

// True when year-month-day is a real calendar date.
bool IsValidDate(int64_t year, unsigned month, unsigned day);

}  // namespace citycard
