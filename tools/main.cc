// The citycard program. Exceptions end here: anything that escapes a command is a bug or an
// I/O failure the command did not expect, reported as an internal error (exit 1).
#include <exception>
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "tools/cli/app.h"

int main(int argc, char** argv) {
  try {
    // Logs go to stderr so that stdout carries only what the command prints: --json output
    // must stay one parseable document even when the in-process server logs.
    spdlog::set_default_logger(spdlog::stderr_color_mt("citycard"));
    return citycard::cli::RunMain(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "citycard: internal: " << e.what() << std::endl;
    return 1;
  }
}
