// A progress bar for long work (imports, replays, benchmarks, the demo): drawn on stderr, and
// only when stderr is a terminal, so that scripts and pipes see nothing of it (CLI.md
// "Global").
#pragma once

#include <cstdint>
#include <string>

namespace citycard::cli {

inline constexpr int kProgressBarWidth = 30;

class ProgressBar {
 public:
  // `label` precedes the bar ("import"). Draws nothing unless stderr is a TTY.
  explicit ProgressBar(std::string label);
  // Ends the line when something was drawn.
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Redraws "label [#####     ]  45% 4500/10000". total 0 draws an empty bar.
  void Update(int64_t done, int64_t total);
  bool enabled() const { return enabled_; }

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
};

// The bar's text, without the carriage return (for tests).
std::string ProgressLine(const std::string& label, int64_t done, int64_t total);

}  // namespace citycard::cli
