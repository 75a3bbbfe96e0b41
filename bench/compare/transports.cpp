#include "transports.hpp"

namespace exobus::bench {

std::vector<std::unique_ptr<Transport>> all_transports() {
  std::vector<std::unique_ptr<Transport>> all;
  all.push_back(make_floor_transport());
  all.push_back(make_unix_transport());
  all.push_back(make_zeromq_transport());
  all.push_back(make_exobus_transport("exobus-busy", WaitMode::busy_poll));
  all.push_back(make_exobus_transport("exobus-adaptive", WaitMode::adaptive));
  all.push_back(make_exobus_transport("exobus-sleep", WaitMode::sleep));
  all.push_back(make_exobus_shm_transport());
  return all;
}

}  // namespace exobus::bench
