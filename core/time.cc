#include "core/time.h"

#include <fmt/format.h>

#include "core/clock.h"

#include <chrono>

namespace citycard {

int64_t SystemClock::NowMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {

struct Civil {
  int64_t year;
  unsigned month;
  unsigned day;
};

Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

// Reads exactly `width` digits at text[pos..]; false when any is not a digit.
bool ReadDigits(std::string_view text, size_t pos, size_t width, int64_t* out) {
  if (pos + width > text.size()) return false;
  int64_t value = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10 + (text[i] - '0');
  }
  *out = value;
  return true;
}

bool ParseDate(std::string_view text, int64_t* year, int64_t* month, int64_t* day) {
  return text.size() >= 10 && text[4] == '-' && text[7] == '-' && ReadDigits(text, 0, 4, year) &&
         ReadDigits(text, 5, 2, month) && ReadDigits(text, 8, 2, day) &&
         IsValidDate(*year, static_cast<unsigned>(*month), static_cast<unsigned>(*day));
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day) {
  year -= month <= 2;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(year - era * 400);
  const unsigned doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool IsValidDate(int64_t year, unsigned month, unsigned day) {
  if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1) return false;
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  unsigned days = kDays[month - 1] + (month == 2 && leap ? 1 : 0);
  return day <= days;
}

Result<int64_t> ParseLocalTime(std::string_view text) {
  int64_t year, month, day, hour, minute, second;
  if (text.size() != 19 || !ParseDate(text, &year, &month, &day) || text[10] != ' ' ||
      text[13] != ':' || text[16] != ':' || !ReadDigits(text, 11, 2, &hour) ||
      !ReadDigits(text, 14, 2, &minute) || !ReadDigits(text, 17, 2, &second) || hour > 23 ||
      minute > 59 || second > 59) {
    return Status::BadInput("invalid_time",
                            "'" + std::string(text) + "' is not a time YYYY-MM-DD HH:MM:SS");
  }
  int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  return days * kSecondsPerDay + hour * 3600 + minute * 60 + second - kShanghaiOffsetSeconds;
}

std::string FormatLocalTime(int64_t unix_seconds) {
  int64_t local = unix_seconds + kShanghaiOffsetSeconds;
  int64_t days = FloorDiv(local, kSecondsPerDay);
  int64_t rest = local - days * kSecondsPerDay;
  Civil c = CivilFromDays(days);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", c.year, c.month, c.day, rest / 3600,
                     rest / 60 % 60, rest % 60);
}

Result<int64_t> ParseDay(std::string_view text) {
  int64_t year, month, day;
  if (text.size() != 10 || !ParseDate(text, &year, &month, &day)) {
    return Status::BadInput("invalid_date", "'" + std::string(text) + "' is not a date YYYY-MM-DD");
  }
  return DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
}

std::string FormatDay(int64_t day) {
  Civil c = CivilFromDays(day);
  return fmt::format("{:04}-{:02}-{:02}", c.year, c.month, c.day);
}

int64_t ClearingDay(int64_t unix_seconds, int64_t cutoff_seconds) {
  return FloorDiv(unix_seconds + kShanghaiOffsetSeconds - cutoff_seconds, kSecondsPerDay);
}

int64_t ClearingDayStart(int64_t day, int64_t cutoff_seconds) {
  return day * kSecondsPerDay - kShanghaiOffsetSeconds + cutoff_seconds;
}

}  // namespace citycard
