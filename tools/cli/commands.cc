// The list of command groups. A new group adds its Register function here and nowhere else.
#include "tools/cli/app.h"
#include "tools/cli/commands.h"

namespace citycard::cli {

void RegisterAllCommands(CLI::App& app, AppContext& context) {
  RegisterVersionCommand(app, context);
  RegisterBillsCommands(app, context);
  RegisterInitCommands(app, context);
  RegisterHolderCommands(app, context);
  RegisterCardCommands(app, context);
  RegisterOperatorCommands(app, context);
  RegisterTerminalCommands(app, context);
  RegisterAuditCommands(app, context);
  RegisterFaresCommands(app, context);
  RegisterSettleCommands(app, context);
  RegisterReplayCommands(app, context);
  RegisterHealthCommands(app, context);
  RegisterServeCommands(app, context);
  RegisterSimCommands(app, context);
  RegisterAlertsCommands(app, context);
  RegisterDemoCommands(app, context);
  RegisterBenchCommands(app, context);
}

}  // namespace citycard::cli
