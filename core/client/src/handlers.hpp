#pragma once
// The handlers of one message name: one per version the service registered, and one for
// every other version. Registered before the service starts, read-only after.
#include <utility>
#include <vector>

#include "exobus/delivery.hpp"

namespace exobus::client {

struct Handlers {
  Handler any_version;  // empty: none
  std::vector<std::pair<double, Handler>> by_version;

  void set(double version, Handler handler) {
    for (auto& [known, existing] : by_version) {
      if (known == version) {
        existing = std::move(handler);
        return;
      }
    }
    by_version.emplace_back(version, std::move(handler));
  }
  // The handler for a message of `version`, or null when none takes it.
  const Handler* find(double version) const {
    for (const auto& [known, handler] : by_version) {
      if (known == version) return &handler;
    }
    return any_version ? &any_version : nullptr;
  }
};

}  // namespace exobus::client
