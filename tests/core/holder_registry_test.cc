#include <catch2/catch.hpp>

#include "core/holder_registry.h"

using namespace citycard;

namespace {

const std::string kHeader = "national_id,name,schemes,groups,medical_account\n";

std::vector<std::string> Codes(const ParsedRegistry& parsed) {
  std::vector<std::string> codes;
  for (const auto& p : parsed.problems) codes.push_back(std::to_string(p.line) + ":" + p.code);
  return codes;
}

}  // namespace

TEST_CASE("A good registry line is read with its sets sorted", "[core][holder_registry]") {
  auto parsed = ParseHolderRegistry(kHeader +
                                    "11010519491231002x,\"Li, Si\",medical|pension,elderly,12.5\r\n");
  REQUIRE(parsed.ok());
  REQUIRE(parsed->problems.empty());
  REQUIRE(parsed->lines.size() == 1);
  const RegistryLine& line = parsed->lines[0];
  REQUIRE(line.line == 2);
  REQUIRE(line.national_id == "11010519491231002X");
  REQUIRE(line.name == "Li, Si");
  REQUIRE(line.schemes == std::vector<Scheme>{Scheme::pension, Scheme::medical});
  REQUIRE(line.groups == std::vector<SpecialGroup>{SpecialGroup::elderly});
  REQUIRE(line.medical_opening_fen == 1250);
}

TEST_CASE("Every bad line is reported by number and reason", "[core][holder_registry]") {
  std::string file = kHeader +
                     "321281199001011234,张三,pension,,0\n"              // 2 good
                     "321281199001011235,李四,pension,,0\n"              // 3 check digit
                     "11010519491231002X,,pension,,0\n"                  // 4 empty name
                     "11010519491231002X,王五,pension|ferry,,0\n"        // 5 scheme
                     "11010519491231002X,王五,pension,rich,0\n"          // 6 group
                     "11010519491231002X,王五,pension,,-1\n"             // 7 amount
                     "11010519491231002X,王五,pension,,0,extra\n"        // 8 fields
                     "321281199001011234,张三,pension,,0\n"              // 9 duplicate
                     "11010519491231002X,王五,,,0\n"                     // 10 no scheme
                     "11010519491231002X,王五,pension|pension,,0\n"      // 11 scheme twice
                     "11010519491231002X,\"王\"五,pension,,0\n"          // 12 csv
                     "11010519491231002X,王五,pension,,1\n";             // 13 good
  auto parsed = ParseHolderRegistry(file);
  REQUIRE(parsed.ok());
  REQUIRE(Codes(*parsed) == std::vector<std::string>{
                                "3:invalid_national_id", "4:invalid_name", "5:invalid_scheme",
                                "6:invalid_group", "7:invalid_amount", "8:wrong_field_count",
                                "9:duplicate_national_id", "10:invalid_scheme", "11:invalid_scheme",
                                "12:invalid_csv"});
  REQUIRE(parsed->lines.size() == 2);
  REQUIRE(parsed->lines[1].line == 13);
  for (const auto& problem : parsed->problems) {
    REQUIRE(problem.message.find("321281199001011235") == std::string::npos);
  }
}

TEST_CASE("A registry file needs the exact header", "[core][holder_registry]") {
  for (std::string bad : {std::string(""), std::string("national_id,name,schemes,groups\n"),
                          std::string("321281199001011234,张三,pension,,0\n")}) {
    auto parsed = ParseHolderRegistry(bad);
    REQUIRE(parsed.status().code() == "invalid_registry_header");
    REQUIRE(parsed.status().exit_code() == 5);
  }
  auto only_header = ParseHolderRegistry(kHeader);
  REQUIRE(only_header->lines.empty());
  REQUIRE(only_header->problems.empty());
}
