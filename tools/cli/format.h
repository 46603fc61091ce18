// Human output for the citycard command: aligned tables that measure text by its display
// width on a terminal (a Chinese character takes two columns), key-value blocks, and the
// JSON convention of giving every amount twice ("balance": "12.50", "balance_fen": 1250).
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace citycard::cli {

// Columns the UTF-8 text takes on a terminal: 2 for East Asian wide and full-width
// characters, 0 for combining marks, 1 for the rest. Invalid bytes count 1 each.
size_t DisplayWidth(std::string_view utf8);

// `text` padded with spaces to `width` display columns (on the right, or on the left when
// right_align). Text already wider is returned as it is.
std::string Pad(std::string_view text, size_t width, bool right_align = false);

class Table {
 public:
  // Column headers; a header starting with '>' (not shown) right-aligns its column (amounts).
  explicit Table(std::vector<std::string> headers);
  // A row with as many cells as there are headers (asserted).
  void Add(std::vector<std::string> row);
  // Header, then rows, columns separated by two spaces, no trailing spaces; every line ends
  // with '\n'.
  std::string Render() const;
  size_t rows() const { return rows_.size(); }

 private:
  std::vector<std::string> headers_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

// "Label   value" lines, labels padded to the widest.
std::string KeyValues(const std::vector<std::pair<std::string, std::string>>& pairs);

// json[key] = "12.50" and json[key + "_fen"] = 1250.
void PutAmount(nlohmann::json& json, const std::string& key, int64_t fen);

}  // namespace citycard::cli
