// A delivery is settled once: its lease is acked, released (requeued now) or rejected
// (dead-lettered); renew() only extends it. Settling frees the delivery's place in the
// type's prefetch. A delivery moved out of its handler is held (held_deliveries.hpp) until
// it is settled.
#include <utility>

#include "exobus/envelope.hpp"
#include "exobus/shm/delay_histogram.hpp"
#include "service_core.hpp"

namespace exobus {

namespace {

Error detached_error(const Received& message) {
  return Error{ErrorCode::closed, "delivery of '" + message.name +
                                      "' is no longer this object's: it was moved from, or its service stopped"};
}

}  // namespace

enum class Delivery::Settlement : std::uint8_t { ack, release, reject };

Delivery::Delivery(Delivery&& other) noexcept { take(other); }

Delivery& Delivery::operator=(Delivery&& other) noexcept {
  if (this == &other) return *this;
  if (core_ != nullptr && !settled_) (void)release();  // what this one held goes back
  take(other);
  return *this;
}

void Delivery::take(Delivery& other) noexcept {
  core_ = std::exchange(other.core_, nullptr);
  lease_ = other.lease_;
  chunk_ = other.chunk_;
  reply_member_ = other.reply_member_;
  message_ = std::move(other.message_);
  payload_ = other.payload_;
  taken_at_ns_ = other.taken_at_ns_;
  settled_ = std::exchange(other.settled_, true);
  held_ = false;
  in_prefetch_ = std::exchange(other.in_prefetch_, false);
  if (core_ == nullptr || settled_) return;
  if (!in_prefetch_) {
    core_->held.fetch_add(1, std::memory_order_relaxed);  // out of the receiving thread's handler
    in_prefetch_ = true;
  }
  if (other.held_) {
    core_->held_deliveries.move(other, *this);
  } else {
    core_->held_deliveries.hold(*this);  // taken out of its handler
  }
}

Delivery::~Delivery() {
  if (core_ != nullptr && !settled_) (void)release();
}

void Delivery::detach() noexcept {
  settled_ = true;
  core_ = nullptr;
}

Result<void> Delivery::settle(Settlement how) {
  if (core_ == nullptr) return detached_error(message_);
  if (settled_) {
    return Error{ErrorCode::closed, "message '" + message_.name + "' was already acked, released or rejected"};
  }
  settled_ = true;
  if (held_) core_->held_deliveries.forget(*this);
  if (taken_at_ns_ != 0) count_handler_time();
  const shm::LeaseToken lease = shm::LeaseToken::from_word(lease_);
  shm::LeaseStatus status;
  if (how == Settlement::ack) {
    status = core_->plane->ack(lease);
  } else {
    const client::SendLanes::Held lane = core_->lanes.acquire();
    status = how == Settlement::release ? core_->plane->release(lease, lane.cursor())
                                        : core_->plane->reject(lease, lane.cursor());
  }
  // Release: pairs with the receiving thread's acquire when it checks the prefetch.
  if (std::exchange(in_prefetch_, false)) core_->held.fetch_sub(1, std::memory_order_release);
  if (status == shm::LeaseStatus::late) {
    return Error{ErrorCode::timeout, "the lease on message '" + message_.name +
                                         "' expired before it was settled; it was redelivered (raise ack-timeout-ms "
                                         "or call renew() during long work)"};
  }
  if (how == Settlement::ack) core_->record().acked.fetch_add(1, std::memory_order_relaxed);
  return {};
}

void Delivery::count_handler_time() const {
  const std::uint64_t spent = clock_ns_between(taken_at_ns_, envelope_clock_ns());
  shm::InstanceRecord& record = core_->record();
  record.handler_times[shm::delay_bucket(spent)].fetch_add(1, std::memory_order_relaxed);
  record.handler_ns_sum.fetch_add(spent, std::memory_order_relaxed);
}

SendOptions Delivery::on_behalf(const SendOptions& options) const {
  if (options.request_id()) return options;
  SendOptions in_request = options;
  return in_request.request_id(message_.request_id);
}

Result<void> Delivery::reply(std::string_view outcome, std::string_view payload, const SendOptions& options) {
  if (core_ == nullptr) return detached_error(message_);
  if (message_.response_to) {
    return Error{ErrorCode::not_declared, "'" + message_.name + "' is a reply; replies are not replied to"};
  }
  // The requester's type is the sender of the link the command came by.
  const shm::Link* link = core_->memory->link(shm::MessageHandle::from_word(chunk_).link());
  if (link == nullptr) return detached_error(message_);
  return core_->sender.send(
      client::Outgoing::reply(message_, link->sender(), reply_member_, outcome, payload, on_behalf(options)));
}

Result<ReplyAddress> Delivery::reply_address() const {
  if (core_ == nullptr) return detached_error(message_);
  return ReplyAddress{message_.id, message_.sender, reply_member_};
}

Result<void> Delivery::send(std::string_view name, std::string_view payload, const SendOptions& options) {
  if (core_ == nullptr) return detached_error(message_);
  return core_->sender.send(client::Outgoing::command(name, payload, on_behalf(options)));
}

Result<void> Delivery::send(std::string_view name, std::string_view payload, ReplyHandler on_reply,
                            std::chrono::milliseconds timeout, const SendOptions& options) {
  if (core_ == nullptr) return detached_error(message_);
  return core_->sender.send(client::Outgoing::request(
      name, payload, on_behalf(options), {std::move(on_reply), std::chrono::steady_clock::now() + timeout, {}}));
}

std::future<Result<Reply>> Delivery::request(std::string_view name, std::string_view payload,
                                             std::chrono::milliseconds timeout, const SendOptions& options) {
  if (core_ == nullptr) {
    std::promise<Result<Reply>> failed;
    failed.set_value(detached_error(message_));
    return failed.get_future();
  }
  return core_->sender.request(name, payload, timeout, on_behalf(options));
}

Result<Reply> Delivery::call(std::string_view name, std::string_view payload, std::chrono::milliseconds timeout,
                             const SendOptions& options) {
  if (core_ == nullptr) return detached_error(message_);
  return core_->sender.call(name, payload, timeout, on_behalf(options));
}

bool Delivery::payload_intact() const {
  if (core_ == nullptr) return false;
  const shm::MessageHandle handle = shm::MessageHandle::from_word(chunk_);
  shm::Link* link = core_->memory->link(handle.link());
  return link != nullptr && link->pool().intact(handle);
}
Result<void> Delivery::ack() { return settle(Settlement::ack); }
Result<void> Delivery::release() { return settle(Settlement::release); }
Result<void> Delivery::reject() { return settle(Settlement::reject); }

Result<void> Delivery::renew() {
  if (core_ == nullptr) return detached_error(message_);
  if (settled_) return Error{ErrorCode::closed, "message '" + message_.name + "' is already settled"};
  if (core_->plane->renew(shm::LeaseToken::from_word(lease_), shm::DataPlane::now_ms()) != shm::LeaseStatus::ok) {
    return Error{ErrorCode::timeout, "the lease on message '" + message_.name + "' already expired"};
  }
  return {};
}

}  // namespace exobus
