// Verification of the ledger from its transfers alone (docs/ledger.md "Audit"): what
// `citycard audit verify` runs. Reads the store; changes nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/ledger_store.h"
#include "core/status.h"

namespace citycard {

// The audit stops listing problems after this many (it says how many more it found).
inline constexpr size_t kAuditProblemsMax = 1'000;

struct AuditReport {
  bool ok = true;  // no problem found
  int64_t transfers = 0;
  int64_t accounts = 0;
  // One sentence per problem, naming the batch (by seq), transfer (by id and seq) or account
  // (by id) it is about, e.g. "transfer 0000…0007 (seq 7): amount_fen … ".
  std::vector<std::string> problems;
};

// Recomputes the hash chain batch by batch (seq continuity, prev_hash links, each batch's hash
// over its transfers); replays every transfer in commit order, recomputing each account's
// posted and pending debits and credits, each pending transfer's resolution, each transfer's
// stored balances-after and history links; checks that every debit of a floored account that
// did not carry kTransferIgnoreFloor left it at or above its floor, that the stored accounts
// agree with the replay, and that all balances sum to zero.
// A corrupt ledger is a report with ok == false, not a failure; failures are only the store's
// (Kind::internal).
Result<AuditReport> VerifyLedger(LedgerStore& store, const Digester& digester);

}  // namespace citycard
