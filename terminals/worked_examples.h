// The worked examples of docs/protocol.md, produced by the real codec, messages and secure
// channel from fixed keys and nonces. tests/terminals/worked_examples_test.cc checks that the
// blocks in the document are byte for byte what this produces, so the document cannot drift
// from the code; with CITYCARD_UPDATE_DOCS=1 that test rewrites the blocks instead.
#pragma once

#include <string>
#include <vector>

#include "core/bytes.h"

namespace citycard::terminals {

struct WorkedExample {
  std::string name;  // the marker name in the document: <!-- example:NAME --> ... <!-- /example:NAME -->
  std::string text;  // the block's content: labelled hex dumps, one frame or value after another
};

// "handshake", "batch", "denylist_delta", "error", in document order.
std::vector<WorkedExample> GenerateWorkedExamples();

// 16 bytes a line: "0000  cc a7 01 01 00 00 00 21  a3 5c 0e 9f 42 55 53 2d\n".
std::string HexDump(ByteView bytes);

// Replaces the content between each example's markers in `document` (a Markdown text) with
// the example's text in a fenced block. Returns false (and leaves `document` alone) when a
// marker pair is missing.
bool ReplaceExampleBlocks(const std::vector<WorkedExample>& examples, std::string* document);

// The content between the markers of `name`, without the fence; empty when missing.
std::string ExtractExampleBlock(const std::string& document, const std::string& name);

}  // namespace citycard::terminals
