// A database file for one test under the system's temporary directory, named after the test
// and the process (so that tests run at once do not meet), removed with its WAL and shared
// memory before the test uses it and when it ends.
#pragma once

#include <cstdint>
#include <string>

namespace citycard::testing {

struct ScratchDbFile {
  explicit ScratchDbFile(const std::string& name);
  ~ScratchDbFile();
  ScratchDbFile(const ScratchDbFile&) = delete;
  ScratchDbFile& operator=(const ScratchDbFile&) = delete;

  // Removes the file, its -wal and its -shm (those that exist).
  void Remove() const;
  // The size of the file, or of its "-wal" or "-shm" with that suffix.
  int64_t Bytes(const char* suffix = "") const;

  std::string path;
};

}  // namespace citycard::testing
