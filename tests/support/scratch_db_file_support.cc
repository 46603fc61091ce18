#include "tests/support/scratch_db_file_support.h"

#include <unistd.h>

#include <filesystem>

namespace citycard::testing {

ScratchDbFile::ScratchDbFile(const std::string& name)
    : path((std::filesystem::temp_directory_path() /
            ("citycard_" + name + "_" + std::to_string(::getpid()) + ".db"))
               .string()) {
  Remove();
}

ScratchDbFile::~ScratchDbFile() { Remove(); }

void ScratchDbFile::Remove() const {
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

int64_t ScratchDbFile::Bytes(const char* suffix) const {
  return static_cast<int64_t>(std::filesystem::file_size(path + suffix));
}

}  // namespace citycard::testing
