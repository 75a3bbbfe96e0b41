#pragma once
// The memory objects a registration (or a routing reply) granted, as the shm layer maps
// them: one shm::Grant per entry of the reply's memory list, with its descriptor. The
// descriptors not taken over by a mapping are closed with this object.
#include <vector>

#include "exobus/control/registration.hpp"
#include "exobus/control/unique_fd.hpp"
#include "exobus/error.hpp"
#include "exobus/shm/bus_memory.hpp"

namespace exobus::client {

class GrantedMemory {
 public:
  GrantedMemory() = default;
  GrantedMemory(GrantedMemory&& other) noexcept : grants_(std::move(other.grants_)) { other.grants_.clear(); }
  GrantedMemory& operator=(GrantedMemory&& other) noexcept;
  GrantedMemory(const GrantedMemory&) = delete;
  GrantedMemory& operator=(const GrantedMemory&) = delete;
  ~GrantedMemory();

  // Pairs each listed grant with its descriptor. Errors: protocol (a count that differs, a
  // role this library does not know).
  static Result<GrantedMemory> of(const std::vector<control::MemoryGrant>& listed, std::vector<control::UniqueFd> fds);

  std::vector<shm::Grant>& grants() { return grants_; }
  bool empty() const { return grants_.empty(); }

 private:
  std::vector<shm::Grant> grants_;
};

}  // namespace exobus::client
