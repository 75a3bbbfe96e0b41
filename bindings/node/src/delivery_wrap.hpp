#pragma once
// A handler's delivery as JavaScript sees it: moved out of the library's handler (deferred
// settling, exobus/delivery.hpp), it is JavaScript's until settled, for as long as the handler
// takes. Its fields are read on demand (accessors), so that a handler that reads two of them
// pays for two. lib/service.js adds the JavaScript parts (payload, request, stream) to its
// prototype.
#include <napi.h>

#include <memory>
#include <optional>

#include "exobus/delivery.hpp"
#include "loop_handoff.hpp"

namespace exobus::node {

class DeliveryWrap : public Napi::ObjectWrap<DeliveryWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  // A new JavaScript Delivery holding `delivery`; replies to its requests go through `handoff`.
  static Napi::Object wrap(Napi::Env env, Delivery delivery, std::shared_ptr<LoopHandoff> handoff);

  explicit DeliveryWrap(const Napi::CallbackInfo& info);

 private:
  Delivery& delivery(Napi::Env env);
  Napi::Value name(const Napi::CallbackInfo& info);
  Napi::Value version(const Napi::CallbackInfo& info);
  Napi::Value id(const Napi::CallbackInfo& info);
  Napi::Value request_id(const Napi::CallbackInfo& info);
  Napi::Value response_to(const Napi::CallbackInfo& info);
  Napi::Value sender(const Napi::CallbackInfo& info);
  Napi::Value deliveries(const Napi::CallbackInfo& info);
  Napi::Value redelivered(const Napi::CallbackInfo& info);
  Napi::Value text(const Napi::CallbackInfo& info);
  Napi::Value buffer(const Napi::CallbackInfo& info);
  Napi::Value payload_intact(const Napi::CallbackInfo& info);
  Napi::Value settled(const Napi::CallbackInfo& info);

  // reply(outcome, payload, version, requestId), send(name, ...): as Delivery's.
  void reply(const Napi::CallbackInfo& info);
  void send(const Napi::CallbackInfo& info);
  // sendWithReplies(name, payload, version, requestId, request, timeoutMs, endOutcomes)
  void send_with_replies(const Napi::CallbackInfo& info);
  void ack(const Napi::CallbackInfo& info);
  void release(const Napi::CallbackInfo& info);
  void reject(const Napi::CallbackInfo& info);
  void renew(const Napi::CallbackInfo& info);
  // _finish(release): how lib/service.js settles after a handler, in one call: acks (or
  // releases, when `release` is true) unless the handler settled it already.
  void finish(const Napi::CallbackInfo& info);

  std::optional<Delivery> delivery_;  // empty only between construction and wrap()
  std::shared_ptr<LoopHandoff> handoff_;
};

}  // namespace exobus::node
