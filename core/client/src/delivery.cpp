// A delivery is settled once: its lease is acked, released (requeued now) or rejected
// (dead-lettered); renew() only extends it. Settling frees the delivery's place in the
// type's prefetch.
#include "service_core.hpp"

namespace exobus {

enum class Delivery::Settlement : std::uint8_t { ack, release, reject };

Result<void> Delivery::settle(Settlement how) {
  if (settled_) {
    return Error{ErrorCode::closed, "message '" + message_.name + "' was already acked, released or rejected"};
  }
  settled_ = true;
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
  core_->held.fetch_sub(1, std::memory_order_release);
  if (status == shm::LeaseStatus::late) {
    return Error{ErrorCode::timeout, "the lease on message '" + message_.name +
                                         "' expired before it was settled; it was redelivered (raise ack-timeout-ms "
                                         "or call renew() during long work)"};
  }
  if (how == Settlement::ack) core_->slot().acked.fetch_add(1, std::memory_order_relaxed);
  return {};
}

Result<void> Delivery::reply(std::string_view outcome, std::string_view payload) {
  if (message_.response_to) {
    return Error{ErrorCode::not_declared, "'" + message_.name + "' is a reply; replies are not replied to"};
  }
  return core_->sender.send(client::Outgoing::reply(message_, reply_ring_, outcome, payload));
}

bool Delivery::payload_intact() const { return core_->plane->intact(shm::MessageHandle::from_word(chunk_)); }
Result<void> Delivery::ack() { return settle(Settlement::ack); }
Result<void> Delivery::release() { return settle(Settlement::release); }
Result<void> Delivery::reject() { return settle(Settlement::reject); }

Result<void> Delivery::renew() {
  if (settled_) return Error{ErrorCode::closed, "message '" + message_.name + "' is already settled"};
  if (core_->plane->renew(shm::LeaseToken::from_word(lease_), shm::DataPlane::now_ms()) != shm::LeaseStatus::ok) {
    return Error{ErrorCode::timeout, "the lease on message '" + message_.name + "' already expired"};
  }
  return {};
}

}  // namespace exobus
