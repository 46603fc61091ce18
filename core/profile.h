// Card profiles: who a card is for, which drives concessions and the purse floor.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace citycard {

// Stored in the database and carried on the wire as these numbers: never renumber.
enum class Profile : uint8_t {
  adult = 1,
  student = 2,
  elderly = 3,
  disabled = 4,
  low_income = 5,
};

// "adult", "student", "elderly", "disabled", "low-income" (the CLI spelling).
std::string_view ProfileName(Profile profile);
std::optional<Profile> ParseProfile(std::string_view name);
// The profile for a wire byte; nullopt for an unknown number.
std::optional<Profile> ProfileFromByte(uint8_t value);

}  // namespace citycard
