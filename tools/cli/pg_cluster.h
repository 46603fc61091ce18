// A throwaway PostgreSQL 15 cluster for `citycard bench ingest --with-postgres`
// (docs/benchmarks.md): initdb into a new directory, started with pg_ctl on a free loopback
// port with its socket in a directory of its own (-k), stopped and removed afterwards. When
// the benchmark runs as root, both run as the user `postgres` (or `nobody`) through runuser,
// since PostgreSQL refuses to run as root.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace citycard::cli {

// Where Debian keeps the PostgreSQL 15 programs.
inline constexpr char kPostgresBinDir[] = "/usr/lib/postgresql/15/bin";

class PgCluster {
 public:
  // Creates and starts a cluster under `base_dir` (created; must not exist yet).
  // Failures: Kind::internal "postgres_start_failed" naming the step and its log file.
  static Result<std::unique_ptr<PgCluster>> Start(const std::string& base_dir);
  // Stops the cluster (fast shutdown) and removes its files.
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // A libpq connection string for the cluster's socket.
  std::string conninfo() const;
  uint16_t port() const { return port_; }

 private:
  PgCluster() = default;
  std::string base_dir_;
  std::string run_as_;  // "" when not root
  uint16_t port_ = 0;
  bool started_ = false;
};

}  // namespace citycard::cli
