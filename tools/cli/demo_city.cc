// The demo's city: sites and generated holders (tools/cli/demo_city.h).
#include "tools/cli/demo_city.h"

#include <array>

#include <fmt/format.h>

#include "core/money.h"
#include "core/national_id.h"

namespace citycard::cli {

const std::vector<DemoSite>& DemoSites() {
  static const std::vector<DemoSite> sites = {
      {"demo-taxi", "鹏城出租车公司", OperatorKind::taxi, 50, "dm-taxi-1", TerminalKind::taxi,
       "粤B·T0001"},
      {"demo-park", "福田中心区停车场", OperatorKind::parking, 80, "dm-park-1",
       TerminalKind::parking, "P1 entrance"},
      {"demo-water", "深圳水务集团", OperatorKind::utility, 20, "dm-water-1",
       TerminalKind::utility, "water"},
      {"demo-power", "深圳供电局", OperatorKind::utility, 20, "dm-power-1",
       TerminalKind::utility, "electricity"},
      {"demo-gas", "深圳燃气", OperatorKind::utility, 20, "dm-gas-1",
       TerminalKind::utility, "gas"},
      {"demo-hospital", "深圳市人民医院", OperatorKind::hospital, 0, "dm-hosp-1",
       TerminalKind::hospital, "outpatient"},
      {"demo-counter", "卡务中心福田网点", OperatorKind::counter, 0, "dm-counter-1",
       TerminalKind::counter, "Futian"},
      {"demo-kiosk", "卡务中心自助充值", OperatorKind::counter, 0, "dm-kiosk-1",
       TerminalKind::kiosk, "Futian metro"},
  };
  return sites;
}

std::vector<DemoHolder> DemoHolders() {
  static constexpr std::array<const char*, 12> kSurnames = {
      "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙"};
  static constexpr std::array<const char*, 10> kGiven = {
      "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "建华"};
  static constexpr std::array<const char*, 4> kRegions = {"440303", "440304", "440305",
                                                          "440306"};
  std::vector<DemoHolder> holders;
  for (size_t i = 0; i < kDemoHolders; ++i) {
    DemoHolder h;
    int birth_year = 1970 + static_cast<int>(i % 25);
    if (i % 6 == 1) {
      h.profile = Profile::elderly;
      h.groups = "elderly";
      birth_year = 1940 + static_cast<int>(i % 10);
    } else if (i % 5 == 2) {
      h.profile = Profile::student;
      birth_year = 2002 + static_cast<int>(i % 4);
    } else if (i % 7 == 3) {
      h.profile = Profile::low_income;
      h.groups = "low_income";
    }
    std::string first17 = fmt::format("{}{:04}{:02}{:02}{:03}", kRegions[i % kRegions.size()],
                                      birth_year, 1 + i % 12, 1 + i % 28, 100 + i);
    h.national_id = first17 + NationalIdCheckChar(first17);
    h.name = std::string(kSurnames[i % kSurnames.size()]) + kGiven[(i * 7) % kGiven.size()];
    h.medical_fen = 50'000 + static_cast<int64_t>(i) * 1'000;
    holders.push_back(std::move(h));
  }
  return holders;
}

std::string DemoRegistryCsv(const std::vector<DemoHolder>& holders) {
  std::string csv = "national_id,name,schemes,groups,medical_account\n";
  for (const DemoHolder& h : holders) {
    csv += fmt::format("{},{},medical|pension,{},{}\n", h.national_id, h.name, h.groups,
                       FormatYuan(h.medical_fen));
  }
  return csv;
}

}  // namespace citycard::cli
