#pragma once
// A runtime directory of the test's own under /tmp, removed with its content at the end of
// the test, even when an assertion fails half-way.

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

#include "exobus/control/runtime_paths.hpp"

namespace exobus::testing {

// A fresh directory under /tmp, removed with its content at the end of the test.
class TempRuntimeDir {
 public:
  TempRuntimeDir() {
    std::string pattern = "/tmp/exobus-ctl-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  TempRuntimeDir(const TempRuntimeDir&) = delete;
  TempRuntimeDir& operator=(const TempRuntimeDir&) = delete;
  ~TempRuntimeDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  const std::filesystem::path& path() const { return path_; }
  control::RuntimePaths paths(const std::string& bus) const {
    return control::runtime_paths(bus, control::RuntimeDir{path_, false}).value();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace exobus::testing
