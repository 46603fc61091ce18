// Files of a SQLite VFS that wraps another (db/wal_write_buffer.h; the fault-injecting VFS of
// tests/support/db_fault_vfs_support.h): the wrapper's header, whose first member is the
// sqlite3_file SQLite sees, at the start of the block SQLite allocates (the wrapper's
// szOsFile), and the wrapped VFS's own file object `real_offset` bytes after it.
#pragma once

#include <sqlite3.h>

#include <cstddef>

namespace citycard::db {

// Zeroes the header (`real_offset` bytes) and opens `name` with `base` into the object after
// it. Success (SQLITE_OK): the block's methods are `methods` and *real is the wrapped file.
// Failure: SQLite's code; the wrapped file, if half open, is closed, and the block's methods
// are left null, so that SQLite does not close it again.
int OpenWrappedFile(sqlite3_vfs* base, sqlite3_filename name, sqlite3_file* file,
                    size_t real_offset, const sqlite3_io_methods* methods, int flags,
                    int* out_flags, sqlite3_file** real);

}  // namespace citycard::db
