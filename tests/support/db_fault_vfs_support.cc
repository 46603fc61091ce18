#include "tests/support/db_fault_vfs_support.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>

#include "db/vfs_shim.h"
#include "db/wal_write_buffer.h"

namespace citycard::testing {

namespace {

constexpr const char* kFaultVfsName = "citycard-fault";
constexpr const char* kWalBufferOverFaultVfsName = "citycard-walbuf-fault";

sqlite3_vfs* g_unix = nullptr;
sqlite3_vfs g_vfs;

std::atomic<uint64_t> g_fail_at{0};
std::atomic<bool> g_sticky{false};
// The one kind counted (FaultOp as a number), or kAllOps.
constexpr int kAllOps = -1;
std::atomic<int> g_only{kAllOps};
std::atomic<uint64_t> g_counted{0};
std::atomic<uint64_t> g_injected{0};
std::atomic<uint8_t> g_last_op{0};

// A counted file: this header, then the unix VFS's own file object, in the block SQLite
// allocates (g_vfs.szOsFile).
struct FaultFile {
  sqlite3_file base;
  sqlite3_file* real;
};

constexpr size_t kRealOffset = (sizeof(FaultFile) + 15) / 16 * 16;

sqlite3_file* Real(sqlite3_file* file) { return reinterpret_cast<FaultFile*>(file)->real; }

// Counts one operation; true when the plan says it fails.
bool Fails(FaultOp op) {
  const int only = g_only.load();
  if (only != kAllOps && only != static_cast<int>(op)) return false;
  const uint64_t n = g_counted.fetch_add(1) + 1;
  const uint64_t at = g_fail_at.load();
  if (at == 0 || n < at || (n > at && !g_sticky.load())) return false;
  g_injected.fetch_add(1);
  g_last_op.store(static_cast<uint8_t>(op));
  return true;
}

int Close(sqlite3_file* file) { return Real(file)->pMethods->xClose(Real(file)); }

int Read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  if (Fails(FaultOp::read)) return SQLITE_IOERR_READ;
  return Real(file)->pMethods->xRead(Real(file), out, amount, offset);
}

int Write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  if (Fails(FaultOp::write)) return SQLITE_IOERR_WRITE;
  return Real(file)->pMethods->xWrite(Real(file), data, amount, offset);
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  if (Fails(FaultOp::truncate)) return SQLITE_IOERR_TRUNCATE;
  return Real(file)->pMethods->xTruncate(Real(file), size);
}

// A sync is counted and may fail, but is not made: these tests never cut the power (what
// was written is in the kernel's cache for the next connection either way; the SIGKILL tests
// cover crashes), and a few hundred thousand real syncs made them minutes long on a busy disk.
int Sync(sqlite3_file*, int) {
  if (Fails(FaultOp::sync)) return SQLITE_IOERR_FSYNC;
  return SQLITE_OK;
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  return Real(file)->pMethods->xFileSize(Real(file), size);
}
int Lock(sqlite3_file* file, int level) { return Real(file)->pMethods->xLock(Real(file), level); }
int Unlock(sqlite3_file* file, int level) {
  return Real(file)->pMethods->xUnlock(Real(file), level);
}
int CheckReservedLock(sqlite3_file* file, int* out) {
  return Real(file)->pMethods->xCheckReservedLock(Real(file), out);
}
int FileControl(sqlite3_file* file, int op, void* arg) {
  return Real(file)->pMethods->xFileControl(Real(file), op, arg);
}
int SectorSize(sqlite3_file* file) { return Real(file)->pMethods->xSectorSize(Real(file)); }
int DeviceCharacteristics(sqlite3_file* file) {
  return Real(file)->pMethods->xDeviceCharacteristics(Real(file));
}
int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  return Real(file)->pMethods->xShmMap(Real(file), region, size, extend, out);
}
int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  return Real(file)->pMethods->xShmLock(Real(file), offset, n, flags);
}
void ShmBarrier(sqlite3_file* file) { Real(file)->pMethods->xShmBarrier(Real(file)); }
int ShmUnmap(sqlite3_file* file, int delete_flag) {
  return Real(file)->pMethods->xShmUnmap(Real(file), delete_flag);
}
int Fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  return Real(file)->pMethods->xFetch(Real(file), offset, amount, out);
}
int Unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  return Real(file)->pMethods->xUnfetch(Real(file), offset, page);
}

const sqlite3_io_methods kFaultMethods = {
    3,          Close,     Read,      Write,      Truncate,   Sync,
    FileSize,   Lock,      Unlock,    CheckReservedLock,      FileControl,
    SectorSize, DeviceCharacteristics, ShmMap,    ShmLock,    ShmBarrier,
    ShmUnmap,   Fetch,     Unfetch,
};

int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  // Only the database and its WAL are counted; any other file is the unix VFS's own.
  if ((flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) == 0) {
    return g_unix->xOpen(g_unix, name, file, flags, out_flags);
  }
  sqlite3_file* real = nullptr;
  const int rc = db::OpenWrappedFile(g_unix, name, file, kRealOffset, &kFaultMethods, flags,
                                     out_flags, &real);
  if (rc == SQLITE_OK) reinterpret_cast<FaultFile*>(file)->real = real;
  return rc;
}

}  // namespace

std::string FaultVfsName() {
  static std::once_flag once;
  static bool registered = false;
  std::call_once(once, [] {
    g_unix = sqlite3_vfs_find("unix");
    if (g_unix == nullptr || g_unix->iVersion < 1) return;
    g_vfs = *g_unix;
    g_vfs.szOsFile = static_cast<int>(kRealOffset) + g_unix->szOsFile;
    g_vfs.pNext = nullptr;
    g_vfs.zName = kFaultVfsName;
    g_vfs.xOpen = Open;
    registered = sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0) == SQLITE_OK &&
                 db::RegisterWalBufferVfsOver(kFaultVfsName, kWalBufferOverFaultVfsName).ok();
  });
  REQUIRE(registered);
  return kWalBufferOverFaultVfsName;
}

void ArmFault(FaultPlan plan) {
  g_fail_at.store(0);
  g_counted.store(0);
  g_injected.store(0);
  g_sticky.store(plan.sticky);
  g_only.store(plan.only ? static_cast<int>(*plan.only) : kAllOps);
  g_fail_at.store(plan.fail_at);
}

uint64_t FaultOpsCounted() { return g_counted.load(); }
uint64_t FaultsInjected() { return g_injected.load(); }
FaultOp LastFaultOp() { return static_cast<FaultOp>(g_last_op.load()); }

const char* FaultOpName(FaultOp op) {
  switch (op) {
    case FaultOp::read: return "read";
    case FaultOp::write: return "write";
    case FaultOp::sync: return "sync";
    case FaultOp::truncate: return "truncate";
  }
  return "?";
}

}  // namespace citycard::testing
