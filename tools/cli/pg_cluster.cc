#include "tools/cli/pg_cluster.h"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace citycard::cli {

namespace {

// A loopback port nobody listens on right now (bound to port 0 and released).
Result<uint16_t> FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Status::Internal("postgres_start_failed", "socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof a;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length) == 0;
  ::close(fd);
  if (!ok) return Status::Internal("postgres_start_failed", "no free loopback port");
  return ntohs(a.sin_port);
}

// Runs a shell command line (paths are the benchmark's own, without spaces).
bool Run(const std::string& command) { return std::system(command.c_str()) == 0; }

}  // namespace

Result<std::unique_ptr<PgCluster>> PgCluster::Start(const std::string& base_dir) {
  std::unique_ptr<PgCluster> c(new PgCluster());
  c->base_dir_ = base_dir;
  std::error_code error;
  std::filesystem::create_directories(base_dir + "/sock", error);
  if (error) return Status::Internal("postgres_start_failed", "cannot create " + base_dir);
  if (::geteuid() == 0) {
    for (const char* user : {"postgres", "nobody"}) {
      passwd* pw = ::getpwnam(user);
      if (pw == nullptr) continue;
      c->run_as_ = user;
      if (::chown(base_dir.c_str(), pw->pw_uid, pw->pw_gid) != 0 ||
          ::chown((base_dir + "/sock").c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        return Status::Internal("postgres_start_failed", "cannot give " + base_dir + " to " + user);
      }
      break;
    }
    if (c->run_as_.empty()) {
      return Status::Internal("postgres_start_failed", "running as root and no postgres user");
    }
  }
  std::string as = c->run_as_.empty() ? "" : "runuser -u " + c->run_as_ + " -- ";
  std::string bin = kPostgresBinDir;
  std::string log = base_dir + "/initdb.log";
  if (!Run(fmt::format("{}{}/initdb -D {}/data -A trust -U postgres -E UTF8 --no-locale "
                       "--no-sync > {} 2>&1",
                       as, bin, base_dir, log))) {
    return Status::Internal("postgres_start_failed", "initdb failed; see " + log);
  }
  auto port = FreePort();
  if (!port.ok()) return port.status();
  c->port_ = *port;
  // Durability as the core's (synchronous_commit=on, fsync on, full page writes); memory and
  // WAL sizes of a machine that serves one database.
  std::string options = fmt::format(
      "-p {} -k {}/sock -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c fsync=on "
      "-c full_page_writes=on -c shared_buffers=256MB -c max_wal_size=4GB",
      c->port_, base_dir);
  log = base_dir + "/server.log";
  if (!Run(fmt::format("{}{}/pg_ctl -D {}/data -l {} -w -t 60 -o \"{}\" start > {}/pg_ctl.log 2>&1",
                       as, bin, base_dir, log, options, base_dir))) {
    return Status::Internal("postgres_start_failed", "pg_ctl start failed; see " + log);
  }
  c->started_ = true;
  return c;
}

PgCluster::~PgCluster() {
  std::string as = run_as_.empty() ? "" : "runuser -u " + run_as_ + " -- ";
  if (started_) {
    (void)Run(fmt::format("{}{}/pg_ctl -D {}/data -m fast -w stop > /dev/null 2>&1", as,
                          kPostgresBinDir, base_dir_));
  }
  std::error_code error;
  std::filesystem::remove_all(base_dir_, error);
}

std::string PgCluster::conninfo() const {
  return fmt::format("host={}/sock port={} user=postgres dbname=postgres", base_dir_, port_);
}

}  // namespace citycard::cli
