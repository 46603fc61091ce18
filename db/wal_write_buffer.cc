#include "db/wal_write_buffer.h"

#include <sqlite3.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>

#include "db/vfs_shim.h"

namespace citycard::db {

namespace {

// One registration of the VFS: SQLite's record of it, first, so that the pointer SQLite
// passes to Open leads back to the VFS it wraps. Registrations live as long as the process
// (SQLite keeps the pointer); there are two at most, the default's and a test's.
struct Registration {
  sqlite3_vfs vfs;
  sqlite3_vfs* base;
};
static_assert(std::is_standard_layout_v<Registration>);

sqlite3_vfs* BaseOf(sqlite3_vfs* vfs) { return reinterpret_cast<Registration*>(vfs)->base; }

std::atomic<uint64_t> g_writes_in{0};
std::atomic<uint64_t> g_writes_out{0};
std::atomic<uint64_t> g_commit_flushes{0};

// A WAL file: this header, then the default VFS's own file object (`real`), in the one block
// SQLite allocates (g_vfs.szOsFile). Used by one connection at a time, like every
// sqlite3_file, so it needs no lock.
struct WalFile {
  sqlite3_file base;     // pMethods = &kWalMethods
  sqlite3_file* real;    // the default VFS's file, just after this header
  char* buffer;          // kWalWriteBufferBytes, allocated on the first write; or null
  sqlite3_int64 offset;  // where buffer[0] belongs in the file
  size_t length;         // bytes held
  bool commit_pending;   // the last write was a commit frame's header; its page comes next
};

constexpr size_t kRealOffset = (sizeof(WalFile) + 15) / 16 * 16;

WalFile* Wal(sqlite3_file* file) { return reinterpret_cast<WalFile*>(file); }
sqlite3_file* Real(sqlite3_file* file) { return Wal(file)->real; }

// Writes out what the buffer holds. The buffer is empty afterwards even when the write fails:
// the frames are then lost as a failed write loses them, and the caller returns the error.
int Flush(WalFile* f) {
  if (f->length == 0) return SQLITE_OK;
  const int rc = f->real->pMethods->xWrite(f->real, f->buffer, static_cast<int>(f->length),
                                           f->offset);
  g_writes_out.fetch_add(1, std::memory_order_relaxed);
  f->length = 0;
  return rc;
}

bool IsCommitFrameHeader(const void* data, int amount) {
  if (static_cast<size_t>(amount) != kWalFrameHeaderBytes) return false;
  const auto* bytes = static_cast<const unsigned char*>(data);
  return (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0;
}

int Write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  WalFile* f = Wal(file);
  g_writes_in.fetch_add(1, std::memory_order_relaxed);
  const size_t n = static_cast<size_t>(amount);
  const bool continues = f->length > 0 && offset == f->offset + static_cast<sqlite3_int64>(f->length);
  if (!continues || f->length + n > kWalWriteBufferBytes) {
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  }
  if (n > kWalWriteBufferBytes) {
    g_writes_out.fetch_add(1, std::memory_order_relaxed);
    return f->real->pMethods->xWrite(f->real, data, amount, offset);
  }
  if (f->buffer == nullptr) {
    f->buffer = static_cast<char*>(std::malloc(kWalWriteBufferBytes));
    if (f->buffer == nullptr) return SQLITE_NOMEM;
  }
  if (f->length == 0) f->offset = offset;
  std::memcpy(f->buffer + f->length, data, n);
  f->length += n;
  // SQLite writes a frame as its header, then its page. Once a commit frame's page is here the
  // transaction is complete, and SQLite may publish it to other connections (without a sync
  // before, when synchronous is below FULL): it must be in the file by then.
  if (f->commit_pending) {
    f->commit_pending = false;
    g_commit_flushes.fetch_add(1, std::memory_order_relaxed);
    return Flush(f);
  }
  f->commit_pending = IsCommitFrameHeader(data, amount);
  return SQLITE_OK;
}

int Close(sqlite3_file* file) {
  WalFile* f = Wal(file);
  const int flushed = Flush(f);
  const int closed = f->real->pMethods->xClose(f->real);
  std::free(f->buffer);
  f->buffer = nullptr;
  return flushed != SQLITE_OK ? flushed : closed;
}

int Read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  WalFile* f = Wal(file);
  const sqlite3_int64 end = offset + amount;
  const sqlite3_int64 buffered_end = f->offset + static_cast<sqlite3_int64>(f->length);
  // Only a read of bytes still in the buffer needs them written first.
  if (f->length > 0 && offset < buffered_end && f->offset < end) {
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  }
  return f->real->pMethods->xRead(f->real, out, amount, offset);
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  return Real(file)->pMethods->xTruncate(Real(file), size);
}

int Sync(sqlite3_file* file, int flags) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  return Real(file)->pMethods->xSync(Real(file), flags);
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
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
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  return Real(file)->pMethods->xFileControl(Real(file), op, arg);
}

int SectorSize(sqlite3_file* file) { return Real(file)->pMethods->xSectorSize(Real(file)); }

int DeviceCharacteristics(sqlite3_file* file) {
  return Real(file)->pMethods->xDeviceCharacteristics(Real(file));
}

// A WAL file has no shared memory of its own (the database file has) and is never mapped;
// these are here because the method table's version requires them.
int ShmMap(sqlite3_file*, int, int, int, void volatile** out) {
  *out = nullptr;
  return SQLITE_IOERR_SHMMAP;
}
int ShmLock(sqlite3_file*, int, int, int) { return SQLITE_IOERR_SHMLOCK; }
void ShmBarrier(sqlite3_file*) {}
int ShmUnmap(sqlite3_file*, int) { return SQLITE_OK; }
// No memory map: SQLite then reads through Read, which sees the buffer.
int Fetch(sqlite3_file*, sqlite3_int64, int, void** out) {
  *out = nullptr;
  return SQLITE_OK;
}
int Unfetch(sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; }

const sqlite3_io_methods kWalMethods = {
    3,          Close,     Read,      Write,      Truncate,   Sync,
    FileSize,   Lock,      Unlock,    CheckReservedLock,      FileControl,
    SectorSize, DeviceCharacteristics, ShmMap,    ShmLock,    ShmBarrier,
    ShmUnmap,   Fetch,     Unfetch,
};

int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  sqlite3_vfs* base = BaseOf(vfs);
  // Any other file is the wrapped VFS's object itself, in the block SQLite gave us (at least
  // as large as the wrapped VFS asks for), with the wrapped VFS's methods.
  if ((flags & SQLITE_OPEN_WAL) == 0) return base->xOpen(base, name, file, flags, out_flags);
  sqlite3_file* real = nullptr;
  const int rc = OpenWrappedFile(base, name, file, kRealOffset, &kWalMethods, flags, out_flags,
                                 &real);
  if (rc == SQLITE_OK) Wal(file)->real = real;
  return rc;
}

// Registers the VFS as `name` over `base` (caller holds g_register_mutex). Every method but
// xOpen is the wrapped VFS's own; none of the unix VFS's methods reads pAppData through the
// pointer it is given, so the copy keeps the wrapped VFS's (a VFS put under this one in tests
// must not either).
int RegisterOver(sqlite3_vfs* base, const char* name) {
  auto* registration = new Registration{*base, base};
  registration->vfs.szOsFile = static_cast<int>(kRealOffset) + base->szOsFile;
  registration->vfs.pNext = nullptr;
  registration->vfs.zName = name;
  registration->vfs.xOpen = Open;
  const int rc = sqlite3_vfs_register(&registration->vfs, /*makeDflt=*/0);
  if (rc != SQLITE_OK) delete registration;
  return rc;
}

std::mutex g_register_mutex;

Status RegisterFailed(const std::string& what, int rc) {
  return Status::Internal("vfs_register_failed", "cannot register the WAL write buffer's VFS " +
                                                     what + " (SQLite code " +
                                                     std::to_string(rc) + ")");
}

}  // namespace

Status RegisterWalBufferVfs() {
  static std::once_flag once;
  static int rc = SQLITE_ERROR;
  std::call_once(once, [] {
    sqlite3_vfs* base = sqlite3_vfs_find(nullptr);
    if (base == nullptr) return;
    std::lock_guard lock(g_register_mutex);
    rc = RegisterOver(base, kWalBufferVfsName);
  });
  if (rc != SQLITE_OK) return RegisterFailed("over the default VFS", rc);
  return Status::Ok();
}

Status RegisterWalBufferVfsOver(const char* base_name, const char* name) {
  std::lock_guard lock(g_register_mutex);
  sqlite3_vfs* base = sqlite3_vfs_find(base_name);
  if (base == nullptr) {
    return RegisterFailed(std::string("over ") + base_name + ": no such VFS", SQLITE_ERROR);
  }
  if (sqlite3_vfs* existing = sqlite3_vfs_find(name)) {
    if (existing->xOpen == Open && BaseOf(existing) == base) return Status::Ok();
    return RegisterFailed(std::string("as ") + name + ": the name is taken", SQLITE_ERROR);
  }
  if (int rc = RegisterOver(base, name); rc != SQLITE_OK) return RegisterFailed(name, rc);
  return Status::Ok();
}

WalBufferCounters WalBufferCountersNow() {
  return WalBufferCounters{g_writes_in.load(std::memory_order_relaxed),
                           g_writes_out.load(std::memory_order_relaxed),
                           g_commit_flushes.load(std::memory_order_relaxed)};
}

}  // namespace citycard::db
