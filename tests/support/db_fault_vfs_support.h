// A SQLite VFS for tests that fails the N-th I/O operation, as SQLite's own tests do for every
// N (sqlite.org/testing.html, "I/O error testing"), so that a test can show that a failed read,
// write or sync of the disk leaves nothing half applied, nothing acknowledged lost, and the
// engine above it able to go on (tests/db/io_faults_test.cc).
//
// The VFS "citycard-fault" wraps SQLite's "unix" VFS; the WAL write buffer is registered over
// it as "citycard-walbuf-fault" (db::RegisterWalBufferVfsOver), so that a connection opened
// with Database::Open(path, create, FaultVfsName()) runs the production stack with the faults
// underneath it: a buffered WAL write fails where the buffer reaches the disk.
//
// Counted operations: xRead, xWrite, xSync and xTruncate of main database files and WAL files
// opened through it, in every thread. Syncs are counted (and may fail) but not made: a test
// through it learns nothing about power loss, only about errors. The plan is process-wide;
// tests that use it must not run at the same time in one process (Catch2 runs cases one after
// another).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace citycard::testing {

enum class FaultOp : uint8_t { read, write, sync, truncate };

struct FaultPlan {
  // The number (counted from 1 after ArmFault) of the operation to fail; 0: none.
  uint64_t fail_at = 0;
  // Count (and fail) only operations of this kind; unset: every counted kind.
  std::optional<FaultOp> only;
  // Fail every counted operation from fail_at on (the disk is gone), not only that one.
  bool sticky = false;
};

// Registers both VFSs once per process (REQUIREs success) and returns the name to open with.
std::string FaultVfsName();

// Starts counting from zero under `plan`. ArmFault({}) counts without failing anything.
void ArmFault(FaultPlan plan);
// Operations counted since the last ArmFault (of the plan's kind, when it names one).
uint64_t FaultOpsCounted();
// Operations failed since the last ArmFault.
uint64_t FaultsInjected();
// The kind of the last operation failed (meaningful when FaultsInjected() > 0).
FaultOp LastFaultOp();

const char* FaultOpName(FaultOp op);

}  // namespace citycard::testing
