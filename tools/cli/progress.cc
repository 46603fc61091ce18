#include "tools/cli/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace citycard::cli {

std::string ProgressLine(const std::string& label, int64_t done, int64_t total) {
  int64_t percent = total > 0 ? done * 100 / total : 0;
  int64_t filled = total > 0 ? done * kProgressBarWidth / total : 0;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kProgressBarWidth - filled), ' ');
  return fmt::format("{} [{}] {:3}% {}/{}", label, bar, percent, done, total);
}

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) == 1) {}

ProgressBar::~ProgressBar() {
  if (drawn_) std::fputs("\n", stderr);
}

void ProgressBar::Update(int64_t done, int64_t total) {
  if (!enabled_) return;
  std::fprintf(stderr, "\r%s", ProgressLine(label_, done, total).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace citycard::cli
