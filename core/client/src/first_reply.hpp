#pragma once
// The first reply to a request whose caller waits for it on its own thread (Service::call).
// The request's reply handler runs on whichever thread holds the reply turn when the reply
// (or its timeout) comes: most often the caller itself, taking replies while it waits
// (Receiver::take_replies_until), otherwise the reply thread. It stores the reply and
// marks it ready; the caller reads it after seeing ready, or sleeps until then.
//
// state_: kWaiting -> kReady (the handler), or kWaiting -> kSleeping (the caller, going to
// sleep) -> kReady (the handler, which then wakes it). Nothing else changes it.
#include <atomic>
#include <cstdint>
#include <memory>

#include "exobus/reply.hpp"

namespace exobus::client {

class FirstReply {
 public:
  // The handler to send the request with; it keeps `self` alive for whoever runs it.
  static ReplyHandler handler(std::shared_ptr<FirstReply> self) {
    return [self = std::move(self)](const Reply& reply) {
      self->reply_ = reply;
      // Release: the reply is written before the caller sees kReady; acquire: the caller's
      // kSleeping, if it came first, is seen, and it is woken.
      if (self->state_.exchange(kReady, std::memory_order_acq_rel) == kSleeping) self->state_.notify_one();
      return ReplyControl::done;
    };
  }
  bool ready() const { return state_.load(std::memory_order_acquire) == kReady; }
  // Sleeps until the handler ran (it always runs: a reply, or the timed-out call).
  void sleep_until_ready() {
    std::uint32_t expected = kWaiting;
    if (!state_.compare_exchange_strong(expected, kSleeping, std::memory_order_acq_rel)) return;  // kReady
    while (state_.load(std::memory_order_acquire) == kSleeping) state_.wait(kSleeping, std::memory_order_acquire);
  }
  // After ready().
  Reply take() { return std::move(reply_); }

 private:
  static constexpr std::uint32_t kWaiting = 0, kSleeping = 1, kReady = 2;
  std::atomic<std::uint32_t> state_{kWaiting};  // 4 bytes: waited on with a futex of its own
  Reply reply_;                                 // written by the handler before kReady
};

}  // namespace exobus::client
