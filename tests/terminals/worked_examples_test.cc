#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "terminals/frame_codec.h"
#include "terminals/worked_examples.h"

using namespace citycard;
using namespace citycard::terminals;

namespace {

const std::string kDocument = std::string(CITYCARD_SOURCE_DIR) + "/docs/protocol.md";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

// Run with CITYCARD_UPDATE_DOCS=1 to write the examples into the document after a deliberate
// protocol change; the test then checks the rewritten document.
TEST_CASE("The worked examples of docs/protocol.md are what the code produces", "[terminals][docs]") {
  std::vector<WorkedExample> examples = GenerateWorkedExamples();
  std::string document = ReadFile(kDocument);
  REQUIRE_FALSE(document.empty());
  const char* update = std::getenv("CITYCARD_UPDATE_DOCS");
  if (update != nullptr && std::string(update) == "1") {
    REQUIRE(ReplaceExampleBlocks(examples, &document));
    std::ofstream(kDocument, std::ios::binary) << document;
  }
  for (const WorkedExample& example : examples) {
    INFO("example " << example.name << " (regenerate with CITYCARD_UPDATE_DOCS=1)");
    REQUIRE(ExtractExampleBlock(document, example.name) == example.text);
  }
}

TEST_CASE("The examples are deterministic and their frames decode", "[terminals][docs]") {
  auto first = GenerateWorkedExamples();
  auto second = GenerateWorkedExamples();
  REQUIRE(first.size() == 4);
  for (size_t i = 0; i < first.size(); ++i) REQUIRE(first[i].text == second[i].text);
  // Every frame's hex dump in the handshake parses back into a frame the decoder accepts.
  std::istringstream lines(first[0].text);
  std::string line;
  FrameDecoder decoder;
  size_t frames = 0;
  bool in_frame = false;
  while (std::getline(lines, line)) {
    bool dump_line = line.size() >= 6 && line[4] == ' ' && std::isxdigit(static_cast<unsigned char>(line[0]));
    if (!dump_line) {
      in_frame = line.rfind("T -> S", 0) == 0 || line.rfind("S -> T", 0) == 0;
      continue;
    }
    if (!in_frame) continue;
    std::string hex;
    for (char c : line.substr(5)) {
      if (c != ' ') hex += c;
    }
    Bytes bytes;
    REQUIRE(FromHex(hex, &bytes));
    decoder.Feed(bytes);
    Frame frame;
    DecodeError error;
    while (decoder.Next(&frame, &error) == DecodeStatus::complete) ++frames;
  }
  REQUIRE(frames == 6);  // hello, challenge, two proofs, heartbeat, heartbeat ack
  REQUIRE(decoder.skipped_bytes() == 0);
}

TEST_CASE("Hex dumps have sixteen bytes a line with an offset", "[terminals][docs]") {
  Bytes bytes(18);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i);
  REQUIRE(HexDump(bytes) ==
          "0000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f\n"
          "0010  10 11\n");
}

TEST_CASE("Example blocks are found between their markers and replaced", "[terminals][docs]") {
  std::string doc = "a\n<!-- example:x -->\n```text\nold\n```\n<!-- /example:x -->\nb\n";
  REQUIRE(ExtractExampleBlock(doc, "x") == "old\n");
  REQUIRE(ReplaceExampleBlocks({{"x", "new\n"}}, &doc));
  REQUIRE(doc == "a\n<!-- example:x -->\n```text\nnew\n```\n<!-- /example:x -->\nb\n");
  REQUIRE(ExtractExampleBlock(doc, "y").empty());
  REQUIRE_FALSE(ReplaceExampleBlocks({{"y", "z\n"}}, &doc));
}
