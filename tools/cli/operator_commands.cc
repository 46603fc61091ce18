// `citycard operator add|list`.
#include "tools/cli/commands.h"
#include "tools/cli/environment.h"
#include "tools/cli/registry_output.h"

namespace citycard::cli {

namespace {

struct OperatorOptions {
  std::string id;
  std::string name;
  std::string kind;
  int64_t fee_bp = 0;
};

const std::vector<std::string> kOperatorKinds = {"bus",      "metro",  "taxi",   "parking",
                                                 "utility",  "hospital", "scenic", "counter"};

Result<CommandOutput> Add(Environment& env, const OperatorOptions& o) {
  OperatorRequest request{o.id, o.name, *ParseOperatorKind(o.kind), o.fee_bp};
  auto op = env.terminal_office().AddOperator(request);
  if (!op.ok()) return op.status();
  return CommandOutput{OperatorJson(*op), "Added operator " + op->id + "\n" + OperatorsTable({*op})};
}

Result<CommandOutput> List(Environment& env) {
  auto ops = env.terminal_office().ListOperators();
  if (!ops.ok()) return ops.status();
  nlohmann::json list = nlohmann::json::array();
  for (const Operator& op : *ops) list.push_back(OperatorJson(op));
  return CommandOutput{{{"operators", list}}, OperatorsTable(*ops)};
}

}  // namespace

void RegisterOperatorCommands(CLI::App& app, AppContext& context) {
  auto o = std::make_shared<OperatorOptions>();
  CLI::App* group = app.add_subcommand("operator", "transport operators, utilities, hospitals …");
  group->require_subcommand(1);

  CLI::App* add = group->add_subcommand("add", "add an operator and its payable account");
  add->add_option("OPERATOR_ID", o->id, "1 to 16 characters A-Z a-z 0-9 - _")->required();
  add->add_option("--name", o->name, "the operator's name")->required();
  add->add_option("--kind", o->kind, "bus, metro, taxi, parking, utility, hospital, scenic, counter")
      ->required()
      ->check(CLI::IsMember(kOperatorKinds));
  add->add_option("--fee-bp", o->fee_bp, "the card office's fee, basis points of the gross");
  add->callback([&context, o] {
    RunWithEnvironment(context, [&](Environment& env) { return Add(env, *o); });
  });

  group->add_subcommand("list", "list the operators")->callback([&context] {
    RunWithEnvironment(context, [](Environment& env) { return List(env); });
  });
}

}  // namespace citycard::cli
