#include "receiver.hpp"

#include <chrono>
#include <thread>

#include "exobus/envelope.hpp"
#include "exobus/payload.hpp"
#include "exobus/shm/fault_point.hpp"
#include "exobus/shm/futex.hpp"
#include "delivery_trace.hpp"
#include "first_reply.hpp"
#include "service_core.hpp"

namespace exobus::client {

namespace {

constexpr std::uint32_t kQuietMs = 10;          // a corrupt or storming source is polled this long
constexpr std::uint32_t kStormWakes = 64;       // empty wakes in a row that make a storm

// The receiver whose reply turn this thread holds, while it holds it.
thread_local const Receiver* reply_turn_holder = nullptr;
class HoldingReplyTurn {
 public:
  explicit HoldingReplyTurn(const Receiver* receiver) : outer_(reply_turn_holder) { reply_turn_holder = receiver; }
  ~HoldingReplyTurn() { reply_turn_holder = outer_; }
  HoldingReplyTurn(const HoldingReplyTurn&) = delete;
  HoldingReplyTurn& operator=(const HoldingReplyTurn&) = delete;

 private:
  const Receiver* outer_;  // another service's, whose reply handler this one runs in
};

// Copies a decoded message into `received` under the receiver's own name for it. Assigning
// into existing strings keeps their capacity, so a reused Received allocates nothing. The
// sender is the link's, whatever the message says (they were checked to agree).
void fill(Received& received, std::string_view internal_name, const MessageView& view, std::string_view sender,
          unsigned deliveries, bool copy_payload = true) {
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
  received.sender.assign(sender);
  received.deliveries = deliveries;
}

// Whether this state lets `sender` (an index in the bus's memory) send `name` here: the
// sender may send the name, and this type receives it.
bool may_deliver(const RoutingState& state, std::uint16_t sender, std::string_view name) {
  const std::optional<ServiceTypeIndex> sender_type =
      sender < state.config_index.size() ? state.config_index[sender] : std::nullopt;
  return sender_type && state.config.routing.may_send(*sender_type, name) &&
         state.config.routing.receives_name(state.type, name);
}

// Where the type asks for it (validate-received): the payload against its name's schemas
// for its version, or as JSON.
bool payload_acceptable(const RoutingState& state, std::string_view name, double version, std::string_view payload) {
  if (!state.own_type().validate_received) return true;
  const std::span<const Schema> schemas = state.config.routing.schemas(name, version);
  if (schemas.empty()) return check_payload(payload).ok();
  for (const Schema& schema : schemas) {
    if (!schema.validate(payload)) return false;
  }
  return true;
}

}  // namespace

void Receiver::use_lanes(std::uint16_t command_lane, std::uint16_t reply_lane) {
  commands_.cursor = {command_lane};
  replies_.cursor = {reply_lane};
}

void Receiver::run_commands() {
  while (core_.running.load(std::memory_order_relaxed)) {
    switch (take_round(commands_, true)) {
      case Round::took: commands_.idle_rounds = 0; break;
      case Round::blocked: std::this_thread::sleep_for(std::chrono::microseconds(200)); break;
      case Round::nothing: idle(commands_); break;
    }
  }
}

void Receiver::run_replies() {
  while (core_.running.load(std::memory_order_relaxed)) {
    if (reply_takers_.load(std::memory_order_acquire) != 0) {
      step_aside();
      continue;
    }
    Round round;
    {
      std::lock_guard turn(reply_turn_);
      HoldingReplyTurn holding(this);
      round = take_round(replies_, true);
    }
    switch (round) {
      case Round::took: replies_.idle_rounds = 0; break;
      case Round::blocked: std::this_thread::sleep_for(std::chrono::microseconds(200)); break;
      case Round::nothing: idle(replies_); break;
    }
  }
}

void Receiver::step_aside() {
  const std::uint32_t takers = reply_takers_.load(std::memory_order_acquire);
  if (takers == 0) return;
  {
    std::lock_guard turn(reply_turn_);
    HoldingReplyTurn holding(this);
    const RoutingState& state = core_.routing.current();
    if (state.generation != replies_.generation) build_sources(replies_, state);
    const std::uint32_t now = shm::DataPlane::now_ms();
    if (now != housekeeping_ms_) {
      housekeeping_ms_ = now;
      housekeeping();
    }
  }
  // A caller leaving wakes this nap only if replies are still awaited; otherwise the nap
  // ends by itself, soon enough for a request sent meanwhile by another thread.
  shm::futex_wait(reply_takers_, takers, std::chrono::milliseconds(1));
}

void Receiver::take_replies_until(FirstReply& first) {
  using Clock = std::chrono::steady_clock;
  constexpr auto kSpin = std::chrono::microseconds(50);  // adaptive: then the reply thread takes over
  const WaitMode mode = core_.options.wait_mode;
  if (mode != WaitMode::sleep) {
    reply_takers_.fetch_add(1, std::memory_order_acq_rel);
    const Clock::time_point spin_until = Clock::now() + kSpin;
    for (unsigned round = 1; !first.ready() && core_.running.load(std::memory_order_relaxed); ++round) {
      if (reply_turn_.try_lock()) {
        Round taken;
        {
          std::lock_guard turn(reply_turn_, std::adopt_lock);
          HoldingReplyTurn holding(this);
          taken = take_round(replies_, false);
        }
        if (taken == Round::took) continue;
      }
      if (mode == WaitMode::adaptive && round % 64 == 0 && Clock::now() >= spin_until) break;
      __builtin_ia32_pause();
    }
    // This request's reply, or another thread's, still to come: the reply thread is woken
    // for it now rather than at the end of its nap.
    if (reply_takers_.fetch_sub(1, std::memory_order_acq_rel) == 1 && !core_.pending.empty()) {
      shm::futex_wake_all(reply_takers_);
    }
  }
  first.sleep_until_ready();
}

bool Receiver::in_reply_handler() const { return reply_turn_holder == this; }

void Receiver::abandon_replies() {
  std::lock_guard turn(reply_turn_);
  HoldingReplyTurn holding(this);
  core_.pending.expire(std::chrono::steady_clock::time_point::max());
}

void Receiver::run_handlers() {
  Work work;
  while (core_.running.load(std::memory_order_relaxed)) {
    if (work_.wait_dequeue_timed(work, std::chrono::milliseconds(100))) run_handler(*work.delivery, *work.handler);
  }
}

void Receiver::wake() {
  stopping_.fetch_add(1, std::memory_order_release);
  shm::futex_wake_all(stopping_);
}

void Receiver::release_unhandled() {
  Work left;
  while (work_.try_dequeue(left)) (void)left.delivery->release();
}

void Receiver::build_sources(Loop& loop, const RoutingState& state) {
  std::vector<Source> sources;
  for (shm::Link* link : state.incoming) {
    shm::Channel* channel = loop.replies ? link->reply_channel(core_.member())
                                         : (link->has_type_channel() ? &link->type_channel() : nullptr);
    if (channel == nullptr) continue;
    Source& source = sources.emplace_back();
    source.link = link;
    source.channel = channel;
  }
  if (!loop.replies) sources.emplace_back();  // the retry ring
  loop.sources = std::move(sources);
  loop.generation = state.generation;
  loop.next = 0;
}

bool Receiver::looks_empty(const Loop& loop, const Source& source) const {
  (void)loop;
  return source.link != nullptr ? source.channel->looks_empty() : core_.plane->tenant().retry_ring().looks_empty();
}

shm::TakeOutcome Receiver::take(Loop& loop, Source& source, std::uint32_t now) {
  return source.link != nullptr ? core_.plane->take(loop.cursor, *source.link, *source.channel, now)
                                : core_.plane->take_retry(loop.cursor, now);
}

Receiver::Round Receiver::take_round(Loop& loop, bool owns_loop) {
  const RoutingState& state = core_.routing.current();
  if (state.generation != loop.generation) {
    if (!owns_loop) return Round::nothing;  // the reply thread rebuilds them at its next nap
    build_sources(loop, state);
  }
  // Pairs with the release decrement of settling; only the receiving thread increments.
  if (!loop.replies && core_.held.load(std::memory_order_acquire) >= core_.own_type().prefetch) return Round::blocked;
  std::uint32_t now = 0;  // read once a source looks ready: an idle round reads no clock
  for (std::size_t n = 0; n < loop.sources.size(); ++n) {
    const std::size_t index = (loop.next + n) % loop.sources.size();
    Source& source = loop.sources[index];
    if (looks_empty(loop, source)) continue;
    if (now == 0) now = shm::DataPlane::now_ms() | 1;
    if (source.quiet_until_ms != 0) {
      if (static_cast<std::int32_t>(now - source.quiet_until_ms) < 0 && source.spurious_wakes == 0) continue;
      source.quiet_until_ms = 0;
    }
    const shm::TakeOutcome taken = take(loop, source, now);
    switch (taken.status) {
      case shm::TakeOutcomeStatus::ok:
        source.spurious_wakes = 0;
        loop.next = index + 1;
        loop.replies ? handle_reply(taken.delivery) : handle_command(source, taken.delivery);
        return Round::took;
      case shm::TakeOutcomeStatus::no_free_lease: return Round::blocked;
      case shm::TakeOutcomeStatus::corrupted: source.quiet_until_ms = now + kQuietMs; break;
      case shm::TakeOutcomeStatus::empty: break;
    }
  }
  return Round::nothing;
}

void Receiver::housekeeping() {
  core_.record().heartbeat_ms.store(shm::DataPlane::now_ms(), std::memory_order_relaxed);
  core_.pending.expire(std::chrono::steady_clock::now());
  core_.daemon->watch();
  // A service that only receives sends nothing that would notice a reload: look here.
  const std::uint64_t generation =
      core_.memory->directory().header().routing_generation.load(std::memory_order_acquire);
  if (generation != core_.routing.current().generation) {
    (void)core_.routing.refresh(generation, *core_.daemon, *core_.memory);
  }
}

void Receiver::idle(Loop& loop) {
  constexpr std::uint32_t kSpinRounds = 4000, kYieldRounds = 200;
  ++loop.idle_rounds;
  // The reply thread's housekeeping, at most once per tick of the coarse clock (1 to 4 ms):
  // its poll(2) and its scan of the pending requests must not keep getting between a reply
  // and a requester spinning for it.
  if (loop.replies && loop.idle_rounds % 64 == 1) {
    const std::uint32_t now = shm::DataPlane::now_ms();
    if (now != housekeeping_ms_) {
      std::lock_guard turn(reply_turn_);
      HoldingReplyTurn holding(this);
      housekeeping_ms_ = now;
      housekeeping();
    }
  }
  // The reply thread only spins while replies are awaited: otherwise it would take a core
  // from the threads that do the work (on two cores, all of them).
  const bool awaiting = loop.replies && !core_.pending.empty();
  const WaitMode mode = loop.replies && !awaiting ? WaitMode::sleep : core_.options.wait_mode;
  if (mode == WaitMode::busy_poll || (mode == WaitMode::adaptive && loop.idle_rounds < kSpinRounds)) {
    __builtin_ia32_pause();
  } else if (mode == WaitMode::adaptive && loop.idle_rounds < kSpinRounds + kYieldRounds) {
    std::this_thread::yield();
  } else {
    // Replies: wake at least every 10 ms while replies are awaited, for their timeouts.
    sleep(loop, awaiting ? std::chrono::milliseconds(10) : std::chrono::milliseconds(200));
    // Housekeeping on every wake: the next round must be one with idle_rounds % 64 == 1,
    // and still past the spin and yield rounds.
    if (loop.replies) loop.idle_rounds = (kSpinRounds + kYieldRounds + 63) / 64 * 64;
  }
}

void Receiver::sleep(Loop& loop, std::chrono::milliseconds timeout) {
  // The reply sources' state is shared with callers taking replies: held but for the wait.
  std::unique_lock turn(reply_turn_, std::defer_lock);
  if (loop.replies) turn.lock();
  shm::FutexWaiter waiters[shm::kMaxFutexWaiters];
  std::size_t asleep_on[shm::kMaxFutexWaiters];
  std::size_t count = 0;
  const std::uint32_t stop_value = stopping_.load(std::memory_order_acquire);
  waiters[count++] = {&stopping_, stop_value};
  const std::uint32_t now = shm::DataPlane::now_ms() | 1;
  bool quiet_sources = false;
  for (std::size_t index = 0; index < loop.sources.size() && count < shm::kMaxFutexWaiters; ++index) {
    Source& source = loop.sources[index];
    if (source.quiet_until_ms != 0 && static_cast<std::int32_t>(now - source.quiet_until_ms) < 0) {
      quiet_sources = true;
      continue;
    }
    source.quiet_until_ms = 0;
    std::atomic<std::uint32_t>& signal =
        source.link != nullptr ? source.channel->signal() : core_.plane->tenant().retry_ring().signal();
    const std::uint32_t value = source.link != nullptr ? source.channel->begin_sleep()
                                                       : core_.plane->tenant().retry_ring().begin_sleep();
    asleep_on[count] = index;
    waiters[count++] = {&signal, value};
  }
  // Counted in on every source before this re-check: a publish after it sees a sleeper
  // and wakes us (the Dekker pair in Channel::wake).
  bool all_empty = core_.running.load(std::memory_order_relaxed);
  for (const Source& source : loop.sources) all_empty = all_empty && looks_empty(loop, source);
  std::optional<std::size_t> woken;
  if (all_empty) {
    if (turn.owns_lock()) turn.unlock();
    woken = shm::futex_wait_any(std::span(waiters, count), quiet_sources ? std::chrono::milliseconds(kQuietMs) : timeout);
    if (loop.replies) turn.lock();
  }
  for (std::size_t k = 1; k < count; ++k) {
    const Source& source = loop.sources[asleep_on[k]];
    source.link != nullptr ? source.channel->end_sleep() : core_.plane->tenant().retry_ring().end_sleep();
  }
  // Woken by a source with nothing in it: one wake is a race, a stream of them a storm.
  if (woken && *woken > 0 && *woken < count) {
    Source& source = loop.sources[asleep_on[*woken]];
    if (looks_empty(loop, source) && ++source.spurious_wakes >= kStormWakes) {
      source.spurious_wakes = 0;
      source.quiet_until_ms = (shm::DataPlane::now_ms() + kQuietMs) | 1;
    }
  }
}

void Receiver::refuse(const shm::Delivery& taken, shm::RefusalReason reason) {
  core_.plane->count_refused(*taken.link, reason);
  (void)core_.plane->ack(taken.lease);
}

const Receiver::Verdict& Receiver::verdict_for(Verdict& last, const RoutingState& state, std::uint16_t sender,
                                               std::string_view name, double version) const {
  if (last.serial == state.serial && last.sender == sender && last.version == version && last.name == name) {
    return last;
  }
  last.serial = state.serial;
  last.sender = sender;
  last.version = version;
  last.name.assign(name);
  last.may_deliver = may_deliver(state, sender, name);
  last.internal_name = last.may_deliver ? state.config.routing.to_internal(state.type, name) : std::string_view();
  last.handler = nullptr;
  if (last.may_deliver) {
    const auto found = core_.handlers.find(last.internal_name);
    if (found != core_.handlers.end()) last.handler = found->second.find(version);
  }
  return last;
}

void Receiver::handle_command(Source& source, const shm::Delivery& taken) {
  const shm::LeaseToken lease = taken.lease;
  // Death or a stop here: the lease expires and the message is redelivered; a process
  // stopped past that reads memory that may hold another message by now (see below).
  shm::fault_point(shm::FaultPoint::delivery_taken);
  // Name and sender are accepted below only when they equal names of the configuration.
  const Result<EnvelopedMessage> decoded = decode_enveloped(taken.payload, NameCheck::by_exact_match);
  const RoutingState& state = core_.routing.current();
  const bool inline_handler = core_.options.handler_threads == 0;
  // Everything this delivery is made of is read (and, by default, copied) before any check
  // or handler uses it: a sender rewriting its chunk now changes nothing we decide on.
  Received for_handler_thread;
  Received& received = inline_handler ? inline_delivery_.message_ : for_handler_thread;
  bool acceptable = false;
  shm::RefusalReason refusal = shm::RefusalReason::malformed;  // why, unless acceptable
  const Handler* handler = nullptr;
  std::string_view internal_name;
  if (decoded) {
    const MessageView& view = decoded.value().message;
    const std::uint16_t sender = taken.link->sender();
    const std::string_view sender_name = state.type_name(sender);
    const Verdict& verdict = verdict_for(source.last_command, state, sender, view.name, view.version);
    // The message names its sender truly, is no reply, and that sender may send it here.
    // A sender this routing does not know yet (a reload added it) is not routed here.
    if (sender_name.empty()) {
      refusal = shm::RefusalReason::not_routed;
    } else if (view.response_to || view.sender != sender_name) {
      refusal = shm::RefusalReason::forged;
    } else if (!verdict.may_deliver) {
      refusal = shm::RefusalReason::not_routed;
    } else {
      handler = verdict.handler;
      internal_name = verdict.internal_name;
      if (handler != nullptr) {
        fill(received, verdict.internal_name, view, sender_name, taken.deliveries + view.earlier_deliveries,
             core_.options.copy_payloads);
      }
      // The copy a handler will see is what is checked, where there is one.
      const bool copied = handler != nullptr && core_.options.copy_payloads;
      acceptable = payload_acceptable(state, view.name, view.version,
                                      copied ? std::string_view(received.payload) : view.payload);
      refusal = shm::RefusalReason::payload;
    }
  }
  // If the lease was lost meanwhile, the chunk may have been reused and the bytes be
  // another message's: drop them, unseen. The message went back to its queue with the
  // lease; the ack frees the lease if it is still ours and touches nothing else.
  if (!shm::DataPlane::intact(taken)) {
    (void)core_.plane->ack(lease);
    return;
  }
  // Not what its sender may send, or a payload this type refuses: counted, dropped.
  if (!acceptable) {
    refuse(taken, refusal);
    return;
  }
  // Intact and acceptable, but no handler here: a poison message for this service type.
  if (handler == nullptr) {
    const SendLanes::Held lane = core_.lanes.acquire();
    core_.plane->reject(lease, lane.cursor());
    return;
  }
  const std::string_view payload = decoded.value().message.payload;
  // Only this thread counts deliveries: plain stores, no locked instruction per message.
  shm::InstanceRecord& record = core_.record();
  record.delivered.store(record.delivered.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (taken.redelivered()) {
    record.redelivered.store(record.redelivered.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  // Stamped only while the daemon asks senders for send times, so an unwatched bus reads
  // no clock here either. A stamp from the future (a lying sender) counts as no delay.
  std::uint64_t taken_at = 0;  // also when its handler time starts, and its trace line's stamp
  if (const std::uint64_t sent_at = decoded.value().envelope.sent_at_ns; sent_at != 0) {
    taken_at = envelope_clock_ns();
    const std::uint64_t delay = clock_ns_between(sent_at, taken_at);
    std::atomic<std::uint64_t>& bucket = record.delays[shm::delay_bucket(delay)];
    bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    record.delay_ns_sum.store(record.delay_ns_sum.load(std::memory_order_relaxed) + delay, std::memory_order_relaxed);
  }
  if (DeliveryTrace::wanted(*core_.memory)) {
    trace_.record(core_.plane->tenant(), core_.member(), shm::TraceLoop::commands,
                  {decoded.value(), internal_name, taken.link->sender(),
                   static_cast<unsigned>(taken.deliveries + decoded.value().message.earlier_deliveries),
                   taken.redelivered(), taken_at});
  }
  const std::uint16_t reply_member = decoded.value().envelope.reply_member;
  const std::uint64_t chunk = taken.handle.word();
  if (inline_handler) {
    // Counted in the prefetch only if its handler moves it out (Delivery::take).
    inline_delivery_.begin(core_, lease.word(), chunk, reply_member, payload, taken_at);
    run_handler(inline_delivery_, *handler);
  } else {
    core_.held.fetch_add(1, std::memory_order_relaxed);
    work_.enqueue({std::unique_ptr<Delivery>(
                       new Delivery(core_, lease.word(), chunk, reply_member, std::move(received), payload, taken_at)),
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
  // Name and sender are accepted below only when they equal names of the configuration.
  const Result<EnvelopedMessage> decoded = decode_enveloped(taken.payload, NameCheck::by_exact_match);
  const RoutingState& state = core_.routing.current();
  const std::uint16_t sender = taken.link->sender();
  const std::string_view sender_name = state.type_name(sender);
  // A reply is taken only under a name this type receives, from a type the request went
  // to, naming its sender truly (the same rules as lint's and as for commands).
  if (!decoded) {
    refuse(taken, shm::RefusalReason::malformed);
    return;
  }
  const MessageView& view = decoded.value().message;
  if (!sender_name.empty() && (!view.response_to || view.sender != sender_name)) {
    refuse(taken, shm::RefusalReason::forged);
    return;
  }
  if (sender_name.empty() || !state.config.routing.receives_name(state.type, view.name)) {
    refuse(taken, shm::RefusalReason::not_routed);
    return;
  }
  const PendingReplies::Found found = core_.pending.find(*view.response_to, sender);
  if (found.handler != nullptr) {
    // Reused from reply to reply, so its strings keep their capacity.
    Reply& reply = inbox_reply_;
    fill(reply.message, state.config.routing.to_internal(state.type, view.name), view, state.type_name(sender),
         taken.deliveries + view.earlier_deliveries);
    reply.outcome.assign(reply.message.name);
    reply.payload.assign(view.payload);
    reply.timed_out = false;
    // As for commands: bytes read after the lease was lost may be another message's; they
    // are dropped with the ack below, unseen.
    const bool intact = shm::DataPlane::intact(taken);
    if (intact && DeliveryTrace::wanted(*core_.memory)) {
      trace_.record(core_.plane->tenant(), core_.member(), shm::TraceLoop::replies,
                    {decoded.value(), reply.message.name, sender, reply.message.deliveries, taken.redelivered(), 0});
    }
    if (intact && payload_acceptable(state, view.name, view.version, reply.payload) &&
        (*found.handler)(reply) == ReplyControl::done) {
      core_.pending.finish(*view.response_to);
    }
  } else if (found.awaited_from_others) {
    // A reply to a request of ours, from a type the request never went to: forged.
    refuse(taken, shm::RefusalReason::forged);
    return;
  }
  // A reply nobody waits for any more (timed out, or meant for this slot's previous
  // instance) is acknowledged and dropped.
  (void)core_.plane->ack(taken.lease);
}

}  // namespace exobus::client
