#include "bus_access.hpp"

#include <grp.h>

#include <charconv>
#include <vector>

namespace exobus::daemon {
namespace {

Result<gid_t> resolve_group(const std::string& group) {
  gid_t gid = 0;
  const auto [end, error] = std::from_chars(group.data(), group.data() + group.size(), gid);
  if (error == std::errc{} && end == group.data() + group.size()) return gid;
  std::vector<char> buffer(16384);
  struct group entry {};
  struct group* found = nullptr;
  if (::getgrnam_r(group.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return Error{ErrorCode::config_error, "bus.group '" + group + "' is not a group on this host"};
  }
  return found->gr_gid;
}

}  // namespace

Result<BusAccess> bus_access(const BusConfig& bus) {
  BusAccess access{std::nullopt, static_cast<mode_t>(bus.segment_mode), 0600, 0700};
  if (!bus.group.empty()) {
    Result<gid_t> gid = resolve_group(bus.group);
    if (!gid) return gid.error();
    access.group = gid.value();
  }
  if ((access.segment_mode & 0060) == 0060) {
    access.socket_mode |= 0060;
    access.runtime_dir_mode |= 0010;
  }
  return access;
}

}  // namespace exobus::daemon
