#include <catch2/catch.hpp>

#include "tools/cli/format.h"
#include "tools/cli/progress.h"

using namespace citycard::cli;

TEST_CASE("Display width counts Chinese characters as two columns", "[tools][cli][format]") {
  REQUIRE(DisplayWidth("") == 0);
  REQUIRE(DisplayWidth("abc") == 3);
  REQUIRE(DisplayWidth("张三") == 4);
  REQUIRE(DisplayWidth("M101路") == 6);
  REQUIRE(DisplayWidth("¥12.50") == 6);
  REQUIRE(DisplayWidth("ＡＢ") == 4);        // full-width Latin
  REQUIRE(DisplayWidth("e\xCC\x81") == 1);   // e + combining acute accent
  REQUIRE(DisplayWidth("\xFF\xFE") == 2);    // invalid bytes count one each
}

TEST_CASE("Tables align by display width and right-align marked columns",
          "[tools][cli][format]") {
  Table table({"NAME", ">AMOUNT", "NOTE"});
  table.Add({"张三", "¥1.00", ""});
  table.Add({"Li Si", "¥100.00", "x"});
  REQUIRE(table.rows() == 2);
  REQUIRE(table.Render() ==
          "NAME    AMOUNT  NOTE\n"
          "张三     ¥1.00\n"
          "Li Si  ¥100.00  x\n");
}

TEST_CASE("Key-value blocks pad the labels", "[tools][cli][format]") {
  REQUIRE(KeyValues({{"Card", "1"}, {"Balance", "¥0.00"}}) == "Card     1\nBalance  ¥0.00\n");
  REQUIRE(Pad("张", 4) == "张  ");
  REQUIRE(Pad("张", 4, true) == "  张");
  REQUIRE(Pad("toolong", 3) == "toolong");
}

TEST_CASE("Amounts are given twice in JSON", "[tools][cli][format]") {
  nlohmann::json json;
  PutAmount(json, "balance", 1250);
  PutAmount(json, "debt", -5);
  REQUIRE(json["balance"] == "12.50");
  REQUIRE(json["balance_fen"] == 1250);
  REQUIRE(json["debt"] == "-0.05");
  REQUIRE(json["debt_fen"] == -5);
}

TEST_CASE("The progress line shows the bar, the percentage and the counts",
          "[tools][cli][format]") {
  REQUIRE(ProgressLine("import", 450, 1000) == "import [#############                 ]  45% 450/1000");
  REQUIRE(ProgressLine("import", 0, 0) == "import [                              ]   0% 0/0");
  REQUIRE(ProgressLine("x", 7, 7) == "x [##############################] 100% 7/7");
}
