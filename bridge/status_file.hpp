#pragma once
// The bridge's status where `exobus status` finds it: <runtime dir>/<bus>.bridge, rewritten
// whole (a new file renamed over the old, so a reader never sees half of one) every few
// seconds, and removed when the bridge stops. Its first line names the bridge's pid and
// host, so a reader can tell a status left by a bridge that was killed.
#include <filesystem>
#include <string>
#include <vector>

#include "exobus/error.hpp"

namespace exobus::bridge {

class StatusFile {
 public:
  explicit StatusFile(std::filesystem::path path) : path_(std::move(path)) {}
  StatusFile(const StatusFile&) = delete;
  StatusFile& operator=(const StatusFile&) = delete;
  ~StatusFile();
  Result<void> write(const std::string& host, const std::vector<std::string>& lines);

 private:
  std::filesystem::path path_;
};

}  // namespace exobus::bridge
