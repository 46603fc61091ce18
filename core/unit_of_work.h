// One storage transaction around registry writes and ledger transfers, so that a card row and
// the money it moves commit together or not at all (RegistryStore::Begin and
// Ledger::JoinedTransaction).
#pragma once

#include "core/ledger.h"
#include "core/registry.h"
#include "core/status.h"

namespace citycard {

// Begins a transaction on `registry`, runs `body` (a callable returning Status) with the
// ledger joined to it, and commits when the body succeeds. On any failure everything the body
// wrote is rolled back (the ledger's cached state too) and the body's failure, or the
// commit's, is returned. Ok means the whole unit is durable.
template <typename Body>
Status RunUnitOfWork(RegistryStore& registry, Ledger& ledger, Body&& body) {
  CITYCARD_RETURN_IF_ERROR(registry.Begin());
  Ledger::JoinedTransaction joined(ledger);
  Status status = body();
  if (status.ok()) status = registry.Commit();
  if (!status.ok()) {
    // The body's failure is what the caller needs to see; a failing rollback of a connection
    // that already failed adds nothing to it.
    (void)registry.Rollback();
    return status;
  }
  joined.Committed();
  return Status::Ok();
}

}  // namespace citycard
