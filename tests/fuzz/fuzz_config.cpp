// Fuzz target: loading an application.yml (config.hpp). The input is written to a file
// named application.yml in a private directory and loaded; any outcome but a crash, a
// hang or a sanitizer report is fine.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "exobus/config.hpp"

namespace {

const std::filesystem::path& application_file() {
  static const std::filesystem::path file = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "exobus-fuzz-config-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    return std::filesystem::path(pattern) / "application.yml";
  }();
  return file;
}

struct Cleanup {
  ~Cleanup() {
    std::error_code ignored;
    std::filesystem::remove_all(application_file().parent_path(), ignored);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The path is built before the cleanup object, so it is destroyed after it, at exit.
  static const std::filesystem::path& file = application_file();
  static Cleanup cleanup;
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  const exobus::Result<exobus::ApplicationConfig> config = exobus::load_application_config(file);
  if (config && config.value().services.empty()) std::abort();  // "at least one" service
  return 0;
}
