#pragma once
// The coordinator: exobusd's state and policy. It lays out (or re-attaches to) the data
// segment, registers instances, recovers dead ones, expires leases, reloads the
// configuration and answers status and dead-letter commands. It never touches a message
// on its way from sender to receiver: everything here runs on the control socket's event
// loop, off the data path.
//
// The segment is the truth: every piece of state here is a cache rebuilt from it when a
// restarted daemon re-attaches (attach_or_create).
#include <spdlog/logger.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "exobus/bus_plan.hpp"
#include "exobus/config.hpp"
#include "exobus/control/registration.hpp"
#include "exobus/daemon/control_server.hpp"
#include "exobus/daemon/peer_policy.hpp"
#include "exobus/shm/recovery.hpp"
#include "memory_keeper.hpp"

namespace exobus::daemon {

struct CoordinatorOptions {
  std::string bus;
  control::RuntimePaths paths;   // the bus's control socket, lock and keeper
  std::filesystem::path program;  // exobusd itself, to start the memory keeper
  std::filesystem::path config_file;
  bool reset = false;                          // discard an existing segment even if its layout differs
  std::chrono::milliseconds hang_after{5000};  // heartbeat silence that marks an instance hung
};

class Coordinator {
 public:
  static Result<std::unique_ptr<Coordinator>> start(CoordinatorOptions options, std::shared_ptr<spdlog::logger> log);

  ServerCallbacks callbacks();
  // At a clean stop that discards the bus: the keeper drops the memory and exits.
  void release_memory();

 private:
  Coordinator(CoordinatorOptions options, std::shared_ptr<spdlog::logger> log)
      : options_(std::move(options)), log_(std::move(log)) {}

  Result<void> load_policies(const ApplicationConfig& config);
  Result<void> attach_or_create();
  // Gives the memory keeper (started if none runs) the bus's memory.
  Result<void> hand_to_keeper();
  void adopt_existing_instances();

  Result<Granted> on_register(const control::RegisterRequest& request, const PeerCredentials& peer,
                                        const InstanceHandle& handle);
  void on_instance_gone(const InstanceHandle& handle);
  bool on_instance_disconnected(const InstanceHandle& handle);
  // A slot that is recovered, or resumed over a new connection, owes nothing to its older
  // connections: their later hang-up or exit report must not recover it again.
  void forget_connections_of(std::uint32_t slot);
  Result<control::JsonText> on_status();
  Result<control::JsonText> on_command(const std::string& name, const control::JsonText& args);
  void on_reload();
  void on_tick();

  control::RoutingReply routing() const;
  Result<control::JsonText> dead_letters(const control::JsonText& args);
  // Recovers a dead instance's slot; true once nothing is left to do and the slot is free.
  bool recover(std::uint32_t instance);
  void reroute_inbox(std::uint32_t instance);

  CoordinatorOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  ApplicationConfig config_;
  BusPlan plan_;
  std::map<std::string, PeerPolicy> policies_;
  std::unique_ptr<shm::Segment> segment_;
  std::optional<MemoryKeeper> keeper_;
  std::unique_ptr<shm::DataPlane> plane_;
  shm::LaneCursor lane_;  // the daemon's own lane: instance 0, lane 0

  std::map<std::uint64_t, std::uint32_t> instance_of_handle_;  // control connection -> slot
  std::set<std::uint32_t> orphans_;     // alive but not connected to this daemon (yet, or any more)
  std::set<std::uint32_t> recovering_;  // dead, recovery not finished (a ring was full)
  std::uint64_t dead_lettered_replies_ = 0;
  std::uint32_t ticks_ = 0;
};

}  // namespace exobus::daemon
