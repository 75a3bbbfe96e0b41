#include "exobus/service.hpp"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <concurrentqueue/blockingconcurrentqueue.h>
#include <cstdio>
#include <mutex>
#include <rapidjson/document.h>
#include <span>
#include <thread>
#include <unordered_map>
#include <utility>

#include "exobus/config.hpp"
#include "exobus/control/control_client.hpp"
#include "exobus/envelope.hpp"
#include "exobus/name_map.hpp"
#include "exobus/payload.hpp"
#include "exobus/shm/data_plane.hpp"
#include "exobus/shm/fault_point.hpp"

namespace exobus {

namespace {

constexpr std::uint16_t kHomeLane = 0;   // takes from the service type's queue
constexpr std::uint16_t kInboxLane = 1;  // takes replies from the instance's inbox
constexpr std::uint16_t kFirstSendLane = 2;

std::string from_environment(const std::string& given, const char* variable) {
  if (!given.empty()) return given;
  const char* value = std::getenv(variable);
  return value == nullptr ? std::string() : std::string(value);
}

// The routing a sender needs, for one configuration generation. Reloads are rare, so old
// states are kept (never freed while the service lives) and the current one is swapped
// in with one atomic pointer: senders never lock.
struct RoutingState {
  // What a send of one of this type's declared names needs, found with one lookup by the
  // name the service uses; RoutingTable::route_send explains a name that is not here.
  struct SendRoute {
    std::string public_name;
    std::vector<std::uint16_t> rings;  // the receiving types' queues; none: replies only
    std::span<const Schema> schemas;
  };
  ApplicationConfig config;
  ServiceTypeIndex type = 0;
  std::vector<std::uint16_t> ring_of_type;  // by the config's type index
  NameMap<SendRoute> send_routes;
  std::uint64_t generation = 0;
};

// Copies a decoded message into `received` under the receiver's own name for it. Assigning
// into existing strings keeps their capacity, so a reused Received allocates nothing.
void fill(Received& received, std::string_view internal_name, const MessageView& view, unsigned deliveries,
          bool copy_payload = true) {
  received.name.assign(internal_name);
  received.version = view.version;
  if (copy_payload) {
    received.payload.assign(view.payload);
  } else {
    received.payload.clear();
  }
  received.id = view.id;
  received.request_id = view.request_id;
  received.response_to = view.response_to;
  received.sender.assign(view.sender);
  received.deliveries = deliveries;
}

// Whose message is being handled on this thread: sends made while handling it carry its
// requestId.
thread_local const Received* current_message = nullptr;

}  // namespace

class ServiceCore {
 public:
  ServiceOptions options;
  control::RuntimePaths paths;
  control::RegisterRequest registration_request;
  std::optional<control::InstanceRegistration> registration;
  bool registration_abandoned = false;  // a restarted daemon did not resume our slot
  std::unique_ptr<shm::Segment> segment;
  std::unique_ptr<shm::DataPlane> plane;
  std::uint32_t instance = 0;
  std::uint16_t home_ring = 0, inbox_ring = 0;
  std::string type_name;

  std::mutex routing_mutex;  // reloads only
  std::vector<std::unique_ptr<RoutingState>> routing_history;
  std::atomic<const RoutingState*> routing{nullptr};

  NameMap<Handler> handlers;
  shm::LaneCursor home_cursor, inbox_cursor;
  shm::LaneCursor send_cursors[shm::kMaxTargets];
  std::atomic<std::uint32_t> free_send_lanes{0};

  // A request awaiting replies. Once its send succeeded, only the reply thread uses or
  // erases the entry (handle_reply, expire_pending_replies), so that thread may call the
  // handler through a reference without holding the lock: senders only insert, and an
  // insert never moves existing entries.
  struct Pending {
    ReplyHandler handler;
    std::chrono::steady_clock::time_point deadline;
  };
  std::mutex pending_mutex;
  std::unordered_map<Uuid, Pending> pending;
  // pending.size(), readable without the lock: the reply thread sleeps while it is 0.
  std::atomic<std::size_t> pending_count{0};

  // Commands taken from the home ring and not yet settled. The lease table of a lane is
  // sized for the largest prefetch of any type, so the type's own prefetch is kept here.
  std::atomic<std::uint32_t> held{0};

  // The receiving thread's Received, handed to each inline delivery and taken back after its
  // handler, so its strings keep their capacity: no allocation per message when handlers
  // run on the receiving thread.
  Received inline_received;
  Reply inbox_reply;                        // likewise for replies, on the reply thread
  std::uint32_t inbox_housekeeping_ms = 0;  // the reply thread's last heartbeat and checks

  std::atomic<bool> running{false};
  std::atomic<bool> detached{false};  // stopped for good: its lanes may belong to another instance
  std::vector<std::thread> threads;
  moodycamel::BlockingConcurrentQueue<std::unique_ptr<Delivery>> work;

  shm::InstanceSlot& slot() const { return segment->instance(instance); }

  Result<void> load_routing(const control::JsonText& reply);
  Result<void> refresh_routing();
  Result<void> send(std::string_view name, std::string_view payload, const Received* replying_to,
                    std::uint16_t reply_ring, std::optional<Pending> pending_reply, bool wait);
  static Error stopped_error() { return Error{ErrorCode::closed, "the service was stopped; connect again to send"}; }
  Result<const RoutingState::SendRoute*> route_for(std::string_view name, bool is_reply);
  static Result<void> check_payload_of(const RoutingState::SendRoute& route, std::string_view payload);
  MessageView message_for(const RoutingState::SendRoute& route, std::string_view payload,
                          const Received* replying_to) const;
  Result<void> fits(const RoutingState::SendRoute& route, std::size_t size) const;
  Error refusal(const shm::SendResult& sent, std::size_t size, bool is_reply) const;
  Result<Loan> loan(std::string_view name, std::size_t payload_size);
  Result<void> send_loan(Loan& loan);
  void abandon_loan(Loan& loan);
  std::uint16_t acquire_send_lane();
  void release_send_lane(std::uint16_t index) { free_send_lanes.fetch_or(1u << index, std::memory_order_release); }

  void receive_loop(std::uint16_t ring, shm::LaneCursor& cursor, bool inbox);
  void idle(shm::ReadyRing& ring, std::uint32_t& idle_rounds, bool inbox);
  void handle_command(const shm::Delivery& delivery);
  void handle_reply(const shm::Delivery& delivery);
  void run_handler(Delivery& delivery, const Handler& handler);
  void expire_pending_replies();
  void watch_daemon();

  Result<void> settle(Delivery& delivery, shm::LeaseStatus (ServiceCore::*how)(const shm::LeaseToken&));
  shm::LeaseStatus ack(const shm::LeaseToken& lease) { return plane->ack(lease); }
  shm::LeaseStatus release(const shm::LeaseToken& lease) {
    return with_lane([&](auto& c) { return plane->release(lease, c); });
  }
  shm::LeaseStatus reject(const shm::LeaseToken& lease) {
    return with_lane([&](auto& c) { return plane->reject(lease, c); });
  }
  shm::LeaseStatus renew(const shm::LeaseToken& lease) { return plane->renew(lease, shm::DataPlane::now_ms()); }
  template <class Body>
  shm::LeaseStatus with_lane(Body body) {
    const std::uint16_t index = acquire_send_lane();
    const shm::LeaseStatus status = body(send_cursors[index]);
    release_send_lane(index);
    return status;
  }

  static std::uint64_t pack(const shm::LeaseToken& lease) {
    return std::uint64_t{lease.lane} << 48 | std::uint64_t{lease.entry} << 24 | lease.generation;
  }
  static shm::LeaseToken unpack(std::uint64_t word) {
    return {static_cast<std::uint16_t>(word >> 48), static_cast<std::uint32_t>(word >> 24) & 0xffffff,
            static_cast<std::uint32_t>(word) & 0xffffff};
  }
};

Result<void> ServiceCore::load_routing(const control::JsonText& reply) {
  const rapidjson::Document document = reply.document();
  if (!document.IsObject() || !document.HasMember("config") || !document["config"].IsString() ||
      !document.HasMember("type_rings") || !document["type_rings"].IsObject()) {
    return Error{ErrorCode::version_mismatch,
                 "the daemon's routing reply lacks config or type_rings; "
                 "run services and exobusd of the same release"};
  }
  Result<ApplicationConfig> config = load_application_config(document["config"].GetString());
  if (!config) return config.error();
  auto state = std::make_unique<RoutingState>();
  state->config = std::move(config).value();
  const std::optional<ServiceTypeIndex> type = state->config.find_service(type_name);
  if (!type) return Error{ErrorCode::config_error, "service type '" + type_name + "' left the configuration"};
  state->type = *type;
  for (const ServiceTypeConfig& service : state->config.services) {
    const auto ring = document["type_rings"].FindMember(service.name.c_str());
    if (ring == document["type_rings"].MemberEnd() || !ring->value.IsUint()) {
      return Error{ErrorCode::config_error, "the daemon has no queue for service type '" + service.name +
                                                "' yet; send exobusd SIGHUP after editing the configuration"};
    }
    state->ring_of_type.push_back(static_cast<std::uint16_t>(ring->value.GetUint()));
  }
  const RoutingTable& table = state->config.routing;
  for (const std::string& public_name : table.sends(state->type)) {
    RoutingState::SendRoute route{public_name, {}, table.schemas(public_name)};
    for (const ServiceTypeIndex receiver : table.receivers(public_name)) {
      route.rings.push_back(state->ring_of_type[receiver]);
    }
    state->send_routes.emplace(std::string(table.to_internal(state->type, public_name)), std::move(route));
  }
  state->generation = document.HasMember("routing_generation") ? document["routing_generation"].GetUint64() : 0;
  std::lock_guard lock(routing_mutex);
  routing.store(state.get(), std::memory_order_release);
  routing_history.push_back(std::move(state));
  return {};
}

Result<void> ServiceCore::refresh_routing() {
  const std::uint64_t generation = segment->header().routing_generation.load(std::memory_order_acquire);
  if (generation == routing.load(std::memory_order_acquire)->generation) return {};
  Result<control::JsonText> reply = control::run_command(paths, "routing", control::JsonText());
  if (!reply) return reply.error();
  return load_routing(reply.value());
}

std::uint16_t ServiceCore::acquire_send_lane() {
  for (;;) {
    std::uint32_t lanes = free_send_lanes.load(std::memory_order_acquire);
    while (lanes != 0) {
      const std::uint32_t index = static_cast<std::uint32_t>(__builtin_ctz(lanes));
      if (free_send_lanes.compare_exchange_weak(lanes, lanes & ~(1u << index), std::memory_order_acquire)) {
        return static_cast<std::uint16_t>(index);
      }
    }
    std::this_thread::yield();  // more sending threads than lanes: wait for one
  }
}

Result<const RoutingState::SendRoute*> ServiceCore::route_for(std::string_view name, bool is_reply) {
  if (detached.load(std::memory_order_relaxed)) return stopped_error();
  if (Result<void> refreshed = refresh_routing(); !refreshed) return refreshed.error();
  const RoutingState& state = *routing.load(std::memory_order_acquire);
  const auto found = state.send_routes.find(name);
  if (found == state.send_routes.end() || (!is_reply && found->second.rings.empty())) {
    Result<RoutingTable::Route> route = state.config.routing.route_send(state.type, name, is_reply);
    return route ? Error{ErrorCode::internal, "no send route for a routable name"} : route.error();
  }
  return &found->second;
}

Result<void> ServiceCore::check_payload_of(const RoutingState::SendRoute& route, std::string_view payload) {
  // A schema checks that the payload is JSON as it validates it.
  if (route.schemas.empty()) return check_payload(payload);
  for (const Schema& schema : route.schemas) {
    if (Result<void> valid = schema.validate(payload); !valid) return valid.error();
  }
  return {};
}

MessageView ServiceCore::message_for(const RoutingState::SendRoute& route, std::string_view payload,
                                     const Received* replying_to) const {
  MessageView message;
  message.name = route.public_name;
  message.payload = payload;
  message.id = Uuid::generate();
  const Received* context = replying_to != nullptr ? replying_to : current_message;
  message.request_id = context != nullptr ? context->request_id : message.id;
  if (replying_to != nullptr) message.response_to = replying_to->id;
  message.sender = type_name;
  return message;
}

Result<void> ServiceCore::fits(const RoutingState::SendRoute& route, std::size_t size) const {
  if (size <= plane->largest_payload()) return {};
  return Error{ErrorCode::payload_too_large, "message '" + route.public_name + "' needs " + std::to_string(size) +
                                                 " bytes; the largest size class holds " +
                                                 std::to_string(plane->largest_payload()) +
                                                 "; raise bus.size-classes in the configuration"};
}

Result<void> ServiceCore::send(std::string_view name, std::string_view payload, const Received* replying_to,
                               std::uint16_t reply_ring, std::optional<Pending> pending_reply, bool wait) {
  const bool is_reply = replying_to != nullptr;
  const Result<const RoutingState::SendRoute*> found = route_for(name, is_reply);
  if (!found) return found.error();
  const RoutingState::SendRoute& route = *found.value();
  if (Result<void> valid = check_payload_of(route, payload); !valid) return valid;

  // Encoded straight from these views into the chunk: no copy of name or payload.
  const MessageView message = message_for(route, payload, replying_to);
  const std::size_t size = enveloped_size(message);
  if (Result<void> fitting = fits(route, size); !fitting) return fitting;
  const std::span<const std::uint16_t> rings =
      is_reply ? std::span<const std::uint16_t>(&reply_ring, 1) : std::span<const std::uint16_t>(route.rings);
  if (pending_reply) {
    std::lock_guard lock(pending_mutex);
    pending.emplace(message.id, std::move(*pending_reply));
    pending_count.store(pending.size(), std::memory_order_relaxed);
  }

  const auto deadline = std::chrono::steady_clock::now() + options.send_timeout;
  const std::uint16_t lane = acquire_send_lane();
  shm::LaneCursor& cursor = send_cursors[lane];
  shm::SendResult sent{shm::SendStatus::pool_exhausted};
  for (;;) {
    const shm::Allocation allocation = plane->allocate(cursor, size);
    if (allocation.status == shm::PoolStatus::ok) {
      const Result<std::size_t> encoded =
          encode_enveloped({inbox_ring, static_cast<std::uint16_t>(instance)}, message, allocation.buffer);
      if (!encoded) {
        plane->abandon(cursor, allocation.handle);
        release_send_lane(lane);
        return encoded.error();
      }
      sent = plane->publish(cursor, allocation.handle, static_cast<std::uint32_t>(encoded.value()), rings);
    }
    const bool retry =
        (allocation.status == shm::PoolStatus::exhausted || sent.status == shm::SendStatus::queue_full) && wait &&
        std::chrono::steady_clock::now() < deadline;
    if (!retry) break;
    std::this_thread::yield();
  }
  release_send_lane(lane);
  if (sent.status == shm::SendStatus::ok) {
    slot().sent.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  if (pending_reply) {
    std::lock_guard lock(pending_mutex);
    pending.erase(message.id);
    pending_count.store(pending.size(), std::memory_order_relaxed);
  }
  return refusal(sent, size, is_reply);
}

Error ServiceCore::refusal(const shm::SendResult& sent, std::size_t size, bool is_reply) const {
  if (sent.status == shm::SendStatus::pool_exhausted) {
    return Error{ErrorCode::queue_full, "no free message buffer of " + std::to_string(size) +
                                            " bytes on the bus; raise the size class counts in the configuration or "
                                            "let receivers catch up"};
  }
  if (sent.status == shm::SendStatus::queue_full) {
    const RoutingState& state = *routing.load(std::memory_order_acquire);
    std::string target = is_reply ? "the requester's reply inbox" : "a receiving service type";
    for (std::size_t t = 0; !is_reply && t < state.ring_of_type.size(); ++t) {
      if (state.ring_of_type[t] == sent.failed_ring) target = "service type '" + state.config.services[t].name + "'";
    }
    return Error{ErrorCode::queue_full,
                 "queue for " + target + " is full (" + std::to_string(plane->ring(sent.failed_ring).capacity()) +
                     " messages); raise queue-capacity in the configuration or add instances" +
                     (sent.delivered_targets > 0
                          ? " (" + std::to_string(sent.delivered_targets) + " other receiving types already have it)"
                          : "")};
  }
  return Error{ErrorCode::corrupted, "the bus refused the message (status " +
                                         std::to_string(static_cast<int>(sent.status)) +
                                         "); the segment may be damaged"};
}

Result<Loan> ServiceCore::loan(std::string_view name, std::size_t payload_size) {
  const Result<const RoutingState::SendRoute*> found = route_for(name, false);
  if (!found) return found.error();
  const RoutingState::SendRoute& route = *found.value();
  const MessageView message = message_for(route, std::string_view(), nullptr);
  const std::size_t size = enveloped_size(message) + payload_size;
  if (Result<void> fitting = fits(route, size); !fitting) return fitting.error();
  const auto deadline = std::chrono::steady_clock::now() + options.send_timeout;
  const std::uint16_t lane = acquire_send_lane();
  shm::Allocation allocation = plane->allocate(send_cursors[lane], size);
  while (allocation.status == shm::PoolStatus::exhausted && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
    allocation = plane->allocate(send_cursors[lane], size);
  }
  if (allocation.status != shm::PoolStatus::ok) {
    release_send_lane(lane);
    return refusal({shm::SendStatus::pool_exhausted}, size, false);
  }
  const Result<std::size_t> encoded = encode_enveloped_around_payload(
      {inbox_ring, static_cast<std::uint16_t>(instance)}, message, payload_size, allocation.buffer);
  if (!encoded) {
    plane->abandon(send_cursors[lane], allocation.handle);
    release_send_lane(lane);
    return encoded.error();
  }
  release_send_lane(lane);
  // The chunk is this instance's (the pool records the owner, not the lane), so the lane is
  // not held while the application writes: recovery frees the chunk if the process dies.
  Loan made;
  made.core_ = this;
  made.chunk_ = allocation.handle.word();
  made.length_ = static_cast<std::uint32_t>(encoded.value());
  made.route_ = &route;
  made.payload_ =
      std::span<char>(reinterpret_cast<char*>(allocation.buffer.data()) + encoded.value() - payload_size, payload_size);
  return made;
}

Result<void> ServiceCore::send_loan(Loan& loan) {
  const auto& route = *static_cast<const RoutingState::SendRoute*>(loan.route_);
  const shm::MessageHandle handle = shm::MessageHandle::from_word(loan.chunk_);
  loan.core_ = nullptr;  // spent, whatever happens below
  Result<void> valid = detached.load(std::memory_order_relaxed)
                           ? Result<void>(stopped_error())
                           : check_payload_of(route, std::string_view(loan.payload_.data(), loan.payload_.size()));
  if (!valid) {
    plane->abandon(home_cursor, handle);
    return valid;
  }
  // publish() frees the chunk when a queue is full, and the payload with it: wait for room
  // in every target queue first, as send() would have waited. (Another sender may still
  // take the room first; then the loan is refused with queue_full.)
  std::optional<std::chrono::steady_clock::time_point> deadline;  // read the clock only if a queue is full
  for (const std::uint16_t ring : route.rings) {
    const shm::ReadyRing queue = plane->ring(ring);
    while (queue.looks_full()) {
      const auto now = std::chrono::steady_clock::now();
      if (!deadline) deadline = now + options.send_timeout;
      if (now >= *deadline) break;
      std::this_thread::yield();
    }
  }
  const std::uint16_t lane = acquire_send_lane();
  const shm::SendResult sent = plane->publish(send_cursors[lane], handle, loan.length_, route.rings);
  release_send_lane(lane);
  if (sent.status != shm::SendStatus::ok) return refusal(sent, loan.length_, false);
  slot().sent.fetch_add(1, std::memory_order_relaxed);
  return {};
}

void ServiceCore::abandon_loan(Loan& loan) {
  plane->abandon(home_cursor, shm::MessageHandle::from_word(loan.chunk_));
  loan.core_ = nullptr;
}

void ServiceCore::receive_loop(std::uint16_t ring_index, shm::LaneCursor& cursor, bool inbox) {
  shm::ReadyRing ring = plane->ring(ring_index);
  std::uint32_t idle_rounds = 0;
  while (running.load(std::memory_order_relaxed)) {
    // An idle round costs two loads: no clock read, no lease scan. The shorter the round,
    // the sooner a busy-polling receiver sees a message.
    if (ring.looks_empty()) {
      idle(ring, idle_rounds, inbox);
      continue;
    }
    if (!inbox) {
      const RoutingState& state = *routing.load(std::memory_order_acquire);
      // Pairs with the release decrement in settle(); only this thread increments.
      if (held.load(std::memory_order_acquire) >= state.config.services[state.type].prefetch) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // prefetch full: handlers catch up
        continue;
      }
    }
    const shm::TakeOutcome taken = plane->take(cursor, ring_index, shm::DataPlane::now_ms());
    if (taken.status == shm::TakeOutcomeStatus::ok) {
      idle_rounds = 0;
      inbox ? handle_reply(taken.delivery) : handle_command(taken.delivery);
      continue;
    }
    if (taken.status == shm::TakeOutcomeStatus::no_free_lease) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // prefetch full: handlers catch up
      continue;
    }
    idle(ring, idle_rounds, inbox);
  }
}

void ServiceCore::idle(shm::ReadyRing& ring, std::uint32_t& idle_rounds, bool inbox) {
  constexpr std::uint32_t kSpinRounds = 4000, kYieldRounds = 200;
  ++idle_rounds;
  // The reply thread's housekeeping, at most once per tick of the coarse clock (1 to 4 ms):
  // its poll(2) and its scan of the pending requests must not keep getting between a reply
  // and a requester spinning for it.
  if (inbox && idle_rounds % 64 == 1) {
    const std::uint32_t now = shm::DataPlane::now_ms();
    if (now != inbox_housekeeping_ms) {
      inbox_housekeeping_ms = now;
      slot().heartbeat_ms.store(now, std::memory_order_relaxed);
      expire_pending_replies();
      watch_daemon();
    }
  }
  // The reply thread only spins while replies are awaited: otherwise it would take a core
  // from the threads that do the work (on two cores, all of them).
  const WaitMode mode =
      inbox && pending_count.load(std::memory_order_relaxed) == 0 ? WaitMode::sleep : options.wait_mode;
  if (mode == WaitMode::busy_poll || (mode == WaitMode::adaptive && idle_rounds < kSpinRounds)) {
    __builtin_ia32_pause();
  } else if (mode == WaitMode::adaptive && idle_rounds < kSpinRounds + kYieldRounds) {
    std::this_thread::yield();
  } else {
    // Inbox: wake at least every 10 ms while replies are awaited, for their timeouts.
    bool awaiting = false;
    if (inbox) {
      std::lock_guard lock(pending_mutex);
      awaiting = !pending.empty();
    }
    ring.wait(awaiting ? std::chrono::milliseconds(10) : std::chrono::milliseconds(200));
    // Housekeeping on every wake: the next round must be one with idle_rounds % 64 == 1,
    // and still past the spin and yield rounds.
    if (inbox) idle_rounds = (kSpinRounds + kYieldRounds + 63) / 64 * 64;
  }
}

void ServiceCore::handle_command(const shm::Delivery& taken) {
  const shm::LeaseToken lease = taken.lease;
  // Death or a stop here: the lease expires and the message is redelivered; a process
  // stopped past that reads memory that may hold another message by now (see below).
  shm::fault_point(shm::FaultPoint::delivery_taken);
  const Result<EnvelopedMessage> decoded = decode_enveloped(taken.payload);
  const RoutingState& state = *routing.load(std::memory_order_acquire);
  const Handler* handler = nullptr;
  const bool inline_handler = options.handler_threads == 0;
  Received received = inline_handler ? std::move(inline_received) : Received{};
  std::string_view internal_name;
  if (decoded) {
    internal_name = state.config.routing.to_internal(state.type, decoded.value().message.name);
    const auto found = handlers.find(internal_name);
    if (found != handlers.end()) {
      handler = &found->second;
      fill(received, internal_name, decoded.value().message, taken.deliveries, options.copy_payloads);
    }
  }
  // Everything this delivery is made of has been read (and, by default, copied). If the
  // lease was lost meanwhile, the chunk may have been reused and the bytes be another
  // message's: drop them, unseen. The message went back to its queue with the lease; the
  // ack frees the lease if it is still ours and touches nothing else. Intact but
  // undecodable, or with no handler here: a poison message for this service type.
  const bool intact = plane->intact(taken.handle);
  if (!intact || handler == nullptr) {
    if (!intact) {
      (void)plane->ack(lease);
    } else {
      with_lane([&](auto& cursor) { return plane->reject(lease, cursor); });
    }
    if (inline_handler) inline_received = std::move(received);
    return;
  }
  const std::string_view payload = decoded.value().message.payload;
  slot().delivered.fetch_add(1, std::memory_order_relaxed);
  if (taken.redelivered()) slot().redelivered.fetch_add(1, std::memory_order_relaxed);
  held.fetch_add(1, std::memory_order_relaxed);
  const std::uint16_t reply_ring = decoded.value().envelope.reply_ring;
  const std::uint64_t chunk = taken.handle.word();
  if (inline_handler) {
    Delivery delivery(*this, pack(lease), chunk, reply_ring, std::move(received), payload);
    run_handler(delivery, *handler);
    inline_received = std::move(delivery.message_);
  } else {
    work.enqueue(
        std::unique_ptr<Delivery>(new Delivery(*this, pack(lease), chunk, reply_ring, std::move(received), payload)));
  }
}

// `handler` is the one registered for the delivery's name (handlers do not change once
// started, so a found handler stays valid).
void ServiceCore::run_handler(Delivery& delivery, const Handler& handler) {
  current_message = &delivery.message();
  try {
    handler(delivery);
    if (!delivery.settled()) (void)delivery.ack();
  } catch (...) {
    if (!delivery.settled()) (void)delivery.release();
  }
  current_message = nullptr;
}

void ServiceCore::handle_reply(const shm::Delivery& taken) {
  const Result<EnvelopedMessage> decoded = decode_enveloped(taken.payload);
  if (decoded && decoded.value().message.response_to) {
    const MessageView& view = decoded.value().message;
    const ReplyHandler* handler = nullptr;
    {
      std::lock_guard lock(pending_mutex);
      const auto found = pending.find(*view.response_to);
      if (found != pending.end()) handler = &found->second.handler;
    }
    if (handler) {
      const RoutingState& state = *routing.load(std::memory_order_acquire);
      // Reused from reply to reply, so its strings keep their capacity.
      Reply& reply = inbox_reply;
      fill(reply.message, state.config.routing.to_internal(state.type, view.name), view, taken.deliveries);
      reply.outcome.assign(reply.message.name);
      reply.payload.assign(view.payload);
      reply.timed_out = false;
      // As for commands: bytes read after the lease was lost may be another message's; they
      // are dropped with the ack below, unseen.
      if (plane->intact(taken.handle) && (*handler)(reply) == ReplyControl::done) {
        std::lock_guard lock(pending_mutex);
        pending.erase(*view.response_to);
        pending_count.store(pending.size(), std::memory_order_relaxed);
      }
    }
  }
  // A reply nobody waits for any more (timed out, or meant for this slot's previous
  // instance) is acknowledged and dropped.
  plane->ack(taken.lease);
}

void ServiceCore::expire_pending_replies() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<ReplyHandler> expired;
  {
    std::lock_guard lock(pending_mutex);
    for (auto entry = pending.begin(); entry != pending.end();) {
      if (entry->second.deadline > now) {
        ++entry;
        continue;
      }
      expired.push_back(std::move(entry->second.handler));
      entry = pending.erase(entry);
    }
    pending_count.store(pending.size(), std::memory_order_relaxed);
  }
  for (const ReplyHandler& handler : expired) {
    Reply reply;
    reply.outcome = "timeout";
    reply.timed_out = true;
    handler(reply);
  }
}

// The control connection's hang-up means the daemon died: reconnect to its successor
// and resume the same instance slot. Messages keep flowing meanwhile.
void ServiceCore::watch_daemon() {
  if (registration_abandoned) return;
  if (registration) {
    pollfd watched{registration->connection.fd(), POLLIN | POLLRDHUP, 0};
    if (::poll(&watched, 1, 0) <= 0 || (watched.revents & (POLLHUP | POLLRDHUP | POLLERR)) == 0) return;
    registration.reset();
  }
  // Giving up on a slow answer is safe: the daemon keeps the slot of a live, attached
  // instance whose connection closed, and resumes it on the next try (same nonce).
  Result<control::InstanceRegistration> again =
      control::register_instance(paths, registration_request, std::chrono::milliseconds(200));
  if (!again) return;  // not back yet: try on a later round
  const rapidjson::Document reply = again.value().reply.document();
  if (!reply.IsObject() || !reply.HasMember("instance") || !reply["instance"].IsUint() ||
      reply["instance"].GetUint() != instance) {
    // Another slot: the daemon did not recognise this instance, and its lanes cannot move.
    // Working on unregistered is all that is left; the slot is recovered when we exit.
    std::fprintf(stderr,
                 "exobus: exobusd of bus '%s' did not resume instance %u of '%s'; it keeps working "
                 "unregistered\n",
                 options.bus.c_str(), instance, type_name.c_str());
    registration_abandoned = true;
    return;
  }
  registration.emplace(std::move(again).value());
}

Result<void> ServiceCore::settle(Delivery& delivery, shm::LeaseStatus (ServiceCore::*how)(const shm::LeaseToken&)) {
  if (delivery.settled_) {
    return Error{ErrorCode::closed,
                 "message '" + delivery.message().name + "' was already acked, released or rejected"};
  }
  delivery.settled_ = true;
  const shm::LeaseStatus status = (this->*how)(unpack(delivery.lease_));
  held.fetch_sub(1, std::memory_order_release);
  if (status == shm::LeaseStatus::late) {
    return Error{ErrorCode::timeout, "the lease on message '" + delivery.message().name +
                                         "' expired before it was settled; it was redelivered (raise ack-timeout-ms "
                                         "or call renew() during long work)"};
  }
  if (how == &ServiceCore::ack) slot().acked.fetch_add(1, std::memory_order_relaxed);
  return {};
}

Result<void> Delivery::reply(std::string_view outcome, std::string_view payload) {
  if (message_.response_to) {
    return Error{ErrorCode::not_declared, "'" + message_.name + "' is a reply; replies are not replied to"};
  }
  return core_->send(outcome, payload, &message_, reply_ring_, std::nullopt, true);
}
bool Delivery::payload_intact() const { return core_->plane->intact(shm::MessageHandle::from_word(chunk_)); }
Result<void> Delivery::ack() { return core_->settle(*this, &ServiceCore::ack); }
Result<void> Delivery::release() { return core_->settle(*this, &ServiceCore::release); }
Result<void> Delivery::reject() { return core_->settle(*this, &ServiceCore::reject); }
Result<void> Delivery::renew() {
  if (settled_) return Error{ErrorCode::closed, "message '" + message_.name + "' is already settled"};
  if (core_->renew(ServiceCore::unpack(lease_)) != shm::LeaseStatus::ok) {
    return Error{ErrorCode::timeout, "the lease on message '" + message_.name + "' already expired"};
  }
  return {};
}

Result<std::unique_ptr<Service>> Service::connect(ServiceOptions options) {
  auto core = std::make_unique<ServiceCore>();
  options.bus = from_environment(options.bus, "EXOBUS_BUS");
  options.service = from_environment(options.service, "EXOBUS_SERVICE");
  if (options.bus.empty() || options.service.empty()) {
    return Error{ErrorCode::config_error,
                 "name the bus and the service type (ServiceOptions, or $EXOBUS_BUS and $EXOBUS_SERVICE)"};
  }
  Result<control::RuntimePaths> paths =
      options.runtime_dir.empty()
          ? control::runtime_paths(options.bus)
          : control::runtime_paths(options.bus, control::RuntimeDir{options.runtime_dir, false});
  if (!paths) return paths.error();
  core->paths = paths.value();
  core->type_name = options.service;
  core->registration_request = {options.service, ::getpid(), Uuid::generate().to_string()};
  Result<control::InstanceRegistration> registered =
      control::register_instance(core->paths, core->registration_request);
  if (!registered) return registered.error();
  const rapidjson::Document reply = registered.value().reply.document();
  if (!reply.IsObject() || !reply.HasMember("instance") || !reply.HasMember("segment") ||
      !reply.HasMember("home_ring") || !reply.HasMember("inbox_ring")) {
    return Error{ErrorCode::version_mismatch,
                 "the daemon's registration reply is incomplete; run services and exobusd of the same release"};
  }
  core->instance = reply["instance"].GetUint();
  core->home_ring = static_cast<std::uint16_t>(reply["home_ring"].GetUint());
  core->inbox_ring = static_cast<std::uint16_t>(reply["inbox_ring"].GetUint());
  shm::SegmentResult segment = shm::Segment::open(reply["segment"].GetString());
  if (!segment) {
    const ErrorCode code =
        segment.error.code == shm::SegmentError::Code::permission_denied  ? ErrorCode::permission_denied
        : segment.error.code == shm::SegmentError::Code::version_mismatch ? ErrorCode::version_mismatch
                                                                          : ErrorCode::segment_error;
    return Error{code, segment.error.message};
  }
  core->segment = std::move(segment.segment);
  core->plane = std::make_unique<shm::DataPlane>(*core->segment);
  core->options = std::move(options);
  if (Result<void> routing = core->load_routing(registered.value().reply); !routing) return routing.error();
  core->registration.emplace(std::move(registered).value());

  const std::uint32_t lanes = core->segment->layout().lanes_per_instance;
  core->home_cursor = {core->plane->lane_of(core->instance, kHomeLane)};
  core->inbox_cursor = {core->plane->lane_of(core->instance, kInboxLane)};
  for (std::uint32_t k = kFirstSendLane; k < lanes && k - kFirstSendLane < shm::kMaxTargets; ++k) {
    core->send_cursors[k - kFirstSendLane] = {core->plane->lane_of(core->instance, k)};
    core->free_send_lanes.fetch_or(1u << (k - kFirstSendLane));
  }
  // From here on the instance uses its lanes; see InstanceSlot::attached.
  core->slot().attached.store(1, std::memory_order_release);
  // The reply inbox runs from the start: requests can be made before start().
  core->running.store(true);
  ServiceCore* raw = core.get();
  core->threads.emplace_back([raw] { raw->receive_loop(raw->inbox_ring, raw->inbox_cursor, true); });
  return std::unique_ptr<Service>(new Service(std::move(core)));
}

Service::Service(std::unique_ptr<ServiceCore> core) : core_(std::move(core)) {}

Service::~Service() { stop(); }

void Service::on(std::string name, Handler handler) { core_->handlers[std::move(name)] = std::move(handler); }

Result<void> Service::start() {
  ServiceCore* core = core_.get();
  if (core->handlers.empty()) return {};
  for (unsigned t = 0; t < core->options.handler_threads; ++t) {
    core->threads.emplace_back([core] {
      std::unique_ptr<Delivery> delivery;
      while (core->running.load(std::memory_order_relaxed)) {
        if (core->work.wait_dequeue_timed(delivery, std::chrono::milliseconds(100))) {
          core->run_handler(*delivery, core->handlers.find(delivery->message().name)->second);
        }
      }
    });
  }
  core->threads.emplace_back([core] { core->receive_loop(core->home_ring, core->home_cursor, false); });
  return {};
}

void Service::stop() {
  if (!core_->running.exchange(false)) return;
  for (std::thread& thread : core_->threads) thread.join();
  core_->threads.clear();
  std::unique_ptr<Delivery> left;
  while (core_->work.try_dequeue(left)) (void)left->release();
  // Release: the lanes' last use comes before the daemon, seeing 0 after the hang-up,
  // recovers what is left and hands the slot to another instance.
  core_->detached.store(true, std::memory_order_relaxed);
  core_->slot().attached.store(0, std::memory_order_release);
  core_->registration.reset();
}

Result<void> Service::send(std::string_view name, std::string_view payload) {
  return core_->send(name, payload, nullptr, 0, std::nullopt, true);
}

Result<Loan> Service::loan(std::string_view name, std::size_t payload_size) { return core_->loan(name, payload_size); }

Loan::Loan(Loan&& other) noexcept
    : core_(std::exchange(other.core_, nullptr)),
      chunk_(other.chunk_),
      length_(other.length_),
      route_(other.route_),
      payload_(other.payload_) {}

Loan& Loan::operator=(Loan&& other) noexcept {
  Loan taken(std::move(other));  // this loan's old chunk is given back when `taken` goes
  std::swap(core_, taken.core_);
  std::swap(chunk_, taken.chunk_);
  std::swap(length_, taken.length_);
  std::swap(route_, taken.route_);
  std::swap(payload_, taken.payload_);
  return *this;
}

Loan::~Loan() {
  if (core_ != nullptr) core_->abandon_loan(*this);
}

Result<void> Loan::send() {
  if (core_ == nullptr) return Error{ErrorCode::closed, "this loan was already sent or given back"};
  return core_->send_loan(*this);
}

Result<void> Service::try_send(std::string_view name, std::string_view payload) {
  return core_->send(name, payload, nullptr, 0, std::nullopt, false);
}

Result<void> Service::send(std::string_view name, std::string_view payload, ReplyHandler on_reply,
                           std::chrono::milliseconds timeout) {
  return core_->send(name, payload, nullptr, 0,
                     ServiceCore::Pending{std::move(on_reply), std::chrono::steady_clock::now() + timeout}, true);
}

std::future<Result<Reply>> Service::request(std::string_view name, std::string_view payload,
                                            std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Result<Reply>>>();
  std::future<Result<Reply>> future = promise->get_future();
  const std::string what(name);
  Result<void> sent = send(
      name, payload,
      [promise, what, timeout](const Reply& reply) {
        if (reply.timed_out) {
          promise->set_value(Error{ErrorCode::timeout,
                                   "no reply to '" + what + "' within " + std::to_string(timeout.count()) + " ms"});
        } else {
          promise->set_value(reply);
        }
        return ReplyControl::done;
      },
      timeout);
  if (!sent) promise->set_value(sent.error());
  return future;
}

const std::string& Service::service_type() const { return core_->type_name; }
std::uint32_t Service::instance() const { return core_->instance; }

}  // namespace exobus
