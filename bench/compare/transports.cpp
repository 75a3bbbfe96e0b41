#include "transports.hpp"

namespace exobus::bench {

std::vector<std::unique_ptr<Transport>> all_transports() {
  std::vector<std::unique_ptr<Transport>> all;
  all.push_back(make_floor_transport());
  all.push_back(make_unix_transport());
  all.push_back(make_zeromq_transport());
  return all;
}

}  // namespace exobus::bench
