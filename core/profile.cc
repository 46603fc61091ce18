#include "core/profile.h"

#include <array>
#include <utility>

namespace citycard {

namespace {
constexpr std::array<std::pair<Profile, std::string_view>, 5> kProfiles = {{
    {Profile::adult, "adult"},
    {Profile::student, "student"},
    {Profile::elderly, "elderly"},
    {Profile::disabled, "disabled"},
    {Profile::low_income, "low-income"},
}};
}  // namespace

std::string_view ProfileName(Profile profile) {
  for (const auto& [p, name] : kProfiles) {
    if (p == profile) return name;
  }
  return "unknown";
}

std::optional<Profile> ParseProfile(std::string_view name) {
  for (const auto& [p, n] : kProfiles) {
    if (n == name) return p;
  }
  return std::nullopt;
}

std::optional<Profile> ProfileFromByte(uint8_t value) {
  for (const auto& [p, n] : kProfiles) {
    if (static_cast<uint8_t>(p) == value) return p;
  }
  return std::nullopt;
}

}  // namespace citycard
