#pragma once
// The transports the comparison knows. To add one, implement transport.hpp in a new
// <name>_transport.cpp, declare its factory here and list it in transports.cpp.

#include <memory>
#include <vector>

#include "transport.hpp"

namespace exobus::bench {

std::unique_ptr<Transport> make_floor_transport();
std::unique_ptr<Transport> make_unix_transport();
std::unique_ptr<Transport> make_zeromq_transport();

// In table order. "floor" and "zeromq" are also the references the ratios are taken against.
std::vector<std::unique_ptr<Transport>> all_transports();

}  // namespace exobus::bench
