#include "coordinator.hpp"

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <functional>

#include "bus_access.hpp"
#include "memory_keeper.hpp"
#include "exobus/control/registration.hpp"
#include "exobus/daemon/peer_credentials.hpp"
#include "exobus/envelope.hpp"
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
  Result<ApplicationConfig> config = load_application_config(coordinator->options_.config_file);
  if (!config) return config.error();
  coordinator->config_ = std::move(config).value();
  if (Result<void> policies = coordinator->load_policies(coordinator->config_); !policies) {
    return policies.error();
  }
  Result<BusPlan> plan = plan_bus(coordinator->config_);
  if (!plan) return plan.error();
  coordinator->plan_ = std::move(plan).value();
  if (Result<void> attached = coordinator->attach_or_create(); !attached) return attached.error();
  return coordinator;
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
  const Result<shm::Layout> wanted = shm::compute_layout(plan_.layout);
  if (!wanted) return Error{ErrorCode::config_error, "bus layout: " + wanted.error().message};

  keeper_ = MemoryKeeper::connect(options_.paths);
  if (keeper_) {
    Result<std::vector<control::UniqueFd>> kept = keeper_->take_back();
    if (!kept) return kept.error();
    if (!kept.value().empty()) {
      Result<std::unique_ptr<shm::Segment>> mapped = shm::Segment::map(kept.value().front().release());
      if (!mapped) {
        log_->warn("the memory the keeper held is not a segment of this release ({}); laying the bus out anew",
                   mapped.error().message);
      } else if (mapped.value()->layout().total_size != wanted.value().total_size ||
                 mapped.value()->ring_count() != wanted.value().rings.size()) {
        if (!options_.reset) {
          return Error{ErrorCode::segment_error,
                       "the bus's memory was laid out for another configuration; stop the bus's services and start "
                       "exobusd with --reset to lay it out anew (queued messages are discarded)"};
        }
        log_->warn("--reset: discarding the bus's memory and the messages it holds");
      } else if (options_.reset) {
        log_->warn("--reset: discarding the bus's memory and the messages it holds");
      } else {
        segment_ = std::move(mapped).value();
        plane_ = std::make_unique<shm::DataPlane>(*segment_);
        lane_ = {plane_->lane_of(0, 0)};
        // Our previous incarnation may have died mid-operation: recover it first.
        const shm::RecoveryReport report = shm::Recovery(*plane_, lane_).recover_instance(0);
        log_->info("re-attached to the bus's memory ({} tombstones, {} leases requeued from the previous daemon)",
                   report.tombstones, report.leases_requeued);
        adopt_existing_instances();
        return {};
      }
    }
  }

  Result<std::unique_ptr<shm::Segment>> created = shm::Segment::create("exobus." + options_.bus + ".data", plan_.layout);
  if (!created) return created.error();
  segment_ = std::move(created).value();
  segment_->header().routing_generation.store(1, std::memory_order_release);
  plane_ = std::make_unique<shm::DataPlane>(*segment_);
  lane_ = {plane_->lane_of(0, 0)};
  if (Result<void> kept = hand_to_keeper(); !kept) return kept.error();
  log_->info("created the bus's memory ({} bytes, {} rings, {} instance slots)", segment_->layout().total_size, segment_->ring_count(), plan_.instance_slots);
  return {};
}

Result<void> Coordinator::hand_to_keeper() {
  if (!keeper_ || !keeper_->alive()) {
    Result<MemoryKeeper> started = MemoryKeeper::start(options_.paths, options_.program);
    if (!started) return started.error();
    keeper_ = std::move(started).value();
  }
  const int fds[] = {segment_->fd()};
  return keeper_->keep(fds);
}

void Coordinator::release_memory() {
  if (keeper_) keeper_->release();
  keeper_.reset();
}

void Coordinator::adopt_existing_instances() {
  for (std::uint32_t slot = 1; slot < plan_.instance_slots; ++slot) {
    shm::InstanceSlot& instance = segment_->instance(slot);
    if (instance.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(shm::InstanceState::free)) {
      continue;
    }
    const pid_t pid = instance.pid.load(std::memory_order_relaxed);
    if (process_alive(pid, instance.start_time.load(std::memory_order_relaxed))) {
      log_->info("instance {} (pid {}) is alive; waiting for it to reconnect", slot, pid);
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
  callbacks.on_command = [this](const auto& name, const auto& args, const auto&) { return on_command(name, args); };
  callbacks.on_reload = [this] { on_reload(); };
  callbacks.on_tick = [this] { on_tick(); };
  return callbacks;
}

control::RoutingReply Coordinator::routing() const {
  control::RoutingReply routing;
  routing.config_file = std::filesystem::absolute(options_.config_file);
  routing.type_rings.insert(plan_.type_rings.begin(), plan_.type_rings.end());
  routing.routing_generation = segment_->header().routing_generation.load(std::memory_order_acquire);
  return routing;
}

Result<Granted> Coordinator::on_register(const control::RegisterRequest& request, const PeerCredentials& peer,
                                                   const InstanceHandle& handle) {
  const auto type_ring = plan_.type_rings.find(request.service_type);
  if (!config_.find_service(request.service_type) || type_ring == plan_.type_rings.end()) {
    return Error{ErrorCode::config_error, "unknown service type '" + request.service_type +
                                              "'; declare it under services: in " + options_.config_file.string()};
  }
  if (Result<void> allowed = policies_.at(request.service_type).check(peer, request.service_type); !allowed) {
    log_->warn("refused pid {}: {}", peer.pid, allowed.error().message);
    return allowed.error();
  }
  const std::uint64_t nonce_hash = std::hash<std::string>{}(request.instance_nonce);
  std::optional<std::uint32_t> slot;
  for (const std::uint32_t orphan : orphans_) {
    const shm::InstanceSlot& instance = segment_->instance(orphan);
    if (instance.pid.load() == peer.pid && instance.start_time.load() == handle.start_time &&
        instance.nonce_hash.load() == nonce_hash) {
      slot = orphan;
      orphans_.erase(orphan);
      forget_connections_of(orphan);  // its previous connection no longer speaks for it
      log_->info("instance {} of '{}' (pid {}) reconnected", orphan, request.service_type, peer.pid);
      break;
    }
  }
  if (!slot) {
    for (std::uint32_t candidate = 1; candidate < plan_.instance_slots; ++candidate) {
      if (segment_->instance(candidate).state.load(std::memory_order_acquire) ==
          static_cast<std::uint32_t>(shm::InstanceState::free)) {
        slot = candidate;
        break;
      }
    }
    if (!slot) {
      return Error{ErrorCode::config_error, "the bus has no free instance slot (max-instances " +
                                                std::to_string(plan_.instance_slots - 1) +
                                                "); raise bus.max-instances in " + options_.config_file.string()};
    }
    reroute_inbox(*slot);  // late replies to the slot's previous instance
    shm::InstanceSlot& instance = segment_->instance(*slot);
    instance.pid.store(peer.pid, std::memory_order_relaxed);
    instance.start_time.store(handle.start_time, std::memory_order_relaxed);
    instance.home_ring.store(type_ring->second, std::memory_order_relaxed);
    instance.inbox_ring.store(plan_.inbox_ring(*slot), std::memory_order_relaxed);
    instance.nonce_hash.store(nonce_hash, std::memory_order_relaxed);
    instance.heartbeat_ms.store(shm::DataPlane::now_ms(), std::memory_order_relaxed);
    for (auto* counter : {&instance.sent, &instance.delivered, &instance.acked, &instance.redelivered}) {
      counter->store(0, std::memory_order_relaxed);
    }
    instance.attached.store(0, std::memory_order_relaxed);
    instance.state.store(static_cast<std::uint32_t>(shm::InstanceState::active), std::memory_order_release);
    log_->info("instance {} of '{}' registered (pid {}, uid {})", *slot, request.service_type, peer.pid, peer.uid);
  }
  instance_of_handle_[handle.id] = *slot;

  return Granted{control::encode_registration_reply(
                     {*slot, {{"data", true}}, type_ring->second, plan_.inbox_ring(*slot), routing()}),
                 {segment_->fd()}};
}

void Coordinator::on_instance_gone(const InstanceHandle& handle) {
  const auto known = instance_of_handle_.find(handle.id);
  if (known == instance_of_handle_.end()) return;
  const std::uint32_t slot = known->second;
  instance_of_handle_.erase(known);
  orphans_.erase(slot);
  log_->info("instance {} (pid {}) is gone; recovering its messages", slot, handle.pid);
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
  if (segment_->instance(slot).attached.load(std::memory_order_acquire) == 0) {
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
  shm::InstanceSlot& instance = segment_->instance(slot);
  instance.state.store(static_cast<std::uint32_t>(shm::InstanceState::recovering), std::memory_order_release);
  const shm::RecoveryReport report = shm::Recovery(*plane_, lane_).recover_instance(slot);
  reroute_inbox(slot);
  if (report.leases_requeued + report.dead_lettered + report.tombstones + report.chunks_reclaimed +
          report.undelivered_targets + report.reads_resolved >
      0) {
    log_->info(
        "instance {}: {} messages requeued, {} dead-lettered, {} unpublished claims tombstoned, "
        "{} half-taken resolved, {} chunks reclaimed, {} undelivered fan-out targets released",
        slot, report.leases_requeued, report.dead_lettered, report.tombstones, report.reads_resolved,
        report.chunks_reclaimed, report.undelivered_targets);
  }
  if (report.pending > 0) {
    log_->warn("instance {}: {} messages wait for room in a full queue; retrying", slot, report.pending);
    return false;
  }
  instance.pid.store(0, std::memory_order_relaxed);
  instance.state.store(static_cast<std::uint32_t>(shm::InstanceState::free), std::memory_order_release);
  return true;
}

void Coordinator::reroute_inbox(std::uint32_t slot) {
  const std::uint16_t inbox = plan_.inbox_ring(slot);
  for (;;) {
    const shm::TakeOutcome taken = plane_->take(lane_, inbox, shm::DataPlane::now_ms());
    if (taken.status != shm::TakeOutcomeStatus::ok) return;
    const Result<EnvelopedMessage> decoded = decode_enveloped(taken.delivery.payload);
    std::vector<std::uint16_t> rings;
    if (decoded) {
      for (const ServiceTypeIndex type : config_.routing.receivers(decoded.value().message.name)) {
        rings.push_back(plan_.type_rings.at(config_.services[type].name));
      }
    }
    // A reply whose requester is gone goes to the types subscribed to its name, if any.
    if (rings.empty() || plane_->send(lane_, taken.delivery.payload, rings).status != shm::SendStatus::ok) {
      ++dead_lettered_replies_;
      log_->warn("reply in the inbox of instance {} has no receiver left; dropped and counted", slot);
    }
    plane_->ack(taken.delivery.lease);
  }
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
    const shm::RecoveryReport expired = shm::Recovery(*plane_, lane_).reclaim_expired(now);
    if (expired.leases_requeued + expired.dead_lettered > 0) {
      log_->info("lease expiry: {} messages redelivered, {} dead-lettered", expired.leases_requeued,
                 expired.dead_lettered);
    }
  }
  for (auto slot = recovering_.begin(); slot != recovering_.end();) {
    slot = recover(*slot) ? recovering_.erase(slot) : std::next(slot);
  }
  if (ticks_ % 25 == 0) {
    for (auto slot = orphans_.begin(); slot != orphans_.end();) {
      const shm::InstanceSlot& instance = segment_->instance(*slot);
      if (process_alive(instance.pid.load(), instance.start_time.load())) {
        ++slot;
        continue;
      }
      log_->info("instance {} died before reconnecting; recovering its messages", *slot);
      forget_connections_of(*slot);
      if (!recover(*slot)) recovering_.insert(*slot);
      slot = orphans_.erase(slot);
    }
  }
}

void Coordinator::on_reload() {
  Result<ApplicationConfig> config = load_application_config(options_.config_file);
  if (!config) {
    log_->error("reload refused, keeping the running configuration: {}", config.error().message);
    return;
  }
  BusPlan plan = plan_;
  if (Result<void> replanned = replan_types(plan, config.value()); !replanned) {
    log_->error("reload refused, keeping the running configuration: {}", replanned.error().message);
    return;
  }
  if (Result<void> policies = load_policies(config.value()); !policies) {
    log_->error("reload refused, keeping the running configuration: {}", policies.error().message);
    return;
  }
  config_ = std::move(config).value();
  plan_ = std::move(plan);
  const std::uint64_t generation = segment_->header().routing_generation.fetch_add(1, std::memory_order_acq_rel) + 1;
  log_->info("configuration reloaded: {} service types, routing generation {}", config_.services.size(), generation);
}

Result<control::JsonText> Coordinator::on_command(const std::string& name, const control::JsonText& args) {
  if (name == "routing") return control::encode_routing_reply(routing());
  if (name == "dlq") return dead_letters(args);
  return Error{ErrorCode::refused, "unknown command '" + name + "' (known: routing, dlq)"};
}

Result<control::JsonText> Coordinator::dead_letters(const control::JsonText& args) {
  const rapidjson::Document request = args.document();
  if (!request.IsObject() || !request.HasMember("type") || !request["type"].IsString()) {
    return Error{ErrorCode::refused, "dlq needs {\"type\": \"<service type>\"}"};
  }
  const std::string type = request["type"].GetString();
  const auto ring = plan_.type_rings.find(type);
  if (ring == plan_.type_rings.end()) {
    return Error{ErrorCode::refused, "unknown service type '" + type + "'"};
  }
  const std::uint16_t dead_letter_ring = plan_.dead_letter_ring(ring->second);
  JsonObject reply;
  if (request.HasMember("requeue") && request["requeue"].IsBool() && request["requeue"].GetBool()) {
    std::uint64_t requeued = 0;
    // Only what is there now: a consumer that rejects at once sends messages straight back,
    // and the loop must not chase them.
    const std::uint64_t waiting = plane_->ring(dead_letter_ring).depth();
    while (requeued < waiting) {
      const shm::TakeOutcome taken = plane_->take(lane_, dead_letter_ring, shm::DataPlane::now_ms());
      if (taken.status != shm::TakeOutcomeStatus::ok) break;
      if (plane_->move(taken.delivery.lease, ring->second, lane_) != shm::LeaseStatus::ok) {
        plane_->release(taken.delivery.lease, lane_);
        break;  // the service type's queue is full: the rest stays dead-lettered
      }
      ++requeued;
    }
    log_->info("requeued {} dead letters of '{}'", requeued, type);
    return reply.set("requeued", requeued).text();
  }
  Value messages(rapidjson::kArrayType);
  const shm::ChunkPool pool = segment_->pool();
  plane_->ring(dead_letter_ring).for_each_full([&](shm::MessageHandle handle) {
    const shm::ChunkView view = pool.read(handle);
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
    entry.AddMember("sender", Value(std::string(message.sender).c_str(), allocator), allocator);
    entry.AddMember("payload", Value(std::string(message.payload).c_str(), allocator), allocator);
    messages.PushBack(entry, allocator);
  });
  return reply.set("type", type).set("messages", std::move(messages)).text();
}

Result<control::JsonText> Coordinator::on_status() {
  JsonObject reply;
  auto& allocator = reply.allocator();
  const shm::BusAudit audit = plane_->audit();
  Value pool(rapidjson::kObjectType);
  pool.AddMember("chunks", Value(audit.pool.total), allocator);
  pool.AddMember("free", Value(audit.pool.free), allocator);
  pool.AddMember("in_use", Value(audit.pool.allocated + audit.pool.published), allocator);

  const std::uint32_t now = shm::DataPlane::now_ms();
  Value types(rapidjson::kArrayType);
  for (const ServiceTypeConfig& type : config_.services) {
    const std::uint16_t ring = plan_.type_rings.at(type.name);
    Value instances(rapidjson::kArrayType);
    std::uint64_t in_flight = 0, delivered = 0, acked = 0, redelivered = 0;
    for (std::uint32_t slot = 1; slot < plan_.instance_slots; ++slot) {
      const shm::InstanceSlot& instance = segment_->instance(slot);
      if (instance.state.load() != static_cast<std::uint32_t>(shm::InstanceState::active) ||
          instance.home_ring.load() != ring) {
        continue;
      }
      std::uint64_t leased = 0;
      for (std::uint32_t k = 0; k < kLanesPerInstance; ++k) {
        for (const shm::LeaseEntry& lease : segment_->leases(plane_->lane_of(slot, k))) {
          const shm::LeaseKind kind = shm::LeaseState::decode(lease.state.load()).kind;
          leased += kind == shm::LeaseKind::active || kind == shm::LeaseKind::reclaiming;
        }
      }
      const auto silence = static_cast<std::int32_t>(now - static_cast<std::uint32_t>(instance.heartbeat_ms.load()));
      Value entry(rapidjson::kObjectType);
      entry.AddMember("slot", Value(slot), allocator);
      entry.AddMember("pid", Value(instance.pid.load()), allocator);
      entry.AddMember("connected", Value(!orphans_.contains(slot)), allocator);
      entry.AddMember("hung", Value(silence > options_.hang_after.count()), allocator);
      entry.AddMember("in_flight", Value(leased), allocator);
      entry.AddMember("sent", Value(static_cast<std::uint64_t>(instance.sent.load())), allocator);
      entry.AddMember("delivered", Value(static_cast<std::uint64_t>(instance.delivered.load())), allocator);
      entry.AddMember("acked", Value(static_cast<std::uint64_t>(instance.acked.load())), allocator);
      entry.AddMember("redelivered", Value(static_cast<std::uint64_t>(instance.redelivered.load())), allocator);
      instances.PushBack(entry, allocator);
      in_flight += leased;
      delivered += instance.delivered.load();
      acked += instance.acked.load();
      redelivered += instance.redelivered.load();
    }
    Value entry(rapidjson::kObjectType);
    entry.AddMember("name", Value(type.name.c_str(), allocator), allocator);
    entry.AddMember("queued", Value(static_cast<std::uint64_t>(plane_->ring(ring).depth())), allocator);
    entry.AddMember("in_flight", Value(in_flight), allocator);
    entry.AddMember("delivered", Value(delivered), allocator);
    entry.AddMember("acked", Value(acked), allocator);
    entry.AddMember("redelivered", Value(redelivered), allocator);
    entry.AddMember("dead_lettered",
                    Value(static_cast<std::uint64_t>(plane_->ring(plan_.dead_letter_ring(ring)).depth())), allocator);
    entry.AddMember("instances", instances, allocator);
    types.PushBack(entry, allocator);
  }
  return reply.set("bus", options_.bus)
      .set("memory_bytes", static_cast<std::uint64_t>(segment_->layout().total_size))
      .set("pool", std::move(pool))
      .set("service_types", std::move(types))
      .set("dead_lettered_replies", dead_lettered_replies_)
      .text();
}

}  // namespace exobus::daemon
