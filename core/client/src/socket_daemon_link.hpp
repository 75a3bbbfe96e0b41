#pragma once
// The link to exobusd over its control socket: the registration whose connection the daemon
// takes for the instance's life (its hang-up is the instance's death), and re-registration
// with a restarted daemon, which resumes the same slot.
#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "daemon_link.hpp"
#include "exobus/control/control_client.hpp"

namespace exobus::client {

class SocketDaemonLink final : public DaemonLink {
 public:
  // Which memory object a descriptor refers to: a memfd is an inode of its own.
  struct MemoryIdentity {
    dev_t device = 0;
    ino_t inode = 0;
    bool operator==(const MemoryIdentity&) const = default;
  };

  // Registers a new instance of `service_type` on `bus`. runtime_dir empty: from the
  // environment (control/runtime_paths.hpp).
  static Result<std::unique_ptr<SocketDaemonLink>> register_instance(const std::string& bus,
                                                                     const std::string& service_type,
                                                                     const std::filesystem::path& runtime_dir);

  const control::RegistrationReply& registration() const override { return registration_; }
  GrantedMemory take_memory() override { return std::move(memory_); }
  Result<RoutingUpdate> fetch_routing() override;
  // When the daemon's connection hung up (the daemon died), registers again with its
  // successor and resumes the same instance slot; a no-op while the daemon is there.
  void watch() override;
  // The daemon sees the hang-up of a detached instance and frees its slot.
  void close() override { connection_.reset(); }

 private:
  SocketDaemonLink(control::RuntimePaths paths, control::RegisterRequest request)
      : paths_(std::move(paths)), request_(std::move(request)) {}

  control::RuntimePaths paths_;
  control::RegisterRequest request_;  // the same nonce on every try: how the daemon knows us
  control::RegistrationReply registration_;
  GrantedMemory memory_;
  MemoryIdentity memory_identity_;  // of the directory granted: the bus we map
  std::optional<control::ControlConnection> connection_;
  bool abandoned_ = false;  // a restarted daemon did not resume our slot
};

}  // namespace exobus::client
