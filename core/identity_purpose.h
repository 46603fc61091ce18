// The purpose filter of identity checks (docs/medical.md "Identity checks"): a reader asks
// "who is this and what are they insured for" for a stated purpose, and the answer discloses
// only the schemes and groups that purpose needs. A pharmacy learns whether the holder has
// medical insurance and may get medical assistance, never their pension status; a transit
// concession desk learns the groups that give concessions and no scheme at all.
//
// The table is fixed in code on purpose: widening what a purpose may see is a privacy
// decision, made in a reviewed change with its test, not in a configuration file.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/registry.h"

namespace citycard {

// Why a reader asks. Stored numbers (the audit trail of checks keeps them); never renumber.
enum class IdentityPurpose : uint8_t {
  hospital = 1,            // treatment and medical settlement
  pharmacy = 2,            // drugs paid by the medical scheme
  pension_office = 3,      // pension payments
  transit_concession = 4,  // concession fares (card office, transit counters)
  employment_office = 5,   // unemployment benefits and employment help
};
inline constexpr size_t kIdentityPurposeCount = 5;

// "hospital", "pharmacy", "pension_office", "transit_concession", "employment_office".
std::string_view IdentityPurposeName(IdentityPurpose purpose);
std::optional<IdentityPurpose> ParseIdentityPurpose(std::string_view name);

// What a purpose may learn: each listed scheme or group is answered yes or no; anything not
// listed is not answered at all. Both lists ascending.
struct DisclosurePolicy {
  std::vector<Scheme> schemes;
  std::vector<SpecialGroup> groups;

  friend bool operator==(const DisclosurePolicy&, const DisclosurePolicy&) = default;
};

// The fixed table (see the top of this file and docs/medical.md).
DisclosurePolicy PolicyFor(IdentityPurpose purpose);

// The answer to an identity check, filtered.
struct DisclosedFields {
  DisclosurePolicy asked;             // what this purpose may know about (answered yes or no)
  std::vector<Scheme> schemes;        // of those, the schemes the holder has (ascending)
  std::vector<SpecialGroup> groups;   // of those, the groups the holder is in (ascending)

  bool HasScheme(Scheme scheme) const;
  bool InGroup(SpecialGroup group) const;
  friend bool operator==(const DisclosedFields&, const DisclosedFields&) = default;
};

// Filters the holder's schemes and groups (in any order, duplicates harmless) through the
// purpose's policy. Never fails: an unknown purpose cannot be represented.
DisclosedFields Filter(IdentityPurpose purpose, const std::vector<Scheme>& holder_schemes,
                       const std::vector<SpecialGroup>& holder_groups);

}  // namespace citycard
