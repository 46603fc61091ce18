#include "core/terminal_office.h"

#include "core/account_plan.h"
#include "core/holder_registry.h"
#include "core/unit_of_work.h"

namespace citycard {

namespace {

Status CheckRoute(std::string_view route) {
  bool ok = route.size() <= kRouteBytesMax;
  for (unsigned char c : route) ok = ok && c >= 0x20 && c != 0x7f;
  if (ok) return Status::Ok();
  return Status::BadInput("invalid_route", "a route is at most 120 bytes without control characters");
}

}  // namespace

TerminalOffice::TerminalOffice(RegistryStore& registry, Ledger& ledger,
                               const TerminalKeyMaker& keys, const Clock& clock)
    : registry_(registry), ledger_(ledger), keys_(keys), clock_(clock) {}

Result<Operator> TerminalOffice::AddOperator(const OperatorRequest& request) {
  CITYCARD_RETURN_IF_ERROR(ValidateRegistryId(request.id, "invalid_operator_id"));
  CITYCARD_RETURN_IF_ERROR(ValidateHolderName(request.name));
  if (request.fee_bp < 0 || request.fee_bp > kFeeBasisPointsMax) {
    return Status::BadInput("invalid_fee", "a fee is 0 to 10000 basis points");
  }
  Operator op;
  Status status = RunUnitOfWork(registry_, ledger_, [&]() -> Status {
    auto existing = registry_.FindOperator(request.id);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) {
      return Status::Refused("operator_exists", "operator " + request.id + " exists already");
    }
    auto number = registry_.NextSequence("operator");
    if (!number.ok()) return number.status();
    op = Operator{*number, request.id, request.name, request.kind, request.fee_bp,
                  AccountIdFor(AccountKind::operator_payable, static_cast<uint64_t>(*number)),
                  clock_.NowSeconds()};
    Account payable;
    payable.id = op.payable_account_id;
    payable.kind = AccountKind::operator_payable;
    payable.owner_ref = static_cast<uint64_t>(op.number);
    CITYCARD_RETURN_IF_ERROR(ledger_.CreateAccounts(std::span<const Account>(&payable, 1)));
    return registry_.InsertOperator(op);
  });
  if (!status.ok()) return status;
  return op;
}

Result<std::vector<Operator>> TerminalOffice::ListOperators() { return registry_.ListOperators(); }

Result<TerminalKey> TerminalOffice::MakeKey(int version, Bytes* plain_key) {
  auto made = keys_.Make();
  if (!made.ok()) return made.status();
  *plain_key = std::move(made->plain_key);
  return TerminalKey{version, std::move(made->wrapped_key), clock_.NowSeconds(), false};
}

Result<IssuedTerminalKey> TerminalOffice::RegisterTerminal(const TerminalRequest& request) {
  CITYCARD_RETURN_IF_ERROR(ValidateRegistryId(request.id, "invalid_terminal_id"));
  CITYCARD_RETURN_IF_ERROR(CheckRoute(request.route));
  IssuedTerminalKey issued;
  Status status = RunUnitOfWork(registry_, ledger_, [&]() -> Status {
    auto op = registry_.FindOperator(request.operator_id);
    if (!op.ok()) return op.status();
    if (!op->has_value()) {
      return Status::NotFound("operator_not_found", "no operator " + request.operator_id);
    }
    auto existing = registry_.FindTerminal(request.id);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) {
      return Status::Refused("terminal_exists", "terminal " + request.id + " exists already");
    }
    auto key = MakeKey(1, &issued.plain_key);
    if (!key.ok()) return key.status();
    issued.terminal = Terminal{request.id, request.operator_id, request.kind, request.route,
                               TerminalStatus::active, {*key}, 0, clock_.NowSeconds()};
    issued.version = 1;
    return registry_.InsertTerminal(issued.terminal);
  });
  if (!status.ok()) return status;
  return issued;
}

Result<std::vector<Terminal>> TerminalOffice::ListTerminals() { return registry_.ListTerminals(); }

Result<Terminal> TerminalOffice::LoadTerminal(std::string_view id) {
  CITYCARD_RETURN_IF_ERROR(ValidateRegistryId(id, "invalid_terminal_id"));
  auto found = registry_.FindTerminal(id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return Status::NotFound("terminal_not_found", "no terminal " + std::string(id));
  }
  return std::move(**found);
}

Result<Terminal> TerminalOffice::ShowTerminal(std::string_view id) { return LoadTerminal(id); }

Result<Terminal> TerminalOffice::DisableTerminal(std::string_view id) {
  auto terminal = LoadTerminal(id);
  if (!terminal.ok()) return terminal.status();
  if (terminal->status == TerminalStatus::disabled) {
    return Status::Refused("terminal_disabled", "terminal " + terminal->id + " is disabled already");
  }
  CITYCARD_RETURN_IF_ERROR(registry_.SetTerminalStatus(id, TerminalStatus::disabled));
  terminal->status = TerminalStatus::disabled;
  return terminal;
}

Result<IssuedTerminalKey> TerminalOffice::RotateKey(std::string_view id) {
  auto terminal = LoadTerminal(id);
  if (!terminal.ok()) return terminal.status();
  if (terminal->status == TerminalStatus::disabled) {
    return Status::Refused("terminal_disabled", "terminal " + terminal->id + " is disabled");
  }
  int version = terminal->current_key_version() + 1;
  if (version > kTerminalKeyVersionMax) {
    return Status::Refused("terminal_key_versions_exhausted",
                           "terminal " + terminal->id + " has used all 255 key versions");
  }
  IssuedTerminalKey issued;
  auto key = MakeKey(version, &issued.plain_key);
  if (!key.ok()) return key.status();
  CITYCARD_RETURN_IF_ERROR(registry_.AddTerminalKey(id, *key));
  terminal->keys.push_back(std::move(*key));
  issued.terminal = std::move(*terminal);
  issued.version = version;
  return issued;
}

}  // namespace citycard
