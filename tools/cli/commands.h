// Registration functions of the command groups, one per tools/cli/<group>_commands.cc.
#pragma once

#include "tools/cli/app.h"

namespace citycard::cli {

void RegisterVersionCommand(CLI::App& app, AppContext& context);

}  // namespace citycard::cli
