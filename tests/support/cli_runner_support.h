// Runs the citycard binary (CITYCARD_BIN) as a process in a temporary directory of its own,
// for the CLI tests: exit code, stdout and stderr, and stdout parsed as JSON.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace citycard::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  // stdout as JSON (a test failure when it is not JSON).
  nlohmann::json json() const;
};

class CliSandbox {
 public:
  // A fresh directory under the system's temporary directory; CITYCARD_DB and CITYCARD_KEYS
  // point into it for every Run of `binary` (the tests pass CITYCARD_BIN, which only test
  // executables define).
  explicit CliSandbox(std::string binary);
  ~CliSandbox();
  CliSandbox(const CliSandbox&) = delete;
  CliSandbox& operator=(const CliSandbox&) = delete;

  // Runs `binary args…` with the sandbox's variables plus `env` (which may override them),
  // stdin from /dev/null, and waits for it.
  CliResult Run(const std::vector<std::string>& args,
                const std::map<std::string, std::string>& env = {}) const;
  // Runs with --json as the first argument.
  CliResult Json(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env = {}) const;

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  void Write(const std::string& name, const std::string& text) const;
  std::string Read(const std::string& name) const;
  const std::string& db_path() const { return db_path_; }
  const std::string& keys_path() const { return keys_path_; }

 private:
  std::string binary_;
  std::string dir_;
  std::string db_path_;
  std::string keys_path_;
};

}  // namespace citycard::testing
