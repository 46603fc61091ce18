#include "core/identity_purpose.h"

#include <algorithm>

#include "core/status.h"

namespace citycard {

namespace {

template <typename T>
bool Contains(const std::vector<T>& values, T value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

// The policy's values that the holder has, ascending (the policy lists are ascending).
template <typename T>
std::vector<T> Intersect(const std::vector<T>& allowed, const std::vector<T>& held) {
  std::vector<T> out;
  for (T value : allowed) {
    if (Contains(held, value)) out.push_back(value);
  }
  return out;
}

}  // namespace

std::string_view IdentityPurposeName(IdentityPurpose purpose) {
  switch (purpose) {
    case IdentityPurpose::hospital: return "hospital";
    case IdentityPurpose::pharmacy: return "pharmacy";
    case IdentityPurpose::pension_office: return "pension_office";
    case IdentityPurpose::transit_concession: return "transit_concession";
    case IdentityPurpose::employment_office: return "employment_office";
  }
  return "unknown";
}

std::optional<IdentityPurpose> ParseIdentityPurpose(std::string_view name) {
  for (size_t number = 1; number <= kIdentityPurposeCount; ++number) {
    auto purpose = static_cast<IdentityPurpose>(number);
    if (IdentityPurposeName(purpose) == name) return purpose;
  }
  return std::nullopt;
}

DisclosurePolicy PolicyFor(IdentityPurpose purpose) {
  using S = Scheme;
  using G = SpecialGroup;
  switch (purpose) {
    // Treatment: the schemes that pay for care, and every group, because each can change
    // what the holder pays (assistance, disability and elderly exemptions).
    case IdentityPurpose::hospital:
      return {{S::medical, S::work_injury, S::maternity},
              {G::low_income, G::social_assistance, G::disabled, G::elderly}};
    // Drugs: the medical scheme and the groups the medical assistance fund pays for.
    case IdentityPurpose::pharmacy:
      return {{S::medical}, {G::low_income, G::social_assistance}};
    // Pension: the pension scheme, and the groups pension supplements depend on.
    case IdentityPurpose::pension_office:
      return {{S::pension}, {G::disabled, G::elderly}};
    // Concession fares: no scheme; the groups whose card profiles have concessions.
    case IdentityPurpose::transit_concession:
      return {{}, {G::low_income, G::disabled, G::elderly}};
    // Unemployment benefits and employment help.
    case IdentityPurpose::employment_office:
      return {{S::unemployment}, {G::low_income, G::disabled}};
  }
  CITYCARD_ASSERT(false && "unknown identity purpose");
  return {};
}

bool DisclosedFields::HasScheme(Scheme scheme) const { return Contains(schemes, scheme); }
bool DisclosedFields::InGroup(SpecialGroup group) const { return Contains(groups, group); }

DisclosedFields Filter(IdentityPurpose purpose, const std::vector<Scheme>& holder_schemes,
                       const std::vector<SpecialGroup>& holder_groups) {
  DisclosedFields fields;
  fields.asked = PolicyFor(purpose);
  fields.schemes = Intersect(fields.asked.schemes, holder_schemes);
  fields.groups = Intersect(fields.asked.groups, holder_groups);
  return fields;
}

}  // namespace citycard
