#include "tests/support/cli_runner_support.h"

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace citycard::testing {

nlohmann::json CliResult::json() const {
  INFO("stdout: " << out << "\nstderr: " << err);
  REQUIRE(nlohmann::json::accept(out));
  return nlohmann::json::parse(out);
}

CliSandbox::CliSandbox(std::string binary) : binary_(std::move(binary)) {
  std::string pattern = (std::filesystem::temp_directory_path() / "citycard_cli_XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  dir_ = pattern;
  db_path_ = Path("citycard.db");
  keys_path_ = Path("citycard.keys");
}

CliSandbox::~CliSandbox() {
  std::error_code error;
  std::filesystem::remove_all(dir_, error);
}

void CliSandbox::Write(const std::string& name, const std::string& text) const {
  std::ofstream(Path(name), std::ios::binary) << text;
}

std::string CliSandbox::Read(const std::string& name) const {
  std::ifstream in(Path(name), std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

CliResult CliSandbox::Run(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& env) const {
  std::map<std::string, std::string> vars = {{"CITYCARD_DB", db_path_},
                                             {"CITYCARD_KEYS", keys_path_}};
  for (const auto& [name, value] : env) vars[name] = value;
  std::string out_path = Path(".stdout");
  std::string err_path = Path(".stderr");
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child: only async-signal-safe work would be strictly right after fork in a
    // threaded parent; the test process is single-threaded here.
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (::chdir(dir_.c_str()) != 0) ::_exit(126);
    for (const auto& [name, value] : vars) ::setenv(name.c_str(), value.c_str(), 1);
    std::vector<char*> argv;
    std::string binary = binary_;
    argv.push_back(binary.data());
    std::vector<std::string> copies = args;
    for (std::string& arg : copies) argv.push_back(arg.data());
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CliResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = Read(".stdout");
  result.err = Read(".stderr");
  return result;
}

CliResult CliSandbox::Json(const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& env) const {
  std::vector<std::string> with_json = {"--json"};
  with_json.insert(with_json.end(), args.begin(), args.end());
  return Run(with_json, env);
}

}  // namespace citycard::testing
