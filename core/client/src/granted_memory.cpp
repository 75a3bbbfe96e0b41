#include "granted_memory.hpp"

#include <unistd.h>

#include <optional>

namespace exobus::client {

GrantedMemory& GrantedMemory::operator=(GrantedMemory&& other) noexcept {
  GrantedMemory old(std::move(*this));  // closes what this one held
  grants_ = std::move(other.grants_);
  other.grants_.clear();
  return *this;
}

GrantedMemory::~GrantedMemory() {
  for (const shm::Grant& grant : grants_) {
    if (grant.fd != -1) ::close(grant.fd);
  }
}

Result<GrantedMemory> GrantedMemory::of(const std::vector<control::MemoryGrant>& listed,
                                        std::vector<control::UniqueFd> fds) {
  if (listed.size() != fds.size()) {
    return Error{ErrorCode::protocol, "exobusd granted " + std::to_string(listed.size()) + " memory objects but passed " +
                                          std::to_string(fds.size()) + " descriptors"};
  }
  GrantedMemory memory;
  for (std::size_t k = 0; k < listed.size(); ++k) {
    const std::optional<shm::RegionKind> kind = shm::region_kind(listed[k].role);
    if (!kind || *kind == shm::RegionKind::registry) {
      return Error{ErrorCode::protocol, "exobusd granted memory of role '" + listed[k].role +
                                            "', which this library does not know; run services and exobusd of the "
                                            "same release"};
    }
    memory.grants_.push_back({*kind, listed[k].index, listed[k].writable, fds[k].release()});
  }
  return memory;
}

}  // namespace exobus::client
