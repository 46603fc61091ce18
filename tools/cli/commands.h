// Registration functions of the command groups, one per tools/cli/<group>_commands.cc.
#pragma once

#include "tools/cli/app.h"

namespace citycard::cli {

void RegisterVersionCommand(CLI::App& app, AppContext& context);
void RegisterBillsCommands(CLI::App& app, AppContext& context);     // mandate …, bills …
void RegisterInitCommands(CLI::App& app, AppContext& context);      // init, keys public
void RegisterHolderCommands(CLI::App& app, AppContext& context);    // holder import|show
void RegisterCardCommands(CLI::App& app, AppContext& context);      // card …
void RegisterOperatorCommands(CLI::App& app, AppContext& context);  // operator add|list
void RegisterTerminalCommands(CLI::App& app, AppContext& context);  // terminal …
void RegisterAuditCommands(CLI::App& app, AppContext& context);     // audit verify (audit identity: health)
void RegisterFaresCommands(CLI::App& app, AppContext& context);     // fares load|show, pass sell|list|enter
void RegisterSettleCommands(CLI::App& app, AppContext& context);    // settle --day
void RegisterReplayCommands(CLI::App& app, AppContext& context);    // replay --format szt
void RegisterHealthCommands(CLI::App& app, AppContext& context);    // identity check, audit identity, medical …
void RegisterServeCommands(CLI::App& app, AppContext& context);     // serve
void RegisterSimCommands(CLI::App& app, AppContext& context);       // sim provision|run
void RegisterAlertsCommands(CLI::App& app, AppContext& context);    // alerts
void RegisterDemoCommands(CLI::App& app, AppContext& context);     // demo
void RegisterBenchCommands(CLI::App& app, AppContext& context);    // bench ingest|online|settle|idle

}  // namespace citycard::cli
