// Operators and terminals: registering the operators that take part (each with a payable
// account in the ledger) and their terminals (each with its own secret key, stored wrapped,
// versioned so that a rotation leaves older records verifying). Pure logic over the registry
// store and the ledger; the key material comes from a TerminalKeyMaker that tools/ implements
// with crypto/ (core never touches OpenSSL).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/ledger.h"
#include "core/registry.h"
#include "core/status.h"

namespace citycard {

struct NewTerminalKey {
  Bytes plain_key;    // for the reader's provisioning (--key-out); never stored
  Bytes wrapped_key;  // what the registry stores
};

class TerminalKeyMaker {
 public:
  virtual ~TerminalKeyMaker() = default;
  // A fresh random terminal key and its wrapped form. Fails only when wrapping fails
  // (Kind::internal).
  virtual Result<NewTerminalKey> Make() const = 0;
};

struct OperatorRequest {
  std::string id;
  std::string name;
  OperatorKind kind = OperatorKind::bus;
  int64_t fee_bp = 0;
};

struct TerminalRequest {
  std::string id;
  std::string operator_id;
  TerminalKind kind = TerminalKind::bus;
  std::string route;
};

// A terminal with the key just issued to it.
struct IssuedTerminalKey {
  Terminal terminal;
  int version = 0;
  Bytes plain_key;
};

class TerminalOffice {
 public:
  // Everything passed must outlive the TerminalOffice; registry and ledger share one storage
  // transaction (RegistryStore::Begin).
  TerminalOffice(RegistryStore& registry, Ledger& ledger, const TerminalKeyMaker& keys,
                 const Clock& clock);

  // Adds an operator and its payable account. Kind::bad_input "invalid_operator_id",
  // "invalid_name", "invalid_fee" (outside 0..kFeeBasisPointsMax); Kind::refused
  // "operator_exists".
  Result<Operator> AddOperator(const OperatorRequest& request);
  Result<std::vector<Operator>> ListOperators();

  // Registers a terminal with key version 1. Kind::bad_input "invalid_terminal_id",
  // "invalid_route"; Kind::not_found "operator_not_found"; Kind::refused "terminal_exists".
  Result<IssuedTerminalKey> RegisterTerminal(const TerminalRequest& request);
  Result<std::vector<Terminal>> ListTerminals();
  // Kind::bad_input "invalid_terminal_id"; Kind::not_found "terminal_not_found".
  Result<Terminal> ShowTerminal(std::string_view id);
  // Disables a terminal: the server refuses its sessions and batches from now on. Refused
  // "terminal_disabled" when it already is.
  Result<Terminal> DisableTerminal(std::string_view id);
  // Adds key version current + 1 and makes it current; older versions stay and still
  // verify. Refused "terminal_disabled", "terminal_key_versions_exhausted" (after
  // kTerminalKeyVersionMax).
  Result<IssuedTerminalKey> RotateKey(std::string_view id);

 private:
  Result<Terminal> LoadTerminal(std::string_view id);
  Result<TerminalKey> MakeKey(int version, Bytes* plain_key);

  RegistryStore& registry_;
  Ledger& ledger_;
  const TerminalKeyMaker& keys_;
  const Clock& clock_;
};

}  // namespace citycard
