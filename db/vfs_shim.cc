#include "db/vfs_shim.h"

#include <cstring>

namespace citycard::db {

int OpenWrappedFile(sqlite3_vfs* base, sqlite3_filename name, sqlite3_file* file,
                    size_t real_offset, const sqlite3_io_methods* methods, int flags,
                    int* out_flags, sqlite3_file** real) {
  std::memset(file, 0, real_offset);
  auto* inner = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + real_offset);
  std::memset(inner, 0, static_cast<size_t>(base->szOsFile));
  const int rc = base->xOpen(base, name, inner, flags, out_flags);
  if (rc != SQLITE_OK) {
    // SQLite closes a file whose open failed only when its methods are set; ours are not, so
    // the wrapped VFS's half-open file is closed here.
    if (inner->pMethods != nullptr) inner->pMethods->xClose(inner);
    file->pMethods = nullptr;
    return rc;
  }
  file->pMethods = methods;
  *real = inner;
  return SQLITE_OK;
}

}  // namespace citycard::db
