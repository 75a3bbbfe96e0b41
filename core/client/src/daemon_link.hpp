#pragma once
// An instance's link to the daemon of its bus: the registration that made it an instance,
// the connection whose hang-up the daemon takes for its death, and re-registration with a
// restarted daemon. Only the control plane travels here, never a message.
#include <filesystem>
#include <optional>
#include <string>

#include "exobus/control/control_client.hpp"
#include "exobus/control/registration.hpp"

namespace exobus::client {

class DaemonLink {
 public:
  // Registers a new instance of `service_type` on `bus`. runtime_dir empty: from the
  // environment (control/runtime_paths.hpp).
  static Result<DaemonLink> register_instance(const std::string& bus, const std::string& service_type,
                                              const std::filesystem::path& runtime_dir);

  const control::RegistrationReply& registration() const { return registration_; }
  // The daemon's routing now (after a reload, say).
  Result<control::RoutingReply> fetch_routing() const;
  // When the daemon's connection hung up (the daemon died), registers again with its
  // successor and resumes the same instance slot; a no-op while the daemon is there. Called
  // now and then by the reply thread; messages keep flowing meanwhile.
  void watch();
  // Leaves the bus: the daemon sees the hang-up of a detached instance and frees its slot.
  void close() { connection_.reset(); }

 private:
  DaemonLink(control::RuntimePaths paths, control::RegisterRequest request)
      : paths_(std::move(paths)), request_(std::move(request)) {}

  control::RuntimePaths paths_;
  control::RegisterRequest request_;  // the same nonce on every try: how the daemon knows us
  control::RegistrationReply registration_;
  std::optional<control::ControlConnection> connection_;
  bool abandoned_ = false;  // a restarted daemon did not resume our slot
};

}  // namespace exobus::client
