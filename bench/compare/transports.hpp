#pragma once
// The transports the comparison knows. To add one, implement transport.hpp in a new
// <name>_transport.cpp, declare its factory here and list it in transports.cpp.

#include <memory>
#include <string>
#include <vector>

#include "exobus/service.hpp"
#include "transport.hpp"

namespace exobus::bench {

std::unique_ptr<Transport> make_floor_transport();
std::unique_ptr<Transport> make_unix_transport();
std::unique_ptr<Transport> make_zeromq_transport();
// ExoBus's client library through a real exobusd, every ExoBus thread in `mode`.
std::unique_ptr<Transport> make_exobus_transport(std::string name, WaitMode mode);
// ExoBus's data plane alone (shm::DataPlane), both sides busy-polling.
std::unique_ptr<Transport> make_exobus_shm_transport();

// In table order. "floor" and "zeromq" are also the references the ratios are taken against.
std::vector<std::unique_ptr<Transport>> all_transports();

}  // namespace exobus::bench
