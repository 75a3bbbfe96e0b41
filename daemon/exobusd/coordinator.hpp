#pragma once
// The coordinator: exobusd's state and policy. It lays out (or re-attaches to) the bus's
// memory, registers instances and grants each the memory its service type needs, recovers
// dead ones, expires leases, reloads the configuration and answers status and dead-letter
// commands. It never touches a message on its way from sender to receiver: everything here
// runs on the control socket's event loop, off the data path.
//
// The memory is the truth: every piece of state here is a cache rebuilt from it when a
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
#include "bus_figures.hpp"
#include "channel_watch.hpp"
#include "memory_keeper.hpp"
#include "metrics_endpoint.hpp"

namespace exobus::daemon {

struct CoordinatorOptions {
  std::string bus;
  control::RuntimePaths paths;   // the bus's control socket, lock and keeper
  std::filesystem::path program;  // exobusd itself, to start the memory keeper
  std::filesystem::path config_file;
  bool reset = false;                          // discard the bus's memory even if its layout differs
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
  // Re-attaches to the memory the keeper gave back; false (with nothing changed) when it is
  // not a bus of this release or --reset discards it.
  Result<bool> adopt(std::vector<control::UniqueFd> kept);
  // Gives the memory keeper (started if none runs) all of the bus's memory.
  Result<void> hand_to_keeper();
  // Lays out what a reload (or a configuration grown since the memory was laid out) adds,
  // hands it to the keeper, and only then records it in the directory.
  Result<void> lay_out(const PlanAdditions& additions);
  void adopt_existing_instances();

  Result<Granted> on_register(const control::RegisterRequest& request, const PeerCredentials& peer,
                              const InstanceHandle& handle);
  void on_instance_gone(const InstanceHandle& handle);
  bool on_instance_disconnected(const InstanceHandle& handle);
  // A slot that is recovered, or resumed over a new connection, owes nothing to its older
  // connections: their later hang-up or exit report must not recover it again.
  void forget_connections_of(std::uint32_t slot);
  // The bus as `exobus status` and the metrics show it (bus_figures.hpp).
  BusFigures figures() const;
  // Tells every instance what is watched (the directory's observers word): send times
  // while the metrics are served or a tail is attached, deliveries while a tail is. Called whenever what watches the bus changes.
  void update_observers();
  Result<control::JsonText> on_status();
  Result<Granted> on_command(const std::string& name, const control::JsonText& args, const PeerCredentials& peer);
  void on_reload();
  void on_tick();

  // The routing, with the memory of `type` granted (none: for a process that is not an
  // instance): the grants in the reply, their descriptors in `fds`.
  control::RoutingReply routing(std::optional<std::uint16_t> type, std::vector<int>& fds) const;
  // Whether the peer may run the type, by the policy registration applies (allowed-users,
  // allowed-groups; the owner and root): the rule for reading what the type receives.
  Result<void> may_run(const PeerCredentials& peer, const std::string& type_name) const;
  // The `dlq` command: lists or requeues the dead letters of one type, for a peer the type's
  // policy lets run it (permission_denied otherwise).
  Result<control::JsonText> dead_letters(const control::JsonText& args, const PeerCredentials& peer);
  // The `tail` command: grants the directory and the memory of the types the peer may run,
  // read-only, and starts (or renews) its lease; while any tail holds one, instances trace
  // their deliveries (observers). Errors: permission_denied, refused.
  Result<Granted> attach_tail(const control::JsonText& args, const PeerCredentials& peer);
  // Tails that did not renew within kTailLeaseMs stop the observation (a killed tail).
  void expire_tails(std::uint32_t now);
  // Recovers a dead instance's slot; true once nothing is left to do and the slot is free.
  bool recover(std::uint32_t slot);
  shm::InstanceEntry& entry(std::uint32_t slot) const { return memory_->registry()->instance(slot); }
  // What instances, logs and the routing command call a slot: 1-based, so that 0 is no
  // instance (the C binding's and the CLI's convention).
  static std::uint32_t instance_id(std::uint32_t slot) { return slot + 1; }
  shm::InstanceRecord& record_of(std::uint32_t slot) const;
  // What an instance of the type at `type` (its index in the bus's memory) counted; its
  // replies are named by the type's configured sends.
  MessageCounts counts_of(const shm::InstanceRecord& record, std::uint16_t type) const;

  CoordinatorOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  std::string label_;  // names the memory objects: exobus.<bus>
  ApplicationConfig config_;
  BusPlan plan_;
  std::map<std::string, PeerPolicy> policies_;
  std::unique_ptr<shm::BusMemory> memory_;
  std::optional<MemoryKeeper> keeper_;
  std::optional<ChannelWatch> watch_;

  std::map<std::uint64_t, std::uint32_t> instance_of_handle_;  // control connection -> slot
  std::set<std::uint32_t> orphans_;     // alive but not connected to this daemon (yet, or any more)
  std::set<std::uint32_t> recovering_;  // dead, recovery not finished (a ring was full)
  std::uint64_t replies_dropped_ = 0;   // replies whose requester was gone
  // By type: the counters of its instances whose slots were freed since this daemon started.
  std::map<std::uint16_t, MessageCounts> retired_counts_;
  std::unique_ptr<MetricsEndpoint> metrics_;  // null unless bus.metrics-address is set
  std::uint32_t ticks_ = 0;
  // Attached tails: pid -> the ms (DataPlane::now_ms) its lease ends. A tail renews every
  // second; the lease outlives two missed renewals.
  static constexpr std::uint32_t kTailLeaseMs = 3000;
  std::map<pid_t, std::uint32_t> tails_;
};

}  // namespace exobus::daemon
