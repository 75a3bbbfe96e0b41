#include "coordinator.hpp"

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <functional>

#include "bus_access.hpp"
#include "memory_keeper.hpp"
#include "exobus/control/accounts.hpp"
#include "exobus/control/registration.hpp"
#include "exobus/daemon/peer_credentials.hpp"
#include "exobus/envelope.hpp"
#include "exobus/shm/data_plane.hpp"
#include "exobus/message_version.hpp"

namespace exobus::daemon {

namespace {

using rapidjson::Value;

// Builds a JSON object reply without string juggling.
class JsonObject {
 public:
  JsonObject() : document_(rapidjson::kObjectType) {}
  template <class T>
  JsonObject& set(const char* key, T value) {
    document_.AddMember(Value(key, allocator()), Value(value), allocator());
    return *this;
  }
  JsonObject& set(const char* key, const std::string& value) {
    document_.AddMember(Value(key, allocator()), Value(value.c_str(), allocator()), allocator());
    return *this;
  }
  JsonObject& set(const char* key, Value value) {
    document_.AddMember(Value(key, allocator()), value, allocator());
    return *this;
  }
  rapidjson::Document::AllocatorType& allocator() { return document_.GetAllocator(); }
  control::JsonText text() const { return control::JsonText::from(document_); }

 private:
  rapidjson::Document document_;
};

bool process_alive(pid_t pid, std::uint64_t start_time) {
  const Result<std::uint64_t> now = process_start_time(pid);
  return now.ok() && now.value() == start_time;
}

std::vector<std::string> principal_names(const std::vector<Principal>& principals) {
  std::vector<std::string> names;
  for (const Principal& principal : principals) {
    names.push_back(principal.id ? std::to_string(*principal.id) : principal.name);
  }
  return names;
}

}  // namespace

Result<std::unique_ptr<Coordinator>> Coordinator::start(CoordinatorOptions options,
                                                        std::shared_ptr<spdlog::logger> log) {
  std::unique_ptr<Coordinator> coordinator(new Coordinator(std::move(options), std::move(log)));
  coordinator->label_ = "exobus." + coordinator->options_.bus;
  Result<ApplicationConfig> config = load_application_config(coordinator->options_.config_file);
  if (!config) return config.error();
  coordinator->config_ = std::move(config).value();
  if (Result<void> policies = coordinator->load_policies(coordinator->config_); !policies) {
    return policies.error();
  }
  if (Result<void> attached = coordinator->attach_or_create(); !attached) return attached.error();
  // Read at start only, like the connection quotas: a reload keeps the running endpoint.
  if (const auto& address = coordinator->config_.bus.metrics_address) {
    Result<std::unique_ptr<MetricsEndpoint>> metrics = MetricsEndpoint::open(*address);
    if (!metrics) return metrics.error();
    coordinator->metrics_ = std::move(metrics).value();
    coordinator->metrics_->publish(coordinator->figures());
    coordinator->log_->info("serving metrics on http://{}/metrics", coordinator->metrics_->address());
  }
  coordinator->update_observers();
  return coordinator;
}

void Coordinator::update_observers() {
  std::uint32_t observers = metrics_ ? shm::kObserveSendTimes : 0;
  // A trace line carries the queueing delay: senders stamp while a tail watches too.
  if (!tails_.empty()) observers |= shm::kObserveDeliveries | shm::kObserveSendTimes;
  memory_->directory().header().observers.store(observers, std::memory_order_relaxed);
}

Result<void> Coordinator::load_policies(const ApplicationConfig& config) {
  std::map<std::string, PeerPolicy> policies;
  for (const ServiceTypeConfig& type : config.services) {
    Result<PeerPolicy> policy =
        PeerPolicy::create(principal_names(type.allowed_users), principal_names(type.allowed_groups), ::geteuid());
    if (!policy) {
      return Error{ErrorCode::config_error, "service type '" + type.name + "': " + policy.error().message};
    }
    policies.emplace(type.name, std::move(policy).value());
  }
  policies_ = std::move(policies);
  return {};
}

Result<void> Coordinator::attach_or_create() {
  keeper_ = MemoryKeeper::connect(options_.paths);
  if (keeper_) {
    Result<std::vector<control::UniqueFd>> kept = keeper_->take_back();
    if (!kept) return kept.error();
    if (!kept.value().empty()) {
      Result<bool> adopted = adopt(std::move(kept).value());
      if (!adopted) return adopted.error();
      if (adopted.value()) return {};
    }
  }
  Result<BusPlan> plan = plan_bus(config_);
  if (!plan) return plan.error();
  Result<std::unique_ptr<shm::BusMemory>> created = shm::BusMemory::create(label_, plan.value().memory);
  if (!created) return created.error();
  memory_ = std::move(created).value();
  plan_ = std::move(plan).value();
  if (Result<void> kept = hand_to_keeper(); !kept) return kept.error();
  const Result<std::uint64_t> bytes = shm::BusMemory::total_bytes(plan_.memory);
  log_->info("created the bus's memory ({} bytes: {} service types, {} links, {} instance slots)",
             bytes ? bytes.value() : 0, plan_.memory.types.size(), plan_.memory.links.size(),
             plan_.memory.instance_slots);
  return {};
}

Result<bool> Coordinator::adopt(std::vector<control::UniqueFd> kept) {
  std::vector<int> fds;
  for (control::UniqueFd& fd : kept) fds.push_back(fd.release());
  Result<std::unique_ptr<shm::BusMemory>> adopted = shm::BusMemory::adopt(std::move(fds));
  if (!adopted) {
    log_->warn("the memory the keeper held is not a bus of this release ({}); laying the bus out anew",
               adopted.error().message);
    return false;
  }
  if (options_.reset) {
    log_->warn("--reset: discarding the bus's memory and the messages it holds");
    return false;
  }
  shm::BusMemory& memory = *adopted.value();
  BusPlan plan = plan_of_memory(memory.directory(), memory.registry()->instance_slots());
  Result<PlanAdditions> additions = replan(plan, config_);
  if (!additions) {
    return Error{ErrorCode::segment_error, "the bus's memory was laid out for another configuration (" +
                                               additions.error().message + ")"};
  }
  memory_ = std::move(adopted).value();
  plan_ = std::move(plan);
  // The keeper may hold objects the registry dropped (a daemon that died at a reload): it
  // gets the list the registry now has, then what the configuration added since.
  if (Result<void> handed = hand_to_keeper(); !handed) return handed.error();
  if (Result<void> laid_out = lay_out(additions.value()); !laid_out) return laid_out.error();
  // Our previous incarnation may have died mid-operation: recover it first.
  const shm::RecoveryReport report = shm::Recovery(*memory_).recover_daemon();
  log_->info("re-attached to the bus's memory ({} tombstones, {} leases requeued from the previous daemon)",
             report.tombstones, report.leases_requeued);
  adopt_existing_instances();
  return true;
}

Result<void> Coordinator::hand_to_keeper() {
  if (!keeper_ || !keeper_->alive()) {
    Result<MemoryKeeper> started = MemoryKeeper::start(options_.paths, options_.program);
    if (!started) return started.error();
    keeper_ = std::move(started).value();
  }
  std::vector<int> fds;
  for (const shm::Region* region : memory_->regions_in_order()) fds.push_back(region->fd());
  return keeper_->keep(fds);
}

Result<void> Coordinator::lay_out(const PlanAdditions& additions) {
  const std::size_t known = memory_->regions_in_order().size();
  for (const shm::BusShape::Type& type : additions.types) {
    if (Result<void> added = memory_->add_type(label_, type); !added) return added;
  }
  for (const shm::BusShape::LinkEntry& link : additions.links) {
    if (Result<void> added = memory_->add_link(label_, link); !added) return added;
  }
  std::vector<int> fds;
  const std::vector<const shm::Region*> regions = memory_->regions_in_order();
  for (std::size_t k = known; k < regions.size(); ++k) fds.push_back(regions[k]->fd());
  if (!fds.empty() && keeper_) {
    if (Result<void> kept = keeper_->keep_more(fds); !kept) return kept;
  }
  for (const shm::BusShape::Type& type : additions.types) memory_->publish_type(type);
  for (const shm::BusShape::LinkEntry& link : additions.links) memory_->publish_link(link);
  return {};
}

void Coordinator::release_memory() {
  if (keeper_) keeper_->release();
  keeper_.reset();
}

shm::InstanceRecord& Coordinator::record_of(std::uint32_t slot) const {
  const shm::InstanceEntry& instance = entry(slot);
  return memory_->tenant(instance.type.load(std::memory_order_relaxed))
      ->instance(instance.member.load(std::memory_order_relaxed));
}

void Coordinator::adopt_existing_instances() {
  const shm::Registry& registry = *memory_->registry();
  for (std::uint32_t slot = 0; slot < registry.instance_slots(); ++slot) {
    shm::InstanceEntry& instance = entry(slot);
    if (instance.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(shm::InstanceState::free)) {
      continue;
    }
    const pid_t pid = instance.pid.load(std::memory_order_relaxed);
    if (process_alive(pid, instance.start_time.load(std::memory_order_relaxed))) {
      log_->info("instance {} (pid {}) is alive; waiting for it to reconnect", instance_id(slot), pid);
      orphans_.insert(slot);
    } else if (!recover(slot)) {
      recovering_.insert(slot);
    }
  }
}

ServerCallbacks Coordinator::callbacks() {
  ServerCallbacks callbacks;
  callbacks.on_register = [this](const auto& request, const auto& peer, const auto& handle) {
    return on_register(request, peer, handle);
  };
  callbacks.on_instance_gone = [this](const auto& handle) { on_instance_gone(handle); };
  callbacks.on_instance_disconnected = [this](const auto& handle) { return on_instance_disconnected(handle); };
  callbacks.on_status = [this](const auto&) { return on_status(); };
  callbacks.on_command = [this](const auto& name, const auto& args, const auto& peer) {
    return on_command(name, args, peer);
  };
  callbacks.on_reload = [this] { on_reload(); };
  callbacks.on_tick = [this] { on_tick(); };
  return callbacks;
}

control::RoutingReply Coordinator::routing(std::optional<std::uint16_t> type, std::vector<int>& fds) const {
  control::RoutingReply routing;
  routing.config_file = std::filesystem::absolute(options_.config_file);
  routing.types.insert(plan_.types.begin(), plan_.types.end());
  routing.routing_generation = memory_->directory().header().routing_generation.load(std::memory_order_acquire);
  if (!type) return routing;
  for (const shm::Grant& grant : memory_->grants_for(*type)) {
    routing.memory.push_back({std::string(shm::to_string(grant.kind)), grant.index, grant.writable});
    fds.push_back(grant.fd);
  }
  return routing;
}

Result<Granted> Coordinator::on_register(const control::RegisterRequest& request, const PeerCredentials& peer,
                                         const InstanceHandle& handle) {
  const std::optional<std::uint16_t> type = plan_.type_index(request.service_type);
  if (!config_.find_service(request.service_type) || !type) {
    return Error{ErrorCode::config_error, "unknown service type '" + request.service_type +
                                              "'; declare it under services: in " + options_.config_file.string()};
  }
  if (Result<void> allowed = policies_.at(request.service_type).check(peer, request.service_type); !allowed) {
    log_->warn("refused pid {}: {}", peer.pid, allowed.error().message);
    return allowed.error();
  }
  const shm::Registry& registry = *memory_->registry();
  const std::uint64_t nonce_hash = std::hash<std::string>{}(request.instance_nonce);
  std::optional<std::uint32_t> slot;
  for (const std::uint32_t orphan : orphans_) {
    const shm::InstanceEntry& instance = entry(orphan);
    if (instance.pid.load() == peer.pid && instance.start_time.load() == handle.start_time &&
        instance.nonce_hash.load() == nonce_hash && instance.type.load() == *type) {
      slot = orphan;
      orphans_.erase(orphan);
      forget_connections_of(orphan);  // its previous connection no longer speaks for it
      log_->info("instance {} of '{}' (pid {}) reconnected", instance_id(orphan), request.service_type, peer.pid);
      break;
    }
  }
  if (!slot) {
    const auto is_free = [&](std::uint32_t candidate) {
      return entry(candidate).state.load(std::memory_order_acquire) ==
             static_cast<std::uint32_t>(shm::InstanceState::free);
    };
    for (std::uint32_t candidate = 0; candidate < registry.instance_slots() && !slot; ++candidate) {
      if (is_free(candidate)) slot = candidate;
    }
    if (!slot) {
      return Error{ErrorCode::config_error, "the bus has no free instance slot (max-instances " +
                                                std::to_string(registry.instance_slots()) +
                                                "); raise bus.max-instances in " + options_.config_file.string()};
    }
    // One user may not take the slots the others need: its live instances, of every type,
    // orphans included (they still use their lanes).
    const std::uint32_t per_user = config_.bus.instances_per_user();
    std::uint32_t of_user = 0;
    for (std::uint32_t other = 0; other < registry.instance_slots(); ++other) {
      const shm::InstanceEntry& instance = entry(other);
      if (instance.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(shm::InstanceState::active) &&
          instance.uid.load(std::memory_order_relaxed) == peer.uid) {
        ++of_user;
      }
    }
    if (of_user >= per_user) {
      const std::string user = control::describe_user(peer.uid);
      log_->warn("refused pid {}: user {} runs {} instances already (bus.max-instances-per-user {})", peer.pid, user,
                 of_user, per_user);
      return Error{ErrorCode::quota_exceeded, "user " + user + " runs " + std::to_string(of_user) +
                                                  " instances already (bus.max-instances-per-user " +
                                                  std::to_string(per_user) +
                                                  "); stop one, or raise bus.max-instances-per-user in " +
                                                  options_.config_file.string()};
    }
    // Its place among its type's instances: a member no live or recovering slot holds.
    const shm::Tenant& tenant = *memory_->tenant(*type);
    std::vector<bool> taken(tenant.shape().instances, false);
    for (std::uint32_t other = 0; other < registry.instance_slots(); ++other) {
      if (!is_free(other) && entry(other).type.load() == *type && entry(other).member.load() < taken.size()) {
        taken[entry(other).member.load()] = true;
      }
    }
    const auto member = static_cast<std::uint32_t>(std::find(taken.begin(), taken.end(), false) - taken.begin());
    if (member == taken.size()) {
      log_->warn("refused pid {}: service type '{}' runs {} instances already (its max-instances)", peer.pid,
                 request.service_type, taken.size());
      return Error{ErrorCode::quota_exceeded,
                   "service type '" + request.service_type + "' has no free instance slot (" +
                       std::to_string(taken.size()) + " instances run, its max-instances); stop one, or raise "
                       "max-instances of service type '" + request.service_type + "' in " +
                       config_.services[*config_.find_service(request.service_type)].config_file.string() +
                       " (a change of it needs exobusd --reset)"};
    }
    shm::InstanceEntry& instance = entry(*slot);
    instance.pid.store(peer.pid, std::memory_order_relaxed);
    instance.start_time.store(handle.start_time, std::memory_order_relaxed);
    instance.type.store(*type, std::memory_order_relaxed);
    instance.member.store(static_cast<std::uint16_t>(member), std::memory_order_relaxed);
    instance.uid.store(peer.uid, std::memory_order_relaxed);
    instance.nonce_hash.store(nonce_hash, std::memory_order_relaxed);
    shm::InstanceRecord& record = tenant.instance(member);
    record.heartbeat_ms.store(shm::DataPlane::now_ms(), std::memory_order_relaxed);
    shm::clear_figures(record);
    record.attached.store(0, std::memory_order_relaxed);
    instance.state.store(static_cast<std::uint32_t>(shm::InstanceState::active), std::memory_order_release);
    log_->info("instance {} of '{}' registered (pid {}, uid {})", instance_id(*slot), request.service_type, peer.pid, peer.uid);
  }
  instance_of_handle_[handle.id] = *slot;

  Granted granted;
  control::RegistrationReply reply{instance_id(*slot), *type, entry(*slot).member.load(), routing(*type, granted.fds)};
  granted.body = control::encode_registration_reply(reply);
  return granted;
}

void Coordinator::on_instance_gone(const InstanceHandle& handle) {
  const auto known = instance_of_handle_.find(handle.id);
  if (known == instance_of_handle_.end()) return;
  const std::uint32_t slot = known->second;
  instance_of_handle_.erase(known);
  orphans_.erase(slot);
  log_->info("instance {} (pid {}) is gone; recovering its messages", instance_id(slot), handle.pid);
  if (!recover(slot)) recovering_.insert(slot);
}

void Coordinator::forget_connections_of(std::uint32_t slot) {
  std::erase_if(instance_of_handle_, [&](const auto& entry) { return entry.second == slot; });
}

bool Coordinator::on_instance_disconnected(const InstanceHandle& handle) {
  const auto known = instance_of_handle_.find(handle.id);
  if (known == instance_of_handle_.end()) return false;
  const std::uint32_t slot = known->second;
  // Acquire pairs with the instance's release store of 0 after its last use of its lanes.
  if (record_of(slot).attached.load(std::memory_order_acquire) == 0) {
    on_instance_gone(handle);  // it left (or never started): its lanes are idle for good
    return false;
  }
  // Still attached and alive: it gave up waiting for a reply, or is dying (a killed process
  // closes its files before its pidfd reports the exit, so this is the common case of a
  // kill, not a warning). Recovering now would hand its lanes to another process while it
  // may still use them.
  log_->info(
      "instance {} (pid {}) closed its connection while attached; keeping its slot until it reconnects "
      "or exits",
      slot, handle.pid);
  orphans_.insert(slot);
  return true;
}

bool Coordinator::recover(std::uint32_t slot) {
  shm::InstanceEntry& instance = entry(slot);
  instance.state.store(static_cast<std::uint32_t>(shm::InstanceState::recovering), std::memory_order_release);
  const shm::RecoveryReport report = shm::Recovery(*memory_).recover_instance(
      instance.type.load(std::memory_order_relaxed), instance.member.load(std::memory_order_relaxed));
  replies_dropped_ += report.replies_dropped;
  if (report.leases_requeued + report.dead_lettered + report.tombstones + report.chunks_reclaimed +
          report.sends_completed + report.sends_undone + report.reads_resolved + report.replies_dropped >
      0) {
    log_->info(
        "instance {}: {} messages requeued, {} dead-lettered, {} unpublished claims tombstoned, {} half-taken "
        "resolved, {} chunks reclaimed, {} interrupted sends completed and {} undone, {} replies dropped",
        slot, report.leases_requeued, report.dead_lettered, report.tombstones, report.reads_resolved,
        report.chunks_reclaimed, report.sends_completed, report.sends_undone, report.replies_dropped);
  }
  if (report.pending > 0) {
    log_->warn("instance {}: {} messages wait for room in a full queue; retrying", instance_id(slot), report.pending);
    return false;
  }
  // The instance is gone for good: what it counted stays in its type's counters.
  const std::uint16_t type = instance.type.load(std::memory_order_relaxed);
  retired_counts_[type] += counts_of(record_of(slot), type);
  instance.pid.store(0, std::memory_order_relaxed);
  instance.state.store(static_cast<std::uint32_t>(shm::InstanceState::free), std::memory_order_release);
  return true;
}

void Coordinator::on_tick() {
  ++ticks_;
  const std::uint32_t now = shm::DataPlane::now_ms();
  // A keeper that died (killed, say) is replaced at once: the memory must outlive us.
  if (ticks_ % 50 == 0 && (!keeper_ || !keeper_->alive())) {
    if (Result<void> kept = hand_to_keeper(); !kept) {
      log_->error("{}", kept.error().message);
    } else {
      log_->warn("the process keeping the bus's memory had died; handed the memory to a new one");
    }
  }
  if (ticks_ % 5 == 0) {
    const shm::RecoveryReport expired = shm::Recovery(*memory_).reclaim_expired(now);
    if (expired.leases_requeued + expired.dead_lettered > 0) {
      log_->info("lease expiry: {} messages redelivered, {} dead-lettered", expired.leases_requeued,
                 expired.dead_lettered);
    }
  }
  for (auto slot = recovering_.begin(); slot != recovering_.end();) {
    slot = recover(*slot) ? recovering_.erase(slot) : std::next(slot);
  }
  // Once a second: channels wedged by a hostile or broken writer, refusals that grew.
  if (ticks_ % 50 == 25) {
    if (!watch_) watch_.emplace(log_);
    watch_->inspect(*memory_);
  }
  if (metrics_ && ticks_ % 50 == 10) metrics_->publish(figures());
  if (ticks_ % 50 == 40) expire_tails(now);
  if (ticks_ % 25 == 0) {
    for (auto slot = orphans_.begin(); slot != orphans_.end();) {
      const shm::InstanceEntry& instance = entry(*slot);
      if (process_alive(instance.pid.load(), instance.start_time.load())) {
        ++slot;
        continue;
      }
      log_->info("instance {} died before reconnecting; recovering its messages", instance_id(*slot));
      forget_connections_of(*slot);
      if (!recover(*slot)) recovering_.insert(*slot);
      slot = orphans_.erase(slot);
    }
  }
}

void Coordinator::on_reload() {
  // The file is bounded (size, alias expansion: core/config), so loading it costs little
  // whoever wrote it; should the loader still throw (out of memory), the daemon refuses the
  // reload rather than die with every instance's memory grants.
  Result<ApplicationConfig> config = [&]() -> Result<ApplicationConfig> {
    try {
      return load_application_config(options_.config_file);
    } catch (const std::exception& e) {
      return Error{ErrorCode::config_error, options_.config_file.string() + ": cannot be loaded: " + e.what()};
    }
  }();
  if (!config) {
    log_->error("reload refused, keeping the running configuration: {}", config.error().message);
    return;
  }
  BusPlan plan = plan_;
  Result<PlanAdditions> additions = replan(plan, config.value());
  if (!additions) {
    log_->error("reload refused, keeping the running configuration: {}", additions.error().message);
    return;
  }
  // Nothing of the new configuration may stay if a later step refuses it: the running
  // policies come back with the running plan, never the new ones beside the old types.
  std::map<std::string, PeerPolicy> previous_policies = policies_;
  if (Result<void> policies = load_policies(config.value()); !policies) {
    log_->error("reload refused, keeping the running configuration: {}", policies.error().message);
    return;
  }
  const BusPlan previous = std::exchange(plan_, std::move(plan));
  if (Result<void> laid_out = lay_out(additions.value()); !laid_out) {
    plan_ = previous;
    policies_ = std::move(previous_policies);
    log_->error("reload refused, keeping the running configuration: {}", laid_out.error().message);
    return;
  }
  config_ = std::move(config).value();
  const std::uint64_t generation =
      memory_->directory().header().routing_generation.fetch_add(1, std::memory_order_acq_rel) + 1;
  log_->info("configuration reloaded: {} service types, routing generation {}", config_.services.size(), generation);
}

Result<Granted> Coordinator::on_command(const std::string& name, const control::JsonText& args,
                                        const PeerCredentials& peer) {
  if (name == "routing") {
    // A registered instance asking (its slot in args, its pid matching) gets its type's
    // memory again, the links a reload added among it; anyone else the routing alone.
    std::optional<std::uint16_t> type;
    const rapidjson::Document request = args.document();
    if (request.IsObject() && request.HasMember("instance") && request["instance"].IsUint()) {
      const std::uint32_t slot = request["instance"].GetUint() - 1;  // 0 wraps: no slot
      if (slot < memory_->registry()->instance_slots() && entry(slot).pid.load() == peer.pid &&
          entry(slot).state.load() == static_cast<std::uint32_t>(shm::InstanceState::active)) {
        type = entry(slot).type.load();
      }
    }
    Granted granted;
    granted.body = control::encode_routing_reply(routing(type, granted.fds));
    return granted;
  }
  if (name == "dlq") {
    Result<control::JsonText> listed = dead_letters(args, peer);
    if (!listed) return listed.error();
    return Granted{std::move(listed).value(), {}};
  }
  if (name == "tail") return attach_tail(args, peer);
  return Error{ErrorCode::refused, "unknown command '" + name + "' (known: routing, dlq, tail)"};
}

Result<Granted> Coordinator::attach_tail(const control::JsonText& args, const PeerCredentials& peer) {
  const rapidjson::Document request = args.document();
  if (!request.IsObject()) {
    return Error{ErrorCode::refused, "tail needs an object: {\"types\": [...]} or {\"renew\": true}"};
  }
  const std::uint32_t deadline = shm::DataPlane::now_ms() + kTailLeaseMs;
  if (request.HasMember("renew") && request["renew"].IsBool() && request["renew"].GetBool()) {
    // Only an attached tail renews: a renewal grants nothing, so it needs no policy, but it
    // must not start the observation for a process that was never allowed to attach.
    const auto tail = tails_.find(peer.pid);
    if (tail == tails_.end()) {
      return Error{ErrorCode::refused,
                   "no tail of pid " + std::to_string(peer.pid) + " is attached (its lease ran out); attach again"};
    }
    tail->second = deadline;
    return Granted{JsonObject().set("renewed", true).text(), {}};
  }
  // A trace holds what each type received, payloads included: a tail reads the trace of the
  // types the peer may run (the dlq's rule), all of them unless it names some.
  std::vector<std::string> named;
  if (request.HasMember("types") && request["types"].IsArray()) {
    for (const rapidjson::Value& type : request["types"].GetArray()) {
      if (type.IsString()) named.emplace_back(type.GetString());
    }
  }
  for (const std::string& type_name : named) {
    if (!plan_.type_index(type_name)) return Error{ErrorCode::refused, "unknown service type '" + type_name + "'"};
  }
  std::vector<std::uint16_t> granted_types;
  for (const auto& [type_name, index] : plan_.types) {
    const bool wanted = named.empty() || std::find(named.begin(), named.end(), type_name) != named.end();
    if (!wanted) continue;
    const Result<void> allowed = may_run(peer, type_name);
    if (allowed) {
      granted_types.push_back(index);
    } else if (!named.empty()) {
      log_->warn("refused a tail of '{}' to pid {}: {}", type_name, peer.pid, allowed.error().message);
      return Error{ErrorCode::permission_denied,
                   "cannot trace the deliveries to service type '" + type_name + "': " + allowed.error().message};
    }
  }
  if (granted_types.empty()) {
    log_->warn("refused a tail to pid {} (uid {}): no service type lets it run", peer.pid, peer.uid);
    return Error{ErrorCode::permission_denied,
                 "no service type of this bus lets uid " + std::to_string(peer.uid) +
                     " run it, so none may be traced by it; ask the bus owner to add you to allowed-users"};
  }
  // The routing (type names and indices) with the directory and each type's memory,
  // read-only: the tail reads the trace rings and can change nothing.
  Granted granted;
  control::RoutingReply routing = this->routing(std::nullopt, granted.fds);
  const auto grant = [&](shm::RegionKind kind, std::uint32_t index) {
    const shm::Region* region = memory_->region(kind, index);
    if (region == nullptr) return;
    routing.memory.push_back({std::string(shm::to_string(kind)), index, false});
    granted.fds.push_back(region->read_only_fd());
  };
  grant(shm::RegionKind::directory, 0);
  for (const std::uint16_t type : granted_types) grant(shm::RegionKind::tenant, type);
  granted.body = control::encode_routing_reply(routing);
  const bool first = tails_.empty();
  tails_[peer.pid] = deadline;
  log_->info("tail attached: pid {} traces {} service types", peer.pid, granted_types.size());
  if (first) update_observers();
  return granted;
}

void Coordinator::expire_tails(std::uint32_t now) {
  const bool watched = !tails_.empty();
  for (auto tail = tails_.begin(); tail != tails_.end();) {
    if (static_cast<std::int32_t>(now - tail->second) < 0) {
      ++tail;
      continue;
    }
    log_->info("tail of pid {} detached (its lease ran out)", tail->first);
    tail = tails_.erase(tail);
  }
  if (watched && tails_.empty()) {
    log_->info("no tail attached any more: instances stop tracing");
    update_observers();
  }
}

Result<void> Coordinator::may_run(const PeerCredentials& peer, const std::string& type_name) const {
  // A type a reload dropped has no policy any more: what is left of it is the owner's (and
  // root's).
  const auto policy = policies_.find(type_name);
  return policy != policies_.end() ? policy->second.check(peer, type_name)
                                   : PeerPolicy::create({}, {}, ::geteuid()).value().check(peer, type_name);
}

Result<control::JsonText> Coordinator::dead_letters(const control::JsonText& args, const PeerCredentials& peer) {
  const rapidjson::Document request = args.document();
  if (!request.IsObject() || !request.HasMember("type") || !request["type"].IsString()) {
    return Error{ErrorCode::refused, "dlq needs {\"type\": \"<service type>\"}"};
  }
  const std::string type_name = request["type"].GetString();
  const std::optional<std::uint16_t> type = plan_.type_index(type_name);
  if (!type) return Error{ErrorCode::refused, "unknown service type '" + type_name + "'"};
  const bool requeue = request.HasMember("requeue") && request["requeue"].IsBool() && request["requeue"].GetBool();
  // A type's dead letters are messages sent to it: only who may run the type may read them
  // (their payloads) or put them back in its queue.
  const Result<void> allowed = may_run(peer, type_name);
  if (!allowed) {
    log_->warn("refused dlq {} of '{}' to pid {}: {}", requeue ? "requeue" : "list", type_name, peer.pid,
               allowed.error().message);
    return Error{ErrorCode::permission_denied, std::string("cannot ") + (requeue ? "requeue" : "list") +
                                                   " the dead letters of service type '" + type_name +
                                                   "': " + allowed.error().message};
  }
  shm::Tenant& tenant = *memory_->tenant(*type);
  shm::DataPlane plane(*memory_, *type, tenant.daemon_instance());
  JsonObject reply;
  if (requeue) {
    std::uint64_t requeued = 0;
    shm::LaneCursor taker{plane.lane(shm::kCommandLane)};
    shm::LaneCursor mover{plane.lane(shm::kFirstSendLane)};
    // Only what is there now: a consumer that rejects at once sends messages straight back,
    // and the loop must not chase them.
    const std::uint64_t waiting = tenant.dead_letters().depth();
    while (requeued < waiting) {
      const shm::TakeOutcome taken = plane.take_dead_letter(taker, shm::DataPlane::now_ms());
      if (taken.status != shm::TakeOutcomeStatus::ok) break;
      if (plane.requeue(taken.delivery.lease, mover) != shm::LeaseStatus::ok) {
        plane.reject(taken.delivery.lease, mover);
        break;  // the retry ring is full: the rest stays dead-lettered
      }
      ++requeued;
    }
    log_->info("requeued {} dead letters of '{}'", requeued, type_name);
    return reply.set("requeued", requeued).text();
  }
  Value messages(rapidjson::kArrayType);
  tenant.dead_letters().for_each_full([&](shm::MessageHandle handle) {
    shm::Link* link = memory_->link(handle.link());
    if (link == nullptr || link->receiver() != *type) return;
    const shm::ChunkView view = link->pool().read(handle);
    if (!view.valid) return;
    const Result<EnvelopedMessage> decoded = decode_enveloped(view.payload);
    if (!decoded) return;
    const MessageView& message = decoded.value().message;
    Value entry(rapidjson::kObjectType);
    auto& allocator = reply.allocator();
    entry.AddMember("name", Value(std::string(message.name).c_str(), allocator), allocator);
    // As text, so the version is exactly the sender's whatever parses the reply.
    entry.AddMember("version", Value(version_text(message.version).c_str(), allocator), allocator);
    entry.AddMember("id", Value(message.id.to_string().c_str(), allocator), allocator);
    entry.AddMember("request_id", Value(message.request_id.to_string().c_str(), allocator), allocator);
    // The sender is the link it came by, whatever the message says.
    entry.AddMember("sender", Value(std::string(memory_->directory().type_name(link->sender())).c_str(), allocator),
                    allocator);
    entry.AddMember("payload", Value(std::string(message.payload).c_str(), allocator), allocator);
    messages.PushBack(entry, allocator);
  });
  return reply.set("type", type_name).set("messages", std::move(messages)).text();
}

MessageCounts Coordinator::counts_of(const shm::InstanceRecord& record, std::uint16_t type) const {
  MessageCounts counts;
  counts.sent = record.sent.load(std::memory_order_relaxed);
  counts.delivered = record.delivered.load(std::memory_order_relaxed);
  counts.acked = record.acked.load(std::memory_order_relaxed);
  counts.redelivered = record.redelivered.load(std::memory_order_relaxed);
  for (std::size_t bucket = 0; bucket < shm::kDelayBuckets; ++bucket) {
    counts.delays.buckets[bucket] = record.delays[bucket].load(std::memory_order_relaxed);
    counts.handler_times.buckets[bucket] = record.handler_times[bucket].load(std::memory_order_relaxed);
  }
  counts.delays.sum_ns = record.delay_ns_sum.load(std::memory_order_relaxed);
  counts.handler_times.sum_ns = record.handler_ns_sum.load(std::memory_order_relaxed);
  // A hash none of the type's sends has (a hostile instance's) counts among the others.
  const std::optional<ServiceTypeIndex> configured = config_.find_service(memory_->directory().type_name(type));
  const std::span<const std::string> sends =
      configured ? config_.routing.sends(*configured) : std::span<const std::string>();
  counts.replies_other = record.outcomes.others.load(std::memory_order_relaxed);
  for (const shm::OutcomeCount& entry : record.outcomes.named) {
    const std::uint64_t hash = entry.name_hash.load(std::memory_order_relaxed);
    const std::uint64_t replies = entry.replies.load(std::memory_order_relaxed);
    if (hash == 0 || replies == 0) continue;
    const auto named = std::find_if(sends.begin(), sends.end(),
                                    [&](const std::string& name) { return shm::outcome_hash(name) == hash; });
    if (named != sends.end()) {
      counts.replies_by_outcome[*named] += replies;
    } else {
      counts.replies_other += replies;
    }
  }
  return counts;
}

BusFigures Coordinator::figures() const {
  BusFigures figures;
  figures.bus = options_.bus;
  const Result<std::uint64_t> bytes = shm::BusMemory::total_bytes(plan_.memory);
  figures.memory_bytes = bytes ? bytes.value() : 0;
  figures.replies_dropped = replies_dropped_;
  std::map<std::uint32_t, SizeClassFigures> size_classes;
  for (std::uint32_t index = 0; index < memory_->link_slots(); ++index) {
    shm::Link* link = memory_->link(index);
    if (link == nullptr) continue;
    const shm::ChunkPool& pool = link->pool();
    for (std::uint32_t c = 0; c < pool.class_count(); ++c) {
      const shm::PoolAudit audit = pool.audit_class(c);
      SizeClassFigures& size_class = size_classes[pool.class_chunk_size(c)];
      size_class.size = pool.class_chunk_size(c);
      size_class.chunks += audit.total;
      size_class.free += audit.free;
      size_class.in_use += audit.allocated + audit.published;
    }
  }
  for (const auto& [size, size_class] : size_classes) figures.size_classes.push_back(size_class);

  const std::uint32_t now = shm::DataPlane::now_ms();
  const shm::Registry& registry = *memory_->registry();
  for (const ServiceTypeConfig& config : config_.services) {
    const std::uint16_t index = *plan_.type_index(config.name);
    const shm::Tenant& tenant = *memory_->tenant(index);
    TypeFigures type;
    type.name = config.name;
    if (const auto retired = retired_counts_.find(index); retired != retired_counts_.end()) {
      type.counts = retired->second;
    }
    for (std::uint32_t slot = 0; slot < registry.instance_slots(); ++slot) {
      const shm::InstanceEntry& instance = entry(slot);
      if (instance.state.load() != static_cast<std::uint32_t>(shm::InstanceState::active) ||
          instance.type.load() != index) {
        continue;
      }
      const std::uint32_t member = instance.member.load();
      const shm::InstanceRecord& record = tenant.instance(member);
      InstanceFigures item;
      for (std::uint32_t k = 0; k < tenant.shape().lanes_per_instance; ++k) {
        tenant.leases(tenant.lane_of(member, k)).for_each_held([&](const shm::LeaseEntry&, std::uint64_t) {
          ++item.in_flight;
        });
      }
      const auto silence = static_cast<std::int32_t>(now - static_cast<std::uint32_t>(record.heartbeat_ms.load()));
      item.slot = instance_id(slot);
      item.pid = instance.pid.load();
      item.connected = !orphans_.contains(slot);
      item.hung = silence > options_.hang_after.count();
      item.counts = counts_of(record, index);
      item.refused = record.refused.load();
      type.in_flight += item.in_flight;
      type.counts += item.counts;
      type.instances.push_back(item);
    }
    // Queued: the published messages in every link's type channel towards it (not the
    // tombstones of sends given up), and its retry ring. Refused: what its instances
    // refused, by sender.
    type.queued = tenant.retry_ring().depth();
    type.dead_lettered = tenant.dead_letters().depth();
    for (std::uint32_t link_index = 0; link_index < memory_->link_slots(); ++link_index) {
      shm::Link* link = memory_->link(link_index);
      if (link == nullptr || link->receiver() != index) continue;
      if (link->has_type_channel()) type.queued += link->type_channel().census().full;
      RefusalFigures from_sender{std::string(memory_->directory().type_name(link->sender())), {}};
      for (std::size_t reason = 0; reason < shm::kRefusalReasons; ++reason) {
        from_sender.by_reason[reason] = link->counters().refused[reason].load(std::memory_order_relaxed);
      }
      type.refused += from_sender.total();
      if (from_sender.total() > 0) type.refused_from.push_back(std::move(from_sender));
    }
    figures.types.push_back(std::move(type));
  }
  return figures;
}

Result<control::JsonText> Coordinator::on_status() {
  const BusFigures figures = this->figures();
  JsonObject reply;
  auto& allocator = reply.allocator();
  Value pool(rapidjson::kObjectType);
  std::uint64_t chunks = 0, free = 0, in_use = 0;
  Value size_classes(rapidjson::kArrayType);
  for (const SizeClassFigures& size_class : figures.size_classes) {
    chunks += size_class.chunks;
    free += size_class.free;
    in_use += size_class.in_use;
    Value item(rapidjson::kObjectType);
    item.AddMember("size", Value(size_class.size), allocator);
    item.AddMember("chunks", Value(size_class.chunks), allocator);
    item.AddMember("free", Value(size_class.free), allocator);
    item.AddMember("in_use", Value(size_class.in_use), allocator);
    size_classes.PushBack(item, allocator);
  }
  pool.AddMember("chunks", Value(chunks), allocator);
  pool.AddMember("free", Value(free), allocator);
  pool.AddMember("in_use", Value(in_use), allocator);
  pool.AddMember("size_classes", size_classes, allocator);

  const auto add_counts = [&](Value& item, const MessageCounts& counts) {
    item.AddMember("sent", Value(counts.sent), allocator);
    item.AddMember("delivered", Value(counts.delivered), allocator);
    item.AddMember("acked", Value(counts.acked), allocator);
    item.AddMember("redelivered", Value(counts.redelivered), allocator);
  };
  Value types(rapidjson::kArrayType);
  for (const TypeFigures& type : figures.types) {
    Value instances(rapidjson::kArrayType);
    for (const InstanceFigures& instance : type.instances) {
      Value item(rapidjson::kObjectType);
      item.AddMember("slot", Value(instance.slot), allocator);
      item.AddMember("pid", Value(instance.pid), allocator);
      item.AddMember("connected", Value(instance.connected), allocator);
      item.AddMember("hung", Value(instance.hung), allocator);
      item.AddMember("in_flight", Value(instance.in_flight), allocator);
      add_counts(item, instance.counts);
      item.AddMember("refused", Value(instance.refused), allocator);
      instances.PushBack(item, allocator);
    }
    // By sender in all, and by sender and reason (the reasons above 0).
    Value refused_from(rapidjson::kObjectType), refusals(rapidjson::kObjectType);
    for (const RefusalFigures& from : type.refused_from) {
      refused_from.AddMember(Value(from.sender.c_str(), allocator), Value(from.total()), allocator);
      Value by_reason(rapidjson::kObjectType);
      for (std::size_t reason = 0; reason < shm::kRefusalReasons; ++reason) {
        if (from.by_reason[reason] == 0) continue;
        const std::string_view name = shm::refusal_reason_name(static_cast<shm::RefusalReason>(reason));
        by_reason.AddMember(Value(name.data(), static_cast<rapidjson::SizeType>(name.size()), allocator),
                            Value(from.by_reason[reason]), allocator);
      }
      refusals.AddMember(Value(from.sender.c_str(), allocator), by_reason, allocator);
    }
    Value item(rapidjson::kObjectType);
    item.AddMember("name", Value(type.name.c_str(), allocator), allocator);
    item.AddMember("queued", Value(type.queued), allocator);
    item.AddMember("in_flight", Value(type.in_flight), allocator);
    add_counts(item, type.counts);
    item.AddMember("dead_lettered", Value(type.dead_lettered), allocator);
    // Upper bounds of the buckets: what half and 99 % of the stamped deliveries since the
    // daemon started waited less than, or took less than in their handler; null past the
    // last bound.
    const auto quantiles = [&](const DelayFigures& durations) {
      Value summary(rapidjson::kObjectType);
      summary.AddMember("samples", Value(durations.samples()), allocator);
      for (const auto& [key, q] : {std::pair{"p50_ns", 0.5}, std::pair{"p99_ns", 0.99}}) {
        const std::optional<std::uint64_t> bound = durations.quantile_bound_ns(q);
        summary.AddMember(Value(key, allocator), bound ? Value(*bound) : Value(rapidjson::kNullType), allocator);
      }
      return summary;
    };
    item.AddMember("queueing_delay", quantiles(type.counts.delays), allocator);
    item.AddMember("handler_time", quantiles(type.counts.handler_times), allocator);
    Value replies(rapidjson::kObjectType);
    for (const auto& [outcome, count] : type.counts.replies_by_outcome) {
      replies.AddMember(Value(outcome.c_str(), allocator), Value(count), allocator);
    }
    item.AddMember("replies_by_outcome", replies, allocator);
    item.AddMember("replies_other", Value(type.counts.replies_other), allocator);
    item.AddMember("refused", Value(type.refused), allocator);
    item.AddMember("refused_from", refused_from, allocator);
    item.AddMember("refusals", refusals, allocator);
    item.AddMember("instances", instances, allocator);
    types.PushBack(item, allocator);
  }
  reply.set("bus", figures.bus)
      .set("memory_bytes", figures.memory_bytes)
      .set("pool", std::move(pool))
      .set("service_types", std::move(types))
      .set("dead_lettered_replies", figures.replies_dropped);
  if (metrics_) reply.set("metrics", metrics_->address());
  return reply.text();
}

}  // namespace exobus::daemon
