// The fares component over an Environment's connection, for `citycard serve`: the fare store,
// the fare office, and the core's tap pricer with the table current when it was opened.
#pragma once

#include <memory>

#include "core/fare_office.h"
#include "core/status.h"
#include "db/sqlite_fare_store.h"
#include "tools/cli/environment.h"

namespace citycard::cli {

class FaresRuntime {
 public:
  // Opens the "fares" store on env.database() (migrating it) and, when a table is loaded,
  // builds the pricer from it. Failures: the store's, and a stored table that no longer
  // parses (Kind::bad_input "invalid_fare_table").
  static Result<std::unique_ptr<FaresRuntime>> Open(Environment& env);

  FareStore& store() { return *store_; }
  FareOffice& office() { return *office_; }
  // nullptr when no fare table is loaded (taps are then not re-priced).
  TapPricer* pricer() { return pricer_.get(); }

 private:
  FaresRuntime() = default;
  std::unique_ptr<db::SqliteFareStore> store_;
  std::unique_ptr<FareOffice> office_;
  std::unique_ptr<FareOfficePricer> pricer_;
};

}  // namespace citycard::cli
