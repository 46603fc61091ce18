// Reading input files and writing secret files for the citycard command.
#pragma once

#include <cstddef>
#include <string>

#include "core/status.h"

namespace citycard::cli {

// The whole file. Kind::not_found "file_not_found" when it does not exist; Kind::bad_input
// "file_too_large" above max_bytes; Kind::internal "file_unreadable" on an I/O error.
Result<std::string> ReadTextFile(const std::string& path, size_t max_bytes);

// Creates `path` with mode 0600 (never replacing an existing file), writes `text` and syncs it.
// Kind::refused "file_exists" when it exists; Kind::internal "file_write_failed" on an I/O
// error (then nothing is left at `path`). For key material handed to a reader's provisioning.
Status WriteSecretFile(const std::string& path, const std::string& text);

// Ok when nothing exists at `path` yet; Kind::refused "file_exists" otherwise. Checked before
// work whose result goes to the file, so that the work is not done for nothing.
Status CheckFileAbsent(const std::string& path);

}  // namespace citycard::cli
