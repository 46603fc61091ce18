// Settlement for the citycard program: the settlement of one clearing day over an open
// Environment, as `citycard settle` runs it, for the demo and the tests to call in-process.
#pragma once

#include <cstdint>
#include <vector>

#include "core/fares.h"
#include "core/settlement.h"
#include "tools/cli/environment.h"

namespace citycard::cli {

// Moves the balances of replaced cards that are due (CardOffice::ProcessDueReplacements), then
// settles clearing day `day` (Settler::Settle) over the environment's database: the tap store,
// the settlement store and the daily caps of the current fare table. Failures: Settler::Settle's
// and the stores'.
Result<SettlementOutcome> SettleDay(Environment& env, int64_t day);

// The daily caps of the current fare table (`citycard fares load`); empty when no table is
// loaded (then nobody is capped).
Result<std::vector<DailyCap>> CurrentDailyCaps(Environment& env);

}  // namespace citycard::cli
