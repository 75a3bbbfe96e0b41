#include "delivery_wrap.hpp"

#include <utility>

#include "addon_data.hpp"
#include "conversions.hpp"
#include "sends.hpp"

namespace exobus::node {

Napi::Function DeliveryWrap::define(Napi::Env env) {
  return DefineClass(env, "Delivery",
                     {
                         InstanceAccessor<&DeliveryWrap::name>("name"),
                         InstanceAccessor<&DeliveryWrap::version>("version"),
                         InstanceAccessor<&DeliveryWrap::id>("id"),
                         InstanceAccessor<&DeliveryWrap::request_id>("requestId"),
                         InstanceAccessor<&DeliveryWrap::response_to>("responseTo"),
                         InstanceAccessor<&DeliveryWrap::sender>("sender"),
                         InstanceAccessor<&DeliveryWrap::deliveries>("deliveries"),
                         InstanceAccessor<&DeliveryWrap::redelivered>("redelivered"),
                         InstanceAccessor<&DeliveryWrap::text>("text"),
                         InstanceAccessor<&DeliveryWrap::buffer>("buffer"),
                         InstanceAccessor<&DeliveryWrap::settled>("settled"),
                         InstanceMethod<&DeliveryWrap::payload_intact>("payloadIntact"),
                         InstanceMethod<&DeliveryWrap::reply>("_reply"),
                         InstanceMethod<&DeliveryWrap::send>("_send"),
                         InstanceMethod<&DeliveryWrap::send_with_replies>("_sendWithReplies"),
                         InstanceMethod<&DeliveryWrap::ack>("ack"),
                         InstanceMethod<&DeliveryWrap::release>("release"),
                         InstanceMethod<&DeliveryWrap::reject>("reject"),
                         InstanceMethod<&DeliveryWrap::renew>("renew"),
                         InstanceMethod<&DeliveryWrap::finish>("_finish"),
                     });
}

Napi::Object DeliveryWrap::wrap(Napi::Env env, Delivery delivery, std::shared_ptr<LoopHandoff> handoff) {
  Napi::Object object = AddonData::of(env).delivery_class.New({});
  DeliveryWrap* self = Unwrap(object);
  self->delivery_.emplace(std::move(delivery));
  self->handoff_ = std::move(handoff);
  return object;
}

DeliveryWrap::DeliveryWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeliveryWrap>(info) {}

Delivery& DeliveryWrap::delivery(Napi::Env env) {
  if (!delivery_) throw Napi::TypeError::New(env, "a Delivery is made by the bus, not by new Delivery()");
  return *delivery_;
}

Napi::Value DeliveryWrap::name(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), delivery(info.Env()).message().name);
}
Napi::Value DeliveryWrap::version(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), delivery(info.Env()).message().version);
}
Napi::Value DeliveryWrap::id(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), delivery(info.Env()).message().id.to_string());
}
Napi::Value DeliveryWrap::request_id(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), delivery(info.Env()).message().request_id.to_string());
}
Napi::Value DeliveryWrap::response_to(const Napi::CallbackInfo& info) {
  const auto& response_to = delivery(info.Env()).message().response_to;
  if (!response_to) return info.Env().Null();
  return Napi::String::New(info.Env(), response_to->to_string());
}
Napi::Value DeliveryWrap::sender(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), delivery(info.Env()).message().sender);
}
Napi::Value DeliveryWrap::deliveries(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), delivery(info.Env()).message().deliveries);
}
Napi::Value DeliveryWrap::redelivered(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), delivery(info.Env()).message().redelivered());
}
Napi::Value DeliveryWrap::settled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), delivery(info.Env()).settled());
}

// The payload is held only until the delivery is settled (its memory may then be reused):
// reading it after that is an error, not stale bytes.
static void check_held(Napi::Env env, const Delivery& delivery) {
  if (delivery.settled()) {
    throw error_of(env, {ErrorCode::closed, "the delivery of '" + delivery.message().name +
                                                "' is settled, so its payload is no longer held; read the payload "
                                                "before settling, or copy what must outlive it"});
  }
}

Napi::Value DeliveryWrap::text(const Napi::CallbackInfo& info) {
  Delivery& held = delivery(info.Env());
  check_held(info.Env(), held);
  std::string_view payload = held.payload();
  return Napi::String::New(info.Env(), payload.data(), payload.size());
}

// A Buffer over the payload where it lies in shared memory: no copy. It is valid while the
// delivery is unsettled, like Delivery::payload(); the Buffer does not own the memory.
Napi::Value DeliveryWrap::buffer(const Napi::CallbackInfo& info) {
  Delivery& held = delivery(info.Env());
  check_held(info.Env(), held);
  std::string_view payload = held.payload();
  return Napi::Buffer<char>::New(info.Env(), const_cast<char*>(payload.data()), payload.size(),
                                 [](Napi::Env, char*) {});
}

Napi::Value DeliveryWrap::payload_intact(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), delivery(info.Env()).payload_intact());
}

void DeliveryWrap::reply(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string outcome = string_of(env, info[0], "an outcome");
  PayloadText payload(env, info[1]);
  check(env, delivery(env).reply(outcome, payload.text(), send_options(env, info[2], info[3])));
}

void DeliveryWrap::send(const Napi::CallbackInfo& info) { send_from(delivery(info.Env()), info); }

void DeliveryWrap::send_with_replies(const Napi::CallbackInfo& info) {
  send_with_replies_from(delivery(info.Env()), *handoff_, info);
}

void DeliveryWrap::ack(const Napi::CallbackInfo& info) { check(info.Env(), delivery(info.Env()).ack()); }
void DeliveryWrap::release(const Napi::CallbackInfo& info) { check(info.Env(), delivery(info.Env()).release()); }
void DeliveryWrap::reject(const Napi::CallbackInfo& info) { check(info.Env(), delivery(info.Env()).reject()); }
void DeliveryWrap::renew(const Napi::CallbackInfo& info) { check(info.Env(), delivery(info.Env()).renew()); }

void DeliveryWrap::finish(const Napi::CallbackInfo& info) {
  Delivery& held = delivery(info.Env());
  if (held.settled()) return;
  check(info.Env(), info[0].ToBoolean().Value() ? held.release() : held.ack());
}

}  // namespace exobus::node
