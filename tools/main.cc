// The citycard program. Exceptions end here: anything that escapes a command is a bug or an
// I/O failure the command did not expect, reported as an internal error (exit 1).
#include <exception>
#include <iostream>

#include "tools/cli/app.h"

int main(int argc, char** argv) {
  try {
    return citycard::cli::RunMain(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "citycard: internal: " << e.what() << std::endl;
    return 1;
  }
}
