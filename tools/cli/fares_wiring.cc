#include "tools/cli/fares_wiring.h"

namespace citycard::cli {

Result<std::unique_ptr<FaresRuntime>> FaresRuntime::Open(Environment& env) {
  auto store = db::SqliteFareStore::Open(env.database());
  if (!store.ok()) return store.status();
  std::unique_ptr<FaresRuntime> runtime(new FaresRuntime());
  runtime->store_ = std::move(*store);
  runtime->office_ = std::make_unique<FareOffice>(*runtime->store_, env.registry(), env.ledger(),
                                                  env.card_office(), env.digester(), env.clock());
  auto table = runtime->office_->CurrentParsedTable();
  if (table.ok()) {
    runtime->pricer_ = std::make_unique<FareOfficePricer>(*runtime->office_, std::move(*table));
  } else if (table.status().code() != "no_fare_table") {
    return table.status();
  }
  return runtime;
}

}  // namespace citycard::cli
