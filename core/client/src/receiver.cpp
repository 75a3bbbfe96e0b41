#include "receiver.hpp"

#include <chrono>
#include <thread>

#include "exobus/envelope.hpp"
#include "exobus/shm/fault_point.hpp"
#include "service_core.hpp"

namespace exobus::client {

namespace {

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

}  // namespace

void Receiver::use_lanes(std::uint16_t home_lane, std::uint16_t inbox_lane) {
  home_cursor_ = {home_lane};
  inbox_cursor_ = {inbox_lane};
}

void Receiver::run_commands() { receive_loop(core_.home_ring(), home_cursor_, false); }

void Receiver::run_replies() { receive_loop(core_.inbox_ring(), inbox_cursor_, true); }

void Receiver::run_handlers() {
  Work work;
  while (core_.running.load(std::memory_order_relaxed)) {
    if (work_.wait_dequeue_timed(work, std::chrono::milliseconds(100))) run_handler(*work.delivery, *work.handler);
  }
}

void Receiver::release_unhandled() {
  Work left;
  while (work_.try_dequeue(left)) (void)left.delivery->release();
}

void Receiver::receive_loop(std::uint16_t ring_index, shm::LaneCursor& cursor, bool inbox) {
  shm::ReadyRing ring = core_.plane->ring(ring_index);
  std::uint32_t idle_rounds = 0;
  while (core_.running.load(std::memory_order_relaxed)) {
    // An idle round costs two loads: no clock read, no lease scan. The shorter the round,
    // the sooner a busy-polling receiver sees a message.
    if (ring.looks_empty()) {
      idle(ring, idle_rounds, inbox);
      continue;
    }
    // Pairs with the release decrement of settling; only this thread increments.
    if (!inbox && core_.held.load(std::memory_order_acquire) >= core_.own_type().prefetch) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // prefetch full: handlers catch up
      continue;
    }
    const shm::TakeOutcome taken = core_.plane->take(cursor, ring_index, shm::DataPlane::now_ms());
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

void Receiver::housekeeping() {
  core_.slot().heartbeat_ms.store(shm::DataPlane::now_ms(), std::memory_order_relaxed);
  core_.pending.expire(std::chrono::steady_clock::now());
  core_.daemon->watch();
}

void Receiver::idle(shm::ReadyRing& ring, std::uint32_t& idle_rounds, bool inbox) {
  constexpr std::uint32_t kSpinRounds = 4000, kYieldRounds = 200;
  ++idle_rounds;
  // The reply thread's housekeeping, at most once per tick of the coarse clock (1 to 4 ms):
  // its poll(2) and its scan of the pending requests must not keep getting between a reply
  // and a requester spinning for it.
  if (inbox && idle_rounds % 64 == 1) {
    const std::uint32_t now = shm::DataPlane::now_ms();
    if (now != housekeeping_ms_) {
      housekeeping_ms_ = now;
      housekeeping();
    }
  }
  // The reply thread only spins while replies are awaited: otherwise it would take a core
  // from the threads that do the work (on two cores, all of them).
  const bool awaiting = inbox && !core_.pending.empty();
  const WaitMode mode = inbox && !awaiting ? WaitMode::sleep : core_.options.wait_mode;
  if (mode == WaitMode::busy_poll || (mode == WaitMode::adaptive && idle_rounds < kSpinRounds)) {
    __builtin_ia32_pause();
  } else if (mode == WaitMode::adaptive && idle_rounds < kSpinRounds + kYieldRounds) {
    std::this_thread::yield();
  } else {
    // Inbox: wake at least every 10 ms while replies are awaited, for their timeouts.
    ring.wait(awaiting ? std::chrono::milliseconds(10) : std::chrono::milliseconds(200));
    // Housekeeping on every wake: the next round must be one with idle_rounds % 64 == 1,
    // and still past the spin and yield rounds.
    if (inbox) idle_rounds = (kSpinRounds + kYieldRounds + 63) / 64 * 64;
  }
}

void Receiver::handle_command(const shm::Delivery& taken) {
  const shm::LeaseToken lease = taken.lease;
  // Death or a stop here: the lease expires and the message is redelivered; a process
  // stopped past that reads memory that may hold another message by now (see below).
  shm::fault_point(shm::FaultPoint::delivery_taken);
  const Result<EnvelopedMessage> decoded = decode_enveloped(taken.payload);
  const RoutingState& state = core_.routing.current();
  const Handler* handler = nullptr;
  const bool inline_handler = core_.options.handler_threads == 0;
  Received received = inline_handler ? std::move(inline_received_) : Received{};
  if (decoded) {
    const MessageView& view = decoded.value().message;
    const std::string_view internal_name = state.config.routing.to_internal(state.type, view.name);
    const auto found = core_.handlers.find(internal_name);
    if (found != core_.handlers.end()) handler = found->second.find(view.version);
    if (handler != nullptr) fill(received, internal_name, view, taken.deliveries, core_.options.copy_payloads);
  }
  // Everything this delivery is made of has been read (and, by default, copied). If the
  // lease was lost meanwhile, the chunk may have been reused and the bytes be another
  // message's: drop them, unseen. The message went back to its queue with the lease; the
  // ack frees the lease if it is still ours and touches nothing else. Intact but
  // undecodable, or with no handler here: a poison message for this service type.
  const bool intact = core_.plane->intact(taken.handle);
  if (!intact || handler == nullptr) {
    if (!intact) {
      (void)core_.plane->ack(lease);
    } else {
      const SendLanes::Held lane = core_.lanes.acquire();
      core_.plane->reject(lease, lane.cursor());
    }
    if (inline_handler) inline_received_ = std::move(received);
    return;
  }
  const std::string_view payload = decoded.value().message.payload;
  core_.slot().delivered.fetch_add(1, std::memory_order_relaxed);
  if (taken.redelivered()) core_.slot().redelivered.fetch_add(1, std::memory_order_relaxed);
  core_.held.fetch_add(1, std::memory_order_relaxed);
  const std::uint16_t reply_ring = decoded.value().envelope.reply_ring;
  const std::uint64_t chunk = taken.handle.word();
  if (inline_handler) {
    Delivery delivery(core_, lease.word(), chunk, reply_ring, std::move(received), payload);
    run_handler(delivery, *handler);
    inline_received_ = std::move(delivery.message_);
  } else {
    work_.enqueue(
        {std::unique_ptr<Delivery>(new Delivery(core_, lease.word(), chunk, reply_ring, std::move(received), payload)),
         handler});
  }
}

void Receiver::run_handler(Delivery& delivery, const Handler& handler) {
  try {
    handler(delivery);
    if (!delivery.settled()) (void)delivery.ack();
  } catch (...) {
    if (!delivery.settled()) (void)delivery.release();
  }
}

void Receiver::handle_reply(const shm::Delivery& taken) {
  const Result<EnvelopedMessage> decoded = decode_enveloped(taken.payload);
  const RoutingState& state = core_.routing.current();
  // A reply is taken only under a name this type receives, as for commands (lint's rule).
  if (decoded && decoded.value().message.response_to &&
      state.config.routing.receives_name(state.type, decoded.value().message.name)) {
    const MessageView& view = decoded.value().message;
    if (const ReplyHandler* handler = core_.pending.find(*view.response_to)) {
      // Reused from reply to reply, so its strings keep their capacity.
      Reply& reply = inbox_reply_;
      fill(reply.message, state.config.routing.to_internal(state.type, view.name), view, taken.deliveries);
      reply.outcome.assign(reply.message.name);
      reply.payload.assign(view.payload);
      reply.timed_out = false;
      // As for commands: bytes read after the lease was lost may be another message's; they
      // are dropped with the ack below, unseen.
      if (core_.plane->intact(taken.handle) && (*handler)(reply) == ReplyControl::done) {
        core_.pending.finish(*view.response_to);
      }
    }
  }
  // A reply nobody waits for any more (timed out, or meant for this slot's previous
  // instance) is acknowledged and dropped.
  core_.plane->ack(taken.lease);
}

}  // namespace exobus::client
