#include "tools/cli/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace citycard::cli {

Result<std::string> ReadTextFile(const std::string& path, size_t max_bytes) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    return Status::NotFound("file_not_found", "no file " + path);
  }
  auto size = std::filesystem::file_size(path, error);
  if (error) return Status::Internal("file_unreadable", path + ": " + error.message());
  if (size > max_bytes) {
    return Status::BadInput("file_too_large", path + " is larger than " +
                                                  std::to_string(max_bytes) + " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) return Status::Internal("file_unreadable", "cannot read " + path);
  return text.str();
}

Status CheckFileAbsent(const std::string& path) {
  std::error_code error;
  if (std::filesystem::exists(path, error)) {
    return Status::Refused("file_exists", path + " exists; it is never overwritten");
  }
  return Status::Ok();
}

Status WriteSecretFile(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return CheckFileAbsent(path);
    return Status::Internal("file_write_failed", "open " + path + ": " + std::strerror(errno));
  }
  size_t written = 0;
  while (written < text.size()) {
    ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  bool ok = written == text.size() && ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return Status::Internal("file_write_failed", "write " + path + ": " + std::strerror(saved));
  }
  return Status::Ok();
}

}  // namespace citycard::cli
