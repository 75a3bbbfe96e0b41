#include "status_file.hpp"

#include <unistd.h>

#include <fstream>
#include <system_error>

namespace exobus::bridge {

StatusFile::~StatusFile() {
  std::error_code ignored;
  std::filesystem::remove(path_, ignored);
}

Result<void> StatusFile::write(const std::string& host, const std::vector<std::string>& lines) {
  const std::filesystem::path next = path_.string() + ".next";
  {
    std::ofstream out(next, std::ios::trunc);
    out << "exobus-bridge pid " << getpid() << " host " << host << '\n';
    for (const std::string& line : lines) out << line << '\n';
    if (!out.flush()) return Error{ErrorCode::io, "cannot write " + next.string()};
  }
  std::error_code error;
  std::filesystem::rename(next, path_, error);
  if (error) return Error{ErrorCode::io, "cannot rename " + next.string() + ": " + error.message()};
  return {};
}

}  // namespace exobus::bridge
