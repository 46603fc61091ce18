#include <catch2/catch.hpp>

#include <vector>

#include "core/identity_purpose.h"

using namespace citycard;

namespace {

using S = Scheme;
using G = SpecialGroup;

// A holder with every scheme and every group: whatever a purpose is told comes from the
// filter alone.
const std::vector<Scheme> kAllSchemes = {S::maternity, S::pension, S::medical, S::unemployment,
                                         S::work_injury};
const std::vector<SpecialGroup> kAllGroups = {G::elderly, G::low_income, G::social_assistance,
                                              G::disabled};

}  // namespace

TEST_CASE("A pharmacy learns the medical scheme and assistance groups, never the pension",
          "[core][identity]") {
  DisclosedFields fields = Filter(IdentityPurpose::pharmacy, kAllSchemes, kAllGroups);
  REQUIRE(fields.schemes == std::vector<Scheme>{S::medical});
  REQUIRE(fields.groups == std::vector<SpecialGroup>{G::low_income, G::social_assistance});
  REQUIRE_FALSE(fields.HasScheme(S::pension));
  REQUIRE(fields.asked == DisclosurePolicy{{S::medical}, {G::low_income, G::social_assistance}});
}

TEST_CASE("A hospital learns the care schemes and every group", "[core][identity]") {
  DisclosedFields fields = Filter(IdentityPurpose::hospital, kAllSchemes, kAllGroups);
  REQUIRE(fields.schemes == std::vector<Scheme>{S::medical, S::work_injury, S::maternity});
  REQUIRE(fields.groups ==
          std::vector<SpecialGroup>{G::low_income, G::social_assistance, G::disabled, G::elderly});
}

TEST_CASE("A pension office learns the pension and the elderly and disabled groups",
          "[core][identity]") {
  DisclosedFields fields = Filter(IdentityPurpose::pension_office, kAllSchemes, kAllGroups);
  REQUIRE(fields.schemes == std::vector<Scheme>{S::pension});
  REQUIRE(fields.groups == std::vector<SpecialGroup>{G::disabled, G::elderly});
}

TEST_CASE("A transit concession desk learns no scheme at all", "[core][identity]") {
  DisclosedFields fields = Filter(IdentityPurpose::transit_concession, kAllSchemes, kAllGroups);
  REQUIRE(fields.schemes.empty());
  REQUIRE(fields.asked.schemes.empty());
  REQUIRE(fields.groups == std::vector<SpecialGroup>{G::low_income, G::disabled, G::elderly});
}

TEST_CASE("An employment office learns unemployment and its groups", "[core][identity]") {
  DisclosedFields fields = Filter(IdentityPurpose::employment_office, kAllSchemes, kAllGroups);
  REQUIRE(fields.schemes == std::vector<Scheme>{S::unemployment});
  REQUIRE(fields.groups == std::vector<SpecialGroup>{G::low_income, G::disabled});
}

TEST_CASE("What the holder lacks is answered no, not left out", "[core][identity]") {
  DisclosedFields fields = Filter(IdentityPurpose::hospital, {S::pension}, {});
  REQUIRE(fields.schemes.empty());
  REQUIRE(fields.groups.empty());
  // The purpose was asked about these and the answer is "no" for each.
  REQUIRE(fields.asked.schemes == std::vector<Scheme>{S::medical, S::work_injury, S::maternity});
  REQUIRE_FALSE(fields.HasScheme(S::medical));
  REQUIRE_FALSE(fields.InGroup(G::elderly));
}

TEST_CASE("Duplicates and order in the holder's lists do not matter", "[core][identity]") {
  DisclosedFields fields =
      Filter(IdentityPurpose::hospital, {S::maternity, S::medical, S::medical}, {G::elderly, G::elderly});
  REQUIRE(fields.schemes == std::vector<Scheme>{S::medical, S::maternity});
  REQUIRE(fields.groups == std::vector<SpecialGroup>{G::elderly});
}

TEST_CASE("No purpose learns more than its policy, for every purpose", "[core][identity]") {
  for (size_t number = 1; number <= kIdentityPurposeCount; ++number) {
    auto purpose = static_cast<IdentityPurpose>(number);
    INFO(IdentityPurposeName(purpose));
    DisclosedFields fields = Filter(purpose, kAllSchemes, kAllGroups);
    REQUIRE(fields.schemes == fields.asked.schemes);
    REQUIRE(fields.groups == fields.asked.groups);
    REQUIRE(fields.schemes.size() < kAllSchemes.size());
    REQUIRE(std::is_sorted(fields.asked.schemes.begin(), fields.asked.schemes.end()));
    REQUIRE(std::is_sorted(fields.asked.groups.begin(), fields.asked.groups.end()));
  }
  // Only the pension office learns the pension.
  for (size_t number = 1; number <= kIdentityPurposeCount; ++number) {
    auto purpose = static_cast<IdentityPurpose>(number);
    bool sees_pension = Filter(purpose, kAllSchemes, kAllGroups).HasScheme(S::pension);
    REQUIRE(sees_pension == (purpose == IdentityPurpose::pension_office));
  }
}

TEST_CASE("Purpose names are stable and read back", "[core][identity]") {
  REQUIRE(IdentityPurposeName(IdentityPurpose::hospital) == "hospital");
  REQUIRE(IdentityPurposeName(IdentityPurpose::pharmacy) == "pharmacy");
  REQUIRE(IdentityPurposeName(IdentityPurpose::pension_office) == "pension_office");
  REQUIRE(IdentityPurposeName(IdentityPurpose::transit_concession) == "transit_concession");
  REQUIRE(IdentityPurposeName(IdentityPurpose::employment_office) == "employment_office");
  for (size_t number = 1; number <= kIdentityPurposeCount; ++number) {
    auto purpose = static_cast<IdentityPurpose>(number);
    REQUIRE(ParseIdentityPurpose(IdentityPurposeName(purpose)) == purpose);
  }
  REQUIRE_FALSE(ParseIdentityPurpose("Hospital").has_value());
  REQUIRE_FALSE(ParseIdentityPurpose("bank").has_value());
}
