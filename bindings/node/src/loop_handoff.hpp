#pragma once
// How deliveries and replies reach the JavaScript thread from the library's threads (the
// receiving thread and the reply thread): pushed into one queue, which one call of a
// thread-safe function drains on the event loop. The library's threads never wait for the
// loop and never touch JavaScript; a burst of messages wakes the loop once.
//
// The loop does not poll the queue instead: on two cores a loop spinning in setImmediate took
// the CPU from the library's threads that fill the queue, and made a round trip several
// times slower (bindings/node/README.md, "Performance").
//
// Invariant: whenever `pending_` is not empty, a call of drain() is queued on the loop or
// running before its swap. push() queues a call when it finds the queue empty, and drain()
// empties it whole under the same lock, so an event pushed after a drain() finds it empty
// and queues the next call itself.
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "exobus/delivery.hpp"
#include "exobus/reply.hpp"

namespace exobus::node {

// A delivery moved out of the library's handler (deferred settling), for handler `handler`.
struct IncomingDelivery {
  std::uint32_t handler;
  Delivery delivery;
};
// A reply (or the timeout) of the request the JavaScript side numbered `request`.
struct IncomingReply {
  std::uint32_t request;
  Reply reply;
};
using Incoming = std::variant<IncomingDelivery, IncomingReply>;

class LoopHandoff;
// The thread-safe function's call on the loop: handoff->drain(). A typed function carries no
// data per call, so a call allocates nothing.
void drain_on_loop(Napi::Env env, Napi::Function unused, LoopHandoff* handoff, std::nullptr_t* unused_data);

class LoopHandoff : public std::enable_shared_from_this<LoopHandoff> {
 public:
  // On the JavaScript thread. The function starts unreferenced: it keeps the process alive
  // only while the JavaScript side says so (ref()).
  LoopHandoff(Napi::Env env, Napi::Function on_delivery, Napi::Function on_reply);
  LoopHandoff(const LoopHandoff&) = delete;
  LoopHandoff& operator=(const LoopHandoff&) = delete;

  // On any thread.
  void push(Incoming incoming) {
    bool wake;
    {
      std::lock_guard lock(mutex_);
      wake = pending_.empty();
      pending_.push_back(std::move(incoming));
    }
    if (wake) (void)function_.NonBlockingCall();  // napi_closing once released: nobody listens
  }

  // The reply handler of the request JavaScript numbered `request`: it hands over each reply,
  // and the timeout, until one of `end` came; an empty `end` with `first_only` set: the first
  // reply alone (a request()), else every reply until the timeout. Runs on the reply thread.
  ReplyHandler replies_for(std::uint32_t request, bool first_only, std::vector<std::string> end);

  // On the JavaScript thread.
  void ref(Napi::Env env) { function_.Ref(env); }
  void unref(Napi::Env env) { function_.Unref(env); }
  // After the library's threads stopped: no push() follows.
  void release() { (void)function_.Release(); }
  // Hands every pending event to JavaScript, in arrival order.
  void drain(Napi::Env env);

 private:
  std::mutex mutex_;
  std::vector<Incoming> pending_;
  std::vector<Incoming> draining_;  // the JavaScript thread's: pending_ swapped out, reused
  Napi::TypedThreadSafeFunction<LoopHandoff, std::nullptr_t, drain_on_loop> function_;
  Napi::FunctionReference on_delivery_;  // (handler, delivery)
  Napi::FunctionReference on_reply_;     // (request, reply | null when timed out)
};

}  // namespace exobus::node
