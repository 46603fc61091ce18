// Status and Result<T>: how every expected failure in citycard travels as a value.
//
// A Status is either ok or carries a Kind (which decides the command's exit code, see
// docs/errors.md and ../shared/design/CLI.md), a stable snake_case code such as
// "insufficient_funds" (what scripts and JSON consumers match on; never renamed once
// published) and a human message. Exceptions are used only at the edges (main, the top of
// a coroutine); assertions (CITYCARD_ASSERT) only for programmer errors, and always on.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace citycard {

// The class of a failure. The numeric values are the CLI's exit codes.
enum class Kind : int {
  ok = 0,
  internal = 1,    // a bug or an I/O failure
  usage = 2,       // unknown command or option, missing argument
  not_found = 3,   // card, holder, operator, terminal
  refused = 4,     // a business rule: insufficient funds, blocked card, conflict, duplicate
  bad_input = 5,   // malformed file line, bad amount, bad national id, bad signature
};

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok

  static Status Ok() { return Status(); }
  static Status Internal(std::string code, std::string message) {
    return Status(Kind::internal, std::move(code), std::move(message));
  }
  static Status Usage(std::string code, std::string message) {
    return Status(Kind::usage, std::move(code), std::move(message));
  }
  static Status NotFound(std::string code, std::string message) {
    return Status(Kind::not_found, std::move(code), std::move(message));
  }
  static Status Refused(std::string code, std::string message) {
    return Status(Kind::refused, std::move(code), std::move(message));
  }
  static Status BadInput(std::string code, std::string message) {
    return Status(Kind::bad_input, std::move(code), std::move(message));
  }

  bool ok() const { return kind_ == Kind::ok; }
  Kind kind() const { return kind_; }
  int exit_code() const { return static_cast<int>(kind_); }
  // Stable snake_case name of the failure; empty when ok.
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  // "code: message", for logs and human output.
  std::string ToString() const { return ok() ? std::string("ok") : code_ + ": " + message_; }

 private:
  Status(Kind kind, std::string code, std::string message)
      : kind_(kind), code_(std::move(code)), message_(std::move(message)) {}

  Kind kind_ = Kind::ok;
  std::string code_;
  std::string message_;
};

[[noreturn]] inline void AssertFail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "citycard: assertion failed: %s at %s:%d\n", expr, file, line);
  std::abort();
}

// Always on, also in release builds: an assertion guards an invariant that only a bug can
// break, and running on with a broken ledger invariant is worse than stopping.
#define CITYCARD_ASSERT(expr) \
  ((expr) ? static_cast<void>(0) : ::citycard::AssertFail(#expr, __FILE__, __LINE__))

// Result<T>: a T on success, a Status otherwise. Never holds an ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : value_(std::move(status)) {  // NOLINT: implicit by design
    CITYCARD_ASSERT(!std::get<Status>(value_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(value_); }
  explicit operator bool() const { return ok(); }

  // The failure; Status::Ok() when there is a value.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(value_); }

  T& value() & {
    CITYCARD_ASSERT(ok());
    return std::get<T>(value_);
  }
  const T& value() const& {
    CITYCARD_ASSERT(ok());
    return std::get<T>(value_);
  }
  T&& value() && {
    CITYCARD_ASSERT(ok());
    return std::get<T>(std::move(value_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace citycard

// Returns early from the calling function when a Status-returning expression fails.
#define CITYCARD_RETURN_IF_ERROR(expr)          \
  do {                                          \
    ::citycard::Status citycard_status_ = (expr); \
    if (!citycard_status_.ok()) return citycard_status_; \
  } while (false)
