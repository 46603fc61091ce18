// Hands the frames SQLite appends to a write-ahead log to the operating system in a few large
// writes instead of two small ones per page.
//
// SQLite writes each WAL frame with two pwrite calls, its 24-byte header and then its page,
// and the page straddles two of the kernel's 4 KiB cache pages; a group commit of tens of
// thousands of taps is hundreds of thousands of such calls, and the calls, not the bytes, were
// a seventh of the ingest writer's time (docs/storage.md "WAL writes"). The VFS registered
// here wraps the platform's default one; for a WAL file it keeps consecutive writes in a
// buffer of the connection's own and writes them out with one call:
//   - when a commit frame is complete (its header carries the database size after the
//     commit), so that a committed transaction is in the file before SQLite publishes it to
//     other connections, whatever the connection's synchronous setting;
//   - before every sync, read, size query, truncation, file control and close of the file, so
//     that SQLite never reads, measures or syncs a file that lacks what it wrote;
//   - when a write does not continue the buffer, or would overflow it (kWalWriteBufferBytes).
// Files other than WALs (the database, its shared memory, temporary files) are the default
// VFS's own, untouched. Durability is unchanged: a commit returns after its sync, and the sync
// comes after the write of every frame before it. A write error surfaces at the flush, which
// fails the sync (and so the commit) or the read that needed it; the unwritten frames are
// dropped, which SQLite treats as the failed write it is.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"

namespace citycard::db {

// The name db::Database::Open opens every connection with.
inline constexpr const char* kWalBufferVfsName = "citycard-walbuf";
// SQLite's unix VFS writes at most this many bytes in one call: it masks the length of every
// write with 0x1ffff, so that a longer write comes back short (SQLITE_FULL, or a partial
// write). The buffer is never longer.
inline constexpr size_t kUnixVfsWriteMaxBytes = 0x1ffff;
// A connection's WAL buffer, allocated on its first write (a connection that only reads has
// none): 31 pages of 4 KiB, ~30 frames per write instead of two writes per frame.
inline constexpr size_t kWalWriteBufferBytes = 31 * 4096;
static_assert(kWalWriteBufferBytes <= kUnixVfsWriteMaxBytes);
// The WAL's frame header (fileformat: "WAL file format"); bytes 4..7, big-endian, hold the
// database size in pages after a commit frame and 0 in every other frame.
inline constexpr size_t kWalFrameHeaderBytes = 24;

// Registers the VFS (once per process; later calls return the first call's outcome). It is
// not made the default: only connections opened with kWalBufferVfsName use it.
// Failures: Kind::internal "vfs_register_failed" when SQLite has no default VFS or refuses
// the registration.
Status RegisterWalBufferVfs();

// Registers the same VFS again, as `name`, over the VFS registered as `base_name` instead of
// the default one: tests put a fault-injecting VFS under it (tests/support/db_fault_vfs_support.h)
// and open their connections with Database::Open(path, create, name). Both strings must
// outlive the process's use of SQLite. Calling it again with the same two names does nothing.
// Failures: Kind::internal "vfs_register_failed" when no VFS is named `base_name`, `name` is
// another VFS's, or SQLite refuses the registration.
Status RegisterWalBufferVfsOver(const char* base_name, const char* name);

// Process-wide counts since the start, for tests and benchmarks: writes SQLite made to WAL
// files, writes this VFS made of them, and flushes made because a commit frame completed.
struct WalBufferCounters {
  uint64_t writes_in = 0;
  uint64_t writes_out = 0;
  uint64_t commit_flushes = 0;
};
WalBufferCounters WalBufferCountersNow();

}  // namespace citycard::db
