// `citycard demo` (docs/demo.md): a city day on a fresh installation, driven through the real
// protocol, that checks each of its steps and ends with the settlement, the alerts and the
// audit's verdict.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "tools/cli/app.h"

namespace citycard::cli {

// The environment variable naming the Shenzhen Tong evening file (or the folder holding it).
inline constexpr char kDemoDataVariable[] = "CITYCARD_DATA";
inline constexpr char kDemoDataFileName[] = "szt-2018-08-31-evening.csv";
// With --short the replay takes every kDemoShortStride-th row of the file.
inline constexpr size_t kDemoShortStride = 10;
// How long after the last replayed tap the city's own day (its counter, kiosk, taxi, …) happens.
inline constexpr int64_t kDemoCityDelaySeconds = 8 * 3600;

struct DemoOptions {
  std::string dir;     // the working folder; empty: a fresh one (mkdtemp) under "." or /tmp
  bool short_run = false;
  bool json = false;   // progress lines go to stderr either way
};

// What the demo did, as the --json document (docs/demo.md "Summary"), and as text.
struct DemoResult {
  nlohmann::json summary = nlohmann::json::object();
  std::string text;
  bool ok = false;  // every step produced what it expected
};

// Where the Shenzhen Tong evening file is: $CITYCARD_DATA (the file, or a folder holding
// kDemoDataFileName), else the shared data next to the source tree, else
// ../shared/data/<file> from the current directory. Kind::not_found "demo_data_not_found".
Result<std::string> FindDemoData();

// Runs the whole demo. A step that does not produce what it expects stops the demo: the
// result then has ok == false and the summary says which step (its "failed" field). Failures
// (as Status) are only those that leave nothing to report: the working folder cannot be
// created, the data file is missing or malformed.
Result<DemoResult> RunDemo(const DemoOptions& options);

}  // namespace citycard::cli
